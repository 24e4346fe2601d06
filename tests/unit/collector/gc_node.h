/* tests/unit/collector/gc_node.h: a small container type for collector
 * tests: two reference fields, an id, and per-id finalizer counts. */
#ifndef GYRE_TEST_GC_NODE_H
#define GYRE_TEST_GC_NODE_H

#include <stdatomic.h>

#include "gy_rt.h"
#include "gyre/gc.h"

#define GC_NODE_MAX_IDS 65536

typedef struct gc_node {
    gy_object ob;
    gy_ref next;
    gy_ref other;
    int id;
} gc_node;

/* Finalizer calls per node id, and in total. */
__attribute__((unused)) static _Atomic int gc_node_finalized[GC_NODE_MAX_IDS];
__attribute__((unused)) static _Atomic int gc_node_finalized_total;

static inline int gc_node_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    gc_node *n = (gc_node *)self;
    GY_VISIT(&n->next, visit, arg);
    GY_VISIT(&n->other, visit, arg);
    return 0;
}

static inline void gc_node_clear(gy_object *self) {
    gc_node *n = (gc_node *)self;
    gy_ref_clear(&n->next);
    gy_ref_clear(&n->other);
}

static inline void gc_node_finalize(gy_object *self) {
    gc_node *n = (gc_node *)self;
    if (n->id >= 0 && n->id < GC_NODE_MAX_IDS) {
        atomic_fetch_add(&gc_node_finalized[n->id], 1);
    }
    atomic_fetch_add(&gc_node_finalized_total, 1);
}

/* Without finalizer. */
__attribute__((unused)) static gy_type gc_node_type = {
    .name = "gc_node",
    .size = sizeof(gc_node),
    .traverse = gc_node_traverse,
    .clear = gc_node_clear,
};

/* With a PEP 442 finalizer. */
__attribute__((unused)) static gy_type gc_fnode_type = {
    .name = "gc_fnode",
    .size = sizeof(gc_node),
    .traverse = gc_node_traverse,
    .clear = gc_node_clear,
    .finalize = gc_node_finalize,
};

/* With a legacy finalizer: uncollectable in cyclic trash. */
__attribute__((unused)) static gy_type gc_lnode_type = {
    .name = "gc_lnode",
    .size = sizeof(gc_node),
    .traverse = gc_node_traverse,
    .clear = gc_node_clear,
    .finalize = gc_node_finalize,
    .flags = GY_TYPE_LEGACY_FINALIZER,
};

/* A runtime in concurrent mode with this thread attached; gc_down: a full
 * collection, detach, and a shutdown that must report no leak. */
static inline void gc_up_concurrent(void) {
    gy_runtime_options o = {.gc_mode = GY_GC_MODE_CONCURRENT};
    gy_errmsg err = {0};
    if (gy_runtime_init(&o, &err) != GY_OK) {
        fail_msg("gy_runtime_init: %s", err.text);
    }
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
}

static inline void gc_down(void) {
    gy_gc_collect(2, NULL, NULL);
    gy_thread_detach();
    gy_errmsg err = {0};
    if (gy_runtime_shutdown(&err) != GY_OK) {
        fail_msg("gy_runtime_shutdown: %s", err.text);
    }
}

static inline gc_node *gc_node_new(gy_type *type, int id) {
    gc_node *n = NULL;
    assert_int_equal(gy_new(type, &n), GY_OK);
    n->id = id;
    return n;
}

static inline void gc_node_reset_counts(void) {
    for (int i = 0; i < GC_NODE_MAX_IDS; i++) {
        atomic_store(&gc_node_finalized[i], 0);
    }
    atomic_store(&gc_node_finalized_total, 0);
}

static inline int64_t gc_live(const gy_type *type) {
    gy_type_stats st;
    gy_type_get_stats(type, &st);
    return st.live;
}

/* collect(generation), asserting success; returns collected + uncollectable. */
static inline uint64_t gc_collect_found(int generation, gy_gc_result *res) {
    gy_gc_result local;
    gy_errmsg err = {0};
    if (res == NULL) {
        res = &local;
    }
    int rc = gy_gc_collect(generation, res, &err);
    if (rc != GY_OK) {
        fail_msg("gy_gc_collect(%d): %s", generation, err.text);
    }
    return res->collected + res->uncollectable;
}

#endif /* GYRE_TEST_GC_NODE_H */
