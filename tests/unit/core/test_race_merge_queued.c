/* core.race_merge_queued: the owner's merge of a queued object racing
 * another thread's last decrement (issue 13's audit of the count
 * transitions, core/DESIGN.md section 3a rows T7-T8).
 *
 * The owner A makes X with two references (local count 2) and hands one to
 * B and one to C. B drops its reference: the shared half goes below zero,
 * X is QUEUED to A. A merges at its safe point: one CAS moves the local
 * half into the shared word and marks X MERGED (count 1: C's). From that
 * CAS on, C's decrement frees X, so A must not depend on X after it. The
 * hook at "race.merge_queued" (right after the CAS) lets C drop its
 * reference inside that window in half of the rounds; in the other half C
 * drops it before A's merge, which then finds the total at zero and frees X
 * itself. Both outcomes are counted and required, and every X is freed
 * exactly once. (The audit moved A's store of ref_local = UNOWNED from
 * after the CAS to before it. The old order wrote into a cell C may have
 * freed, yet harmlessly: the dead header keeps UNOWNED and the cell cannot
 * be reused while A is inside its epoch section, so this test passes on
 * both orders; it guards the race, not that store.) Labelled concurrency
 * (TSan). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "gy_rt.h"

#include "heap.h"

typedef struct item {
    gy_object ob;
    int pad;
} item;

static pthread_t thread_a;
static atomic_long freed_on_a, freed_elsewhere;

static void item_finalize(gy_object *self) {
    (void)self;
    atomic_fetch_add(pthread_equal(pthread_self(), thread_a) ? &freed_on_a : &freed_elsewhere, 1);
}

static gy_type item_type = {
    .name = "merge_item",
    .size = sizeof(item),
    .finalize = item_finalize,
    .flags = GY_TYPE_LEAF,
};

#define ROUNDS 2000
#define LIVENESS_S 120.0

static _Atomic(item *) to_b, to_c;
static atomic_int b_done;  /* rounds B has finished (its decref flushed) */
static atomic_int c_go;    /* round C may drop its reference in */
static atomic_int c_done;  /* rounds C has finished */
static atomic_bool inside; /* this round: C drops inside A's window */
static atomic_bool quit;
static atomic_long hooked; /* windows in which C dropped its reference */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* On A, right after its merge CAS: let C drop its reference now, and wait
 * until it has (C frees X: A must not touch X from here on). */
static void window(const char *name) {
    if (strcmp(name, "race.merge_queued") != 0 || !pthread_equal(pthread_self(), thread_a) ||
        !atomic_load(&inside)) {
        return;
    }
    int round = atomic_load(&c_done) + 1;
    atomic_store(&c_go, round);
    double t0 = now_s();
    while (atomic_load(&c_done) < round && now_s() - t0 < LIVENESS_S) {
        sched_yield(); /* two cores, three threads: let C run */
    }
    atomic_fetch_add(&hooked, 1);
}

static void *thread_b(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    while (!atomic_load(&quit)) {
        item *x = atomic_exchange(&to_b, NULL);
        if (x == NULL) {
            sched_yield();
            continue;
        }
        gy_decref(x);   /* below zero in the shared half: queued to A */
        gy_safepoint(); /* flushes the hand-off to A */
        atomic_fetch_add(&b_done, 1);
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void *thread_c(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    while (!atomic_load(&quit)) {
        int round = atomic_load(&c_done) + 1;
        if (atomic_load(&c_go) < round) {
            sched_yield();
            continue;
        }
        item *x = atomic_exchange(&to_c, NULL);
        gy_decref(x);
        gy_safepoint();
        atomic_fetch_add(&c_done, 1);
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_race_merge_queued(void **state) {
    (void)state;
    GY_TEST_UP();
    thread_a = pthread_self();
    atomic_store(&gy__race_window_hook, window);
    pthread_t b, c;
    assert_int_equal(pthread_create(&b, NULL, thread_b, NULL), 0);
    assert_int_equal(pthread_create(&c, NULL, thread_c, NULL), 0);
    double t0 = now_s();
    int r;
    for (r = 1; r <= ROUNDS && now_s() - t0 < LIVENESS_S; r++) {
        atomic_store(&inside, r % 2 == 0);
        item *x;
        assert_int_equal(gy_new(&item_type, &x), GY_OK);
        gy_incref(x); /* local 2: one reference for B, one for C */
        atomic_store(&to_c, x);
        atomic_store(&to_b, x);
        while (atomic_load(&b_done) < r && now_s() - t0 < LIVENESS_S) {
            sched_yield();
        }
        if (!atomic_load(&inside)) {
            /* C first: the shared half goes further below zero, and A's
             * merge finds the total at zero and frees X itself. */
            atomic_store(&c_go, r);
            while (atomic_load(&c_done) < r && now_s() - t0 < LIVENESS_S) {
                sched_yield();
            }
        }
        gy_safepoint(); /* merges X; inside rounds: C drops it in the window */
        while (atomic_load(&c_done) < r && now_s() - t0 < LIVENESS_S) {
            gy_safepoint();
        }
    }
    atomic_store(&quit, true);
    pthread_join(b, NULL);
    pthread_join(c, NULL);
    atomic_store(&gy__race_window_hook, NULL);
    gy_safepoint();
    long rounds = r - 1;
    print_message("rounds %ld: C dropped inside the window %ld times; freed by A %ld, by C %ld\n",
                  rounds, atomic_load(&hooked), atomic_load(&freed_on_a),
                  atomic_load(&freed_elsewhere));
    assert_int_equal(rounds, ROUNDS);
    assert_int_equal(atomic_load(&freed_on_a) + atomic_load(&freed_elsewhere), ROUNDS);
    /* Both outcomes, each in about half the rounds. */
    assert_true(atomic_load(&hooked) >= ROUNDS / 4);
    assert_true(atomic_load(&freed_elsewhere) >= ROUNDS / 4);
    assert_true(atomic_load(&freed_on_a) >= ROUNDS / 4);
    gy_type_stats ts;
    gy_type_get_stats(&item_type, &ts);
    assert_int_equal(ts.live, 0);
    GY_TEST_DOWN();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_race_merge_queued),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
