/* core/src/gc_touch.c: the out-of-line half of the collector's barrier
 * (gc_touch.h; collector/DESIGN.md section 9.3). */
#include "gc_touch.h"

#include "gc_hooks.h"

bool gy__gc_touch_slow(gy_object *ob) {
    gy__segment *seg = gy__segment_of(ob);
    if (seg->gcw == NULL) {
        return false; /* untracked (LEAF, ACYCLIC): never a candidate */
    }
    const gy__gc_hooks *hooks = gy__gc_hooks_get();
    return hooks != NULL && hooks->touch != NULL && hooks->touch(ob);
}

bool gy__gc_doom_check(gy_object *ob, int why) {
    const gy__gc_hooks *hooks = gy__gc_hooks_get();
    return hooks == NULL || hooks->doom_check == NULL || hooks->doom_check(ob, why);
}

void gy__gc_watch_answer(gy__heap *h) {
    /* acquire: the collector's writes before its phase store (the new
     * collection's state) happen before this thread's next touch. */
    uint64_t phase = atomic_load_explicit(&gy__rt.gc_phase, memory_order_acquire);
    /* The collector's own thread never watches (collector/DESIGN.md 9.14). */
    h->gc_watch = (phase & GY__PHASE_WATCH) && !h->internal ? GY__PHASE_TAG(phase) : 0;
    /* release: what this thread did before its answer (its last unbarriered
     * changes, W1) happens before the collector's reads after the wait. */
    atomic_store_explicit(&h->gc_answered, GY__PHASE_EPOCH(phase), memory_order_release);
    /* Not h->gc_watch: the collector's own thread never watches, and may
     * pass here in the middle of a collection (a world stop let through). */
    if (!(phase & GY__PHASE_WATCH) && h->held != NULL &&
        atomic_load_explicit(&gy__rt.walkers, memory_order_seq_cst) == 0) {
        gy__arena_release_held(h); /* no collection nor walk reads them any more */
    }
}

void gy__gc_watch_set(uint32_t watch) {
    gy__heap *h = gy__tls_heap;
    if (h != NULL) {
        h->gc_watch = watch;
    }
}
