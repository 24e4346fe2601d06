/* core/src/walk.c: a walk of every live object in bounded slices.
 *
 * Introspection (objects by type, referrers) needs every object, and a
 * consistent view of each: a cell read while its owner reuses it is not an
 * object (a cell never published is reused at once, its header rewritten
 * with plain stores). So each slice runs with the world stopped, as the old
 * one-shot walk did, but for at most WALK_SLICE_CELLS cells: a leak hunt on
 * a heap of millions of objects stops the loops many times briefly instead
 * of once for O(heap) (collector/DESIGN.md 9.16).
 *
 * Between slices the world runs, and the walker keeps only segment
 * pointers: taken from each heap's lists under its seg_lock after
 * rt.walkers went up, they stay mapped until the walk ends, because a
 * segment emptied meanwhile is unlinked but held (arena.c segment_release
 * reads rt.walkers after the unlink, under the same lock order). Objects
 * born after a heap's snapshot, in segments it did not list, are not seen;
 * one that dies between slices is skipped when its slice comes. */
#include <stdlib.h>

#include "heap.h"

#define WALK_SLICE_CELLS 32768

/* Every heap's object segments (of `type`'s index only, when not 0). */
static gy__segment **snapshot(uint32_t type_index, size_t *n) {
    size_t cap = 256, len = 0;
    gy__segment **v = malloc(cap * sizeof *v);
    if (v == NULL) {
        return NULL;
    }
    gy__threads_lock();
    gy__heap *first = gy__rt.heaps; /* heaps are only ever added at the head */
    pthread_mutex_unlock(&gy__rt.threads_lock);
    for (gy__heap *h = first; h != NULL; h = h->next) {
        pthread_mutex_lock(&h->seg_lock);
        for (uint32_t t = 1; t < GY__MAX_TYPES; t++) {
            if (type_index != 0 && t != type_index) {
                continue;
            }
            for (gy__segment *s = h->segs[t]; s != NULL; s = s->next) {
                if (len == cap) {
                    gy__segment **grown = realloc(v, cap * 2 * sizeof *v);
                    if (grown == NULL) {
                        pthread_mutex_unlock(&h->seg_lock);
                        free(v);
                        return NULL;
                    }
                    v = grown;
                    cap *= 2;
                }
                v[len++] = s;
            }
        }
        pthread_mutex_unlock(&h->seg_lock);
    }
    *n = len;
    return v;
}

/* Let every heap release the segments it held for the walk, at its next
 * safe point (gy__gc_watch_answer releases them once no walk and no
 * watching collection needs them). */
static void release_held_everywhere(void) {
    gy__threads_lock();
    for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
        atomic_fetch_or_explicit(&h->pending, GY__PEND_HANDSHAKE, memory_order_release);
    }
    pthread_mutex_unlock(&gy__rt.threads_lock);
}

int gy__walk_sliced(const gy_type *type, int (*fn)(gy_object *, void *), void *arg) {
    uint32_t type_index = 0;
    if (type != NULL) {
        /* acquire: the index is published after the type's segments list. */
        type_index = atomic_load_explicit(&((gy_type *)(uintptr_t)type)->gy__priv.index,
                                          memory_order_acquire);
        if (type_index == 0) {
            return 0; /* never allocated: no object of it */
        }
    }
    /* seq_cst: before the snapshot's seg_lock, against segment_release's
     * unlink under seg_lock then load (arena.c). */
    atomic_fetch_add_explicit(&gy__rt.walkers, 1, memory_order_seq_cst);
    size_t n = 0;
    gy__segment **segs = snapshot(type_index, &n);
    int rc = 0;
    if (segs == NULL) {
        rc = -1; /* no memory for the snapshot */
    }
    size_t i = 0;
    uint32_t cell = 0;
    while (segs != NULL && i < n && rc == 0) {
        gy__world_stop();
        for (size_t budget = WALK_SLICE_CELLS; i < n && budget > 0 && rc == 0;) {
            gy__segment *s = segs[i];
            /* relaxed: the world is stopped; cells below bump were handed out. */
            uint32_t bump = atomic_load_explicit(&s->bump, memory_order_relaxed);
            for (; cell < bump && budget > 0 && rc == 0; cell++, budget--) {
                gy_object *ob = (gy_object *)(s->cells + (size_t)cell * s->cell_size);
                if (gy__object_is_live(ob)) {
                    rc = fn(ob, arg);
                }
            }
            if (cell >= bump) {
                i++;
                cell = 0;
            }
        }
        gy__world_resume();
        gy_safepoint(); /* another stopper, a handshake: between slices */
    }
    free(segs);
    if (atomic_fetch_sub_explicit(&gy__rt.walkers, 1, memory_order_seq_cst) == 1) {
        release_held_everywhere();
    }
    return rc;
}
