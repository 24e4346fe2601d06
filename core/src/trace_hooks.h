/* core/src/trace_hooks.h: where allocation tracing hooks into the arena.
 * Each hook costs one relaxed load when tracing is off and no trace is
 * held; builds with GY_TRACING=0 compile them out (the baseline of
 * ./tools/bench tracing). */
#ifndef GYRE_CORE_TRACE_HOOKS_H
#define GYRE_CORE_TRACE_HOOKS_H

#include <stdatomic.h>
#include <stdint.h>

#include "gyre/object.h"

#ifndef GY_TRACING
#define GY_TRACING 1
#endif

/* Synchronization: relaxed; a hint read on every allocation. Set while
 * tracing is on. */
extern _Atomic int gy__trace_on;
/* Synchronization: relaxed; traces held (tracing on or not): frees and
 * resizes look an object up only when it is non-zero. */
extern _Atomic long gy__trace_held;

/* The slow paths are cold: the compiler keeps them (and the register saves
 * their calls need) out of the allocation and free paths. */
__attribute__((cold)) void gy__trace_alloc_slow(gy_object *ob, const gy_type *type, size_t size,
                                                const char *file, int line);
__attribute__((cold)) void gy__trace_free_slow(gy_object *ob);
__attribute__((cold)) void gy__trace_resize_slow(gy_object *ob, int64_t delta);

static inline void gy__trace_alloc(gy_object *ob, const gy_type *type, size_t size,
                                   const char *file, int line) {
#if GY_TRACING
    if (__builtin_expect(atomic_load_explicit(&gy__trace_on, memory_order_relaxed) != 0, 0)) {
        gy__trace_alloc_slow(ob, type, size, file, line);
    }
#else
    (void)ob, (void)type, (void)size, (void)file, (void)line;
#endif
}

static inline void gy__trace_free(gy_object *ob) {
#if GY_TRACING
    if (__builtin_expect(atomic_load_explicit(&gy__trace_held, memory_order_relaxed) != 0, 0)) {
        gy__trace_free_slow(ob);
    }
#else
    (void)ob;
#endif
}

static inline void gy__trace_resize(gy_object *ob, int64_t delta) {
#if GY_TRACING
    if (__builtin_expect(atomic_load_explicit(&gy__trace_held, memory_order_relaxed) != 0, 0) &&
        ob != NULL) {
        gy__trace_resize_slow(ob, delta);
    }
#else
    (void)ob, (void)delta;
#endif
}

#endif /* GYRE_CORE_TRACE_HOOKS_H */
