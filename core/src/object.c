/* core/src/object.c: gy_new, type registration, ids and per-type counters. */
#include <string.h>

#include "gc_hooks.h"
#include "gyre/failpoint.h"
#include "heap.h"
#include "trace_hooks.h"

static pthread_mutex_t type_lock = PTHREAD_MUTEX_INITIALIZER;

gy_type *gy__type_by_index(uint32_t index) {
    return index < GY__MAX_TYPES ? gy__rt.types[index] : NULL;
}

/* Give `type` an index on first use; returns it, or a negative error. */
static int type_index(gy_type *type) {
    /* acquire: pairs with the release below, so types[index] is set. */
    uint32_t index = atomic_load_explicit(&type->gy__priv.index, memory_order_acquire);
    if (index != 0) {
        return (int)index;
    }
    if (type->size < sizeof(gy_object) || type->size > GY__MAX_OBJECT_SIZE) {
        return GY_EINVAL;
    }
    if (!(type->flags & GY_TYPE_LEAF) && (type->traverse == NULL || type->clear == NULL)) {
        return GY_EINVAL;
    }
    pthread_mutex_lock(&type_lock);
    index = atomic_load_explicit(&type->gy__priv.index, memory_order_relaxed);
    if (index == 0) {
        /* Index 0 means "raw memory"; types start at 1. */
        uint32_t next = atomic_load_explicit(&gy__rt.ntypes, memory_order_relaxed) + 1;
        if (next >= GY__MAX_TYPES) {
            pthread_mutex_unlock(&type_lock);
            return GY_ERANGE;
        }
        gy__rt.types[next] = type;
        atomic_store_explicit(&gy__rt.ntypes, next, memory_order_release);
        /* release: types[next] is written before anyone can use the index. */
        atomic_store_explicit(&type->gy__priv.index, next, memory_order_release);
        index = next;
    }
    pthread_mutex_unlock(&type_lock);
    return (int)index;
}

/* Allocate, run the collector's allocation hook, hand the pointer out. */
static int new_object(gy__heap *h, gy_type *type, int index, gy_object **ob) {
    int rc = gy__arena_alloc_object(h, type, (uint32_t)index, ob);
    if (rc != GY_OK) {
        return rc;
    }
    const gy__gc_hooks *hooks = gy__gc_hooks_get();
    if (hooks != NULL && hooks->alloc != NULL) {
        hooks->alloc(*ob, type);
    }
    return GY_OK;
}

/* Checks, allocation, hooks; the pointer handed out through outp. */
static inline int new_checked(gy_type *type, gy_object **ob) {
    gy__heap *h = gy__tls_heap;
    if (h == NULL) {
        return GY_ESTATE;
    }
    int index = type_index(type);
    if (index < 0) {
        return index;
    }
    return new_object(h, type, index, ob);
}

#if GY_TRACING
/* The traced path, kept out of line so that the untraced one never keeps
 * file and line alive. */
__attribute__((cold, noinline)) static int new_traced(gy_type *type, void *outp, const char *file,
                                                      int line) {
    if (gy_failpoint("alloc")) {
        return GY_ENOMEM;
    }
    gy_object *ob;
    int rc = new_checked(type, &ob);
    if (rc == GY_OK) {
        gy__trace_alloc(ob, type, gy__segment_of(ob)->cell_size, file, line);
        memcpy(outp, &ob, sizeof ob);
    }
    return rc;
}
#endif

int gy__new_at(gy_type *type, void *outp, const char *file, int line) {
#if GY_TRACING
    /* relaxed: a hint; tracing that starts during this call may miss it. */
    if (__builtin_expect(atomic_load_explicit(&gy__trace_on, memory_order_relaxed) != 0, 0)) {
        return new_traced(type, outp, file, line);
    }
#endif
    (void)file;
    (void)line;
    gy_object *ob;
    /* The fast path: a registered type, a cached cell, no collector hook.
     * acquire on the index: pairs with its release at registration. */
    gy__heap *h = gy__tls_heap;
    uint32_t index = atomic_load_explicit(&type->gy__priv.index, memory_order_acquire);
    if (gy_failpoint("alloc")) {
        return GY_ENOMEM; /* every allocation passes here exactly once */
    }
    if (h != NULL && index != 0 && gy__gc_hooks_get() == NULL) {
        ob = gy__tcache_pop(h, index);
        if (ob != NULL) {
            gy__cell_init_object(h, index, ob, gy__type_cell_size(type));
            memcpy(outp, &ob, sizeof ob);
            return GY_OK;
        }
    }
    int rc = new_checked(type, &ob);
    if (rc == GY_OK) {
        /* The caller's pointer may have any struct-pointer type: copy bytes. */
        memcpy(outp, &ob, sizeof ob);
    }
    return rc;
}

const gy_type *gy_type_of(const void *obj) { return gy__segment_of(obj)->type; }

void *gy_storage_alloc(void *owner, size_t size) { return gy__storage_alloc(owner, size); }

void gy_storage_retire(void *owner, void *storage, size_t size) {
    gy__storage_retire(owner, storage, size);
}

void gy__auto_release(void *varp) {
    void *obj;
    memcpy(&obj, varp, sizeof obj);
    gy_xdecref(obj);
}

void *gy__steal(void **varp) {
    void *obj = *varp;
    *varp = NULL;
    return obj;
}

/* --- ids ----------------------------------------------------------------- */

gy_id gy_object_id(const void *obj) {
    gy_object *ob = (gy_object *)(uintptr_t)obj;
    gy__segment *seg = gy__segment_of(ob);
    uint32_t i = gy__cell_index(seg, ob);
    /* From now on the cell waits for a grace period and bumps its serial
     * when freed. relaxed: the id lookup re-checks after taking a ref. */
    if (!(atomic_load_explicit(&ob->gy__shared, memory_order_relaxed) & GY__RC_ID_TAKEN)) {
        atomic_fetch_or_explicit(&ob->gy__shared, GY__RC_ID_TAKEN, memory_order_relaxed);
    }
    uint32_t serial = atomic_load_explicit(&seg->serials[i], memory_order_relaxed);
    gy_id id = {(uint64_t)(uintptr_t)obj, ((uint64_t)seg->serial_hi << 32) | serial};
    return id;
}

int gy_object_from_id(gy_id id, void *outp) {
    gy__heap *me = gy__tls_heap;
    if (me == NULL) {
        return GY_ESTATE;
    }
    gy__segment *want = gy__segment_of((void *)(uintptr_t)id.addr);
    int rc = GY_ESTALE;
    gy__threads_lock();
    for (gy__heap *h = gy__rt.heaps; h != NULL && rc == GY_ESTALE; h = h->next) {
        pthread_mutex_lock(&h->seg_lock);
        for (uint32_t t = 1; t < GY__MAX_TYPES && rc == GY_ESTALE; t++) {
            for (gy__segment *s = h->segs[t]; s != NULL; s = s->next) {
                if (s != want) {
                    continue;
                }
                char *cell = (char *)(uintptr_t)id.addr;
                if (cell < s->cells || (size_t)(cell - s->cells) % s->cell_size != 0) {
                    break;
                }
                uint32_t i = gy__cell_index(s, cell);
                /* relaxed: a cell below bump was handed out at least once
                 * (a genuine id's was, before the id existed). */
                if (i >= atomic_load_explicit(&s->bump, memory_order_relaxed) ||
                    (id.serial >> 32) != s->serial_hi) {
                    break;
                }
                gy_object *ob = (gy_object *)cell;
                /* The segment cannot go away (seg_lock). In this order:
                 * - the serial: a stale id stops here, before reading a cell
                 *   its owner may be re-initialising (an object whose id was
                 *   taken bumps the serial when freed, before its cell waits
                 *   for the grace period this thread's epoch section holds
                 *   up; acquire: pairs with that grace period's ordering);
                 * - the header: a free cell is dead;
                 * - ID_TAKEN: an id was really taken for this object (a
                 *   forged id of another object stops here, and only such
                 *   objects are try-incref'd from an id: DESIGN.md 3a, R1);
                 * - trash the collector is destroying is never handed out
                 *   (hidden from handle to the end of its clear; no world
                 *   stop is under way while we hold threads_lock);
                 * - the try-incref: a dying object fails it. */
                if (atomic_load_explicit(&s->serials[i], memory_order_acquire) ==
                        (uint32_t)id.serial &&
                    gy__object_is_live(ob) &&
                    (atomic_load_explicit(&ob->gy__shared, memory_order_relaxed) &
                     GY__RC_ID_TAKEN) &&
                    !gy__gc_is_hidden(ob, s->gcw != NULL) && gy__try_incref(me, ob)) {
                    /* The cell may have been freed and reused in between: the
                     * serial moves on at the free of an object whose id was
                     * taken, so an unchanged serial means the same object. */
                    if (atomic_load_explicit(&s->serials[i], memory_order_acquire) ==
                        (uint32_t)id.serial) {
                        memcpy(outp, &ob, sizeof ob);
                        rc = GY_OK;
                    } else {
                        gy_decref(ob);
                    }
                }
                break;
            }
        }
        pthread_mutex_unlock(&h->seg_lock);
    }
    pthread_mutex_unlock(&gy__rt.threads_lock);
    return rc;
}

/* --- per-type counters ---------------------------------------------------- */

void gy__type_sum(uint32_t index, gy_type_stats *out) {
    memset(out, 0, sizeof *out);
    for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
        gy__type_counters *c = &h->counters[index];
        /* relaxed: statistics, summed without stopping the writers. */
        out->allocated += atomic_load_explicit(&c->allocated, memory_order_relaxed);
        out->freed += atomic_load_explicit(&c->freed, memory_order_relaxed);
        out->bytes += atomic_load_explicit(&c->backing, memory_order_relaxed);
    }
    out->live = (int64_t)(out->allocated - out->freed);
    if (index != 0) { /* index 0 is scratch memory: no cells */
        out->bytes += out->live * (int64_t)gy__type_cell_size(gy__rt.types[index]);
    }
}

void gy_type_get_stats(const gy_type *type, gy_type_stats *out) {
    uint32_t index = atomic_load_explicit(&type->gy__priv.index, memory_order_acquire);
    memset(out, 0, sizeof *out);
    if (index == 0 || !gy_runtime_running()) {
        return;
    }
    gy__threads_lock();
    gy__type_sum(index, out);
    pthread_mutex_unlock(&gy__rt.threads_lock);
}

int gy_types_foreach(int (*fn)(const gy_type *type, const gy_type_stats *stats, void *arg),
                     void *arg) {
    uint32_t n = atomic_load_explicit(&gy__rt.ntypes, memory_order_acquire);
    for (uint32_t t = 1; t <= n; t++) {
        gy_type_stats st;
        gy__threads_lock();
        gy__type_sum(t, &st);
        pthread_mutex_unlock(&gy__rt.threads_lock);
        int rc = fn(gy__rt.types[t], &st, arg);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}
