/* collector.pacing: the concurrent collector's increments and allocation
 * throttling (collector/DESIGN.md 9.15; gyre/gc.h gy_gc_set_pacing).
 *
 *   test_pacing_settings   defaults, bounds (refused values change
 *       nothing, with a message naming the value), reset at shutdown
 *   test_increments_follow_budget   one full collection of a heap of 40k
 *       objects: with the smallest budget it runs in many increments (each
 *       an epoch quiescent state of the collector's thread), with the
 *       largest in one
 *   test_throttle_within_goal   the collector is held inside a collection
 *       (the race hook in its seal pass) while a mutator piles up young
 *       objects past the throttle's soft level (not its hard one): the
 *       mutator's throttling waits end by the pause goal, while the
 *       collection is still held (before
 *       the goal existed the mutator waited for the collection's end, which
 *       here never comes: the alarm fails the test)
 *   test_abort_keeps_candidates   gy_gc_abort while a collection seals a
 *       garbage ring: the collection ends with nothing freed, the ring
 *       whole; the next collection frees it
 *   test_abort_too_late_is_not_counted   gy_gc_abort after the recount
 *       decided: the set is freed and aborted_runs does not move */
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gc_node.h"
#include "heap.h"

static gy_gc_thread_stats thread_stats(void) {
    gy_gc_thread_stats t;
    gy_gc_get_thread_stats(&t);
    return t;
}

static void test_pacing_settings(void **state) {
    (void)state;
    gc_up_concurrent();
    gy_gc_pacing p;
    gy_gc_get_pacing(&p);
    assert_int_equal(p.increment_budget_us, 500);
    assert_int_equal(p.pause_goal_us, 1000);
    gy_errmsg err = {0};
    gy_gc_pacing bad = {.increment_budget_us = GY_GC_BUDGET_MIN_US - 1, .pause_goal_us = 2000};
    assert_int_equal(gy_gc_set_pacing(&bad, &err), GY_EINVAL);
    assert_non_null(strstr(err.text, "19 us"));
    bad = (gy_gc_pacing){.increment_budget_us = 100, .pause_goal_us = GY_GC_PAUSE_GOAL_MAX_US + 1};
    assert_int_equal(gy_gc_set_pacing(&bad, &err), GY_EINVAL);
    assert_non_null(strstr(err.text, "pause goal"));
    assert_int_equal(gy_gc_set_pacing(NULL, &err), GY_EINVAL);
    gy_gc_get_pacing(&p);
    assert_int_equal(p.increment_budget_us, 500); /* nothing changed */
    assert_int_equal(p.pause_goal_us, 1000);
    gy_gc_pacing good = {.increment_budget_us = 250, .pause_goal_us = 4000};
    assert_int_equal(gy_gc_set_pacing(&good, &err), GY_OK);
    gy_gc_get_pacing(&p);
    assert_int_equal(p.increment_budget_us, 250);
    assert_int_equal(p.pause_goal_us, 4000);
    gc_down();
    gc_up_concurrent(); /* the next runtime starts from the defaults, as the thresholds */
    gy_gc_get_pacing(&p);
    assert_int_equal(p.increment_budget_us, 500);
    assert_int_equal(p.pause_goal_us, 1000);
    gc_down();
}

#define HEAP_NODES 40000

/* Increments of one full collection of a live list of HEAP_NODES nodes. */
static uint64_t increments_of_one_collection(uint32_t budget_us, uint64_t *hold_ns) {
    gy_gc_pacing p = {.increment_budget_us = budget_us, .pause_goal_us = 1000};
    assert_int_equal(gy_gc_set_pacing(&p, NULL), GY_OK);
    gy_gc_thread_stats before = thread_stats();
    gy_gc_result res;
    assert_int_equal(gy_gc_collect(2, &res, NULL), GY_OK);
    gy_gc_thread_stats after = thread_stats();
    assert_int_equal(after.runs - before.runs, 1);
    assert_true(res.candidates >= HEAP_NODES);
    *hold_ns = after.epoch_hold_last_ns;
    assert_true(after.epoch_hold_last_ns > 0);
    assert_true(after.epoch_hold_max_ns >= after.epoch_hold_last_ns);
    return after.increments - before.increments;
}

static void test_increments_follow_budget(void **state) {
    (void)state;
    gc_up_concurrent();
    gy_gc_disable(); /* only our collections */
    gc_node *head = gc_node_new(&gc_node_type, 0), *prev = head;
    for (int i = 1; i < HEAP_NODES; i++) {
        gc_node *x = gc_node_new(&gc_node_type, 0);
        gy_store_steal(&prev->next, x);
        prev = x;
    }
    uint64_t hold_small, hold_large;
    uint64_t small = increments_of_one_collection(GY_GC_BUDGET_MIN_US, &hold_small);
    uint64_t large = increments_of_one_collection(GY_GC_BUDGET_MAX_US, &hold_large);
    gy_gc_thread_stats t = thread_stats();
    print_message("increments: %llu with a %u us budget (longest epoch hold %.1f us), %llu with "
                  "%u us (%.1f us)\n",
                  (unsigned long long)small, GY_GC_BUDGET_MIN_US, hold_small / 1e3,
                  (unsigned long long)large, GY_GC_BUDGET_MAX_US, hold_large / 1e3);
    assert_true(small > 10);    /* 40k candidates walked, subtracted, marked */
    assert_int_equal(large, 1); /* well under a second, even under TSan */
    assert_true(t.epoch_hold_max_ns > 0);
    assert_int_equal(gc_live(&gc_node_type), HEAP_NODES); /* all live, all kept */
    gy_decref(head);
    gy_gc_enable();
    gc_down();
}

/* --- the throttle, with the collector held -------------------------------- */

static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;
static bool held, released;

/* The collector's thread, in its seal pass: hold until released (it is
 * inside its epoch section between two increment points: a mutator then
 * gets no help from it, as on a machine whose cores are all busy). */
static void hold_hook(const char *window) {
    if (strcmp(window, "race.gc_seal_step") != 0) {
        return;
    }
    pthread_mutex_lock(&hold_lock);
    if (!held) {
        held = true;
        pthread_cond_broadcast(&hold_cond);
        while (!released) {
            pthread_cond_wait(&hold_cond, &hold_lock);
        }
    }
    pthread_mutex_unlock(&hold_lock);
}

static void test_throttle_within_goal(void **state) {
    (void)state;
    gc_up_concurrent();
    alarm(120); /* a throttle waiting for the collection's end never returns */
    gy_gc_pacing p = {.increment_budget_us = 500, .pause_goal_us = 5000};
    assert_int_equal(gy_gc_set_pacing(&p, NULL), GY_OK);
    /* Soft level at 8 thresholds (8000 young), hard at 16 (16000). */
    assert_int_equal(gy_gc_set_threshold(1000, 10, 10, NULL), GY_OK);
    /* A garbage ring, so the automatic collection has a set to seal. */
    gc_node *a = gc_node_new(&gc_node_type, 1), *b = gc_node_new(&gc_node_type, 2);
    gy_store(&a->next, b);
    gy_store(&b->next, a);
    gy_decref(a);
    gy_decref(b);
    atomic_store(&gy__race_window_hook, hold_hook);
    gy_list *keep = NULL; /* young objects that stay */
    assert_int_equal(gy_list_new(&keep), GY_OK);
    gy_pause_stats ps;
    gy_runtime_get_pause_stats(&ps);
    uint64_t assists0 = ps.count[GY_PAUSE_ASSIST];
    bool is_held = false;
    uint64_t assists_while_held = 0;
    long young_max = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; assists_while_held < 2; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 60) {
            break; /* a liveness bound: the asserts below say what failed */
        }
        long count[GY_GC_GENERATIONS];
        gy_gc_get_count(count);
        young_max = count[0] > young_max ? count[0] : young_max;
        gc_node *x = gc_node_new(&gc_node_type, 3);
        if (count[0] < 10 * 1000) {
            assert_int_equal(gy_list_append(keep, x), GY_OK); /* generation 0 grows */
        }
        gy_decref(x);   /* past 10 thresholds: allocated and freed, young stays */
        gy_safepoint(); /* asks for the collection; later, throttles */
        pthread_mutex_lock(&hold_lock);
        is_held = held;
        pthread_mutex_unlock(&hold_lock);
        if (is_held) {
            gy_runtime_get_pause_stats(&ps);
            assists_while_held = ps.count[GY_PAUSE_ASSIST] - assists0;
        }
        if (i % 64 == 0) {
            usleep(100); /* lets the collector's thread reach its seal pass */
        }
    }
    pthread_mutex_lock(&hold_lock);
    released = true;
    pthread_cond_broadcast(&hold_cond);
    pthread_mutex_unlock(&hold_lock);
    alarm(0);
    print_message("throttling waits while the collector was held: %llu (longest %.1f ms), "
                  "young at most %ld\n",
                  (unsigned long long)assists_while_held, ps.max_ns[GY_PAUSE_ASSIST] / 1e6,
                  young_max);
    assert_true(is_held);                 /* the collection was held */
    assert_true(young_max < 16 * 1000);   /* never at the hard level */
    assert_true(assists_while_held >= 2); /* throttled, and each wait ended */
    atomic_store(&gy__race_window_hook, NULL);
    gy_decref(keep);
    gc_down();
}

/* --- gy_gc_abort ------------------------------------------------------------ */

static atomic_int abort_answers[2]; /* gy_gc_abort's answers: false, true */

static void abort_hook(const char *window) {
    if (strcmp(window, "race.gc_seal_step") == 0) {
        atomic_fetch_add(&abort_answers[gy_gc_abort() ? 1 : 0], 1);
    }
}

static void test_abort_keeps_candidates(void **state) {
    (void)state;
    gc_up_concurrent();
    gy_gc_disable();
    assert_false(gy_gc_abort()); /* nothing running */
    gc_node *a = gc_node_new(&gc_node_type, 1), *b = gc_node_new(&gc_node_type, 2);
    gy_store(&a->next, b);
    gy_store(&b->next, a);
    gy_decref(a);
    gy_decref(b);
    gy_gc_thread_stats before = thread_stats();
    atomic_store(&gy__race_window_hook, abort_hook);
    gy_gc_result res;
    assert_int_equal(gy_gc_collect(2, &res, NULL), GY_OK);
    atomic_store(&gy__race_window_hook, NULL);
    gy_gc_thread_stats after = thread_stats();
    assert_true(atomic_load(&abort_answers[1]) >= 1); /* asked while it ran */
    assert_int_equal(after.aborted_runs - before.aborted_runs, 1);
    assert_int_equal(res.collected, 0);          /* stopped: nothing freed */
    assert_int_equal(gc_live(&gc_node_type), 2); /* the ring survived */
    assert_int_equal(after.anomalies, before.anomalies);
    assert_int_equal(gc_collect_found(2, NULL), 2); /* the next one frees it */
    assert_int_equal(gc_live(&gc_node_type), 0);
    gy_gc_enable();
    gc_down();
}

/* Asked too late (after the recount decided, in the window before the
 * publication): the collection finishes, frees its set, and does not
 * count as stopped. */
static atomic_int late_abort_answers[2];

static void late_abort_hook(const char *window) {
    if (strcmp(window, "race.gc_sealed") == 0) {
        atomic_fetch_add(&late_abort_answers[gy_gc_abort() ? 1 : 0], 1);
    }
}

static void test_abort_too_late_is_not_counted(void **state) {
    (void)state;
    gc_up_concurrent();
    gy_gc_disable();
    gc_node *a = gc_node_new(&gc_node_type, 1), *b = gc_node_new(&gc_node_type, 2);
    gy_store(&a->next, b);
    gy_store(&b->next, a);
    gy_decref(a);
    gy_decref(b);
    /* A survivor: the word reset after the publication passes increment
     * points, which see the request (the old code counted it there). */
    gc_node *live = gc_node_new(&gc_node_type, 3);
    gy_gc_thread_stats before = thread_stats();
    atomic_store(&gy__race_window_hook, late_abort_hook);
    gy_gc_result res;
    assert_int_equal(gy_gc_collect(2, &res, NULL), GY_OK);
    atomic_store(&gy__race_window_hook, NULL);
    gy_gc_thread_stats after = thread_stats();
    assert_int_equal(atomic_load(&late_abort_answers[1]), 1); /* asked while it ran */
    assert_int_equal(res.collected, 2);                       /* finished anyway */
    assert_int_equal(after.aborted_runs - before.aborted_runs, 0);
    assert_int_equal(gc_live(&gc_node_type), 1); /* the survivor */
    gy_decref(live);
    gy_gc_enable();
    gc_down();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pacing_settings),
        cmocka_unit_test(test_increments_follow_budget),
        cmocka_unit_test(test_throttle_within_goal),
        cmocka_unit_test(test_abort_keeps_candidates),
        cmocka_unit_test(test_abort_too_late_is_not_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
