/* core.containers: gy_list's and gy_dict's traverse takes no lock and reads
 * no freed or out-of-bounds memory while the container is mutated
 * (collector/DESIGN.md 9.7; the traverse contract in gyre/object.h).
 *
 * The deterministic tests have a second thread mutate the container while
 * the traverse waits inside a visit: a traverse that held the container's
 * lock would leave that thread spinning on it for ever (the alarm fails the
 * test), and one that read the block a grow or clear retired, once freed,
 * is an ASan report (the debug stage poisons freed storage). The threaded test races a mutator
 * against a traversing thread and counts traverses that overlapped a change
 * and ones that did not. Labelled "concurrency": also run under TSan. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "gy_rt.h"

static gy_type leaf_type = {.name = "containers_leaf", .size = 32, .flags = GY_TYPE_LEAF};

static gy_object *leaf(void) {
    gy_object *ob = NULL;
    assert_int_equal(gy_new(&leaf_type, &ob), GY_OK);
    return ob;
}

static void fill_list(gy_list *l, int n) {
    for (int i = 0; i < n; i++) {
        GY_AUTO gy_object *x = leaf();
        assert_int_equal(gy_list_append(l, x), GY_OK);
    }
}

/* --- a container mutated while its traverse is inside a visit ---------- *
 * The traverse runs on this thread and, at chosen visits, asks a second
 * attached thread to mutate the container and waits for it, without leaving
 * its epoch section (the waiting visit allocates nothing, as a traverse's
 * visit must not). */

typedef struct helper {
    pthread_t t;
    void (*job)(void *arg);
    void *arg;
    atomic_int state; /* 0 idle, 1 job posted, 2 job done, 3 exit */
} helper;

static void *helper_main(void *arg) {
    helper *hp = arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    for (;;) {
        int st = atomic_load(&hp->state);
        if (st == 3) {
            break;
        }
        if (st == 1) {
            hp->job(hp->arg);
            atomic_store(&hp->state, 2);
        }
        sched_yield();
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void helper_start(helper *hp) {
    atomic_init(&hp->state, 0);
    assert_int_equal(pthread_create(&hp->t, NULL, helper_main, hp), 0);
}

/* Run job on the helper thread and wait for it (a list or dict lock held
 * by the traverse would make the helper spin for ever: the alarm fires). */
static void helper_run(helper *hp, void (*job)(void *), void *arg) {
    hp->job = job;
    hp->arg = arg;
    atomic_store(&hp->state, 1);
    while (atomic_load(&hp->state) != 2) {
        sched_yield();
    }
    atomic_store(&hp->state, 0);
}

static void helper_stop(helper *hp) {
    atomic_store(&hp->state, 3);
    assert_int_equal(pthread_join(hp->t, NULL), 0);
}

typedef struct list_visit {
    gy_list *l;
    helper hp;
    int visits;
} list_visit;

static void list_grow_set_pop(void *arg) {
    gy_list *l = arg;
    fill_list(l, 200); /* several grows: the block the traverse reads is retired */
    GY_AUTO gy_object *x = leaf();
    assert_int_equal(gy_list_set(l, 1, x), GY_OK); /* the old item 1 is freed */
    gy_object *popped = NULL;
    assert_int_equal(gy_list_pop(l, &popped), GY_OK);
    gy_decref(popped);
}

static void list_clear_job(void *arg) { gy_list_clear(arg); }

static int visit_list(gy_object *child, void *arg) {
    list_visit *v = arg;
    /* A leaf's cell, live or waiting out a grace period: its segment
     * still says leaf (the cell is not reused while we are in our epoch
     * section). */
    assert_ptr_equal(gy_type_of(child), &leaf_type);
    v->visits++;
    if (v->visits == 1) {
        helper_run(&v->hp, list_grow_set_pop, v->l);
    } else if (v->visits == 3) {
        helper_run(&v->hp, list_clear_job, v->l); /* every item dropped */
    }
    return 0;
}

static void test_list_traverse_survives_grow_and_clear(void **state) {
    (void)state;
    GY_TEST_UP();
    alarm(60); /* a traverse holding the list's lock never returns */
    gy_list *l = NULL;
    assert_int_equal(gy_list_new(&l), GY_OK);
    fill_list(l, 6);
    list_visit v = {.l = l};
    helper_start(&v.hp);
    assert_int_equal(gy_list_type.traverse((gy_object *)l, visit_list, &v), 0);
    helper_stop(&v.hp);
    alarm(0);
    /* The traverse read the block it loaded (6 slots, through the grow,
     * the set and the clear), not the grown one of 205 items. */
    assert_int_equal(v.visits, 6);
    assert_int_equal(gy_list_len(l), 0);
    gy_decref(l);
    GY_TEST_DOWN();
}

typedef struct dict_visit {
    gy_dict *d;
    helper hp;
    int visits;
} dict_visit;

static void dict_put(gy_dict *d, int i) {
    char key[32];
    snprintf(key, sizeof key, "k%d", i);
    GY_AUTO gy_object *x = leaf();
    assert_int_equal(gy_dict_set(d, key, x), GY_OK);
}

static void dict_grow_del(void *arg) {
    gy_dict *d = arg;
    for (int i = 100; i < 400; i++) {
        dict_put(d, i); /* grows: the table the traverse reads is retired */
    }
    for (int i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(gy_dict_del(d, key), GY_OK); /* values freed */
    }
}

static void dict_clear_job(void *arg) { gy_dict_clear(arg); }

static int visit_dict(gy_object *child, void *arg) {
    dict_visit *v = arg;
    assert_ptr_equal(gy_type_of(child), &leaf_type);
    v->visits++;
    if (v->visits == 1) {
        helper_run(&v->hp, dict_grow_del, v->d);
    } else if (v->visits == 2) {
        helper_run(&v->hp, dict_clear_job, v->d);
    }
    return 0;
}

static void test_dict_traverse_survives_grow_and_clear(void **state) {
    (void)state;
    GY_TEST_UP();
    alarm(60);
    gy_dict *d = NULL;
    assert_int_equal(gy_dict_new(&d), GY_OK);
    for (int i = 0; i < 6; i++) {
        dict_put(d, i); /* a table of 8, full: the next new key grows it */
    }
    dict_visit v = {.d = d};
    helper_start(&v.hp);
    assert_int_equal(gy_dict_type.traverse((gy_object *)d, visit_dict, &v), 0);
    helper_stop(&v.hp);
    alarm(0);
    /* The old table's six values, all visited from the table the grow
     * retired (the 300 new keys are in the new one). */
    assert_int_equal(v.visits, 6);
    assert_int_equal(gy_dict_len(d), 0);
    gy_decref(d);
    GY_TEST_DOWN();
}

/* --- a mutator racing a traversing thread -------------------------------- */

#define RACE_ROUNDS 3000

typedef struct race {
    gy_list *l;
    gy_dict *d;
    atomic_bool stop;
    atomic_long overlapped, undisturbed, visited;
} race;

static int count_visit(gy_object *child, void *arg) {
    race *r = arg;
    /* The cell is a leaf's, live or in a grace period (never reused). */
    assert_ptr_equal(gy_type_of(child), &leaf_type);
    atomic_fetch_add_explicit(&r->visited, 1, memory_order_relaxed);
    return 0;
}

static void *traverser(void *arg) {
    race *r = arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    while (!atomic_load(&r->stop)) {
        size_t before = gy_list_len(r->l) + gy_dict_len(r->d);
        (void)gy_list_type.traverse((gy_object *)r->l, count_visit, r);
        (void)gy_dict_type.traverse((gy_object *)r->d, count_visit, r);
        size_t after = gy_list_len(r->l) + gy_dict_len(r->d);
        atomic_fetch_add(before != after ? &r->overlapped : &r->undisturbed, 1);
        gy_safepoint(); /* let retired blocks be reclaimed */
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_traverse_races_mutator(void **state) {
    (void)state;
    GY_TEST_UP();
    race r = {0};
    assert_int_equal(gy_list_new(&r.l), GY_OK);
    assert_int_equal(gy_dict_new(&r.d), GY_OK);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, traverser, &r), 0);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        fill_list(r.l, round % 37);
        for (int i = 0; i < round % 23; i++) {
            dict_put(r.d, i);
        }
        gy_object *x = NULL;
        while (round % 3 == 0 && gy_list_pop(r.l, &x) == GY_OK) {
            gy_decref(x);
        }
        if (round % 3 == 1) {
            gy_list_clear(r.l);
            gy_dict_clear(r.d);
        }
        gy_safepoint();
    }
    atomic_store(&r.stop, true);
    assert_int_equal(pthread_join(t, NULL), 0);
    printf("traverses overlapping a change %ld, undisturbed %ld, children visited %ld\n",
           atomic_load(&r.overlapped), atomic_load(&r.undisturbed), atomic_load(&r.visited));
    assert_true(atomic_load(&r.overlapped) > 0); /* the race happened */
    assert_true(atomic_load(&r.visited) > 0);
    gy_decref(r.l);
    gy_decref(r.d);
    GY_TEST_DOWN();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_list_traverse_survives_grow_and_clear),
    cmocka_unit_test(test_dict_traverse_survives_grow_and_clear),
    cmocka_unit_test(test_traverse_races_mutator),
};
GY_TEST_MAIN(tests)
