/* collector.concurrent: the concurrent collection (collector/DESIGN.md 9.5)
 * against mutators that keep running.
 *
 *   test_world_never_stops    collections while two threads allocate,
 *       link, unlink and drop: garbage is freed, the live structure stays
 *       whole, world_stops stays flat, every collection handshakes, no
 *       anomaly
 *   test_moves_while_marking  R2/R3: references moved between a scanned
 *       and an unscanned holder (pop and append, no count change
 *       overall) while collections mark: nothing live is ever finalized;
 *       moves made while a collection watched are counted (the race ran)
 *   test_upgrade_races_seal   R4/D1: a weak reference upgraded at random
 *       instants while its cycle is collected, the seal-to-publication
 *       window widened by the race hook: both outcomes happen (the set
 *       freed; the set kept because an upgrade won, some by `late`), and
 *       an object that was upgraded is always whole
 *   test_remark_lag   a member sealed, then reached through a holder the
 *       seal pass has not re-marked yet (a weak upgrade of the holder, a
 *       borrowed read, an incref, the edge cleared): the set is aborted as
 *       late, never counted as an anomaly (a missing barrier), and both
 *       objects stay whole
 *   test_quiescent_for_ever   a thread quiescent throughout: collections
 *       complete; it answers when it leaves quiescence, before it touches
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gc_node.h"
#include "gyre/weakref.h"
#include "heap.h"

static gc_node *ring(gy_type *type, int n, int id) {
    gc_node *head = gc_node_new(type, id), *prev = head;
    for (int i = 1; i < n; i++) {
        gc_node *x = gc_node_new(type, id);
        gy_store_steal(&prev->next, x);
        prev = x;
    }
    gy_store(&prev->next, head);
    return head;
}

static uint64_t world_stops(void) {
    gy_gc_info info;
    gy_gc_get_info(&info);
    return info.world_stops;
}

/* An attached thread blocks only quiescent (a handshake would wait for
 * it, as a world stop would). */
static void join(pthread_t t) {
    gy_quiescent_begin();
    pthread_join(t, NULL);
    gy_quiescent_end();
}

static gy_gc_thread_stats thread_stats(void) {
    gy_gc_thread_stats t;
    gy_gc_get_thread_stats(&t);
    return t;
}

/* Whether the calling thread's barriers are on (it answered a watch). */
static bool watching(void) { return gy__tls_heap != NULL && gy__tls_heap->gc_watch != 0; }

/* --- the world never stops ----------------------------------------------------- */

static atomic_bool stop_flag;
static atomic_long garbage_made, watched_ops;

/* A chain of `len` live nodes hanging off `root.other`, rebuilt piecewise
 * while garbage rings are made and dropped. */
static void *churn(void *arg) {
    int id = (int)(intptr_t)arg;
    if (gy_thread_attach(NULL, NULL) != GY_OK) {
        abort();
    }
    gc_node *root = gc_node_new(&gc_fnode_type, id);
    long rounds = 0;
    while (!atomic_load(&stop_flag)) {
        /* live: a fresh 8-node ring replaces the old one */
        gc_node *r = ring(&gc_fnode_type, 8, id);
        gy_store_steal(&root->other, r);
        /* garbage: a ring of 5 and a self-cycle, dropped at once */
        gy_decref(ring(&gc_node_type, 5, 0));
        gc_node *self = gc_node_new(&gc_node_type, 0);
        gy_store(&self->next, self);
        gy_decref(self);
        atomic_fetch_add(&garbage_made, 6);
        if (watching()) {
            atomic_fetch_add(&watched_ops, 1);
        }
        if (++rounds % 16 == 0) {
            gy_safepoint();
        }
    }
    /* The live ring is whole: 8 nodes, all of our id, none finalized. */
    gc_node *first = (gc_node *)gy_load(&root->other);
    gc_node *n = first;
    int len = 0;
    do {
        assert_int_equal(n->id, id);
        gc_node *next = (gc_node *)gy_load(&n->next);
        gy_decref(n);
        n = next;
        len++;
    } while (n != first && len < 100);
    gy_decref(n);
    assert_int_equal(len, 8);
    gy_decref(root); /* the root, the ring: freed by refcount (and the collector) */
    gy_thread_detach();
    return NULL;
}

static void test_world_never_stops(void **state) {
    (void)state;
    gc_up_concurrent();
    atomic_store(&stop_flag, false);
    atomic_store(&garbage_made, 0);
    atomic_store(&watched_ops, 0);
    for (int i = 0; i < GC_NODE_MAX_IDS; i++) {
        atomic_store(&gc_node_finalized[i], 0);
    }
    enum { ID_A = 11, ID_B = 12 };
    pthread_t a, b;
    pthread_create(&a, NULL, churn, (void *)(intptr_t)ID_A);
    pthread_create(&b, NULL, churn, (void *)(intptr_t)ID_B);
    uint64_t stops0 = world_stops();
    gy_gc_thread_stats t0 = thread_stats();
    uint64_t collected = 0;
    int collections = 0;
    while (collections < 30 || atomic_load(&watched_ops) == 0) {
        gy_gc_result res;
        assert_int_equal(gy_gc_collect(collections % 3, &res, NULL), GY_OK);
        collected += res.collected;
        assert_int_equal(res.pause_ns, 0); /* nothing stopped */
        collections++;
        assert_true(collections < 100000);
    }
    uint64_t stops1 = world_stops();
    atomic_store(&stop_flag, true);
    join(a);
    join(b);
    gy_gc_thread_stats t1 = thread_stats();
    print_message("%d collections, %llu collected (%ld garbage made), %ld ops while watched, "
                  "%llu handshakes, %llu aborted sets, world stops %llu -> %llu\n",
                  collections, (unsigned long long)collected, atomic_load(&garbage_made),
                  atomic_load(&watched_ops), (unsigned long long)(t1.handshakes - t0.handshakes),
                  (unsigned long long)(t1.aborted_sets - t0.aborted_sets),
                  (unsigned long long)stops0, (unsigned long long)stops1);
    assert_int_equal(stops1, stops0); /* no world stop for any collection */
    assert_true(collected > 0);
    assert_true(t1.handshakes - t0.handshakes >= 2 * (uint64_t)collections);
    assert_int_equal(t1.anomalies, 0);
    assert_int_equal(t1.fallback_stops, 0);
    /* Live rings were replaced (freed, their finalizers ran) but none was
     * freed while it was the live one: the checks in churn. */
    gc_down();
}

/* --- references moved while marking -------------------------------------------------- */

enum { MOVERS = 64, MOVE_ID = 100 };
static gy_list *left, *right;

static void *mover(void *arg) {
    (void)arg;
    if (gy_thread_attach(NULL, NULL) != GY_OK) {
        abort();
    }
    long n = 0;
    while (!atomic_load(&stop_flag)) {
        gy_object *x = NULL;
        bool w = watching();
        /* pop from one list, append to the other: the reference moves with
         * no count change in between (R3), from an unscanned holder to a
         * scanned one or back (R2) */
        if (gy_list_pop(left, &x) == GY_OK) {
            assert_int_equal(gy_list_append(right, x), GY_OK);
            gy_decref(x);
        }
        if (gy_list_pop(right, &x) == GY_OK) {
            assert_int_equal(gy_list_append(left, x), GY_OK);
            gy_decref(x);
        }
        if (w) {
            atomic_fetch_add(&watched_ops, 1);
        }
        if (++n % 64 == 0) {
            gy_safepoint();
        }
    }
    gy_thread_detach();
    return NULL;
}

static void test_moves_while_marking(void **state) {
    (void)state;
    gc_up_concurrent();
    atomic_store(&stop_flag, false);
    atomic_store(&watched_ops, 0);
    for (int i = 0; i < GC_NODE_MAX_IDS; i++) {
        atomic_store(&gc_node_finalized[i], 0);
    }
    assert_int_equal(gy_list_new(&left), GY_OK);
    assert_int_equal(gy_list_new(&right), GY_OK);
    for (int i = 0; i < MOVERS; i++) {
        /* each moved object is a self-cycle: garbage the moment a move
         * loses it */
        gc_node *x = gc_node_new(&gc_fnode_type, MOVE_ID + i);
        gy_store(&x->next, x);
        assert_int_equal(gy_list_append(i % 2 ? left : right, x), GY_OK);
        gy_decref(x);
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        pthread_create(&t[i], NULL, mover, NULL);
    }
    int collections = 0;
    while (collections < 40 || atomic_load(&watched_ops) == 0) {
        for (int i = 0; i < 20; i++) {
            gy_decref(ring(&gc_node_type, 3, 0));
        }
        assert_int_equal(gy_gc_collect(collections % 3, NULL, NULL), GY_OK);
        collections++;
        assert_true(collections < 100000);
    }
    atomic_store(&stop_flag, true);
    for (int i = 0; i < 2; i++) {
        join(t[i]);
    }
    print_message("%d collections, %ld moves while watched\n", collections,
                  atomic_load(&watched_ops));
    assert_int_equal(gy_list_len(left) + gy_list_len(right), MOVERS);
    for (int i = 0; i < MOVERS; i++) {
        assert_int_equal(atomic_load(&gc_node_finalized[MOVE_ID + i]), 0); /* never freed */
    }
    assert_int_equal(thread_stats().anomalies, 0);
    gy_decref(left);
    gy_decref(right);
    gy_gc_collect(2, NULL, NULL);
    for (int i = 0; i < MOVERS; i++) {
        assert_int_equal(atomic_load(&gc_node_finalized[MOVE_ID + i]), 1); /* then freed */
    }
    gc_down();
}

/* --- an upgrade against the seal ---------------------------------------------------- */

static _Atomic(gy_weakref *) race_wr;
static gy_type race_node_t = {.name = "race_node",
                              .size = sizeof(gc_node),
                              .traverse = gc_node_traverse,
                              .clear = gc_node_clear};
static atomic_long upgrades_won, upgrades_failed;

static void widen_sealed(const char *window) {
    if (strcmp(window, "race.gc_sealed") == 0) {
        usleep(300); /* the collector, between the seal and the publication */
    }
}

static void *upgrader(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    if (gy_thread_attach(NULL, NULL) != GY_OK) {
        abort();
    }
    while (!atomic_load(&stop_flag)) {
        gy_quiescent_begin();
        usleep((useconds_t)(rand_r(&seed) % 400));
        gy_quiescent_end();
        gy_weakref *wr = atomic_load_explicit(&race_wr, memory_order_acquire);
        gc_node *a = wr != NULL ? (gc_node *)gy_weakref_get(wr) : NULL;
        if (a != NULL) {
            /* whole: its id, and its peer's */
            assert_int_equal(a->id, 1);
            gc_node *b = (gc_node *)gy_load(&a->next);
            assert_non_null(b);
            assert_int_equal(b->id, 2);
            gy_decref(b);
            gy_decref(a);
            atomic_fetch_add(&upgrades_won, 1);
        } else if (wr != NULL) {
            atomic_fetch_add(&upgrades_failed, 1);
        }
        gy_safepoint();
    }
    gy_thread_detach();
    return NULL;
}

static void test_upgrade_races_seal(void **state) {
    (void)state;
    gc_up_concurrent();
    atomic_store(&stop_flag, false);
    atomic_store(&upgrades_won, 0);
    atomic_store(&upgrades_failed, 0);
    atomic_store(&gy__race_window_hook, widen_sealed);
    gy_gc_disable(); /* only our collections */
    pthread_t t;
    pthread_create(&t, NULL, upgrader, (void *)(uintptr_t)12345);
    int freed = 0, kept = 0, kept_late = 0;
    for (int round = 0; round < 400 && (freed < 5 || kept_late < 5); round++) {
        gc_node *a = gc_node_new(&race_node_t, 1), *b = gc_node_new(&race_node_t, 2);
        gy_store(&a->next, b);
        gy_store(&b->next, a);
        gy_weakref *wr = NULL;
        assert_int_equal(gy_weakref_new(&wr, a, NULL, NULL), GY_OK);
        gy_decref(a);
        gy_decref(b);
        atomic_store_explicit(&race_wr, wr, memory_order_release);
        uint64_t aborted0 = thread_stats().aborted_sets;
        gy_gc_result res;
        assert_int_equal(gy_gc_collect(0, &res, NULL), GY_OK);
        atomic_store_explicit(&race_wr, NULL, memory_order_release);
        if (res.collected == 2) {
            freed++;
            assert_null(gy_weakref_get(wr));
        } else {
            /* Kept: an upgrade touched a member before the seal, or came
             * late, inside the window (then the weak reference may be
             * cleared already, as when a finalizer resurrects). */
            assert_int_equal(res.collected, 0);
            kept++;
            kept_late += thread_stats().aborted_sets > aborted0;
            /* garbage still: later collections free it (the upgrader no
             * longer sees the weak reference) */
            for (int tries = 0; gc_live(&race_node_t) > 0; tries++) {
                assert_true(tries < 1000);
                assert_int_equal(gy_gc_collect(2, NULL, NULL), GY_OK);
            }
        }
        assert_int_equal(gc_live(&race_node_t), 0);
        gy_decref(wr);
    }
    atomic_store(&stop_flag, true);
    join(t);
    atomic_store(&gy__race_window_hook, NULL);
    gy_gc_enable();
    print_message("rounds: %d freed, %d kept (%d by a late upgrade); upgrades %ld won, %ld "
                  "failed\n",
                  freed, kept, kept_late, atomic_load(&upgrades_won),
                  atomic_load(&upgrades_failed));
    assert_true(freed > 0);     /* the collection won */
    assert_true(kept_late > 0); /* an upgrade won inside the window (D1) */
    assert_int_equal(thread_stats().anomalies, 0);
    gc_down();
}

/* --- the re-mark lag ------------------------------------------------------------------ */

/* D (allocated first: sealed first) and H, a cycle; a weak reference to H.
 * Between D's seal and H's turn in the seal pass, another thread upgrades
 * H (not sealed yet: allowed), reads D from it (borrowed), takes a count
 * on D and clears H's edge to it. H's re-mark then no longer reaches D:
 * D is sealed, alive, held from outside. */
static gc_node *lag_d, *lag_h, *lag_kept;
static gy_weakref *lag_wr;
static pthread_mutex_t lag_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lag_cond = PTHREAD_COND_INITIALIZER;
static int lag_step; /* 0 idle, 1 armed, 2 asked, 3 done; lag_lock */

static bool sealed(const gc_node *n) {
    gy__segment *seg = gy__segment_of(&n->ob);
    return (__atomic_load_n(&seg->gcw[gy__cell_index(seg, &n->ob)], __ATOMIC_SEQ_CST) &
            (1u << 7)) != 0; /* GC_SEALED */
}

static void lag_hook(const char *window) {
    if (strcmp(window, "race.gc_seal_step") != 0) {
        return;
    }
    pthread_mutex_lock(&lag_lock);
    if (lag_step == 1 && sealed(lag_d) && !sealed(lag_h)) {
        lag_step = 2; /* the collector waits here, between the two seals */
        pthread_cond_broadcast(&lag_cond);
        while (lag_step != 3) {
            pthread_cond_wait(&lag_cond, &lag_lock);
        }
    }
    pthread_mutex_unlock(&lag_lock);
}

static void *lag_mutator(void *arg) {
    (void)arg;
    if (gy_thread_attach(NULL, NULL) != GY_OK) {
        abort();
    }
    gy_quiescent_begin();
    pthread_mutex_lock(&lag_lock);
    while (lag_step != 2 && !atomic_load(&stop_flag)) {
        pthread_cond_wait(&lag_cond, &lag_lock);
    }
    pthread_mutex_unlock(&lag_lock);
    gy_quiescent_end(); /* answers the watch: barriers on */
    if (!atomic_load(&stop_flag)) {
        assert_true(watching());
        gc_node *h = (gc_node *)gy_weakref_get(lag_wr); /* H: not sealed, the upgrade wins */
        assert_non_null(h);
        gc_node *d = (gc_node *)atomic_load_explicit(&h->next.gy__ptr, memory_order_acquire);
        assert_ptr_equal(d, lag_d); /* borrowed: H holds it */
        gy_incref(d);               /* touches D, sealed */
        gy_ref_clear(&h->next);     /* H no longer reaches D */
        lag_kept = d;
        gy_decref(h); /* D still holds H */
        pthread_mutex_lock(&lag_lock);
        lag_step = 3;
        pthread_cond_broadcast(&lag_cond);
        pthread_mutex_unlock(&lag_lock);
    }
    gy_thread_detach();
    return NULL;
}

static void test_remark_lag(void **state) {
    (void)state;
    gc_up_concurrent();
    gy_gc_disable(); /* only our collection */
    static gy_type lag_t = {.name = "lag_node",
                            .size = sizeof(gc_node),
                            .traverse = gc_node_traverse,
                            .clear = gc_node_clear};
    lag_d = gc_node_new(&lag_t, 1);
    lag_h = gc_node_new(&lag_t, 2);
    gy_store(&lag_h->next, lag_d);
    gy_store(&lag_d->next, lag_h);
    assert_int_equal(gy_weakref_new(&lag_wr, lag_h, NULL, NULL), GY_OK);
    gy_decref(lag_d);
    gy_decref(lag_h);
    atomic_store(&stop_flag, false);
    lag_step = 1;
    lag_kept = NULL;
    pthread_t t;
    pthread_create(&t, NULL, lag_mutator, NULL);
    atomic_store(&gy__race_window_hook, lag_hook);
    gy_gc_thread_stats before = thread_stats();
    gy_gc_result res;
    assert_int_equal(gy_gc_collect(0, &res, NULL), GY_OK);
    atomic_store(&gy__race_window_hook, NULL);
    pthread_mutex_lock(&lag_lock);
    int step = lag_step;
    pthread_mutex_unlock(&lag_lock);
    atomic_store(&stop_flag, true);
    pthread_mutex_lock(&lag_lock);
    pthread_cond_broadcast(&lag_cond);
    pthread_mutex_unlock(&lag_lock);
    join(t);
    gy_gc_thread_stats after = thread_stats();
    print_message("remark lag: window %s, collected %llu, aborted sets +%llu, anomalies +%llu\n",
                  step == 3 ? "ran" : "missed", (unsigned long long)res.collected,
                  (unsigned long long)(after.aborted_sets - before.aborted_sets),
                  (unsigned long long)(after.anomalies - before.anomalies));
    assert_int_equal(step, 3); /* the race ran: D sealed, H reached */
    assert_int_equal(after.anomalies, before.anomalies);
    assert_true(after.aborted_sets > before.aborted_sets);
    assert_int_equal(res.collected, 0);
    /* Both whole: D (held) still reaches H; H no longer reaches D. */
    assert_ptr_equal(lag_kept, lag_d);
    gc_node *h = (gc_node *)gy_load(&lag_d->next);
    assert_ptr_equal(h, lag_h);
    assert_int_equal(h->id, 2);
    assert_null(gy_load(&h->next));
    gy_decref(h);
    gy_decref(lag_kept);
    assert_int_equal(gy_gc_collect(2, NULL, NULL), GY_OK);
    assert_int_equal(gc_live(&lag_t), 0);
    gy_decref(lag_wr);
    gy_gc_enable();
    gc_down();
}

/* --- a thread quiescent for ever ------------------------------------------------------ */

static atomic_int q_phase;

static void *sleeper(void *arg) {
    (void)arg;
    if (gy_thread_attach(NULL, NULL) != GY_OK) {
        abort();
    }
    gc_node *mine = ring(&gc_node_type, 4, 7);
    gy_quiescent_begin();
    atomic_store(&q_phase, 1);
    while (atomic_load(&q_phase) == 1) {
        usleep(1000);
    }
    gy_quiescent_end();
    /* Answered on the way out (W2): our barriers are on if a collection
     * still watches, off otherwise; either way our ring is whole. */
    atomic_store(&q_phase, watching() ? 3 : 4);
    gy_decref(mine);
    gy_thread_detach();
    return NULL;
}

static void test_quiescent_for_ever(void **state) {
    (void)state;
    gc_up_concurrent();
    atomic_store(&q_phase, 0);
    pthread_t t;
    pthread_create(&t, NULL, sleeper, NULL);
    while (atomic_load(&q_phase) != 1) {
        gy_quiescent_begin();
        usleep(100);
        gy_quiescent_end();
    }
    for (int i = 0; i < 5; i++) {
        gy_decref(ring(&gc_node_type, 3, 0));
        gy_gc_result res;
        assert_int_equal(gy_gc_collect(2, &res, NULL), GY_OK); /* never waits for it */
        assert_int_equal(res.collected, 3);
    }
    atomic_store(&q_phase, 2);
    join(t);
    assert_int_equal(atomic_load(&q_phase), 4); /* no collection watched: it answered "off" */
    gc_down();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_world_never_stops),  cmocka_unit_test(test_moves_while_marking),
        cmocka_unit_test(test_upgrade_races_seal), cmocka_unit_test(test_remark_lag),
        cmocka_unit_test(test_quiescent_for_ever),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
