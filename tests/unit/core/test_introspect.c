/* Introspection: objects by type, referents, referrers, roots, backrefs,
 * growth.
 *   core.seed_leaky_container  a class-level cache keeps objects alive;
 *                              referrers and backrefs name the cache
 *   core.introspect            the rest
 * Run as `test_core_introspect NAME`. */
#include <pthread.h>
#include <stdatomic.h>

#include "gy_rt.h"

typedef struct item {
    gy_object ob;
    gy_ref next;
    gy_ref data;
} item;

static int item_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((item *)self)->next, visit, arg);
    GY_VISIT(&((item *)self)->data, visit, arg);
    return 0;
}
static void item_clear(gy_object *self) {
    gy_ref_clear(&((item *)self)->next);
    gy_ref_clear(&((item *)self)->data);
}
static gy_type leaky_type = {
    .name = "LeakyContainer", .size = sizeof(item), .traverse = item_traverse, .clear = item_clear};

/* class LeakyContainer: _cache = []; __init__ appends self to _cache. */
static gy_list *leaky_cache;

static item *leaky_new(void) {
    item *it;
    assert_int_equal(gy_new(&leaky_type, &it), GY_OK);
    gy_bytes *payload;
    assert_int_equal(gy_bytes_new(&payload, "payload", 7), GY_OK);
    gy_store_steal(&it->data, payload);
    assert_int_equal(gy_list_append(leaky_cache, it), GY_OK);
    return it;
}

static void test_seed_leaky_container(void **state) {
    (void)state;
    GY_TEST_UP();
    assert_int_equal(gy_list_new(&leaky_cache), GY_OK);
    assert_int_equal(gy_root_add(leaky_cache, "LeakyContainer._cache"), GY_OK);
    gy_decref(leaky_cache); /* the root holds it, like a class attribute */
    for (int i = 0; i < 20; i++) {
        item *it = leaky_new();
        gy_decref(it); /* "dropped" by the caller, yet it lives */
    }
    /* find_objects_of_type: all 20 are still alive. */
    gy_objects found = {0};
    assert_int_equal(gy_objects_by_type(&leaky_type, 0, &found), GY_OK);
    assert_int_equal(found.len, 20);
    gy_object *suspect = found.items[7];
    gy_incref(suspect);
    gy_objects_release(&found);
    /* gc.get_referrers(suspect) names the cache. */
    gy_objects refs = {0};
    assert_int_equal(gy_objects_referrers(suspect, &refs), GY_OK);
    assert_int_equal(refs.len, 1);
    assert_ptr_equal(refs.items[0], leaky_cache);
    gy_objects_release(&refs);
    /* The backref chain from a root: the named cache, then the suspect. */
    char *chain = NULL;
    assert_int_equal(gy_backrefs(suspect, GY_BACKREFS_TEXT, &chain), GY_OK);
    print_message("%s", chain);
    assert_non_null(strstr(chain, "root 'LeakyContainer._cache' (list"));
    assert_non_null(strstr(chain, "-> LeakyContainer"));
    free(chain);
    assert_int_equal(gy_backrefs(suspect, GY_BACKREFS_DOT, &chain), GY_OK);
    assert_non_null(strstr(chain, "digraph backrefs"));
    assert_non_null(strstr(chain, "n0 -> n1;"));
    free(chain);
    gy_decref(suspect);
    /* The fix: clear the cache; the instances die. */
    assert_int_equal(gy_root_remove("LeakyContainer._cache"), GY_OK);
    gy_type_stats st;
    gy_type_get_stats(&leaky_type, &st);
    assert_int_equal(st.live, 0);
    GY_TEST_DOWN();
}

static void test_referents_and_unnamed_roots(void **state) {
    (void)state;
    GY_TEST_UP();
    item *a, *b, *c;
    assert_int_equal(gy_new(&leaky_type, &a), GY_OK);
    assert_int_equal(gy_new(&leaky_type, &b), GY_OK);
    assert_int_equal(gy_new(&leaky_type, &c), GY_OK);
    gy_store(&a->next, b);
    gy_store(&a->data, c);
    gy_store(&b->next, c);
    gy_objects out = {0};
    assert_int_equal(gy_objects_referents(a, &out), GY_OK);
    assert_int_equal(out.len, 2);
    gy_objects_release(&out);
    assert_int_equal(gy_objects_referrers(c, &out), GY_OK);
    assert_int_equal(out.len, 2); /* a and b */
    gy_objects_release(&out);
    /* Drop our own references to b and c: only a is held from outside. The
     * shortest chain to c is a -> c (not a -> b -> c). */
    gy_incref(c); /* the caller's reference to the object asked about */
    gy_decref(b);
    gy_decref(c);
    char *chain = NULL;
    assert_int_equal(gy_backrefs(c, GY_BACKREFS_TEXT, &chain), GY_OK);
    print_message("%s", chain);
    assert_non_null(strstr(chain, "held outside the heap (LeakyContainer"));
    /* one hop: "held outside ... -> LeakyContainer 0x..." */
    const char *arrow = strstr(chain, " -> ");
    assert_non_null(arrow);
    assert_null(strstr(arrow + 4, " -> "));
    free(chain);
    /* An object nothing in the heap references has no chain. */
    assert_int_equal(gy_backrefs(a, GY_BACKREFS_TEXT, &chain), GY_ENOENT);
    gy_decref(c);
    gy_decref(a);
    assert_int_equal(gy_root_add(NULL, "x"), GY_EINVAL);
    assert_int_equal(gy_root_remove("nothing"), GY_ENOENT);
    GY_TEST_DOWN();
}

static gy_type grow_type = {
    .name = "grower", .size = sizeof(item), .traverse = item_traverse, .clear = item_clear};

static void test_growth(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_type_growth rows[16];
    size_t n;
    assert_int_equal(gy_types_growth(rows, 16, &n), GY_OK); /* baseline */
    item *keep[5];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(gy_new(&grow_type, &keep[i]), GY_OK);
    }
    assert_int_equal(gy_types_growth(rows, 16, &n), GY_OK);
    assert_int_equal(n, 1);
    assert_ptr_equal(rows[0].type, &grow_type);
    assert_int_equal(rows[0].count, 5);
    assert_int_equal(rows[0].delta, 5);
    assert_int_equal(gy_types_growth(rows, 16, &n), GY_OK);
    assert_int_equal(n, 0); /* no growth since the previous call */
    for (int i = 0; i < 5; i++) {
        gy_decref(keep[i]);
    }
    assert_int_equal(gy_types_growth(rows, 16, &n), GY_OK);
    assert_int_equal(n, 0); /* shrinking is not growth */
    GY_TEST_DOWN();
}

/* Walks while another attached thread mutates: the world stops for each
 * walk, so the results are consistent (TSan checks the hand-offs). */
static atomic_int mutate;
static gy_list *shared_list;

static void *mutator(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    for (long i = 0; atomic_load(&mutate); i++) {
        item *it;
        assert_int_equal(gy_new(&leaky_type, &it), GY_OK);
        assert_int_equal(gy_list_append(shared_list, it), GY_OK);
        gy_decref(it);
        if (i % 50 == 49) {
            gy_list_clear(shared_list);
        }
        gy_safepoint();
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_walks_while_mutating(void **state) {
    (void)state;
    GY_TEST_UP();
    assert_int_equal(gy_list_new(&shared_list), GY_OK);
    atomic_store(&mutate, 1);
    pthread_t b;
    assert_int_equal(pthread_create(&b, NULL, mutator, NULL), 0);
    for (int round = 0; round < 50; round++) {
        gy_objects objs = {0};
        assert_int_equal(gy_objects_by_type(&leaky_type, 0, &objs), GY_OK);
        assert_true(objs.len <= 50);
        for (size_t i = 0; i < objs.len; i++) {
            gy_objects refs = {0};
            assert_int_equal(gy_objects_referrers(objs.items[i], &refs), GY_OK);
            /* A live item found by the walk is either in the list, or
             * already dropped from it and held only by our reference. */
            assert_true(refs.len <= 1);
            gy_objects_release(&refs);
        }
        gy_objects_release(&objs);
        gy_safepoint();
    }
    atomic_store(&mutate, 0);
    pthread_join(b, NULL);
    gy_decref(shared_list);
    gy_type_stats st;
    gy_type_get_stats(&leaky_type, &st);
    assert_int_equal(st.live, 0);
    GY_TEST_DOWN();
}

/* A leak hunt on a big heap stops the world in slices, not once for the
 * whole walk (collector/DESIGN.md 9.16), and stays correct while a thread
 * frees and allocates between the slices (segments emptied meanwhile are
 * held until the walk ends: ASan would see a released one read). */
enum { SLICE_ITEMS = 120000 };
static gy_type slice_type = {.name = "slice_item", .size = 32, .flags = GY_TYPE_LEAF};
static gy_list *slice_list;
static atomic_long churned;

static void *slice_churn(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    gy_object *x = NULL;
    while (atomic_load(&mutate) && gy_list_pop(slice_list, &x) == GY_OK) {
        gy_decref(x); /* whole segments empty out behind the walk */
        if (atomic_fetch_add(&churned, 1) % 4 == 0) {
            gy_object *y;
            assert_int_equal(gy_new(&slice_type, &y), GY_OK);
            gy_decref(y);
        }
        gy_safepoint();
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static uint64_t world_stops_now(void) {
    gy_runtime_stats st;
    gy_runtime_get_stats(&st);
    return st.world_stops;
}

static void test_walk_in_slices(void **state) {
    (void)state;
    GY_TEST_UP();
    assert_int_equal(gy_list_new(&slice_list), GY_OK);
    for (int i = 0; i < SLICE_ITEMS; i++) {
        gy_object *x;
        assert_int_equal(gy_new(&slice_type, &x), GY_OK);
        assert_int_equal(gy_list_append(slice_list, x), GY_OK);
        gy_decref(x);
    }
    /* Quiet heap: every object found, in several stops. */
    uint64_t stops0 = world_stops_now();
    gy_objects objs = {0};
    assert_int_equal(gy_objects_by_type(&slice_type, 0, &objs), GY_OK);
    uint64_t stops = world_stops_now() - stops0;
    assert_int_equal(objs.len, SLICE_ITEMS);
    gy_objects_release(&objs);
    print_message("objects_by_type over %d objects: %llu world stops\n", SLICE_ITEMS,
                  (unsigned long long)stops);
    assert_true(stops >= (uint64_t)SLICE_ITEMS / 32768); /* sliced, not one stop */
    /* The referrers of one object: the list, found in a sliced walk too. */
    gy_object *one = gy_list_get(slice_list, 7);
    stops0 = world_stops_now();
    gy_objects refs = {0};
    assert_int_equal(gy_objects_referrers(one, &refs), GY_OK);
    assert_true(world_stops_now() - stops0 >= 2);
    assert_int_equal(refs.len, 1);
    assert_ptr_equal(refs.items[0], slice_list);
    gy_objects_release(&refs);
    gy_decref(one);
    /* A thread empties the list (and allocates) while walks run. */
    atomic_store(&mutate, 1);
    pthread_t b;
    assert_int_equal(pthread_create(&b, NULL, slice_churn, NULL), 0);
    long walks = 0, overlapped = 0;
    while (gy_list_len(slice_list) > 0) {
        long before = atomic_load(&churned);
        assert_int_equal(gy_objects_by_type(&slice_type, 0, &objs), GY_OK);
        for (size_t i = 0; i < objs.len; i++) {
            assert_ptr_equal(gy_type_of(objs.items[i]), &slice_type);
            assert_true(gy_refcount(objs.items[i]) >= 1); /* ours at least: live */
        }
        gy_objects_release(&objs);
        walks++;
        overlapped += atomic_load(&churned) != before;
        gy_safepoint();
    }
    atomic_store(&mutate, 0);
    gy_quiescent_begin();
    pthread_join(b, NULL);
    gy_quiescent_end();
    print_message("walks while the list emptied: %ld (%ld overlapping frees)\n", walks, overlapped);
    assert_true(overlapped > 0); /* the race ran */
    gy_decref(slice_list);
    GY_TEST_DOWN();
}

int main(int argc, char **argv) {
    const struct CMUnitTest seed[] = {cmocka_unit_test(test_seed_leaky_container)};
    const struct CMUnitTest rest[] = {
        cmocka_unit_test(test_referents_and_unnamed_roots),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_walks_while_mutating),
        cmocka_unit_test(test_walk_in_slices),
    };
    if (argc > 1 && strcmp(argv[1], "seed_leaky_container") == 0) {
        return cmocka_run_group_tests_name(argv[1], seed, NULL, NULL) != 0;
    }
    return cmocka_run_group_tests_name("introspect", rest, NULL, NULL) != 0;
}
