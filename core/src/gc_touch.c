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

void gy__gc_watch_set(uint32_t watch) {
    gy__heap *h = gy__tls_heap;
    if (h != NULL) {
        h->gc_watch = watch;
    }
}
