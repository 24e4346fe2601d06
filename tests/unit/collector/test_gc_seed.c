/* The seed's cycle-collection examples, one ctest name each:
 *   collector.seed_cycle_collect   node1.next = node2; node2.next = node1
 *   collector.seed_gc_controls     get/set_threshold, disable/enable, get_stats
 *   collector.seed_critical_section disabled while thresholds are crossed
 * Run as `test_gc_seed NAME`. */
#include "gc_node.h"

/* The Node pair: with collection disabled both stay alive; collect()
 * returns 2 and both finalizers run. */
static void test_seed_cycle_collect(void **state) {
    (void)state;
    GY_TEST_UP();
    gc_node_reset_counts();
    assert_true(gy_gc_disable());
    gc_node *node1 = gc_node_new(&gc_fnode_type, 1);
    gc_node *node2 = gc_node_new(&gc_fnode_type, 2);
    gy_store(&node1->next, node2);
    gy_store(&node2->next, node1);
    gy_weakref *w1, *w2;
    assert_int_equal(gy_weakref_new(&w1, node1, NULL, NULL), GY_OK);
    assert_int_equal(gy_weakref_new(&w2, node2, NULL, NULL), GY_OK);
    gy_decref(node1);
    gy_decref(node2);
    /* Refcounting alone cannot free them. */
    for (int i = 0; i < 2000; i++) {
        gc_node *tmp = gc_node_new(&gc_node_type, -1);
        gy_decref(tmp);
        gy_safepoint();
    }
    assert_int_equal(gc_live(&gc_fnode_type), 2);
    gy_object *alive = gy_weakref_get(w1);
    assert_non_null(alive);
    gy_decref(alive);
    assert_int_equal(atomic_load(&gc_node_finalized_total), 0);

    gy_gc_result res;
    assert_int_equal(gc_collect_found(2, &res), 2);
    assert_int_equal(res.collected, 2);
    assert_int_equal(res.uncollectable, 0);
    assert_int_equal(atomic_load(&gc_node_finalized[1]), 1);
    assert_int_equal(atomic_load(&gc_node_finalized[2]), 1);
    assert_int_equal(gc_live(&gc_fnode_type), 0);
    assert_null(gy_weakref_get(w1));
    assert_null(gy_weakref_get(w2));
    /* Nothing left: a second collection finds nothing. */
    assert_int_equal(gc_collect_found(2, NULL), 0);
    gy_decref(w1);
    gy_decref(w2);
    assert_false(gy_gc_enable());
    GY_TEST_DOWN();
}

static void test_seed_gc_controls(void **state) {
    (void)state;
    GY_TEST_UP();
    long t[3];
    gy_gc_get_threshold(t);
    assert_int_equal(t[0], 700);
    assert_int_equal(t[1], 10);
    assert_int_equal(t[2], 10);
    gy_errmsg err = {0};
    assert_int_equal(gy_gc_set_threshold(1000, 15, 15, &err), GY_OK);
    gy_gc_get_threshold(t);
    assert_int_equal(t[0], 1000);
    assert_int_equal(t[1], 15);
    assert_int_equal(t[2], 15);
    /* Bad values are errors and change nothing. */
    assert_int_equal(gy_gc_set_threshold(-1, 15, 15, &err), GY_EINVAL);
    assert_non_null(strstr(err.text, "threshold 0"));
    assert_int_equal(gy_gc_set_threshold(10, 15, GY_GC_THRESHOLD_MAX + 1L, &err), GY_EINVAL);
    gy_gc_get_threshold(t);
    assert_int_equal(t[0], 1000);
    assert_int_equal(t[2], 15);
    /* disable returns the previous state. */
    assert_true(gy_gc_isenabled());
    assert_true(gy_gc_disable());
    assert_false(gy_gc_isenabled());
    assert_false(gy_gc_disable());
    assert_false(gy_gc_enable());
    assert_true(gy_gc_isenabled());
    /* get_stats: one full collection of a 3-cycle. */
    gy_gc_gen_stats before[3], after[3];
    gy_gc_get_stats(before);
    gc_node *a = gc_node_new(&gc_node_type, 0), *b = gc_node_new(&gc_node_type, 0),
            *c = gc_node_new(&gc_node_type, 0);
    gy_store(&a->next, b);
    gy_store(&b->next, c);
    gy_store(&c->next, a);
    gy_decref(a);
    gy_decref(b);
    gy_decref(c);
    assert_int_equal(gc_collect_found(2, NULL), 3);
    gy_gc_get_stats(after);
    assert_int_equal(after[2].collections, before[2].collections + 1);
    assert_int_equal(after[2].collected, before[2].collected + 3);
    assert_int_equal(after[2].uncollectable, before[2].uncollectable);
    assert_true(after[2].candidates >= before[2].candidates + 3);
    assert_true(after[2].duration_ns > before[2].duration_ns);
    assert_int_equal(after[0].collections, before[0].collections);
    /* An invalid generation is an error. */
    assert_int_equal(gy_gc_collect(3, NULL, &err), GY_EINVAL);
    assert_int_equal(gy_gc_collect(-1, NULL, &err), GY_EINVAL);
    GY_TEST_DOWN();
}

/* Thresholds crossed many times while disabled start no collection; after
 * enable + collect the accumulated cycles are freed. */
static void test_seed_critical_section(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_gc_gen_stats before[3], after[3];
    gy_gc_get_stats(before);
    bool was = gy_gc_disable();
    assert_true(was);
    enum { CYCLES = 20000 }; /* 40000 tracked objects: threshold 0 crossed 57 times */
    for (int i = 0; i < CYCLES; i++) {
        gc_node *a = gc_node_new(&gc_node_type, 0), *b = gc_node_new(&gc_node_type, 0);
        gy_store(&a->next, b);
        gy_store(&b->next, a);
        gy_decref(a);
        gy_decref(b);
        gy_safepoint(); /* where automatic collections would run */
    }
    long count[3];
    gy_gc_get_count(count);
    assert_true(count[0] >= 2 * CYCLES);
    gy_gc_get_stats(after);
    for (int g = 0; g < 3; g++) {
        assert_int_equal(after[g].collections, before[g].collections);
    }
    assert_int_equal(gc_live(&gc_node_type), 2 * CYCLES);
    /* End of the critical section. */
    if (was) {
        gy_gc_enable();
    }
    assert_int_equal(gc_collect_found(2, NULL), 2 * CYCLES);
    assert_int_equal(gc_live(&gc_node_type), 0);
    gy_gc_get_count(count);
    assert_true(count[0] < 10);
    GY_TEST_DOWN();
}

int main(int argc, char **argv) {
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_seed_cycle_collect),
        cmocka_unit_test(test_seed_gc_controls),
        cmocka_unit_test(test_seed_critical_section),
    };
    return gy_test_run_named(all, sizeof all / sizeof all[0], argc, argv);
}
