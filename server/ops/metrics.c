/* server/ops/metrics.c: Prometheus metrics (text format 0.0.4): base units,
 * `_total` counters, classic-bucket histograms, HELP and TYPE for every
 * family. Collector families mirror the Python client's python_gc_*. The
 * metrics plane (gy__metrics_plane) is at the end. */
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gyre/gc.h"
#include "gyre/version.h"
#include "metrics.h"

/* The status codes counted one by one (the last slot is "other") and the
 * histogram buckets. */
#define GY__METRIC_CODES 16
#define GY__METRIC_BUCKETS 14

typedef struct gy__histogram {
    _Atomic uint64_t buckets[GY__METRIC_BUCKETS]; /* per bucket; cumulated when rendered */
    _Atomic uint64_t count, sum_ns;
} gy__histogram;

/* One server's metrics (the plane's state). Synchronization: relaxed
 * atomic counters (monotonic; a scrape may see a request in one family
 * before another); `requests` is set on the control thread before the HTTP
 * loops start (their thread creation publishes it). */
typedef struct gy__metrics {
    size_t nroutes; /* rows: one per route, then one for "no route" */
    _Atomic uint64_t (*requests)[GY__METRIC_CODES];
    gy__histogram request_seconds;
    gy__histogram gc_seconds, gc_pause_seconds;
    uint64_t last_pause_ns; /* written by the collection callbacks, one at a time */
    int fd;                 /* bound, not yet served (-1: none) */
    uv_tcp_t tcp;           /* the listener, once served */
} gy__metrics;

static const int gy__codes[GY__METRIC_CODES - 1] = {200, 201, 204, 304, 400, 404, 405, 408,
                                                    413, 414, 417, 431, 500, 501, 503};
static const double gy__bounds[GY__METRIC_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

static int gy__code_index(int status) {
    for (int i = 0; i < GY__METRIC_CODES - 1; i++) {
        if (gy__codes[i] == status) {
            return i;
        }
    }
    return GY__METRIC_CODES - 1; /* other */
}

static void gy__observe(gy__histogram *h, uint64_t ns) {
    double s = (double)ns / 1e9;
    for (int i = 0; i < GY__METRIC_BUCKETS; i++) {
        if (s <= gy__bounds[i]) {
            atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* The collector's STOP callback (on the collecting thread): observe the
 * collection's duration and the pause it added (pause sums, as a delta). */
static void gy__gc_cb(gy_gc_phase phase, const gy_gc_callback_info *info, void *arg) {
    if (phase != GY_GC_STOP) {
        return;
    }
    gy__metrics *m = arg;
    gy__observe(&m->gc_seconds, info->duration_ns);
    gy_gc_gen_stats g[GY_GC_GENERATIONS];
    gy_gc_get_stats(g);
    uint64_t pause = g[0].pause_ns + g[1].pause_ns + g[2].pause_ns;
    /* One collection at a time: the previous callback's value is ours. */
    uint64_t prev = m->last_pause_ns;
    m->last_pause_ns = pause;
    gy__observe(&m->gc_pause_seconds, pause >= prev ? pause - prev : 0);
}

/* Allocate the per-route rows (routes are fixed once the server runs) and
 * follow the collections. */
static int gy__metrics_init(gy_server *srv, gy__metrics *m) {
    m->nroutes = srv->router.n;
    m->requests = calloc(m->nroutes + 1, sizeof *m->requests);
    if (m->requests == NULL) {
        return GY_ENOMEM;
    }
    gy_gc_gen_stats g[GY_GC_GENERATIONS];
    gy_gc_get_stats(g);
    m->last_pause_ns = g[0].pause_ns + g[1].pause_ns + g[2].pause_ns;
    return gy_gc_callback_add(gy__gc_cb, m);
}

/* The plane's `free`. */
static void gy__metrics_free(gy_server *srv, void *state) {
    (void)srv;
    gy__metrics *m = state;
    if (m == NULL) {
        return;
    }
    if (m->fd >= 0) {
        close(m->fd);
    }
    if (m->requests != NULL) {
        gy_gc_callback_remove(gy__gc_cb, m);
        free(m->requests);
    }
    free(m);
}

/* The plane's `answered`: a request answered (route NULL: none matched;
 * dur_ns 0: not timed). Any loop. */
static void gy__metrics_request(gy_server *srv, void *state, const gy__route *route, int status,
                                uint64_t dur_ns) {
    gy__metrics *m = state;
    if (m == NULL || m->requests == NULL) {
        return;
    }
    size_t row = route ? (size_t)(route - srv->router.routes) : m->nroutes;
    if (row > m->nroutes) {
        row = m->nroutes;
    }
    atomic_fetch_add_explicit(&m->requests[row][gy__code_index(status)], 1, memory_order_relaxed);
    if (dur_ns > 0) {
        gy__observe(&m->request_seconds, dur_ns);
    }
}

/* --- rendering ------------------------------------------------------------------ */

static void gy__p(gy__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gy__p(gy__buf *b, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) {
        gy__buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    }
}

static void gy__family(gy__buf *b, const char *name, const char *type, const char *help) {
    gy__p(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newline escaped. */
static void gy__label(char *out, size_t size, const char *v) {
    size_t o = 0;
    for (; *v && o + 3 < size; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *v;
        }
    }
    out[o] = '\0';
}

/* A family with one sample per generation. */
static void gy__per_generation(gy__buf *b, const char *name, const char *type, const char *help,
                               const long v[GY_GC_GENERATIONS]) {
    gy__family(b, name, type, help);
    for (int i = 0; i < GY_GC_GENERATIONS; i++) {
        gy__p(b, "%s{generation=\"%d\"} %ld\n", name, i, v[i]);
    }
}

static void gy__histogram_render(gy__buf *b, const char *name, const char *help,
                                 const gy__histogram *h) {
    gy__family(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < GY__METRIC_BUCKETS; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        gy__p(b, "%s_bucket{le=\"%g\"} %llu\n", name, gy__bounds[i], (unsigned long long)cum);
    }
    uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
    gy__p(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
          (unsigned long long)(count > cum ? count : cum));
    gy__p(b, "%s_sum %.9f\n", name,
          (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
    gy__p(b, "%s_count %llu\n", name, (unsigned long long)(count > cum ? count : cum));
}

typedef struct gy__top_types {
    const gy_type *type[20];
    int64_t live[20];
    int n;
} gy__top_types;

static int gy__top_type(const gy_type *type, const gy_type_stats *st, void *arg) {
    gy__top_types *t = arg;
    if (st->live <= 0) {
        return 0;
    }
    int at = t->n;
    while (at > 0 && t->live[at - 1] < st->live) {
        at--;
    }
    if (at >= 20) {
        return 0;
    }
    int last = t->n < 20 ? t->n : 19;
    for (int i = last; i > at; i--) {
        t->type[i] = t->type[i - 1];
        t->live[i] = t->live[i - 1];
    }
    t->type[at] = type;
    t->live[at] = st->live;
    if (t->n < 20) {
        t->n++;
    }
    return 0;
}

/* Where the memory is (memory.stats): what an operator looks at when RSS
 * stays up after load. */
static void gy__memory_render(gy__buf *b) {
    gy_memory_stats m;
    gy_memory_get_stats(&m);
    const struct {
        const char *name, *type, *help;
        uint64_t v;
    } rows[] = {
        {"gyre_memory_segment_bytes", "gauge", "Bytes of arena segments Gyre holds.",
         m.segment_bytes},
        {"gyre_memory_large_bytes", "gauge", "Bytes of backing blocks outside segments.",
         m.large_bytes},
        {"gyre_memory_retained_bytes", "gauge",
         "Bytes Gyre holds that hold nothing live (free cells, empty segments, grace periods).",
         m.retained_bytes},
        {"gyre_memory_spare_segments", "gauge", "Empty segments kept for reuse.", m.spare_segments},
        {"gyre_memory_trims_total", "counter", "Trims run by the server's threads.", m.trims},
        {"gyre_memory_allocator_resident_bytes", "gauge",
         "Resident bytes of the allocator's pages (jemalloc; 0 without it).", m.allocator_resident},
        {"gyre_memory_allocator_dirty_bytes", "gauge",
         "Unused allocator pages not yet returned to the OS.", m.allocator_dirty},
        {"gyre_memory_allocator_retained_bytes", "gauge",
         "Virtual memory the allocator keeps mapped for reuse (not resident).",
         m.allocator_retained},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        gy__family(b, rows[i].name, rows[i].type, rows[i].help);
        gy__p(b, "%s %llu\n", rows[i].name, (unsigned long long)rows[i].v);
    }
}

char *gy__metrics_render(gy_server *srv) {
    const gy__metrics *m = gy__server_plane_state(srv, &gy__metrics_plane);
    if (m == NULL) {
        return NULL; /* never: the plane is bound with every server */
    }
    gy__buf b = {0};
    gy__family(&b, "gyre_build_info", "gauge", "Versions of gyred and what it is built on.");
    gy__p(&b, "gyre_build_info{version=\"%s\",libuv=\"%s\",llhttp=\"%d.%d.%d\"} 1\n",
          GY_VERSION_STRING, uv_version_string(), LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR,
          LLHTTP_VERSION_PATCH);
    gy_gc_gen_stats g[GY_GC_GENERATIONS];
    gy_gc_get_stats(g);
    long collections[GY_GC_GENERATIONS], collected[GY_GC_GENERATIONS],
        uncollectable[GY_GC_GENERATIONS];
    for (int i = 0; i < GY_GC_GENERATIONS; i++) {
        collections[i] = (long)g[i].collections;
        collected[i] = (long)g[i].collected;
        uncollectable[i] = (long)g[i].uncollectable;
    }
    gy__per_generation(&b, "gyre_gc_collections_total", "counter",
                       "Collections per generation (Python's python_gc_collections_total).",
                       collections);
    gy__per_generation(&b, "gyre_gc_objects_collected_total", "counter",
                       "Objects collected per generation.", collected);
    gy__per_generation(&b, "gyre_gc_objects_uncollectable_total", "counter",
                       "Uncollectable objects found per generation.", uncollectable);
    gy__histogram_render(&b, "gyre_gc_collection_duration_seconds", "Wall time of each collection.",
                         &m->gc_seconds);
    gy__histogram_render(&b, "gyre_gc_pause_seconds",
                         "Time other threads were stopped by each collection.",
                         &m->gc_pause_seconds);
    long t[GY_GC_GENERATIONS], c[GY_GC_GENERATIONS];
    gy_gc_get_threshold(t);
    gy_gc_get_count(c);
    gy__per_generation(&b, "gyre_gc_threshold", "gauge", "Collection thresholds per generation.",
                       t);
    gy__per_generation(&b, "gyre_gc_pending", "gauge",
                       "Counts toward each threshold (what gc.get_count answers).", c);
    gy__family(&b, "gyre_gc_enabled", "gauge", "1 when automatic collection is on.");
    gy__p(&b, "gyre_gc_enabled %d\n", gy_gc_isenabled() ? 1 : 0);
    gy_gc_thread_stats gt;
    gy_gc_get_thread_stats(&gt);
    gy__family(&b, "gyre_gc_thread_state", "gauge",
               "The collector's thread: 0 stopped (stw mode), 1 idle, 2 running, 3 paused.");
    gy__p(&b, "gyre_gc_thread_state %d\n", gt.state);
    gy__family(&b, "gyre_gc_thread_runs_total", "counter",
               "Collections the collector's thread ran.");
    gy__p(&b, "gyre_gc_thread_runs_total %llu\n", (unsigned long long)gt.runs);
    gy__family(&b, "gyre_gc_thread_busy_seconds_total", "counter",
               "Time the collector's thread spent collecting.");
    gy__p(&b, "gyre_gc_thread_busy_seconds_total %.9f\n", (double)gt.busy_ns / 1e9);
    /* The collector thread's counters (gyre/gc.h gy_gc_thread_stats). */
    const struct {
        const char *name, *help;
        uint64_t value;
    } thread_counters[] = {
        {"gyre_gc_thread_increments_total",
         "Increments of the concurrent collections (each ends in an epoch quiescent state).",
         gt.increments},
        {"gyre_gc_thread_handshakes_total",
         "Handshakes the collector's thread made with the attached threads.", gt.handshakes},
        {"gyre_gc_thread_world_stops_total",
         "World stops the collector's thread made (concurrent marking: fallbacks only).",
         gt.world_stops},
        {"gyre_gc_aborted_sets_total",
         "Trash sets found but kept: an upgrade raced the seal, or an anomaly.", gt.aborted_sets},
        {"gyre_gc_anomalies_total",
         "Sets the recount refused with no racing upgrade: a missing barrier (a bug).",
         gt.anomalies},
        {"gyre_gc_fallback_stops_total",
         "Collections validated with the world stopped after three aborted sets.",
         gt.fallback_stops},
    };
    for (size_t i = 0; i < sizeof thread_counters / sizeof thread_counters[0]; i++) {
        gy__family(&b, thread_counters[i].name, "counter", thread_counters[i].help);
        gy__p(&b, "%s %llu\n", thread_counters[i].name,
              (unsigned long long)thread_counters[i].value);
    }
    gy__family(&b, "gyre_gc_thread_epoch_hold_max_seconds", "gauge",
               "Longest epoch section the collector's thread held (delays memory reuse).");
    gy__p(&b, "gyre_gc_thread_epoch_hold_max_seconds %.9f\n", (double)gt.epoch_hold_max_ns / 1e9);
    gy_gc_pacing pace;
    gy_gc_get_pacing(&pace);
    gy__family(
        &b, "gyre_gc_increment_budget_seconds", "gauge",
        "Setting gc_increment_budget_us: the collector's work between epoch quiescent states.");
    gy__p(&b, "gyre_gc_increment_budget_seconds %.6f\n", pace.increment_budget_us / 1e6);
    gy__family(&b, "gyre_gc_pause_goal_seconds", "gauge",
               "Setting gc_pause_goal_us: the longest allocation-throttling wait.");
    gy__p(&b, "gyre_gc_pause_goal_seconds %.6f\n", pace.pause_goal_us / 1e6);
    gy_pause_stats ps;
    gy_runtime_get_pause_stats(&ps);
    gy__family(&b, "gyre_gc_mutator_pause_seconds", "histogram",
               "Pauses timed by the mutators themselves, by kind (program_cascade is the "
               "program's own, not the collector's).");
    for (int k = 0; k < GY_PAUSE_KINDS; k++) {
        uint64_t cum = 0;
        for (int bk = 0; bk < GY_PAUSE_BUCKETS - 1; bk++) {
            cum += ps.hist[k][bk];
            gy__p(&b, "gyre_gc_mutator_pause_seconds_bucket{kind=\"%s\",le=\"%g\"} %llu\n",
                  gy_pause_kind_name(k), (double)(1ull << bk) / 1e6, (unsigned long long)cum);
        }
        gy__p(&b, "gyre_gc_mutator_pause_seconds_bucket{kind=\"%s\",le=\"+Inf\"} %llu\n",
              gy_pause_kind_name(k), (unsigned long long)ps.count[k]);
        gy__p(&b, "gyre_gc_mutator_pause_seconds_sum{kind=\"%s\"} %.9f\n", gy_pause_kind_name(k),
              (double)ps.total_ns[k] / 1e9);
        gy__p(&b, "gyre_gc_mutator_pause_seconds_count{kind=\"%s\"} %llu\n", gy_pause_kind_name(k),
              (unsigned long long)ps.count[k]);
    }
    gy__family(&b, "gyre_gc_mutator_pause_max_seconds", "gauge", "The longest pause of each kind.");
    for (int k = 0; k < GY_PAUSE_KINDS; k++) {
        gy__p(&b, "gyre_gc_mutator_pause_max_seconds{kind=\"%s\"} %.9f\n", gy_pause_kind_name(k),
              (double)ps.max_ns[k] / 1e9);
    }
    gy__family(&b, "gyre_gc_mmu", "gauge",
               "Minimum mutator utilisation since start, worst thread, per window.");
    gy__p(&b, "gyre_gc_mmu{window=\"1ms\"} %.6f\n", ps.mmu_1ms);
    gy__p(&b, "gyre_gc_mmu{window=\"10ms\"} %.6f\n", ps.mmu_10ms);
    gy__family(&b, "gyre_gc_time_to_safepoint_max_seconds", "gauge",
               "The longest wait of a world stop for every thread to park.");
    gy__p(&b, "gyre_gc_time_to_safepoint_max_seconds %.9f\n", (double)ps.ttsp_max_ns / 1e9);
    gy_runtime_stats rt;
    gy_runtime_get_stats(&rt);
    gy__family(&b, "gyre_heap_objects", "gauge", "Live objects in Gyre's heap.");
    gy__p(&b, "gyre_heap_objects %llu\n", (unsigned long long)rt.objects_live);
    gy__family(&b, "gyre_heap_bytes", "gauge", "Bytes of live objects and their storage.");
    gy__p(&b, "gyre_heap_bytes %llu\n", (unsigned long long)rt.bytes_live);
    gy__top_types top = {0};
    gy_types_foreach(gy__top_type, &top);
    gy__family(&b, "gyre_objects", "gauge", "Live objects of the 20 most common types.");
    for (int i = 0; i < top.n; i++) {
        char name[128];
        gy__label(name, sizeof name, top.type[i]->name);
        gy__p(&b, "gyre_objects{type=\"%s\"} %lld\n", name, (long long)top.live[i]);
    }
    gy__family(&b, "gyre_http_requests_total", "counter", "HTTP requests answered.");
    for (size_t r = 0; m->requests != NULL && r <= m->nroutes; r++) {
        char route[160];
        gy__label(route, sizeof route, r < m->nroutes ? srv->router.routes[r].path : "(none)");
        for (int k = 0; k < GY__METRIC_CODES; k++) {
            uint64_t v = atomic_load_explicit(&m->requests[r][k], memory_order_relaxed);
            if (v > 0) {
                char code[8];
                if (k < GY__METRIC_CODES - 1) {
                    snprintf(code, sizeof code, "%d", gy__codes[k]);
                } else {
                    snprintf(code, sizeof code, "other");
                }
                gy__p(&b, "gyre_http_requests_total{route=\"%s\",code=\"%s\"} %llu\n", route, code,
                      (unsigned long long)v);
            }
        }
    }
    gy__histogram_render(&b, "gyre_http_request_duration_seconds",
                         "From a request's parse to its answer being queued.", &m->request_seconds);
    gy__family(&b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    gy__p(&b, "process_resident_memory_bytes %llu\n", (unsigned long long)gy__memory_rss_bytes());
    gy__memory_render(&b);
    if (!gy__buf_append(&b, "", 1)) {
        gy__buf_free(&b);
        return NULL;
    }
    return b.p;
}

/* --- the listener ------------------------------------------------------------------ */

typedef struct gy__mconn {
    uv_tcp_t tcp;
    gy_server *srv;
    llhttp_t parser;
    char url[128];
    size_t ulen;
    bool answered;
} gy__mconn;

typedef struct gy__mwrite {
    uv_write_t req;
    char *data;
} gy__mwrite;

static const llhttp_settings_t *gy__mhttp(void);

static void gy__mclosed(uv_handle_t *h) { free(h); }

/* Close once, whoever asks (a write's end, an error, the final walk). */
static void gy__mclose(uv_handle_t *h) {
    if (!uv_is_closing(h)) {
        uv_close(h, gy__mclosed);
    }
}

/* The plane's `close_handle`: a client connection (its handle's data is
 * the plane's state) frees itself. */
static bool gy__metrics_close_handle(gy_server *srv, void *state, uv_handle_t *h) {
    (void)srv;
    if (state == NULL || h->data != state) {
        return false;
    }
    gy__mclose(h);
    return true;
}

static void gy__mwrite_cb(uv_write_t *req, int status) {
    (void)status;
    gy__mwrite *w = (gy__mwrite *)req;
    gy__mclose((uv_handle_t *)req->handle);
    free(w->data);
    free(w);
}

static void gy__manswer(gy__mconn *c, int status, const char *ctype, const char *body) {
    c->answered = true;
    size_t bl = strlen(body);
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, gy__status_text(status), ctype, bl);
    gy__mwrite *w = malloc(sizeof *w);
    char *data = malloc((size_t)hl + bl);
    if (w == NULL || data == NULL) {
        free(w);
        free(data);
        gy__mclose((uv_handle_t *)&c->tcp);
        return;
    }
    memcpy(data, head, (size_t)hl);
    memcpy(data + hl, body, bl);
    w->data = data;
    uv_buf_t b = uv_buf_init(data, (unsigned)((size_t)hl + bl));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, gy__mwrite_cb) != 0) {
        free(data);
        free(w);
        gy__mclose((uv_handle_t *)&c->tcp);
    }
}

static int gy__mon_url(llhttp_t *p, const char *at, size_t len) {
    gy__mconn *c = p->data;
    if (c->ulen + len >= sizeof c->url) {
        return -1;
    }
    memcpy(c->url + c->ulen, at, len);
    c->ulen += len;
    c->url[c->ulen] = '\0';
    return 0;
}

static int gy__mon_complete(llhttp_t *p) {
    gy__mconn *c = p->data;
    gy_server *srv = c->srv;
    char *q = strchr(c->url, '?');
    if (q != NULL) {
        *q = '\0';
    }
    if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
        gy__manswer(c, 405, "text/plain", "GET only\n");
    } else if (strcmp(c->url, "/metrics") == 0) {
        char *text = gy__metrics_render(srv);
        if (text == NULL) {
            gy__manswer(c, 503, "text/plain", "out of memory\n");
        } else {
            gy__manswer(c, 200, "text/plain; version=0.0.4; charset=utf-8", text);
            free(text);
        }
    } else if (strcmp(c->url, "/healthz") == 0) {
        /* 503 while draining, so load balancers stop sending. */
        if (atomic_load_explicit(&srv->draining, memory_order_relaxed)) {
            gy__manswer(c, 503, "text/plain", "draining\n");
        } else {
            gy__manswer(c, 200, "text/plain", "ok\n");
        }
    } else {
        gy__manswer(c, 404, "text/plain", "not found (/metrics, /healthz)\n");
    }
    return HPE_PAUSED; /* one request per connection */
}

static const llhttp_settings_t *gy__mhttp(void) {
    static llhttp_settings_t s;
    static bool init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_url = gy__mon_url;
        s.on_message_complete = gy__mon_complete;
        init = true; /* control thread only */
    }
    return &s;
}

static void gy__malloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)h;
    (void)hint;
    static _Thread_local char rbuf[4096];
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void gy__mread_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    gy__mconn *c = (gy__mconn *)s;
    gy__ctl_enter(c->srv);
    if (c->answered) {
        return;
    }
    if (n < 0) {
        gy__mclose((uv_handle_t *)&c->tcp);
        return;
    }
    llhttp_errno_t e = llhttp_execute(&c->parser, buf->base, (size_t)n);
    if (e != HPE_OK && e != HPE_PAUSED) {
        gy__manswer(c, 400, "text/plain", "bad request\n");
    }
    if (c->answered) {
        uv_read_stop(s);
    }
}

static void gy__mconnection_cb(uv_stream_t *server, int status) {
    gy_server *srv = server->data;
    gy__ctl_enter(srv);
    if (status < 0) {
        return;
    }
    gy__mconn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return;
    }
    c->srv = srv;
    uv_tcp_init(&srv->ctl, &c->tcp);
    c->tcp.data = gy__server_plane_state(srv, &gy__metrics_plane); /* a client: see close_handle */
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        gy__mclose((uv_handle_t *)&c->tcp);
        return;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, gy__mhttp());
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, gy__malloc_cb, gy__mread_cb);
}

/* The plane's `bind`: metrics_listen, in gy_server_new. */
static int gy__metrics_bind(gy_server *srv, void **state, gy_errmsg *err) {
    gy__metrics *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    m->fd = -1;
    *state = m;
    const char *address = gy_config_str(srv->cfg, "metrics_listen");
    char host[256], port[16];
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    if (gy__split_address(address, host, sizeof host, port, sizeof port) != GY_OK ||
        getaddrinfo(host[0] ? host : NULL, port, &hints, &ai) != 0 || ai == NULL) {
        return gy__server_errmsg(err, GY_EINVAL, "metrics_listen '%s': not a usable HOST:PORT",
                                 address);
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(ai);
        return gy__server_errmsg(err, GY_EIO, "metrics_listen '%s': %s", address, strerror(e));
    }
    freeaddrinfo(ai);
    m->fd = fd;
    return GY_OK;
}

/* The plane's `start`: serve the bound socket on the control loop. */
static int gy__metrics_start(gy_server *srv, void *state, gy_errmsg *err) {
    gy__metrics *m = state;
    int rc = gy__metrics_init(srv, m);
    if (rc != GY_OK) {
        return rc;
    }
    uv_tcp_init(&srv->ctl, &m->tcp);
    m->tcp.data = srv;
    rc = uv_tcp_open(&m->tcp, m->fd);
    if (rc == 0) {
        m->fd = -1;
        rc = uv_listen((uv_stream_t *)&m->tcp, 64, gy__mconnection_cb);
    }
    if (rc != 0) {
        if (err != NULL) {
            err->code = GY_EIO;
            snprintf(err->text, sizeof err->text, "metrics listener: %s", uv_strerror(rc));
        }
        return GY_EIO;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char host[64] = "?";
    int port = 0;
    if (uv_tcp_getsockname(&m->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    gy__server_log(GY_LOG_INFO, "metrics on http://%s:%d/metrics", host, port);
    return GY_OK;
}

const gy__plane gy__metrics_plane = {
    .name = "metrics",
    .bind = gy__metrics_bind,
    .start = gy__metrics_start,
    .close_handle = gy__metrics_close_handle,
    .answered = gy__metrics_request,
    .free = gy__metrics_free,
};
