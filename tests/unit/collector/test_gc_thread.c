/* collector.gc_thread: the collector's thread (collector/src/thread.c) and
 * gc_mode.
 *
 *   test_mode_default_and_env      DEFAULT is concurrent, GYRE_GC_MODE
 *       overrides it, a bad value fails runtime init (EINVAL, named)
 *   test_automatic_on_thread       automatic collections run on the
 *       collector's thread, never on the allocating one
 *   test_collect_plain             gy_gc_collect's results, both modes
 *   test_collect_on_loop           refused on a loop (ESTATE, names the
 *       alternative); collect_async delivers on the loop
 *   test_disable_pauses            PAUSED, no automatic runs, explicit ok
 *   test_shutdown_joins            STOPPED after shutdown, twice in a row
 *   test_finalizer_collect_busy    EBUSY from a finalizer on the thread
 *   test_detach_answers_async      detach waits for the answers
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gc_node.h"

static void up(int mode) {
    gy_runtime_options o = {.gc_mode = mode};
    gy_errmsg err = {0};
    if (gy_runtime_init(&o, &err) != GY_OK) {
        fail_msg("gy_runtime_init: %s", err.text);
    }
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
}

static gc_node *ring(gy_type *type, int n) {
    gc_node *head = gc_node_new(type, 0), *prev = head;
    for (int i = 1; i < n; i++) {
        gc_node *x = gc_node_new(type, 0);
        gy_store_steal(&prev->next, x);
        prev = x;
    }
    gy_store(&prev->next, head);
    return head;
}

/* Garbage: `rings` cycles of `size` nodes. */
static void make_garbage(int rings, int size) {
    for (int i = 0; i < rings; i++) {
        gc_node *r = ring(&gc_node_type, size);
        gy_decref(r);
    }
}

/* Where the gc callbacks ran. */
static pthread_t watched;
static atomic_int cb_on_watched, cb_elsewhere;
static void where_cb(gy_gc_phase phase, const gy_gc_callback_info *info, void *arg) {
    (void)info, (void)arg;
    if (phase != GY_GC_START) {
        return;
    }
    if (pthread_equal(pthread_self(), watched)) {
        atomic_fetch_add(&cb_on_watched, 1);
    } else {
        atomic_fetch_add(&cb_elsewhere, 1);
    }
}

static void watch_this_thread(void) {
    watched = pthread_self();
    atomic_store(&cb_on_watched, 0);
    atomic_store(&cb_elsewhere, 0);
    assert_int_equal(gy_gc_callback_add(where_cb, NULL), GY_OK);
}

/* Quiescent pauses with safe points, until cond() or about 10 s. */
static bool wait_for(bool (*cond)(void)) {
    for (int i = 0; i < 100000 && !cond(); i++) {
        gy_quiescent_begin();
        usleep(100);
        gy_quiescent_end();
        gy_safepoint();
    }
    return cond();
}

static gy_gc_thread_stats tstats(void) {
    gy_gc_thread_stats s;
    gy_gc_get_thread_stats(&s);
    return s;
}

static bool thread_resting(void) {
    int st = tstats().state;
    return st == GY_GC_THREAD_IDLE || st == GY_GC_THREAD_PAUSED;
}

/* --- mode ----------------------------------------------------------------- */

static void test_mode_default_and_env(void **state) {
    (void)state;
    const char *saved = getenv("GYRE_GC_MODE");
    char *keep = saved != NULL ? strdup(saved) : NULL;
    assert_string_equal(gy_gc_mode_name(GY_GC_MODE_STW), "stw");
    assert_string_equal(gy_gc_mode_name(GY_GC_MODE_CONCURRENT), "concurrent");
    assert_null(gy_gc_mode_name(7));
    assert_int_equal(gy_gc_get_mode(), GY_GC_MODE_DEFAULT); /* no runtime */

    unsetenv("GYRE_GC_MODE");
    up(GY_GC_MODE_DEFAULT);
    assert_int_equal(gy_gc_get_mode(), GY_GC_MODE_CONCURRENT);
    assert_true(thread_resting());
    GY_TEST_DOWN();

    setenv("GYRE_GC_MODE", "stw", 1);
    up(GY_GC_MODE_DEFAULT);
    assert_int_equal(gy_gc_get_mode(), GY_GC_MODE_STW);
    gy_gc_thread_stats s = tstats();
    assert_int_equal(s.state, GY_GC_THREAD_STOPPED);
    assert_int_equal(s.runs, 0);
    GY_TEST_DOWN();

    setenv("GYRE_GC_MODE", "concurrent", 1);
    up(GY_GC_MODE_DEFAULT);
    assert_int_equal(gy_gc_get_mode(), GY_GC_MODE_CONCURRENT);
    GY_TEST_DOWN();

    setenv("GYRE_GC_MODE", "bogus", 1);
    gy_errmsg err = {0};
    assert_int_equal(gy_runtime_init(NULL, &err), GY_EINVAL);
    assert_non_null(strstr(err.text, "GYRE_GC_MODE"));
    assert_non_null(strstr(err.text, "bogus"));
    assert_false(gy_runtime_running()); /* undone */
    /* An explicit mode does not read the environment. */
    up(GY_GC_MODE_STW);
    assert_int_equal(gy_gc_get_mode(), GY_GC_MODE_STW);
    GY_TEST_DOWN();
    gy_runtime_options bad = {.gc_mode = 7};
    assert_int_equal(gy_runtime_init(&bad, &err), GY_EINVAL);
    assert_false(gy_runtime_running());

    if (keep != NULL) {
        setenv("GYRE_GC_MODE", keep, 1);
        free(keep);
    } else {
        unsetenv("GYRE_GC_MODE");
    }
}

/* --- automatic collections --------------------------------------------------- */

static bool ran_some(void) { return tstats().runs >= 5; }

static void test_automatic_on_thread(void **state) {
    (void)state;
    up(GY_GC_MODE_CONCURRENT);
    watch_this_thread();
    assert_int_equal(gy_gc_set_threshold(100, 5, 5, NULL), GY_OK);
    bool busy_seen = false;
    for (int i = 0; i < 20000 && !ran_some(); i++) {
        make_garbage(1, 2);
        gy_safepoint(); /* where STW mode would collect */
        busy_seen |= tstats().state == GY_GC_THREAD_RUNNING;
        gy_quiescent_begin();
        usleep(20);
        gy_quiescent_end();
    }
    gy_gc_thread_stats s = tstats();
    print_message("runs %llu, busy %llu ns, handshakes %llu, running seen %d\n",
                  (unsigned long long)s.runs, (unsigned long long)s.busy_ns,
                  (unsigned long long)s.handshakes, busy_seen);
    assert_true(s.runs >= 5);
    /* Each collection handshakes at least twice and stops nobody (the
     * default), or stops the world (GYRE_GC_MARK=stop, the diagnostic). A
     * concurrent collection counts one increment at least (9.15), a
     * stopped one none. */
    const char *mark = getenv("GYRE_GC_MARK");
    if (mark != NULL && strcmp(mark, "stop") == 0) {
        assert_int_equal(s.increments, 0);
    } else {
        assert_true(s.increments >= s.runs);
    }
    if (mark == NULL || strcmp(mark, "stop") != 0) {
        assert_true(s.handshakes >= 2 * s.runs);
        assert_int_equal(s.world_stops, s.fallback_stops);
    } else {
        assert_true(s.world_stops >= s.runs);
    }
    assert_true(s.busy_ns > 0);
    assert_int_equal(s.aborted_sets, 0);
    assert_int_equal(atomic_load(&cb_on_watched), 0); /* never on the allocating thread */
    assert_true(atomic_load(&cb_elsewhere) >= 5);
    gy_gc_info info;
    gy_gc_get_info(&info);
    assert_true(info.automatic >= 5);
    assert_int_equal(info.explicit_, 0);
    assert_true(wait_for(thread_resting));
    assert_int_equal(gy_gc_callback_remove(where_cb, NULL), GY_OK);
    gy_gc_collect(2, NULL, NULL);
    GY_TEST_DOWN();
}

/* --- gy_gc_collect on a plain thread ------------------------------------------- */

static void test_collect_plain(void **state) {
    (void)state;
    const int modes[] = {GY_GC_MODE_STW, GY_GC_MODE_CONCURRENT};
    for (int m = 0; m < 2; m++) {
        up(modes[m]);
        gy_gc_disable();
        watch_this_thread();
        make_garbage(5, 3);
        gc_node *live = ring(&gc_node_type, 4); /* referenced: survives */
        gy_gc_result res;
        gy_errmsg err = {0};
        assert_int_equal(gy_gc_collect(2, &res, &err), GY_OK);
        assert_int_equal(res.generation, 2);
        assert_int_equal(res.collected, 15);
        assert_int_equal(res.uncollectable, 0);
        assert_int_equal(gc_live(&gc_node_type), 4); /* freed when it returns */
        if (modes[m] == GY_GC_MODE_STW) {
            assert_int_equal(atomic_load(&cb_on_watched), 1);
            assert_int_equal(atomic_load(&cb_elsewhere), 0);
        } else {
            assert_int_equal(atomic_load(&cb_on_watched), 0);
            assert_int_equal(atomic_load(&cb_elsewhere), 1);
            assert_int_equal(tstats().runs, 1);
        }
        gy_decref(live);
        assert_int_equal(gc_collect_found(2, NULL), 4);
        assert_int_equal(gy_gc_callback_remove(where_cb, NULL), GY_OK);
        GY_TEST_DOWN();
    }
}

/* --- loops ------------------------------------------------------------------------ */

static atomic_int loop_wakes;
static void loop_wake(void *arg) {
    (void)arg;
    atomic_fetch_add(&loop_wakes, 1);
}

typedef struct loop_result {
    pthread_t self;
    int collect_rc;
    char collect_msg[GY_ERRMSG_SIZE];
    atomic_int done_calls;
    int done_rc;
    bool done_on_loop;
    uint64_t collected;
} loop_result;

static void loop_done(int rc, const gy_gc_result *res, void *arg) {
    loop_result *lr = arg;
    lr->done_rc = rc;
    lr->done_on_loop = pthread_equal(pthread_self(), lr->self);
    lr->collected = res->collected;
    atomic_fetch_add(&lr->done_calls, 1);
}

static void *loop_main(void *arg) {
    loop_result *lr = arg;
    lr->self = pthread_self();
    gy_thread_options o = {.kind = GY_THREAD_LOOP, .wake = loop_wake, .name = "test-loop"};
    if (gy_thread_attach(&o, NULL) != GY_OK) {
        abort();
    }
    for (int i = 0; i < 4; i++) {
        gc_node *a = NULL, *b = NULL;
        if (gy_new(&gc_node_type, &a) != GY_OK || gy_new(&gc_node_type, &b) != GY_OK) {
            abort();
        }
        gy_store(&a->next, b);
        gy_store_steal(&b->next, a);
        gy_decref(b);
    }
    gy_errmsg err = {0};
    lr->collect_rc = gy_gc_collect(2, NULL, &err);
    memcpy(lr->collect_msg, err.text, sizeof lr->collect_msg);
    if (gy_gc_collect_async(2, loop_done, lr, NULL) != GY_OK) {
        abort();
    }
    /* The loop: epoll (quiescent), then a safe point. */
    for (int i = 0; i < 100000 && atomic_load(&lr->done_calls) == 0; i++) {
        gy_quiescent_begin();
        usleep(100);
        gy_quiescent_end();
        gy_safepoint();
    }
    gy_thread_detach();
    return NULL;
}

static void test_collect_on_loop(void **state) {
    (void)state;
    const int modes[] = {GY_GC_MODE_CONCURRENT, GY_GC_MODE_STW};
    for (int m = 0; m < 2; m++) {
        up(modes[m]);
        gy_gc_disable();
        loop_result lr = {0};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, loop_main, &lr), 0);
        gy_quiescent_begin();
        pthread_join(t, NULL);
        gy_quiescent_end();
        if (modes[m] == GY_GC_MODE_CONCURRENT) {
            assert_int_equal(lr.collect_rc, GY_ESTATE);
            assert_non_null(strstr(lr.collect_msg, "loop thread"));
            assert_non_null(strstr(lr.collect_msg, "gy_gc_collect_async"));
            assert_int_equal(lr.collected, 8);
        } else {
            assert_int_equal(lr.collect_rc, GY_OK); /* STW: the loop collects itself */
            assert_int_equal(lr.collected, 0);      /* ... so nothing was left */
        }
        assert_int_equal(atomic_load(&lr.done_calls), 1);
        assert_int_equal(lr.done_rc, GY_OK);
        assert_true(lr.done_on_loop);
        assert_int_equal(gc_live(&gc_node_type), 0);
        GY_TEST_DOWN();
    }
}

/* --- disable ------------------------------------------------------------------------ */

static bool thread_idle(void) { return tstats().state == GY_GC_THREAD_IDLE; }
static bool thread_paused(void) { return tstats().state == GY_GC_THREAD_PAUSED; }

static void test_disable_pauses(void **state) {
    (void)state;
    up(GY_GC_MODE_CONCURRENT);
    assert_int_equal(gy_gc_set_threshold(100, 5, 5, NULL), GY_OK);
    assert_true(thread_resting());
    assert_int_equal(tstats().state, GY_GC_THREAD_IDLE);
    gy_gc_disable();
    assert_true(wait_for(thread_paused));
    uint64_t runs = tstats().runs;
    for (int i = 0; i < 2000; i++) { /* threshold 0 crossed 40 times */
        make_garbage(1, 2);
        gy_safepoint();
    }
    gy_quiescent_begin();
    usleep(20000); /* the thread would have run by now */
    gy_quiescent_end();
    assert_int_equal(tstats().runs, runs);
    assert_int_equal(tstats().state, GY_GC_THREAD_PAUSED);
    assert_int_equal(gc_live(&gc_node_type), 4000);
    /* Explicit collections still run. */
    assert_int_equal(gc_collect_found(2, NULL), 4000);
    assert_int_equal(tstats().runs, runs + 1);
    assert_int_equal(gc_live(&gc_node_type), 0);
    gy_gc_enable();
    assert_true(wait_for(thread_idle)); /* back from answering us: idle, not paused */
    GY_TEST_DOWN();
}

/* --- the throttle ------------------------------------------------------------------ */

/* A collector made slow (1 ms per collection, in its START callback) and a
 * loop that only allocates garbage: without the throttle the loop outruns
 * it by tens of thousands of objects; with it, a safe point that finds
 * generation 0 at GC_BEHIND thresholds (the hard level, collector/DESIGN.md
 * 9.15) while the asked collection has not ended waits for it, in waits of
 * at most the pause goal (`assist` pauses), so garbage stays within three
 * times that: the set being cleared, the next one, and as much again
 * because the set's frees pull generation 0's count down (clamped at 0, as
 * CPython's) while the next one piles up (4,064 seen once under TSan). */
#define GC_BEHIND 16 /* collector/src/collector.h's, in thresholds 0 */

static void slow_cb(gy_gc_phase phase, const gy_gc_callback_info *info, void *arg) {
    (void)info, (void)arg;
    if (phase == GY_GC_START) {
        usleep(1000);
    }
}

static void test_throttle_bounds_garbage(void **state) {
    (void)state;
    up(GY_GC_MODE_CONCURRENT);
    assert_int_equal(gy_gc_set_threshold(100, 10, 10, NULL), GY_OK);
    assert_int_equal(gy_gc_callback_add(slow_cb, NULL), GY_OK);
    gy_pause_stats before, after;
    gy_runtime_get_pause_stats(&before);
    int64_t max_live = 0;
    for (int i = 0; i < 20000; i++) {
        make_garbage(1, 2);
        gy_safepoint();
        int64_t live = gc_live(&gc_node_type);
        max_live = live > max_live ? live : max_live;
    }
    gy_runtime_get_pause_stats(&after);
    uint64_t assists = after.count[GY_PAUSE_ASSIST] - before.count[GY_PAUSE_ASSIST];
    print_message("throttle: most garbage alive at once %lld, assists %llu, longest %.2f ms\n",
                  (long long)max_live, (unsigned long long)assists,
                  after.max_ns[GY_PAUSE_ASSIST] / 1e6);
    assert_true(assists > 0);
    assert_true(max_live <= 3 * GC_BEHIND * 100 + 400);
    assert_int_equal(gy_gc_callback_remove(slow_cb, NULL), GY_OK);
    gc_collect_found(2, NULL);
    assert_int_equal(gc_live(&gc_node_type), 0);
    GY_TEST_DOWN();
}

/* --- shutdown ------------------------------------------------------------------------ */

static void test_shutdown_joins(void **state) {
    (void)state;
    for (int round = 0; round < 2; round++) {
        up(GY_GC_MODE_CONCURRENT);
        gy_gc_thread_stats s = tstats();
        assert_int_equal(s.runs, 0); /* counts start again with the runtime */
        assert_int_equal(s.state, GY_GC_THREAD_IDLE);
        make_garbage(3, 2);
        assert_int_equal(gc_collect_found(2, NULL), 6);
        gy_runtime_stats rs;
        gy_runtime_get_stats(&rs);
        assert_int_equal(rs.threads_attached, 2); /* this one and gyre-gc */
        /* The collector's thread does not count against shutdown. */
        GY_TEST_DOWN();
        s = tstats();
        assert_int_equal(s.state, GY_GC_THREAD_STOPPED);
        assert_int_equal(s.runs, 1);
        assert_int_equal(gy_gc_get_mode(), GY_GC_MODE_DEFAULT);
    }
}

/* --- nested ----------------------------------------------------------------------- */

static int nested_rc = 1;
static bool nested_on_main;
static pthread_t main_thread;
static void nested_finalize(gy_object *self) {
    (void)self;
    nested_rc = gy_gc_collect(0, NULL, NULL);
    nested_on_main = pthread_equal(pthread_self(), main_thread);
}
static gy_type nested_type = {
    .name = "thread_nested_node",
    .size = sizeof(gc_node),
    .traverse = gc_node_traverse,
    .clear = gc_node_clear,
    .finalize = nested_finalize,
};

static void test_finalizer_collect_busy(void **state) {
    (void)state;
    up(GY_GC_MODE_CONCURRENT);
    main_thread = pthread_self();
    nested_on_main = true;
    gc_node *r = ring(&nested_type, 2);
    gy_decref(r);
    assert_int_equal(gc_collect_found(2, NULL), 2);
    assert_int_equal(nested_rc, GY_EBUSY);
    assert_false(nested_on_main); /* finalizers run on the collector's thread */
    GY_TEST_DOWN();
}

/* --- detach ---------------------------------------------------------------------- */

static atomic_int detach_done_calls;
static int detach_done_rc = 1;
static uint64_t detach_collected;
static void detach_done(int rc, const gy_gc_result *res, void *arg) {
    (void)arg;
    detach_done_rc = rc;
    detach_collected = res->collected;
    atomic_fetch_add(&detach_done_calls, 1);
}

static void *detach_main(void *arg) {
    (void)arg;
    if (gy_thread_attach(NULL, NULL) != GY_OK) {
        abort();
    }
    gc_node *a = NULL;
    if (gy_new(&gc_node_type, &a) != GY_OK) {
        abort();
    }
    gy_store(&a->next, a);
    gy_decref(a);
    if (gy_gc_collect_async(2, detach_done, NULL, NULL) != GY_OK) {
        abort();
    }
    gy_thread_detach(); /* no safe point before: answered here */
    return NULL;
}

static void test_detach_answers_async(void **state) {
    (void)state;
    up(GY_GC_MODE_CONCURRENT);
    gy_gc_disable();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, detach_main, NULL), 0);
    gy_quiescent_begin();
    pthread_join(t, NULL);
    gy_quiescent_end();
    assert_int_equal(atomic_load(&detach_done_calls), 1);
    assert_int_equal(detach_done_rc, GY_OK);
    assert_int_equal(detach_collected, 1);
    GY_TEST_DOWN();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_mode_default_and_env), cmocka_unit_test(test_automatic_on_thread),
    cmocka_unit_test(test_collect_plain),        cmocka_unit_test(test_collect_on_loop),
    cmocka_unit_test(test_disable_pauses),       cmocka_unit_test(test_throttle_bounds_garbage),
    cmocka_unit_test(test_shutdown_joins),       cmocka_unit_test(test_finalizer_collect_busy),
    cmocka_unit_test(test_detach_answers_async),
};
GY_TEST_MAIN(tests)
