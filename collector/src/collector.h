/* collector/src/collector.h: the collector's state and the word it keeps
 * per tracked cell (internal; collector/DESIGN.md has the long form).
 *
 * The collector reads core's segment layout (core/src/heap.h) directly: it
 * walks heaps and segments and keeps one 32-bit word per cell of a tracked
 * type (gy__segment.gcw), which core sets to 0 (tracked, generation 0) when
 * it hands the cell out.
 */
#ifndef GYRE_COLLECTOR_H
#define GYRE_COLLECTOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "gyre/gc.h"
#include "heap.h"

/* --- the word ----------------------------------------------------------
 * bits 0-1 generation (3: permanent, frozen)
 * bit  2   CANDIDATE  in the current collection's candidate array
 * bit  3   SCANNED    marking: its references have been visited; later, in
 *                     the trash: ROOT, a seed of the closure being computed
 * bit  4   REACHABLE  reachable from outside the candidates
 * bit  5   UNCOLL     reachable from a legacy finalizer (uncollectable)
 * bit  6   PASSED     marking: the linear pass has gone by it; outside a
 *                     collection: HIDDEN, a member of a trash set whose
 *                     clears were handed to owner threads (phase_clear)
 * bits 7-31 VALUE     gc_refs while counting; in the trash, its index
 * Outside a collection a live object's word holds only its generation, or
 * its generation | HIDDEN. */
#define GC_GEN_MASK 3u
#define GC_PERMANENT 3u
#define GC_CANDIDATE (1u << 2)
#define GC_SCANNED (1u << 3)
#define GC_ROOT (1u << 3) /* the same bit, used after marking */
#define GC_REACHABLE (1u << 4)
#define GC_UNCOLL (1u << 5)
#define GC_PASSED (1u << 6)
#define GC_HIDDEN (1u << 6) /* the same bit, outside a collection */
/* Outside the stopped phases: an object the collector is destroying, never
 * handed out (CANDIDATE: this collection's trash; HIDDEN: phase_clear). */
#define GC_DESTROYING (GC_CANDIDATE | GC_HIDDEN)
/* Concurrent mode (collector/DESIGN.md 9.2): the collector's numbers live
 * in gy__segment.gcv; bits 3 and 7-15 are not used but for SEALED, and the
 * TAG of the last collection that saw a touch takes bits 16-31. */
#define GC_SEALED (1u << 7)
#define GC_TAG_SHIFT GY__GCW_TAG_SHIFT
#define GC_TAG_MASK (0xFFFFu << GC_TAG_SHIFT)
_Static_assert(GC_CANDIDATE == GY__GCW_CANDIDATE, "core and the collector agree on CANDIDATE");
#define GC_SHIFT 7
#define GC_VALUE_MAX ((1u << (32 - GC_SHIFT)) - 1)
#define GC_FLAGS_MASK ((1u << GC_SHIFT) - 1)

/* The word of a tracked object, NULL for an untracked one. */
static inline uint32_t *gc_word(const gy_object *ob) {
    gy__segment *seg = gy__segment_of(ob);
    return seg->gcw != NULL ? &seg->gcw[gy__cell_index(seg, ob)] : NULL;
}

/* The word of an object known to be tracked (a candidate). */
static inline uint32_t *gc_cand_word(const gy_object *ob) {
    gy__segment *seg = gy__segment_of(ob);
    return &seg->gcw[gy__cell_index(seg, ob)];
}

static inline const gy_type *gc_type_of(const gy_object *ob) { return gy__segment_of(ob)->type; }

/* --- state (gc.c) ------------------------------------------------------ */
typedef struct gc_callback {
    gy_gc_callback_fn fn;
    void *arg;
} gc_callback;

typedef struct gc_state {
    /* Configuration and statistics: guarded by `lock` (a leaf: never held
     * while stopping the world, calling user code or allocating objects). */
    pthread_mutex_t lock;
    bool enabled;
    long threshold[GY_GC_GENERATIONS];
    long count[GY_GC_GENERATIONS]; /* [1], [2]; [0] lives in rt.gc_young */
    uint64_t long_lived_total;     /* generation 2's size after the last full collection */
    uint64_t long_lived_pending;   /* objects moved into generation 2 since */
    _Atomic unsigned debug;        /* GY_GC_DEBUG_*; relaxed: read once per collection */
    gy_gc_gen_stats stats[GY_GC_GENERATIONS];
    gy_gc_info info;
    gc_callback callbacks[GY_GC_CALLBACKS_MAX];
    size_t ncallbacks;
    /* One collection (or walk: freeze, get_objects) at a time. Taken by a
     * thread that is quiescent while it waits, so a world stop never waits
     * for a thread blocked here. */
    pthread_mutex_t collect_lock;
    /* The garbage list; collect_lock for the collector, `lock` for its
     * pointer. Owned by the collector; dropped at runtime shutdown. */
    gy_list *garbage;
    /* Concurrent mode: an automatic collection is asked of the collector's
     * thread or running. Written under `lock` (set by a mutator's safe
     * point, cleared by the thread after the collection); read relaxed
     * without it as a hint, so safe points that find it set cost one load.
     * While set, rt.gc_young_limit is GC_SOFT_BEHIND thresholds
     * (gy__gc_limit_update): the throttle's trigger. */
    _Atomic bool auto_requested;
    /* Clears of trash handed to owner threads and not yet run there
     * (phase_clear, gy__gc_posted_clear_done); while above zero, members of
     * those sets that outlived their clear stay hidden. Atomic RMW. */
    _Atomic int64_t posted_clears;
} gc_state;

extern gc_state gy__gc;

/* Take collect_lock from an attached thread: quiescent while waiting. */
void gy__gc_collect_lock(void);

/* gc.c, for thread.c. One collection with its gc callbacks (collect_lock
 * held); `automatic`: counted in gy_gc_info.automatic, else explicit_. */
void gy__gc_collect_with_callbacks(int generation, bool automatic, gy_gc_result *res);
/* Which generation thresholds call for, or -1 (`lock` held). */
int gy__gc_generation_due(void);
/* rt.gc_young_limit from enabled, threshold 0 and auto_requested (`lock`). */
void gy__gc_limit_update(void);
/* Concurrent mode's throttle: how far behind (in thresholds 0) generation 0
 * may get while an automatic collection is asked for or running, before a
 * mutator's safe point waits for it (gc.c, throttle_if_behind): from
 * GC_SOFT_BEHIND on, waits of at most the pause goal with a run between
 * them; from GC_BEHIND on (the hard limit), a wait until the collection
 * ends. */
#define GC_BEHIND 16
#define GC_SOFT_BEHIND 8

/* --- the collector's thread (thread.c) ----------------------------------
 * The mode of the running runtime (GY_GC_MODE_STW or _CONCURRENT), DEFAULT
 * when none runs. Relaxed: set at runtime start before it is used. */
int gy__gc_mode(void);
/* The start/stop/thread_detach hooks (gc_hooks.h). `start` resolves
 * GY_GC_MODE_DEFAULT (GYRE_GC_MODE) and, concurrent, starts the thread. */
int gy__gc_thread_start(int gc_mode, gy_errmsg *err);
void gy__gc_thread_stop(void);
void gy__gc_thread_detach(void);
/* After gy__gc_thread_stop and the shutdown hook: no mode any more. */
void gy__gc_mode_reset(void);
/* Concurrent mode: wake the thread for the automatic collection a safe
 * point found due (the caller set auto_requested). Never blocks long. */
void gy__gc_thread_wake_auto(void);
/* Wait, quiescent, until no automatic collection is asked for or running
 * (or the thread stops), or until deadline_ns (gy__clock_ns time; 0: no
 * deadline). A mutator that fell behind (pacing.c). */
void gy__gc_thread_wait_auto(uint64_t deadline_ns);
/* Concurrent mode, on an attached plain thread: queue a request and wait
 * (quiescent) for its result. GY_ESTATE when the thread is stopped. */
int gy__gc_thread_collect(int generation, gy_gc_result *out, gy_errmsg *err);
/* Concurrent mode: queue an asynchronous request for the calling thread. */
int gy__gc_thread_collect_async(int generation, gy_gc_result_fn done, void *arg, gy_errmsg *err);
/* Whether the calling thread has asynchronous requests whose `done` has not
 * run (thread-local, no lock); run those already answered (its safe point). */
bool gy__gc_thread_has_requests(void);
void gy__gc_thread_answer(void);
/* True on the collector's own thread. */
bool gy__gc_on_thread(void);
/* Whether concurrent mode marks concurrently (GYRE_GC_MARK=concurrent). */
bool gy__gc_mark_concurrent(void);

/* --- the algorithm (collect.c) ------------------------------------------
 * gy__gc_run: one collection of `generation` on the calling (attached)
 * thread, collect_lock held, world running. Fills `res`, updates counts and
 * statistics; runs no gc callbacks (the caller does). */
void gy__gc_run(int generation, gy_gc_result *res);

/* Walks with the world stopped (collect.c); collect_lock held. */
typedef void (*gc_cell_fn)(gy_object *ob, uint32_t *word, gy__segment *seg, void *arg);
/* Call fn for every live tracked object whose generation's bit is in
 * `gens` (threads_lock held: between gy__world_stop and resume). */
void gy__gc_walk(unsigned gens, gc_cell_fn fn, void *arg);
/* World stopped: generation 0's count starts again (a collection, freeze). */
void gy__gc_young_reset(void);
/* The hooks core calls (gc_hooks.h): whether ob is trash being destroyed
 * (its word carries GC_DESTROYING), and a handed-off clear finished. */
bool gy__gc_hidden(const gy_object *ob);
void gy__gc_posted_clear_done(gy_object *ob);
/* Free the candidate array (runtime shutdown). */
void gy__gc_release_buffers(void);

/* Shared by both modes' collections (collect.c). Words are reset by CAS,
 * keeping a touch's TAG. */
void gy__gc_word_reset(uint32_t *w, uint32_t v);
void gy__gc_gens_add(const gy_object *ob, unsigned gen);
/* seg_lock held: keep in h->young_segs the segments with generation 0. */
void gy__gc_young_filter(gy__heap *h);
/* Reset the words of objs[lo..hi) to newgen and drop the collector's hold. */
void gy__gc_release_kept(gy_object **objs, size_t lo, size_t hi, unsigned newgen);
void gy__gc_log_objects(gy_object *const *objs, size_t lo, size_t hi, const char *what);
void gy__gc_garbage_append(gy_object *const *objs, size_t lo, size_t hi, bool all);
/* Run the finalizers of objs[lo..hi) (once each; loop-affine ones of other
 * threads are posted to their owners: then returns true, the set waits). */
bool gy__gc_finalize_set(gy_object **objs, size_t lo, size_t hi, gy_gc_info *info, bool *user_code);
/* Clear the held trash objs[lo..hi) and drop the holds (section 2 step 6). */
void gy__gc_clear_set(gy_object **objs, size_t lo, size_t hi, unsigned newgen);
/* Counts and statistics after a collection. */
void gy__gc_account(int generation, const gy_gc_result *res, size_t nreach, const gy_gc_info *info,
                    unsigned debug);

/* --- concurrent mode (concurrent.c, handshake.c) --------------------------
 * gy__gc_run_concurrent: one collection of `generation` on the collector's
 * thread, collect_lock held, without stopping the world (9.5); after three
 * aborted sets in a row of one generation, the next one is gy__gc_run
 * (the counted fallback, 9.8). */
void gy__gc_run_concurrent(int generation, gy_gc_result *res);
/* Free its arrays (runtime shutdown). */
void gy__gc_release_concurrent_buffers(void);
/* The touch and doom_check hooks (gc_hooks.h). */
bool gy__gc_touch_hook(gy_object *ob);
bool gy__gc_doom_check_hook(gy_object *ob, int why);
/* Store the phase `bits` (GY__PHASE_WATCH | tag, or 0) with a new epoch and
 * ask every attached thread to answer; with `wait`, return once each
 * answered or is quiescent (the time it took is the time to safepoint).
 * The collector's thread only; takes threads_lock. */
void gy__gc_handshake(uint32_t bits, bool wait);
/* --- increments and pacing (pacing.c) -------------------------------------
 * gy__gc_increment_begin / _point / _end: the running concurrent
 * collection's increments (the collector's thread); _point passes an epoch
 * quiescent state once the budget is spent or a world stop waits, and
 * returns true once gy_gc_abort asked this collection to stop (the caller
 * decides whether it still can; concurrent.c counts the stops it makes in
 * gy__gc_aborted_runs); _end adds the collection's increments to the
 * totals. gy__gc_throttle: a mutator's
 * safe point found the collector behind: wait for it, within the pause
 * goal (`hard`: past the hard limit, until the collection ends). gy__gc_pacing_reset: the
 * default settings (runtime shutdown, as the thresholds). */
void gy__gc_increment_begin(void);
bool gy__gc_increment_point(void);
void gy__gc_increment_end(void);
void gy__gc_throttle(bool hard);
void gy__gc_pacing_reset(void);
extern _Atomic uint64_t gy__gc_increments_total, gy__gc_epoch_hold_max_ns,
    gy__gc_epoch_hold_last_ns, gy__gc_aborted_runs;

/* Concurrent-mode counters (relaxed atomics; thread.c reports them). */
extern _Atomic uint64_t gy__gc_handshakes, gy__gc_aborted_sets, gy__gc_anomalies,
    gy__gc_fallback_stops;

#endif /* GYRE_COLLECTOR_H */
