/* collector/src/gc.c: the public contract (Python's gc module): settings,
 * counts, statistics, callbacks, scheduling, freeze and get_objects. The
 * algorithm itself is in collect.c. */
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "gc_hooks.h"

gc_state gy__gc = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .collect_lock = PTHREAD_MUTEX_INITIALIZER,
    .enabled = true,
    .threshold = {700, 10, 10},
};

/* Set by a thread while it runs a collection: a nested gy_gc_collect (from a
 * finalizer or callback) fails instead of deadlocking on collect_lock. */
static _Thread_local bool in_collection;

static const char *const phase_names[GY_GC_PHASES] = {
    "update", "subtract", "mark", "handle", "finalize", "clear",
};

const char *gy_gc_phase_name(int phase) {
    return phase >= 0 && phase < GY_GC_PHASES ? phase_names[phase] : NULL;
}

/* rt.gc_young_limit from the settings (lock held): "never" while disabled
 * or with threshold 0 at 0; GC_SOFT_BEHIND thresholds while an automatic
 * request is pending or running on the collector's thread (its end sets the
 * limit again); else threshold 0. */
void gy__gc_limit_update(void) {
    bool on = gy__gc.enabled && gy__gc.threshold[0] > 0;
    /* While an automatic collection is asked for or running, the next
     * trigger is the throttle's: generation 0 GC_SOFT_BEHIND times its
     * threshold (collect_due_concurrent). */
    bool behind = atomic_load_explicit(&gy__gc.auto_requested, memory_order_relaxed);
    int64_t limit = !on      ? INT64_MAX
                    : behind ? gy__gc.threshold[0] * GC_SOFT_BEHIND
                             : gy__gc.threshold[0];
    /* relaxed: a trigger; a thread may cross the old limit once more. */
    atomic_store_explicit(&gy__rt.gc_young_limit, limit, memory_order_relaxed);
}

void gy__gc_collect_lock(void) {
    if (pthread_mutex_trylock(&gy__gc.collect_lock) == 0) {
        return;
    }
    /* Another collection runs and will stop the world: wait quiescent. */
    gy_quiescent_begin();
    pthread_mutex_lock(&gy__gc.collect_lock);
    gy_quiescent_end();
}

/* --- running a collection ------------------------------------------------- */

static size_t callbacks_copy(gc_callback *out) {
    pthread_mutex_lock(&gy__gc.lock);
    size_t n = gy__gc.ncallbacks;
    memcpy(out, gy__gc.callbacks, n * sizeof *out);
    pthread_mutex_unlock(&gy__gc.lock);
    return n;
}

/* One collection with its callbacks; collect_lock held. */
void gy__gc_collect_with_callbacks(int generation, bool automatic, gy_gc_result *res) {
    /* On a mutator (stw mode) the whole collection is that thread's pause;
     * the collector's own thread is nobody's mutator. */
    uint64_t t0 = gy__gc_on_thread() ? 0 : gy__clock_ns();
    gc_callback cbs[GY_GC_CALLBACKS_MAX];
    size_t ncb = callbacks_copy(cbs);
    gy_gc_callback_info info = {.generation = generation};
    in_collection = true;
    for (size_t i = 0; i < ncb; i++) {
        cbs[i].fn(GY_GC_START, &info, cbs[i].arg);
    }
    if (gy__log_enabled(GY_LOG_INFO) &&
        (atomic_load_explicit(&gy__gc.debug, memory_order_relaxed) & GY_GC_DEBUG_STATS)) {
        gy__log(GY_LOG_INFO, "gc", "gc: collecting generation %d...", generation);
    }
    if (gy__gc_mode() == GY_GC_MODE_CONCURRENT && gy__gc_on_thread() && gy__gc_mark_concurrent()) {
        gy__gc_run_concurrent(generation, res); /* the world keeps running */
    } else {
        gy__gc_run(generation, res);
    }
    pthread_mutex_lock(&gy__gc.lock);
    if (automatic) {
        gy__gc.info.automatic++;
    } else {
        gy__gc.info.explicit_++;
    }
    pthread_mutex_unlock(&gy__gc.lock);
    info.collected = res->collected;
    info.uncollectable = res->uncollectable;
    info.duration_ns = res->duration_ns;
    for (size_t i = 0; i < ncb; i++) {
        cbs[i].fn(GY_GC_STOP, &info, cbs[i].arg);
    }
    in_collection = false;
    if (t0 != 0) {
        gy__pause_record(gy__tls_heap, GY_PAUSE_COLLECTOR_WORK, t0, gy__clock_ns());
    }
}

static int check_generation(int generation, gy_errmsg *err, const char *fn) {
    if (generation < 0 || generation >= GY_GC_GENERATIONS) {
        return gy__errmsg_set(err, GY_EINVAL, "%s: invalid generation %d (0, 1 or 2)", fn,
                              generation);
    }
    return GY_OK;
}

int gy_gc_collect(int generation, gy_gc_result *out, gy_errmsg *err) {
    int rc = check_generation(generation, err, "gy_gc_collect");
    if (rc != GY_OK) {
        return rc;
    }
    if (gy__tls_heap == NULL) {
        return gy__errmsg_set(err, GY_ESTATE, "gy_gc_collect: the thread is not attached");
    }
    if (in_collection || gy__gc_on_thread()) {
        return gy__errmsg_set(err, GY_EBUSY,
                              "gy_gc_collect: called from inside a collection (finalizer or "
                              "callback)");
    }
    bool concurrent = gy__gc_mode() == GY_GC_MODE_CONCURRENT;
    if (concurrent && gy__tls_heap->kind == GY_THREAD_LOOP) {
        return gy__errmsg_set(err, GY_ESTATE,
                              "gy_gc_collect: refused on a loop thread in concurrent mode (a loop "
                              "never waits for the collector); use gy_gc_collect_async");
    }
    gy_gc_result res;
    /* A call to collect is a safe point: merges handed to this thread first,
     * so objects already dead are freed, not examined (but no automatic
     * collection there: this one is about to run). */
    in_collection = true;
    gy_safepoint();
    in_collection = false;
    if (concurrent) {
        return gy__gc_thread_collect(generation, out, err);
    }
    gy__gc_collect_lock();
    gy__gc_collect_with_callbacks(generation, false, &res);
    pthread_mutex_unlock(&gy__gc.collect_lock);
    if (out != NULL) {
        *out = res;
    }
    return GY_OK;
}

/* Requests of gy_gc_collect_async, per thread, answered at its safe point. */
typedef struct async_req {
    struct async_req *next;
    int generation;
    gy_gc_result_fn done;
    void *arg;
} async_req;
static _Thread_local async_req *async_pending;

int gy_gc_collect_async(int generation, gy_gc_result_fn done, void *arg, gy_errmsg *err) {
    int rc = check_generation(generation, err, "gy_gc_collect_async");
    if (rc != GY_OK) {
        return rc;
    }
    gy__heap *h = gy__tls_heap;
    if (h == NULL) {
        return gy__errmsg_set(err, GY_ESTATE, "gy_gc_collect_async: the thread is not attached");
    }
    if (done == NULL) {
        return gy__errmsg_set(err, GY_EINVAL, "gy_gc_collect_async: no callback");
    }
    if (gy__gc_mode() == GY_GC_MODE_CONCURRENT) {
        return gy__gc_thread_collect_async(generation, done, arg, err);
    }
    async_req *req = malloc(sizeof *req);
    if (req == NULL) {
        return gy__errmsg_set(err, GY_ENOMEM, "gy_gc_collect_async: no memory for the request");
    }
    req->generation = generation;
    req->done = done;
    req->arg = arg;
    /* Answered in request order. */
    async_req **tail = &async_pending;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    req->next = NULL;
    *tail = req;
    /* relaxed: our own pending word, read at our next safe point. */
    atomic_fetch_or_explicit(&h->pending, GY__PEND_COLLECT, memory_order_relaxed);
    gy__heap_wake(h);
    return GY_OK;
}

static void answer_async(void) {
    async_req *reqs = async_pending;
    async_pending = NULL;
    int generation = 0;
    for (async_req *q = reqs; q != NULL; q = q->next) {
        generation = q->generation > generation ? q->generation : generation;
    }
    gy_gc_result res;
    gy__gc_collect_lock();
    gy__gc_collect_with_callbacks(generation, false, &res);
    pthread_mutex_unlock(&gy__gc.collect_lock);
    while (reqs != NULL) {
        async_req *q = reqs;
        reqs = q->next;
        q->done(GY_OK, &res, q->arg);
        free(q);
    }
}

/* Which generation thresholds call for (lock held), or -1: nothing unless
 * generation 0's count passed threshold 0 (CPython collects only from an
 * allocation that crossed it; threshold 0 == 0 turns it all off). */
int gy__gc_generation_due(void) {
    long count0 = (long)atomic_load_explicit(&gy__rt.gc_young, memory_order_relaxed);
    if (gy__gc.threshold[0] <= 0 || count0 <= gy__gc.threshold[0]) {
        return -1;
    }
    for (int g = GY_GC_GENERATIONS - 1; g >= 1; g--) {
        if (gy__gc.count[g] > gy__gc.threshold[g]) {
            if (g == GY_GC_GENERATIONS - 1 &&
                gy__gc.long_lived_pending < gy__gc.long_lived_total / 4) {
                continue; /* not worth a full collection yet */
            }
            return g;
        }
    }
    return 0;
}

/* Pacing (collector/DESIGN.md 9.15): mutators never wait for the collector
 * to start, but one whose safe point finds generation 0 at GC_SOFT_BEHIND
 * times its threshold while an automatic collection is asked for or running
 * waits (quiescent) for that collection to end, for at most the pause goal,
 * then runs three goals before it waits again; from GC_BEHIND thresholds on
 * (the hard limit) it waits until the collection ends: allocation
 * throttling, timed as `assist` pauses (pacing.c). It bounds the garbage a
 * saturated machine piles up while the collector's thread waits for a
 * core. Never on the collector's thread, nor inside a collection (a
 * finalizer's safe point). */
static void throttle_if_behind(void) {
    if (in_collection || gy__gc_on_thread()) {
        return;
    }
    pthread_mutex_lock(&gy__gc.lock);
    long t0 = gy__gc.threshold[0];
    bool asked = gy__gc.enabled && t0 > 0 &&
                 atomic_load_explicit(&gy__gc.auto_requested, memory_order_relaxed);
    pthread_mutex_unlock(&gy__gc.lock);
    long young = (long)atomic_load_explicit(&gy__rt.gc_young, memory_order_relaxed);
    if (asked && young >= t0 * GC_SOFT_BEHIND) {
        gy__gc_throttle(young >= t0 * GC_BEHIND); /* within the pause goal (pacing.c) */
    }
}

/* Concurrent mode's safe-point hook: run the `done` of this thread's
 * answered requests; if a collection is due and none is asked for or
 * running, wake the collector's thread. Never collects; waits only when
 * the collector fell behind (throttle_if_behind). */
static void collect_due_concurrent(void) {
    if (gy__gc_thread_has_requests()) {
        if (in_collection) {
            /* gy_gc_collect's own safe point (or, on the collector's
             * thread, a finalizer's): later. Keep the bit. */
            atomic_fetch_or_explicit(&gy__tls_heap->pending, GY__PEND_COLLECT,
                                     memory_order_relaxed);
        } else {
            gy__gc_thread_answer();
        }
    }
    /* relaxed: a hint (the decision is made under the lock); while a
     * request is pending or running, this is all a safe point costs, unless
     * the collector fell behind. */
    if (atomic_load_explicit(&gy__gc.auto_requested, memory_order_relaxed)) {
        throttle_if_behind();
        return;
    }
    pthread_mutex_lock(&gy__gc.lock);
    bool ask = gy__gc.enabled &&
               !atomic_load_explicit(&gy__gc.auto_requested, memory_order_relaxed) &&
               gy__gc_generation_due() >= 0;
    if (ask) {
        atomic_store_explicit(&gy__gc.auto_requested, true, memory_order_relaxed);
        gy__gc_limit_update(); /* only the throttle's trigger until it is served */
    }
    pthread_mutex_unlock(&gy__gc.lock);
    if (ask) {
        gy__gc_thread_wake_auto();
    }
}

/* The safe-point hook: answer this thread's requests, then collect if the
 * thresholds say so (unless another collection is running). */
static void collect_due(void) {
    if (gy__gc_mode() == GY_GC_MODE_CONCURRENT) {
        collect_due_concurrent();
        return;
    }
    if (in_collection) {
        /* A safe point inside our own finalizer: later. Keep the bit. */
        if (async_pending != NULL) {
            atomic_fetch_or_explicit(&gy__tls_heap->pending, GY__PEND_COLLECT,
                                     memory_order_relaxed);
        }
        return;
    }
    if (async_pending != NULL) {
        answer_async();
    }
    pthread_mutex_lock(&gy__gc.lock);
    bool on = gy__gc.enabled;
    pthread_mutex_unlock(&gy__gc.lock);
    if (!on || pthread_mutex_trylock(&gy__gc.collect_lock) != 0) {
        return; /* disabled, or someone else is collecting */
    }
    pthread_mutex_lock(&gy__gc.lock);
    int g = gy__gc.enabled ? gy__gc_generation_due() : -1;
    pthread_mutex_unlock(&gy__gc.lock);
    if (g >= 0) {
        gy_gc_result res;
        gy__gc_collect_with_callbacks(g, true, &res);
    }
    pthread_mutex_unlock(&gy__gc.collect_lock);
}

/* --- settings ------------------------------------------------------------- */

static bool set_enabled(bool on) {
    pthread_mutex_lock(&gy__gc.lock);
    bool was = gy__gc.enabled;
    gy__gc.enabled = on;
    gy__gc_limit_update();
    pthread_mutex_unlock(&gy__gc.lock);
    return was;
}

bool gy_gc_enable(void) { return set_enabled(true); }
bool gy_gc_disable(void) { return set_enabled(false); }

bool gy_gc_isenabled(void) {
    pthread_mutex_lock(&gy__gc.lock);
    bool on = gy__gc.enabled;
    pthread_mutex_unlock(&gy__gc.lock);
    return on;
}

void gy_gc_get_threshold(long out[GY_GC_GENERATIONS]) {
    pthread_mutex_lock(&gy__gc.lock);
    memcpy(out, gy__gc.threshold, sizeof gy__gc.threshold);
    pthread_mutex_unlock(&gy__gc.lock);
}

int gy_gc_set_threshold(long t0, long t1, long t2, gy_errmsg *err) {
    long t[GY_GC_GENERATIONS] = {t0, t1, t2};
    for (int g = 0; g < GY_GC_GENERATIONS; g++) {
        if (t[g] < 0 || t[g] > GY_GC_THRESHOLD_MAX) {
            return gy__errmsg_set(err, GY_EINVAL,
                                  "gy_gc_set_threshold: threshold %d is %ld; it must be 0..%d", g,
                                  t[g], GY_GC_THRESHOLD_MAX);
        }
    }
    pthread_mutex_lock(&gy__gc.lock);
    memcpy(gy__gc.threshold, t, sizeof t);
    gy__gc_limit_update();
    pthread_mutex_unlock(&gy__gc.lock);
    return GY_OK;
}

void gy_gc_get_count(long out[GY_GC_GENERATIONS]) {
    int64_t young = 0;
    if (gy_runtime_running()) {
        gy__threads_lock();
        young = atomic_load_explicit(&gy__rt.gc_young, memory_order_relaxed);
        for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
            young += atomic_load_explicit(&h->gc_delta, memory_order_relaxed);
        }
        pthread_mutex_unlock(&gy__rt.threads_lock);
    }
    pthread_mutex_lock(&gy__gc.lock);
    out[0] = young > 0 ? (long)young : 0;
    out[1] = gy__gc.count[1];
    out[2] = gy__gc.count[2];
    pthread_mutex_unlock(&gy__gc.lock);
}

void gy_gc_get_stats(gy_gc_gen_stats out[GY_GC_GENERATIONS]) {
    pthread_mutex_lock(&gy__gc.lock);
    memcpy(out, gy__gc.stats, sizeof gy__gc.stats);
    pthread_mutex_unlock(&gy__gc.lock);
}

void gy_gc_get_info(gy_gc_info *out) {
    pthread_mutex_lock(&gy__gc.lock);
    *out = gy__gc.info;
    pthread_mutex_unlock(&gy__gc.lock);
    out->world_stops = atomic_load_explicit(&gy__rt.world_stops, memory_order_relaxed);
}

int gy_gc_set_debug(unsigned flags) {
    if (flags & ~(unsigned)(GY_GC_DEBUG_STATS | GY_GC_DEBUG_LEAK)) {
        return GY_EINVAL;
    }
    atomic_store_explicit(&gy__gc.debug, flags, memory_order_relaxed);
    return GY_OK;
}

unsigned gy_gc_get_debug(void) { return atomic_load_explicit(&gy__gc.debug, memory_order_relaxed); }

int gy_gc_callback_add(gy_gc_callback_fn fn, void *arg) {
    if (fn == NULL) {
        return GY_EINVAL;
    }
    int rc = GY_OK;
    pthread_mutex_lock(&gy__gc.lock);
    for (size_t i = 0; i < gy__gc.ncallbacks; i++) {
        if (gy__gc.callbacks[i].fn == fn && gy__gc.callbacks[i].arg == arg) {
            rc = GY_EEXIST;
        }
    }
    if (rc == GY_OK && gy__gc.ncallbacks == GY_GC_CALLBACKS_MAX) {
        rc = GY_ERANGE;
    }
    if (rc == GY_OK) {
        gy__gc.callbacks[gy__gc.ncallbacks++] = (gc_callback){fn, arg};
    }
    pthread_mutex_unlock(&gy__gc.lock);
    return rc;
}

int gy_gc_callback_remove(gy_gc_callback_fn fn, void *arg) {
    int rc = GY_ENOENT;
    pthread_mutex_lock(&gy__gc.lock);
    for (size_t i = 0; i < gy__gc.ncallbacks; i++) {
        if (gy__gc.callbacks[i].fn == fn && gy__gc.callbacks[i].arg == arg) {
            memmove(&gy__gc.callbacks[i], &gy__gc.callbacks[i + 1],
                    (gy__gc.ncallbacks - i - 1) * sizeof gy__gc.callbacks[0]);
            gy__gc.ncallbacks--;
            rc = GY_OK;
            break;
        }
    }
    pthread_mutex_unlock(&gy__gc.lock);
    return rc;
}

/* --- objects ------------------------------------------------------------------ */

bool gy_gc_is_tracked(const void *obj) { return gc_word(obj) != NULL; }

bool gy_gc_is_finalized(const void *obj) {
    const gy_object *ob = obj;
    return (atomic_load_explicit(&((gy_object *)(uintptr_t)ob)->gy__shared, memory_order_acquire) &
            GY__RC_FINALIZED) != 0;
}

typedef struct grab {
    const gy_object *skip; /* the result list itself, as CPython skips it */
    gy_object **objs;
    size_t n, cap;
    bool failed;
} grab;

static void grab_one(gy_object *ob, uint32_t *word, gy__segment *seg, void *arg) {
    (void)word;
    (void)seg;
    grab *g = arg;
    if (ob == g->skip || g->failed) {
        return;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 1024;
        gy_object **grown = realloc(g->objs, cap * sizeof *grown);
        if (grown == NULL) {
            g->failed = true;
            return;
        }
        g->objs = grown;
        g->cap = cap;
    }
    gy_incref(ob); /* world stopped, count positive: a plain incref */
    g->objs[g->n++] = ob;
}

int gy_gc_get_objects(int generation, gy_list **out, gy_errmsg *err) {
    if (generation < -1 || generation >= GY_GC_GENERATIONS) {
        return gy__errmsg_set(err, GY_EINVAL,
                              "gy_gc_get_objects: invalid generation %d (-1 for all, or 0..2)",
                              generation);
    }
    if (gy__tls_heap == NULL) {
        return gy__errmsg_set(err, GY_ESTATE, "gy_gc_get_objects: the thread is not attached");
    }
    if (in_collection) {
        return gy__errmsg_set(err, GY_EBUSY,
                              "gy_gc_get_objects: called from inside a collection (finalizer or "
                              "callback)");
    }
    gy_list *list;
    int rc = gy_list_new(&list);
    if (rc != GY_OK) {
        return gy__errmsg_set(err, rc, "gy_gc_get_objects: no memory for the list");
    }
    grab g = {.skip = (const gy_object *)list};
    gy__gc_collect_lock();
    gy__world_stop();
    gy__gc_walk(generation < 0 ? 7u : 1u << generation, grab_one, &g);
    gy__world_resume();
    pthread_mutex_unlock(&gy__gc.collect_lock);
    for (size_t i = 0; i < g.n; i++) {
        if (rc == GY_OK && !g.failed) {
            rc = gy_list_append(list, g.objs[i]);
        }
        gy_decref(g.objs[i]);
    }
    free(g.objs);
    if (rc != GY_OK || g.failed) {
        gy_decref(list);
        return gy__errmsg_set(err, GY_ENOMEM, "gy_gc_get_objects: out of memory");
    }
    *out = list;
    return GY_OK;
}

static void move_gen(gy_object *ob, uint32_t *word, gy__segment *seg, void *arg) {
    (void)ob;
    unsigned to = *(const unsigned *)arg;
    *word = to;
    atomic_fetch_or_explicit(&seg->gc_gens, (uint8_t)(1u << to), memory_order_relaxed);
}

static void count_one(gy_object *ob, uint32_t *word, gy__segment *seg, void *arg) {
    (void)ob;
    (void)word;
    (void)seg;
    (*(size_t *)arg)++;
}

/* Walk `gens` with the world stopped; `reset_young`: generation 0's count
 * starts again too (CPython's freeze empties it). */
static void walk_stopped(unsigned gens, gc_cell_fn fn, void *arg, bool reset_young) {
    if (gy__tls_heap == NULL || in_collection) {
        return; /* inside a collection (a callback): this thread holds collect_lock */
    }
    gy__gc_collect_lock();
    gy__world_stop();
    gy__gc_walk(gens, fn, arg);
    if (reset_young) {
        gy__gc_young_reset();
    }
    gy__world_resume();
    pthread_mutex_unlock(&gy__gc.collect_lock);
}

void gy_gc_freeze(void) {
    unsigned to = GC_PERMANENT;
    walk_stopped(7u, move_gen, &to, true);
}

void gy_gc_unfreeze(void) {
    unsigned to = 2;
    walk_stopped(1u << GC_PERMANENT, move_gen, &to, false);
}

size_t gy_gc_get_freeze_count(void) {
    size_t n = 0;
    walk_stopped(1u << GC_PERMANENT, count_one, &n, false);
    return n;
}

/* --- the garbage list ---------------------------------------------------------- */

int gy_gc_garbage(gy_list **out) {
    if (gy__tls_heap == NULL) {
        return GY_ESTATE;
    }
    bool nested = in_collection; /* a callback: this thread holds collect_lock */
    if (!nested) {
        gy__gc_collect_lock();
    }
    int rc = GY_OK;
    if (gy__gc.garbage == NULL) {
        rc = gy_list_new(&gy__gc.garbage);
    }
    if (rc == GY_OK) {
        gy_incref(gy__gc.garbage);
        *out = gy__gc.garbage;
    }
    if (!nested) {
        pthread_mutex_unlock(&gy__gc.collect_lock);
    }
    return rc;
}

size_t gy_gc_garbage_clear(void) {
    if (gy__tls_heap == NULL) {
        return 0;
    }
    bool nested = in_collection;
    if (!nested) {
        gy__gc_collect_lock();
    }
    gy_list *g = gy__gc.garbage;
    size_t n = 0;
    if (g != NULL) {
        n = gy_list_len(g);
        gy_list_clear(g);
    }
    if (!nested) {
        pthread_mutex_unlock(&gy__gc.collect_lock);
    }
    return n;
}

/* --- installation -------------------------------------------------------------- */

/* Runtime shutdown: drop the garbage list and start afresh next time. */
static void on_shutdown(void) {
    if (gy__gc.garbage != NULL && gy__tls_heap != NULL) {
        gy_decref(gy__gc.garbage);
    }
    gy__gc.garbage = NULL;
    gy__gc_release_buffers();
    pthread_mutex_lock(&gy__gc.lock);
    gy__gc.enabled = true;
    gy__gc.threshold[0] = 700;
    gy__gc.threshold[1] = 10;
    gy__gc.threshold[2] = 10;
    gy__gc_pacing_reset();
    memset(gy__gc.count, 0, sizeof gy__gc.count);
    memset(gy__gc.stats, 0, sizeof gy__gc.stats);
    memset(&gy__gc.info, 0, sizeof gy__gc.info);
    gy__gc.long_lived_total = gy__gc.long_lived_pending = 0;
    gy__gc.ncallbacks = 0;
    atomic_store_explicit(&gy__gc.auto_requested, false, memory_order_relaxed);
    atomic_store_explicit(&gy__gc.posted_clears, 0, memory_order_relaxed);
    atomic_store_explicit(&gy__gc.debug, 0, memory_order_relaxed);
    gy__gc_limit_update();
    pthread_mutex_unlock(&gy__gc.lock);
    gy__gc_mode_reset();
}

static const gy__gc_hooks hooks = {
    .collect_due = collect_due,
    .shutdown = on_shutdown,
    .start = gy__gc_thread_start,
    .stop = gy__gc_thread_stop,
    .thread_detach = gy__gc_thread_detach,
    .hidden = gy__gc_hidden,
    .touch = gy__gc_touch_hook,
    .doom_check = gy__gc_doom_check_hook,
    .posted_clear_done = gy__gc_posted_clear_done,
};

/* Linked in, the collector is on: from program start, before any runtime. */
__attribute__((constructor)) static void collector_install(void) {
    pthread_mutex_lock(&gy__gc.lock);
    gy__gc_limit_update();
    pthread_mutex_unlock(&gy__gc.lock);
    gy__gc_hooks_install(&hooks);
}
