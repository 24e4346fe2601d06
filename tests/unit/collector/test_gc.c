/* collector.gc: the gc module's contract, case by case (after CPython's
 * Lib/test/test_gc.py, test_finalization.py and test_weakref.py, written
 * afresh for Gyre's C API). */
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "gc_node.h"
#include "gyre/failpoint.h"

void gy__gc_release_buffers(void); /* internal: drop the candidate array */

/* --- cycles -------------------------------------------------------------- */

static void test_self_references(void **state) {
    (void)state;
    GY_TEST_UP();
    gc_node *n = gc_node_new(&gc_node_type, 0);
    gy_store(&n->next, n);
    gy_decref(n);
    assert_int_equal(gc_collect_found(2, NULL), 1);
    /* A list that contains itself (test_gc.test_list). */
    gy_list *l;
    assert_int_equal(gy_list_new(&l), GY_OK);
    assert_int_equal(gy_list_append(l, l), GY_OK);
    gy_decref(l);
    assert_int_equal(gc_collect_found(2, NULL), 1);
    /* A dict that maps to itself (test_gc.test_dict). */
    gy_dict *d;
    assert_int_equal(gy_dict_new(&d), GY_OK);
    assert_int_equal(gy_dict_set(d, "me", d), GY_OK);
    gy_decref(d);
    assert_int_equal(gc_collect_found(2, NULL), 1);
    assert_int_equal(gc_live(&gy_list_type), 0);
    assert_int_equal(gc_live(&gy_dict_type), 0);
    assert_int_equal(gc_live(&gc_node_type), 0);
    GY_TEST_DOWN();
}

static gc_node *ring(gy_type *type, int n, int first_id) {
    gc_node *head = gc_node_new(type, first_id), *prev = head;
    for (int i = 1; i < n; i++) {
        gc_node *x = gc_node_new(type, first_id + i);
        gy_store_steal(&prev->next, x); /* prev's field now holds x's reference */
        prev = x;
    }
    gy_store(&prev->next, head);
    return head; /* a NEW reference to the head; the ring holds the rest */
}

static void test_rings(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_gc_disable();
    gc_node *r2 = ring(&gc_node_type, 2, 0);
    gc_node *r1000 = ring(&gc_node_type, 1000, 0);
    gy_decref(r2);
    gy_decref(r1000);
    assert_int_equal(gc_live(&gc_node_type), 1002);
    assert_int_equal(gc_collect_found(2, NULL), 1002);
    assert_int_equal(gc_live(&gc_node_type), 0);
    gy_gc_enable();
    GY_TEST_DOWN();
}

/* A long ring of lists (their items are not published fields, so freed
 * cells are reused at once and emptied segments released): freeing the
 * ring while the collector walks it must touch no freed memory. */
static void test_ring_of_lists(void **state) {
    (void)state;
    GY_TEST_UP();
    /* No automatic collection: in concurrent mode one could run on the
     * collector's thread between the last decref and the collect below and
     * take the ring (the count asserted) first. */
    gy_gc_disable();
    enum { N = 20000 };
    gy_list *first, *prev;
    assert_int_equal(gy_list_new(&first), GY_OK);
    prev = first;
    for (int i = 1; i < N; i++) {
        gy_list *l;
        assert_int_equal(gy_list_new(&l), GY_OK);
        assert_int_equal(gy_list_append(prev, l), GY_OK);
        if (prev != first) {
            gy_decref(prev);
        }
        prev = l;
    }
    assert_int_equal(gy_list_append(prev, first), GY_OK);
    gy_decref(prev);
    gy_decref(first);
    assert_int_equal(gc_collect_found(2, NULL), N);
    assert_int_equal(gc_live(&gy_list_type), 0);
    GY_TEST_DOWN();
}

/* A cycle hanging off a live object survives, and its objects move up. */
static void test_cycle_hanging_off_live(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_gc_disable();
    gc_node *root = gc_node_new(&gc_node_type, 0);
    gc_node *c = ring(&gc_node_type, 10, 0);
    gy_store(&root->other, c);
    gy_decref(c);
    gy_gc_result res;
    assert_int_equal(gc_collect_found(0, &res), 0);
    assert_int_equal(res.candidates, 11);
    /* Now in generation 1: a generation-0 collection does not look at them. */
    assert_int_equal(gc_collect_found(0, &res), 0);
    assert_int_equal(res.candidates, 0);
    gy_list *g1;
    assert_int_equal(gy_gc_get_objects(1, &g1, NULL), GY_OK);
    assert_int_equal(gy_list_len(g1), 11);
    gy_decref(g1);
    gy_ref_clear(&root->other);
    assert_int_equal(gc_collect_found(1, &res), 10);
    assert_int_equal(res.candidates, 11);
    gy_decref(root);
    gy_gc_enable();
    GY_TEST_DOWN();
}

/* --- finalizers (PEP 442) -------------------------------------------------- */

static char events[4096];
static void event(const char *what, int id) {
    size_t n = strlen(events);
    snprintf(events + n, sizeof events - n, "%s%s%d", n ? "," : "", what, id);
}

static void logging_finalize(gy_object *self) { event("F", ((gc_node *)self)->id); }
static void logging_clear(gy_object *self) {
    gc_node *n = (gc_node *)self;
    gy_object *next = gy_load(&n->next);
    if (next != NULL) {
        event("C", n->id);
        gy_decref(next);
    }
    gc_node_clear(self);
}

static gy_type logging_type = {
    .name = "logging_node",
    .size = sizeof(gc_node),
    .traverse = gc_node_traverse,
    .clear = logging_clear,
    .finalize = logging_finalize,
};

static void test_finalizers_before_clear(void **state) {
    (void)state;
    GY_TEST_UP();
    events[0] = '\0';
    gc_node *r = ring(&logging_type, 3, 1);
    gy_decref(r);
    assert_int_equal(gc_collect_found(2, NULL), 3);
    /* Every finalizer (F) before the first clear (C); each exactly once. */
    const char *first_clear = strchr(events, 'C');
    const char *last_final = strrchr(events, 'F');
    assert_non_null(last_final);
    assert_true(first_clear == NULL || first_clear > last_final);
    assert_non_null(strstr(events, "F1"));
    assert_non_null(strstr(events, "F2"));
    assert_non_null(strstr(events, "F3"));
    assert_int_equal(strstr(strstr(events, "F1") + 1, "F1"), NULL);
    GY_TEST_DOWN();
}

/* A finalizer that resurrects: nothing of the set is freed, and no finalizer
 * runs twice, even when the set becomes trash again. */
static gc_node *resurrect_holder;
static void resurrecting_finalize(gy_object *self) {
    gc_node_finalize(self);
    if (((gc_node *)self)->id == 1) {
        gy_store(&resurrect_holder->other, self);
    }
}
static gy_type resurrecting_type = {
    .name = "resurrecting_node",
    .size = sizeof(gc_node),
    .traverse = gc_node_traverse,
    .clear = gc_node_clear,
    .finalize = resurrecting_finalize,
};

static void test_resurrection(void **state) {
    (void)state;
    GY_TEST_UP();
    gc_node_reset_counts();
    gy_gc_info before, after;
    gy_gc_get_info(&before);
    resurrect_holder = gc_node_new(&gc_node_type, 0);
    gc_node *r = ring(&resurrecting_type, 4, 1);
    gy_decref(r);
    gy_gc_result res;
    gc_collect_found(2, &res);
    assert_int_equal(res.collected, 0);
    assert_int_equal(gc_live(&resurrecting_type), 4);
    for (int id = 1; id <= 4; id++) {
        assert_int_equal(atomic_load(&gc_node_finalized[id]), 1);
    }
    gy_gc_get_info(&after);
    assert_int_equal(after.resurrections, before.resurrections + 1);
    /* The resurrected object is intact: its ring still goes round. */
    gc_node *back = (gc_node *)gy_load(&resurrect_holder->other);
    assert_non_null(back);
    assert_true(gy_gc_is_finalized(back));
    gc_node *walk = back;
    gy_incref(walk);
    for (int i = 0; i < 4; i++) {
        gc_node *nx = (gc_node *)gy_load(&walk->next);
        assert_non_null(nx);
        gy_decref(walk);
        walk = nx;
    }
    assert_ptr_equal(walk, back);
    gy_decref(walk);
    gy_decref(back);
    /* Trash again: freed now, finalizers not called a second time. */
    gy_ref_clear(&resurrect_holder->other);
    assert_int_equal(gc_collect_found(2, NULL), 4);
    assert_int_equal(gc_live(&resurrecting_type), 0);
    for (int id = 1; id <= 4; id++) {
        assert_int_equal(atomic_load(&gc_node_finalized[id]), 1);
    }
    gy_decref(resurrect_holder);
    GY_TEST_DOWN();
}

/* --- weak references --------------------------------------------------------- */

static int wr_calls;
static int wr_saw_null;
static void wr_callback(gy_weakref *wr, void *arg) {
    (void)arg;
    wr_calls++;
    gy_object *o = gy_weakref_get(wr);
    wr_saw_null += o == NULL;
    gy_xdecref(o);
    /* No finalizer of the trash has run yet (weakrefs first, CPython's order). */
    assert_int_equal(atomic_load(&gc_node_finalized_total), 0);
}

static void test_weakref_callbacks(void **state) {
    (void)state;
    GY_TEST_UP();
    gc_node_reset_counts();
    wr_calls = wr_saw_null = 0;
    gc_node *a = gc_node_new(&gc_fnode_type, 1), *b = gc_node_new(&gc_fnode_type, 2);
    gy_store(&a->next, b);
    gy_store(&b->next, a);
    /* An outside weakref with a callback: called once, sees NULL. */
    gy_weakref *outside;
    assert_int_equal(gy_weakref_new(&outside, a, wr_callback, NULL), GY_OK);
    /* A weakref that is itself trash (held only by b): not called. */
    gy_weakref *inside;
    assert_int_equal(gy_weakref_new(&inside, a, wr_callback, NULL), GY_OK);
    gy_store(&b->other, inside);
    gy_decref(inside);
    gy_decref(a);
    gy_decref(b);
    gy_gc_info before, after;
    gy_gc_get_info(&before);
    assert_int_equal(gc_collect_found(2, NULL), 3); /* a, b and the inside weakref */
    gy_gc_get_info(&after);
    assert_int_equal(wr_calls, 1);
    assert_int_equal(wr_saw_null, 1);
    assert_int_equal(after.weakrefs_cleared, before.weakrefs_cleared + 2);
    assert_null(gy_weakref_get(outside));
    assert_int_equal(atomic_load(&gc_node_finalized_total), 2);
    gy_decref(outside);
    GY_TEST_DOWN();
}

/* --- issue 13: a weak reference that is itself trash never calls back ---- */

/* An untracked (acyclic) holder of one reference. */
typedef struct holder1 {
    gy_object ob;
    gy_ref ref;
} holder1;
static int holder1_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((holder1 *)self)->ref, visit, arg);
    return 0;
}
static void holder1_clear(gy_object *self) { gy_ref_clear(&((holder1 *)self)->ref); }

static int trash_wr_calls;
static void trash_wr_callback(gy_weakref *wr, void *arg) {
    (void)wr, (void)arg;
    trash_wr_calls++;
}

/* A (self-cycle) holds the acyclic H that holds Z; W = weakref(Z, cb) is
 * held only by A and by Q (another self-cycle). Drop A and Q and collect:
 * clearing A frees H and so Z, a non-trash object, but W is trash and its
 * callback must not run. Each round uses fresh type descriptors, registered
 * (first allocated) in a different order, so the trash array's order
 * differs: the answer must not depend on it. */
#define TW_NODE(nm) \
    { .name = nm, .size = sizeof(gc_node), .traverse = gc_node_traverse, .clear = gc_node_clear }
#define TW_HOLDER(nm)                                                                              \
    {                                                                                              \
        .name = nm, .size = sizeof(holder1), .traverse = holder1_traverse, .clear = holder1_clear, \
        .flags = GY_TYPE_ACYCLIC                                                                   \
    }
/* Types live as long as the runtime knows them: static, one set per round. */
static gy_type tw_node[2] = {TW_NODE("tw_node0"), TW_NODE("tw_node1")};
static gy_type tw_leaf[2] = {TW_NODE("tw_leaf0"), TW_NODE("tw_leaf1")};
static gy_type tw_holder[2] = {TW_HOLDER("tw_holder0"), TW_HOLDER("tw_holder1")};

static void trash_weakref_round(int round) {
    /* Round 0 registers the referent's type first, round 1 last: the trash
     * array (walked in type order) then has W before A or after it. */
    gy_type *const node_t = &tw_node[round], *const holder_t = &tw_holder[round],
                   *const leaf_t = &tw_leaf[round];
    holder1 *h = NULL;
    gc_node *a, *q, *z = NULL;
    if (round == 0) {
        z = gc_node_new(leaf_t, 0);
    }
    q = gc_node_new(node_t, 1);
    a = gc_node_new(node_t, 2);
    assert_int_equal(gy_new(holder_t, &h), GY_OK);
    if (round == 1) {
        z = gc_node_new(leaf_t, 0);
    }
    gy_store(&h->ref, z);
    gy_weakref *w;
    assert_int_equal(gy_weakref_new(&w, z, trash_wr_callback, NULL), GY_OK);
    gy_store(&a->next, a);
    gy_store(&a->other, h);
    gy_store(&q->next, q);
    gy_store(&q->other, w);
    gy_decref(z);
    gy_decref(h);
    gy_decref(a);
    gy_decref(q);
    trash_wr_calls = 0;
    gy_decref(w);
    gc_collect_found(2, NULL);
    assert_int_equal(trash_wr_calls, 0);
    assert_int_equal(gc_live(node_t) + gc_live(holder_t) + gc_live(leaf_t), 0);
}

static void test_trash_weakref_no_callback(void **state) {
    (void)state;
    GY_TEST_UP();
    trash_weakref_round(0);
    trash_weakref_round(1);
    GY_TEST_DOWN();
}

/* --- issue 13: introspection never hands out trash -------------------------- */

static gy_type *hide_type;
static gc_node *hide_a, *hide_b; /* addresses only: never dereferenced */
static int hide_seen, hide_calls;

static int count_trash(const gy_objects *objs) {
    int n = 0;
    for (size_t i = 0; i < objs->len; i++) {
        n += objs->items[i] == &hide_a->ob || objs->items[i] == &hide_b->ob;
    }
    return n;
}

/* Ask every introspection call for the trash set it might see. */
static void look_for_trash(gy_object *self) {
    hide_calls++;
    gy_objects objs;
    assert_int_equal(gy_objects_by_type(hide_type, 0, &objs), GY_OK);
    hide_seen += count_trash(&objs);
    gy_objects_release(&objs);
    assert_int_equal(gy_objects_by_type(NULL, 0, &objs), GY_OK);
    hide_seen += count_trash(&objs);
    gy_objects_release(&objs);
    if (self != NULL) {
        assert_int_equal(gy_objects_referrers(self, &objs), GY_OK);
        hide_seen += count_trash(&objs);
        gy_objects_release(&objs);
    }
    gy_list *all = NULL;
    assert_int_equal(gy_gc_get_objects(-1, &all, NULL), GY_EBUSY); /* inside a collection */
}

static void hide_finalize(gy_object *self) { look_for_trash(self); }
static gy_type hide_fin_t = {.name = "hide_fin",
                             .size = sizeof(gc_node),
                             .traverse = gc_node_traverse,
                             .clear = gc_node_clear,
                             .finalize = hide_finalize};

/* A finalizer of an object that is not trash, run while the trash is being
 * cleared (freed through an acyclic holder of a trash object). */
static void bystander_finalize(gy_object *self) {
    (void)self;
    look_for_trash(NULL);
}

static gy_type hide_node_t = TW_NODE("hide_node");
static gy_type hide_holder_t = TW_HOLDER("hide_holder");
static gy_type hide_by_t = {.name = "hide_bystander",
                            .size = sizeof(gc_node),
                            .traverse = gc_node_traverse,
                            .clear = gc_node_clear,
                            .finalize = bystander_finalize};

/* Part 2's set: a <-> b; a holds the acyclic h that holds the bystander z. */
static void build_half_cleared_set(void) {
    hide_a = gc_node_new(&hide_node_t, 3);
    hide_b = gc_node_new(&hide_node_t, 4);
    holder1 *h;
    assert_int_equal(gy_new(&hide_holder_t, &h), GY_OK);
    gc_node *z = gc_node_new(&hide_by_t, 5);
    gy_store(&h->ref, z);
    gy_store(&hide_a->other, h);
    gy_store(&hide_a->next, hide_b);
    gy_store(&hide_b->next, hide_a);
    gy_decref(z);
    gy_decref(h);
    gy_decref(hide_a);
    gy_decref(hide_b);
}

/* Concurrent mode: built by a thread that detaches (its objects go to
 * shared counting), so z is freed where the clears run, on the
 * collector's thread, while the set is half cleared (objects of an
 * attached owner would be freed by it after the collection). */
static void *build_half_cleared_set_detached(void *arg) {
    (void)arg;
    if (gy_thread_attach(NULL, NULL) != GY_OK) {
        abort();
    }
    build_half_cleared_set();
    gy_thread_detach();
    return NULL;
}

static void test_introspection_hides_trash(void **state) {
    (void)state;
    GY_TEST_UP();
    /* 1. From a finalizer of the trash itself (world running, finalize). */
    hide_type = &hide_fin_t;
    hide_seen = hide_calls = 0;
    hide_a = gc_node_new(&hide_fin_t, 1);
    hide_b = gc_node_new(&hide_fin_t, 2);
    gy_store(&hide_a->next, hide_b);
    gy_store(&hide_b->next, hide_a);
    gy_decref(hide_a);
    gy_decref(hide_b);
    gc_collect_found(2, NULL);
    assert_int_equal(hide_calls, 2);
    assert_int_equal(hide_seen, 0);
    assert_int_equal(gc_live(&hide_fin_t), 0);

    /* 2. While the set is half cleared: a <-> b; a holds the acyclic h that
     * holds the bystander z, whose finalizer looks. Whichever of a and b
     * is cleared first, z dies after a's clear and must see neither. */
    hide_type = &hide_node_t;
    hide_seen = hide_calls = 0;
    if (gy_gc_get_mode() == GY_GC_MODE_CONCURRENT) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, build_half_cleared_set_detached, NULL), 0);
        gy_quiescent_begin();
        pthread_join(t, NULL);
        gy_quiescent_end();
    } else {
        build_half_cleared_set();
    }
    gc_collect_found(2, NULL);
    assert_int_equal(hide_calls, 1);
    assert_int_equal(hide_seen, 0);
    assert_int_equal(gc_live(&hide_node_t) + gc_live(&hide_holder_t) + gc_live(&hide_by_t), 0);
    GY_TEST_DOWN();
}

/* --- garbage, SAVEALL, uncollectable -------------------------------------------- */

static bool list_contains(gy_list *l, const void *ob) {
    bool found = false;
    for (size_t i = 0; i < gy_list_len(l); i++) {
        gy_object *x = gy_list_get(l, i);
        found |= x == ob;
        gy_decref(x);
    }
    return found;
}

static void test_saveall(void **state) {
    (void)state;
    GY_TEST_UP();
    /* DEBUG_LEAK = COLLECTABLE | UNCOLLECTABLE | SAVEALL, as in Python. */
    assert_int_equal(GY_GC_DEBUG_LEAK, 2 | 4 | 32);
    assert_int_equal(gy_gc_set_debug(GY_GC_DEBUG_SAVEALL), GY_OK);
    assert_int_equal(gy_gc_get_debug(), GY_GC_DEBUG_SAVEALL);
    gc_node *r = ring(&gc_node_type, 2, 0);
    const void *id = r;
    gy_decref(r);
    gy_gc_result res;
    assert_int_equal(gc_collect_found(2, &res), 2);
    assert_int_equal(res.collected, 2);
    gy_list *garbage;
    assert_int_equal(gy_gc_garbage(&garbage), GY_OK);
    assert_int_equal(gy_list_len(garbage), 2);
    assert_true(list_contains(garbage, id));
    assert_int_equal(gc_live(&gc_node_type), 2);
    assert_int_equal(gy_gc_set_debug(0), GY_OK);
    assert_int_equal(gy_gc_set_debug(1u << 20), GY_EINVAL);
    assert_int_equal(gy_gc_garbage_clear(), 2);
    assert_int_equal(gy_list_len(garbage), 0);
    gy_decref(garbage);
    assert_int_equal(gc_collect_found(2, NULL), 2);
    assert_int_equal(gc_live(&gc_node_type), 0);
    GY_TEST_DOWN();
}

static int lines_uncollectable;
static void count_uncollectable(void *ud, gy_log_level level, const char *module, const char *msg) {
    (void)ud;
    (void)level;
    if (strcmp(module, "gc") == 0 && strstr(msg, "gc: uncollectable <gc_") != NULL) {
        lines_uncollectable++;
    }
}

/* A legacy finalizer in cyclic trash: it and the trash it reaches are
 * uncollectable; the rest of the trash is freed. DEBUG_UNCOLLECTABLE names
 * each through the log handler. */
static void test_uncollectable(void **state) {
    (void)state;
    GY_TEST_UP();
    gc_node_reset_counts();
    lines_uncollectable = 0;
    gy_log_set_handler(count_uncollectable, NULL, GY_LOG_INFO);
    assert_int_equal(gy_gc_set_debug(GY_GC_DEBUG_UNCOLLECTABLE), GY_OK);
    /* l <-> x, l -> y (y only reachable from l); z <-> w independent of l
     * but pointing into l's cycle: z, w are collectable. */
    gc_node *l = gc_node_new(&gc_lnode_type, 1), *x = gc_node_new(&gc_node_type, 2),
            *y = gc_node_new(&gc_node_type, 3), *z = gc_node_new(&gc_node_type, 4),
            *w = gc_node_new(&gc_node_type, 5);
    gy_store(&l->next, x);
    gy_store(&x->next, l);
    gy_store(&l->other, y);
    gy_store(&z->next, w);
    gy_store(&w->next, z);
    gy_store(&z->other, x);
    gy_decref(l);
    gy_decref(x);
    gy_decref(y);
    gy_decref(z);
    gy_decref(w);
    gy_gc_result res;
    assert_int_equal(gc_collect_found(2, &res), 5);
    assert_int_equal(res.uncollectable, 3);
    assert_int_equal(res.collected, 2);
    assert_int_equal(lines_uncollectable, 3);
    gy_gc_set_debug(0);
    gy_log_set_handler(NULL, NULL, GY_LOG_INFO);
    assert_int_equal(atomic_load(&gc_node_finalized[1]), 0); /* the legacy one never */
    /* As CPython's gc.garbage: only the object with the legacy finalizer is
     * listed; what it reaches is uncollectable too (counted above). */
    gy_list *garbage;
    assert_int_equal(gy_gc_garbage(&garbage), GY_OK);
    assert_int_equal(gy_list_len(garbage), 1);
    assert_true(list_contains(garbage, l));
    assert_false(list_contains(garbage, x));
    assert_false(list_contains(garbage, y));
    gy_gc_gen_stats st[3];
    gy_gc_get_stats(st);
    assert_true(st[2].uncollectable >= 3);
    /* The program breaks the cycle by hand, as Python programs must. */
    gy_object *lo = gy_list_get(garbage, 0);
    gc_node_clear(lo);
    gy_decref(lo);
    gy_gc_garbage_clear();
    gy_decref(garbage);
    assert_int_equal(gc_live(&gc_lnode_type) + gc_live(&gc_node_type), 0);

    /* Under DEBUG_SAVEALL everything unreachable is listed, as in CPython. */
    l = gc_node_new(&gc_lnode_type, 1);
    x = gc_node_new(&gc_node_type, 2);
    gy_store(&l->next, x);
    gy_store(&x->next, l);
    gy_decref(l);
    gy_decref(x);
    assert_int_equal(gy_gc_set_debug(GY_GC_DEBUG_SAVEALL), GY_OK);
    assert_int_equal(gc_collect_found(2, &res), 2);
    assert_int_equal(res.uncollectable, 2);
    assert_int_equal(gy_gc_set_debug(0), GY_OK);
    assert_int_equal(gy_gc_garbage(&garbage), GY_OK);
    assert_int_equal(gy_list_len(garbage), 2);
    lo = gy_list_get(garbage, 0);
    gy_object *xo = gy_list_get(garbage, 1);
    gc_node_clear(lo);
    gc_node_clear(xo);
    gy_decref(lo);
    gy_decref(xo);
    gy_gc_garbage_clear();
    gy_decref(garbage);
    assert_int_equal(gc_live(&gc_lnode_type) + gc_live(&gc_node_type), 0);
    GY_TEST_DOWN();
}

/* --- freeze, get_objects, tracking ------------------------------------------------ */

static void test_freeze(void **state) {
    (void)state;
    GY_TEST_UP();
    gc_node *r = ring(&gc_node_type, 5, 0);
    gy_decref(r);
    gy_gc_freeze();
    assert_true(gy_gc_get_freeze_count() >= 5);
    long count[3];
    gy_gc_get_count(count);
    assert_int_equal(count[0], 0);
    assert_int_equal(gc_collect_found(2, NULL), 0); /* frozen: never collected */
    gy_list *all;
    assert_int_equal(gy_gc_get_objects(-1, &all, NULL), GY_OK);
    assert_int_equal(gy_list_len(all), 0);
    gy_decref(all);
    gy_gc_unfreeze();
    assert_int_equal(gy_gc_get_freeze_count(), 0);
    assert_int_equal(gc_collect_found(2, NULL), 5);
    GY_TEST_DOWN();
}

static void test_get_objects_and_tracking(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_gc_disable();
    gc_node *a = gc_node_new(&gc_node_type, 0);
    gy_list *g0, *g1;
    gy_errmsg err = {0};
    assert_int_equal(gy_gc_get_objects(0, &g0, &err), GY_OK);
    assert_true(list_contains(g0, a));
    gy_decref(g0);
    gc_collect_found(0, NULL); /* a survives into generation 1 */
    assert_int_equal(gy_gc_get_objects(0, &g0, NULL), GY_OK);
    assert_int_equal(gy_gc_get_objects(1, &g1, NULL), GY_OK);
    assert_false(list_contains(g0, a));
    assert_true(list_contains(g1, a));
    gy_decref(g0);
    gy_decref(g1);
    assert_int_equal(gy_gc_get_objects(3, &g0, &err), GY_EINVAL);
    assert_non_null(strstr(err.text, "generation"));
    /* Leaf types are never tracked. */
    gy_bytes *b;
    assert_int_equal(gy_bytes_new(&b, "x", 1), GY_OK);
    assert_false(gy_gc_is_tracked(b));
    assert_true(gy_gc_is_tracked(a));
    assert_false(gy_gc_is_finalized(a));
    gy_decref(b);
    gy_decref(a);
    /* get_count: tracked allocations minus frees, exactly, on one thread. */
    gc_collect_found(2, NULL);
    long c0[3], c1[3];
    gy_gc_get_count(c0);
    gc_node *keep[5];
    for (int i = 0; i < 5; i++) {
        keep[i] = gc_node_new(&gc_node_type, 0);
    }
    gy_gc_get_count(c1);
    assert_int_equal(c1[0], c0[0] + 5);
    for (int i = 0; i < 5; i++) {
        gy_decref(keep[i]);
    }
    gy_gc_get_count(c1);
    assert_int_equal(c1[0], c0[0]);
    gy_gc_enable();
    GY_TEST_DOWN();
}

/* --- callbacks, debug output ------------------------------------------------------- */

typedef struct cb_log {
    int starts, stops;
    int start_gen, stop_gen;
    uint64_t collected, uncollectable, duration;
} cb_log;

static void record_cb(gy_gc_phase phase, const gy_gc_callback_info *info, void *arg) {
    cb_log *l = arg;
    if (phase == GY_GC_START) {
        l->starts++;
        l->start_gen = info->generation;
    } else {
        l->stops++;
        l->stop_gen = info->generation;
        /* A callback may read the garbage list (CPython's use), and must
         * not deadlock doing so. */
        gy_list *g;
        assert_int_equal(gy_gc_garbage(&g), GY_OK);
        gy_decref(g);
        l->collected = info->collected;
        l->uncollectable = info->uncollectable;
        l->duration = info->duration_ns;
    }
}

static int lines_stats, lines_collectable;
static void count_lines(void *ud, gy_log_level level, const char *module, const char *msg) {
    (void)ud;
    (void)level;
    if (strcmp(module, "gc") == 0) {
        lines_stats += strstr(msg, "gc: done") != NULL;
        lines_collectable += strstr(msg, "gc: collectable <gc_node") != NULL;
    }
}

static void test_callbacks_and_debug(void **state) {
    (void)state;
    GY_TEST_UP();
    cb_log l = {0};
    assert_int_equal(gy_gc_callback_add(record_cb, &l), GY_OK);
    assert_int_equal(gy_gc_callback_add(record_cb, &l), GY_EEXIST);
    gy_log_set_handler(count_lines, NULL, GY_LOG_INFO);
    assert_int_equal(gy_gc_set_debug(GY_GC_DEBUG_STATS | GY_GC_DEBUG_COLLECTABLE), GY_OK);
    gc_node *r = ring(&gc_node_type, 3, 0);
    gy_decref(r);
    assert_int_equal(gc_collect_found(1, NULL), 3);
    assert_int_equal(l.starts, 1);
    assert_int_equal(l.stops, 1);
    assert_int_equal(l.start_gen, 1);
    assert_int_equal(l.stop_gen, 1);
    assert_int_equal(l.collected, 3);
    assert_int_equal(l.uncollectable, 0);
    assert_true(l.duration > 0);
    assert_int_equal(lines_stats, 1);
    assert_int_equal(lines_collectable, 3);
    gy_gc_set_debug(0);
    gy_log_set_handler(NULL, NULL, GY_LOG_INFO);
    assert_int_equal(gy_gc_callback_remove(record_cb, &l), GY_OK);
    assert_int_equal(gy_gc_callback_remove(record_cb, &l), GY_ENOENT);
    gc_collect_found(2, NULL);
    assert_int_equal(l.starts, 1);
    GY_TEST_DOWN();
}

/* gy_gc_collect from inside a collection is refused, not a deadlock. */
static int nested_rc = 1, nested_objects_rc = 1;
static void nested_finalize(gy_object *self) {
    (void)self;
    nested_rc = gy_gc_collect(0, NULL, NULL);
    gy_list *l = NULL;
    nested_objects_rc = gy_gc_get_objects(-1, &l, NULL);
    gy_gc_freeze(); /* does nothing inside a collection */
}
static gy_type nested_type = {
    .name = "nested_node",
    .size = sizeof(gc_node),
    .traverse = gc_node_traverse,
    .clear = gc_node_clear,
    .finalize = nested_finalize,
};

static void test_nested_collect(void **state) {
    (void)state;
    GY_TEST_UP();
    gc_node *r = ring(&nested_type, 2, 0);
    gy_decref(r);
    assert_int_equal(gc_collect_found(2, NULL), 2);
    assert_int_equal(nested_rc, GY_EBUSY);
    assert_int_equal(nested_objects_rc, GY_EBUSY);
    assert_int_equal(gy_gc_get_freeze_count(), 0);
    GY_TEST_DOWN();
}

/* --- automatic collection ------------------------------------------------------------ */

/* In concurrent mode, a mutator's work between allocations: 20 us,
 * quiescent (as a loop in epoll), so the collector's thread keeps up; see
 * test_thresholds_trigger. Nothing in STW mode. */
static void mutator_work(void) {
    if (gy_gc_get_mode() == GY_GC_MODE_CONCURRENT) {
        gy_quiescent_begin();
        usleep(20);
        gy_quiescent_end();
    }
}

static void test_thresholds_trigger(void **state) {
    (void)state;
    GY_TEST_UP();
    assert_int_equal(gy_gc_set_threshold(100, 5, 5, NULL), GY_OK);
    gy_gc_gen_stats st[3];
    /* STW: this thread collects at the safe point after the crossing, so
     * garbage never exceeds a few thresholds. Concurrent: it never waits
     * for the collector's thread, so a loop that does nothing but allocate
     * outruns it (each collection costs a wake-up and a world stop while
     * hundreds of objects are allocated); this mutator does a little work
     * between allocations (20 us, quiescent, as a loop in epoll), and
     * garbage stays within ten thresholds (about 140 here when idle). */
    bool concurrent = gy_gc_get_mode() == GY_GC_MODE_CONCURRENT;
    int64_t bound = concurrent ? 1000 : 400, max_live = 0;
    for (int i = 0; i < 20000; i++) {
        gc_node *r = ring(&gc_node_type, 2, 0);
        gy_decref(r);
        gy_safepoint();
        mutator_work();
        int64_t live = gc_live(&gc_node_type);
        max_live = live > max_live ? live : max_live;
    }
    print_message("most garbage alive at once: %lld\n", (long long)max_live);
    /* Memory stays flat. */
    assert_true(max_live <= bound);
    gy_gc_get_stats(st);
    assert_true(st[0].collections > 100);
    assert_true(st[1].collections > 10);
    assert_true(st[2].collections >= 1);
    gy_gc_info info;
    gy_gc_get_info(&info);
    assert_true(info.automatic >= st[0].collections + st[1].collections + st[2].collections - 1);
    /* Threshold 0 == 0: no automatic collection at all. */
    gc_collect_found(2, NULL);
    assert_int_equal(gy_gc_set_threshold(0, 5, 5, NULL), GY_OK);
    gy_gc_get_stats(st);
    uint64_t before = st[0].collections + st[1].collections + st[2].collections;
    for (int i = 0; i < 2000; i++) {
        gc_node *r = ring(&gc_node_type, 2, 0);
        gy_decref(r);
        gy_safepoint();
    }
    gy_gc_get_stats(st);
    assert_int_equal(st[0].collections + st[1].collections + st[2].collections, before);
    assert_int_equal(gc_collect_found(2, NULL), 4000);
    GY_TEST_DOWN();
}

/* The guard against quadratic full collections: with a large generation 2
 * and few new long-lived objects, generation 2 is not collected even when
 * its count passes threshold 2. */
static void test_long_lived_guard(void **state) {
    (void)state;
    GY_TEST_UP();
    enum { OLD = 20000 };
    gy_list *keep;
    assert_int_equal(gy_list_new(&keep), GY_OK);
    for (int i = 0; i < OLD; i++) {
        gc_node *n = gc_node_new(&gc_node_type, 0);
        gy_list_append(keep, n);
        gy_decref(n);
    }
    gc_collect_found(2, NULL); /* long_lived_total ~ OLD */
    assert_int_equal(gy_gc_set_threshold(100, 1, 1, NULL), GY_OK);
    gy_gc_gen_stats before[3], after[3];
    gy_gc_get_stats(before);
    for (int i = 0; i < 3000; i++) {
        gc_node *r = ring(&gc_node_type, 2, 0);
        gy_decref(r);
        gy_safepoint();
        mutator_work();
    }
    gy_gc_get_stats(after);
    assert_true(after[1].collections > before[1].collections + 5);
    assert_int_equal(after[2].collections, before[2].collections);
    gy_decref(keep);
    gc_collect_found(2, NULL);
    GY_TEST_DOWN();
}

/* --- collect_async ---------------------------------------------------------------------- */

static int async_calls;
static uint64_t async_found;
static void async_done(int rc, const gy_gc_result *res, void *arg) {
    assert_int_equal(rc, GY_OK);
    async_calls++;
    async_found += res->collected;
    *(int *)arg = res->generation;
}

static void test_collect_async(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_gc_disable();
    gc_node *r = ring(&gc_node_type, 6, 0);
    gy_decref(r);
    int gen_a = -1, gen_b = -1;
    assert_int_equal(gy_gc_collect_async(0, async_done, &gen_a, NULL), GY_OK);
    assert_int_equal(gy_gc_collect_async(2, async_done, &gen_b, NULL), GY_OK);
    assert_int_equal(gy_gc_collect_async(7, async_done, &gen_b, NULL), GY_EINVAL);
    assert_int_equal(async_calls, 0); /* never inside the call */
    /* STW: the next safe point collects and answers both. Concurrent: the
     * collector's thread answers both with one collection, and a later
     * safe point of ours runs the callbacks, here. */
    gy_safepoint();
    for (int i = 0; i < 100000 && async_calls < 2 && gy_gc_get_mode() == GY_GC_MODE_CONCURRENT;
         i++) {
        sched_yield();
        gy_safepoint();
    }
    assert_int_equal(async_calls, 2);
    assert_int_equal(gen_a, 2); /* one collection of the oldest generation asked */
    assert_int_equal(gen_b, 2);
    assert_int_equal(async_found, 12); /* 6 per callback: the same collection */
    gy_gc_enable();
    GY_TEST_DOWN();
}

/* --- the collector's own memory ----------------------------------------------------------- */

#if GY_FAILPOINTS
static void test_collector_out_of_memory(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_gc_disable();
    gc_collect_found(2, NULL);
    gc_node *r = ring(&gc_node_type, 10, 0);
    gy_decref(r);
    gy_gc_info before, after;
    gy_gc_get_info(&before);
    /* The collector's array cannot be had at all: the collection is skipped. */
    gy__gc_release_buffers();
    assert_int_equal(gy_failpoint_set("gc.alloc", "from:1", NULL), GY_OK);
    gy_gc_result res;
    gc_collect_found(2, &res);
    assert_int_equal(res.collected, 0);
    gy_gc_get_info(&after);
    assert_int_equal(after.skipped_nomem, before.skipped_nomem + 1);
    assert_int_equal(gc_live(&gc_node_type), 10);
    gy_failpoint_reset_all();
    assert_int_equal(gc_collect_found(2, NULL), 10);
    gy_gc_enable();
    GY_TEST_DOWN();
}

/* The array can grow once but not twice: the collection takes the
 * candidates it has (any subset is sound) and a later one the rest. */
static void test_collector_array_shrinks(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_gc_disable();
    gc_collect_found(2, NULL);
    enum { RINGS = 1000, SIZE = 10 }; /* 10000 candidates: more than the first 4096 */
    for (int i = 0; i < RINGS; i++) {
        gc_node *r = ring(&gc_node_type, SIZE, 0);
        gy_decref(r);
    }
    gy__gc_release_buffers();
    gy_gc_info before, after;
    gy_gc_get_info(&before);
    assert_int_equal(gy_failpoint_set("gc.alloc", "from:2", NULL), GY_OK);
    gy_gc_result res;
    gc_collect_found(1, &res); /* no up-front reservation below generation 2 */
    gy_failpoint_reset_all();
    gy_gc_get_info(&after);
    assert_int_equal(after.shrunk_nomem, before.shrunk_nomem + 1);
    assert_int_equal(res.candidates, 4096);
    assert_true(res.collected > 0 && res.collected < RINGS * SIZE);
    uint64_t first = res.collected;
    assert_int_equal(gc_live(&gc_node_type), RINGS * SIZE - (int64_t)first);
    assert_int_equal(gc_collect_found(2, NULL), RINGS * SIZE - first);
    assert_int_equal(gc_live(&gc_node_type), 0);
    gy_gc_enable();
    GY_TEST_DOWN();
}

/* The marking worklist cannot grow at all: rescans find what it would have
 * held, and nothing reachable is freed (a chain built backwards: every
 * reference points at an object the linear pass already went by). */
static void test_collector_worklist_fails(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_gc_disable();
    gy__gc_release_buffers();
    enum { CHAIN = 3000 };
    gc_node *prev = gc_node_new(&gc_node_type, 0);
    for (int i = 1; i < CHAIN; i++) {
        gc_node *n = gc_node_new(&gc_node_type, 0);
        gy_store_steal(&n->next, prev); /* n -> prev: newer points at older */
        prev = n;
    }
    gc_node *head = prev; /* the only outside reference, to the newest */
    assert_int_equal(gy_failpoint_set("gc.worklist", "from:1", NULL), GY_OK);
    gy_gc_result res;
    gc_collect_found(2, &res);
    assert_true(gy_failpoint_fired("gc.worklist") > 0);
    gy_failpoint_reset_all();
    assert_int_equal(res.collected, 0);
    assert_int_equal(gc_live(&gc_node_type), CHAIN);
    gy_decref(head);
    assert_int_equal(gc_live(&gc_node_type), 0);
    gy_gc_enable();
    GY_TEST_DOWN();
}
#endif

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_self_references),
    cmocka_unit_test(test_rings),
    cmocka_unit_test(test_ring_of_lists),
    cmocka_unit_test(test_cycle_hanging_off_live),
    cmocka_unit_test(test_finalizers_before_clear),
    cmocka_unit_test(test_resurrection),
    cmocka_unit_test(test_weakref_callbacks),
    cmocka_unit_test(test_trash_weakref_no_callback),
    cmocka_unit_test(test_introspection_hides_trash),
    cmocka_unit_test(test_saveall),
    cmocka_unit_test(test_uncollectable),
    cmocka_unit_test(test_freeze),
    cmocka_unit_test(test_get_objects_and_tracking),
    cmocka_unit_test(test_callbacks_and_debug),
    cmocka_unit_test(test_nested_collect),
    cmocka_unit_test(test_thresholds_trigger),
    cmocka_unit_test(test_long_lived_guard),
    cmocka_unit_test(test_collect_async),
#if GY_FAILPOINTS /* the debug stage; release builds compile failpoints out */
    cmocka_unit_test(test_collector_out_of_memory),
    cmocka_unit_test(test_collector_array_shrinks),
    cmocka_unit_test(test_collector_worklist_fails),
#endif
};
GY_TEST_MAIN(tests)
