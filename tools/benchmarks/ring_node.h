/* tools/benchmarks/ring_node.h: the node of the collector benchmarks'
 * rings (pyperformance's gc_collect shape: `next` and `prev`), and its
 * traverse and clear (each benchmark names its own gy_type with them), and
 * how to make a ring of them. */
#ifndef GYRE_BENCH_RING_NODE_H
#define GYRE_BENCH_RING_NODE_H

#include <stdio.h>
#include <stdlib.h>

#include "gyre/gyre.h"

typedef struct node {
    gy_object ob;
    gy_ref next, prev;
} node;

static inline int node_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((node *)self)->next, visit, arg);
    GY_VISIT(&((node *)self)->prev, visit, arg);
    return 0;
}

static inline void node_clear(gy_object *self) {
    gy_ref_clear(&((node *)self)->next);
    gy_ref_clear(&((node *)self)->prev);
}

/* A new node of `type` (a NEW reference); exits on failure. */
static inline node *ring_node_new(gy_type *type) {
    node *n;
    int rc = gy_new(type, &n);
    if (rc != GY_OK) {
        fprintf(stderr, "gy_new: %s\n", gy_strerror(rc));
        exit(1);
    }
    return n;
}

/* a.next = b, b.prev = a. */
static inline void ring_link_next(node *a, node *b) {
    gy_store(&a->next, b);
    gy_store(&b->prev, a);
}

/* A ring of `len` nodes of `type`: a NEW reference to its head, which holds
 * (through the ring) every other node. */
static inline node *ring_make(gy_type *type, int len) {
    node *head = ring_node_new(type), *cur = head;
    for (int i = 1; i < len; i++) {
        node *nx = ring_node_new(type);
        ring_link_next(cur, nx);
        if (cur != head) {
            gy_decref(cur);
        }
        cur = nx;
    }
    ring_link_next(cur, head);
    if (cur != head) {
        gy_decref(cur);
    }
    return head;
}

#endif /* GYRE_BENCH_RING_NODE_H */
