/* core/src/gc_touch.h: the collector's barrier on every path that changes a
 * count, hands out a reference or writes reference storage (internal;
 * collector/DESIGN.md section 9.3, rules T1 and T2).
 *
 * While a concurrent collection watches, each such operation touches the
 * object concerned *before* the change: an increment or decrement before
 * it, a stored value before it is installed, a removed value before it
 * leaves its slot. With no collection watching the barrier is one load of
 * the thread's own gc_watch and a branch not taken; the rest is out of
 * line (gc_touch.c). */
#ifndef GYRE_CORE_GC_TOUCH_H
#define GYRE_CORE_GC_TOUCH_H

#include <stdbool.h>

#include "gc_hooks.h"
#include "heap.h"

/* The slow path: ob's type is tracked and the collector's touch hook is
 * called; returns whether ob was sealed. */
bool gy__gc_touch_slow(gy_object *ob);

/* Whether the calling thread's heap h (NULL for a thread that is not
 * attached: it never watches) touches: a collection it answered watches.
 * The barrier's whole cost when none does: one load, a branch not taken. */
static inline bool gy__gc_watching(const gy__heap *h) {
    return __builtin_expect(h != NULL && h->gc_watch != 0, 0);
}

/* Touch ob (non-NULL) on behalf of h. Returns true when ob is sealed by a
 * running collection (only a try-incref or a merge needs it). */
static inline bool gy__gc_touch(const gy__heap *h, gy_object *ob) {
    return gy__gc_watching(h) && gy__gc_touch_slow(ob);
}

/* The same for a possibly NULL pointer. */
static inline void gy__gc_xtouch(const gy__heap *h, gy_object *ob) {
    if (ob != NULL) {
        (void)gy__gc_touch(h, ob);
    }
}

/* A try-incref or merge found ob sealed: whether it may proceed (D1). */
bool gy__gc_doom_check(gy_object *ob, int why);

/* The touch of a merge or disown (T2): it moves count between the two
 * halves a collection reads separately; a sealed object's collection is
 * told (D1), and the merge always proceeds. */
static inline void gy__gc_touch_merge(const gy__heap *h, gy_object *ob) {
    if (gy__gc_touch(h, ob)) {
        (void)gy__gc_doom_check(ob, GY__DOOM_MERGE);
    }
}

/* The calling thread's answer to a handshake: its barriers touch while
 * `watch` is non-zero (collector/DESIGN.md 9.4). Only the thread itself
 * calls it, at a safe point or when it leaves quiescence; does nothing on a
 * thread that is not attached. */
void gy__gc_watch_set(uint32_t watch);

/* The answer to a handshake (collector/DESIGN.md 9.4), on h's own thread at
 * a safe point, when it leaves quiescence, or when it attaches: watch what
 * rt.gc_phase says, and publish the answered epoch. Releases the segments
 * h held once no collection watches. */
void gy__gc_watch_answer(gy__heap *h);

#endif /* GYRE_CORE_GC_TOUCH_H */
