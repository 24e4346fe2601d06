/* The seed's memory-model examples, one ctest name each:
 *   core.seed_refcount          a new reference adds one, dropping it takes one
 *   core.seed_deterministic_del "destroyed" is logged inside gy_decref
 *   core.seed_scoped_release    GY_AUTO releases on an early-return path
 * Run as `test_core_seed NAME`. */
#include "gy_rt.h"

typedef struct node {
    gy_object ob;
    gy_ref next;
    int value;
} node;

static char event_log[256];

static void log_event(const char *what) {
    size_t n = strlen(event_log);
    snprintf(event_log + n, sizeof event_log - n, "%s%s", n ? "," : "", what);
}

static int node_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((node *)self)->next, visit, arg);
    return 0;
}
static void node_clear(gy_object *self) { gy_ref_clear(&((node *)self)->next); }
static void node_finalize(gy_object *self) {
    (void)self;
    log_event("destroyed");
}

static gy_type node_type = {
    .name = "seed_node",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
    .finalize = node_finalize,
};

/* sys.getrefcount(obj) before and after `other = obj`, then `del other`. */
static void test_seed_refcount(void **state) {
    (void)state;
    GY_TEST_UP();
    node *obj;
    assert_int_equal(gy_new(&node_type, &obj), GY_OK);
    assert_int_equal(gy_refcount(obj), 1);
    node *other = obj;
    gy_incref(other);
    assert_int_equal(gy_refcount(obj), 2);
    gy_decref(other);
    assert_int_equal(gy_refcount(obj), 1);
    /* A reference held in a field counts too. */
    node *holder;
    assert_int_equal(gy_new(&node_type, &holder), GY_OK);
    gy_store(&holder->next, obj);
    assert_int_equal(gy_refcount(obj), 2);
    gy_ref_clear(&holder->next);
    assert_int_equal(gy_refcount(obj), 1);
    gy_decref(holder);
    gy_decref(obj);
    GY_TEST_DOWN();
}

static void drop_it(node *obj) {
    log_event("before");
    gy_decref(obj);
    log_event("after");
}

/* `del obj` runs __del__ at once: "destroyed" sits between before and after,
 * and the per-type live count is back to zero when drop_it returns. */
static void test_seed_deterministic_del(void **state) {
    (void)state;
    GY_TEST_UP();
    event_log[0] = '\0';
    node *obj;
    assert_int_equal(gy_new(&node_type, &obj), GY_OK);
    gy_type_stats st;
    gy_type_get_stats(&node_type, &st);
    assert_int_equal(st.live, 1);
    drop_it(obj);
    assert_string_equal(event_log, "before,destroyed,after");
    gy_type_get_stats(&node_type, &st);
    assert_int_equal(st.live, 0);
    assert_int_equal(st.freed, st.allocated);
    /* A chain frees front to back within the one call. */
    event_log[0] = '\0';
    node *a, *b;
    assert_int_equal(gy_new(&node_type, &a), GY_OK);
    assert_int_equal(gy_new(&node_type, &b), GY_OK);
    gy_store_steal(&a->next, b);
    drop_it(a);
    assert_string_equal(event_log, "before,destroyed,destroyed,after");
    GY_TEST_DOWN();
}

static int use_scoped(int early, node **seen) {
    GY_AUTO node *obj = NULL;
    if (gy_new(&node_type, &obj) != GY_OK) {
        return -1;
    }
    *seen = obj;
    if (early) {
        log_event("early-return");
        return 1; /* obj released here */
    }
    log_event("end-of-block");
    return 0;
}

/* The context manager: released on every path out of the block. */
static void test_seed_scoped_release(void **state) {
    (void)state;
    GY_TEST_UP();
    node *seen = NULL;
    event_log[0] = '\0';
    assert_int_equal(use_scoped(1, &seen), 1);
    assert_string_equal(event_log, "early-return,destroyed");
    event_log[0] = '\0';
    assert_int_equal(use_scoped(0, &seen), 0);
    assert_string_equal(event_log, "end-of-block,destroyed");
    gy_type_stats st;
    gy_type_get_stats(&node_type, &st);
    assert_int_equal(st.live, 0);
    /* GY_STEAL hands the reference on instead. */
    node *kept;
    {
        GY_AUTO node *tmp = NULL;
        assert_int_equal(gy_new(&node_type, &tmp), GY_OK);
        kept = GY_STEAL(tmp);
        assert_null(tmp);
    }
    assert_int_equal(gy_refcount(kept), 1);
    gy_decref(kept);
    GY_TEST_DOWN();
}

int main(int argc, char **argv) {
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_seed_refcount),
        cmocka_unit_test(test_seed_deterministic_del),
        cmocka_unit_test(test_seed_scoped_release),
    };
    return gy_test_run_named(all, sizeof all / sizeof all[0], argc, argv);
}
