/* server/gyred/demo.c: the demo routes. Each shows one thing the heap and
 * the collector do under a server:
 *   GET /             hello
 *   POST /echo        the body back (Expect: 100-continue is honoured)
 *   GET /work?ms=N    N ms of blocking work on a worker, then the answer
 *   GET /later?ms=N   answered N ms later from a timer on the request's loop
 *   GET /stream?n=N   N 8-byte pieces streamed from a worker, 1 ms apart
 *   GET /tree?depth=N a tree with parent back-pointers: cycles when dropped
 *   GET /cycle?n=N    a ring of N objects with finalizers, dropped
 *   GET|PUT /cache/K  a weak-value cache shared by the loops, with a small
 *                     strong LRU in front
 *   GET|DELETE /leak  objects kept on a named root list (demo_leaks = on)
 * With demo_break_cycles = on, handlers break their back-pointers before
 * dropping (the refcount-only baseline). */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "demo.h"
#include "gyre/bytes.h"
#include "gyre/introspect.h"
#include "gyre/list.h"
#include "gyre/runtime.h"
#include "gyre/weakref.h"

#define CACHE_LRU_SIZE 64
#define CACHE_KEY_MAX 200
#define LEAK_MAX 1000000

__attribute__((format(printf, 3, 4))) static int answer(gy_request *req, int status,
                                                        const char *fmt, ...) {
    char body[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    return gy_request_respond(req, status, "text/plain", body, (size_t)n);
}

static bool break_cycles(gy_request *req) {
    return gy_server_config_int(gy_request_server(req), "demo_break_cycles") != 0;
}

/* --- / and /echo ------------------------------------------------------------- */

static int root(gy_request *req, void *arg) {
    (void)arg;
    return gy_request_respond(req, 200, "text/plain", "hello", 5);
}

static int echo(gy_request *req, void *arg) {
    (void)arg;
    size_t len;
    const char *body = gy_request_body(req, &len);
    const char *ctype = gy_request_header(req, "Content-Type");
    return gy_request_respond(req, 200, ctype ? ctype : "application/octet-stream", body, len);
}

/* --- /work: the asynchronous path -------------------------------------------- */

static void work(gy_request *req, void *arg) {
    long ms = (long)(intptr_t)arg;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    gy_quiescent_begin(); /* blocking, touching no object: never stalls a collection */
    nanosleep(&ts, NULL);
    gy_quiescent_end();
    answer(req, 200, "slept %ld ms\n", ms);
}

static int work_route(gy_request *req, void *arg) {
    (void)arg;
    long ms;
    if (gy_request_query_int(req, "ms", &ms) != GY_OK || ms < 0 || ms > 1000) {
        return answer(req, 400, "ms must be 0..1000\n");
    }
    int rc = gy_request_submit(req, work, (void *)(intptr_t)ms);
    if (rc == GY_EAGAIN) {
        gy_request_set_header(req, "Retry-After", "1");
        return answer(req, 503, "workers busy\n");
    }
    return rc == GY_OK ? GY_HANDLER_LATER : rc;
}

/* --- /later and /stream: a timer's answer, a streamed answer ----------------------- */

static void later_fire(gy_request *req, void *arg) {
    /* (Without memory for it the server answers a static 500 instead.) */
    (void)answer(req, 200, "answered after %ld ms\n", (long)(intptr_t)arg);
}

static int later_route(gy_request *req, void *arg) {
    (void)arg;
    long ms;
    if (gy_request_query_int(req, "ms", &ms) != GY_OK || ms < 0 || ms > 1000) {
        return answer(req, 400, "ms must be 0..1000\n");
    }
    /* The timer holds a reference to the request until it fires. */
    int rc = gy_request_after(req, (uint64_t)ms, later_fire, (void *)(intptr_t)ms);
    return rc == GY_OK ? GY_HANDLER_LATER : rc;
}

#define STREAM_PIECE 8
#define STREAM_MAX 1000

/* On a worker: the head, then the pieces "piece00\n", "piece01\n"... */
static void stream_work(gy_request *req, void *arg) {
    long n = (long)(intptr_t)arg;
    if (gy_request_stream_begin(req, 200, "text/plain", (uint64_t)n * STREAM_PIECE) != GY_OK) {
        return; /* no memory: the server has answered a static 500 */
    }
    for (long i = 0; i < n; i++) {
        char piece[STREAM_PIECE + 1];
        snprintf(piece, sizeof piece, "piece%02ld\n", i % 100);
        if (gy_request_stream_write(req, piece, STREAM_PIECE) != GY_OK) {
            return; /* no memory: the answer is cut (the connection closes) */
        }
        struct timespec ts = {0, 1000000L};
        gy_quiescent_begin();
        nanosleep(&ts, NULL);
        gy_quiescent_end();
    }
}

static int stream_route(gy_request *req, void *arg) {
    (void)arg;
    long n;
    if (gy_request_query_int(req, "n", &n) != GY_OK || n < 0 || n > STREAM_MAX) {
        return answer(req, 400, "n must be 0..%d\n", STREAM_MAX);
    }
    int rc = gy_request_submit(req, stream_work, (void *)(intptr_t)n);
    if (rc == GY_EAGAIN) {
        gy_request_set_header(req, "Retry-After", "1");
        return answer(req, 503, "workers busy\n");
    }
    return rc == GY_OK ? GY_HANDLER_LATER : rc;
}

/* --- /tree: parent back-pointers ---------------------------------------------------- */

typedef struct tree_node {
    gy_object ob;
    gy_ref left, right, parent;
} tree_node;

static int tree_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    tree_node *n = (tree_node *)self;
    GY_VISIT(&n->left, visit, arg);
    GY_VISIT(&n->right, visit, arg);
    GY_VISIT(&n->parent, visit, arg);
    return 0;
}
static void tree_clear(gy_object *self) {
    tree_node *n = (tree_node *)self;
    gy_ref_clear(&n->left);
    gy_ref_clear(&n->right);
    gy_ref_clear(&n->parent);
}
static gy_type tree_node_type = {
    .name = "demo_tree_node",
    .size = sizeof(tree_node),
    .traverse = tree_traverse,
    .clear = tree_clear,
};

/* A NEW subtree of `depth` levels under parent (NULL for the root), or NULL
 * when out of memory; *count counts the nodes made. */
static tree_node *tree_build(tree_node *parent, int depth, long *count) {
    tree_node *n;
    if (gy_new(&tree_node_type, &n) != GY_OK) {
        return NULL;
    }
    (*count)++;
    if (parent != NULL) {
        gy_store(&n->parent, parent);
    }
    if (depth > 1) {
        tree_node *l = tree_build(n, depth - 1, count);
        tree_node *r = l ? tree_build(n, depth - 1, count) : NULL;
        if (l) {
            gy_store_steal(&n->left, l);
        }
        if (r) {
            gy_store_steal(&n->right, r);
        }
    }
    return n;
}

static void tree_unparent(tree_node *n) {
    gy_ref_clear(&n->parent);
    tree_node *c[2] = {(tree_node *)gy_load(&n->left), (tree_node *)gy_load(&n->right)};
    for (int i = 0; i < 2; i++) {
        if (c[i] != NULL) {
            tree_unparent(c[i]);
            gy_decref(c[i]);
        }
    }
}

static int tree_route(gy_request *req, void *arg) {
    (void)arg;
    long depth, max = (long)gy_server_config_int(gy_request_server(req), "demo_tree_max_depth");
    if (gy_request_query_int(req, "depth", &depth) != GY_OK || depth < 1 || depth > max) {
        return answer(req, 400, "depth must be 1..%ld (demo_tree_max_depth)\n", max);
    }
    long count = 0;
    tree_node *root_node = tree_build(NULL, (int)depth, &count);
    if (root_node == NULL || count != (1L << depth) - 1) {
        if (root_node) {
            tree_unparent(root_node);
            gy_decref(root_node);
        }
        return answer(req, 503, "out of memory\n");
    }
    if (break_cycles(req)) {
        tree_unparent(root_node);
    }
    gy_decref(root_node); /* cyclic garbage unless broken */
    return answer(req, 200, "%ld\n", count);
}

/* --- /cycle: a ring with finalizers ------------------------------------------------- */

typedef struct ring_node {
    gy_object ob;
    gy_ref next;
} ring_node;

static _Atomic uint64_t ring_finalized; /* relaxed: a statistic */

static int ring_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((ring_node *)self)->next, visit, arg);
    return 0;
}
static void ring_clear(gy_object *self) { gy_ref_clear(&((ring_node *)self)->next); }
static void ring_finalize(gy_object *self) {
    (void)self;
    atomic_fetch_add_explicit(&ring_finalized, 1, memory_order_relaxed);
}
static gy_type ring_node_type = {
    .name = "demo_ring_node",
    .size = sizeof(ring_node),
    .traverse = ring_traverse,
    .clear = ring_clear,
    .finalize = ring_finalize,
    .flags = GY_TYPE_FINALIZE_ANY_THREAD,
};

static int cycle_route(gy_request *req, void *arg) {
    (void)arg;
    long n, max = (long)gy_server_config_int(gy_request_server(req), "demo_cycle_max");
    if (gy_request_query_int(req, "n", &n) != GY_OK || n < 1 || n > max) {
        return answer(req, 400, "n must be 1..%ld (demo_cycle_max)\n", max);
    }
    ring_node *first, *last;
    if (gy_new(&ring_node_type, &first) != GY_OK) {
        return answer(req, 503, "out of memory\n");
    }
    last = first;
    gy_incref(last);
    long made = 1;
    for (; made < n; made++) {
        ring_node *r;
        if (gy_new(&ring_node_type, &r) != GY_OK) {
            break;
        }
        gy_store(&last->next, r);
        gy_decref(last);
        last = r; /* our reference moves on */
    }
    gy_store(&last->next, first); /* close the ring */
    if (break_cycles(req)) {
        gy_ref_clear(&last->next);
    }
    gy_decref(last);
    gy_decref(first);
    if (made < n) {
        return answer(req, 503, "out of memory\n");
    }
    return answer(req, 200, "ring of %ld dropped (%ld finalized so far)\n", n,
                  (long)atomic_load_explicit(&ring_finalized, memory_order_relaxed));
}

/* --- /cache: weak values behind a strong LRU ------------------------------------------ */

typedef struct cache_entry {
    gy_object ob;
    gy_ref data; /* gy_bytes */
} cache_entry;

static int entry_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((cache_entry *)self)->data, visit, arg);
    return 0;
}
static void entry_clear(gy_object *self) { gy_ref_clear(&((cache_entry *)self)->data); }
static gy_type cache_entry_type = {
    .name = "demo_cache_entry",
    .size = sizeof(cache_entry),
    .traverse = entry_traverse,
    .clear = entry_clear,
    .flags = GY_TYPE_ACYCLIC,
};

static struct {
    gy_weakdict *map;
    pthread_mutex_t lock; /* guards the LRU ring below */
    cache_entry *lru[CACHE_LRU_SIZE];
    size_t next;
    gy_list *leaks; /* the named root of /leak */
} demo = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Keep `e` strongly in the LRU; the entry pushed out is dropped after the
 * lock (its last reference may run its weakref callback). */
static void lru_touch(cache_entry *e) {
    gy_incref(e);
    pthread_mutex_lock(&demo.lock);
    cache_entry *old = demo.lru[demo.next];
    demo.lru[demo.next] = e;
    demo.next = (demo.next + 1) % CACHE_LRU_SIZE;
    pthread_mutex_unlock(&demo.lock);
    gy_xdecref(old);
}

static int cache_route(gy_request *req, void *arg) {
    (void)arg;
    const char *key = gy_request_path_tail(req);
    size_t klen = strlen(key);
    if (klen == 0 || klen > CACHE_KEY_MAX) {
        return answer(req, 400, "key must be 1..%d bytes\n", CACHE_KEY_MAX);
    }
    if (strcmp(gy_request_method(req), "PUT") == 0) {
        size_t len;
        const char *body = gy_request_body(req, &len);
        cache_entry *e;
        gy_bytes *b;
        if (gy_new(&cache_entry_type, &e) != GY_OK) {
            return answer(req, 503, "out of memory\n");
        }
        if (gy_bytes_new(&b, body, len) != GY_OK) {
            gy_decref(e);
            return answer(req, 503, "out of memory\n");
        }
        gy_store_steal(&e->data, b); /* the entry owns the body from here */
        if (gy_weakdict_set(demo.map, key, e) != GY_OK) {
            gy_decref(e); /* and the body with it (it leaked here before) */
            return answer(req, 503, "out of memory\n");
        }
        lru_touch(e);
        gy_decref(e);
        return answer(req, 201, "stored %zu bytes\n", len);
    }
    cache_entry *e = (cache_entry *)gy_weakdict_get(demo.map, key);
    if (e == NULL) {
        return answer(req, 404, "no such key (or it was dropped)\n");
    }
    lru_touch(e);
    gy_bytes *b = (gy_bytes *)gy_load(&e->data);
    int rc = gy_request_respond(req, 200, "application/octet-stream", b ? gy_bytes_data(b) : "",
                                b ? gy_bytes_len(b) : 0);
    gy_xdecref(b);
    gy_decref(e);
    return rc;
}

/* --- /leak: a named root list -------------------------------------------------------- */

typedef struct leak_node {
    gy_object ob;
    char payload[56];
} leak_node;
static gy_type leak_node_type = {
    .name = "demo_leak_node",
    .size = sizeof(leak_node),
    .flags = GY_TYPE_LEAF,
};

static int leak_route(gy_request *req, void *arg) {
    (void)arg;
    if (!gy_server_config_int(gy_request_server(req), "demo_leaks")) {
        return gy_request_respond(req, 404, "text/plain", "not found\n", 10);
    }
    if (strcmp(gy_request_method(req), "DELETE") == 0) {
        long n = (long)gy_list_len(demo.leaks);
        gy_list_clear(demo.leaks);
        return answer(req, 200, "released %ld\n", n);
    }
    long n;
    if (gy_request_query_int(req, "n", &n) != GY_OK || n < 1 || n > LEAK_MAX) {
        return answer(req, 400, "n must be 1..%d\n", LEAK_MAX);
    }
    for (long i = 0; i < n; i++) {
        leak_node *l;
        if (gy_new(&leak_node_type, &l) != GY_OK) {
            return answer(req, 503, "out of memory\n");
        }
        int rc = gy_list_append(demo.leaks, l);
        gy_decref(l);
        if (rc != GY_OK) {
            return answer(req, 503, "out of memory\n");
        }
    }
    return answer(req, 200, "leaked %ld (%ld kept)\n", n, (long)gy_list_len(demo.leaks));
}

/* --- setup / teardown ---------------------------------------------------------------- */

int gyred_demo_setup(gy_server *srv, void *arg) {
    int rc;
    if ((rc = gy_weakdict_new(&demo.map)) != GY_OK || (rc = gy_list_new(&demo.leaks)) != GY_OK ||
        /* A named root: backrefs chains of leaked objects start at it. */
        (rc = gy_root_add(demo.leaks, "demo.leaks")) != GY_OK) {
        gyred_demo_teardown(srv, arg); /* what was made (it leaked: exit 1, not 70) */
        return rc;
    }
    static const struct {
        const char *method, *path;
        gy_handler_fn fn;
    } routes[] = {
        {"GET", "/", root},
        {"POST", "/echo", echo},
        {"GET", "/work", work_route},
        {"GET", "/later", later_route},
        {"GET", "/stream", stream_route},
        {"GET", "/tree", tree_route},
        {"GET", "/cycle", cycle_route},
        {"GET", "/cache/...", cache_route},
        {"PUT", "/cache/...", cache_route},
        {"GET", "/leak", leak_route},
        {"DELETE", "/leak", leak_route},
    };
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        if ((rc = gy_server_route(srv, routes[i].method, routes[i].path, routes[i].fn, NULL)) !=
            GY_OK) {
            gyred_demo_teardown(srv, arg);
            return rc;
        }
    }
    return GY_OK;
}

void gyred_demo_teardown(gy_server *srv, void *arg) {
    (void)srv;
    (void)arg;
    for (size_t i = 0; i < CACHE_LRU_SIZE; i++) {
        gy_xdecref(demo.lru[i]);
        demo.lru[i] = NULL;
    }
    gy_root_remove("demo.leaks");
    gy_xdecref(demo.map);
    gy_xdecref(demo.leaks);
    demo.map = NULL;
    demo.leaks = NULL;
}
