/* stress.core_mixed: four attached threads (two plain, two loops with a
 * wake function) run random operations on shared lists, dicts, weak-value
 * dictionaries and reference fields for a fixed number of operations each:
 * stores and loads racing last decrefs, cross-thread releases, loop-affine
 * objects dying on other threads, weak entries vanishing, a world stop now
 * and then. At the end every object must be gone (the shutdown leak check)
 * and the counters must add up. Bounded by operation count, not time.
 *
 * Built a second time with GY_STRESS_GC as stress.gc_mixed: the same, plus
 * cycles (two cells pointing at each other, loop-affine ones too) hung off
 * the shared slots and dropped when a slot is overwritten, automatic
 * collections at a small threshold and explicit ones from every thread. A
 * collector that freed a reachable object shows up as a use after free
 * (ASan, TSan) or a finalizer count that does not add up; one that missed
 * trash, as a leak at shutdown. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "gy_rt.h"

#include "heap.h"
#ifndef GY_STRESS_GC
#define GY_STRESS_GC 0
#endif
#if GY_STRESS_GC
#include "gyre/gc.h"
#define PICKS 11
#else
#define PICKS 9
#endif

#if GY_STRESS_GC
#include "gy_collect.h" /* gy_test_collect: gy_gc_collect from loops too */
#endif

#define THREADS 4
#define OPS 300000
#define SLOTS 16

typedef struct cell {
    gy_object ob;
    gy_ref next;
    long payload;
} cell;

static int cell_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((cell *)self)->next, visit, arg);
    return 0;
}
static void cell_clear(gy_object *self) { gy_ref_clear(&((cell *)self)->next); }
static atomic_long finalized;
static void cell_finalize(gy_object *self) {
    (void)self;
    atomic_fetch_add(&finalized, 1);
}
static gy_type cell_type = {.name = "stress_cell",
                            .size = sizeof(cell),
                            .traverse = cell_traverse,
                            .clear = cell_clear,
                            .finalize = cell_finalize};
static gy_type affine_type = {.name = "stress_affine",
                              .size = sizeof(cell),
                              .traverse = cell_traverse,
                              .clear = cell_clear,
                              .flags = GY_TYPE_LOOP_AFFINE};

/* Shared state, set up by the main thread. */
static cell *roots[SLOTS]; /* each has a `next` field threads fight over */
static gy_list *shared_list;
static gy_dict *shared_dict;
static gy_weakdict *shared_weak;
static atomic_int wakes;

static void wake(void *arg) {
    (void)arg;
    atomic_fetch_add(&wakes, 1);
}

static void *worker(void *arg) {
    long id = (long)arg;
    gy_thread_options loop = {.kind = GY_THREAD_LOOP, .wake = wake, .cascade_budget = 64};
    assert_int_equal(gy_thread_attach(id % 2 ? &loop : NULL, NULL), GY_OK);
    unsigned r = 2654435761u * (unsigned)(id + 1);
    char key[16];
    for (int op = 0; op < OPS; op++) {
        r = r * 1103515245u + 12345u;
        unsigned pick = (r >> 16) % PICKS, slot = (r >> 8) % SLOTS;
        snprintf(key, sizeof key, "k%u", slot);
        switch (pick) {
        case 0: { /* store a fresh (maybe loop-affine) chain of two */
            cell *a, *b;
            gy_type *t = (r & 1) ? &affine_type : &cell_type;
            assert_int_equal(gy_new(t, &a), GY_OK);
            assert_int_equal(gy_new(&cell_type, &b), GY_OK);
            gy_store_steal(&a->next, b);
            gy_store_steal(&roots[slot]->next, a);
            break;
        }
        case 1: { /* load and drop: may be the last reference */
            gy_object *o = gy_load(&roots[slot]->next);
            gy_xdecref(o);
            break;
        }
        case 2: { /* list append / pop */
            gy_object *o = gy_load(&roots[slot]->next);
            if (o != NULL) {
                assert_int_equal(gy_list_append(shared_list, o), GY_OK);
                gy_decref(o);
            }
            gy_object *p;
            if ((r & 3) == 0 && gy_list_pop(shared_list, &p) == GY_OK) {
                gy_decref(p);
            }
            break;
        }
        case 3: { /* dict set / del */
            cell *c;
            assert_int_equal(gy_new(&cell_type, &c), GY_OK);
            assert_int_equal(gy_dict_set(shared_dict, key, c), GY_OK);
            gy_decref(c);
            if (r & 1) {
                (void)gy_dict_del(shared_dict, key);
            }
            break;
        }
        case 4: { /* weak cache: hit or refill */
            gy_object *v = gy_weakdict_get(shared_weak, key);
            if (v == NULL) {
                gy_object *o = gy_load(&roots[slot]->next);
                if (o != NULL) {
                    assert_int_equal(gy_weakdict_set(shared_weak, key, o), GY_OK);
                    gy_decref(o);
                }
            } else {
                gy_decref(v);
            }
            break;
        }
        case 5: /* clear a field */
            gy_ref_clear(&roots[slot]->next);
            break;
        case 6: { /* list get / set on one slot */
            gy_object *o = gy_list_get(shared_list, 0);
            if (o != NULL) {
                (void)gy_list_set(shared_list, 0, o);
                gy_decref(o);
            }
            break;
        }
        case 7: /* a quiescent pause, as an idle loop */
            gy_quiescent_begin();
            gy_quiescent_end();
            break;
#if GY_STRESS_GC
        case 9: { /* a cycle hung off a slot: trash once the slot changes */
            cell *a, *b;
            gy_type *t = (r & 2) ? &affine_type : &cell_type;
            assert_int_equal(gy_new(t, &a), GY_OK);
            assert_int_equal(gy_new(&cell_type, &b), GY_OK);
            gy_store(&a->next, b);
            gy_store_steal(&b->next, a);
            gy_store_steal(&roots[slot]->next, b);
            break;
        }
        case 10: /* an explicit collection now and then, from any thread */
            if (op % 997 == 0) {
                gy_gc_result res;
                assert_int_equal(gy_test_collect((int)(r % 3), &res, NULL), GY_OK);
            }
            break;
#endif
        default:
            if (id == 0 && op % 5000 == 0) {
                gy_objects objs = {0};
                assert_int_equal(gy_objects_by_type(&cell_type, 8, &objs), GY_OK);
                gy_objects_release(&objs);
            }
            break;
        }
        gy_safepoint();
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_mixed_operations(void **state) {
    (void)state;
    GY_TEST_UP();
#if GY_STRESS_GC
    assert_int_equal(gy_gc_set_threshold(200, 5, 5, NULL), GY_OK);
#endif
    for (int i = 0; i < SLOTS; i++) {
        assert_int_equal(gy_new(&cell_type, &roots[i]), GY_OK);
    }
    assert_int_equal(gy_list_new(&shared_list), GY_OK);
    assert_int_equal(gy_dict_new(&shared_dict), GY_OK);
    assert_int_equal(gy_weakdict_new(&shared_weak), GY_OK);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    }
    /* Joining blocks: quiescent meanwhile, or a worker's world stop would
     * wait for this thread forever (the contract of gyre/runtime.h). */
    gy_quiescent_begin();
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    gy_quiescent_end();
    gy_decref(shared_weak);
    gy_decref(shared_dict);
    gy_list_clear(shared_list);
    gy_decref(shared_list);
    for (int i = 0; i < SLOTS; i++) {
        gy_decref(roots[i]);
    }
    for (int i = 0; i < 4; i++) {
        gy_safepoint();
    }
#if GY_STRESS_GC
    /* The cycles still around are trash now; loop-affine ones whose owner
     * left are finalized here. Twice: a set that waited for its owner's
     * finalizer goes in the second. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(gy_test_collect(2, NULL, NULL), GY_OK);
        gy_safepoint();
    }
    gy_gc_gen_stats st[3];
    gy_gc_get_stats(st);
    print_message("collections: %llu %llu %llu, collected %llu\n",
                  (unsigned long long)st[0].collections, (unsigned long long)st[1].collections,
                  (unsigned long long)st[2].collections,
                  (unsigned long long)(st[0].collected + st[1].collected + st[2].collected));
    assert_true(st[0].collections > 10);
    assert_true(st[0].collected + st[1].collected + st[2].collected > 1000);
#endif
    gy_type_stats cs, as;
    gy_type_get_stats(&cell_type, &cs);
    gy_type_get_stats(&affine_type, &as);
    print_message("cells allocated %llu, finalized %ld; affine %llu; wakes %d\n",
                  (unsigned long long)cs.allocated, atomic_load(&finalized),
                  (unsigned long long)as.allocated, atomic_load(&wakes));
    /* Everything the workers made is gone; finalizers ran once each. */
    assert_int_equal(cs.live, 0);
    assert_int_equal(as.live, 0);
    assert_int_equal((uint64_t)atomic_load(&finalized), cs.allocated);
    assert_true(as.allocated > 0);
    GY_TEST_DOWN(); /* the leak check */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_mixed_operations),
};
GY_TEST_MAIN(tests)
