/* core.race_load_vs_last_clear: regression test of issue 13, the use-after-
 * free in the biased count.
 *
 * Thread A (the owner) loops: gy_new an object whose finalizer takes a few
 * hundred cycles writing into it, gy_store it into a shared gy_ref, drop its
 * own reference, gy_ref_clear the field (A's last reference). Thread B loops
 * gy_load on the field and drops what it got. Before the fix, A's last
 * decrement freed the PUBLISHED object without the CAS that marks it MERGED,
 * so B's try-incref could win on an object already being freed; the
 * finalizer's set-up then overwrote B's +1 with a plain store and B's
 * decrement freed the object under A's finalizer (clear ran during it).
 *
 * A hook stretches the window between A's read of the shared word and its
 * CAS (gy__race_window_hook, "race.last_decref") in half of A's last
 * decrements, so that B lands inside it often. Both outcomes are counted and
 * required: the load wins (B's try-incref gets in first: the object lives
 * on and B's decrement frees it, runtime stat last_ref_races) and the load
 * fails (B finds it dying: tryincref_refused). The ledger checks that no
 * object is finalized twice, cleared during its finalizer, or touched after
 * clear, and that every object was finalized and cleared exactly once.
 * Under ASan the freed cell is also poisoned. Labelled concurrency (TSan). */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "gy_rt.h"

#include "heap.h"

enum { LIVE = 0x1173, DEAD = 0xdead };
enum { FIN_NONE, FIN_RUNNING, FIN_DONE };

typedef struct victim {
    gy_object ob;
    atomic_int canary;    /* LIVE until clear, DEAD after */
    atomic_int fin_state; /* FIN_NONE -> FIN_RUNNING -> FIN_DONE */
    atomic_int fin_runs;
    uint64_t scratch[8]; /* what the finalizer writes */
} victim;

/* The ledger: what went wrong, and what happened. */
static atomic_long bad_canary, fin_twice, clear_in_fin, clear_twice, clear_before_fin;
static atomic_long finalized, cleared, fin_on_b;
static pthread_t thread_a;

static int victim_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    (void)self, (void)visit, (void)arg;
    return 0;
}

static void victim_finalize(gy_object *self) {
    victim *v = (victim *)self;
    if (atomic_load(&v->canary) != LIVE) {
        atomic_fetch_add(&bad_canary, 1);
    }
    if (atomic_fetch_add(&v->fin_runs, 1) != 0) {
        atomic_fetch_add(&fin_twice, 1);
    }
    atomic_store(&v->fin_state, FIN_RUNNING);
    for (int i = 0; i < 200; i++) { /* a few hundred cycles inside the object */
        v->scratch[i % 8] += (uint64_t)i;
        atomic_signal_fence(memory_order_seq_cst);
    }
    if (atomic_load(&v->canary) != LIVE) {
        atomic_fetch_add(&bad_canary, 1);
    }
    atomic_store(&v->fin_state, FIN_DONE);
    atomic_fetch_add(&finalized, 1);
    if (!pthread_equal(pthread_self(), thread_a)) {
        atomic_fetch_add(&fin_on_b, 1);
    }
}

static void victim_clear(gy_object *self) {
    victim *v = (victim *)self;
    int fs = atomic_load(&v->fin_state);
    if (fs == FIN_RUNNING) {
        atomic_fetch_add(&clear_in_fin, 1);
    } else if (fs == FIN_NONE) {
        atomic_fetch_add(&clear_before_fin, 1);
    }
    if (atomic_exchange(&v->canary, DEAD) != LIVE) {
        atomic_fetch_add(&clear_twice, 1);
    } else {
        atomic_fetch_add(&cleared, 1);
    }
}

static gy_type victim_type = {
    .name = "victim",
    .size = sizeof(victim),
    .traverse = victim_traverse,
    .clear = victim_clear,
    .finalize = victim_finalize,
};

typedef struct holder {
    gy_object ob;
    gy_ref field;
} holder;

static int holder_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((holder *)self)->field, visit, arg);
    return 0;
}
static void holder_clear(gy_object *self) { gy_ref_clear(&((holder *)self)->field); }
static gy_type holder_type = {
    .name = "holder",
    .size = sizeof(holder),
    .traverse = holder_traverse,
    .clear = holder_clear,
};

/* Stretch every other owner window by a few microseconds (A only: the hook
 * is called by the thread in the window, which is always A here). */
static atomic_long windows;
static void stretch(const char *window) {
    if (strcmp(window, "race.last_decref") != 0) {
        return;
    }
    if (atomic_fetch_add_explicit(&windows, 1, memory_order_relaxed) % 2 == 0) {
        for (volatile int i = 0; i < 3000; i++) {
        }
    }
}

static holder *shared;
static atomic_bool stop_b;
static atomic_long b_hits, b_empty;

static void *loader(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    while (!atomic_load_explicit(&stop_b, memory_order_relaxed)) {
        victim *v = (victim *)gy_load(&shared->field);
        if (v != NULL) {
            if (atomic_load(&v->canary) != LIVE) {
                atomic_fetch_add(&bad_canary, 1); /* handed a cleared object */
            }
            atomic_fetch_add_explicit(&b_hits, 1, memory_order_relaxed);
            gy_decref(v); /* may be the last reference: then freed here */
        } else {
            atomic_fetch_add_explicit(&b_empty, 1, memory_order_relaxed);
        }
        gy_safepoint();
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Enough rounds to see both outcomes many times; a generous liveness bound
 * for sanitizer builds on two busy cores (never a speed check). */
#define MIN_ROUNDS 200000L
#define MAX_ROUNDS 20000000L
#define MIN_EACH 20
#define LIVENESS_S 120.0

static void test_race_load_vs_last_clear(void **state) {
    (void)state;
    GY_TEST_UP();
    thread_a = pthread_self();
    atomic_store(&gy__race_window_hook, stretch);
    assert_int_equal(gy_new(&holder_type, &shared), GY_OK);
    gy_runtime_stats st0, st1;
    gy_runtime_get_stats(&st0);
    pthread_t b;
    assert_int_equal(pthread_create(&b, NULL, loader, NULL), 0);
    double t0 = now_s();
    long rounds = 0;
    for (;;) {
        if (rounds % 4096 == 0 && rounds >= MIN_ROUNDS) {
            gy_runtime_get_stats(&st1);
            bool both = st1.last_ref_races - st0.last_ref_races >= MIN_EACH &&
                        st1.tryincref_refused - st0.tryincref_refused >= MIN_EACH;
            if (both || rounds >= MAX_ROUNDS || now_s() - t0 > LIVENESS_S) {
                break;
            }
        }
        victim *x;
        assert_int_equal(gy_new(&victim_type, &x), GY_OK);
        atomic_init(&x->canary, LIVE);
        gy_store(&shared->field, x);
        gy_decref(x);
        gy_ref_clear(&shared->field); /* A's last reference, unless B has one */
        gy_safepoint();
        rounds++;
    }
    atomic_store(&stop_b, true);
    pthread_join(b, NULL);
    atomic_store(&gy__race_window_hook, NULL);
    gy_safepoint();
    gy_runtime_get_stats(&st1);
    long won = (long)(st1.last_ref_races - st0.last_ref_races);
    long lost = (long)(st1.tryincref_refused - st0.tryincref_refused);
    print_message("rounds %ld in %.1f s: load won %ld, load refused %ld; B hits %ld, empty %ld; "
                  "finalized %ld (%ld on B), cleared %ld\n",
                  rounds, now_s() - t0, won, lost, atomic_load(&b_hits), atomic_load(&b_empty),
                  atomic_load(&finalized), atomic_load(&fin_on_b), atomic_load(&cleared));
    print_message("violations: canary %ld, finalized twice %ld, clear during finalizer %ld, "
                  "clear before finalizer %ld, cleared twice %ld\n",
                  atomic_load(&bad_canary), atomic_load(&fin_twice), atomic_load(&clear_in_fin),
                  atomic_load(&clear_before_fin), atomic_load(&clear_twice));
    assert_int_equal(atomic_load(&bad_canary), 0);
    assert_int_equal(atomic_load(&fin_twice), 0);
    assert_int_equal(atomic_load(&clear_in_fin), 0);
    assert_int_equal(atomic_load(&clear_before_fin), 0);
    assert_int_equal(atomic_load(&clear_twice), 0);
    /* Every object finalized and cleared exactly once, none left alive. */
    assert_int_equal(atomic_load(&finalized), rounds);
    assert_int_equal(atomic_load(&cleared), rounds);
    gy_type_stats ts;
    gy_type_get_stats(&victim_type, &ts);
    assert_int_equal(ts.live, 0);
    /* The race happened both ways, and some last decrements landed on B. */
    assert_true(won >= MIN_EACH);
    assert_true(lost >= MIN_EACH);
    assert_true(atomic_load(&fin_on_b) > 0);
    gy_decref(shared);
    GY_TEST_DOWN();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_race_load_vs_last_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
