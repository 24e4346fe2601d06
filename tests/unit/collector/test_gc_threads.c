/* collector.threads: collections while attached threads mutate.
 *
 *   test_collect_while_mutating  two mutators (a plain thread and a loop)
 *       build rings, cross-link them through a shared list, drop them, and
 *       keep one ring each alive that they check after every step; the main
 *       thread collects meanwhile and small thresholds start automatic
 *       collections on the mutators too. The test counts the collections
 *       that ran while both mutators were running, so the race is proven.
 *   test_loop_affine_trash  cyclic trash of a loop-affine type owned by a
 *       loop thread is finalized, cleared and freed on that loop.
 *   test_affine_set_hidden_until_cleared  a trash set half cleared while
 *       its loop-affine member waits for its loop is never handed out.
 */
#include <pthread.h>

#include "gc_node.h"
#include "gyre/failpoint.h"

/* --- mutators ------------------------------------------------------------- */

enum { STEPS = 5000, MIN_DURING = 20, MAX_STEPS = 2000000, RING = 8, KEEP_ID_BASE = 60000 };

static gy_list *board; /* shared: references from one thread's objects to the other's */
static atomic_int running;
static atomic_int during; /* main-thread collections while both mutators ran */
static atomic_int wakes;

/* cmocka's asserts cannot leave another thread: fail loudly instead. */
#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: check failed in a mutator: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

static void wake(void *arg) {
    (void)arg;
    atomic_fetch_add(&wakes, 1);
}

static gc_node *node_new(gy_type *type, int id) {
    gc_node *n = NULL;
    CHECK(gy_new(type, &n) == GY_OK);
    n->id = id;
    return n;
}

static gc_node *make_ring(gy_type *type, int n, int id) {
    gc_node *head = node_new(type, id), *prev = head;
    for (int i = 1; i < n; i++) {
        gc_node *x = node_new(type, id);
        gy_store_steal(&prev->next, x);
        prev = x;
    }
    gy_store(&prev->next, head);
    return head;
}

/* The kept ring is intact: n steps around lead back to the head, and no
 * node of it was ever finalized. */
static void check_ring(gc_node *head, int n, int id) {
    gc_node *walk = head;
    gy_incref(walk);
    for (int i = 0; i < n; i++) {
        gc_node *nx = (gc_node *)gy_load(&walk->next);
        CHECK(nx != NULL);
        CHECK(nx->id == id);
        gy_decref(walk);
        walk = nx;
    }
    CHECK(walk == head);
    gy_decref(walk);
    CHECK(atomic_load(&gc_node_finalized[id]) == 0);
}

typedef struct mutator {
    int index;
    bool loop;
    unsigned seed;
} mutator;

static void *mutate(void *arg) {
    mutator *m = arg;
    gy_thread_options opts = {.kind = m->loop ? GY_THREAD_LOOP : GY_THREAD_PLAIN,
                              .wake = m->loop ? wake : NULL,
                              .name = m->loop ? "mutator-loop" : "mutator-plain"};
    gy_errmsg err = {0};
    if (gy_thread_attach(&opts, &err) != GY_OK) {
        fprintf(stderr, "attach: %s\n", err.text);
        abort();
    }
    int keep_id = KEEP_ID_BASE + m->index;
    gc_node *keep = make_ring(&gc_fnode_type, RING, keep_id);
    atomic_fetch_add(&running, 1);
    /* At least STEPS steps, and on until the main thread has collected
     * MIN_DURING times while both mutators ran (bounded). */
    for (int step = 0; step < MAX_STEPS && (step < STEPS || atomic_load(&during) < MIN_DURING);
         step++) {
        unsigned r = (unsigned)rand_r(&m->seed);
        gc_node *ring = make_ring(r % 2 ? &gc_fnode_type : &gc_node_type, 2 + (int)(r % 13), 0);
        /* Cross-thread edges: the ring points at something another thread
         * published, and our kept ring points at the new ring for a while. */
        size_t len = gy_list_len(board);
        if (len > 0) {
            gy_object *other = gy_list_get(board, r % len);
            if (other != NULL) {
                gy_store(&ring->other, other);
                gy_decref(other);
            }
        }
        if (r % 4 == 0) {
            (void)gy_list_set(board, (r / 4) % 64, ring);
        }
        gy_store(&keep->other, ring);
        gy_decref(ring);
        if (r % 7 == 0) {
            gy_ref_clear(&keep->other);
        }
        check_ring(keep, RING, keep_id);
        if (m->loop && r % 16 == 0) {
            /* A loop blocks in epoll: quiescent, and counted as stopped. */
            gy_quiescent_begin();
            sched_yield();
            gy_quiescent_end();
        }
        gy_safepoint();
    }
    atomic_fetch_sub(&running, 1);
    gy_ref_clear(&keep->other);
    check_ring(keep, RING, keep_id);
    gy_decref(keep); /* the kept ring is cyclic trash now */
    gy_thread_detach();
    return NULL;
}

static void test_collect_while_mutating(void **state) {
    (void)state;
    GY_TEST_UP();
    gc_node_reset_counts();
    assert_int_equal(gy_gc_set_threshold(200, 4, 4, NULL), GY_OK);
    assert_int_equal(gy_list_new(&board), GY_OK);
    for (int i = 0; i < 64; i++) {
        gc_node *n = gc_node_new(&gc_node_type, 0);
        gy_list_append(board, n);
        gy_decref(n);
    }
    pthread_t t[2];
    mutator m[2] = {{0, false, 12345u}, {1, true, 67890u}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, mutate, &m[i]), 0);
    }
    int generation = 0;
    while (atomic_load(&running) < 2) {
        gy_safepoint();
    }
    while (atomic_load(&running) == 2) {
        gy_gc_result res;
        gc_collect_found(generation, &res);
        if (atomic_load(&running) == 2) {
            atomic_fetch_add(&during, 1); /* both mutators were mid-run around it */
        }
        generation = (generation + 1) % 3;
        gy_safepoint();
    }
    gy_quiescent_begin(); /* blocking while attached */
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    gy_quiescent_end();
    gy_gc_gen_stats st[3];
    gy_gc_get_stats(st);
    print_message("collections while both mutators ran: %d; automatic: gen0 %llu\n",
                  atomic_load(&during), (unsigned long long)st[0].collections);
    assert_true(atomic_load(&during) >= MIN_DURING);
    /* Everything is garbage now but the board. */
    gy_decref(board);
    gy_gc_result res;
    gc_collect_found(2, &res);
    gy_safepoint(); /* merges the mutators queued to this thread: frees the rest */
    assert_int_equal(gc_live(&gc_node_type) + gc_live(&gc_fnode_type), 0);
    /* The kept rings were finalized exactly once, after they were dropped. */
    assert_int_equal(atomic_load(&gc_node_finalized[KEEP_ID_BASE]), RING);
    assert_int_equal(atomic_load(&gc_node_finalized[KEEP_ID_BASE + 1]), RING);
    GY_TEST_DOWN();
}

/* --- loop-affine trash ------------------------------------------------------- */

static pthread_t loop_thread;
static atomic_int affine_finalized_on_loop, affine_finalized_elsewhere;
static atomic_int affine_cleared_on_loop, affine_cleared_elsewhere;

static void affine_finalize(gy_object *self) {
    (void)self;
    if (pthread_equal(pthread_self(), loop_thread)) {
        atomic_fetch_add(&affine_finalized_on_loop, 1);
    } else {
        atomic_fetch_add(&affine_finalized_elsewhere, 1);
    }
}

static void affine_clear(gy_object *self) {
    gc_node *n = (gc_node *)self;
    if (atomic_load_explicit(&n->next.gy__ptr, memory_order_relaxed) != NULL) {
        if (pthread_equal(pthread_self(), loop_thread)) {
            atomic_fetch_add(&affine_cleared_on_loop, 1);
        } else {
            atomic_fetch_add(&affine_cleared_elsewhere, 1);
        }
    }
    gc_node_clear(self);
}

static gy_type affine_type = {
    .name = "affine_node",
    .size = sizeof(gc_node),
    .traverse = gc_node_traverse,
    .clear = affine_clear,
    .finalize = affine_finalize,
    .flags = GY_TYPE_LOOP_AFFINE,
};

static atomic_int loop_phase; /* 0 build, 1 built, 2 run safe points, 3 quit */

static void *affine_loop(void *arg) {
    (void)arg;
    gy_thread_options opts = {.kind = GY_THREAD_LOOP, .wake = wake, .name = "affine-loop"};
    if (gy_thread_attach(&opts, NULL) != GY_OK) {
        abort();
    }
    gc_node *r = make_ring(&affine_type, 2, 0);
    gy_decref(r); /* cyclic trash owned by this loop */
    atomic_store(&loop_phase, 1);
    while (atomic_load(&loop_phase) != 3) {
        gy_quiescent_begin(); /* blocked in epoll */
        sched_yield();
        gy_quiescent_end();
        gy_safepoint(); /* runs what the collector handed over */
    }
    gy_thread_detach();
    return NULL;
}

static void test_loop_affine_trash(void **state) {
    (void)state;
    GY_TEST_UP();
    assert_int_equal(pthread_create(&loop_thread, NULL, affine_loop, NULL), 0);
    while (atomic_load(&loop_phase) != 1) {
        gy_safepoint();
        sched_yield();
    }
    gy_gc_info before, after;
    gy_gc_get_info(&before);
    gy_gc_result res;
    gc_collect_found(2, &res);
    /* Finalizers go to the owner loop; the set survives this collection. */
    assert_int_equal(res.collected, 0);
    gy_gc_get_info(&after);
    assert_int_equal(after.deferred, before.deferred + 1);
    while (atomic_load(&affine_finalized_on_loop) < 2) {
        gy_safepoint();
        sched_yield();
    }
    /* Finalized on the loop: a later collection clears and frees it there. */
    gc_collect_found(2, &res);
    assert_int_equal(res.collected, 2);
    while (gc_live(&affine_type) != 0) {
        gy_safepoint();
        sched_yield();
    }
    assert_int_equal(atomic_load(&affine_finalized_on_loop), 2);
    assert_int_equal(atomic_load(&affine_finalized_elsewhere), 0);
    assert_true(atomic_load(&affine_cleared_on_loop) >= 1);
    assert_int_equal(atomic_load(&affine_cleared_elsewhere), 0);
    atomic_store(&loop_phase, 3);
    gy_quiescent_begin();
    pthread_join(loop_thread, NULL);
    gy_quiescent_end();
    GY_TEST_DOWN();
}

/* --- issue 13: a half-cleared set stays hidden behind a loop-affine member -- */

/* Loop-affine, no finalizer: its clear goes to its owner loop. */
static gy_type affine_plain_type = {
    .name = "affine_plain",
    .size = sizeof(gc_node),
    .traverse = gc_node_traverse,
    .clear = gc_node_clear,
    .flags = GY_TYPE_LOOP_AFFINE,
};

static gy_ref handover;        /* the loop's new object, for the main thread */
static atomic_int hidden_step; /* 0 make, 1 made, 2 drain, 3 quit */

static void *hidden_loop(void *arg) {
    (void)arg;
    gy_thread_options opts = {.kind = GY_THREAD_LOOP, .wake = wake, .name = "hidden-loop"};
    CHECK(gy_thread_attach(&opts, NULL) == GY_OK);
    /* K lives on in A's segment, so later collections walk A's word. */
    gc_node *k = node_new(&affine_plain_type, 0);
    gc_node *a = node_new(&affine_plain_type, 1);
    gy_store_steal(&handover, a);
    atomic_store(&hidden_step, 1);
    /* Blocked in "epoll" until told: the clear posted to us waits. */
    gy_quiescent_begin();
    while (atomic_load(&hidden_step) < 2) {
        sched_yield();
    }
    gy_quiescent_end();
    while (atomic_load(&hidden_step) < 3) {
        gy_safepoint();
        sched_yield();
    }
    gy_decref(k);
    gy_thread_detach();
    return NULL;
}

static bool list_has(gy_list *l, const void *ob) {
    bool found = false;
    for (size_t i = 0; i < gy_list_len(l); i++) {
        gy_object *o = gy_list_get(l, i);
        found |= o == ob;
        gy_decref(o);
    }
    return found;
}

/* Start the loop and link its A with a new plain X in a cycle: NEW
 * references to both in *a and *x. */
static void start_affine_cycle(pthread_t *t, gc_node **a, gc_node **x) {
    atomic_store(&hidden_step, 0);
    assert_int_equal(pthread_create(t, NULL, hidden_loop, NULL), 0);
    while (atomic_load(&hidden_step) != 1) {
        gy_safepoint();
        sched_yield();
    }
    *a = (gc_node *)gy_load(&handover);
    gy_ref_clear(&handover);
    *x = node_new(&gc_node_type, 2);
    gy_store(&(*a)->next, *x);
    gy_store(&(*x)->next, *a);
}

static void stop_affine_loop(pthread_t t) {
    atomic_store(&hidden_step, 3);
    gy_quiescent_begin();
    pthread_join(t, NULL);
    gy_quiescent_end();
}

/* Internal: a handed-off clear finished (what runtime shutdown may call
 * once more after it reset the count). */
void gy__gc_posted_clear_done(gy_object *ob);

/* A cycle of a loop-affine A (owned by a loop) and a plain X: the
 * collection clears X here and hands A's clear to the loop, which is
 * blocked. Until A is cleared too, nothing may hand X out (cleared, still
 * alive because A holds it): not gy_gc_get_objects, not introspection, not
 * its id, not a gy_load of A's field through the loop's raw pointer to A;
 * collections meanwhile walk A's segment (K lives there) without taking the
 * hidden set for their own candidates. Then the loop runs and both are
 * freed there and here. */
static void test_affine_set_hidden_until_cleared(void **state) {
    (void)state;
    GY_TEST_UP();
    /* A stray "clear done" with nothing handed off (runtime shutdown may
     * run one after resetting the count) must not open the next set. */
    gy__gc_posted_clear_done(NULL);
    pthread_t t;
    gc_node *a, *x;
    start_affine_cycle(&t, &a, &x);
    gy_id xid = gy_object_id(x);
    const void *xp = x;
    gy_object *xo = &x->ob; /* a raw pointer, as a loop may keep */
    gy_decref(x);
    gy_decref(a);
    gy_gc_result res;
    gc_collect_found(2, &res);
    assert_int_equal(res.collected, 2);
    /* X is cleared and alive (A holds it), A waits for its loop. */
    assert_int_equal(gc_live(&gc_node_type), 1);
    assert_int_equal(gc_live(&affine_plain_type), 2); /* A and K */
    gy_list *all = NULL;
    assert_int_equal(gy_gc_get_objects(-1, &all, NULL), GY_OK);
    assert_false(list_has(all, xp));
    gy_decref(all);
    gy_objects objs;
    assert_int_equal(gy_objects_by_type(&gc_node_type, 0, &objs), GY_OK);
    assert_int_equal(objs.len, 0);
    gy_objects_release(&objs);
    gc_node *again = NULL;
    assert_int_equal(gy_object_from_id(xid, &again), GY_ESTALE);
    /* The loop's raw pointer to A (here: a) reads nothing from it. */
    assert_null(gy_load(&((gc_node *)a)->next));
    /* A live object referencing a hidden member: later collections (they
     * walk A's segment, K lives there) count it as an outside reference,
     * never as one of their candidates, and leave the set hidden. */
    gy_list *keep;
    assert_int_equal(gy_list_new(&keep), GY_OK);
    assert_int_equal(gy_list_append(keep, xo), GY_OK);
    for (int gen = 0; gen <= 2; gen++) {
        gc_collect_found(gen, &res);
        assert_int_equal(res.collected, 0);
    }
    assert_int_equal(gc_live(&gc_node_type), 1);
    assert_int_equal(gy_gc_get_objects(-1, &all, NULL), GY_OK);
    assert_false(list_has(all, xp));
    gy_decref(all);
    gy_decref(keep);
    /* The loop wakes up, clears A: everything goes. */
    atomic_store(&hidden_step, 2);
    while (gc_live(&gc_node_type) + gc_live(&affine_plain_type) != 1) {
        gy_safepoint();
        sched_yield();
    }
    stop_affine_loop(t);
    GY_TEST_DOWN();
}

#if GY_FAILPOINTS
/* Make the collection's first internal allocation (its hand-off node to
 * the loop) fail. */
static void fail_handoff(gy_gc_phase phase, const gy_gc_callback_info *info, void *arg) {
    (void)info, (void)arg;
    if (phase == GY_GC_START) {
        assert_int_equal(gy_failpoint_set("internal", "nth:1", NULL), GY_OK);
    } else {
        gy_failpoint_reset_all();
    }
}

/* The same cycle, but the hand-off of A's clear to its (blocked) loop cannot
 * be allocated: the collector clears A itself rather than leave X cleared
 * and visible behind an uncleared A. X is freed at once; A's free still
 * happens on its loop. */
static void test_affine_handoff_fails(void **state) {
    (void)state;
    GY_TEST_UP();
    pthread_t t;
    gc_node *a, *x;
    start_affine_cycle(&t, &a, &x);
    gy_decref(x);
    gy_decref(a);
    assert_int_equal(gy_gc_callback_add(fail_handoff, NULL), GY_OK);
    gy_gc_result res;
    gc_collect_found(2, &res);
    assert_int_equal(gy_gc_callback_remove(fail_handoff, NULL), GY_OK);
    assert_int_equal(res.collected, 2);
    assert_int_equal(gc_live(&gc_node_type), 0); /* X: nothing half cleared left */
    atomic_store(&hidden_step, 2);
    while (gc_live(&affine_plain_type) != 1) { /* A freed on its loop; K stays */
        gy_safepoint();
        sched_yield();
    }
    stop_affine_loop(t);
    GY_TEST_DOWN();
}
#endif

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_collect_while_mutating),
    cmocka_unit_test(test_loop_affine_trash),
    cmocka_unit_test(test_affine_set_hidden_until_cleared),
#if GY_FAILPOINTS
    cmocka_unit_test(test_affine_handoff_fails),
#endif
};
GY_TEST_MAIN(tests)
