/* core/src/introspect.c: objects by type, referents, referrers, named roots,
 * backref chains and per-type growth. Objects by type and referrers walk
 * the heap in slices, each with the world stopped (walk.c); referents and
 * the backref graph stop the world once (the graph holds raw pointers, so
 * it needs one instant). Every walk skips objects whose count is zero
 * (dying, in a deferred-free stack), and builds its result from plain
 * arrays, so no Gyre lock is held while callers see the result. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gyre/introspect.h"
#include "gyre/runtime.h"
#include "gc_hooks.h"
#include "heap.h"
#include "textbuf.h"

/* --- a growable array of object pointers ----------------------------------- */

typedef struct ptrvec {
    gy_object **items;
    size_t len, cap;
    int failed; /* an append ran out of memory */
} ptrvec;

static void vec_push(ptrvec *v, gy_object *ob) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        gy_object **grown = realloc(v->items, cap * sizeof *grown);
        if (grown == NULL) {
            v->failed = 1;
            return;
        }
        v->items = grown;
        v->cap = cap;
    }
    v->items[v->len++] = ob;
}

void gy_objects_release(gy_objects *objs) {
    for (size_t i = 0; i < objs->len; i++) {
        gy_decref(objs->items[i]);
    }
    free(objs->items);
    objs->items = NULL;
    objs->len = 0;
}

/* Hand the vector's pointers out as NEW references (taken while stopped). */
static int vec_finish(ptrvec *v, gy_objects *out) {
    if (v->failed) {
        out->items = v->items;
        out->len = v->len;
        gy_objects_release(out);
        return GY_ENOMEM;
    }
    out->items = v->items;
    out->len = v->len;
    return GY_OK;
}

/* Walk every live object of every heap (world stopped by the caller). */
static int walk_heaps(int (*fn)(gy_object *, void *), void *arg) {
    int rc = 0;
    for (gy__heap *h = gy__rt.heaps; h != NULL && rc == 0; h = h->next) {
        rc = gy__heap_foreach_object(h, fn, arg);
    }
    return rc;
}

/* Every live object (of `type`, when not NULL), in slices with the world
 * stopped (walk.c); without memory for the slices' snapshot, in one stop. */
static void walk(const gy_type *type, int (*fn)(gy_object *, void *), void *arg) {
    if (gy__walk_sliced(type, fn, arg) < 0) {
        gy__world_stop();
        (void)walk_heaps(fn, arg);
        gy__world_resume();
    }
}

/* Whether introspection may hand ob out: counted (not dying in a deferred
 * stack), not doomed, and not trash the collector is destroying (while its
 * finalizers run, or half cleared). */
static int alive(const gy_object *ob) {
    if (gy_refcount(ob) == 0) {
        return 0;
    }
    /* relaxed: the world is stopped, or we are the collector's own thread. */
    if (atomic_load_explicit(&((gy_object *)(uintptr_t)ob)->gy__shared, memory_order_relaxed) &
        GY__RC_DOOMED) {
        return 0;
    }
    return !gy__gc_is_hidden(ob, gy__type_tracked(gy_type_of(ob)));
}

/* --- by type ---------------------------------------------------------------- */

typedef struct by_type_ctx {
    const gy_type *type;
    size_t limit;
    ptrvec v;
} by_type_ctx;

static int collect_by_type(gy_object *ob, void *arg) {
    by_type_ctx *c = arg;
    if ((c->type == NULL || gy_type_of(ob) == c->type) && alive(ob)) {
        gy_incref(ob);
        vec_push(&c->v, ob);
        if (c->v.failed) {
            gy_decref(ob);
            return 1;
        }
        if (c->limit != 0 && c->v.len >= c->limit) {
            return 1;
        }
    }
    return 0;
}

int gy_objects_by_type(const gy_type *type, size_t limit, gy_objects *out) {
    if (gy__tls_heap == NULL) {
        return GY_ESTATE;
    }
    by_type_ctx c = {type, limit, {0}};
    walk(type, collect_by_type, &c);
    return vec_finish(&c.v, out);
}

/* --- referents and referrers --------------------------------------------- */

static int collect_child(gy_object *child, void *arg) {
    ptrvec *v = arg;
    if (alive(child)) {
        gy_incref(child);
        vec_push(v, child);
        if (v->failed) {
            gy_decref(child);
            return 1;
        }
    }
    return 0;
}

int gy_objects_referents(void *obj, gy_objects *out) {
    if (gy__tls_heap == NULL) {
        return GY_ESTATE;
    }
    ptrvec v = {0};
    gy_traverse_fn traverse = gy_type_of(obj)->traverse;
    if (traverse != NULL) {
        gy__world_stop();
        (void)traverse(obj, collect_child, &v);
        gy__world_resume();
    }
    return vec_finish(&v, out);
}

typedef struct referrers_ctx {
    gy_object *target;
    int hit;
    ptrvec v;
} referrers_ctx;

static int is_target(gy_object *child, void *arg) {
    referrers_ctx *c = arg;
    if (child == c->target) {
        c->hit = 1;
        return 1;
    }
    return 0;
}

static int collect_referrer(gy_object *ob, void *arg) {
    referrers_ctx *c = arg;
    gy_traverse_fn traverse = gy_type_of(ob)->traverse;
    if (traverse == NULL || !alive(ob)) {
        return 0;
    }
    c->hit = 0;
    (void)traverse(ob, is_target, c);
    if (c->hit) {
        gy_incref(ob);
        vec_push(&c->v, ob);
        if (c->v.failed) {
            gy_decref(ob);
            return 1;
        }
    }
    return 0;
}

int gy_objects_referrers(void *obj, gy_objects *out) {
    if (gy__tls_heap == NULL) {
        return GY_ESTATE;
    }
    referrers_ctx c = {obj, 0, {0}};
    walk(NULL, collect_referrer, &c);
    return vec_finish(&c.v, out);
}

/* --- named roots ----------------------------------------------------------- */

typedef struct root {
    char *name;
    gy_object *obj; /* a strong reference */
} root;

static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER; /* guards roots */
static root *roots;
static size_t nroots, roots_cap;

int gy_root_add(void *obj, const char *name) {
    if (obj == NULL || name == NULL) {
        return GY_EINVAL;
    }
    char *copy = strdup(name);
    if (copy == NULL) {
        return GY_ENOMEM;
    }
    pthread_mutex_lock(&roots_lock);
    for (size_t i = 0; i < nroots; i++) {
        if (strcmp(roots[i].name, name) == 0) {
            pthread_mutex_unlock(&roots_lock);
            free(copy);
            return GY_EEXIST;
        }
    }
    if (nroots == roots_cap) {
        size_t cap = roots_cap ? roots_cap * 2 : 8;
        root *grown = realloc(roots, cap * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&roots_lock);
            free(copy);
            return GY_ENOMEM;
        }
        roots = grown;
        roots_cap = cap;
    }
    gy_incref(obj);
    roots[nroots].name = copy;
    roots[nroots].obj = obj;
    nroots++;
    pthread_mutex_unlock(&roots_lock);
    return GY_OK;
}

int gy_root_remove(const char *name) {
    gy_object *obj = NULL;
    char *oldname = NULL;
    pthread_mutex_lock(&roots_lock);
    for (size_t i = 0; i < nroots; i++) {
        if (strcmp(roots[i].name, name) == 0) {
            obj = roots[i].obj;
            oldname = roots[i].name;
            roots[i] = roots[--nroots];
            break;
        }
    }
    pthread_mutex_unlock(&roots_lock);
    if (obj == NULL) {
        return GY_ENOENT;
    }
    free(oldname);
    gy_decref(obj); /* after unlocking: may run a finalizer */
    return GY_OK;
}

void gy__roots_release_all(void) {
    while (nroots > 0) {
        char name[256];
        snprintf(name, sizeof name, "%s", roots[nroots - 1].name);
        (void)gy_root_remove(name);
    }
    free(roots);
    roots = NULL;
    roots_cap = 0;
}

/* --- backrefs ----------------------------------------------------------------- */

/* The heap as plain arrays, taken while the world is stopped. */
typedef struct graph {
    gy_object **objs; /* n live objects */
    size_t n;
    size_t *slot_of; /* open-addressing map pointer -> index (cap entries) */
    size_t cap;
    size_t *edge_child, *edge_parent; /* parent references child */
    size_t nedges, edges_cap;
    uint32_t *internal; /* referrers inside the heap, per object */
    size_t *refcount;
    const char **type_name;
    int failed;
} graph;

#define NO_INDEX ((size_t)-1)

static size_t ptr_slot(const graph *g, const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p >> 3;
    x *= 0x9e3779b97f4a7c15ULL;
    size_t i = (size_t)(x >> 20) & (g->cap - 1);
    while (g->slot_of[i] != NO_INDEX && g->objs[g->slot_of[i]] != p) {
        i = (i + 1) & (g->cap - 1);
    }
    return i;
}

static size_t index_of(const graph *g, const void *p) { return g->slot_of[ptr_slot(g, p)]; }

static int graph_count(gy_object *ob, void *arg) {
    graph *g = arg;
    if (alive(ob)) {
        g->n++;
    }
    return 0;
}

static int graph_add(gy_object *ob, void *arg) {
    graph *g = arg;
    if (alive(ob)) {
        size_t i = g->n++;
        g->objs[i] = ob;
        g->slot_of[ptr_slot(g, ob)] = i;
        g->refcount[i] = gy_refcount(ob);
        g->type_name[i] = gy_type_of(ob)->name;
    }
    return 0;
}

typedef struct edge_ctx {
    graph *g;
    size_t parent;
} edge_ctx;

static int graph_edge(gy_object *child, void *arg) {
    edge_ctx *e = arg;
    graph *g = e->g;
    size_t c = index_of(g, child);
    if (c == NO_INDEX) {
        return 0;
    }
    if (g->nedges == g->edges_cap) {
        size_t cap = g->edges_cap ? g->edges_cap * 2 : 1024;
        size_t *ec = realloc(g->edge_child, cap * sizeof *ec);
        if (ec != NULL) {
            g->edge_child = ec;
        }
        size_t *ep = ec ? realloc(g->edge_parent, cap * sizeof *ep) : NULL;
        if (ec == NULL || ep == NULL) {
            g->failed = 1;
            return 1;
        }
        g->edge_parent = ep;
        g->edges_cap = cap;
    }
    g->edge_child[g->nedges] = c;
    g->edge_parent[g->nedges] = e->parent;
    g->nedges++;
    g->internal[c]++;
    return 0;
}

static void graph_free(graph *g) {
    free(g->objs);
    free(g->slot_of);
    free(g->edge_child);
    free(g->edge_parent);
    free(g->internal);
    free(g->refcount);
    free(g->type_name);
}

/* Build the graph; world stopped inside. */
static int graph_build(graph *g) {
    memset(g, 0, sizeof *g);
    gy__world_stop();
    (void)walk_heaps(graph_count, g);
    size_t n = g->n;
    g->cap = 16;
    while (g->cap < n * 2) {
        g->cap *= 2;
    }
    g->objs = malloc((n + 1) * sizeof *g->objs);
    g->slot_of = malloc(g->cap * sizeof *g->slot_of);
    g->internal = calloc(n + 1, sizeof *g->internal);
    g->refcount = malloc((n + 1) * sizeof *g->refcount);
    g->type_name = malloc((n + 1) * sizeof *g->type_name);
    if (!g->objs || !g->slot_of || !g->internal || !g->refcount || !g->type_name) {
        gy__world_resume();
        graph_free(g);
        return GY_ENOMEM;
    }
    memset(g->slot_of, 0xff, g->cap * sizeof *g->slot_of);
    g->n = 0;
    (void)walk_heaps(graph_add, g);
    for (size_t i = 0; i < g->n && !g->failed; i++) {
        gy_traverse_fn traverse = gy_type_of(g->objs[i])->traverse;
        if (traverse != NULL) {
            edge_ctx e = {g, i};
            (void)traverse(g->objs[i], graph_edge, &e);
        }
    }
    gy__world_resume();
    if (g->failed) {
        graph_free(g);
        return GY_ENOMEM;
    }
    return GY_OK;
}

int gy_backrefs(void *obj, gy_backrefs_format format, char **out) {
    if (gy__tls_heap == NULL) {
        return GY_ESTATE;
    }
    /* Named roots first (their strong references count as external too). */
    pthread_mutex_lock(&roots_lock);
    size_t nr = nroots;
    gy_object **root_obj = malloc((nr + 1) * sizeof *root_obj);
    char **root_name = malloc((nr + 1) * sizeof *root_name);
    for (size_t i = 0; root_obj && root_name && i < nr; i++) {
        root_obj[i] = roots[i].obj;
        root_name[i] = strdup(roots[i].name);
    }
    pthread_mutex_unlock(&roots_lock);
    graph g;
    int rc = root_obj && root_name ? graph_build(&g) : GY_ENOMEM;
    if (rc != GY_OK) {
        free(root_obj);
        free(root_name);
        return rc;
    }
    size_t target = index_of(&g, obj);
    size_t *first = calloc(g.n + 1, sizeof *first); /* CSR offsets of parents per child */
    size_t *parents = malloc((g.nedges + 1) * sizeof *parents);
    size_t *via = malloc((g.n + 1) * sizeof *via); /* next hop toward the target */
    size_t *queue = malloc((g.n + 1) * sizeof *queue);
    rc = GY_ENOENT;
    size_t found = NO_INDEX;
    const char *found_name = NULL;
    if (first && parents && via && queue && target != NO_INDEX) {
        for (size_t e = 0; e < g.nedges; e++) {
            first[g.edge_child[e] + 1]++;
        }
        for (size_t i = 0; i < g.n; i++) {
            first[i + 1] += first[i];
        }
        size_t *fill = calloc(g.n + 1, sizeof *fill);
        for (size_t e = 0; fill && e < g.nedges; e++) {
            size_t c = g.edge_child[e];
            parents[first[c] + fill[c]++] = g.edge_parent[e];
        }
        free(fill);
        for (size_t i = 0; i < g.n; i++) {
            via[i] = NO_INDEX;
        }
        /* Breadth-first from the target up its referrers: the first root
         * reached ends the shortest chain. */
        size_t head = 0, tail = 0;
        via[target] = target;
        queue[tail++] = target;
        while (head < tail && found == NO_INDEX) {
            size_t cur = queue[head++];
            for (size_t k = first[cur]; k < first[cur + 1]; k++) {
                size_t p = parents[k];
                if (via[p] != NO_INDEX) {
                    continue;
                }
                via[p] = cur;
                for (size_t r = 0; r < nr; r++) {
                    if (root_obj[r] == g.objs[p]) {
                        found_name = root_name[r];
                    }
                }
                /* Held from outside the heap: more references than referrers
                 * inside it. */
                if (found_name != NULL || g.refcount[p] > g.internal[p]) {
                    found = p;
                    break;
                }
                queue[tail++] = p;
            }
        }
    }
    if (found != NO_INDEX) {
        gy__textbuf t = {0};
        if (format == GY_BACKREFS_DOT) {
            gy__textbuf_printf(&t, "digraph backrefs {\n  rankdir=LR;\n  node [shape=box];\n");
        }
        size_t step = 0;
        for (size_t i = found;; i = via[i], step++) {
            const char *name = g.type_name[i] ? g.type_name[i] : "?";
            if (format == GY_BACKREFS_DOT) {
                gy__textbuf_printf(
                    &t, "  n%zu [label=\"%s\\n%p%s%s%s\"];\n", step, name, (void *)g.objs[i],
                    i == found ? (found_name ? "\\nroot '" : "\\nheld outside the heap") : "",
                    i == found && found_name ? found_name : "",
                    i == found && found_name ? "'" : "");
                if (step > 0) {
                    gy__textbuf_printf(&t, "  n%zu -> n%zu;\n", step - 1, step);
                }
            } else if (i == found) {
                if (found_name != NULL) {
                    gy__textbuf_printf(&t, "root '%s' (%s %p)", found_name, name,
                                       (void *)g.objs[i]);
                } else {
                    gy__textbuf_printf(&t, "held outside the heap (%s %p)", name,
                                       (void *)g.objs[i]);
                }
            } else {
                gy__textbuf_printf(&t, " -> %s %p", name, (void *)g.objs[i]);
            }
            if (i == target) {
                break;
            }
        }
        if (format == GY_BACKREFS_DOT) {
            gy__textbuf_printf(&t, "}\n");
        } else {
            gy__textbuf_printf(&t, "\n");
        }
        if (t.failed) {
            free(t.s);
            rc = GY_ENOMEM;
        } else {
            *out = t.s;
            rc = GY_OK;
        }
    }
    free(first);
    free(parents);
    free(via);
    free(queue);
    for (size_t r = 0; r < nr; r++) {
        free(root_name[r]);
    }
    free(root_obj);
    free(root_name);
    graph_free(&g);
    return rc;
}

/* --- growth ------------------------------------------------------------------- */

static pthread_mutex_t growth_lock = PTHREAD_MUTEX_INITIALIZER; /* guards previous */
static int64_t previous[GY__MAX_TYPES];

typedef struct growth_ctx {
    gy_type_growth *rows;
    size_t n, cap;
} growth_ctx;

static int growth_row(const gy_type *type, const gy_type_stats *st, void *arg) {
    growth_ctx *c = arg;
    uint32_t index = atomic_load_explicit(&type->gy__priv.index, memory_order_acquire);
    int64_t delta = st->live - previous[index];
    previous[index] = st->live;
    if (delta > 0 && c->n < c->cap) {
        c->rows[c->n++] = (gy_type_growth){type, st->live, delta};
    }
    return 0;
}

static int by_delta_desc(const void *a, const void *b) {
    const gy_type_growth *x = a, *y = b;
    return (y->delta > x->delta) - (y->delta < x->delta);
}

int gy_types_growth(gy_type_growth *out, size_t max, size_t *n) {
    gy_type_growth all[GY__MAX_TYPES];
    growth_ctx c = {all, 0, GY__MAX_TYPES};
    pthread_mutex_lock(&growth_lock);
    (void)gy_types_foreach(growth_row, &c);
    pthread_mutex_unlock(&growth_lock);
    qsort(all, c.n, sizeof all[0], by_delta_desc);
    *n = c.n < max ? c.n : max;
    memcpy(out, all, *n * sizeof *out);
    return GY_OK;
}
