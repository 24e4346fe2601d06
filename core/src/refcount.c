/* core/src/refcount.c: biased reference counts, merges, and freeing.
 *
 * ref_local is the owner's half (relaxed load + relaxed store, owner only);
 * ref_shared is everyone else's, count << 7 | flags (heap.h), changed with
 * atomic RMW. Invariant: count(shared) + (local != UNOWNED ? local : 0) is the
 * number of references. The rules and races are in core/DESIGN.md section 3;
 * section 3a has a row (T1..T21) for every transition made here, and the
 * three rules they keep: whatever another thread can try-incref is marked
 * reachable; such an object dies only through a CAS installing MERGED; no
 * plain store races a CAS, and nothing is touched after the CAS that lets
 * another thread free it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gc_hooks.h"
#include "gc_touch.h"
#include "gyre/failpoint.h"
#include "heap.h"
#include "trace_hooks.h"

static inline int32_t rc_count(int32_t shared) { return shared >> GY__RC_SHIFT; } /* arithmetic */
static inline int32_t rc_make(int32_t count, int32_t flags) {
    return (int32_t)((uint32_t)count << GY__RC_SHIFT) | flags;
}

_Atomic(const gy__gc_hooks *) gy__gc_hooks_current;

void gy__gc_hooks_install(const gy__gc_hooks *hooks) {
    /* release: the hooks' table is complete before a mutator loads it. */
    atomic_store_explicit(&gy__gc_hooks_current, hooks, memory_order_release);
}

/* The refcount barrier: a container's count dropped but stayed above zero. */
static void barrier_decref_nonzero(gy_object *ob) {
    const gy__gc_hooks *hooks = gy__gc_hooks_get();
    if (hooks != NULL && hooks->decref_nonzero != NULL &&
        gy__type_tracked(gy__segment_of(ob)->type)) {
        hooks->decref_nonzero(ob);
    }
}

static inline bool is_owner(gy__heap *h, const gy_object *ob) {
    return h != NULL && gy__segment_of(ob)->heap == h;
}

/* Race windows a test may stretch (core.race_load_vs_last_clear): at each
 * RACE_WINDOW the hook a unit test installed is called with the window's
 * name; in builds with failpoints, a firing failpoint of that name spins a
 * few microseconds instead. Never on the private free path; gy_load pays one
 * relaxed load of the hook. */
_Atomic(gy__race_hook_fn) gy__race_window_hook;

#if defined(GY_FAILPOINTS) && GY_FAILPOINTS
static void race_widen(void) {
    for (volatile int i = 0; i < 4000; i++) {
    }
}
#define RACE_FAILPOINT(name) (gy_failpoint(name) ? race_widen() : (void)0)
#else
#define RACE_FAILPOINT(name) ((void)0)
#endif

static inline void race_window(const char *name) {
    /* relaxed: the hook is set before the test's threads start. */
    gy__race_hook_fn hook = atomic_load_explicit(&gy__race_window_hook, memory_order_relaxed);
    if (hook != NULL) {
        hook(name);
    } else {
        RACE_FAILPOINT(name);
    }
}

void gy__object_mark_reachable(gy_object *ob) {
    /* relaxed: set while the caller holds a reference, before the pointer
     * is made reachable; the publication that follows (a release exchange,
     * a lock) orders it for the thread that will try-incref. */
    if (!(atomic_load_explicit(&ob->gy__shared, memory_order_relaxed) & GY__RC_PUBLISHED)) {
        atomic_fetch_or_explicit(&ob->gy__shared, GY__RC_PUBLISHED, memory_order_relaxed);
    }
}

/* --- the outbox: objects handed to their owner ---------------------------- */

void gy__refcount_flush_outbox(gy__heap *h) {
    gy__outbox *box = h->outbox;
    if (box == NULL || box->count == 0) {
        return;
    }
    h->outbox = NULL;
    gy__heap *dest = box->dest;
    /* The push publishes the slots (ck_stack_push_upmc is a release CAS). */
    ck_stack_push_upmc(&dest->inbox, &box->entry);
    /* release: the owner that sees the bit also sees the node. */
    atomic_fetch_or_explicit(&dest->pending, GY__PEND_INBOX, memory_order_release);
    /* seq_cst: pairs with the fence in gy_thread_detach (a detaching owner
     * either sees our node or we see it DETACHED). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&dest->state, memory_order_seq_cst) == GY__DETACHED) {
        /* Nobody owns dest now: this thread drains orphans at its next safe
         * point (all of dest's objects were merged when it detached). */
        atomic_fetch_or_explicit(&h->pending, GY__PEND_ORPHAN, memory_order_relaxed);
    } else {
        gy__heap_wake(dest);
    }
}

/* What a slot asks of the owner (its low bits; objects are 8-aligned). */
enum { SLOT_MERGE = 0, SLOT_FREE = 1, SLOT_FINALIZE = 2, SLOT_CLEAR = 3, SLOT_KIND = 3 };

/* Hand `ob` to its owning heap: a merge, a free of a loop-affine object, or
 * a finalizer call. Returns false when no node could be allocated; the
 * object then stays alive (a bounded leak, never a use-after-free). */
static bool outbox_push(gy__heap *h, gy__heap *dest, gy_object *ob, unsigned kind) {
    if (h == NULL) {
        return false; /* detached threads must not touch objects */
    }
    gy__outbox *box = h->outbox;
    if (box != NULL && (box->dest != dest || box->count == GY__OUTBOX_SLOTS)) {
        gy__refcount_flush_outbox(h);
        box = NULL;
    }
    if (box == NULL) {
        box = gy_failpoint("internal") ? NULL : malloc(sizeof *box);
        if (box == NULL) {
            /* The object cannot reach its owner and stays alive (a leak the
             * shutdown check names, never a use-after-free), counted.
             * relaxed: a statistic. */
            atomic_fetch_add_explicit(&h->internal_failures, 1, memory_order_relaxed);
            return false;
        }
        box->dest = dest;
        box->count = 0;
        h->outbox = box;
    }
    box->slots[box->count++] = (uintptr_t)ob | kind;
    return true;
}

/* --- freeing ---------------------------------------------------------- */

static void counters_free(gy__heap *h, gy__segment *seg) {
    GY__COUNTER_ADD(h->counters[seg->type_index].freed, 1);
    if (seg->gcw != NULL) {
        gy__gc_young_add(h, -1); /* a tracked object: generation 0's count */
    }
}

/* The last step of every free: forget the trace, count the free, retire
 * the id, and give the cell back (at once, or after a grace period). `s` is
 * the object's final shared word. */
static inline void release_cell(gy__heap *h, gy__segment *seg, gy_object *ob, int32_t s) {
    gy__trace_free(ob);
    counters_free(h, seg);
    h->nfreed++;
    if (s & GY__RC_ID_TAKEN) {
        /* Its id is out there: a new object in this cell gets a new one.
         * relaxed: id lookups re-check the serial after taking a reference. */
        uint32_t i = gy__cell_index(seg, ob);
        atomic_fetch_add_explicit(&seg->serials[i], 1, memory_order_relaxed);
    }
    if (gy__arena_limbo_maybe(h, seg, ob)) {
        return; /* C1: a watching collection's candidate waits for its end */
    }
    /* ASan builds always take the grace period: it is their quarantine, so a
     * use after free stays poisoned for a while instead of being reused. */
    if (!GY_ASAN && !(s & (GY__RC_PUBLISHED | GY__RC_ID_TAKEN)) && seg->heap == h) {
        /* No other thread can hold or find a pointer to it: reuse at once. */
        gy__arena_free_cell_now(h, ob);
    } else {
        gy__arena_free_cell(h, ob);
    }
}

/* Finalize (once), clear, and free a dead object now. */
static void object_free_now(gy__heap *h, gy_object *ob) {
    gy__segment *seg = gy__segment_of(ob);
    gy_type *type = seg->type;
    int32_t s = atomic_load_explicit(&ob->gy__shared, memory_order_acquire);
    if (type->finalize != NULL && !(s & GY__RC_FINALIZED)) {
        /* Run the finalizer with one (shared) reference so that increfs and
         * decrefs inside it balance; more than one afterwards = resurrected.
         * The flags that outlive a resurrection are kept. */
        /* Here the shared word is exactly 0 (nobody else can find the
         * object) or MERGED with count 0 (every try-incref refuses it), so
         * no other thread writes it; still a CAS, never a plain store, so
         * that no increment can ever be overwritten (DESIGN.md section 3a). */
        /* T2: the finalizer's reference is a count change like any other,
         * and so is its drop below (collector/DESIGN.md 9.3). */
        gy__gc_xtouch(h, ob);
        atomic_store_explicit(&ob->gy__local, GY__UNOWNED, memory_order_relaxed);
        int32_t one;
        do {
            one = (s | GY__RC_MERGED | GY__RC_FINALIZED) + GY__RC_ONE;
            /* relaxed: this thread already saw every decrement (acquire
             * above); the finalizer's own accesses are ordered by the CAS
             * that drops this reference below. */
        } while (!atomic_compare_exchange_weak_explicit(
            &ob->gy__shared, &s, one, memory_order_relaxed, memory_order_relaxed));
        type->finalize(ob);
        gy__gc_xtouch(gy__tls_heap, ob); /* T2: before the drop */
        s = atomic_load_explicit(&ob->gy__shared, memory_order_acquire);
        for (;;) {
            int32_t n = s - GY__RC_ONE;
            if (rc_count(n) != 0) {
                /* Resurrected: drop the finalizer's reference and live on. */
                if (atomic_compare_exchange_weak_explicit(
                        &ob->gy__shared, &s, n, memory_order_acq_rel, memory_order_acquire)) {
                    return;
                }
                continue;
            }
            if (atomic_compare_exchange_weak_explicit(&ob->gy__shared, &s, n, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                s = n;
                break;
            }
        }
    }
    if (s & GY__RC_WEAKREFS) {
        /* Clear the weak references and run their callbacks (no lock held),
         * before the object's own references go. */
        gy__weakref_clear_all(ob);
    }
    if (type->clear != NULL) {
        type->clear(ob);
        s = atomic_load_explicit(&ob->gy__shared, memory_order_acquire);
    }
    release_cell(h, seg, ob, s);
}

static bool deferred_push(gy__heap *h, gy_object *ob) {
    if (h->ndeferred == h->deferred_cap) {
        uint32_t cap = h->deferred_cap ? h->deferred_cap * 2 : 256;
        gy_object **grown = realloc(h->deferred, cap * sizeof *grown);
        if (grown == NULL) {
            return false;
        }
        h->deferred = grown;
        h->deferred_cap = cap;
    }
    h->deferred[h->ndeferred++] = ob;
    return true;
}

uint32_t gy__refcount_drain_deferred(gy__heap *h, uint32_t budget) {
    if (h->ndeferred == 0) {
        return 0;
    }
    uint64_t t0 = gy__clock_ns();
    uint64_t start = h->nfreed;
    h->depth++; /* frees below push onto the stack instead of recursing */
    /* The budget counts every object freed, nested frees included. */
    while (h->ndeferred > 0 && (budget == 0 || h->nfreed - start < budget)) {
        gy_object *ob = h->deferred[--h->ndeferred];
        object_free_now(h, ob);
    }
    h->depth--;
    uint64_t done = h->nfreed - start;
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(&h->cascade_objects, done, memory_order_relaxed);
    uint64_t t1 = gy__clock_ns();
    atomic_fetch_add_explicit(&h->cascade_ns, t1 - t0, memory_order_relaxed);
    /* The program's own cascade (or, rarely, the deferred tail of one a
     * collector's clear started): reported apart, not a collector pause. */
    gy__pause_record(h, GY_PAUSE_PROGRAM_CASCADE, t0, t1);
    if (h->ndeferred > 0) {
        /* Out of budget: continue at the next safe point, which we ask for. */
        atomic_fetch_or_explicit(&h->pending, GY__PEND_DEFERRED, memory_order_relaxed);
        gy__heap_wake(h);
    }
    return h->ndeferred;
}

/* Free a dead object on this thread now (or via the trashcan stack). */
static void dealloc_here(gy__heap *h, gy_object *ob) {
    if (h->depth >= GY__TRASH_DEPTH && deferred_push(h, ob)) {
        return; /* the trashcan: freed iteratively by the outermost level */
    }
    h->depth++;
    object_free_now(h, ob);
    h->depth--;
    if (h->depth == 0 && h->ndeferred > 0) {
        (void)gy__refcount_drain_deferred(h, h->budget);
    }
}

void gy__object_dealloc(gy_object *ob) {
    gy__heap *h = gy__tls_heap;
    gy__segment *seg = gy__segment_of(ob);
    if ((seg->type->flags & GY_TYPE_LOOP_AFFINE) && seg->heap != h) {
        /* Loop-affine: the owner finalizes and frees it at its safe point. */
        (void)outbox_push(h, seg->heap, ob, SLOT_FREE);
        return;
    }
    dealloc_here(h, ob);
}

/* --- incref / decref ------------------------------------------------------ */

static inline void incref_unwatched(gy__heap *h, gy_object *ob) {
    if (is_owner(h, ob)) {
        uint32_t l = atomic_load_explicit(&ob->gy__local, memory_order_relaxed);
        if (l != GY__UNOWNED) {
            atomic_store_explicit(&ob->gy__local, l + 1, memory_order_relaxed);
            return;
        }
    }
    /* relaxed: an increment needs no ordering (the caller already holds a
     * reference); decrements order the free. */
    atomic_fetch_add_explicit(&ob->gy__shared, GY__RC_ONE, memory_order_relaxed);
}

/* The watched paths are out of line and reached by a tail call, so the fast
 * paths keep no stack frame for the barrier's call. */
__attribute__((noinline)) static void incref_watched(gy__heap *h, gy_object *ob) {
    (void)gy__gc_touch_slow(ob); /* T1: before the count changes */
    incref_unwatched(h, ob);
}

void gy_incref(void *obj) {
    gy_object *ob = obj;
    gy__heap *h = gy__tls_heap;
    if (gy__gc_watching(h)) {
        incref_watched(h, ob);
        return;
    }
    incref_unwatched(h, ob);
}

/* The owner's local count reached zero (ref_local is 0). This is where an
 * object leaves owner-private counting (core/DESIGN.md section 3a, row T5):
 * - a shared word of exactly 0 means no other thread holds a reference, no
 *   hand-off is queued, and no other thread can find the object (never
 *   published, no id, no weak references: nothing to try-incref it from),
 *   so it is freed at once;
 * - otherwise one CAS marks it MERGED (ref_local becomes UNOWNED first; only
 *   this thread reads it). A try-incref that succeeded before the CAS is in
 *   the count the CAS installs, so the object lives on and that thread's
 *   decrement frees it; one after the CAS sees MERGED with count 0 and
 *   refuses. Freeing without this CAS let a try-incref succeed on an object
 *   already being freed (the use-after-free of issue 13). */
static void merge_zero_local(gy_object *ob) {
    /* acquire: see every other thread's accesses before their decrements. */
    int32_t s = atomic_load_explicit(&ob->gy__shared, memory_order_acquire);
    if (s == 0) {
        gy__object_dealloc(ob); /* the common case: private to this thread */
        return;
    }
    race_window("race.last_decref");
    atomic_store_explicit(&ob->gy__local, GY__UNOWNED, memory_order_relaxed);
    int32_t s0 = s, n;
    do {
        n = s | GY__RC_MERGED;
        /* acq_rel: on success we may free; see every other thread's writes
         * (acquire) and order ours before any thread that frees later. */
    } while (!atomic_compare_exchange_weak_explicit(&ob->gy__shared, &s, n, memory_order_acq_rel,
                                                    memory_order_acquire));
    if (rc_count(n) == 0 && !(n & GY__RC_QUEUED)) {
        gy__object_dealloc(ob);
        return;
    }
    /* count 0 with QUEUED: the queue's consumer frees it. Otherwise other
     * threads hold references. If none did when we looked, only a
     * try-incref can have made one since: it won the race (relaxed: a
     * statistic). */
    if (rc_count(s0) == 0 && !(s0 & GY__RC_QUEUED) && rc_count(n) > 0 && gy__tls_heap != NULL) {
        atomic_fetch_add_explicit(&gy__tls_heap->last_ref_races, 1, memory_order_relaxed);
    }
}

/* Decrement the shared half (non-owner, or a merged object). */
static void decref_shared(gy__heap *h, gy_object *ob) {
    int32_t s = atomic_load_explicit(&ob->gy__shared, memory_order_relaxed);
    int32_t n;
    bool queue, dealloc;
    do {
        n = s - GY__RC_ONE;
        queue = dealloc = false;
        if (s & GY__RC_MERGED) {
            dealloc = rc_count(n) == 0 && !(s & GY__RC_QUEUED);
        } else if (rc_count(n) < 0 && !(s & GY__RC_QUEUED)) {
            n |= GY__RC_QUEUED;
            queue = true;
        }
        /* acq_rel: our accesses happen before the free (release), and the
         * freeing thread sees everyone's (acquire). */
    } while (!atomic_compare_exchange_weak_explicit(&ob->gy__shared, &s, n, memory_order_acq_rel,
                                                    memory_order_relaxed));
    if (queue) {
        (void)outbox_push(h, gy__segment_of(ob)->heap, ob, SLOT_MERGE);
    } else if (dealloc) {
        gy__object_dealloc(ob);
    } else if (rc_count(n) > 0) {
        barrier_decref_nonzero(ob);
    }
}

/* The owner's count just reached zero: free at once, in one function, an
 * object nothing else can be involved with — no other thread's count, no
 * flag (never published, no id taken, no weak references, not finalized),
 * a type without finalizer, not inside a deep free. Returns false, having
 * done nothing, when any of that does not hold (the general path runs). */
static inline bool free_simple(gy__heap *h, gy_object *ob) {
    gy__segment *seg = gy__segment_of(ob);
    const gy_type *type = seg->type;
    /* acquire: as merge_zero_local; other threads' decrements happened before. */
    if (atomic_load_explicit(&ob->gy__shared, memory_order_acquire) != 0 ||
        type->finalize != NULL || h->depth != 0) {
        return false;
    }
    if (type->clear != NULL) {
        h->depth++;
        type->clear(ob);
        h->depth--;
        if (atomic_load_explicit(&ob->gy__local, memory_order_relaxed) != 0) {
            return true; /* clear took a new reference to it: it lives on */
        }
        if (atomic_load_explicit(&ob->gy__shared, memory_order_acquire) != 0) {
            /* clear published it or handed it to another thread: the general
             * path decides, through its CAS (clear may run twice). */
            merge_zero_local(ob);
            return true;
        }
    }
    release_cell(h, seg, ob, 0); /* no flags: reused at once (not under ASan) */
    if (h->ndeferred > 0) {
        (void)gy__refcount_drain_deferred(h, h->budget);
    }
    return true;
}

static void decref_unwatched(gy__heap *h, gy_object *ob);

__attribute__((noinline)) static void decref_watched(gy__heap *h, gy_object *ob) {
    (void)gy__gc_touch_slow(ob); /* T1: before the count changes */
    decref_unwatched(h, ob);
}

void gy_decref(void *obj) {
    gy_object *ob = obj;
    gy__heap *h = gy__tls_heap;
    if (gy__gc_watching(h)) {
        decref_watched(h, ob);
        return;
    }
    decref_unwatched(h, ob);
}

static inline void decref_unwatched(gy__heap *h, gy_object *ob) {
    if (is_owner(h, ob)) {
        uint32_t l = atomic_load_explicit(&ob->gy__local, memory_order_relaxed);
        if (l != GY__UNOWNED) {
            if (l > 1) {
                atomic_store_explicit(&ob->gy__local, l - 1, memory_order_relaxed);
                barrier_decref_nonzero(ob);
                return;
            }
            atomic_store_explicit(&ob->gy__local, 0, memory_order_relaxed);
            if (!free_simple(h, ob)) {
                merge_zero_local(ob);
            }
            return;
        }
    }
    decref_shared(h, ob);
}

void gy_xincref(void *obj) {
    if (obj != NULL) {
        gy_incref(obj);
    }
}

void gy_xdecref(void *obj) {
    if (obj != NULL) {
        gy_decref(obj);
    }
}

size_t gy_refcount(const void *obj) {
    int64_t total = gy__refcount_total(obj);
    return total > 0 ? (size_t)total : 0;
}

/* Try to take a reference to an object that may be dying; false if dead. */
bool gy__try_incref(gy__heap *h, gy_object *ob) {
#ifndef NDEBUG
    /* The invariant behind the last-decrement CAS (DESIGN.md section 3a):
     * whatever another thread can try-incref without holding a reference
     * carries PUBLISHED, ID_TAKEN or WEAKREFS, or is dead (MERGED, count 0).
     * A new call site that forgets gy__object_mark_reachable stops here. */
    int32_t s0 = atomic_load_explicit(&ob->gy__shared, memory_order_relaxed);
    if (!(s0 & (GY__RC_PUBLISHED | GY__RC_ID_TAKEN | GY__RC_WEAKREFS)) &&
        !((s0 & GY__RC_MERGED) && rc_count(s0) == 0)) {
        gy__log(GY_LOG_ERROR, "core", "try-incref of an object not marked reachable (%p)",
                (void *)ob);
        abort();
    }
#endif
    /* T1 and D1: touch first; an object a running collection has sealed is
     * upgraded only if its set is not doomed (the doom lock decides). */
    if (gy__gc_touch(h, ob) && !gy__gc_doom_check(ob, GY__DOOM_UPGRADE)) {
        if (h != NULL) {
            atomic_fetch_add_explicit(&h->tryincref_refused, 1, memory_order_relaxed);
        }
        return false;
    }
    if (is_owner(h, ob)) {
        uint32_t l = atomic_load_explicit(&ob->gy__local, memory_order_relaxed);
        if (l != GY__UNOWNED &&
            !(atomic_load_explicit(&ob->gy__shared, memory_order_relaxed) & GY__RC_DOOMED)) {
            /* Owned and not merged: only this thread can take it to zero. */
            atomic_store_explicit(&ob->gy__local, l + 1, memory_order_relaxed);
            return true;
        }
    }
    int32_t s = atomic_load_explicit(&ob->gy__shared, memory_order_relaxed);
    do {
        if ((s & GY__RC_DOOMED) || ((s & GY__RC_MERGED) && rc_count(s) == 0)) {
            /* dead, being freed, or doomed by the collector. relaxed: a
             * statistic. */
            if (h != NULL) {
                atomic_fetch_add_explicit(&h->tryincref_refused, 1, memory_order_relaxed);
            }
            return false;
        }
        /* acquire on success: pairs with the release of the storing thread. */
    } while (!atomic_compare_exchange_weak_explicit(&ob->gy__shared, &s, s + GY__RC_ONE,
                                                    memory_order_acquire, memory_order_relaxed));
    return true;
}

gy_object *gy_load(gy_ref *field) {
    gy__heap *h = gy__tls_heap;
    for (;;) {
        /* acquire: the object's initialisation happens before we read it. */
        gy_object *ob = atomic_load_explicit(&field->gy__ptr, memory_order_acquire);
        if (ob == NULL) {
            return NULL;
        }
        /* The cell cannot be reused while we are here: this thread is inside
         * its epoch section and passes no quiescent state in this loop. */
        race_window("race.load"); /* one relaxed load when no test hooks it */
        if (gy__try_incref(h, ob)) {
            race_window("race.load_reread");
            if (atomic_load_explicit(&field->gy__ptr, memory_order_acquire) == ob) {
                return ob; /* the field held it while we took our reference */
            }
            gy_decref(ob);
        } else if (atomic_load_explicit(&field->gy__ptr, memory_order_acquire) == ob) {
            /* Still in the field yet no upgrade: the collector doomed it
             * (cyclic trash about to be cleared). It reads as absent. */
            return NULL;
        }
    }
}

void gy_store_steal(gy_ref *field, void *value) {
    if (value != NULL) {
        /* From now on another thread may try-incref it from the field. */
        gy__object_mark_reachable(value);
    } else if (atomic_load_explicit(&field->gy__ptr, memory_order_relaxed) == NULL) {
        /* Clearing an empty field (a clear run twice): no exchange. A store
         * racing with us is ordered after this clear. */
        return;
    }
    gy_object *old;
    gy__heap *h = gy__tls_heap;
    if (gy__gc_watching(h)) {
        /* T1 while a collection watches: the new value before it is
         * installed, the old one before it leaves the field (read, touch,
         * then the CAS; a racing store makes us touch its value too).
         * acq_rel / acquire: as the exchange below. */
        gy__gc_xtouch(h, value);
        old = atomic_load_explicit(&field->gy__ptr, memory_order_acquire);
        do {
            gy__gc_xtouch(h, old);
        } while (!atomic_compare_exchange_weak_explicit(
            &field->gy__ptr, &old, value, memory_order_acq_rel, memory_order_acquire));
    } else {
        /* acq_rel: publish the new object's contents; see the old one's. */
        old = atomic_exchange_explicit(&field->gy__ptr, value, memory_order_acq_rel);
    }
    const gy__gc_hooks *hooks = gy__gc_hooks_get();
    if (hooks != NULL && hooks->store != NULL && (old != NULL || value != NULL)) {
        hooks->store(field, old, value);
    }
    if (old != NULL) {
        gy_decref(old);
    }
}

void gy_store(gy_ref *field, void *value) {
    if (value != NULL) {
        gy_incref(value);
    }
    gy_store_steal(field, value);
}

void gy_ref_clear(gy_ref *field) { gy_store_steal(field, NULL); }

/* --- the owner's side of the queues ---------------------------------------- */

/* Merge a queued object (we own its segment). */
static void merge_queued(gy__heap *h, gy_object *ob) {
    gy__gc_touch_merge(h, ob); /* T2, D1 */
    int32_t s = atomic_load_explicit(&ob->gy__shared, memory_order_acquire);
    uint32_t l = atomic_load_explicit(&ob->gy__local, memory_order_relaxed);
    /* Give up the local half before the CAS that moves it into the shared
     * word: once that CAS installs MERGED, another thread's decrement may
     * free the object at once, so this thread must not touch it after the
     * CAS (it used to store UNOWNED there: a write to a freed cell). In
     * between, the object is undercounted but not MERGED, and no thread
     * frees an unmerged object (DESIGN.md section 3a, row T8). */
    atomic_store_explicit(&ob->gy__local, GY__UNOWNED, memory_order_relaxed);
    int32_t n;
    bool dealloc;
    do {
        if (s & GY__RC_MERGED) {
            /* Merged since it was queued: we only clear QUEUED. */
            n = s & ~GY__RC_QUEUED;
            dealloc = rc_count(n) == 0;
        } else {
            int32_t total = rc_count(s) + (int32_t)l;
            n = rc_make(total, (s & GY__RC_FLAGS & ~GY__RC_QUEUED) | GY__RC_MERGED);
            dealloc = total == 0;
        }
        /* acq_rel: we may free (acquire every decrement before ours); our
         * accesses happen before a later decrement that frees (release). */
    } while (!atomic_compare_exchange_weak_explicit(&ob->gy__shared, &s, n, memory_order_acq_rel,
                                                    memory_order_acquire));
    race_window("race.merge_queued"); /* from here `ob` may be freed by another thread */
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(&h->merges, 1, memory_order_relaxed);
    if (dealloc) {
        gy__object_dealloc(ob);
    }
}

/* A finalizer call the collector handed to this (owning) thread. */
static void finalize_here(gy_object *ob) {
    const gy_type *type = gy__segment_of(ob)->type;
    /* acq_rel: the flag is set once, by whoever runs the finalizer. */
    int32_t s = atomic_fetch_or_explicit(&ob->gy__shared, GY__RC_FINALIZED, memory_order_acq_rel);
    if (type->finalize != NULL && !(s & GY__RC_FINALIZED)) {
        type->finalize(ob);
    }
    gy_decref(ob); /* the request's reference */
}

/* A clear the collector handed to this (owning) thread. */
static void clear_here(gy_object *ob, bool handed_off) {
    gy__segment_of(ob)->type->clear(ob);
    const gy__gc_hooks *hooks = gy__gc_hooks_get();
    if (handed_off && hooks != NULL && hooks->posted_clear_done != NULL) {
        hooks->posted_clear_done(ob);
    }
    gy_decref(ob); /* the request's reference: usually the last */
}

bool gy__object_post_to_owner(gy_object *ob, gy__post_kind what) {
    gy__heap *h = gy__tls_heap;
    gy__heap *dest = gy__segment_of(ob)->heap;
    if (dest == h) {
        if (what == GY__POST_FINALIZE) {
            finalize_here(ob);
        } else {
            clear_here(ob, false); /* not handed off: no hook */
        }
        return true;
    }
    return outbox_push(h, dest, ob, what == GY__POST_FINALIZE ? SLOT_FINALIZE : SLOT_CLEAR);
}

void gy__refcount_process_nodes(gy__heap *h, ck_stack_entry_t *e) {
    /* The finalizers and clears the collector handed to this thread, and
     * the cascades they start inline, are collector work: one pause per
     * batch, from the first such item to the end of the last. */
    uint64_t work_start = 0, work_end = 0;
    while (e != NULL) {
        ck_stack_entry_t *next = e->next;
        gy__outbox *box = (gy__outbox *)((char *)e - offsetof(gy__outbox, entry));
        for (uint32_t i = 0; i < box->count; i++) {
            gy_object *ob = (gy_object *)(box->slots[i] & ~(uintptr_t)SLOT_KIND);
            switch (box->slots[i] & SLOT_KIND) {
            case SLOT_FREE:
                dealloc_here(h, ob); /* a loop-affine free, now on its owner */
                break;
            case SLOT_FINALIZE:
            case SLOT_CLEAR: {
                uint64_t t = gy__clock_ns();
                work_start = work_start != 0 ? work_start : t;
                if ((box->slots[i] & SLOT_KIND) == SLOT_FINALIZE) {
                    finalize_here(ob);
                } else {
                    clear_here(ob, true);
                }
                work_end = gy__clock_ns();
                break;
            }
            default:
                merge_queued(h, ob);
            }
        }
        free(box);
        e = next;
    }
    if (work_start != 0) {
        gy__pause_record(h, GY_PAUSE_COLLECTOR_WORK, work_start, work_end);
    }
}

void gy__refcount_drain_inbox(gy__heap *h) {
    /* acquire (inside batch_pop): the nodes' slots are visible. */
    gy__refcount_process_nodes(h, ck_stack_batch_pop_upmc(&h->inbox));
}

static int disown_one(gy_object *ob, void *arg) {
    (void)arg;
    uint32_t l = atomic_load_explicit(&ob->gy__local, memory_order_relaxed);
    if (l == GY__UNOWNED) {
        return 0;
    }
    gy__gc_touch_merge(gy__tls_heap, ob); /* T2, D1 */
    atomic_store_explicit(&ob->gy__local, GY__UNOWNED, memory_order_relaxed);
    /* Move the local count into the shared half and mark the object merged.
     * A queued object keeps QUEUED: its queue's consumer frees it. */
    int32_t s = atomic_load_explicit(&ob->gy__shared, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&ob->gy__shared, &s,
                                                  (s + (int32_t)(l * GY__RC_ONE)) | GY__RC_MERGED,
                                                  memory_order_acq_rel, memory_order_relaxed)) {
    }
    return 0;
}

void gy__refcount_disown_all(gy__heap *h) { (void)gy__heap_foreach_object(h, disown_one, NULL); }
