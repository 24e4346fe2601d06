/* collector.random_graphs: random object graphs with random external
 * references, checked against the test's own adjacency lists (never
 * through traverse). Each round prints its seed; GY_GC_SEED=N replays one.
 *
 * The oracle, per round:
 *   R  = nodes reachable from the external set (the test keeps references)
 *   T  = the rest; refcounting alone frees the part of T that no cycle of T
 *        reaches (Kahn's algorithm on T), leaving L
 *   U  = nodes of L reachable inside L from a legacy-finalizer node of L
 *   collect(2) reports |L \ U| collected and |U| uncollectable; afterwards
 *   exactly R and U are alive; the garbage list is U's legacy-finalizer
 *   nodes, as CPython's gc.garbage (all of L under SAVEALL); every finalizer ran as many times as
 * the oracle says (once for a freed node whose type has one, never for R or U). */
#include <stdlib.h>
#include <time.h>

#include "gc_node.h"

enum { MAX_NODES = 1500 };

typedef struct graph {
    int n;
    gy_type *type[MAX_NODES];
    int adj[MAX_NODES][2]; /* next, other: a node index or -1 */
    bool external[MAX_NODES];
    bool in_r[MAX_NODES], in_l[MAX_NODES], in_u[MAX_NODES];
} graph;

static uint64_t rng_state;
static uint64_t rng(void) {
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int rng_below(int n) { return (int)(rng() % (uint64_t)n); }
static bool rng_chance(int percent) { return rng_below(100) < percent; }

/* Everything reachable from the nodes flagged in `from`, restricted to
 * nodes flagged in `within` (NULL: all), into `out`. */
static void reach(const graph *g, const bool *from, const bool *within, bool *out) {
    static int stack[MAX_NODES];
    int sp = 0;
    for (int i = 0; i < g->n; i++) {
        out[i] = false;
    }
    for (int i = 0; i < g->n; i++) {
        if (from[i] && (within == NULL || within[i])) {
            out[i] = true;
            stack[sp++] = i;
        }
    }
    while (sp > 0) {
        int i = stack[--sp];
        for (int k = 0; k < 2; k++) {
            int j = g->adj[i][k];
            if (j >= 0 && !out[j] && (within == NULL || within[j])) {
                out[j] = true;
                stack[sp++] = j;
            }
        }
    }
}

static void oracle(graph *g) {
    reach(g, g->external, NULL, g->in_r);
    /* Kahn on T: peel off nodes no remaining T node references. */
    static int indeg[MAX_NODES], queue[MAX_NODES];
    for (int i = 0; i < g->n; i++) {
        indeg[i] = 0;
        g->in_l[i] = !g->in_r[i];
    }
    for (int i = 0; i < g->n; i++) {
        for (int k = 0; k < 2 && g->in_l[i]; k++) {
            if (g->adj[i][k] >= 0) {
                indeg[g->adj[i][k]]++;
            }
        }
    }
    int qh = 0, qt = 0;
    for (int i = 0; i < g->n; i++) {
        if (g->in_l[i] && indeg[i] == 0) {
            queue[qt++] = i;
        }
    }
    while (qh < qt) {
        int i = queue[qh++];
        g->in_l[i] = false; /* freed by refcounting */
        for (int k = 0; k < 2; k++) {
            int j = g->adj[i][k];
            if (j >= 0 && --indeg[j] == 0) {
                queue[qt++] = j;
            }
        }
    }
    static bool legacy[MAX_NODES];
    for (int i = 0; i < g->n; i++) {
        legacy[i] = g->in_l[i] && g->type[i] == &gc_lnode_type;
    }
    reach(g, legacy, g->in_l, g->in_u);
}

static int expected_finalizations(const graph *g, int i, bool saveall) {
    (void)saveall;
    if (g->in_r[i] || g->in_u[i]) {
        return 0;
    }
    /* Freed by refcounting (both finalizer types run there) or collected
     * (legacy nodes of L are all in U); SAVEALL still finalizes. */
    return g->type[i]->finalize != NULL ? 1 : 0;
}

static size_t count_flag(const graph *g, const bool *f) {
    size_t n = 0;
    for (int i = 0; i < g->n; i++) {
        n += f[i];
    }
    return n;
}

static bool garbage_has(gy_list *garbage, const void *ob) {
    for (size_t i = 0; i < gy_list_len(garbage); i++) {
        gy_object *x = gy_list_get(garbage, i);
        gy_decref(x);
        if (x == ob) {
            return true;
        }
    }
    return false;
}

static void run_round(uint64_t seed, int round) {
    rng_state = seed;
    static graph g;
    g.n = 20 + rng_below(MAX_NODES - 20);
    int ext_percent = 1 + rng_below(20), edge_percent = 50 + rng_below(50);
    bool saveall = rng_chance(30);
    /* Clusters: most edges stay inside one, a few cross; only some
     * clusters hold external references, so whole clusters become trash. */
    static int cluster_start[MAX_NODES + 1], cluster_of[MAX_NODES];
    int nclusters = 0;
    for (int i = 0; i < g.n;) {
        int size = 1 + rng_below(120);
        for (int k = 0; k < size && i < g.n; k++, i++) {
            cluster_of[i] = nclusters;
        }
        cluster_start[++nclusters] = i;
    }
    int cross_percent = rng_below(20);
    for (int i = 0; i < g.n; i++) {
        int t = rng_below(100);
        g.type[i] = t < 60 ? &gc_node_type : t < 97 ? &gc_fnode_type : &gc_lnode_type;
        int c = cluster_of[i], lo = cluster_start[c], size = cluster_start[c + 1] - lo;
        for (int k = 0; k < 2; k++) {
            if (!rng_chance(edge_percent)) {
                g.adj[i][k] = -1;
            } else if (rng_chance(cross_percent)) {
                g.adj[i][k] = rng_below(g.n);
            } else {
                g.adj[i][k] = lo + rng_below(size);
            }
        }
        g.external[i] = (c % 3 == 0) && rng_chance(ext_percent);
    }
    oracle(&g);
    print_message("round %d: seed=%llu nodes=%d R=%zu L=%zu U=%zu saveall=%d\n", round,
                  (unsigned long long)seed, g.n, count_flag(&g, g.in_r), count_flag(&g, g.in_l),
                  count_flag(&g, g.in_u), saveall);

    gc_node_reset_counts();
    static gc_node *nodes[MAX_NODES];
    static gy_weakref *weak[MAX_NODES];
    for (int i = 0; i < g.n; i++) {
        nodes[i] = gc_node_new(g.type[i], i);
        assert_int_equal(gy_weakref_new(&weak[i], nodes[i], NULL, NULL), GY_OK);
    }
    for (int i = 0; i < g.n; i++) {
        if (g.adj[i][0] >= 0) {
            gy_store(&nodes[i]->next, nodes[g.adj[i][0]]);
        }
        if (g.adj[i][1] >= 0) {
            gy_store(&nodes[i]->other, nodes[g.adj[i][1]]);
        }
    }
    /* Spread the graph over generations before it becomes garbage. */
    int pre = rng_below(3);
    if (pre > 0) {
        gc_collect_found(pre - 1, NULL);
    }
    for (int i = 0; i < g.n; i++) {
        if (!g.external[i]) {
            gy_decref(nodes[i]);
            nodes[i] = NULL;
        }
    }
    /* Refcounting has done its part: R and L are alive, T \ L finalized. */
    int64_t live = gc_live(&gc_node_type) + gc_live(&gc_fnode_type) + gc_live(&gc_lnode_type);
    assert_int_equal(live, (int64_t)(count_flag(&g, g.in_r) + count_flag(&g, g.in_l)));

    if (saveall) {
        gy_gc_set_debug(GY_GC_DEBUG_SAVEALL);
    }
    gy_gc_result res;
    gc_collect_found(2, &res);
    gy_gc_set_debug(0);
    size_t nl = count_flag(&g, g.in_l), nu = count_flag(&g, g.in_u), nlegacy = 0;
    for (int i = 0; i < g.n; i++) {
        nlegacy += g.in_u[i] && g.type[i] == &gc_lnode_type;
    }
    assert_int_equal(res.collected, nl - nu);
    assert_int_equal(res.uncollectable, nu);

    gy_list *garbage;
    assert_int_equal(gy_gc_garbage(&garbage), GY_OK);
    assert_int_equal(gy_list_len(garbage), saveall ? nl : nlegacy);
    for (int i = 0; i < g.n; i++) {
        gy_object *o = gy_weakref_get(weak[i]);
        bool alive_expected = g.in_r[i] || g.in_u[i];
        if (alive_expected != (o != NULL)) {
            fail_msg("node %d (%s): alive=%d, oracle says %d (R=%d L=%d U=%d)", i, g.type[i]->name,
                     o != NULL, alive_expected, g.in_r[i], g.in_l[i], g.in_u[i]);
        }
        if (o != NULL && g.in_u[i]) {
            assert_true(garbage_has(garbage, o) == (saveall || g.type[i] == &gc_lnode_type));
        }
        gy_xdecref(o);
        int fin = atomic_load(&gc_node_finalized[i]);
        if (fin != expected_finalizations(&g, i, saveall)) {
            fail_msg("node %d (%s): finalized %d times, oracle says %d", i, g.type[i]->name, fin,
                     expected_finalizations(&g, i, saveall));
        }
    }

    /* Clean up: what SAVEALL kept is trash again (no finalizer runs twice);
     * legacy cycles are broken by hand, as Python programs must. */
    gy_gc_garbage_clear();
    if (saveall) {
        gc_collect_found(2, &res);
        assert_int_equal(res.collected, nl - nu);
        assert_int_equal(res.uncollectable, nu);
        gy_gc_garbage_clear();
        gc_collect_found(2, &res);
    }
    /* Break every remaining edge by hand (legacy cycles never go otherwise). */
    for (int i = 0; i < g.n; i++) {
        gy_object *o = gy_weakref_get(weak[i]);
        if (o != NULL) {
            gc_node_clear(o);
            gy_decref(o);
        }
    }
    gy_gc_garbage_clear();
    gy_decref(garbage);
    for (int i = 0; i < g.n; i++) {
        if (nodes[i] != NULL) {
            gy_decref(nodes[i]);
        }
    }
    gy_gc_result last;
    gc_collect_found(2, &last);
    for (int i = 0; i < g.n; i++) {
        gy_object *o = gy_weakref_get(weak[i]);
        if (o != NULL) {
            print_message("node %d (%s) survives the end of the round: R=%d L=%d U=%d refcount=%zu "
                          "tracked=%d (last collection: %llu candidates, %llu collected)",
                          i, g.type[i]->name, g.in_r[i], g.in_l[i], g.in_u[i], gy_refcount(o) - 1,
                          gy_gc_is_tracked(o), (unsigned long long)last.candidates,
                          (unsigned long long)last.collected);
            gy_objects refs;
            gy_objects_referrers(o, &refs);
            for (size_t k = 0; k < refs.len; k++) {
                print_message("  referrer %s id=%d tracked=%d rc=%zu\n",
                              gy_type_of(refs.items[k])->name, ((gc_node *)refs.items[k])->id,
                              gy_gc_is_tracked(refs.items[k]), gy_refcount(refs.items[k]));
            }
            gy_objects_release(&refs);
            fail();
        }
        assert_true(atomic_load(&gc_node_finalized[i]) <= 1);
        gy_decref(weak[i]);
    }
    assert_int_equal(gc_live(&gc_node_type) + gc_live(&gc_fnode_type) + gc_live(&gc_lnode_type), 0);
}

static void test_random_graphs(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_gc_disable();
    const char *env = getenv("GY_GC_SEED");
    if (env != NULL) {
        run_round(strtoull(env, NULL, 10), 0);
    } else {
        uint64_t base = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)clock();
        for (int round = 0; round < 200; round++) {
            run_round(base + (uint64_t)round * 7919u, round);
        }
    }
    gy_gc_enable();
    GY_TEST_DOWN();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_random_graphs),
};
GY_TEST_MAIN(tests)
