/* core/src/runtime.c: the runtime, thread attach/detach, safe points,
 * quiescence and the stop-the-world handshake (core/DESIGN.md section 4).
 *
 * Thread states move by CAS on gy__heap.state:
 *   RUNNING <-> QUIESCENT        the thread itself
 *   QUIESCENT -> HELD            a world stop (the thread has answered)
 *   HELD -> QUIESCENT            the resume
 *   RUNNING -> PARKED -> RUNNING the thread at a safe point during a stop
 *   * -> DETACHED                detach, under threads_lock
 * Lock order: threads_lock, then a heap's seg_lock, then park_lock; a
 * heap's wake_lock is a leaf.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gc_hooks.h"
#include "gc_touch.h"
#include "heap.h"

gy__runtime gy__rt;
_Thread_local gy__heap *gy__tls_heap GY__TLS_MODEL;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

static void runtime_teardown(void);

int gy_runtime_running(void) {
    /* acquire: pairs with the release in init, so the runtime is set up. */
    return atomic_load_explicit(&gy__rt.running, memory_order_acquire);
}

int gy_runtime_init(const gy_runtime_options *opts, gy_errmsg *err) {
    pthread_mutex_lock(&init_lock);
    if (gy_runtime_running()) {
        pthread_mutex_unlock(&init_lock);
        return gy__errmsg_set(err, GY_ESTATE, "the Gyre runtime is already running");
    }
    /* An unknown failpoint or a bad spec in GY_FAILPOINTS stops the start
     * (it would test nothing, silently). */
    int fprc = gy__failpoint_env_check(err);
    if (fprc != GY_OK) {
        pthread_mutex_unlock(&init_lock);
        return fprc;
    }
    int gc_mode = opts != NULL ? opts->gc_mode : GY_GC_MODE_DEFAULT;
    if (gc_mode < GY_GC_MODE_DEFAULT || gc_mode > GY_GC_MODE_CONCURRENT) {
        pthread_mutex_unlock(&init_lock);
        return gy__errmsg_set(err, GY_EINVAL,
                              "gy_runtime_init: gc_mode %d is not a gy_gc_mode (0 default, 1 stw, "
                              "2 concurrent)",
                              gc_mode);
    }
    /* Keep the type table: types stay registered across restarts. */
    uint32_t ntypes = atomic_load_explicit(&gy__rt.ntypes, memory_order_relaxed);
    uint32_t serial = atomic_load_explicit(&gy__rt.segment_serial, memory_order_relaxed);
    gy__rt.heaps = NULL;
    atomic_store_explicit(&gy__rt.nattached, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__rt.ninternal, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__rt.stop_requested, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__rt.world_stops, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__rt.ttsp_count, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__rt.ttsp_total_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__rt.ttsp_max_ns, 0, memory_order_relaxed);
    for (int b = 0; b < GY_PAUSE_BUCKETS; b++) {
        atomic_store_explicit(&gy__rt.ttsp_hist[b], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&gy__rt.gc_young, 0, memory_order_relaxed);
    /* No limit until a collector sets one. */
    if (atomic_load_explicit(&gy__rt.gc_young_limit, memory_order_relaxed) == 0) {
        atomic_store_explicit(&gy__rt.gc_young_limit, INT64_MAX, memory_order_relaxed);
    }
    atomic_store_explicit(&gy__rt.ntypes, ntypes, memory_order_relaxed);
    /* Serials continue across restarts, so ids stay unique in the process. */
    atomic_store_explicit(&gy__rt.segment_serial, serial, memory_order_relaxed);
    pthread_mutex_init(&gy__rt.threads_lock, NULL);
    pthread_mutex_init(&gy__rt.park_lock, NULL);
    pthread_mutex_init(&gy__rt.limbo_lock, NULL);
    pthread_cond_init(&gy__rt.park_cond, NULL);
    ck_epoch_init(&gy__rt.epoch);
    gy__weakref_init();
    gy__rt.default_budget = opts != NULL && opts->cascade_budget != 0 ? opts->cascade_budget : 4096;
    int rc = gy__arena_init(err);
    if (rc != GY_OK) {
        pthread_mutex_unlock(&init_lock);
        return rc;
    }
    /* release: everything above is visible to whoever sees running. */
    atomic_store_explicit(&gy__rt.running, 1, memory_order_release);
    /* The collector starts last: its thread attaches to a running runtime. */
    const gy__gc_hooks *hooks = gy__gc_hooks_get();
    if (hooks != NULL && hooks->start != NULL) {
        rc = hooks->start(gc_mode, err);
        if (rc != GY_OK) {
            /* Its thread (if any) has detached: give back what init made. */
            runtime_teardown();
            pthread_mutex_unlock(&init_lock);
            return rc;
        }
    }
    pthread_mutex_unlock(&init_lock);
    return GY_OK;
}

/* --- heaps ----------------------------------------------------------- */

static gy__heap *heap_new(void) {
    /* The epoch record is cache-line aligned. */
    gy__heap *h = aligned_alloc(64, (sizeof *h + 63) & ~(size_t)63);
    if (h == NULL) {
        return NULL;
    }
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->seg_lock, NULL);
    pthread_mutex_init(&h->wake_lock, NULL);
    ck_stack_init(&h->inbox);
    ck_epoch_register(&gy__rt.epoch, &h->epoch, NULL);
    atomic_store_explicit(&h->state, GY__DETACHED, memory_order_relaxed);
    gy__pause_init(&h->pause);
    return h;
}

static void heap_free(gy__heap *h) {
    free(h->deferred);
    pthread_mutex_destroy(&h->seg_lock);
    pthread_mutex_destroy(&h->wake_lock);
    free(h);
}

void gy__heap_wake(gy__heap *h) {
    /* relaxed: a stale "yes" only costs the lock; a stale "no" means the
     * thread detached or has no wake function (plain threads poll). */
    if (!atomic_load_explicit(&h->wakeable, memory_order_relaxed)) {
        return;
    }
    pthread_mutex_lock(&h->wake_lock);
    if (h->wake != NULL) {
        h->wake(h->wake_arg); /* documented: quick, never blocks, no Gyre calls */
    }
    pthread_mutex_unlock(&h->wake_lock);
}

static int thread_attach(const gy_thread_options *opts, bool internal, gy_errmsg *err);

int gy_thread_attach(const gy_thread_options *opts, gy_errmsg *err) {
    return thread_attach(opts, false, err);
}

int gy__thread_attach_internal(const gy_thread_options *opts, gy_errmsg *err) {
    return thread_attach(opts, true, err);
}

static int thread_attach(const gy_thread_options *opts, bool internal, gy_errmsg *err) {
    if (!gy_runtime_running()) {
        return gy__errmsg_set(err, GY_ESTATE, "gy_thread_attach: the runtime is not running");
    }
    if (gy__tls_heap != NULL) {
        return gy__errmsg_set(err, GY_ESTATE, "gy_thread_attach: this thread is already attached");
    }
    gy_thread_options plain = {0};
    if (opts == NULL) {
        opts = &plain;
    }
    if (opts->kind == GY_THREAD_LOOP && opts->wake == NULL) {
        return gy__errmsg_set(err, GY_EINVAL,
                              "gy_thread_attach: a loop thread needs a wake function");
    }
    pthread_mutex_lock(&gy__rt.threads_lock);
    gy__heap *h = gy__rt.heaps;
    while (h != NULL && atomic_load_explicit(&h->state, memory_order_relaxed) != GY__DETACHED) {
        h = h->next;
    }
    bool adopted = h != NULL;
    if (h == NULL) {
        h = heap_new();
        if (h == NULL) {
            pthread_mutex_unlock(&gy__rt.threads_lock);
            return gy__errmsg_set(err, GY_ENOMEM, "gy_thread_attach: no memory for a heap");
        }
        h->next = gy__rt.heaps;
        gy__rt.heaps = h;
    }
    h->kind = opts->kind;
    h->internal = internal;
    pthread_mutex_lock(&h->wake_lock);
    h->wake = opts->wake;
    h->wake_arg = opts->wake_arg;
    pthread_mutex_unlock(&h->wake_lock);
    atomic_store_explicit(&h->wakeable, opts->wake != NULL, memory_order_relaxed);
    h->budget = opts->kind == GY_THREAD_LOOP
                    ? (opts->cascade_budget ? opts->cascade_budget : gy__rt.default_budget)
                    : 0;
    snprintf(h->name, sizeof h->name, "%s", opts->name ? opts->name : "");
    /* Watch what a running collection watches (threads_lock orders this
     * against its handshakes, which hold it). */
    gy__gc_watch_answer(h);
    /* release: a stopper that reads RUNNING sees the fields above. */
    atomic_store_explicit(&h->state, GY__RUNNING, memory_order_release);
    atomic_fetch_add_explicit(&gy__rt.nattached, 1, memory_order_relaxed);
    if (internal) {
        atomic_fetch_add_explicit(&gy__rt.ninternal, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&gy__rt.threads_lock);
    gy__tls_heap = h;
    ck_epoch_begin(&h->epoch, NULL);
    if (adopted) {
        /* Work may have arrived while the heap had no thread. */
        atomic_fetch_or_explicit(&h->pending, GY__PEND_INBOX | GY__PEND_REMOTE,
                                 memory_order_relaxed);
    }
    return GY_OK;
}

int gy_thread_attached(void) { return gy__tls_heap != NULL; }

/* Run everything this heap can run now (detach and shutdown). */
static void heap_settle(gy__heap *h) {
    gy__refcount_drain_inbox(h);
    (void)gy__refcount_drain_deferred(h, 0);
    gy__refcount_flush_outbox(h);
    gy__arena_collect_remote(h);
    gy__arena_flush_bag(h);
}

int gy_thread_detach(void) {
    gy__heap *h = gy__tls_heap;
    if (h == NULL) {
        return GY_ESTATE;
    }
    const gy__gc_hooks *hooks = gy__gc_hooks_get();
    if (hooks != NULL && hooks->thread_detach != NULL) {
        hooks->thread_detach(); /* the collector's answers for this thread */
    }
    if (atomic_load_explicit(&h->pending, memory_order_relaxed) & GY__PEND_COLLECT) {
        gy__safepoint_slow(h); /* answer the collector's requests first */
    }
    heap_settle(h);
    /* Everything we own goes to shared counting: after this no thread queues
     * our objects to us, and any thread may free them. */
    gy__refcount_disown_all(h);
    heap_settle(h);
    (void)ck_epoch_poll(&h->epoch);
    /* Quiescent first (this also leaves the epoch section), so a world stop
     * in progress does not wait for us. */
    gy_quiescent_begin();
    pthread_mutex_lock(&gy__rt.threads_lock);
    atomic_store_explicit(&h->state, GY__DETACHED, memory_order_seq_cst);
    /* A thread that pushed to our inbox before seeing DETACHED expects us to
     * drain it, and we have stopped draining. seq_cst fence here and in
     * gy__refcount_flush_outbox: either it sees DETACHED (and drains orphans
     * itself) or we see its node here and hand the work to another thread. */
    atomic_thread_fence(memory_order_seq_cst);
    if (ck_pr_load_ptr(&h->inbox.head) != NULL) {
        for (gy__heap *o = gy__rt.heaps; o != NULL; o = o->next) {
            if (o != h && atomic_load_explicit(&o->state, memory_order_relaxed) != GY__DETACHED) {
                atomic_fetch_or_explicit(&o->pending, GY__PEND_ORPHAN, memory_order_release);
                gy__heap_wake(o);
                break;
            }
        }
        /* No thread left: the next attach adopts a heap, or shutdown settles. */
    }
    atomic_store_explicit(&h->wakeable, 0, memory_order_relaxed);
    pthread_mutex_lock(&h->wake_lock);
    h->wake = NULL; /* from here on nobody calls it (see gy__heap_wake) */
    pthread_mutex_unlock(&h->wake_lock);
    atomic_fetch_sub_explicit(&gy__rt.nattached, 1, memory_order_relaxed);
    if (h->internal) {
        atomic_fetch_sub_explicit(&gy__rt.ninternal, 1, memory_order_relaxed);
        h->internal = false;
    }
    pthread_mutex_unlock(&gy__rt.threads_lock);
    gy__tls_heap = NULL;
    return GY_OK;
}

/* --- safe points ---------------------------------------------------------- */

static void park(gy__heap *h) {
    uint64_t t0 = gy__clock_ns();
    pthread_mutex_lock(&gy__rt.park_lock);
    /* release: the stopper that reads PARKED sees all our writes. */
    atomic_store_explicit(&h->state, GY__PARKED, memory_order_release);
    pthread_cond_broadcast(&gy__rt.park_cond);
    while (atomic_load_explicit(&gy__rt.stop_requested, memory_order_acquire)) {
        pthread_cond_wait(&gy__rt.park_cond, &gy__rt.park_lock);
    }
    atomic_store_explicit(&h->state, GY__RUNNING, memory_order_release);
    pthread_mutex_unlock(&gy__rt.park_lock);
    gy__pause_record(h, GY_PAUSE_STOP, t0, gy__clock_ns());
}

void gy__runtime_drain_orphans(void) {
    gy__heap *me = gy__tls_heap;
    for (;;) {
        ck_stack_entry_t *nodes = NULL;
        gy__threads_lock();
        for (gy__heap *o = gy__rt.heaps; o != NULL && nodes == NULL; o = o->next) {
            if (atomic_load_explicit(&o->state, memory_order_relaxed) == GY__DETACHED) {
                nodes = ck_stack_batch_pop_upmc(&o->inbox);
            }
        }
        pthread_mutex_unlock(&gy__rt.threads_lock);
        if (nodes == NULL) {
            return;
        }
        /* Every object in an orphan's inbox was merged at its detach, so any
         * thread may finish it; done outside the lock (finalizers run). */
        gy__refcount_process_nodes(me, nodes);
    }
}

void gy__safepoint_slow(gy__heap *h) {
    /* acquire: see what the setters published with their release. */
    unsigned p = atomic_exchange_explicit(&h->pending, 0, memory_order_acquire);
    if (p & GY__PEND_HANDSHAKE) {
        gy__gc_watch_answer(h); /* inside no operation: W2 */
    }
    if (atomic_load_explicit(&gy__rt.stop_requested, memory_order_seq_cst)) {
        gy__refcount_flush_outbox(h);
        park(h);
    }
    if (p & GY__PEND_INBOX) {
        gy__refcount_drain_inbox(h);
    }
    (void)gy__refcount_drain_deferred(h, h->budget);
    gy__refcount_flush_outbox(h);
    if (p & GY__PEND_REMOTE) {
        gy__arena_collect_remote(h);
    }
    if (p & GY__PEND_ORPHAN) {
        gy__runtime_drain_orphans();
    }
    if (p & GY__PEND_COLLECT) {
        const gy__gc_hooks *hooks = gy__gc_hooks_get();
        if (hooks != NULL && hooks->collect_due != NULL) {
            hooks->collect_due();
        }
    }
}

void gy__gc_young_flush(gy__heap *h, int32_t value, bool alloc) {
    atomic_store_explicit(&h->gc_delta, 0, memory_order_relaxed);
    /* relaxed: a counter; clamped at zero as CPython's count is. */
    int64_t old = atomic_load_explicit(&gy__rt.gc_young, memory_order_relaxed);
    int64_t n;
    do {
        n = old + value;
        if (n < 0) {
            n = 0;
        }
    } while (!atomic_compare_exchange_weak_explicit(&gy__rt.gc_young, &old, n, memory_order_relaxed,
                                                    memory_order_relaxed));
    if (alloc && n > atomic_load_explicit(&gy__rt.gc_young_limit, memory_order_relaxed)) {
        /* relaxed: our own pending word, read at our next safe point. */
        atomic_fetch_or_explicit(&h->pending, GY__PEND_COLLECT, memory_order_relaxed);
    }
}

void gy_safepoint(void) {
    gy__heap *h = gy__tls_heap;
    if (h == NULL) {
        return;
    }
    /* relaxed: a hint; the slow path re-reads with acquire. */
    if (atomic_load_explicit(&h->pending, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&gy__rt.stop_requested, memory_order_relaxed)) {
        gy__safepoint_slow(h);
    }
    gy__refcount_flush_outbox(h);
    gy__arena_quiesce(h);
}

void gy_quiescent_begin(void) {
    gy__heap *h = gy__tls_heap;
    if (h == NULL) {
        return;
    }
    if (atomic_load_explicit(&h->state, memory_order_relaxed) == GY__RUNNING) {
        /* Hand on what others wait for before blocking. */
        gy__refcount_flush_outbox(h);
        gy__arena_flush_bag(h);
        GY__TSAN_RELEASE(&gy__rt.epoch);
        ck_epoch_end(&h->epoch, NULL);
    }
    /* seq_cst store then seq_cst load, against the stopper's seq_cst store
     * of stop_requested then load of our state: one of us sees the other. */
    atomic_store_explicit(&h->state, GY__QUIESCENT, memory_order_seq_cst);
    if (atomic_load_explicit(&gy__rt.stop_requested, memory_order_seq_cst)) {
        pthread_mutex_lock(&gy__rt.park_lock);
        pthread_cond_broadcast(&gy__rt.park_cond);
        pthread_mutex_unlock(&gy__rt.park_lock);
    }
}

void gy_quiescent_end(void) {
    gy__heap *h = gy__tls_heap;
    if (h == NULL) {
        return;
    }
    for (;;) {
        int expected = GY__QUIESCENT;
        /* acq_rel: the stopper's (and collector's) writes happen before our
         * next access to objects. */
        /* seq_cst: then the load of rt.gc_phase below, against the
         * collector's store of the phase then load of our state (9.4). */
        if (atomic_compare_exchange_strong_explicit(&h->state, &expected, GY__RUNNING,
                                                    memory_order_seq_cst, memory_order_acquire)) {
            break;
        }
        /* HELD by a world stop: wait for the resume (a pause). */
        uint64_t t0 = gy__clock_ns();
        pthread_mutex_lock(&gy__rt.park_lock);
        while (atomic_load_explicit(&h->state, memory_order_acquire) == GY__HELD) {
            pthread_cond_wait(&gy__rt.park_cond, &gy__rt.park_lock);
        }
        pthread_mutex_unlock(&gy__rt.park_lock);
        gy__pause_record(h, GY_PAUSE_STOP, t0, gy__clock_ns());
    }
    ck_epoch_begin(&h->epoch, NULL);
    GY__TSAN_ACQUIRE(&gy__rt.epoch);
    /* W2: answer a handshake we missed while quiescent before touching
     * anything. */
    if (GY__PHASE_EPOCH(atomic_load_explicit(&gy__rt.gc_phase, memory_order_seq_cst)) !=
        atomic_load_explicit(&h->gc_answered, memory_order_relaxed)) {
        gy__gc_watch_answer(h);
    }
}

/* --- stop the world ----------------------------------------------------- */

/* A stop that waits long means an attached thread blocks without
 * gy_quiescent_begin (or computes without safe points): name it. Logged
 * with the runtime's locks held; log handlers must not call Gyre. Returns
 * when to warn next. */
static double stop_maybe_warn(const gy__heap *me, const struct timespec *start, double warn_after) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double waited =
        (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
    if (waited < warn_after || !gy__log_enabled(GY_LOG_WARN)) {
        return warn_after;
    }
    char names[200];
    size_t len = 0;
    names[0] = '\0';
    for (gy__heap *h = gy__rt.heaps; h != NULL && len < sizeof names - 40; h = h->next) {
        if (h != me && atomic_load_explicit(&h->state, memory_order_relaxed) == GY__RUNNING) {
            int n = snprintf(names + len, sizeof names - len, "%s'%s'", len ? ", " : "",
                             h->name[0] ? h->name : "(unnamed)");
            len += n > 0 ? (size_t)n : 0;
        }
    }
    gy__log(GY_LOG_WARN, "core",
            "world stop has waited %.1f s for thread(s) %s to reach a safe point "
            "(blocking while attached needs gy_quiescent_begin)",
            waited, names);
    return warn_after * 2;
}

void gy__threads_lock(void) {
    if (pthread_mutex_trylock(&gy__rt.threads_lock) == 0) {
        return;
    }
    gy__heap *me = gy__tls_heap;
    if (me != NULL && atomic_load_explicit(&me->state, memory_order_relaxed) == GY__RUNNING) {
        /* The holder may be stopping the world and waiting for us: wait
         * quiescent. Once we hold the lock no stop is in progress (a stopper
         * keeps it until it resumes), so we are QUIESCENT, not HELD, and the
         * end of quiescence does not block. */
        gy_quiescent_begin();
        pthread_mutex_lock(&gy__rt.threads_lock);
        gy_quiescent_end();
    } else {
        pthread_mutex_lock(&gy__rt.threads_lock);
    }
}

void gy__world_stop(void) {
    gy__heap *me = gy__tls_heap;
    gy__threads_lock();
    atomic_store_explicit(&gy__rt.stop_requested, 1, memory_order_seq_cst);
    for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
        if (h != me && atomic_load_explicit(&h->state, memory_order_relaxed) == GY__RUNNING) {
            atomic_fetch_or_explicit(&h->pending, GY__PEND_STOP, memory_order_release);
            gy__heap_wake(h);
        }
    }
    pthread_mutex_lock(&gy__rt.park_lock);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    double warn_after = 1.0; /* seconds; doubles after each warning */
    for (;;) {
        bool all = true;
        for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
            if (h == me) {
                continue;
            }
            int s = atomic_load_explicit(&h->state, memory_order_seq_cst);
            if (s == GY__QUIESCENT) {
                /* acq_rel: the thread's writes before quiescence are ours. */
                if (!atomic_compare_exchange_strong_explicit(
                        &h->state, &s, GY__HELD, memory_order_acq_rel, memory_order_acquire)) {
                    all = false; /* it just woke: look again */
                }
            } else if (s == GY__RUNNING) {
                all = false;
            }
        }
        if (all) {
            break;
        }
        warn_after = stop_maybe_warn(me, &start, warn_after);
        /* Timed, so a thread that went quiescent without our signal is seen. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&gy__rt.park_cond, &gy__rt.park_lock, &until);
    }
    pthread_mutex_unlock(&gy__rt.park_lock);
    struct timespec parked;
    clock_gettime(CLOCK_MONOTONIC, &parked);
    gy__pause_ttsp((uint64_t)(parked.tv_sec - start.tv_sec) * 1000000000u +
                   (uint64_t)(parked.tv_nsec - start.tv_nsec));
    atomic_fetch_add_explicit(&gy__rt.world_stops, 1, memory_order_relaxed);
    if (me != NULL) {
        /* relaxed: a statistic only this thread writes. */
        atomic_store_explicit(&me->world_stops_made,
                              atomic_load_explicit(&me->world_stops_made, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    }
    /* threads_lock stays held until gy__world_resume. */
}

void gy__world_resume(void) {
    pthread_mutex_lock(&gy__rt.park_lock);
    atomic_store_explicit(&gy__rt.stop_requested, 0, memory_order_seq_cst);
    for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
        int s = GY__HELD;
        /* release: our writes during the stop happen before the thread runs. */
        atomic_compare_exchange_strong_explicit(&h->state, &s, GY__QUIESCENT, memory_order_release,
                                                memory_order_relaxed);
    }
    pthread_cond_broadcast(&gy__rt.park_cond);
    pthread_mutex_unlock(&gy__rt.park_lock);
    pthread_mutex_unlock(&gy__rt.threads_lock);
}

/* --- statistics ------------------------------------------------------------ */

/* The runtime's statistics, and when `mem` is not NULL the heaps' memory
 * figures of gy_memory_get_stats, in one walk under threads_lock. */
static void stats_sum(gy_runtime_stats *out, gy_memory_stats *mem) {
    memset(out, 0, sizeof *out);
    if (!gy_runtime_running()) {
        return;
    }
    gy__threads_lock();
    out->threads_attached = atomic_load_explicit(&gy__rt.nattached, memory_order_relaxed);
    out->world_stops = atomic_load_explicit(&gy__rt.world_stops, memory_order_relaxed);
    int64_t live = 0, bytes = 0;
    uint32_t ntypes = atomic_load_explicit(&gy__rt.ntypes, memory_order_acquire);
    for (uint32_t t = 0; t <= ntypes; t++) {
        gy_type_stats st;
        gy__type_sum(t, &st);
        out->objects_allocated += st.allocated;
        out->objects_freed += st.freed;
        live += st.live;
        bytes += st.bytes;
    }
    for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
        /* relaxed: statistics, summed without stopping the writers. */
        out->segments += atomic_load_explicit(&h->segments, memory_order_relaxed);
        out->segment_bytes += atomic_load_explicit(&h->segment_bytes, memory_order_relaxed);
        out->cascade_objects += atomic_load_explicit(&h->cascade_objects, memory_order_relaxed);
        out->cascade_ns += atomic_load_explicit(&h->cascade_ns, memory_order_relaxed);
        out->merges += atomic_load_explicit(&h->merges, memory_order_relaxed);
        out->last_ref_races += atomic_load_explicit(&h->last_ref_races, memory_order_relaxed);
        out->tryincref_refused += atomic_load_explicit(&h->tryincref_refused, memory_order_relaxed);
        out->internal_failures += atomic_load_explicit(&h->internal_failures, memory_order_relaxed);
        if (mem != NULL) {
            mem->spare_segments += atomic_load_explicit(&h->spare_segments, memory_order_relaxed);
            mem->trims += atomic_load_explicit(&h->trims, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&gy__rt.threads_lock);
    out->objects_live = live > 0 ? (uint64_t)live : 0;
    out->bytes_live = bytes > 0 ? (uint64_t)bytes : 0;
}

void gy_runtime_get_stats(gy_runtime_stats *out) { stats_sum(out, NULL); }

void gy_memory_get_stats(gy_memory_stats *out) {
    memset(out, 0, sizeof *out);
    if (!gy_runtime_running()) {
        return;
    }
    gy_runtime_stats rs;
    stats_sum(&rs, out);
    out->live_bytes = rs.bytes_live;
    out->segment_bytes = rs.segment_bytes;
    /* relaxed: statistics, summed without stopping the writers. */
    int64_t large = atomic_load_explicit(&gy__rt.large_bytes, memory_order_relaxed);
    out->large_bytes = large > 0 ? (uint64_t)large : 0;
    uint64_t held = out->segment_bytes + out->large_bytes;
    out->retained_bytes = held > out->live_bytes ? held - out->live_bytes : 0;
    gy__arena_allocator_stats(out);
}

/* --- shutdown ------------------------------------------------------------ */

/* With no thread attached, run every queued and deferred free, as each heap
 * in turn, until nothing moves. */
static void settle_all(void) {
    for (;;) {
        bool moved = false;
        for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
            gy__tls_heap = h;
            if (!CK_STACK_ISEMPTY(&h->inbox) || h->ndeferred != 0 || h->outbox != NULL) {
                moved = true;
            }
            heap_settle(h);
            gy__arena_reclaim_all(h);
        }
        if (!moved) {
            break;
        }
    }
    gy__tls_heap = NULL;
}

typedef struct leak_report {
    char *text;
    size_t len, cap;
    int count;
} leak_report;

static int report_leak(const gy_type *type, const gy_type_stats *st, void *arg) {
    leak_report *r = arg;
    if (st->live == 0) {
        return 0;
    }
    int n = snprintf(r->text + r->len, r->cap - r->len, "%s%s x%lld (%lld B)",
                     r->count ? ", " : "leaked: ", type->name ? type->name : "?",
                     (long long)st->live, (long long)st->bytes);
    if (n > 0) {
        r->len += (size_t)n < r->cap - r->len ? (size_t)n : r->cap - r->len - 1;
    }
    r->count++;
    return 0;
}

/* Give back every heap, the weak reference tables and the arena, and mark
 * the runtime stopped (init_lock held, no thread attached). */
static void runtime_teardown(void) {
    for (gy__heap *h = gy__rt.heaps; h != NULL;) {
        gy__heap *next = h->next;
        gy__arena_release_heap(h);
        heap_free(h);
        h = next;
    }
    gy__rt.heaps = NULL;
    gy__weakref_shutdown();
    gy__arena_shutdown();
    atomic_store_explicit(&gy__rt.running, 0, memory_order_release);
}

int gy_runtime_shutdown(gy_errmsg *err) {
    pthread_mutex_lock(&init_lock);
    if (!gy_runtime_running()) {
        pthread_mutex_unlock(&init_lock);
        return gy__errmsg_set(err, GY_ESTATE, "gy_runtime_shutdown: the runtime is not running");
    }
    pthread_mutex_lock(&gy__rt.threads_lock);
    /* The runtime's own threads (the collector's) are not the caller's. */
    uint64_t attached = atomic_load_explicit(&gy__rt.nattached, memory_order_relaxed) -
                        atomic_load_explicit(&gy__rt.ninternal, memory_order_relaxed);
    pthread_mutex_unlock(&gy__rt.threads_lock);
    if (attached != 0) {
        pthread_mutex_unlock(&init_lock);
        return gy__errmsg_set(
            err, GY_EBUSY, "gy_runtime_shutdown: %llu thread(s) still attached; detach them first",
            (unsigned long long)attached);
    }
    const gy__gc_hooks *hooks = gy__gc_hooks_get();
    if (hooks != NULL && hooks->stop != NULL) {
        hooks->stop(); /* joins the collector's thread, which detaches itself */
    }
    gy__tls_heap = gy__rt.heaps; /* a heap to free the roots from (NULL: none) */
    if (hooks != NULL && hooks->shutdown != NULL) {
        hooks->shutdown();
    }
    if (gy__rt.heaps != NULL) {
        gy__roots_release_all();
    }
    gy__tls_heap = NULL;
    settle_all();
    char text[GY_ERRMSG_SIZE];
    leak_report r = {text, 0, sizeof text, 0};
    text[0] = '\0';
    (void)gy_types_foreach(report_leak, &r);
    runtime_teardown();
    pthread_mutex_unlock(&init_lock);
    if (r.count > 0) {
        return gy__errmsg_set(err, GY_ELEAK, "%s", text);
    }
    return GY_OK;
}
