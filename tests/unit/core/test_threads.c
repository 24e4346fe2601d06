/* core.threads: races between attached threads, each proving it happened by
 * counting both outcomes; loop-affine hand-off; the stop-the-world handshake.
 * Labelled "concurrency": also run under TSan. Time bounds are liveness
 * bounds only (seconds, for sanitizers on two busy cores). */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "gy_rt.h"

#include "heap.h"

typedef struct racer {
    gy_object ob;
    gy_ref next;
} racer;

static int racer_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((racer *)self)->next, visit, arg);
    return 0;
}
static void racer_clear(gy_object *self) { gy_ref_clear(&((racer *)self)->next); }

/* Which thread ran each finalizer: the main thread ("A") or another ("B"). */
static pthread_t thread_a;
static atomic_long fin_on_a, fin_on_b;
static void racer_finalize(gy_object *self) {
    (void)self;
    if (pthread_equal(pthread_self(), thread_a)) {
        atomic_fetch_add(&fin_on_a, 1);
    } else {
        atomic_fetch_add(&fin_on_b, 1);
    }
}

static gy_type racer_type = {
    .name = "racer",
    .size = sizeof(racer),
    .traverse = racer_traverse,
    .clear = racer_clear,
    .finalize = racer_finalize,
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void reset_counts(void) {
    thread_a = pthread_self();
    atomic_store(&fin_on_a, 0);
    atomic_store(&fin_on_b, 0);
}

#define LIVENESS_S 20.0
static atomic_bool stop_b;

/* --- try-incref (gy_load) racing the last decref ---------------------------- */

static racer *holder;
static atomic_long loads_hit, loads_null;

static void *load_loop(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    while (!atomic_load(&stop_b)) {
        gy_object *o = gy_load(&holder->next);
        if (o != NULL) {
            atomic_fetch_add(&loads_hit, 1);
            gy_decref(o); /* may be the last reference */
        } else {
            atomic_fetch_add(&loads_null, 1);
        }
        gy_safepoint();
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

/* A replaces and drops the object in a shared field while B loads it: the
 * last decref lands on A sometimes and on B other times (seen by where the
 * finalizer runs), and B sometimes finds the field empty. */
static void test_load_races_last_decref(void **state) {
    (void)state;
    GY_TEST_UP();
    reset_counts();
    atomic_store(&stop_b, false);
    assert_int_equal(gy_new(&racer_type, &holder), GY_OK);
    pthread_t b;
    assert_int_equal(pthread_create(&b, NULL, load_loop, NULL), 0);
    double t0 = now_s();
    long rounds = 0;
    while (now_s() - t0 < LIVENESS_S &&
           (atomic_load(&fin_on_a) < 10 || atomic_load(&fin_on_b) < 10 ||
            atomic_load(&loads_null) < 10 || rounds < 20000)) {
        racer *x;
        assert_int_equal(gy_new(&racer_type, &x), GY_OK);
        gy_store_steal(&holder->next, x);
        if (rounds % 3 == 0) {
            gy_ref_clear(&holder->next);
        }
        gy_safepoint();
        rounds++;
    }
    atomic_store(&stop_b, true);
    pthread_join(b, NULL);
    gy_decref(holder);
    gy_safepoint();
    print_message("rounds %ld: last decref on A %ld, on B %ld; loads hit %ld, empty %ld\n", rounds,
                  atomic_load(&fin_on_a), atomic_load(&fin_on_b), atomic_load(&loads_hit),
                  atomic_load(&loads_null));
    assert_true(atomic_load(&fin_on_a) > 0);
    assert_true(atomic_load(&fin_on_b) > 0);
    assert_true(atomic_load(&loads_null) > 0);
    assert_true(atomic_load(&loads_hit) > 0);
    GY_TEST_DOWN();
}

/* --- a get and a set on the same list slot --------------------------------- */

static gy_list *shared_list;

static void *get_loop(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    while (!atomic_load(&stop_b)) {
        gy_object *o = gy_list_get(shared_list, 0);
        if (o != NULL) {
            gy_decref(o);
        }
        gy_safepoint();
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_list_slot_get_set(void **state) {
    (void)state;
    GY_TEST_UP();
    reset_counts();
    atomic_store(&stop_b, false);
    assert_int_equal(gy_list_new(&shared_list), GY_OK);
    racer *first;
    assert_int_equal(gy_new(&racer_type, &first), GY_OK);
    assert_int_equal(gy_list_append(shared_list, first), GY_OK);
    gy_decref(first);
    pthread_t b;
    assert_int_equal(pthread_create(&b, NULL, get_loop, NULL), 0);
    double t0 = now_s();
    long rounds = 0;
    while (now_s() - t0 < LIVENESS_S &&
           (atomic_load(&fin_on_a) < 10 || atomic_load(&fin_on_b) < 10 || rounds < 20000)) {
        racer *x;
        assert_int_equal(gy_new(&racer_type, &x), GY_OK);
        assert_int_equal(gy_list_set(shared_list, 0, x), GY_OK);
        gy_decref(x);
        gy_safepoint();
        rounds++;
    }
    atomic_store(&stop_b, true);
    pthread_join(b, NULL);
    gy_decref(shared_list);
    print_message("rounds %ld: replaced item freed on A %ld, on B %ld\n", rounds,
                  atomic_load(&fin_on_a), atomic_load(&fin_on_b));
    assert_true(atomic_load(&fin_on_a) > 0);
    assert_true(atomic_load(&fin_on_b) > 0);
    GY_TEST_DOWN();
}

/* --- allocated on A, released on B ---------------------------------------- */

#define HANDOFF_N 20000
static racer *handoff[HANDOFF_N];
static atomic_int handoff_ready;

static void *release_loop(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    for (int i = 0; i < HANDOFF_N; i++) {
        while (atomic_load(&handoff_ready) <= i) {
            sched_yield();
        }
        gy_decref(handoff[i]); /* the only reference, owned by A's heap */
        if (i % 64 == 0) {
            gy_safepoint();
        }
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_handoff_merges_on_owner(void **state) {
    (void)state;
    GY_TEST_UP();
    reset_counts();
    atomic_store(&handoff_ready, 0);
    pthread_t b;
    assert_int_equal(pthread_create(&b, NULL, release_loop, NULL), 0);
    for (int i = 0; i < HANDOFF_N; i++) {
        assert_int_equal(gy_new(&racer_type, &handoff[i]), GY_OK);
        atomic_store(&handoff_ready, i + 1); /* seq_cst: publishes handoff[i] */
        if (i % 64 == 0) {
            gy_safepoint();
        }
    }
    pthread_join(b, NULL);
    double t0 = now_s();
    gy_type_stats st;
    do {
        gy_safepoint(); /* merge what B queued to us */
        gy_type_get_stats(&racer_type, &st);
    } while (st.live > 0 && now_s() - t0 < LIVENESS_S);
    gy_runtime_stats rs;
    gy_runtime_get_stats(&rs);
    assert_int_equal(st.live, 0);
    assert_true(rs.merges >= HANDOFF_N);
    /* Every finalizer ran on the owner, A, at a merge. */
    assert_int_equal(atomic_load(&fin_on_a), HANDOFF_N);
    assert_int_equal(atomic_load(&fin_on_b), 0);
    GY_TEST_DOWN();
}

/* --- loop-affine objects die on their loop --------------------------------- */

static atomic_int loop_wakes;
static void loop_wake(void *arg) {
    (void)arg;
    atomic_fetch_add(&loop_wakes, 1);
}

static gy_type affine_type = {
    .name = "affine",
    .size = sizeof(racer),
    .traverse = racer_traverse,
    .clear = racer_clear,
    .finalize = racer_finalize,
    .flags = GY_TYPE_LOOP_AFFINE,
};

static gy_ref affine_slot;
static pthread_barrier_t step;

static void *affine_other(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    pthread_barrier_wait(&step); /* 1: A stored the object */
    gy_object *o = gy_load(&affine_slot);
    assert_non_null(o);
    pthread_barrier_wait(&step); /* 2: we hold a reference */
    pthread_barrier_wait(&step); /* 3: A dropped its references */
    gy_decref(o);                /* the last one: must not free here */
    gy_safepoint();              /* flushes the free request to A */
    assert_int_equal(atomic_load(&fin_on_b), 0);
    pthread_barrier_wait(&step); /* 4 */
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_loop_affine_freed_on_owner(void **state) {
    (void)state;
    assert_int_equal(gy_runtime_init(NULL, NULL), GY_OK);
    gy_thread_options loop = {.kind = GY_THREAD_LOOP, .wake = loop_wake, .name = "A"};
    assert_int_equal(gy_thread_attach(&loop, NULL), GY_OK);
    reset_counts();
    atomic_store(&loop_wakes, 0);
    pthread_barrier_init(&step, NULL, 2);
    pthread_t b;
    assert_int_equal(pthread_create(&b, NULL, affine_other, NULL), 0);
    racer *x;
    assert_int_equal(gy_new(&affine_type, &x), GY_OK);
    gy_store_steal(&affine_slot, x);
    pthread_barrier_wait(&step); /* 1 */
    pthread_barrier_wait(&step); /* 2 */
    gy_ref_clear(&affine_slot);  /* A's last reference: B still holds one */
    assert_int_equal(atomic_load(&fin_on_a), 0);
    pthread_barrier_wait(&step); /* 3 */
    pthread_barrier_wait(&step); /* 4: B dropped the last and sent it to us */
    assert_true(atomic_load(&loop_wakes) > 0);
    assert_int_equal(atomic_load(&fin_on_a) + atomic_load(&fin_on_b), 0);
    gy_safepoint(); /* our next tick: finalize and free here */
    assert_int_equal(atomic_load(&fin_on_a), 1);
    assert_int_equal(atomic_load(&fin_on_b), 0);
    pthread_join(b, NULL);
    pthread_barrier_destroy(&step);
    GY_TEST_DOWN();
}

/* --- stop the world --------------------------------------------------------- */

static atomic_long mutations[2];
static atomic_int quiet_phase; /* 0 running, 1 asked to wake, 2 woke */
static pthread_mutex_t quiet_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t quiet_cond = PTHREAD_COND_INITIALIZER;

static void *mutator(void *arg) {
    atomic_long *count = arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    while (!atomic_load(&stop_b)) {
        racer *x;
        assert_int_equal(gy_new(&racer_type, &x), GY_OK);
        gy_decref(x);
        atomic_fetch_add(count, 1);
        gy_safepoint();
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void noop_wake(void *arg) { (void)arg; }

/* A loop blocked "in epoll" (quiescent): it counts as stopped, and when it
 * wakes during the stop it waits for the resume before touching objects. */
static void *quiet_loop(void *arg) {
    (void)arg;
    gy_thread_options loop = {.kind = GY_THREAD_LOOP, .wake = noop_wake};
    assert_int_equal(gy_thread_attach(&loop, NULL), GY_OK);
    gy_quiescent_begin();
    pthread_mutex_lock(&quiet_lock);
    while (atomic_load(&quiet_phase) == 0) {
        pthread_cond_wait(&quiet_cond, &quiet_lock);
    }
    pthread_mutex_unlock(&quiet_lock);
    gy_quiescent_end(); /* blocks while the world is stopped */
    atomic_store(&quiet_phase, 2);
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_world_stop_parks_everyone(void **state) {
    (void)state;
    GY_TEST_UP();
    reset_counts();
    atomic_store(&stop_b, false);
    atomic_store(&quiet_phase, 0);
    pthread_t m[2], q;
    for (int i = 0; i < 2; i++) {
        atomic_store(&mutations[i], 0);
        assert_int_equal(pthread_create(&m[i], NULL, mutator, &mutations[i]), 0);
    }
    assert_int_equal(pthread_create(&q, NULL, quiet_loop, NULL), 0);
    double t0 = now_s();
    while ((atomic_load(&mutations[0]) < 100 || atomic_load(&mutations[1]) < 100) &&
           now_s() - t0 < LIVENESS_S) {
        usleep(1000);
    }
    gy__world_stop();
    long c0 = atomic_load(&mutations[0]), c1 = atomic_load(&mutations[1]);
    /* Wake the quiescent loop: it must not get past gy_quiescent_end. */
    pthread_mutex_lock(&quiet_lock);
    atomic_store(&quiet_phase, 1);
    pthread_cond_broadcast(&quiet_cond);
    pthread_mutex_unlock(&quiet_lock);
    usleep(50000);
    assert_int_equal(atomic_load(&mutations[0]), c0);
    assert_int_equal(atomic_load(&mutations[1]), c1);
    assert_int_equal(atomic_load(&quiet_phase), 1);
    gy__world_resume();
    t0 = now_s();
    while ((atomic_load(&quiet_phase) != 2 || atomic_load(&mutations[0]) == c0 ||
            atomic_load(&mutations[1]) == c1) &&
           now_s() - t0 < LIVENESS_S) {
        usleep(1000);
    }
    assert_int_equal(atomic_load(&quiet_phase), 2);
    assert_true(atomic_load(&mutations[0]) > c0);
    assert_true(atomic_load(&mutations[1]) > c1);
    atomic_store(&stop_b, true);
    for (int i = 0; i < 2; i++) {
        pthread_join(m[i], NULL);
    }
    pthread_join(q, NULL);
    gy_runtime_stats rs;
    gy_runtime_get_stats(&rs);
    assert_int_equal(rs.world_stops, 1);
    GY_TEST_DOWN();
}

/* A thread that blocks while attached (not quiescent) holds a world stop
 * up: the stop logs a warning naming it after a second, and completes
 * when the thread reaches its safe point. */
static char warn_text[512];
static atomic_int warn_count;
static void capture_log(void *ud, gy_log_level level, const char *module, const char *msg) {
    (void)ud;
    (void)module;
    if (level == GY_LOG_WARN && atomic_fetch_add(&warn_count, 1) == 0) {
        snprintf(warn_text, sizeof warn_text, "%s", msg);
    }
}
static atomic_int stuck_ready;

static void *stuck_thread(void *arg) {
    (void)arg;
    gy_thread_options opts = {.name = "stuck"};
    assert_int_equal(gy_thread_attach(&opts, NULL), GY_OK);
    atomic_store(&stuck_ready, 1);
    struct timespec nap = {1, 500000000}; /* blocks without gy_quiescent_begin */
    nanosleep(&nap, NULL);
    gy_safepoint(); /* parks here until the stop resumes */
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_world_stop_names_a_stuck_thread(void **state) {
    (void)state;
    GY_TEST_UP();
    atomic_store(&warn_count, 0);
    gy_log_set_handler(capture_log, NULL, GY_LOG_WARN);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stuck_thread, NULL), 0);
    while (!atomic_load(&stuck_ready)) {
        sched_yield();
    }
    gy__world_stop();
    gy__world_resume();
    gy_quiescent_begin();
    pthread_join(t, NULL);
    gy_quiescent_end();
    gy_log_set_handler(NULL, NULL, GY_LOG_DEBUG);
    print_message("%s\n", warn_text);
    assert_true(atomic_load(&warn_count) >= 1);
    assert_non_null(strstr(warn_text, "'stuck'"));
    assert_non_null(strstr(warn_text, "gy_quiescent_begin"));
    GY_TEST_DOWN();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_load_races_last_decref),
    cmocka_unit_test(test_list_slot_get_set),
    cmocka_unit_test(test_handoff_merges_on_owner),
    cmocka_unit_test(test_loop_affine_freed_on_owner),
    cmocka_unit_test(test_world_stop_parks_everyone),
    cmocka_unit_test(test_world_stop_names_a_stuck_thread),
};
GY_TEST_MAIN(tests)
