/* core/src/gc_hooks.h: the hooks the collector installs into core (internal;
 * core never calls the collector directly, core/DESIGN.md section 9).
 *
 * Each hook is optional. They are called on the mutator thread, outside any
 * Gyre lock, and must not allocate Gyre objects or block. Installing or
 * removing the hooks while other threads run is allowed: a thread sees the
 * old or the new set (one atomic pointer, never freed by core). */
#ifndef GYRE_CORE_GC_HOOKS_H
#define GYRE_CORE_GC_HOOKS_H

#include <stdatomic.h>
#include <stdbool.h>

#include "gyre/object.h"

typedef struct gy__gc_hooks {
    /* A decrement left a container (not LEAF, not ACYCLIC) above zero: a
     * possible cycle root. */
    void (*decref_nonzero)(gy_object *ob);
    /* The write barrier: `field` changed from old_value to new_value (either
     * may be NULL, not both), after the swap. */
    void (*store)(gy_ref *field, gy_object *old_value, gy_object *new_value);
    /* A new object of `type`. Installing this hook takes gy_new off its
     * fast path; generation 0's count is kept by core (rt.gc_young). */
    void (*alloc)(gy_object *ob, const gy_type *type);
    /* The calling thread reached a safe point with GY__PEND_COLLECT set
     * (generation 0's count passed its limit, or the collector asked). The
     * thread holds only owned references here: it may collect. */
    void (*collect_due)(void);
    /* gy_runtime_shutdown, every thread detached, before the named roots
     * are released: drop what the collector holds and reset its state. */
    void (*shutdown)(void);
    /* Whether `ob` (a live tracked object) is cyclic trash the collector is
     * destroying: no API may hand it out (introspection and id lookups skip
     * it). Exact with the world stopped or on the collecting thread; from
     * gy_object_from_id (world running, threads_lock held) a hint, which
     * the lookup's try-incref completes (such trash is DOOMED). */
    bool (*hidden)(const gy_object *ob);
    /* A clear the collector handed to ob's owner thread (gy__object_post_to
     * _owner, GY__POST_CLEAR) has run there; called on that thread after
     * the clear, before the request's reference is dropped. */
    void (*posted_clear_done)(gy_object *ob);
} gy__gc_hooks;

/* Synchronization: acquire on load, release on install. */
extern _Atomic(const gy__gc_hooks *) gy__gc_hooks_current;

/* gy__gc_hooks_install: install `hooks` (NULL removes them). */
void gy__gc_hooks_install(const gy__gc_hooks *hooks);

static inline const gy__gc_hooks *gy__gc_hooks_get(void) {
    return atomic_load_explicit(&gy__gc_hooks_current, memory_order_acquire);
}

/* Whether `ob` is trash the collector is destroying (the `hidden` hook;
 * false without a collector). `tracked`: ob's type is tracked. */
static inline bool gy__gc_is_hidden(const gy_object *ob, bool tracked) {
    const gy__gc_hooks *hooks = gy__gc_hooks_get();
    return tracked && hooks != NULL && hooks->hidden != NULL && hooks->hidden(ob);
}

#endif /* GYRE_CORE_GC_HOOKS_H */
