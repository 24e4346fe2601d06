/* gyre/gc.h: the cycle collector, with the contract of Python's gc module.
 *
 * Reference counting frees an object as soon as its last reference goes;
 * it cannot free a cycle (a.next = b; b.next = a). The collector finds such
 * cycles by trial deletion over the *tracked* objects (every object whose
 * type is neither GY_TYPE_LEAF nor GY_TYPE_ACYCLIC) and frees them through
 * each type's clear and the ordinary refcount path. Design: collector/DESIGN.md.
 *
 * Generations. A new tracked object is in generation 0; the survivors of a
 * collection of generation g move to g + 1 (generation 2 stays). Generation
 * 0 is collected when tracked allocations minus frees pass threshold 0,
 * generation 1 when more than threshold 1 collections of generation 0 have
 * run since its last collection, generation 2 likewise after threshold 2
 * collections of generation 1, unless fewer than a quarter of the objects
 * in generation 2 are new since the last full collection (CPython's guard
 * against quadratic full collections). Defaults: 700, 10, 10.
 *
 * Modes (gy_runtime_options.gc_mode, fixed from gy_runtime_init to
 * gy_runtime_shutdown; gy_gc_get_mode tells which one runs). Both run the
 * same stop-the-world algorithm; they differ in which thread runs it:
 *
 *   GY_GC_MODE_CONCURRENT (the default): one background thread of the
 *     runtime, "gyre-gc", attached as a plain thread, runs every collection.
 *     An allocation that crosses threshold 0 only signals it: the mutator's
 *     next safe point checks whether a collection is due and, if so and
 *     none is already asked for or running, wakes the thread and returns at
 *     once (later safe points cost one atomic load while the request is
 *     pending). A mutator waits for the collector in one case only: its safe
 *     point finds generation 0's count at 16 times threshold 0 while the
 *     asked collection has not ended (the collector fell behind); it then
 *     waits, quiescent, for that collection to end (allocation throttling,
 *     reported as a GY_PAUSE_ASSIST pause, gyre/runtime.h). gy_gc_collect queues a
 *     request and waits (quiescent) for its result, and is refused on a
 *     loop thread (GY_ESTATE: loops use gy_gc_collect_async, whose result
 *     is delivered back to the loop). Requests pending when the thread
 *     starts a collection share it (one collection of the oldest
 *     generation asked). gc callbacks, finalizers and weakref callbacks run
 *     on the collector's thread; loop-affine objects are still finalized
 *     and cleared by their owner loops (below). The thread waits quiescent,
 *     so world stops never wait for it.
 *   GY_GC_MODE_STW: no thread; automatic collections run at a safe point of
 *     the thread whose allocation crossed threshold 0, gy_gc_collect on the
 *     calling thread (loops included), gy_gc_collect_async at the calling
 *     thread's next safe point; callbacks, finalizers and weakref
 *     callbacks run on that thread.
 *
 *   GY_GC_MODE_DEFAULT means: the environment variable GYRE_GC_MODE ("stw"
 *   or "concurrent") when it is set (any other value makes gy_runtime_init
 *   fail with GY_EINVAL), else concurrent.
 *
 * When collections run. In either mode, a collection stops every other
 * attached thread at a safe point (quiescent threads count as stopped;
 * loops are woken through their wake function) for the marking phase and,
 * when user code ran in between, briefly again to check for resurrection.
 * Weakref callbacks, finalizers and clears run on the collecting thread with
 * the world running.
 *
 * What a mutator may assume: at a safe point it holds only references it
 * owns (counted), so everything it can reach survives; an object it can
 * still reach is never freed (objects are freed only when their count
 * drops to zero); a weak reference to cyclic trash reads NULL before any
 * finalizer of that trash runs; a resurrected object is kept, but may
 * already have lost its weak references.
 *
 * Finalizers (PEP 442): each object in a trash set has its finalizer called
 * exactly once, all of them before anything of the set is cleared; if a
 * finalizer makes any object of the set reachable again, nothing of the set
 * is freed in that collection, and no finalizer runs again later. Order
 * within a collection (CPython's): clear weak references to the trash (the
 * callbacks of weak references that are themselves trash are not called),
 * run those callbacks, run finalizers, check for resurrection, clear and
 * free. A GY_TYPE_LOOP_AFFINE object is finalized by its owner thread
 * (unless GY_TYPE_FINALIZE_ANY_THREAD) at its next safe point: its trash set
 * then survives that collection and is freed by a later one. Loop-affine
 * objects are also cleared and freed on their owner thread.
 * The contract for a type's traverse (gyre/object.h has it in full): it
 * may run on the collector's thread while other threads use the object
 * (gc_mode concurrent, collector/DESIGN.md section 9; in stw with the world
 * stopped), so it reads only gy_ref fields through GY_VISIT, and storage a
 * type resizes itself follows gy_list's and gy_dict's rules
 * (gy_storage_alloc, gy_storage_retire); it
 * takes no lock, allocates nothing and never blocks. Changes to a type's
 * references go through gy_store and the container functions, whose
 * barriers tell a running collection (core's gc_touch.h).
 *
 * Uncollectable: an object of a GY_TYPE_LEGACY_FINALIZER type found in
 * cyclic trash, and all the trash it reaches, is not freed (its finalizer
 * must not meet a half-cleared cycle) and counts as uncollectable; the
 * objects with the legacy finalizer go to the garbage list (gy_gc_garbage),
 * which keeps the rest alive, as in CPython.
 *
 * No API hands out an object the collector is destroying: from the moment
 * a collection decides a set is trash until the whole set is cleared
 * (including clears handed to owner loops), introspection, gy_gc_get_objects
 * and gy_object_from_id skip its members (and, while clears wait for their
 * loops, gy_load and weak upgrades of members fail), and a weak reference
 * that is itself trash is unregistered before anything of the set is
 * cleared, so its callback never runs.
 *
 * Where trash is freed: objects owned by the collecting thread, or by no
 * thread (their thread detached), are freed before gy_gc_collect returns;
 * those owned by other attached threads when those threads next pass a
 * safe point (biased counts: core/DESIGN.md). `collected` counts both.
 *
 * Thread-safety: every function is safe from any attached thread (and
 * gy_gc_get_mode, gy_gc_mode_name, gy_gc_get_thread_stats from any thread).
 * A collection runs at a time; gy_gc_collect called while another thread
 * collects waits for it (quiescent), and called from inside a collection
 * (a finalizer or callback) fails with GY_EBUSY; so does gy_gc_get_objects,
 * and gy_gc_freeze, gy_gc_unfreeze and gy_gc_get_freeze_count do nothing
 * (return 0) there; gy_gc_garbage and gy_gc_garbage_clear work there (a
 * stop callback may read the garbage list, as CPython's callbacks do).
 */
#ifndef GYRE_GC_H
#define GYRE_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gyre/common.h"
#include "gyre/error.h"
#include "gyre/list.h"
#include "gyre/object.h"
#include "gyre/runtime.h"

enum {
    GY_GC_GENERATIONS = 3,
    GY_GC_THRESHOLD_MAX = 1000000000, /* largest threshold accepted */
};

/* The phases of a collection, for profiles (gy_gc_result.phase_ns). */
typedef enum gy_gc_phase_id {
    /* stw: world stopped for the first four; concurrent: nothing stopped,
     * the handshakes are in UPDATE's time, the seal and recount in MARK's. */
    GY_GC_PHASE_UPDATE = 0, /* find candidates, copy their counts */
    GY_GC_PHASE_SUBTRACT,   /* subtract references among candidates */
    GY_GC_PHASE_MARK,       /* mark what outside references reach */
    GY_GC_PHASE_HANDLE,     /* survivors, legacy finalizers, weakrefs */
    GY_GC_PHASE_FINALIZE,   /* weakref callbacks, finalizers, resurrection check */
    GY_GC_PHASE_CLEAR,      /* clear and free the trash */
    GY_GC_PHASES
} gy_gc_phase_id;

/* gy_gc_phase_name: "update", "subtract", ...; NULL when out of range. */
GY_API const char *gy_gc_phase_name(int phase);

/* The result of one collection. */
typedef struct gy_gc_result {
    int generation;
    uint64_t collected;     /* unreachable objects freed (or saved, DEBUG_SAVEALL) */
    uint64_t uncollectable; /* unreachable objects kept in the garbage list */
    uint64_t candidates;    /* tracked objects examined */
    uint64_t duration_ns;   /* wall time of the whole collection */
    uint64_t pause_ns;      /* time other threads were stopped */
    uint64_t phase_ns[GY_GC_PHASES];
} gy_gc_result;

/* gy_gc_get_mode: the mode of the running runtime (GY_GC_MODE_STW or
 * GY_GC_MODE_CONCURRENT, DEFAULT resolved); GY_GC_MODE_DEFAULT when no
 * runtime runs. gy_gc_mode_name: "stw", "concurrent", "default"; NULL for
 * a value that is not a gy_gc_mode. Any thread. */
GY_API gy_gc_mode gy_gc_get_mode(void);
GY_API const char *gy_gc_mode_name(int mode);

/* gy_gc_collect: collect `generation` (0, 1 or 2: that one and all younger
 * ones) now and wait for the result: on this thread in GY_GC_MODE_STW, on
 * the collector's thread in GY_GC_MODE_CONCURRENT (this thread waits
 * quiescent, then passes a safe point, so what the collection freed of its
 * own objects is freed when this returns). `out` may be NULL;
 * out->collected + out->uncollectable is what Python's gc.collect returns.
 * Runs even while automatic collection is disabled. Returns 0; GY_EINVAL
 * (bad generation); GY_ESTATE (thread not attached; in concurrent mode also
 * on a GY_THREAD_LOOP thread, which never waits for the collector: use
 * gy_gc_collect_async there, and after the collector's thread has stopped,
 * i.e. during gy_runtime_shutdown); GY_EBUSY (called from inside a
 * collection: a finalizer or callback, which in concurrent mode run on the
 * collector's thread). When the collector cannot allocate its working
 * memory the collection examines fewer objects, or none (gy_gc_info counts
 * it); that is not an error. */
GY_API int gy_gc_collect(int generation, gy_gc_result *out, gy_errmsg *err);

/* Called with the result of gy_gc_collect_async (rc 0 or an error). */
typedef void (*gy_gc_result_fn)(int rc, const gy_gc_result *result, void *arg);

/* gy_gc_collect_async: request a collection of `generation`; `done` runs on
 * the calling thread with the result, at one of its later safe points (a
 * loop is woken through its wake function), never inside this call.
 * Requests a thread makes between two of its safe points share one
 * collection, of the oldest generation asked. In GY_GC_MODE_STW that
 * collection runs on the calling thread at its next safe point. In
 * GY_GC_MODE_CONCURRENT the next safe point sends the requests to the
 * collector's thread (which serves everything pending when it starts a
 * collection, from any thread, with one), and the result is handed back:
 * the requesting thread is woken and runs `done` at a safe point after the
 * collection. A thread that detaches with requests pending is answered
 * during gy_thread_detach with the real result: in concurrent mode
 * gy_thread_detach waits (quiescent) for the collector to finish them and
 * runs `done` there. `done` gets rc GY_ESTATE (and a zeroed result) only
 * for a request the collector's thread stopped before taking (runtime
 * shutdown). The caller keeps `arg` valid until `done` ran. Returns 0,
 * GY_EINVAL, GY_ESTATE (not attached; the collector's thread stopped),
 * GY_ENOMEM; on error `done` never runs. */
GY_API int gy_gc_collect_async(int generation, gy_gc_result_fn done, void *arg, gy_errmsg *err);

/* gy_gc_enable / gy_gc_disable: switch automatic collection on or off;
 * each returns the previous state (true: enabled). gy_gc_isenabled reads it.
 * Counts keep growing while disabled; the first allocation after enable
 * past threshold 0 starts a collection. Disabling lets a running collection
 * finish and drops an automatic request not yet started; explicit
 * collections still run. In concurrent mode the collector's thread shows
 * GY_GC_THREAD_PAUSED while disabled and idle. */
GY_API bool gy_gc_enable(void);
GY_API bool gy_gc_disable(void);
GY_API bool gy_gc_isenabled(void);

/* gy_gc_abort: ask the running concurrent collection to stop before it
 * decides what is garbage: at its next increment point (within about one
 * increment budget) it ends, every candidate survives and nothing is
 * freed, as if it had found no garbage (its gy_gc_collect callers get a
 * result with collected 0). A collection already past its recount (its
 * set decided, finalizers maybe running) finishes. Does not disable: with
 * gy_gc_disable first, no new automatic collection starts (admin
 * `gc.disable abort`). Returns true when a concurrent collection was
 * running and got the request, false when none was (stw mode: always
 * false). Counted in gy_gc_thread_stats.aborted_runs. Any thread. */
GY_API bool gy_gc_abort(void);

/* gy_gc_get_threshold: the three thresholds. gy_gc_set_threshold: set them;
 * t0 == 0 disables automatic collection (as in CPython). Returns 0 or
 * GY_EINVAL (negative, or above GY_GC_THRESHOLD_MAX; nothing changed). */
GY_API void gy_gc_get_threshold(long out[GY_GC_GENERATIONS]);
GY_API int gy_gc_set_threshold(long t0, long t1, long t2, gy_errmsg *err);

/* Pacing of the concurrent collector (collector/DESIGN.md 9.15).
 * increment_budget_us: the most work, in microseconds, the collector's
 *   thread does between two epoch quiescent states; it bounds how long the
 *   collector delays memory reuse for every thread, and how long a world
 *   stop waits for it. Default 500.
 * pause_goal_us: the longest a mutator's safe point waits when the
 *   collector fell behind by 8 thresholds 0 (allocation throttling, an
 *   `assist` pause); after such a wait the thread runs at least three
 *   times as long before it can be throttled again. Past 16 thresholds
 *   (the hard limit) memory comes first: the wait lasts until the
 *   collection ends. Default 1000.
 * gy_gc_set_pacing: both at once, taking effect from the next increment
 * and safe point. Returns 0 or GY_EINVAL (a value out of its range below;
 * nothing changed). gy_gc_get_pacing: the current values. Any thread, any
 * mode (in stw mode neither is used). */
#define GY_GC_BUDGET_MIN_US 20u
#define GY_GC_BUDGET_MAX_US 1000000u
#define GY_GC_PAUSE_GOAL_MIN_US 50u
#define GY_GC_PAUSE_GOAL_MAX_US 10000000u
typedef struct gy_gc_pacing {
    uint32_t increment_budget_us;
    uint32_t pause_goal_us;
} gy_gc_pacing;
GY_API int gy_gc_set_pacing(const gy_gc_pacing *p, gy_errmsg *err);
GY_API void gy_gc_get_pacing(gy_gc_pacing *out);

/* gy_gc_get_count: generation 0's count (tracked allocations minus frees
 * since its last collection), and the collections of generations 0 and 1
 * since the last collection of generations 1 and 2. */
GY_API void gy_gc_get_count(long out[GY_GC_GENERATIONS]);

/* Per-generation statistics since the runtime started. */
typedef struct gy_gc_gen_stats {
    uint64_t collections;
    uint64_t collected;
    uint64_t uncollectable;
    uint64_t candidates;  /* objects examined, summed */
    uint64_t duration_ns; /* summed wall time */
    uint64_t pause_ns;    /* summed stop-the-world time */
    uint64_t max_pause_ns;
} gy_gc_gen_stats;

/* gy_gc_get_stats: fill out[0..2]. */
GY_API void gy_gc_get_stats(gy_gc_gen_stats out[GY_GC_GENERATIONS]);

/* Figures that are not per generation. */
typedef struct gy_gc_info {
    uint64_t automatic;        /* collections started by thresholds */
    uint64_t explicit_;        /* gy_gc_collect and gy_gc_collect_async */
    uint64_t shrunk_nomem;     /* collections that examined fewer objects (no memory) */
    uint64_t skipped_nomem;    /* collections skipped (no memory) */
    uint64_t resurrections;    /* trash sets kept because a finalizer resurrected */
    uint64_t deferred;         /* trash sets kept for owner-thread finalizers */
    uint64_t finalizers;       /* finalizers run by the collector */
    uint64_t weakrefs_cleared; /* weak references to trash cleared */
    uint64_t world_stops;
} gy_gc_info;

GY_API void gy_gc_get_info(gy_gc_info *out);

/* The collector's thread (concurrent mode). */
typedef enum gy_gc_thread_state {
    GY_GC_THREAD_STOPPED = 0, /* no thread: STW mode, or no runtime */
    GY_GC_THREAD_IDLE = 1,    /* waiting for work */
    GY_GC_THREAD_RUNNING = 2, /* running a collection */
    GY_GC_THREAD_PAUSED = 3,  /* idle while automatic collection is disabled */
} gy_gc_thread_state;

typedef struct gy_gc_thread_stats {
    int state;                   /* a gy_gc_thread_state */
    uint64_t runs;               /* collections the thread ran */
    uint64_t busy_ns;            /* wall time spent in them (callbacks included) */
    uint64_t increments;         /* increments of concurrent collections (pacing.c) */
    uint64_t epoch_hold_max_ns;  /* longest epoch section the thread held in a collection */
    uint64_t epoch_hold_last_ns; /* the same, in the last concurrent collection */
    uint64_t aborted_runs;       /* collections stopped by gy_gc_abort */
    uint64_t handshakes;         /* handshakes with the attached threads (two or three per run) */
    uint64_t aborted_sets;       /* trash sets found but not freed: a late toucher, or an anomaly */
    uint64_t anomalies;      /* sets the recount refused with no late toucher: a missing barrier */
    uint64_t fallback_stops; /* collections validated with the world stopped (3 aborts in a row) */
    uint64_t world_stops;    /* world stops the thread made (fallbacks; stw mode's collections) */
    /* In concurrent mode a collection stops no thread: world_stops grows
     * only by fallback_stops (collector/DESIGN.md 9.8). */
} gy_gc_thread_stats;

/* gy_gc_get_thread_stats: a snapshot. Since the runtime started; in STW
 * mode (or before any runtime) state is GY_GC_THREAD_STOPPED and every
 * count 0; after gy_runtime_shutdown the state is STOPPED and the counts
 * of the last run stay readable until the next gy_runtime_init. Any
 * thread. */
GY_API void gy_gc_get_thread_stats(gy_gc_thread_stats *out);

/* gy_gc_get_objects: a NEW list holding (new references to) every tracked
 * object in `generation` (0..2), or in all three when it is -1 (frozen
 * objects are not listed, as in CPython). Stops the world while it walks.
 * Returns 0, GY_EINVAL, GY_ESTATE, GY_ENOMEM. */
GY_API int gy_gc_get_objects(int generation, gy_list **out, gy_errmsg *err);

/* gy_gc_freeze: move every tracked object to the permanent generation,
 * which is never collected (for fork-heavy servers, as CPython's
 * gc.freeze). gy_gc_unfreeze: move them back to the oldest generation.
 * gy_gc_get_freeze_count: how many live objects are frozen. All three stop
 * the world, on the calling thread in either mode (as gy_gc_get_objects
 * does), after a running collection. Attached threads only (no-ops
 * otherwise). */
GY_API void gy_gc_freeze(void);
GY_API void gy_gc_unfreeze(void);
GY_API size_t gy_gc_get_freeze_count(void);

/* gy_gc_is_tracked: true when the collector considers obj (its type is
 * neither LEAF nor ACYCLIC). gy_gc_is_finalized: true once obj's finalizer
 * has run (by the collector or the refcount path). */
GY_API bool gy_gc_is_tracked(const void *obj);
GY_API bool gy_gc_is_finalized(const void *obj);

/* Callbacks at the start and stop of every collection (Python's
 * gc.callbacks), on the collecting thread (the collector's thread in
 * concurrent mode), no Gyre lock held. At START
 * only `generation` is meaningful. */
typedef enum gy_gc_phase { GY_GC_START = 0, GY_GC_STOP = 1 } gy_gc_phase;
typedef struct gy_gc_callback_info {
    int generation;
    uint64_t collected;
    uint64_t uncollectable;
    uint64_t duration_ns;
} gy_gc_callback_info;
typedef void (*gy_gc_callback_fn)(gy_gc_phase phase, const gy_gc_callback_info *info, void *arg);

enum { GY_GC_CALLBACKS_MAX = 16 };
/* gy_gc_callback_add: register fn(…, arg). Returns 0, GY_EEXIST (same pair
 * already there), GY_ERANGE (GY_GC_CALLBACKS_MAX reached).
 * gy_gc_callback_remove: returns 0 or GY_ENOENT. */
GY_API int gy_gc_callback_add(gy_gc_callback_fn fn, void *arg);
GY_API int gy_gc_callback_remove(gy_gc_callback_fn fn, void *arg);

/* Debug flags (Python's values). Output goes through the log handler
 * (gyre/log.h, module "gc"); the library never prints. */
enum {
    GY_GC_DEBUG_STATS = 1,         /* a summary line per collection (INFO) */
    GY_GC_DEBUG_COLLECTABLE = 2,   /* one line per collectable object found (INFO) */
    GY_GC_DEBUG_UNCOLLECTABLE = 4, /* one line per uncollectable object (INFO) */
    GY_GC_DEBUG_SAVEALL = 32,      /* keep all trash in the garbage list, free nothing */
    GY_GC_DEBUG_LEAK = GY_GC_DEBUG_COLLECTABLE | GY_GC_DEBUG_UNCOLLECTABLE | GY_GC_DEBUG_SAVEALL,
};
/* gy_gc_set_debug: returns 0 or GY_EINVAL (unknown bits; nothing changed). */
GY_API int gy_gc_set_debug(unsigned flags);
GY_API unsigned gy_gc_get_debug(void);

/* gy_gc_garbage: a NEW reference to the garbage list (Python's gc.garbage):
 * the uncollectable objects that have legacy finalizers (not what they
 * reach), and all trash under DEBUG_SAVEALL. Read it with
 * gyre/list.h; the collector only appends. Returns 0, GY_ESTATE, GY_ENOMEM.
 * gy_gc_garbage_clear: empty it (dropping its references; what was only
 * kept by it is then freed or left to the next collection); returns how
 * many entries it held. */
GY_API int gy_gc_garbage(gy_list **out);
GY_API size_t gy_gc_garbage_clear(void);

#endif /* GYRE_GC_H */
