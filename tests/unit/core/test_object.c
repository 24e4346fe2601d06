/* core.object: objects, types, containers, ids, counters, finalizers, the
 * trashcan, the cascade budget and memory going back. */
#include <stdatomic.h>

#include "gy_rt.h"

#include "gc_hooks.h"
#include "heap.h"

typedef struct node {
    gy_object ob;
    gy_ref next;
    gy_ref other;
} node;

static int node_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((node *)self)->next, visit, arg);
    GY_VISIT(&((node *)self)->other, visit, arg);
    return 0;
}
static void node_clear(gy_object *self) {
    gy_ref_clear(&((node *)self)->next);
    gy_ref_clear(&((node *)self)->other);
}
static gy_type node_type = {
    .name = "obj_node",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
};

static int64_t live_of(gy_type *t) {
    gy_type_stats st;
    gy_type_get_stats(t, &st);
    return st.live;
}

static void test_new_and_type(void **state) {
    (void)state;
    GY_TEST_UP();
    node *n;
    assert_int_equal(gy_new(&node_type, &n), GY_OK);
    assert_ptr_equal(gy_type_of(n), &node_type);
    assert_null(gy_load(&n->next));
    gy_type_stats st;
    gy_type_get_stats(&node_type, &st);
    assert_int_equal(st.live, 1);
    assert_true(st.bytes >= (int64_t)sizeof(node));
    gy_decref(n);
    assert_int_equal(live_of(&node_type), 0);
    /* Bad types are refused, nothing allocated. */
    gy_type tiny = {.name = "tiny", .size = 4, .flags = GY_TYPE_LEAF};
    gy_type huge = {.name = "huge", .size = 1 << 20, .flags = GY_TYPE_LEAF};
    gy_type no_traverse = {.name = "nt", .size = sizeof(node)};
    void *p = NULL;
    assert_int_equal(gy_new(&tiny, &p), GY_EINVAL);
    assert_int_equal(gy_new(&huge, &p), GY_EINVAL);
    assert_int_equal(gy_new(&no_traverse, &p), GY_EINVAL);
    assert_null(p);
    GY_TEST_DOWN();
    /* Not attached: an error, not a crash. */
    assert_int_equal(gy_new(&node_type, &p), GY_ESTATE);
}

static void test_store_load_and_ids(void **state) {
    (void)state;
    GY_TEST_UP();
    node *a, *b;
    assert_int_equal(gy_new(&node_type, &a), GY_OK);
    assert_int_equal(gy_new(&node_type, &b), GY_OK);
    gy_store(&a->next, b);
    assert_int_equal(gy_refcount(b), 2);
    gy_object *got = gy_load(&a->next);
    assert_ptr_equal(got, b);
    assert_int_equal(gy_refcount(b), 3);
    gy_decref(got);
    gy_id idb = gy_object_id(b);
    node *again = NULL;
    assert_int_equal(gy_object_from_id(idb, &again), GY_OK);
    assert_ptr_equal(again, b);
    gy_decref(again);
    gy_decref(b);
    assert_int_equal(gy_refcount(b), 1); /* a->next still holds it */
    gy_ref_clear(&a->next);
    /* b is gone: its id is stale, even if its cell is reused later. */
    assert_int_equal(gy_object_from_id(idb, &again), GY_ESTALE);
    for (int i = 0; i < 1000; i++) {
        node *c;
        assert_int_equal(gy_new(&node_type, &c), GY_OK);
        gy_id idc = gy_object_id(c);
        assert_false(idc.addr == idb.addr && idc.serial == idb.serial);
        gy_decref(c);
        gy_safepoint();
    }
    assert_int_equal(gy_object_from_id(idb, &again), GY_ESTALE);
    gy_id bogus = {0x1000, 1};
    assert_int_equal(gy_object_from_id(bogus, &again), GY_ESTALE);
    gy_decref(a);
    GY_TEST_DOWN();
}

static void test_list(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_list *l;
    assert_int_equal(gy_list_new(&l), GY_OK);
    node *items[100];
    for (int i = 0; i < 100; i++) {
        assert_int_equal(gy_new(&node_type, &items[i]), GY_OK);
        assert_int_equal(gy_list_append(l, items[i]), GY_OK);
        assert_int_equal(gy_refcount(items[i]), 2);
    }
    assert_int_equal(gy_list_len(l), 100);
    gy_object *x = gy_list_get(l, 42);
    assert_ptr_equal(x, items[42]);
    gy_decref(x);
    assert_null(gy_list_get(l, 100));
    assert_int_equal(gy_list_set(l, 0, items[1]), GY_OK);
    assert_int_equal(gy_refcount(items[0]), 1);
    assert_int_equal(gy_refcount(items[1]), 3);
    assert_int_equal(gy_list_set(l, 100, items[1]), GY_ERANGE);
    assert_int_equal(gy_list_append(l, NULL), GY_EINVAL);
    gy_object *last;
    assert_int_equal(gy_list_pop(l, &last), GY_OK);
    assert_ptr_equal(last, items[99]);
    gy_decref(last);
    for (int i = 0; i < 100; i++) {
        gy_decref(items[i]);
    }
    /* The list still holds 98 nodes (items 1..98 with item 1 twice). */
    assert_int_equal(live_of(&node_type), 98);
    gy_type_stats ls;
    gy_type_get_stats(&gy_list_type, &ls);
    assert_true(ls.bytes > 99 * (int64_t)sizeof(void *)); /* backing array counted */
    gy_decref(l);
    assert_int_equal(live_of(&node_type), 0);
    gy_type_get_stats(&gy_list_type, &ls);
    assert_int_equal(ls.live, 0);
    assert_int_equal(ls.bytes, 0);
    GY_TEST_DOWN();
}

static int count_entries(const char *key, gy_object *value, void *arg) {
    (void)key;
    (void)value;
    (*(int *)arg)++;
    return 0;
}

static void test_dict_and_bytes(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_dict *d;
    assert_int_equal(gy_dict_new(&d), GY_OK);
    char key[32];
    for (int i = 0; i < 500; i++) {
        gy_bytes *b;
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(gy_bytes_new(&b, key, strlen(key)), GY_OK);
        assert_int_equal(gy_dict_set(d, key, b), GY_OK);
        gy_decref(b);
    }
    assert_int_equal(gy_dict_len(d), 500);
    gy_bytes *v = (gy_bytes *)gy_dict_get(d, "key-321");
    assert_non_null(v);
    assert_string_equal(gy_bytes_data(v), "key-321");
    assert_int_equal(gy_bytes_len(v), 7);
    gy_decref(v);
    assert_null(gy_dict_get(d, "missing"));
    for (int i = 0; i < 500; i += 2) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(gy_dict_del(d, key), GY_OK);
    }
    assert_int_equal(gy_dict_del(d, "key-0"), GY_ENOENT);
    assert_int_equal(gy_dict_len(d), 250);
    int n = 0;
    assert_int_equal(gy_dict_foreach(d, count_entries, &n), 0);
    assert_int_equal(n, 250);
    /* Replacing a value releases the old one. */
    gy_bytes *x;
    assert_int_equal(gy_bytes_new(&x, "x", 1), GY_OK);
    assert_int_equal(gy_dict_set(d, "key-1", x), GY_OK);
    assert_int_equal(gy_refcount(x), 2);
    gy_decref(x);
    gy_type_stats bs;
    gy_type_get_stats(&gy_bytes_type, &bs);
    assert_int_equal(bs.live, 250);
    gy_decref(d);
    gy_type_get_stats(&gy_bytes_type, &bs);
    assert_int_equal(bs.live, 0);
    assert_int_equal(bs.bytes, 0);
    GY_TEST_DOWN();
}

/* Finalizers run once, may resurrect, and a resurrected object is freed
 * later without a second finalizer call. */
static int finalized;
static gy_ref resurrect_into;
static void fin_resurrect(gy_object *self) {
    finalized++;
    gy_store(&resurrect_into, self);
}
static gy_type phoenix_type = {
    .name = "phoenix",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
    .finalize = fin_resurrect,
};

static void test_finalizer_once_and_resurrection(void **state) {
    (void)state;
    GY_TEST_UP();
    finalized = 0;
    node *p;
    assert_int_equal(gy_new(&phoenix_type, &p), GY_OK);
    gy_decref(p);
    assert_int_equal(finalized, 1);
    assert_int_equal(live_of(&phoenix_type), 1); /* resurrected */
    gy_object *back = gy_load(&resurrect_into);
    assert_ptr_equal(back, p);
    assert_int_equal(gy_refcount(back), 2);
    gy_ref_clear(&resurrect_into);
    gy_decref(back); /* dies again: no second finalizer call */
    assert_int_equal(finalized, 1);
    assert_int_equal(live_of(&phoenix_type), 0);
    GY_TEST_DOWN();
}

/* A chain of n nodes linked through `next`; returns the head (NEW). */
static node *make_chain(int n) {
    node *head;
    assert_int_equal(gy_new(&node_type, &head), GY_OK);
    node *tail = head;
    for (int i = 1; i < n; i++) {
        node *next;
        assert_int_equal(gy_new(&node_type, &next), GY_OK);
        gy_store_steal(&tail->next, next);
        tail = next;
    }
    return head;
}

/* 10 million nodes in a chain: freeing the head frees all of them without
 * overflowing the C stack (the trashcan). */
static void test_chain_10m(void **state) {
    (void)state;
    GY_TEST_UP();
    const int n = 10 * 1000 * 1000;
    node *head = make_chain(n);
    assert_int_equal(live_of(&node_type), n);
    gy_decref(head);
    assert_int_equal(live_of(&node_type), 0);
    gy_runtime_stats rs;
    gy_runtime_get_stats(&rs);
    assert_true(rs.cascade_objects > 0);
    GY_TEST_DOWN();
}

static int wakes;
static void count_wake(void *arg) {
    (void)arg;
    wakes++;
}

/* On a loop thread a long chain drains a budget per safe point: the decref
 * returns with most of the chain still alive and asks for another tick. */
static void test_cascade_budget_on_loop(void **state) {
    (void)state;
    assert_int_equal(gy_runtime_init(NULL, NULL), GY_OK);
    gy_thread_options opts = {
        .kind = GY_THREAD_LOOP, .wake = count_wake, .cascade_budget = 1000, .name = "loop"};
    assert_int_equal(gy_thread_attach(&opts, NULL), GY_OK);
    const int n = 100000;
    node *head = make_chain(n);
    wakes = 0;
    gy_decref(head);
    int64_t left = live_of(&node_type);
    assert_true(left > 0);
    assert_true(left < n);
    assert_true(wakes > 0);
    int ticks = 0;
    while (live_of(&node_type) > 0 && ticks < 10 * n) {
        gy_safepoint();
        ticks++;
    }
    assert_int_equal(live_of(&node_type), 0);
    assert_true(ticks >= 50); /* ~100000 / (1000 + 32 per level) */
    GY_TEST_DOWN();
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kib;
}

/* A burst of a million objects released: the segments go back and (outside
 * sanitizer builds, whose allocators keep memory) so does resident memory. */
static void test_memory_goes_back(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_runtime_stats before, peak, after;
    gy_runtime_get_stats(&before);
    long rss0 = rss_kib();
    gy_list *l;
    assert_int_equal(gy_list_new(&l), GY_OK);
    for (int i = 0; i < 1000000; i++) {
        node *n;
        assert_int_equal(gy_new(&node_type, &n), GY_OK);
        assert_int_equal(gy_list_append(l, n), GY_OK);
        gy_decref(n);
    }
    gy_runtime_get_stats(&peak);
    long rss1 = rss_kib();
    gy_decref(l);
    for (int i = 0; i < 8; i++) {
        gy_safepoint(); /* grace periods pass; cells return; segments go */
    }
    assert_int_equal(gy_memory_trim(), GY_OK);
    gy_runtime_get_stats(&after);
    long rss2 = rss_kib();
    print_message("segments %llu -> %llu -> %llu; RSS %ld -> %ld -> %ld KiB\n",
                  (unsigned long long)before.segments, (unsigned long long)peak.segments,
                  (unsigned long long)after.segments, rss0, rss1, rss2);
    assert_true(peak.segments > 300);
    assert_true(after.segments <= before.segments + 2);
#if !GY_ASAN && !GY_TSAN
    /* Within 4 MiB of the start, after a burst of ~30 MiB. */
    assert_true(rss1 - rss0 > 16 * 1024);
    assert_true(rss2 - rss0 < 4 * 1024);
#endif
    GY_TEST_DOWN();
}

/* gy_memory_get_stats says where held memory is: after a released burst the
 * freed cells wait (in the bag, then in their segments) until the owner
 * trims; retained bytes show them, and a trim gives them back. */
static void test_memory_stats_show_retained(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_memory_stats m0, m1, m2, m3;
    gy_memory_get_stats(&m0);
    gy_list *l;
    assert_int_equal(gy_list_new(&l), GY_OK);
    for (int i = 0; i < 200000; i++) {
        node *n;
        assert_int_equal(gy_new(&node_type, &n), GY_OK);
        assert_int_equal(gy_list_append(l, n), GY_OK);
        gy_decref(n);
    }
    gy_memory_get_stats(&m1);
    gy_decref(l); /* freed: the cells wait for a grace period and the owner */
    gy_memory_get_stats(&m2);
    for (int i = 0; i < 8; i++) {
        gy_safepoint();
    }
    assert_int_equal(gy_memory_trim(), GY_OK);
    assert_int_equal(gy_memory_release(GY_RELEASE_ALL), GY_OK);
    assert_int_equal(gy_memory_release(GY_RELEASE_DECAYED), GY_OK);
    assert_int_equal(gy_memory_release((gy_release_mode)7), GY_EINVAL);
    gy_memory_get_stats(&m3);
    print_message("live %llu -> %llu -> %llu -> %llu, retained %llu -> %llu -> %llu -> %llu, "
                  "segments %llu -> %llu B, spares %llu, large %llu, trims %llu -> %llu, "
                  "allocator resident %llu dirty %llu\n",
                  (unsigned long long)m0.live_bytes, (unsigned long long)m1.live_bytes,
                  (unsigned long long)m2.live_bytes, (unsigned long long)m3.live_bytes,
                  (unsigned long long)m0.retained_bytes, (unsigned long long)m1.retained_bytes,
                  (unsigned long long)m2.retained_bytes, (unsigned long long)m3.retained_bytes,
                  (unsigned long long)m1.segment_bytes, (unsigned long long)m3.segment_bytes,
                  (unsigned long long)m3.spare_segments, (unsigned long long)m1.large_bytes,
                  (unsigned long long)m0.trims, (unsigned long long)m3.trims,
                  (unsigned long long)m3.allocator_resident,
                  (unsigned long long)m3.allocator_dirty);
    /* 200k objects: several MiB live, held in segments; the list's array is
     * one large block. */
    assert_true(m1.live_bytes > 4u << 20);
    assert_true(m1.segment_bytes >= m1.live_bytes - m1.large_bytes);
    assert_true(m1.large_bytes >= 200000 * sizeof(void *));
    /* Released: nothing live, everything still held, so all of it retained. */
    assert_true(m2.live_bytes < 64 * 1024);
    assert_true(m2.retained_bytes > 1u << 20);
    /* Trimmed: the segments, the spares and the large block are gone. */
    assert_true(m3.retained_bytes < m2.retained_bytes / 8);
    assert_true(m3.segment_bytes < m1.segment_bytes / 8);
    assert_int_equal(m3.spare_segments, 0);
    assert_int_equal(m3.large_bytes, 0);
    assert_true(m3.trims > m0.trims);
#if !GY_ASAN && !GY_TSAN
    assert_true(m3.allocator_resident > 0); /* jemalloc's statistics are read */
#endif
    GY_TEST_DOWN();
}

static void test_leak_is_reported(void **state) {
    (void)state;
    GY_TEST_UP();
    node *n;
    assert_int_equal(gy_new(&node_type, &n), GY_OK);
    assert_int_equal(gy_thread_detach(), GY_OK);
    gy_errmsg err = {0};
    assert_int_equal(gy_runtime_shutdown(&err), GY_ELEAK);
    assert_non_null(strstr(err.text, "leaked: obj_node x1"));
    /* Shutdown with a thread attached is refused. */
    GY_TEST_UP();
    assert_int_equal(gy_runtime_shutdown(&err), GY_EBUSY);
    assert_int_equal(gy_runtime_init(NULL, &err), GY_ESTATE);
    GY_TEST_DOWN();
}

static int hook_roots, hook_stores, hook_allocs;
static gy_object *hook_last_old, *hook_last_new;
static void on_decref_nonzero(gy_object *ob) {
    (void)ob;
    hook_roots++;
}
static void on_store(gy_ref *field, gy_object *old_value, gy_object *new_value) {
    (void)field;
    hook_stores++;
    hook_last_old = old_value;
    hook_last_new = new_value;
}
static void on_alloc(gy_object *ob, const gy_type *type) {
    (void)ob;
    (void)type;
    hook_allocs++;
}

/* The collector's hooks: possible roots on a decrement that leaves a
 * container alive (never for leaf types), the write barrier, allocations. */
static void test_gc_hooks(void **state) {
    (void)state;
    GY_TEST_UP();
    static const gy__gc_hooks hooks = {
        .decref_nonzero = on_decref_nonzero, .store = on_store, .alloc = on_alloc};
    hook_roots = hook_stores = hook_allocs = 0;
    gy__gc_hooks_install(&hooks);
    node *a, *b;
    gy_bytes *leaf;
    assert_int_equal(gy_new(&node_type, &a), GY_OK);
    assert_int_equal(gy_new(&node_type, &b), GY_OK);
    assert_int_equal(gy_bytes_new(&leaf, "x", 1), GY_OK);
    assert_int_equal(hook_allocs, 3);
    gy_store(&a->next, b);
    assert_int_equal(hook_stores, 1);
    assert_null(hook_last_old);
    assert_ptr_equal(hook_last_new, b);
    gy_decref(b); /* b stays alive through a->next: a possible root */
    assert_int_equal(hook_roots, 1);
    gy_incref(leaf);
    gy_decref(leaf); /* a leaf is never a root */
    assert_int_equal(hook_roots, 1);
    gy_ref_clear(&a->next);
    assert_int_equal(hook_stores, 2);
    assert_ptr_equal(hook_last_old, b);
    assert_null(hook_last_new);
    gy__gc_hooks_install(NULL);
    gy_decref(a);
    gy_decref(leaf);
    GY_TEST_DOWN();
}

/* The collector's doomed state: once set, every upgrade fails, so a field
 * or a weak reference that still names the object reads as empty. */
static void test_doomed_objects_cannot_be_upgraded(void **state) {
    (void)state;
    GY_TEST_UP();
    node *a, *b;
    assert_int_equal(gy_new(&node_type, &a), GY_OK);
    assert_int_equal(gy_new(&node_type, &b), GY_OK);
    gy_store(&a->next, b);
    gy_weakref *wr;
    assert_int_equal(gy_weakref_new(&wr, b, NULL, NULL), GY_OK);
    gy_object *got = gy_weakref_get(wr);
    assert_ptr_equal(got, b);
    gy_decref(got);
    atomic_fetch_or(&b->ob.gy__shared, GY__RC_DOOMED);
    assert_null(gy_load(&a->next));
    assert_null(gy_weakref_get(wr));
    atomic_fetch_and(&b->ob.gy__shared, ~GY__RC_DOOMED); /* undo, then tidy up */
    gy_decref(wr);
    gy_decref(b);
    gy_decref(a);
    GY_TEST_DOWN();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_doomed_objects_cannot_be_upgraded),
    cmocka_unit_test(test_gc_hooks),
    cmocka_unit_test(test_new_and_type),
    cmocka_unit_test(test_store_load_and_ids),
    cmocka_unit_test(test_list),
    cmocka_unit_test(test_dict_and_bytes),
    cmocka_unit_test(test_finalizer_once_and_resurrection),
    cmocka_unit_test(test_chain_10m),
    cmocka_unit_test(test_cascade_budget_on_loop),
    cmocka_unit_test(test_memory_goes_back),
    cmocka_unit_test(test_memory_stats_show_retained),
    cmocka_unit_test(test_leak_is_reported),
};
GY_TEST_MAIN(tests)
