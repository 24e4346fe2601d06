/* core.gc_touch: the collector's barrier on every path (collector/DESIGN.md
 * section 9.3, rules T1, T2, B1 and the try-incref half of D1).
 *
 * Core alone (no collector linked): the test installs its own collector
 * hooks, which record every touch (the object, its count and the watched
 * field's content at that moment) and answer "sealed" for one chosen
 * object, and turns the calling thread's watch on with gy__gc_watch_set,
 * as a handshake's answer will. Each test performs one operation and
 * checks that the object concerned was touched, and touched *before* the
 * change (the count, or the field, still as it was). With the watch off,
 * nothing is touched at all. */
#include <pthread.h>
#include <stdatomic.h>

#include "gy_rt.h"

#include "gc_hooks.h"
#include "gc_touch.h"
#include "heap.h"

typedef struct node {
    gy_object ob;
    gy_ref f;
} node;

static int node_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((node *)self)->f, visit, arg);
    return 0;
}
static void node_clear(gy_object *self) { gy_ref_clear(&((node *)self)->f); }

static gy_type node_type = {
    .name = "touch_node", .size = sizeof(node), .traverse = node_traverse, .clear = node_clear};
static gy_type leaf_type = {.name = "touch_leaf", .size = sizeof(node), .flags = GY_TYPE_LEAF};

/* --- the recording hooks ------------------------------------------------- */

#define MAX_TOUCHES 64
typedef struct touch_rec {
    gy_object *ob;
    int64_t count;       /* gy__refcount_total at the touch */
    gy_object *in_field; /* what `watched` held at the touch */
} touch_rec;

static touch_rec touches[MAX_TOUCHES];
static atomic_int ntouches;
static gy_ref *watched;          /* a field whose content each touch records */
static gy_object *sealed_ob;     /* touch answers "sealed" for this one */
static atomic_int doom_calls[2]; /* by GY__DOOM_UPGRADE / GY__DOOM_MERGE */
static bool doom_allows;

static bool rec_touch(gy_object *ob) {
    int i = atomic_fetch_add(&ntouches, 1);
    if (i < MAX_TOUCHES) {
        touches[i].ob = ob;
        touches[i].count = gy__refcount_total(ob);
        touches[i].in_field =
            watched ? atomic_load_explicit(&watched->gy__ptr, memory_order_relaxed) : NULL;
    }
    return ob == sealed_ob;
}

static bool rec_doom(gy_object *ob, int why) {
    (void)ob;
    atomic_fetch_add(&doom_calls[why], 1);
    return doom_allows;
}

static const gy__gc_hooks test_hooks = {.touch = rec_touch, .doom_check = rec_doom};

static void reset(void) {
    atomic_store(&ntouches, 0);
    watched = NULL;
    sealed_ob = NULL;
    atomic_store(&doom_calls[0], 0);
    atomic_store(&doom_calls[1], 0);
    doom_allows = true;
}

/* The first touch of ob, or NULL. */
static const touch_rec *touch_of(const void *ob) {
    int n = atomic_load(&ntouches);
    for (int i = 0; i < n && i < MAX_TOUCHES; i++) {
        if (touches[i].ob == ob) {
            return &touches[i];
        }
    }
    return NULL;
}

/* The count, or the watched field's content, at ob's first touch; fails
 * the test when ob was not touched. */
static int64_t touched_count(const void *ob) {
    const touch_rec *t = touch_of(ob);
    if (t == NULL) {
        fail_msg("%p was not touched", ob);
        return -1;
    }
    return t->count;
}

static const void *touched_field(const void *ob) {
    const touch_rec *t = touch_of(ob);
    if (t == NULL) {
        fail_msg("%p was not touched", ob);
        return NULL;
    }
    return t->in_field;
}

static int setup(void **state) {
    (void)state;
    gy__gc_hooks_install(&test_hooks);
    GY_TEST_UP();
    reset();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    gy__gc_watch_set(0);
    GY_TEST_DOWN();
    gy__gc_hooks_install(NULL);
    return 0;
}

static node *new_node(void) {
    node *n = NULL;
    assert_int_equal(gy_new(&node_type, &n), GY_OK);
    return n;
}

/* --- tests -------------------------------------------------------------- */

static void test_idle_touches_nothing(void **state) {
    (void)state;
    node *a = new_node(), *b = new_node();
    gy_incref(a);
    gy_decref(a);
    gy_store(&a->f, b);
    gy_object *got = gy_load(&a->f);
    gy_decref(got);
    gy_ref_clear(&a->f);
    gy_decref(b);
    gy_decref(a);
    assert_int_equal(atomic_load(&ntouches), 0);
}

static void test_counts_touched_before(void **state) {
    (void)state;
    node *a = new_node();
    gy__gc_watch_set(1);
    gy_incref(a);
    assert_int_equal(touched_count(a), 1); /* before the increment */
    assert_int_equal(gy__refcount_total(&a->ob), 2);
    reset();
    gy_decref(a);
    assert_int_equal(touched_count(a), 2); /* before the decrement */
    reset();
    gy_decref(a); /* the last one: touched before the free */
    assert_int_equal(atomic_load(&ntouches), 1);
    assert_int_equal(touches[0].count, 1);
    gy__gc_watch_set(0);
}

static void test_store_touches_old_and_new(void **state) {
    (void)state;
    node *h = new_node(), *x = new_node(), *y = new_node();
    gy_store(&h->f, x);
    gy__gc_watch_set(1);
    watched = &h->f;
    gy_store(&h->f, y);
    assert_ptr_equal(touched_field(x), &x->ob); /* the old value, while the field held it */
    assert_ptr_equal(touched_field(y), &x->ob); /* the new value, before it was installed */
    reset();
    watched = &h->f;
    gy_ref_clear(&h->f);
    assert_ptr_equal(touched_field(y), &y->ob);
    gy__gc_watch_set(0);
    gy_decref(x);
    gy_decref(y);
    gy_decref(h);
}

static void test_untracked_never_touched(void **state) {
    (void)state;
    node *l = NULL;
    assert_int_equal(gy_new(&leaf_type, &l), GY_OK);
    gy__gc_watch_set(1);
    gy_incref(l);
    gy_decref(l);
    gy_decref(l);
    gy__gc_watch_set(0);
    assert_int_equal(atomic_load(&ntouches), 0);
}

/* The word of a tracked object (core's side array). */
static uint32_t word_of(const node *n) {
    gy__segment *seg = gy__segment_of(n);
    return __atomic_load_n(&seg->gcw[gy__cell_index(seg, n)], __ATOMIC_RELAXED);
}

static void test_birth_touched(void **state) {
    (void)state;
    gy__gc_watch_set(7);
    node *a = new_node();
    gy__gc_watch_set(0);
    node *b = new_node();
    /* B1: born during the watch, its word carries the collection's tag from
     * the start (no touch call: the cell is nobody else's yet). */
    assert_int_equal(word_of(a), 7u << GY__GCW_TAG_SHIFT);
    assert_int_equal(word_of(b), 0);
    assert_null(touch_of(a));
    gy_decref(a);
    gy_decref(b);
}

static void test_list_paths(void **state) {
    (void)state;
    gy_list *l = NULL;
    assert_int_equal(gy_list_new(&l), GY_OK);
    node *a = new_node(), *b = new_node(), *c = new_node();
    assert_int_equal(gy_list_append(l, a), GY_OK);
    gy__gc_watch_set(1);
    /* append: the new item, before the list holds it (count 1: ours) */
    assert_int_equal(gy_list_append(l, b), GY_OK);
    assert_int_equal(touched_count(b), 1);
    reset();
    /* set: the new item and the replaced one */
    assert_int_equal(gy_list_set(l, 0, c), GY_OK);
    assert_non_null(touch_of(c));
    assert_int_equal(touched_count(a), 2); /* ours and the list's, before the drop */
    reset();
    /* pop: the popped item moves to us with no count change: touched */
    gy_object *p = NULL;
    assert_int_equal(gy_list_pop(l, &p), GY_OK);
    assert_ptr_equal(p, &b->ob);
    assert_int_equal(touched_count(b), 2);
    gy_decref(p);
    reset();
    /* clear: every item, before it leaves */
    gy_list_clear(l);
    assert_int_equal(touched_count(c), 2);
    gy__gc_watch_set(0);
    gy_decref(a);
    gy_decref(b);
    gy_decref(c);
    gy_decref(l);
}

static void test_dict_paths(void **state) {
    (void)state;
    gy_dict *d = NULL;
    assert_int_equal(gy_dict_new(&d), GY_OK);
    node *a = new_node(), *b = new_node();
    assert_int_equal(gy_dict_set(d, "k", a), GY_OK);
    gy__gc_watch_set(1);
    assert_int_equal(gy_dict_set(d, "k", b), GY_OK); /* replaces a */
    assert_non_null(touch_of(b));
    assert_int_equal(touched_count(a), 2);
    reset();
    assert_int_equal(gy_dict_del(d, "k"), GY_OK);
    assert_int_equal(touched_count(b), 2);
    reset();
    assert_int_equal(gy_dict_set(d, "j", a), GY_OK);
    reset();
    gy_dict_clear(d);
    assert_int_equal(touched_count(a), 2);
    gy__gc_watch_set(0);
    gy_decref(a);
    gy_decref(b);
    gy_decref(d);
}

/* An upgrade of a sealed object asks the doom check first; refused, the
 * upgrade fails with the count unchanged, the field still holding it. */
static void test_upgrade_of_sealed(void **state) {
    (void)state;
    node *h = new_node(), *x = new_node();
    gy_store(&h->f, x);
    gy__gc_watch_set(1);
    sealed_ob = &x->ob;
    doom_allows = false;
    assert_null(gy_load(&h->f));
    assert_int_equal(atomic_load(&doom_calls[GY__DOOM_UPGRADE]), 1);
    assert_int_equal(gy__refcount_total(&x->ob), 2); /* ours and the field's */
    gy_weakref *w = NULL;
    assert_int_equal(gy_weakref_new(&w, x, NULL, NULL), GY_OK);
    assert_null(gy_weakref_get(w));
    assert_int_equal(atomic_load(&doom_calls[GY__DOOM_UPGRADE]), 2);
    doom_allows = true; /* not doomed (yet): the upgrade proceeds */
    gy_object *got = gy_load(&h->f);
    assert_ptr_equal(got, &x->ob);
    assert_int_equal(atomic_load(&doom_calls[GY__DOOM_UPGRADE]), 3);
    gy_decref(got);
    gy__gc_watch_set(0);
    gy_decref(w);
    gy_ref_clear(&h->f);
    gy_decref(x);
    gy_decref(h);
}

/* A merge moves a queued object's count: touched, and a sealed one tells
 * the doom check (which never stops it). */
static node *to_other;
static void *other_drops(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    gy_decref(to_other); /* below zero on the shared half: queued to the owner */
    assert_int_equal(gy_thread_detach(), GY_OK); /* flushes the outbox */
    return NULL;
}

static void test_merge_touched(void **state) {
    (void)state;
    node *x = new_node();
    gy_incref(x); /* local 2: one for the other thread */
    to_other = x;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_drops, NULL), 0);
    gy_quiescent_begin();
    assert_int_equal(pthread_join(t, NULL), 0);
    gy_quiescent_end();
    gy__gc_watch_set(1);
    sealed_ob = &x->ob;
    reset();
    sealed_ob = &x->ob;
    gy_safepoint(); /* drains the inbox: the merge */
    assert_non_null(touch_of(x));
    assert_int_equal(atomic_load(&doom_calls[GY__DOOM_MERGE]), 1);
    assert_int_equal(gy__refcount_total(&x->ob), 1);
    gy__gc_watch_set(0);
    gy_decref(x);
}

/* The finalizer's own reference (refcount path, PEP 442): taken and
 * dropped with touches, so a collection that watches sees both count
 * changes (T2): three touches of the dying object in all, the decrement's
 * (count 1), the finalizer reference's (count 0, before it is taken) and
 * its drop's (count 1, before it is dropped). */
static int fin_calls;
static void fin_node(gy_object *self) {
    (void)self;
    fin_calls++;
}
static gy_type fin_type = {.name = "touch_fin",
                           .size = sizeof(node),
                           .traverse = node_traverse,
                           .clear = node_clear,
                           .finalize = fin_node};

static void test_finalizer_reference_touched(void **state) {
    (void)state;
    node *a = NULL;
    assert_int_equal(gy_new(&fin_type, &a), GY_OK);
    fin_calls = 0;
    gy__gc_watch_set(1);
    gy_decref(a); /* dies here: finalized, then freed */
    gy__gc_watch_set(0);
    assert_int_equal(fin_calls, 1);
    int64_t counts[4];
    int k = 0;
    int n = atomic_load(&ntouches);
    for (int i = 0; i < n && i < MAX_TOUCHES && k < 4; i++) {
        if (touches[i].ob == &a->ob) {
            counts[k++] = touches[i].count;
        }
    }
    assert_int_equal(k, 3);
    assert_int_equal(counts[0], 1); /* the decrement, before it */
    assert_int_equal(counts[1], 0); /* the finalizer's reference, before it is taken */
    assert_int_equal(counts[2], 1); /* and before it is dropped */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_touches_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_touched_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_touches_old_and_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untracked_never_touched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_birth_touched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dict_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_of_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_touched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finalizer_reference_touched, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
