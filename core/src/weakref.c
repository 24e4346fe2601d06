/* core/src/weakref.c: weak references.
 *
 * Registry: 64 stripes keyed by the referent's address, each a mutex and an
 * open-addressing table (linear probing, backward-shift deletion) from
 * referent to the newest weak reference of a doubly linked list. Everything
 * a stripe guards: its table, the lists hanging off it, and `target` of each
 * weak reference in them. No callback, finalizer or decref runs under a
 * stripe lock. A referent carries the WEAKREFS flag once it ever had one, so
 * objects without weak references never touch the registry.
 */
#include <pthread.h>
#include <stdlib.h>

#include "gyre/weakref.h"
#include "heap.h"
#include "ptrmap.h"

#define STRIPES 64
#define BATCH 32

struct gy_weakref {
    gy_object ob;
    gy_object *target;              /* stripe lock; NULL once cleared */
    gy_weakref *next, *prev;        /* stripe lock: the referent's list, newest first */
    gy_weakref_callback cb;         /* immutable */
    void *arg;                      /* immutable */
    void (*arg_release)(void *arg); /* immutable: called when the weakref dies */
    uint32_t stripe;                /* immutable */
};

typedef struct slot {
    gy_object *key;
    gy_weakref *head;
} slot;

typedef struct stripe {
    pthread_mutex_t lock;
    slot *slots; /* cap entries, NULL key = empty */
    size_t cap, len;
    char pad[64 - sizeof(pthread_mutex_t) % 64];
} stripe;

/* Set up by gy__weakref_init at runtime start, torn down at shutdown. */
static stripe stripes[STRIPES];

static uint32_t stripe_of(const void *p) { return (uint32_t)(gy__ptr_hash(p) >> 58); }

static size_t slot_find(const stripe *st, const gy_object *key) {
    return gy__ptrmap_find(st->slots, st->cap, sizeof(slot), key);
}

static void slot_remove(stripe *st, size_t i) {
    gy__ptrmap_remove(st->slots, st->cap, sizeof(slot), i);
    st->len--;
}

static int stripe_grow(stripe *st) {
    void *table = st->slots;
    int rc = gy__ptrmap_grow(&table, &st->cap, sizeof(slot));
    st->slots = table;
    return rc;
}

/* Under the stripe lock: take wr out of its referent's list. */
static void unlink_locked(stripe *st, gy_weakref *wr) {
    if (wr->prev != NULL) {
        wr->prev->next = wr->next;
    } else {
        size_t i = slot_find(st, wr->target);
        if (wr->next != NULL) {
            st->slots[i].head = wr->next;
        } else {
            slot_remove(st, i);
        }
    }
    if (wr->next != NULL) {
        wr->next->prev = wr->prev;
    }
    wr->next = wr->prev = NULL;
    wr->target = NULL;
}

/* Take wr out of its referent's list if it is still there; true if it was.
 * Its referent's death no longer sees it (its callback will not run). */
static bool weakref_unregister(gy_weakref *wr) {
    stripe *st = &stripes[wr->stripe];
    pthread_mutex_lock(&st->lock);
    bool was = wr->target != NULL;
    if (was) {
        unlink_locked(st, wr);
    }
    pthread_mutex_unlock(&st->lock);
    return was;
}

/* A weakref dying unregisters itself (if its referent still lives). */
static void weakref_clear(gy_object *self) {
    gy_weakref *wr = (gy_weakref *)self;
    (void)weakref_unregister(wr);
    if (wr->arg_release != NULL) {
        wr->arg_release(wr->arg);
        wr->arg_release = NULL;
    }
}

/* A weak reference holds no strong reference, yet it is tracked: the
 * collector must know whether a weakref is itself cyclic trash (its
 * callback is then not called), as CPython's handle_weakrefs does. */
static int weakref_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    (void)self;
    (void)visit;
    (void)arg;
    return 0;
}

gy_type gy_weakref_type = {
    .name = "weakref",
    .size = sizeof(gy_weakref),
    .traverse = weakref_traverse,
    .clear = weakref_clear,
};

int gy__weakref_new_full(gy_weakref **out, void *target, gy_weakref_callback cb, void *arg,
                         void (*arg_release)(void *), const char *file, int line) {
    gy_object *t = target;
    gy_weakref *wr;
    int rc = gy__new_at(&gy_weakref_type, &wr, file, line);
    if (rc != GY_OK) {
        return rc;
    }
    wr->cb = cb;
    wr->arg = arg;
    wr->stripe = stripe_of(t);
    stripe *st = &stripes[wr->stripe];
    pthread_mutex_lock(&st->lock);
    if ((st->len + 1) * 2 > st->cap && stripe_grow(st) != GY_OK) {
        pthread_mutex_unlock(&st->lock);
        gy_decref(wr); /* not registered: its clear does nothing */
        return GY_ENOMEM;
    }
    size_t i = slot_find(st, t);
    if (st->slots[i].key == NULL) {
        st->slots[i].key = t;
        st->slots[i].head = NULL;
        st->len++;
    }
    wr->target = t;
    wr->next = st->slots[i].head;
    if (wr->next != NULL) {
        wr->next->prev = wr;
    }
    st->slots[i].head = wr;
    /* relaxed: the flag is read by the thread that frees t, which is ordered
     * after our reference to t is gone (acq_rel decrements). */
    atomic_fetch_or_explicit(&t->gy__shared, GY__RC_WEAKREFS, memory_order_relaxed);
    /* The weakref itself is now reachable by other threads through the
     * stripe (gy__weakref_clear_all try-increfs it to call back), so its
     * owner must never free it by the private fast path, which would clear
     * it (and release its callback's argument) under a caller's feet.
     * Set before any other thread can find it (under st->lock). */
    gy__object_mark_reachable(&wr->ob);
    pthread_mutex_unlock(&st->lock);
    wr->arg_release = arg_release; /* only once registered: errors release nothing */
    *out = wr;
    return GY_OK;
}

int gy__weakref_new_at(gy_weakref **out, void *target, gy_weakref_callback cb, void *arg,
                       const char *file, int line) {
    if (target == NULL) {
        return GY_EINVAL;
    }
    return gy__weakref_new_full(out, target, cb, arg, NULL, file, line);
}

gy_object *gy_weakref_get(gy_weakref *wr) {
    stripe *st = &stripes[wr->stripe];
    pthread_mutex_lock(&st->lock);
    gy_object *t = wr->target;
    /* Under the lock the referent's cell is valid: its death clears target
     * under this lock first. A dying referent fails the try-incref. */
    if (t != NULL && !gy__try_incref(gy__tls_heap, t)) {
        t = NULL;
    }
    pthread_mutex_unlock(&st->lock);
    return t;
}

size_t gy_weakref_count(const void *obj) {
    const gy_object *t = obj;
    if (!(atomic_load_explicit(&((gy_object *)(uintptr_t)t)->gy__shared, memory_order_relaxed) &
          GY__RC_WEAKREFS)) {
        return 0;
    }
    stripe *st = &stripes[stripe_of(t)];
    size_t n = 0;
    pthread_mutex_lock(&st->lock);
    if (st->cap > 0) {
        size_t i = slot_find(st, t);
        for (gy_weakref *wr = st->slots[i].key ? st->slots[i].head : NULL; wr; wr = wr->next) {
            n++;
        }
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

void gy__weakref_clear_all(gy_object *ob) {
    stripe *st = &stripes[stripe_of(ob)];
    gy__heap *h = gy__tls_heap;
    for (;;) {
        gy_weakref *batch[BATCH];
        size_t n = 0;
        bool more = false;
        pthread_mutex_lock(&st->lock);
        if (st->cap > 0) {
            size_t i = slot_find(st, ob);
            /* slot i may hold another key once ours is removed: compare. */
            while (st->slots[i].key == ob && n < BATCH) {
                gy_weakref *wr = st->slots[i].head; /* newest first */
                unlink_locked(st, wr);              /* may remove slot i */
                /* A weakref dying elsewhere right now is skipped: its clear
                 * finds target NULL and leaves. */
                if (gy__try_incref(h, &wr->ob)) {
                    batch[n++] = wr;
                }
            }
            more = st->slots[i].key == ob;
        }
        pthread_mutex_unlock(&st->lock);
        for (size_t k = 0; k < n; k++) {
            if (batch[k]->cb != NULL) {
                batch[k]->cb(batch[k], batch[k]->arg);
            }
            gy_decref(batch[k]);
        }
        if (!more) {
            return;
        }
    }
}

bool gy__weakref_detach_trash(gy_object *ob) {
    return gy__segment_of(ob)->type == &gy_weakref_type && weakref_unregister((gy_weakref *)ob);
}

size_t gy__weakref_detach_for_gc(gy_object *ob, bool (*is_trash)(const gy_object *),
                                 gy_weakref **pending) {
    stripe *st = &stripes[stripe_of(ob)];
    size_t n = 0;
    pthread_mutex_lock(&st->lock);
    if (st->cap > 0) {
        size_t i = slot_find(st, ob);
        while (st->slots[i].key == ob) {
            gy_weakref *wr = st->slots[i].head;
            unlink_locked(st, wr); /* may remove slot i; then the loop ends */
            n++;
            /* A weakref that is trash itself, or without callback, is just
             * cleared. With the world running (concurrent mode) wr may be
             * dying elsewhere: a try-incref (the caller is attached, in its
             * epoch section) refuses it then. */
            if (wr->cb != NULL && !is_trash(&wr->ob) && gy__try_incref(gy__tls_heap, &wr->ob)) {
                wr->next = *pending; /* unlinked: `next` is ours until run */
                *pending = wr;
            }
        }
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

void gy__weakref_run_pending(gy_weakref *pending) {
    while (pending != NULL) {
        gy_weakref *wr = pending;
        pending = wr->next;
        wr->next = NULL;
        wr->cb(wr, wr->arg);
        gy_decref(wr);
    }
}

void gy__weakref_init(void) {
    for (size_t s = 0; s < STRIPES; s++) {
        pthread_mutex_init(&stripes[s].lock, NULL);
        stripes[s].slots = NULL;
        stripes[s].cap = stripes[s].len = 0;
    }
}

void gy__weakref_shutdown(void) {
    for (size_t s = 0; s < STRIPES; s++) {
        free(stripes[s].slots);
        stripes[s].slots = NULL;
        stripes[s].cap = stripes[s].len = 0;
        pthread_mutex_destroy(&stripes[s].lock);
    }
}
