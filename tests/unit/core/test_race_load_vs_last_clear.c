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
 * A hook (gy__race_window_hook) stretches the window between A's read of
 * the shared word and its CAS ("race.last_decref") in half of A's last
 * decrements, and steers one round in 8 through B's window between reading
 * the field and its try-incref ("race.load"), so both outcomes come often. Both outcomes are
 * counted and required: the load wins (B's try-incref gets in first: the object lives on and B's
 * decrement frees it, runtime stat last_ref_races) and the load fails (B finds it dying:
 * tryincref_refused). The ledger checks that no object is finalized twice, cleared during its
 * finalizer, or touched after clear, and that every object was finalized and cleared exactly once.
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

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void spin(int n) {
    for (volatile int i = 0; i < n; i++) {
    }
}

/* Wait (a bounded spin, 5 ms: a round that misses it just races freely)
 * until *v reaches r. */
static void await_round(atomic_long *v, long r) {
    double t0 = now_s();
    while (atomic_load(v) < r && now_s() - t0 < 0.005) {
    }
}

/* How the windows are stretched (each hook is called by the thread in the
 * window: "race.last_decref" by A, between its last decrement's read of the
 * shared word and its CAS; "race.load" and "race.load_reread" by B, in
 * gy_load before and after its try-incref).
 * - Free rounds: every other owner window spins a few microseconds, so that
 *   B's try-incref sometimes lands inside it.
 * - Steered rounds (one in 8): A waits until B holds the round's pointer
 *   inside its load window (no reference yet). Then, alternately: B is
 *   released into A's window, its try-incref succeeds there and B keeps the
 *   reference until A's CAS is done (the load wins: A's CAS sees B's count);
 *   or B waits until A's clear is done (the load is refused: MERGED, 0).
 * Every wait is bounded (a round that misses one just races freely). */
static atomic_long cur_round, b_in_window, a_in_window, b_released, b_got, a_cleared;
static atomic_long owner_windows;
static bool steered(long r) { return r % 8 == 0; }
static bool steer_win(long r) { return (r / 8) % 2 == 0; }

static void stretch(const char *window) {
    long r = atomic_load(&cur_round);
    bool steering = steered(r) && atomic_load(&b_in_window) == r;
    if (strcmp(window, "race.last_decref") == 0) {
        if (steering && steer_win(r)) {
            atomic_store(&a_in_window, r);
            await_round(&b_released, r);
            await_round(&b_got, r); /* B's try-incref has succeeded */
        } else if (!steered(r) &&
                   atomic_fetch_add_explicit(&owner_windows, 1, memory_order_relaxed) % 2 == 0) {
            spin(3000);
        }
    } else if (strcmp(window, "race.load") == 0 && steered(r) && atomic_load(&b_in_window) < r) {
        atomic_store(&b_in_window, r);
        if (steer_win(r)) {
            await_round(&a_in_window, r);
            atomic_store(&b_released, r);
        } else {
            await_round(&a_cleared, r);
        }
    } else if (strcmp(window, "race.load_reread") == 0 && steering && steer_win(r) &&
               atomic_load(&b_got) < r) {
        atomic_store(&b_got, r);
        await_round(&a_cleared, r); /* hold the reference across A's CAS */
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
        rounds++;
        atomic_store(&cur_round, rounds);
        victim *x;
        assert_int_equal(gy_new(&victim_type, &x), GY_OK);
        atomic_init(&x->canary, LIVE);
        gy_store(&shared->field, x);
        gy_decref(x);
        if (steered(rounds)) {
            await_round(&b_in_window, rounds); /* B holds the pointer, no reference */
        }
        gy_ref_clear(&shared->field); /* A's last reference, unless B has one */
        atomic_store(&a_cleared, rounds);
        gy_safepoint();
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
