/* collector/src/thread.c: the collector's thread (GY_GC_MODE_CONCURRENT):
 * its request queue, its states and its statistics.
 *
 * One thread, "gyre-gc", attached to the runtime as an internal plain
 * thread, runs every collection of concurrent mode with today's
 * stop-the-world algorithm (gy__gc_collect_with_callbacks, under
 * collect_lock). It waits for work on a condition variable, quiescent, so a
 * world stop never waits for it. Work arrives as:
 *
 *   - an automatic request: a flag (q.auto_pending), set by a mutator's safe
 *     point that found a collection due (gc.c, collect_due); the thread
 *     then works out the generation itself, under gy__gc.lock, and drops
 *     the request when automatic collection was disabled meanwhile;
 *   - explicit requests (gy_gc_collect: the caller waits on q.done for its
 *     `finished`; gy_gc_collect_async: the answer goes to the requesting
 *     thread's mailbox, and that thread is woken to run `done` at its next
 *     safe point).
 *
 * Everything pending when the thread takes work is served by one
 * collection, of the oldest generation asked (an automatic request counts
 * with the generation thresholds call for then).
 *
 * Locks: q.lock guards the queue, every mailbox's shared fields, the state
 * and the statistics. It is a leaf but for a heap's wake_lock (the thread
 * wakes a requester while holding it, so that a detaching requester that
 * saw its last answer under q.lock is never woken afterwards): nobody
 * stops the world, takes collect_lock or gy__gc.lock, or calls user code
 * while holding it. Nobody waits on it while running (not quiescent) for
 * long: its holders never block under it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np (the build defines it) */
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector.h"
#include "gc_hooks.h"

/* One request. Synchronous ones live on the waiter's stack; asynchronous
 * ones are malloc'd and freed by their thread after `done` ran. */
typedef struct gc_request {
    struct gc_request *next;
    int generation;
    gy_gc_result res; /* written by the collector's thread before it answers */
    bool finished;    /* synchronous: answered (q.lock) */
    /* Asynchronous only (done != NULL). */
    gy_gc_result_fn done;
    void *arg;
    gy__heap *heap; /* the requester's, to wake it; valid until it detaches */
    struct gc_mailbox *box;
} gc_request;

/* A thread's asynchronous requests (thread-local: lives as long as the
 * thread, which answers all of them before it detaches). */
typedef struct gc_mailbox {
    /* q.lock: answered requests, in answer order; and the requests queued
     * or being served, not yet answered. */
    gc_request *answered;
    gc_request **answered_tail;
    uint32_t unanswered;
    /* The owner thread only: requests made since its last safe point, sent
     * together at the next one (so, as in STW mode, the requests a thread
     * makes between two safe points share one collection); and requests
     * made whose `done` has not run. */
    gc_request *unsent;
    gc_request **unsent_tail;
    uint32_t outstanding;
} gc_mailbox;

static _Thread_local gc_mailbox mailbox;
static _Thread_local bool on_collector_thread;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work; /* the thread waits for requests (and stop) */
    pthread_cond_t done; /* requesters wait for answers; start for the thread */
    gc_request *reqs;    /* queued explicit requests, in order */
    gc_request **reqs_tail;
    bool auto_pending;
    bool accepting; /* the thread runs and takes requests */
    bool stopping;
    bool started; /* the thread has attached, or failed to (start waits) */
    int start_rc;
    gy_errmsg start_err;
    pthread_t thread;
    gy_gc_thread_stats stats; /* state: STOPPED, IDLE or RUNNING (PAUSED is derived) */
} q = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .work = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};

/* Synchronization: written with init_lock held (start, shutdown), before
 * the thread starts and after it is joined; relaxed readers run on
 * attached threads, which started after. */
static _Atomic int mode = GY_GC_MODE_DEFAULT;

int gy__gc_mode(void) { return atomic_load_explicit(&mode, memory_order_relaxed); }

void gy__gc_mode_reset(void) {
    atomic_store_explicit(&mode, GY_GC_MODE_DEFAULT, memory_order_relaxed);
}

bool gy__gc_on_thread(void) { return on_collector_thread; }

/* --- the thread ------------------------------------------------------------ */

/* Hand every served request its answer (q.lock held). Synchronous waiters
 * find `finished`; asynchronous answers go to their thread's mailbox, and
 * that thread gets GY__PEND_COLLECT and a wake. */
static void answer_locked(gc_request *reqs, const gy_gc_result *res) {
    while (reqs != NULL) {
        gc_request *r = reqs;
        reqs = r->next;
        r->res = *res;
        r->next = NULL;
        if (r->done == NULL) {
            r->finished = true;
            continue;
        }
        gc_mailbox *box = r->box;
        *box->answered_tail = r;
        box->answered_tail = &r->next;
        box->unanswered--;
        /* release: the answer (written above, under q.lock, which the owner
         * takes to read it) is there before the owner's safe point runs. */
        atomic_fetch_or_explicit(&r->heap->pending, GY__PEND_COLLECT, memory_order_release);
        gy__heap_wake(r->heap);
    }
    pthread_cond_broadcast(&q.done);
}

/* One round of work: the requests taken, the collection, the answers. */
static void serve(gc_request *reqs, bool automatic_asked) {
    int generation = -1;
    for (gc_request *r = reqs; r != NULL; r = r->next) {
        generation = r->generation > generation ? r->generation : generation;
    }
    bool automatic = false;
    if (automatic_asked) {
        pthread_mutex_lock(&gy__gc.lock);
        int due = gy__gc.enabled ? gy__gc_generation_due() : -1;
        pthread_mutex_unlock(&gy__gc.lock);
        if (generation < 0) {
            generation = due;
            automatic = due >= 0;
        } else if (due > generation) {
            generation = due;
        }
    }
    gy_gc_result res;
    memset(&res, 0, sizeof res);
    uint64_t t0 = gy__clock_ns();
    if (generation >= 0) {
        gy__gc_collect_lock();
        gy__gc_collect_with_callbacks(generation, automatic, &res);
        pthread_mutex_unlock(&gy__gc.collect_lock);
    }
    uint64_t busy = gy__clock_ns() - t0;
    if (automatic_asked) {
        /* The request is served (or dropped): the next crossing of
         * threshold 0 may ask again. */
        pthread_mutex_lock(&gy__gc.lock);
        atomic_store_explicit(&gy__gc.auto_requested, false, memory_order_relaxed);
        gy__gc_limit_update();
        pthread_mutex_unlock(&gy__gc.lock);
    }
    /* relaxed: our own heap's counter. */
    uint64_t stops = atomic_load_explicit(&gy__tls_heap->world_stops_made, memory_order_relaxed);
    pthread_mutex_lock(&q.lock);
    if (generation >= 0) {
        q.stats.runs++;
        q.stats.busy_ns += busy;
    }
    /* Concurrent collections count their increments (pacing.c); a
     * stop-the-world one (the diagnostic, a fallback) counts none. */
    q.stats.increments = atomic_load_explicit(&gy__gc_increments_total, memory_order_relaxed);
    q.stats.epoch_hold_max_ns =
        atomic_load_explicit(&gy__gc_epoch_hold_max_ns, memory_order_relaxed);
    q.stats.epoch_hold_last_ns =
        atomic_load_explicit(&gy__gc_epoch_hold_last_ns, memory_order_relaxed);
    q.stats.aborted_runs = atomic_load_explicit(&gy__gc_aborted_runs, memory_order_relaxed);
    q.stats.world_stops = stops;
    q.stats.handshakes = atomic_load_explicit(&gy__gc_handshakes, memory_order_relaxed);
    q.stats.aborted_sets = atomic_load_explicit(&gy__gc_aborted_sets, memory_order_relaxed);
    q.stats.anomalies = atomic_load_explicit(&gy__gc_anomalies, memory_order_relaxed);
    q.stats.fallback_stops = atomic_load_explicit(&gy__gc_fallback_stops, memory_order_relaxed);
    answer_locked(reqs, &res);
    pthread_mutex_unlock(&q.lock);
}

static void *thread_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "gyre-gc");
    on_collector_thread = true;
    gy_thread_options opts = {.kind = GY_THREAD_PLAIN, .name = "gyre-gc"};
    gy_errmsg err = {0};
    int rc = gy__thread_attach_internal(&opts, &err);
    pthread_mutex_lock(&q.lock);
    q.started = true;
    q.start_rc = rc;
    q.start_err = err;
    pthread_cond_broadcast(&q.done);
    pthread_mutex_unlock(&q.lock);
    if (rc != GY_OK) {
        return NULL;
    }
    for (;;) {
        /* Free what the last collection handed back to us, merge counts. */
        gy_safepoint();
        /* Wait quiescent: a world stop counts us as stopped meanwhile. */
        gy_quiescent_begin();
        pthread_mutex_lock(&q.lock);
        /* Invariant: state is IDLE while we wait, RUNNING from taking work
         * until its answers are out. */
        while (!q.stopping && q.reqs == NULL && !q.auto_pending) {
            q.stats.state = GY_GC_THREAD_IDLE;
            pthread_cond_wait(&q.work, &q.lock);
        }
        if (q.reqs == NULL && !q.auto_pending) {
            pthread_mutex_unlock(&q.lock); /* stopping, nothing left */
            gy_quiescent_end();
            break;
        }
        gc_request *reqs = q.reqs;
        bool automatic = q.auto_pending;
        q.reqs = NULL;
        q.reqs_tail = &q.reqs;
        q.auto_pending = false;
        q.stats.state = GY_GC_THREAD_RUNNING;
        pthread_mutex_unlock(&q.lock);
        gy_quiescent_end();
        serve(reqs, automatic);
    }
    gy_thread_detach();
    return NULL;
}

/* --- start and stop ---------------------------------------------------------- */

static int resolve_mode(int gc_mode, int *out, gy_errmsg *err) {
    if (gc_mode == GY_GC_MODE_STW || gc_mode == GY_GC_MODE_CONCURRENT) {
        *out = gc_mode;
        return GY_OK;
    }
    if (gc_mode != GY_GC_MODE_DEFAULT) {
        return gy__errmsg_set(err, GY_EINVAL, "gy_runtime_init: gc_mode %d is not a gy_gc_mode",
                              gc_mode);
    }
    const char *env = getenv("GYRE_GC_MODE");
    if (env == NULL) {
        *out = GY_GC_MODE_CONCURRENT;
    } else if (strcmp(env, "stw") == 0) {
        *out = GY_GC_MODE_STW;
    } else if (strcmp(env, "concurrent") == 0) {
        *out = GY_GC_MODE_CONCURRENT;
    } else {
        return gy__errmsg_set(err, GY_EINVAL,
                              "gy_runtime_init: GYRE_GC_MODE is '%.64s'; it must be 'stw' or "
                              "'concurrent'",
                              env);
    }
    return GY_OK;
}

/* Concurrent marking (collector/DESIGN.md 9.5, 9.14) is how concurrent
 * mode collects. GYRE_GC_MARK=stop at runtime start makes the collector's
 * thread mark with the world stopped instead (stage 2's way), a diagnostic
 * switch for telling a concurrent-marking defect from any other. Relaxed:
 * set at runtime start, before the thread runs. */
static _Atomic bool mark_concurrent;

bool gy__gc_mark_concurrent(void) {
    return atomic_load_explicit(&mark_concurrent, memory_order_relaxed);
}

int gy__gc_thread_start(int gc_mode, gy_errmsg *err) {
    int m = GY_GC_MODE_CONCURRENT; /* set by resolve_mode on success */
    int rc = resolve_mode(gc_mode, &m, err);
    if (rc != GY_OK) {
        return rc;
    }
    const char *mark = getenv("GYRE_GC_MARK");
    if (mark != NULL && strcmp(mark, "concurrent") != 0 && strcmp(mark, "stop") != 0) {
        return gy__errmsg_set(err, GY_EINVAL,
                              "gy_runtime_init: GYRE_GC_MARK is '%.64s'; it must be 'concurrent' "
                              "or 'stop'",
                              mark);
    }
    atomic_store_explicit(&mark_concurrent, mark == NULL || strcmp(mark, "concurrent") == 0,
                          memory_order_relaxed);
    pthread_mutex_lock(&q.lock);
    memset(&q.stats, 0, sizeof q.stats);
    atomic_store_explicit(&gy__gc_handshakes, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__gc_aborted_sets, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__gc_anomalies, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__gc_fallback_stops, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__gc_increments_total, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__gc_epoch_hold_max_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__gc_epoch_hold_last_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__gc_aborted_runs, 0, memory_order_relaxed);
    q.stats.state = GY_GC_THREAD_STOPPED;
    q.reqs = NULL;
    q.reqs_tail = &q.reqs;
    q.auto_pending = false;
    q.accepting = false;
    q.stopping = false;
    q.started = false;
    pthread_mutex_unlock(&q.lock);
    if (m == GY_GC_MODE_STW) {
        atomic_store_explicit(&mode, m, memory_order_relaxed);
        return GY_OK;
    }
    /* The mode is set before the thread runs: its own safe points read it. */
    atomic_store_explicit(&mode, m, memory_order_relaxed);
    pthread_mutex_lock(&q.lock);
    q.accepting = true;
    q.stats.state = GY_GC_THREAD_IDLE;
    pthread_mutex_unlock(&q.lock);
    int prc = pthread_create(&q.thread, NULL, thread_main, NULL);
    if (prc != 0) {
        pthread_mutex_lock(&q.lock);
        q.accepting = false;
        q.stats.state = GY_GC_THREAD_STOPPED;
        pthread_mutex_unlock(&q.lock);
        gy__gc_mode_reset();
        return gy__errmsg_set(
            err, GY_EAGAIN, "gy_runtime_init: cannot start the collector's thread (error %d)", prc);
    }
    pthread_mutex_lock(&q.lock);
    while (!q.started) {
        pthread_cond_wait(&q.done, &q.lock);
    }
    rc = q.start_rc;
    if (rc != GY_OK) {
        q.accepting = false;
        q.stats.state = GY_GC_THREAD_STOPPED;
        if (err != NULL) {
            *err = q.start_err;
        }
    }
    pthread_mutex_unlock(&q.lock);
    if (rc != GY_OK) {
        pthread_join(q.thread, NULL);
        gy__gc_mode_reset();
    }
    return rc;
}

void gy__gc_thread_stop(void) {
    if (gy__gc_mode() != GY_GC_MODE_CONCURRENT) {
        return;
    }
    pthread_mutex_lock(&q.lock);
    bool running = q.accepting;
    q.accepting = false;
    q.stopping = true;
    pthread_cond_signal(&q.work);
    pthread_mutex_unlock(&q.lock);
    if (running) {
        pthread_join(q.thread, NULL); /* it finishes its collection, then detaches */
    }
    pthread_mutex_lock(&q.lock);
    q.stats.state = GY_GC_THREAD_STOPPED;
    pthread_mutex_unlock(&q.lock);
}

/* --- requests ------------------------------------------------------------------ */

void gy__gc_thread_wake_auto(void) {
    pthread_mutex_lock(&q.lock);
    if (q.accepting) {
        q.auto_pending = true;
        pthread_cond_signal(&q.work);
    }
    pthread_mutex_unlock(&q.lock);
}

void gy__gc_thread_wait_auto(uint64_t deadline_ns) {
    gy_quiescent_begin();
    pthread_mutex_lock(&q.lock);
    /* The thread clears auto_requested (under gy__gc.lock) before it takes
     * q.lock to broadcast q.done, so this check and wait miss no end; the
     * 50 ms timeout is a guard, not a poll that matters. */
    while (q.accepting && atomic_load_explicit(&gy__gc.auto_requested, memory_order_relaxed)) {
        uint64_t now = gy__clock_ns();
        if (deadline_ns != 0 && now >= deadline_ns) {
            break;
        }
        long wait_ns = deadline_ns != 0 && deadline_ns - now < 50 * 1000000ULL
                           ? (long)(deadline_ns - now)
                           : 50 * 1000000L;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += wait_ns;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&q.done, &q.lock, &until);
    }
    pthread_mutex_unlock(&q.lock);
    gy_quiescent_end();
}

static bool enqueue_locked(gc_request *r) {
    if (!q.accepting) {
        return false;
    }
    r->next = NULL;
    *q.reqs_tail = r;
    q.reqs_tail = &r->next;
    pthread_cond_signal(&q.work);
    return true;
}

int gy__gc_thread_collect(int generation, gy_gc_result *out, gy_errmsg *err) {
    gc_request req = {.generation = generation};
    /* Quiescent first: from here to the answer we touch no object, and the
     * collection stops the world. */
    gy_quiescent_begin();
    pthread_mutex_lock(&q.lock);
    bool queued = enqueue_locked(&req);
    while (queued && !req.finished) {
        pthread_cond_wait(&q.done, &q.lock);
    }
    pthread_mutex_unlock(&q.lock);
    gy_quiescent_end();
    if (!queued) {
        return gy__errmsg_set(err, GY_ESTATE, "gy_gc_collect: the collector's thread is stopped");
    }
    /* What the collection freed of our objects came back to our inbox:
     * free it now, as the caller of a collection expects. */
    gy_safepoint();
    if (out != NULL) {
        *out = req.res;
    }
    return GY_OK;
}

int gy__gc_thread_collect_async(int generation, gy_gc_result_fn done, void *arg, gy_errmsg *err) {
    pthread_mutex_lock(&q.lock);
    bool accepting = q.accepting;
    pthread_mutex_unlock(&q.lock);
    if (!accepting) {
        return gy__errmsg_set(err, GY_ESTATE,
                              "gy_gc_collect_async: the collector's thread is stopped");
    }
    gc_request *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return gy__errmsg_set(err, GY_ENOMEM, "gy_gc_collect_async: no memory for the request");
    }
    r->generation = generation;
    r->done = done;
    r->arg = arg;
    r->heap = gy__tls_heap;
    r->box = &mailbox;
    if (mailbox.unsent_tail == NULL) {
        mailbox.unsent_tail = &mailbox.unsent;
    }
    *mailbox.unsent_tail = r;
    mailbox.unsent_tail = &r->next;
    mailbox.outstanding++;
    /* relaxed: our own pending word, read at our next safe point, which
     * sends the request. */
    atomic_fetch_or_explicit(&r->heap->pending, GY__PEND_COLLECT, memory_order_relaxed);
    gy__heap_wake(r->heap);
    return GY_OK;
}

bool gy__gc_thread_has_requests(void) { return mailbox.outstanding > 0; }

/* Send this thread's unsent requests, all at once; answer them GY_ESTATE
 * if the thread has stopped meanwhile (shutdown: nobody else is left). */
static void send_unsent(void) {
    gc_request *list = mailbox.unsent;
    if (list == NULL) {
        return;
    }
    mailbox.unsent = NULL;
    mailbox.unsent_tail = &mailbox.unsent;
    pthread_mutex_lock(&q.lock);
    if (mailbox.answered_tail == NULL) {
        mailbox.answered_tail = &mailbox.answered;
    }
    bool accepting = q.accepting;
    while (accepting && list != NULL) {
        gc_request *r = list;
        list = r->next;
        (void)enqueue_locked(r);
        mailbox.unanswered++;
    }
    pthread_mutex_unlock(&q.lock);
    gy_gc_result none;
    memset(&none, 0, sizeof none);
    while (list != NULL) {
        gc_request *r = list;
        list = r->next;
        mailbox.outstanding--;
        none.generation = r->generation;
        r->done(GY_ESTATE, &none, r->arg);
        free(r);
    }
}

void gy__gc_thread_answer(void) {
    if (mailbox.outstanding == 0) {
        return;
    }
    send_unsent();
    pthread_mutex_lock(&q.lock);
    gc_request *list = mailbox.answered;
    mailbox.answered = NULL;
    mailbox.answered_tail = &mailbox.answered;
    pthread_mutex_unlock(&q.lock);
    while (list != NULL) {
        gc_request *r = list;
        list = r->next;
        mailbox.outstanding--;
        r->done(GY_OK, &r->res, r->arg);
        free(r);
    }
}

void gy__gc_thread_detach(void) {
    /* A `done` may ask again: go on until nothing is outstanding. */
    while (mailbox.outstanding > 0) {
        send_unsent();
        gy_quiescent_begin();
        pthread_mutex_lock(&q.lock);
        while (mailbox.unanswered > 0) {
            pthread_cond_wait(&q.done, &q.lock);
        }
        pthread_mutex_unlock(&q.lock);
        gy_quiescent_end();
        gy__gc_thread_answer();
    }
}

/* --- statistics ------------------------------------------------------------------ */

void gy_gc_get_thread_stats(gy_gc_thread_stats *out) {
    bool enabled = gy_gc_isenabled();
    pthread_mutex_lock(&q.lock);
    *out = q.stats;
    pthread_mutex_unlock(&q.lock);
    if (out->state == GY_GC_THREAD_IDLE && !enabled) {
        out->state = GY_GC_THREAD_PAUSED;
    }
}

gy_gc_mode gy_gc_get_mode(void) { return (gy_gc_mode)gy__gc_mode(); }

const char *gy_gc_mode_name(int m) {
    switch (m) {
    case GY_GC_MODE_DEFAULT:
        return "default";
    case GY_GC_MODE_STW:
        return "stw";
    case GY_GC_MODE_CONCURRENT:
        return "concurrent";
    default:
        return NULL;
    }
}
