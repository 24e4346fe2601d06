/* gyre/runtime.h: the runtime, attached threads, safe points.
 *
 * One runtime per process. A thread touches Gyre objects only while attached
 * (between gy_thread_attach and gy_thread_detach). An attached thread passes
 * safe points (gy_safepoint) where the runtime may stop it briefly, merge
 * reference counts handed to it by other threads, run deferred frees and
 * reclaim memory; around blocking calls (an event loop's epoll) it declares
 * itself quiescent, which counts as having answered any request.
 *
 * Thread-safety: every function here is thread-safe unless stated.
 */
#ifndef GYRE_RUNTIME_H
#define GYRE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "gyre/common.h"
#include "gyre/error.h"

/* The collector's mode (gyre/gc.h says what each does). Core carries it
 * opaquely in gy_runtime_options.gc_mode; the collector reads it at runtime
 * start, and it stays fixed until gy_runtime_shutdown. */
typedef enum gy_gc_mode {
    /* The environment variable GYRE_GC_MODE ("stw" or "concurrent") if set,
     * else GY_GC_MODE_CONCURRENT. */
    GY_GC_MODE_DEFAULT = 0,
    GY_GC_MODE_STW = 1,        /* collections run on the thread that asks */
    GY_GC_MODE_CONCURRENT = 2, /* collections run on the collector's thread */
} gy_gc_mode;

/* Runtime options; zero-initialise and set what you need. */
typedef struct gy_runtime_options {
    /* Default deferred-free budget (objects per safe point) for loop threads
     * that attach with cascade_budget 0. 0 means 4096. */
    uint32_t cascade_budget;
    /* The collector's mode, a gy_gc_mode (0: GY_GC_MODE_DEFAULT); read by
     * the collector at runtime start. */
    int gc_mode;
} gy_runtime_options;

/* gy_runtime_init: start the runtime, and the collector when one is linked
 * (in GY_GC_MODE_CONCURRENT it starts the collector's thread, "gyre-gc").
 * `opts` may be NULL. Returns 0, GY_ESTATE if it is already running,
 * GY_EINVAL (opts->gc_mode is not a gy_gc_mode, or GYRE_GC_MODE holds
 * something other than "stw" or "concurrent": the message names it),
 * GY_ENOMEM, or the error of starting the collector's thread. Nothing
 * changed on error. */
GY_API int gy_runtime_init(const gy_runtime_options *opts, gy_errmsg *err);

/* gy_runtime_shutdown: stop the runtime. Every thread must be detached
 * (GY_EBUSY otherwise, nothing changed; the collector's own thread does not
 * count). Then it stops the collector (joining its thread after the
 * collection it runs, if any, completes). Runs every pending free, then checks
 * that no object is alive: GY_ELEAK with a message naming each leaking type,
 * its count and bytes ("leaked: node x3 (72 B)"). The runtime is stopped and
 * all arena memory released whatever the result, so a leaked object must not
 * be touched afterwards. */
GY_API int gy_runtime_shutdown(gy_errmsg *err);

/* gy_runtime_running: true between init and shutdown. */
GY_API int gy_runtime_running(void);

typedef enum gy_thread_kind {
    GY_THREAD_PLAIN = 0, /* may block waiting for the runtime */
    GY_THREAD_LOOP = 1,  /* an event loop: never waits; woken with wake() */
} gy_thread_kind;

/* Called from any thread to bring a loop to its next safe point soon (the
 * server calls uv_async_send). Must be async-signal-safe-ish: no Gyre calls,
 * no blocking. */
typedef void (*gy_wake_fn)(void *arg);

typedef struct gy_thread_options {
    gy_thread_kind kind;
    gy_wake_fn wake; /* required for GY_THREAD_LOOP */
    void *wake_arg;
    /* Loop threads: at most this many deferred frees per safe point (0: the
     * runtime's default). Plain threads always drain everything at once. */
    uint32_t cascade_budget;
    const char *name; /* for stats and messages; copied; may be NULL */
} gy_thread_options;

/* gy_thread_attach: attach the calling thread. `opts` NULL means a plain
 * thread. Returns 0, GY_ESTATE (no runtime, or already attached), GY_EINVAL
 * (loop without wake), GY_ENOMEM. The thread starts RUNNING. */
GY_API int gy_thread_attach(const gy_thread_options *opts, gy_errmsg *err);

/* gy_thread_detach: detach the calling thread: flushes its queues, runs its
 * deferred frees, hands every object it owns to shared counting, and leaves
 * its memory to the runtime (the next attaching thread adopts it). The
 * thread must hold no Gyre reference it intends to use afterwards. Once it
 * returns, no thread is calling, or will call, its wake function, so a loop
 * may free what wake_arg points to. Returns 0 or GY_ESTATE (not attached). */
GY_API int gy_thread_detach(void);

/* gy_thread_attached: true when the calling thread is attached. */
GY_API int gy_thread_attached(void);

/* gy_safepoint: a point where the runtime may stop this thread, merge counts
 * handed to it, run deferred frees (within the budget on loops) and recycle
 * memory. Costs one load when nothing is pending. Attached threads only. */
GY_API void gy_safepoint(void);

/* gy_quiescent_begin / gy_quiescent_end: bracket a blocking call. Between
 * them the thread must not touch Gyre objects or call Gyre (but may be woken
 * by its wake function). A stop of the world counts a quiescent thread as
 * stopped; gy_quiescent_end then waits until the world resumes. */
GY_API void gy_quiescent_begin(void);
GY_API void gy_quiescent_end(void);

/* Per-thread statistics, summed over every heap (attached and orphaned) by
 * gy_runtime_stats. */
typedef struct gy_runtime_stats {
    uint64_t threads_attached;  /* the collector's thread included (concurrent mode) */
    uint64_t objects_live;      /* every type */
    uint64_t bytes_live;        /* object cells + backing storage */
    uint64_t objects_allocated; /* since init */
    uint64_t objects_freed;
    uint64_t segments; /* arena segments held */
    uint64_t segment_bytes;
    uint64_t cascade_objects; /* objects freed from deferred stacks */
    uint64_t cascade_ns;      /* time spent draining them ("refcount cascade") */
    uint64_t merges;          /* biased counts merged by owners */
    /* Races between a thread dropping an object's last owner reference and
     * another thread taking one through a gy_ref field, a gy_id or a weak
     * reference (core/DESIGN.md section 3): won by the taker (the object
     * lives on, on shared counting), and try-increfs refused because the
     * object was already dying. Both are normal; they are counted for tests
     * and for the curious. */
    uint64_t last_ref_races;
    uint64_t tryincref_refused;
    uint64_t world_stops;
    /* Internal allocations (a reclamation batch, a hand-off node) that
     * failed: each left one cell unreused or one object alive rather than
     * abort. Non-zero only when malloc itself fails. */
    uint64_t internal_failures;
} gy_runtime_stats;

/* gy_runtime_get_stats: a snapshot (exact when no thread is running). */
GY_API void gy_runtime_get_stats(gy_runtime_stats *out);

/* Pauses: intervals in which an attached thread does the collector's work
 * or waits on it, each timed by the thread itself (collector/DESIGN.md
 * section 9.9 and 9.13). Kinds: */
typedef enum gy_pause_kind {
    GY_PAUSE_STOP = 0,       /* parked in a world stop, or held on leaving quiescence */
    GY_PAUSE_COLLECTOR_WORK, /* ran a collection (stw mode's collecting thread), or the
                                finalizers and clears the collector handed to this thread,
                                with the refcount cascades they start inline */
    GY_PAUSE_ASSIST,         /* pacing: allocation throttling (gc_pause_goal_us) */
    /* Not a collector pause: the program's own deferred refcount cascades (a
     * big structure it dropped), reported beside the others. */
    GY_PAUSE_PROGRAM_CASCADE,
    GY_PAUSE_KINDS
} gy_pause_kind;

/* Histogram buckets: bucket 0 counts pauses under 1 us, bucket b (1..22)
 * pauses in [2^(b-1), 2^b) us, bucket 23 those of 2^22 us (4.2 s) or more. */
enum { GY_PAUSE_BUCKETS = 24 };

typedef struct gy_pause_stats {
    uint64_t count[GY_PAUSE_KINDS];
    uint64_t total_ns[GY_PAUSE_KINDS];
    uint64_t max_ns[GY_PAUSE_KINDS];
    uint64_t hist[GY_PAUSE_KINDS][GY_PAUSE_BUCKETS];
    /* Minimum mutator utilisation over 1 ms and 10 ms windows: 1 - (collector
     * pause, every kind but PROGRAM_CASCADE, inside the window) / window,
     * the worst window of the worst thread since init (1.0: none). Windows
     * are judged at the end of each pause, over the thread's last 64. */
    double mmu_1ms, mmu_10ms;
    /* Time to safepoint: how long world stops waited for every thread to
     * park (the stopper's wait; not a pause of the stopped threads). */
    uint64_t ttsp_count, ttsp_total_ns, ttsp_max_ns;
    uint64_t ttsp_hist[GY_PAUSE_BUCKETS];
} gy_pause_stats;

/* gy_runtime_get_pause_stats: the pauses of every thread since init, summed
 * over heaps (attached and detached). Any thread. */
GY_API void gy_runtime_get_pause_stats(gy_pause_stats *out);

/* gy_pause_kind_name: "stop", "collector_work", "assist",
 * "program_cascade"; NULL when out of range. */
GY_API const char *gy_pause_kind_name(int kind);

/* gy_memory_trim: give back the calling thread's memory that holds nothing
 * live: its cache of freed cells goes back to their segments, cells other
 * threads freed into its segments are collected, and every segment left
 * empty (the one per type it keeps for speed and its few spares included)
 * returns to the allocator, which returns the pages of Gyre's arena to the
 * OS at once. Only the owner thread can do this for its segments: a thread
 * that stops allocating keeps what was freed into them until it trims (a
 * server calls this on a timer on each of its threads). Cost: a walk over
 * the thread's segments. Attached threads; elsewhere only the arena purge.
 * Returns 0. */
GY_API int gy_memory_trim(void);

/* How much gy_memory_release hands back. */
typedef enum gy_release_mode {
    GY_RELEASE_DECAYED = 0, /* jemalloc's pages past their decay time (cheap) */
    /* every unused page, now; and glibc's malloc_trim (a walk of its
     * arenas under their locks: for idle moments) */
    GY_RELEASE_ALL = 1,
} gy_release_mode;

/* gy_memory_release: ask the allocator to return unused pages of every one
 * of its arenas to the OS: Gyre's and, when the process's malloc is the
 * same jemalloc (a program linked with libgyre), malloc's. jemalloc frees
 * decayed pages only while an arena allocates, so an idle process keeps
 * them until something calls this. Process-wide; any thread, attached or
 * not. Returns 0, GY_EINVAL (mode), GY_EIO (the allocator refused). In
 * builds on libc's allocator (sanitizers) it does nothing and returns 0. */
GY_API int gy_memory_release(gy_release_mode mode);

/* Where the memory is, for "why is RSS not back": gy_memory_get_stats. */
typedef struct gy_memory_stats {
    uint64_t live_bytes;    /* object cells + backing storage (gy_runtime_stats.bytes_live) */
    uint64_t segment_bytes; /* arena segments held, every heap */
    uint64_t large_bytes;   /* backing blocks too large for segments */
    /* Held but holding nothing live: segment_bytes + large_bytes -
     * live_bytes, i.e. free cells, empty segments, cells and blocks waiting
     * for their grace period or their owner, segment headers. */
    uint64_t retained_bytes;
    uint64_t spare_segments; /* empty segments kept for reuse (trim frees them) */
    uint64_t trims;          /* gy_memory_trim calls that ran on a heap */
    /* The allocator (jemalloc, process-wide: malloc's arenas too when the
     * process uses it; 0 in builds on libc's allocator). */
    uint64_t allocator_allocated; /* bytes handed out */
    uint64_t allocator_active;    /* bytes of pages in use */
    uint64_t allocator_resident;  /* bytes of pages mapped and resident */
    uint64_t allocator_mapped;
    uint64_t allocator_retained; /* virtual memory kept mapped for reuse, not resident */
    uint64_t allocator_metadata; /* the allocator's own bookkeeping (not returned) */
    uint64_t allocator_dirty;    /* unused pages not yet returned (dirty + muzzy) */
} gy_memory_stats;

/* gy_memory_get_stats: a snapshot (exact when no thread is running). Any
 * thread. Costs a walk over the heaps and a refresh of jemalloc's
 * statistics: for monitoring, not for hot paths. */
GY_API void gy_memory_get_stats(gy_memory_stats *out);

#endif /* GYRE_RUNTIME_H */
