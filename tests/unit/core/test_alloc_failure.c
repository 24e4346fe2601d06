/* core.alloc_failure: every allocation of a scenario fails in turn (the
 * "alloc" failpoint at its Nth hit, N = 1, 2, ...). Each failure must come
 * back as GY_ENOMEM with nothing left behind; the loop ends when the
 * scenario succeeds, and shutdown then finds no leak. */
#include <pthread.h>

#include "gy_rt.h"

typedef struct pair {
    gy_object ob;
    gy_ref a, b;
} pair;

static int pair_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((pair *)self)->a, visit, arg);
    GY_VISIT(&((pair *)self)->b, visit, arg);
    return 0;
}
static void pair_clear(gy_object *self) {
    gy_ref_clear(&((pair *)self)->a);
    gy_ref_clear(&((pair *)self)->b);
}
static gy_type pair_type = {
    .name = "pair", .size = sizeof(pair), .traverse = pair_traverse, .clear = pair_clear};

/* Builds a list of 200 pairs, each holding a bytes and the previous pair,
 * and indexes them in a dict. Any failure returns its code; GY_AUTO releases
 * what was built so far. */
static int scenario(void) {
    GY_AUTO gy_list *list = NULL;
    GY_AUTO gy_dict *index = NULL;
    int rc = gy_list_new(&list);
    if (rc != GY_OK) {
        return rc;
    }
    if ((rc = gy_dict_new(&index)) != GY_OK) {
        return rc;
    }
    for (int i = 0; i < 200; i++) {
        GY_AUTO pair *p = NULL;
        GY_AUTO gy_bytes *name = NULL;
        char key[32];
        snprintf(key, sizeof key, "pair-%d", i);
        if ((rc = gy_new(&pair_type, &p)) != GY_OK ||
            (rc = gy_bytes_new(&name, key, strlen(key))) != GY_OK) {
            return rc;
        }
        gy_store(&p->a, name);
        if (i > 0) {
            GY_AUTO gy_object *prev = gy_list_get(list, (size_t)i - 1);
            gy_store(&p->b, prev);
        }
        if ((rc = gy_list_append(list, p)) != GY_OK || (rc = gy_dict_set(index, key, p)) != GY_OK) {
            return rc;
        }
    }
    return GY_OK;
}

static void test_every_allocation_fails_in_turn(void **state) {
    (void)state;
    GY_TEST_UP();
    int n;
    for (n = 1; n < 100000; n++) {
        char spec[32];
        snprintf(spec, sizeof spec, "nth:%d", n);
        assert_int_equal(gy_failpoint_set("alloc", spec, NULL), GY_OK);
        int rc = scenario();
        uint64_t fired = gy_failpoint_fired("alloc");
        if (rc == GY_OK) {
            assert_int_equal(fired, 0); /* succeeded: the Nth hit never came */
            break;
        }
        assert_int_equal(rc, GY_ENOMEM);
        assert_int_equal(fired, 1);
        gy_type_stats st;
        gy_type_get_stats(&pair_type, &st);
        assert_int_equal(st.live, 0);
        gy_type_get_stats(&gy_bytes_type, &st);
        assert_int_equal(st.live, 0);
        gy_type_get_stats(&gy_list_type, &st);
        assert_int_equal(st.live, 0);
        assert_int_equal(st.bytes, 0);
        gy_type_get_stats(&gy_dict_type, &st);
        assert_int_equal(st.live, 0);
        assert_int_equal(st.bytes, 0);
    }
    gy_failpoint_reset_all();
    print_message("the scenario succeeded at n=%d: %d allocations failed in turn\n", n, n - 1);
    assert_true(n > 600); /* 200 pairs + 200 bytes + payloads + arrays */
    GY_TEST_DOWN();
}

/* An internal allocation (the node that hands an object back to its owner)
 * fails: no crash, no use-after-free; the object stays alive, the failure
 * is counted, and shutdown names the leak. */
static pair *handed;
static void *release_on_other_thread(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    gy_decref(handed); /* the last reference, owned by the main thread */
    gy_safepoint();
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_internal_failure_is_counted(void **state) {
    (void)state;
    GY_TEST_UP();
    assert_int_equal(gy_new(&pair_type, &handed), GY_OK);
    assert_int_equal(gy_failpoint_set("internal", "from:1", NULL), GY_OK);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, release_on_other_thread, NULL), 0);
    pthread_join(t, NULL);
    gy_failpoint_reset_all();
    gy_safepoint();
    gy_runtime_stats rs;
    gy_runtime_get_stats(&rs);
    assert_true(rs.internal_failures >= 1);
    gy_type_stats st;
    gy_type_get_stats(&pair_type, &st);
    assert_int_equal(st.live, 1); /* kept alive, never freed twice */
    assert_int_equal(gy_thread_detach(), GY_OK);
    gy_errmsg err = {0};
    assert_int_equal(gy_runtime_shutdown(&err), GY_ELEAK);
    assert_non_null(strstr(err.text, "pair x1"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_allocation_fails_in_turn),
    cmocka_unit_test(test_internal_failure_is_counted),
};
GY_TEST_MAIN(tests)
