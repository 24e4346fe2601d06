/* core/src/gc_hooks.h: the hooks the collector installs into core (internal;
 * core never calls the collector directly, core/DESIGN.md section 9).
 *
 * Each hook is optional. They are called on the mutator thread, outside any
 * Gyre lock, and must not allocate Gyre objects or block (start, stop and
 * thread_detach excepted, as they say). Installing or
 * removing the hooks while other threads run is allowed: a thread sees the
 * old or the new set (one atomic pointer, never freed by core). */
#ifndef GYRE_CORE_GC_HOOKS_H
#define GYRE_CORE_GC_HOOKS_H

#include <stdatomic.h>
#include <stdbool.h>

#include "gyre/object.h"
#include "gyre/runtime.h"

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
     * are released: drop what the collector holds and reset its state.
     * Runs after `stop`. */
    void (*shutdown)(void);
    /* The end of gy_runtime_init (the runtime running, init_lock held):
     * `gc_mode` is gy_runtime_options.gc_mode (a gy_gc_mode). May start
     * and attach an internal thread (gy__thread_attach_internal) and wait
     * for it. On failure it returns the error with a message, has undone
     * what it did, and init undoes the rest. */
    int (*start)(int gc_mode, gy_errmsg *err);
    /* gy_runtime_shutdown, once it found every user thread detached, before
     * anything else: stop what `start` started (join the internal thread,
     * which detaches itself). May block. */
    void (*stop)(void);
    /* gy_thread_detach on the calling thread, first: answer or finish what
     * the collector holds for this thread. May block (quiescent). */
    void (*thread_detach)(void);
    /* The touch (collector/DESIGN.md 9.3, T1/T2): a thread whose gc_watch
     * is set is about to change ob's count, hand it out, or install or
     * remove a reference to it. Stamps ob (a tracked object; core calls it
     * for no other) and returns true when ob was SEALED, so that a
     * try-incref or a merge must ask doom_check. Lock-free, O(1). */
    bool (*touch)(gy_object *ob);
    /* A try-incref (GY__DOOM_UPGRADE) or a merge or disown (GY__DOOM_MERGE)
     * found ob sealed (D1): false refuses the upgrade (ob is doomed; the
     * merge always proceeds). Takes the collector's doom lock, O(1). */
    bool (*doom_check)(gy_object *ob, int why);
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

/* gy__thread_attach_internal: gy_thread_attach for a thread of the runtime's
 * own (the collector's): it is not counted as a user thread by
 * gy_runtime_shutdown's "every thread detached" check. Same returns. */
int gy__thread_attach_internal(const gy_thread_options *opts, gy_errmsg *err);

enum { GY__DOOM_UPGRADE = 0, GY__DOOM_MERGE = 1 };

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
