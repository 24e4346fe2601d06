/* core/src/weakcoll.c: weak-value dictionaries and weak sets.
 *
 * Both wrap a gy_dict from key to a weak reference (weak sets key by the
 * member's address). Each entry's weakref callback removes the entry when
 * the value dies. The callback must not touch a collection that died in the
 * meantime, so every collection has a small `handle` (malloc'd, refcounted
 * by the collection and by each entry's callback context) whose `owner` the
 * collection clears, under the handle's lock, when it dies; a callback
 * upgrades `owner` under that lock with a try-incref before using it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gyre/dict.h"
#include "gyre/weakref.h"
#include "heap.h"
#include "spinlock.h"

typedef struct handle {
    atomic_long refs;  /* the collection + one per live entry context */
    gy__spinlock lock; /* guards owner */
    gy_object *owner;  /* the collection; NULL once it died */
} handle;

typedef struct entry_ctx {
    handle *h;
    char key[];
} entry_ctx;

/* The layout shared by gy_weakdict and gy_weakset. */
typedef struct weakcoll {
    gy_object ob;
    gy_ref map; /* gy_dict: key -> gy_weakref */
    handle *h;  /* immutable after creation */
} weakcoll;

struct gy_weakdict {
    weakcoll c;
};
struct gy_weakset {
    weakcoll c;
};

static void handle_release(handle *h) {
    /* acq_rel: the last releaser sees every other user's accesses. */
    if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1) {
        free(h);
    }
}

static void ctx_release(void *arg) {
    entry_ctx *ctx = arg;
    handle_release(ctx->h);
    free(ctx);
}

/* A value died: drop its entry if the collection still lives and the entry
 * still holds this weakref. Runs with no Gyre lock held. */
static void entry_died(gy_weakref *wr, void *arg) {
    entry_ctx *ctx = arg;
    gy__spin_lock(&ctx->h->lock);
    gy_object *owner = ctx->h->owner;
    bool alive = owner != NULL && gy__try_incref(gy__tls_heap, owner);
    gy__spin_unlock(&ctx->h->lock);
    if (!alive) {
        return;
    }
    gy_object *map = gy_load(&((weakcoll *)owner)->map);
    if (map != NULL) {
        (void)gy__dict_del_if((gy_dict *)map, ctx->key, wr);
        gy_decref(map);
    }
    gy_decref(owner);
}

static int weakcoll_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((weakcoll *)self)->map, visit, arg);
    return 0;
}

static void weakcoll_clear(gy_object *self) {
    weakcoll *c = (weakcoll *)self;
    if (c->h != NULL) {
        gy__spin_lock(&c->h->lock);
        c->h->owner = NULL; /* callbacks from now on leave us alone */
        gy__spin_unlock(&c->h->lock);
        handle_release(c->h);
        c->h = NULL;
    }
    gy_ref_clear(&c->map);
}

gy_type gy_weakdict_type = {
    .name = "weakdict",
    .size = sizeof(gy_weakdict),
    .traverse = weakcoll_traverse,
    .clear = weakcoll_clear,
};

gy_type gy_weakset_type = {
    .name = "weakset",
    .size = sizeof(gy_weakset),
    .traverse = weakcoll_traverse,
    .clear = weakcoll_clear,
};

static int weakcoll_new(gy_type *type, void *out, const char *file, int line) {
    weakcoll *c;
    int rc = gy__new_at(type, &c, file, line);
    if (rc != GY_OK) {
        return rc;
    }
    gy_dict *map;
    if ((rc = gy__dict_new_at(&map, file, line)) != GY_OK) {
        gy_decref(c);
        return rc;
    }
    gy_store_steal(&c->map, map);
    c->h = malloc(sizeof *c->h);
    if (c->h == NULL) {
        gy_decref(c);
        return GY_ENOMEM;
    }
    atomic_init(&c->h->refs, 1);
    atomic_flag_clear(&c->h->lock.held);
    /* Entry callbacks on any thread try-incref the collection through the
     * handle, so its last owner decrement must go through the CAS (the
     * private fast path would free it under a callback that just won). */
    gy__object_mark_reachable(&c->ob);
    c->h->owner = &c->ob;
    memcpy(out, &c, sizeof c);
    return GY_OK;
}

static int weakcoll_set(weakcoll *c, const char *key, void *value) {
    if (key == NULL || value == NULL) {
        return GY_EINVAL;
    }
    size_t len = strlen(key);
    entry_ctx *ctx = malloc(sizeof *ctx + len + 1);
    if (ctx == NULL) {
        return GY_ENOMEM;
    }
    memcpy(ctx->key, key, len + 1);
    ctx->h = c->h;
    /* relaxed: the collection's own reference keeps the handle alive here. */
    atomic_fetch_add_explicit(&c->h->refs, 1, memory_order_relaxed);
    gy_weakref *wr;
    int rc = gy__weakref_new_full(&wr, value, entry_died, ctx, ctx_release, __FILE__, __LINE__);
    if (rc != GY_OK) {
        ctx_release(ctx);
        return rc;
    }
    gy_object *map = gy_load(&c->map);
    rc = map != NULL ? gy_dict_set((gy_dict *)map, key, wr) : GY_ESTATE;
    gy_xdecref(map);
    gy_decref(wr); /* the map holds it now (or it dies, releasing ctx) */
    return rc;
}

static gy_object *weakcoll_get(weakcoll *c, const char *key) {
    gy_object *map = gy_load(&c->map);
    if (map == NULL) {
        return NULL;
    }
    gy_object *wr = gy_dict_get((gy_dict *)map, key);
    gy_decref(map);
    if (wr == NULL) {
        return NULL;
    }
    gy_object *value = gy_weakref_get((gy_weakref *)wr);
    gy_decref(wr);
    return value;
}

static int weakcoll_del(weakcoll *c, const char *key) {
    gy_object *map = gy_load(&c->map);
    if (map == NULL) {
        return GY_ENOENT;
    }
    int rc = gy_dict_del((gy_dict *)map, key);
    gy_decref(map);
    return rc;
}

typedef struct each_ctx {
    int (*fn)(const char *key, gy_object *value, void *arg);
    void *arg;
    size_t live;
} each_ctx;

static int each_entry(const char *key, gy_object *wr, void *arg) {
    each_ctx *e = arg;
    gy_object *value = gy_weakref_get((gy_weakref *)wr);
    if (value == NULL) {
        return 0; /* died; its callback removes the entry */
    }
    e->live++;
    int rc = e->fn != NULL ? e->fn(key, value, e->arg) : 0;
    gy_decref(value);
    return rc;
}

static int weakcoll_foreach(weakcoll *c, each_ctx *e) {
    gy_object *map = gy_load(&c->map);
    if (map == NULL) {
        return 0;
    }
    int rc = gy_dict_foreach((gy_dict *)map, each_entry, e);
    gy_decref(map);
    return rc;
}

/* --- gy_weakdict ----------------------------------------------------------- */

int gy__weakdict_new_at(gy_weakdict **out, const char *file, int line) {
    return weakcoll_new(&gy_weakdict_type, out, file, line);
}
int gy_weakdict_set(gy_weakdict *d, const char *key, void *value) {
    return weakcoll_set(&d->c, key, value);
}
gy_object *gy_weakdict_get(gy_weakdict *d, const char *key) { return weakcoll_get(&d->c, key); }
int gy_weakdict_del(gy_weakdict *d, const char *key) { return weakcoll_del(&d->c, key); }
size_t gy_weakdict_len(gy_weakdict *d) {
    each_ctx e = {NULL, NULL, 0};
    (void)weakcoll_foreach(&d->c, &e);
    return e.live;
}
int gy_weakdict_foreach(gy_weakdict *d, int (*fn)(const char *key, gy_object *value, void *arg),
                        void *arg) {
    each_ctx e = {fn, arg, 0};
    return weakcoll_foreach(&d->c, &e);
}

/* --- gy_weakset: keyed by the member's address ---------------------------- */

static void member_key(const void *obj, char key[32]) {
    snprintf(key, 32, "%zx", (size_t)(uintptr_t)obj);
}

int gy__weakset_new_at(gy_weakset **out, const char *file, int line) {
    return weakcoll_new(&gy_weakset_type, out, file, line);
}
int gy_weakset_add(gy_weakset *s, void *obj) {
    char key[32];
    member_key(obj, key);
    if (gy_weakset_contains(s, obj)) {
        return GY_OK;
    }
    return weakcoll_set(&s->c, key, obj);
}
int gy_weakset_discard(gy_weakset *s, void *obj) {
    char key[32];
    member_key(obj, key);
    return weakcoll_del(&s->c, key);
}
bool gy_weakset_contains(gy_weakset *s, void *obj) {
    char key[32];
    member_key(obj, key);
    gy_object *v = weakcoll_get(&s->c, key);
    gy_xdecref(v);
    return v == obj;
}
size_t gy_weakset_len(gy_weakset *s) {
    each_ctx e = {NULL, NULL, 0};
    (void)weakcoll_foreach(&s->c, &e);
    return e.live;
}

typedef struct member_ctx {
    int (*fn)(gy_object *member, void *arg);
    void *arg;
} member_ctx;

static int each_member(const char *key, gy_object *value, void *arg) {
    (void)key;
    member_ctx *m = arg;
    return m->fn(value, m->arg);
}

int gy_weakset_foreach(gy_weakset *s, int (*fn)(gy_object *member, void *arg), void *arg) {
    member_ctx m = {fn, arg};
    each_ctx e = {each_member, &m, 0};
    return weakcoll_foreach(&s->c, &e);
}
