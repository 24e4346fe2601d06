/* tools/soak.d/loadgen.c: gyre-loadgen, an HTTP/1.1 load driver on libuv and
 * llhttp. It sends a route mix over keep-alive connections either at a
 * constant rate (open loop, wrk2's method) or as fast as the server answers
 * (--rate max, closed loop), and prints one line per second and a summary.
 *
 * Open loop: request i of a thread is due at t0 + i / rate. A due request
 * goes to an idle connection at once, or waits in the backlog until one
 * frees; its latency is measured from the time it was due, never from the
 * time it went out, so a stalled server cannot hide behind the requests it
 * kept the client from sending (coordinated omission). The schedule runs on
 * a 1 ms timer (and after each answer), so a latency includes up to 1 ms of
 * the client's own wait. One request at a time per connection (no
 * pipelining): the connections are the client's concurrency.
 *
 * Threads: each --threads thread owns a libuv loop, its share of the
 * connections and of the rate, and its own statistics (a mutex each, taken
 * per answer by the thread and once a second by the main thread, which sums
 * them). Nothing else is shared.
 *
 * Errors, each counted by kind: an answer whose status is not the one the
 * mix expects (2xx by default), a connection reset or closed with a request
 * in flight, no answer within --timeout, a failed connect, bytes that are
 * not a valid answer (llhttp) or that nobody asked for, a backlog overrun.
 * A connection the server closes between requests (Connection: close after
 * max_requests_per_connection) is reopened and is not an error.
 *
 * Used by ./tools/soak; written to be the engine of issue 17's tools/load. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>
#include <uv.h>

#define LG_EXIT_USAGE 64
#define LG_EXIT_SETUP 2
#define LG_READ_BUF 65536
#define LG_TICK_MS 1
#define LG_RECONNECT_MS 100

/* --- latency histogram ----------------------------------------------------------------- */

/* Log-linear buckets over microseconds (HdrHistogram's shape): values below
 * 64 exactly, then 32 buckets per power of two (at most 3% wide), up to
 * 2^40 us. */
#define LG_SUB_BITS 5
#define LG_SUB (1u << LG_SUB_BITS)
#define LG_LINEAR (2u * LG_SUB)
#define LG_MAX_EXP 40
#define LG_BUCKETS (LG_LINEAR + (LG_MAX_EXP - LG_SUB_BITS - 1) * LG_SUB)

typedef struct lg_hist {
    uint64_t n, max_us;
    uint64_t b[LG_BUCKETS];
} lg_hist;

static unsigned lg_bucket(uint64_t us) {
    if (us < LG_LINEAR) {
        return (unsigned)us;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(us);
    if (msb >= LG_MAX_EXP) {
        return LG_BUCKETS - 1;
    }
    unsigned shift = msb - LG_SUB_BITS; /* us >> shift is in [LG_SUB, 2 LG_SUB) */
    return LG_LINEAR + (msb - LG_SUB_BITS - 1) * LG_SUB + (unsigned)((us >> shift) - LG_SUB);
}

/* The highest value bucket i holds. */
static uint64_t lg_bucket_top(unsigned i) {
    if (i < LG_LINEAR) {
        return i;
    }
    unsigned j = i - LG_LINEAR, msb = j / LG_SUB + LG_SUB_BITS + 1, shift = msb - LG_SUB_BITS;
    return (((uint64_t)(j % LG_SUB + LG_SUB) + 1) << shift) - 1;
}

static void lg_hist_add(lg_hist *h, uint64_t us) {
    h->b[lg_bucket(us)]++;
    h->n++;
    if (us > h->max_us) {
        h->max_us = us;
    }
}

static void lg_hist_merge(lg_hist *into, const lg_hist *from) {
    for (unsigned i = 0; i < LG_BUCKETS; i++) {
        into->b[i] += from->b[i];
    }
    into->n += from->n;
    if (from->max_us > into->max_us) {
        into->max_us = from->max_us;
    }
}

/* The q-quantile (0 < q <= 1) in microseconds: the top of the bucket that
 * holds it, never more than the maximum seen; 0 when empty. */
static uint64_t lg_hist_quantile(const lg_hist *h, double q) {
    if (h->n == 0) {
        return 0;
    }
    uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (want == 0) {
        want = 1;
    }
    for (unsigned i = 0; i < LG_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t top = lg_bucket_top(i);
            return top < h->max_us ? top : h->max_us;
        }
    }
    return h->max_us;
}

/* --- the mix ---------------------------------------------------------------------------- */

typedef struct lg_entry {
    char *label; /* "GET /tree?depth=8" */
    char *bytes; /* the whole request */
    size_t len;
    int expect; /* the expected status, 0 for any 2xx */
    unsigned weight;
} lg_entry;

typedef struct lg_mix {
    lg_entry *e;
    size_t n;
    uint32_t *seq; /* entries in smooth weighted round-robin order */
    size_t seqlen;
} lg_mix;

/* --- statistics ------------------------------------------------------------------------- */

enum {
    LG_ERR_STATUS,
    LG_ERR_RESET,
    LG_ERR_EOF,
    LG_ERR_TIMEOUT,
    LG_ERR_CONNECT,
    LG_ERR_PARSE,
    LG_ERR_OVERRUN,
    LG_ERR_KINDS
};
static const char *const lg_err_names[LG_ERR_KINDS] = {"status",  "reset", "eof",    "timeout",
                                                       "connect", "parse", "overrun"};

typedef struct lg_stats {
    uint64_t sent, done;
    uint64_t err[LG_ERR_KINDS];
    uint64_t status[6]; /* [1] 1xx .. [5] 5xx, [0] anything else */
    uint64_t reconnects;
    uint64_t unsent;                  /* due before the stop, never sent (the backlog then) */
    uint64_t *route_done, *route_err; /* per mix entry */
    lg_hist lat;
} lg_stats;

static int lg_stats_init(lg_stats *s, size_t nroutes) {
    memset(s, 0, sizeof *s);
    s->route_done = calloc(nroutes, sizeof *s->route_done);
    s->route_err = calloc(nroutes, sizeof *s->route_err);
    return s->route_done && s->route_err ? 0 : -1;
}

static void lg_stats_free(lg_stats *s) {
    free(s->route_done);
    free(s->route_err);
}

static uint64_t lg_stats_errors(const lg_stats *s) {
    uint64_t n = 0;
    for (int k = 0; k < LG_ERR_KINDS; k++) {
        n += s->err[k];
    }
    return n;
}

/* into += from. */
static void lg_stats_add(lg_stats *into, const lg_stats *from, size_t nroutes) {
    into->sent += from->sent;
    into->done += from->done;
    for (int k = 0; k < LG_ERR_KINDS; k++) {
        into->err[k] += from->err[k];
    }
    for (int k = 0; k < 6; k++) {
        into->status[k] += from->status[k];
    }
    into->reconnects += from->reconnects;
    into->unsent += from->unsent;
    for (size_t i = 0; i < nroutes; i++) {
        into->route_done[i] += from->route_done[i];
        into->route_err[i] += from->route_err[i];
    }
    lg_hist_merge(&into->lat, &from->lat);
}

/* into += from, then from = 0 (its arrays kept). */
static void lg_stats_drain(lg_stats *into, lg_stats *from, size_t nroutes) {
    lg_stats_add(into, from, nroutes);
    uint64_t *rd = from->route_done, *re = from->route_err;
    memset(rd, 0, nroutes * sizeof *rd);
    memset(re, 0, nroutes * sizeof *re);
    memset(from, 0, sizeof *from);
    from->route_done = rd;
    from->route_err = re;
}

/* --- options ---------------------------------------------------------------------------- */

typedef struct lg_opts {
    struct sockaddr_storage addr;
    char host[300]; /* the Host header */
    double rate;    /* requests per second in all; 0 = max */
    double duration_s, warmup_s, timeout_s;
    int connections, threads;
    const char *mix_path, *csv_path, *json_path;
    bool quiet;
} lg_opts;

/* --- connections and threads ------------------------------------------------------------ */

typedef enum { LG_CLOSED, LG_CONNECTING, LG_IDLE, LG_BUSY, LG_CLOSING } lg_state;

typedef struct lg_pending {
    uint64_t due_ns; /* when it should have gone out */
    uint32_t route;
} lg_pending;

struct lg_worker;

typedef struct lg_conn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_timer_t timer; /* the answer's deadline, or the reconnect delay */
    llhttp_t parser;
    struct lg_worker *w;
    lg_state state;
    bool in_idle;     /* in the idle queue (perhaps stale: checked when taken) */
    bool answered;    /* the request in flight has its whole answer */
    bool keep_alive;  /* ...and the server keeps the connection */
    bool slow_reopen; /* the connect failed: reopen after LG_RECONNECT_MS */
    int status;
    uint32_t route;
    uint64_t due_ns;
    char rbuf[LG_READ_BUF];
} lg_conn;

typedef struct lg_worker {
    uv_loop_t loop;
    uv_timer_t tick;
    uv_async_t wake; /* the main thread asks for the stop */
    pthread_t thread;
    const lg_opts *o;
    const lg_mix *mix;
    lg_conn *conns;
    int nconns;
    lg_conn **idle; /* a FIFO ring of nconns slots: every connection stays busy */
    int idle_head, nidle;
    lg_pending *backlog; /* a ring */
    size_t bl_head, bl_len, bl_cap;
    double rate; /* this thread's share; 0 = max */
    uint64_t t0_ns, drain_end_ns, issued;
    size_t next_seq;
    int in_flight;
    bool stopping, closing;
    _Atomic bool stop_asked; /* relaxed is enough: the async handle carries the wake-up */
    pthread_mutex_t lock;    /* guards cur, backlog_now, open_now */
    lg_stats cur;            /* since the main thread last took them */
    size_t backlog_now;
    int open_now;
} lg_worker;

static llhttp_settings_t lg_parser_settings;

static void lg_conn_open(lg_conn *c);
static void lg_conn_close(lg_conn *c);
static void lg_dispatch(lg_worker *w);

static uint64_t lg_now(void) { return uv_hrtime(); }

static void lg_count_err(lg_worker *w, uint32_t route, int kind) {
    pthread_mutex_lock(&w->lock);
    w->cur.err[kind]++;
    if (route != UINT32_MAX) {
        w->cur.route_err[route]++;
    }
    pthread_mutex_unlock(&w->lock);
}

/* Idle connections wait in a FIFO, so that each one is used in turn (a
 * stack would leave the bottom ones idle long enough for the server's idle
 * deadline to close them, racing a request). A connection is in the ring at
 * most once; one closed meanwhile is skipped when taken. */
static void lg_push_idle(lg_conn *c) {
    lg_worker *w = c->w;
    if (!c->in_idle) {
        c->in_idle = true;
        w->idle[(w->idle_head + w->nidle) % w->nconns] = c;
        w->nidle++;
    }
}

static lg_conn *lg_pop_idle(lg_worker *w) {
    while (w->nidle > 0) {
        lg_conn *c = w->idle[w->idle_head];
        w->idle_head = (w->idle_head + 1) % w->nconns;
        w->nidle--;
        c->in_idle = false;
        if (c->state == LG_IDLE) {
            return c;
        }
    }
    return NULL;
}

/* Backlog: a growing ring of due requests, oldest first. */
static bool lg_backlog_push(lg_worker *w, lg_pending p) {
    if (w->bl_len == w->bl_cap) {
        size_t cap = w->bl_cap ? w->bl_cap * 2 : 1024;
        if (cap > (size_t)1 << 20) {
            return false; /* 1M requests behind: the server is not keeping up at all */
        }
        lg_pending *nb = malloc(cap * sizeof *nb);
        if (nb == NULL) {
            return false;
        }
        for (size_t i = 0; i < w->bl_len; i++) {
            nb[i] = w->backlog[(w->bl_head + i) % w->bl_cap];
        }
        free(w->backlog);
        w->backlog = nb;
        w->bl_head = 0;
        w->bl_cap = cap;
    }
    w->backlog[(w->bl_head + w->bl_len) % w->bl_cap] = p;
    w->bl_len++;
    return true;
}

static lg_pending lg_backlog_pop(lg_worker *w) {
    lg_pending p = w->backlog[w->bl_head];
    w->bl_head = (w->bl_head + 1) % w->bl_cap;
    w->bl_len--;
    return p;
}

static uint32_t lg_next_route(lg_worker *w) {
    uint32_t r = w->mix->seq[w->next_seq];
    w->next_seq = (w->next_seq + 1) % w->mix->seqlen;
    return r;
}

/* Every request due by now joins the backlog (open loop only): request i is
 * due at t0 + i / rate, so floor(elapsed * rate) + 1 of them are. */
static void lg_schedule(lg_worker *w) {
    if (w->rate <= 0 || w->stopping) {
        return;
    }
    uint64_t now = lg_now();
    double elapsed = (double)(now - w->t0_ns) / 1e9;
    uint64_t due = (uint64_t)(elapsed * w->rate) + 1;
    while (w->issued < due) {
        lg_pending p = {w->t0_ns + (uint64_t)((double)w->issued * 1e9 / w->rate), lg_next_route(w)};
        w->issued++;
        if (!lg_backlog_push(w, p)) {
            lg_count_err(w, p.route, LG_ERR_OVERRUN);
        }
    }
}

static void lg_on_write(uv_write_t *req, int status) {
    lg_conn *c = req->data;
    if (status < 0 && status != UV_ECANCELED && c->state == LG_BUSY) {
        lg_count_err(c->w, c->route, status == UV_ECONNRESET ? LG_ERR_RESET : LG_ERR_EOF);
        c->w->in_flight--;
        c->state = LG_IDLE; /* counted: closing must not count it again */
        lg_conn_close(c);
    }
}

static void lg_on_timeout(uv_timer_t *t) {
    lg_conn *c = t->data;
    if (c->state == LG_BUSY) {
        lg_count_err(c->w, c->route, LG_ERR_TIMEOUT);
        c->w->in_flight--;
        c->state = LG_IDLE;
        lg_conn_close(c);
    } else if (c->state == LG_CLOSED && !c->w->stopping) {
        lg_conn_open(c); /* the reconnect delay is over */
    }
}

static void lg_send(lg_conn *c, uint32_t route, uint64_t due_ns) {
    lg_worker *w = c->w;
    const lg_entry *e = &w->mix->e[route];
    c->state = LG_BUSY;
    c->route = route;
    c->due_ns = due_ns;
    c->answered = false;
    w->in_flight++;
    llhttp_reset(&c->parser);
    pthread_mutex_lock(&w->lock);
    w->cur.sent++;
    pthread_mutex_unlock(&w->lock);
    uv_timer_start(&c->timer, lg_on_timeout, (uint64_t)(w->o->timeout_s * 1000), 0);
    uv_buf_t buf = uv_buf_init(e->bytes, (unsigned)e->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n == (int)e->len) {
        return;
    }
    if (n > 0) {
        buf.base += n;
        buf.len -= (size_t)n;
    } else if (n != UV_EAGAIN) {
        lg_count_err(w, route, n == UV_ECONNRESET ? LG_ERR_RESET : LG_ERR_EOF);
        w->in_flight--;
        c->state = LG_IDLE;
        lg_conn_close(c);
        return;
    }
    /* The rest from the mix's own bytes, which outlive every write. */
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, lg_on_write) != 0) {
        lg_count_err(w, route, LG_ERR_EOF);
        w->in_flight--;
        c->state = LG_IDLE;
        lg_conn_close(c);
    }
}

/* Give idle connections work: the backlog first (open loop), or the next
 * route at once (closed loop). */
static void lg_dispatch(lg_worker *w) {
    if (w->stopping) {
        return;
    }
    for (;;) {
        if (w->rate > 0 && w->bl_len == 0) {
            return;
        }
        lg_conn *c = lg_pop_idle(w);
        if (c == NULL) {
            return;
        }
        if (w->rate > 0) {
            lg_pending p = lg_backlog_pop(w);
            lg_send(c, p.route, p.due_ns);
        } else {
            lg_send(c, lg_next_route(w), lg_now());
        }
    }
}

static void lg_on_close(uv_handle_t *h) {
    lg_conn *c = h->data;
    c->state = LG_CLOSED;
    pthread_mutex_lock(&c->w->lock);
    c->w->open_now--;
    pthread_mutex_unlock(&c->w->lock);
    if (c->w->stopping) {
        return;
    }
    if (c->slow_reopen) {
        c->slow_reopen = false; /* a refused connect must not spin */
        uv_timer_start(&c->timer, lg_on_timeout, LG_RECONNECT_MS, 0);
    } else {
        lg_conn_open(c);
    }
}

/* Close the socket; a request still in flight is an error of `kind`. */
static void lg_conn_fail(lg_conn *c, int kind) {
    if (c->state == LG_BUSY) {
        lg_count_err(c->w, c->route, kind);
        c->w->in_flight--;
    }
    lg_conn_close(c);
}

static void lg_conn_close(lg_conn *c) {
    if (c->state == LG_CLOSING || c->state == LG_CLOSED) {
        return;
    }
    uv_timer_stop(&c->timer);
    c->state = LG_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, lg_on_close);
}

static void lg_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    lg_conn *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

/* An answer is complete: count it and pause the parser, so that bytes after
 * it (which nobody asked for) show up as an error. */
static int lg_on_message_complete(llhttp_t *p) {
    lg_conn *c = p->data;
    int status = llhttp_get_status_code(p);
    if (status >= 100 && status < 200) {
        return 0; /* interim (100 Continue): the real answer follows */
    }
    c->status = status;
    c->keep_alive = llhttp_should_keep_alive(p) != 0;
    c->answered = true;
    return HPE_PAUSED;
}

static void lg_answered(lg_conn *c) {
    lg_worker *w = c->w;
    const lg_entry *e = &w->mix->e[c->route];
    uint64_t now = lg_now();
    uint64_t us = now > c->due_ns ? (now - c->due_ns) / 1000 : 0;
    bool ok = e->expect ? c->status == e->expect : (c->status >= 200 && c->status < 300);
    pthread_mutex_lock(&w->lock);
    w->cur.done++;
    w->cur.route_done[c->route]++;
    w->cur.status[c->status >= 100 && c->status < 600 ? c->status / 100 : 0]++;
    if (!ok) {
        w->cur.err[LG_ERR_STATUS]++;
        w->cur.route_err[c->route]++;
    }
    lg_hist_add(&w->cur.lat, us);
    pthread_mutex_unlock(&w->lock);
    uv_timer_stop(&c->timer);
    w->in_flight--;
    c->state = LG_IDLE;
}

static void lg_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    lg_conn *c = s->data;
    lg_worker *w = c->w;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        if (c->state == LG_BUSY && nread == UV_EOF) {
            llhttp_finish(&c->parser);
            if (c->answered) {
                lg_answered(c); /* an answer delimited by the close */
            }
        }
        lg_conn_fail(c, nread == UV_EOF ? LG_ERR_EOF : LG_ERR_RESET);
        return;
    }
    if (c->state != LG_BUSY) {
        lg_count_err(w, UINT32_MAX, LG_ERR_PARSE); /* bytes nobody asked for */
        lg_conn_close(c);
        return;
    }
    llhttp_errno_t rc = llhttp_execute(&c->parser, buf->base, (size_t)nread);
    if (rc == HPE_PAUSED && c->answered) {
        const char *end = llhttp_get_error_pos(&c->parser);
        llhttp_resume(&c->parser);
        lg_answered(c);
        if (end != NULL && end < buf->base + nread) {
            lg_count_err(w, UINT32_MAX, LG_ERR_PARSE); /* more than the one answer */
            lg_conn_close(c);
        } else if (!c->keep_alive) {
            lg_conn_close(c); /* the server's choice (max requests): reopened */
            pthread_mutex_lock(&w->lock);
            w->cur.reconnects++;
            pthread_mutex_unlock(&w->lock);
        } else {
            lg_push_idle(c);
        }
        lg_schedule(w);
        lg_dispatch(w);
    } else if (rc != HPE_OK) {
        lg_conn_fail(c, LG_ERR_PARSE);
    }
}

static void lg_on_connect(uv_connect_t *req, int status) {
    lg_conn *c = req->data;
    if (c->state != LG_CONNECTING) {
        return; /* closed while connecting (the stop) */
    }
    if (status < 0) {
        lg_count_err(c->w, UINT32_MAX, LG_ERR_CONNECT);
        c->slow_reopen = true;
        lg_conn_close(c);
        return;
    }
    c->state = LG_IDLE;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, lg_alloc, lg_on_read);
    lg_push_idle(c);
    lg_schedule(c->w);
    lg_dispatch(c->w);
}

static void lg_conn_open(lg_conn *c) {
    lg_worker *w = c->w;
    if (uv_tcp_init(&w->loop, &c->tcp) != 0) {
        lg_count_err(w, UINT32_MAX, LG_ERR_CONNECT);
        uv_timer_start(&c->timer, lg_on_timeout, LG_RECONNECT_MS, 0);
        return;
    }
    c->tcp.data = c;
    c->connect_req.data = c;
    c->state = LG_CONNECTING;
    pthread_mutex_lock(&w->lock);
    w->open_now++;
    pthread_mutex_unlock(&w->lock);
    if (uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&w->o->addr,
                       lg_on_connect) != 0) {
        lg_count_err(w, UINT32_MAX, LG_ERR_CONNECT);
        c->slow_reopen = true;
        lg_conn_close(c);
    }
}

static void lg_close_walk(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

/* The stop: no new requests; answers in flight may arrive until the drain
 * deadline (--timeout), after which they count as timeouts; then every
 * handle closes and the loop ends. */
static void lg_stop_begin(lg_worker *w) {
    if (w->stopping) {
        return;
    }
    w->stopping = true;
    w->drain_end_ns = lg_now() + (uint64_t)(w->o->timeout_s * 1e9);
    pthread_mutex_lock(&w->lock);
    w->cur.unsent += w->bl_len; /* due but never sent: not requests the server saw */
    pthread_mutex_unlock(&w->lock);
    w->bl_len = 0;
}

static void lg_on_tick(uv_timer_t *t) {
    lg_worker *w = t->data;
    uint64_t now = lg_now();
    if (!w->stopping && atomic_load_explicit(&w->stop_asked, memory_order_relaxed)) {
        lg_stop_begin(w);
    }
    if (w->stopping) {
        if (w->closing) {
            return;
        }
        if (w->in_flight == 0 || now >= w->drain_end_ns) {
            for (int i = 0; i < w->nconns; i++) {
                lg_conn_fail(&w->conns[i], LG_ERR_TIMEOUT);
            }
            w->closing = true;
            uv_walk(&w->loop, lg_close_walk, NULL);
        }
        return;
    }
    lg_schedule(w);
    lg_dispatch(w);
    pthread_mutex_lock(&w->lock);
    w->backlog_now = w->bl_len;
    pthread_mutex_unlock(&w->lock);
}

static void lg_on_wake(uv_async_t *a) {
    (void)a; /* lg_on_tick reads stop_asked within the millisecond */
}

static void *lg_worker_main(void *arg) {
    lg_worker *w = arg;
    w->t0_ns = lg_now(); /* the schedule's origin; the main thread says when it ends */
    for (int i = 0; i < w->nconns; i++) {
        lg_conn_open(&w->conns[i]);
    }
    uv_timer_start(&w->tick, lg_on_tick, LG_TICK_MS, LG_TICK_MS);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int lg_worker_init(lg_worker *w, const lg_opts *o, const lg_mix *mix, int nconns,
                          double rate, size_t first_seq) {
    memset(w, 0, sizeof *w);
    w->o = o;
    w->mix = mix;
    w->nconns = nconns;
    w->rate = rate;
    w->next_seq = first_seq % mix->seqlen;
    pthread_mutex_init(&w->lock, NULL);
    if (lg_stats_init(&w->cur, mix->n) != 0 || uv_loop_init(&w->loop) != 0) {
        return -1;
    }
    w->conns = calloc((size_t)nconns, sizeof *w->conns);
    w->idle = calloc((size_t)nconns, sizeof *w->idle);
    if (w->conns == NULL || w->idle == NULL) {
        return -1;
    }
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    uv_async_init(&w->loop, &w->wake, lg_on_wake);
    for (int i = 0; i < nconns; i++) {
        lg_conn *c = &w->conns[i];
        c->w = w;
        c->state = LG_CLOSED;
        uv_timer_init(&w->loop, &c->timer);
        c->timer.data = c;
        llhttp_init(&c->parser, HTTP_RESPONSE, &lg_parser_settings);
        c->parser.data = c;
    }
    return 0;
}

/* --- option and mix parsing ------------------------------------------------------------- */

static void lg_usage(FILE *f) {
    fputs("usage: gyre-loadgen --url http://HOST:PORT [--rate R|max] [--duration S]\n"
          "       [--connections C] [--threads T] [--mix FILE] [--warmup S] [--timeout S]\n"
          "       [--csv FILE] [--json FILE] [--quiet]\n"
          "\n"
          "Sends HTTP/1.1 requests over C keep-alive connections (default 64), one in\n"
          "flight per connection, for S seconds (default 10).\n"
          "  --rate R     R requests per second in all, on a fixed schedule; each latency\n"
          "               is measured from the request's due time (open loop)\n"
          "  --rate max   as fast as the server answers (closed loop; the default)\n"
          "  --threads T  event loops sharing connections and rate (default 1)\n"
          "  --warmup S   leave the first S seconds out of the rate and latencies\n"
          "               (errors are counted from the start)\n"
          "  --timeout S  an answer later than S seconds is an error (default 10)\n"
          "  --mix FILE   the requests, one line each (default: 1 GET /):\n"
          "                 WEIGHT METHOD TARGET [expect=STATUS] [bodysize=N | body=TEXT...]\n"
          "               sent in smooth weighted round-robin order; '#' starts a comment;\n"
          "               a reply is an error unless 2xx (or STATUS when given)\n"
          "  --csv FILE   one row per second: t_s,sent,done,errors,backlog,open,\n"
          "               p50_ms,p90_ms,p99_ms,max_ms\n"
          "  --json FILE  the summary as JSON (rate, errors by kind, statuses, latency\n"
          "               percentiles, per route counts)\n"
          "Exit: 0 no errors, 1 errors, 2 setup failure, 64 bad usage.\n",
          f);
}

__attribute__((format(printf, 1, 2))) static int lg_bad(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gyre-loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (--help)\n", stderr);
    va_end(ap);
    return LG_EXIT_USAGE;
}

static bool lg_parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno != 0 || !(v >= lo && v <= hi)) {
        return false;
    }
    *out = v;
    return true;
}

/* http://HOST:PORT[/...] with HOST an IPv4 address, [IPv6] or localhost. */
static int lg_parse_url(const char *url, lg_opts *o) {
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0) {
        return lg_bad("--url %s: only http:// URLs", url);
    }
    p += 7;
    char host[256];
    const char *colon;
    bool v6 = *p == '[';
    if (v6) {
        const char *close = strchr(p, ']');
        if (close == NULL || close[1] != ':') {
            return lg_bad("--url %s: [IPv6]:PORT expected", url);
        }
        colon = close + 1;
        if ((size_t)(close - p - 1) >= sizeof host) {
            return lg_bad("--url %s: host too long", url);
        }
        memcpy(host, p + 1, (size_t)(close - p - 1));
        host[close - p - 1] = '\0';
    } else {
        colon = strchr(p, ':');
        if (colon == NULL || (size_t)(colon - p) >= sizeof host) {
            return lg_bad("--url %s: HOST:PORT expected", url);
        }
        memcpy(host, p, (size_t)(colon - p));
        host[colon - p] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || (*end != '\0' && *end != '/') || port < 1 || port > 65535) {
        return lg_bad("--url %s: bad port", url);
    }
    const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    int rc = v6 ? uv_ip6_addr(ip, (int)port, (struct sockaddr_in6 *)&o->addr)
                : uv_ip4_addr(ip, (int)port, (struct sockaddr_in *)&o->addr);
    if (rc != 0) {
        return lg_bad("--url %s: the host must be an IP address or localhost", url);
    }
    snprintf(o->host, sizeof o->host, "%s%s%s:%ld", v6 ? "[" : "", host, v6 ? "]" : "", port);
    return 0;
}

static int lg_add_entry(lg_mix *m, const lg_opts *o, unsigned weight, const char *method,
                        const char *target, int expect, const char *body, size_t body_len) {
    lg_entry *ne = realloc(m->e, (m->n + 1) * sizeof *ne);
    if (ne == NULL) {
        return -1;
    }
    m->e = ne;
    lg_entry *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    bool has_body = body_len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
    size_t cap = strlen(method) + strlen(target) + strlen(o->host) + body_len + 200;
    e->bytes = malloc(cap);
    size_t llen = strlen(method) + strlen(target) + 2;
    e->label = malloc(llen);
    if (e->bytes == NULL || e->label == NULL) {
        free(e->bytes);
        free(e->label);
        return -1;
    }
    snprintf(e->label, llen, "%s %s", method, target);
    int n = snprintf(e->bytes, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, o->host);
    if (has_body) {
        n +=
            snprintf(e->bytes + n, cap - (size_t)n,
                     "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n", body_len);
    }
    n += snprintf(e->bytes + n, cap - (size_t)n, "\r\n");
    memcpy(e->bytes + n, body, body_len);
    e->len = (size_t)n + body_len;
    e->expect = expect;
    e->weight = weight;
    m->n++;
    return 0;
}

/* One mix line; returns 0, or 64 with a message naming path:line. */
static int lg_parse_mix_line(lg_mix *m, const lg_opts *o, char *line, const char *path,
                             int lineno) {
    char *save = NULL, *w = strtok_r(line, " \t", &save);
    if (w == NULL || *w == '#') {
        return 0;
    }
    char *method = strtok_r(NULL, " \t", &save), *target = strtok_r(NULL, " \t", &save);
    char *end;
    long weight = strtol(w, &end, 10);
    if (*end != '\0' || weight < 1 || weight > 100000 || method == NULL || target == NULL ||
        target[0] != '/') {
        return lg_bad("%s:%d: WEIGHT METHOD /TARGET expected", path, lineno);
    }
    int expect = 0;
    char *body = NULL;
    size_t body_len = 0;
    bool body_alloc = false;
    for (char *opt; (opt = strtok_r(NULL, " \t", &save)) != NULL;) {
        if (strncmp(opt, "expect=", 7) == 0) {
            long v = strtol(opt + 7, &end, 10);
            if (*end != '\0' || v < 100 || v > 599) {
                return lg_bad("%s:%d: expect=STATUS (100..599)", path, lineno);
            }
            expect = (int)v;
        } else if (strncmp(opt, "bodysize=", 9) == 0) {
            long v = strtol(opt + 9, &end, 10);
            if (*end != '\0' || v < 0 || v > (1L << 24)) {
                return lg_bad("%s:%d: bodysize=N (0..16777216)", path, lineno);
            }
            body = malloc((size_t)v + 1);
            if (body == NULL) {
                return LG_EXIT_SETUP;
            }
            memset(body, 'x', (size_t)v);
            body_len = (size_t)v;
            body_alloc = true;
        } else if (strncmp(opt, "body=", 5) == 0) {
            body = opt + 5; /* the rest of the line, spaces included */
            if (save != NULL && *save != '\0') {
                body[strlen(body)] = ' ';
            }
            body_len = strlen(body);
            break;
        } else {
            return lg_bad("%s:%d: unknown option '%s'", path, lineno, opt);
        }
    }
    int rc =
        lg_add_entry(m, o, (unsigned)weight, method, target, expect, body ? body : "", body_len);
    if (body_alloc) {
        free(body);
    }
    return rc == 0 ? 0 : LG_EXIT_SETUP;
}

/* Smooth weighted round-robin (nginx): weights 5,1,1 give a a b a c a a. */
static int lg_mix_sequence(lg_mix *m) {
    size_t total = 0;
    for (size_t i = 0; i < m->n; i++) {
        total += m->e[i].weight;
    }
    m->seq = malloc(total * sizeof *m->seq);
    long *cur = calloc(m->n, sizeof *cur);
    if (m->seq == NULL || cur == NULL) {
        free(cur);
        return -1;
    }
    for (size_t k = 0; k < total; k++) {
        size_t best = 0;
        for (size_t i = 0; i < m->n; i++) {
            cur[i] += (long)m->e[i].weight;
            if (cur[i] > cur[best]) {
                best = i;
            }
        }
        cur[best] -= (long)total;
        m->seq[k] = (uint32_t)best;
    }
    m->seqlen = total;
    free(cur);
    return 0;
}

static int lg_load_mix(lg_mix *m, const lg_opts *o) {
    memset(m, 0, sizeof *m);
    if (o->mix_path == NULL) {
        if (lg_add_entry(m, o, 1, "GET", "/", 0, "", 0) != 0) {
            return LG_EXIT_SETUP;
        }
    } else {
        FILE *f = fopen(o->mix_path, "r");
        if (f == NULL) {
            return lg_bad("--mix %s: %s", o->mix_path, strerror(errno));
        }
        char line[8192];
        int lineno = 0, rc = 0;
        while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
            lineno++;
            line[strcspn(line, "\r\n")] = '\0';
            rc = lg_parse_mix_line(m, o, line, o->mix_path, lineno);
        }
        fclose(f);
        if (rc != 0) {
            return rc;
        }
        if (m->n == 0) {
            return lg_bad("--mix %s: no requests", o->mix_path);
        }
    }
    return lg_mix_sequence(m) == 0 ? 0 : LG_EXIT_SETUP;
}

static int lg_parse_args(int argc, char **argv, lg_opts *o) {
    memset(o, 0, sizeof *o);
    o->duration_s = 10;
    o->timeout_s = 10;
    o->connections = 64;
    o->threads = 1;
    bool have_url = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            lg_usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--quiet") == 0) {
            o->quiet = true;
            continue;
        }
        if (i + 1 >= argc) {
            return lg_bad("%s: unknown option or missing value", a);
        }
        const char *v = argv[++i];
        double d;
        if (strcmp(a, "--url") == 0) {
            int rc = lg_parse_url(v, o);
            if (rc != 0) {
                return rc;
            }
            have_url = true;
        } else if (strcmp(a, "--rate") == 0) {
            if (strcmp(v, "max") == 0) {
                o->rate = 0;
            } else if (lg_parse_double(v, 0.001, 1e8, &d)) {
                o->rate = d;
            } else {
                return lg_bad("--rate %s: a positive number or max", v);
            }
        } else if (strcmp(a, "--duration") == 0 && lg_parse_double(v, 0.001, 1e7, &d)) {
            o->duration_s = d;
        } else if (strcmp(a, "--warmup") == 0 && lg_parse_double(v, 0, 1e7, &d)) {
            o->warmup_s = d;
        } else if (strcmp(a, "--timeout") == 0 && lg_parse_double(v, 0.001, 3600, &d)) {
            o->timeout_s = d;
        } else if (strcmp(a, "--connections") == 0 && lg_parse_double(v, 1, 100000, &d) &&
                   d == floor(d)) {
            o->connections = (int)d;
        } else if (strcmp(a, "--threads") == 0 && lg_parse_double(v, 1, 256, &d) && d == floor(d)) {
            o->threads = (int)d;
        } else if (strcmp(a, "--mix") == 0) {
            o->mix_path = v;
        } else if (strcmp(a, "--csv") == 0) {
            o->csv_path = v;
        } else if (strcmp(a, "--json") == 0) {
            o->json_path = v;
        } else {
            return lg_bad("%s %s: unknown option or bad value", a, v);
        }
    }
    if (!have_url) {
        return lg_bad("--url is required");
    }
    if (o->threads > o->connections) {
        return lg_bad("--threads %d: more threads than connections (%d)", o->threads,
                      o->connections);
    }
    if (o->warmup_s >= o->duration_s) {
        return lg_bad("--warmup %g: must be shorter than --duration %g", o->warmup_s,
                      o->duration_s);
    }
    return 0;
}

/* --- the main thread: per-second rows and the summary ---------------------------------- */

typedef struct lg_main {
    lg_opts o;
    lg_mix mix;
    lg_worker *workers;
    uv_loop_t loop;
    uv_timer_t second, end;
    uv_signal_t sigint, sigterm;
    uint64_t t0_ns, measure_from_ns, last_row_ns, measured_ns;
    lg_stats all, measured;
    FILE *csv;
    bool stopped;
} lg_main;

static void lg_fmt_ms(char *out, size_t n, uint64_t us) { snprintf(out, n, "%.3f", us / 1e3); }

/* Take every thread's statistics since the last call into s (zeroed first). */
static void lg_harvest(lg_main *m, lg_stats *s, size_t *backlog, int *open) {
    *backlog = 0;
    *open = 0;
    for (int t = 0; t < m->o.threads; t++) {
        lg_worker *w = &m->workers[t];
        pthread_mutex_lock(&w->lock);
        lg_stats_drain(s, &w->cur, m->mix.n);
        *backlog += w->backlog_now;
        *open += w->open_now;
        pthread_mutex_unlock(&w->lock);
    }
}

/* One row: what the threads did since the last row. It goes into `all`,
 * and into `measured` when it began after the warm-up. */
static void lg_take_second(lg_main *m) {
    lg_stats s;
    size_t backlog;
    int open;
    if (lg_stats_init(&s, m->mix.n) != 0) {
        return;
    }
    lg_harvest(m, &s, &backlog, &open);
    uint64_t now = lg_now();
    double t = (double)(now - m->t0_ns) / 1e9;
    bool measured = m->last_row_ns + 1000000 >= m->measure_from_ns;
    if (measured) {
        lg_stats_add(&m->measured, &s, m->mix.n);
        m->measured_ns += now - m->last_row_ns;
    }
    m->last_row_ns = now;
    lg_stats_add(&m->all, &s, m->mix.n);
    char p50[32], p90[32], p99[32], mx[32];
    lg_fmt_ms(p50, sizeof p50, lg_hist_quantile(&s.lat, 0.50));
    lg_fmt_ms(p90, sizeof p90, lg_hist_quantile(&s.lat, 0.90));
    lg_fmt_ms(p99, sizeof p99, lg_hist_quantile(&s.lat, 0.99));
    lg_fmt_ms(mx, sizeof mx, s.lat.max_us);
    uint64_t errors = lg_stats_errors(&s);
    if (m->csv != NULL) {
        fprintf(m->csv, "%.3f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%zu,%d,%s,%s,%s,%s\n", t, s.sent,
                s.done, errors, backlog, open, p50, p90, p99, mx);
        fflush(m->csv);
    }
    if (!m->o.quiet) {
        fprintf(stderr,
                "%7.1fs %8" PRIu64 " answers  p50 %s ms  p99 %s ms  max %s ms  errors %" PRIu64
                "  backlog %zu%s\n",
                t, s.done, p50, p99, mx, errors, backlog, measured ? "" : "  (warm-up)");
    }
    lg_stats_free(&s);
}

static void lg_on_second(uv_timer_t *t) { lg_take_second(t->data); }

/* The schedule's end, or a signal: the threads stop (answers in flight may
 * still arrive) and the main loop ends. */
static void lg_ask_stop(lg_main *m) {
    if (m->stopped) {
        return;
    }
    m->stopped = true;
    for (int t = 0; t < m->o.threads; t++) {
        atomic_store_explicit(&m->workers[t].stop_asked, true, memory_order_relaxed);
        uv_async_send(&m->workers[t].wake);
    }
    uv_close((uv_handle_t *)&m->second, NULL);
    uv_close((uv_handle_t *)&m->end, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
    uv_close((uv_handle_t *)&m->sigterm, NULL);
}

static void lg_on_end(uv_timer_t *t) { lg_ask_stop(t->data); }

static void lg_on_signal(uv_signal_t *s, int signum) {
    (void)signum;
    lg_ask_stop(s->data);
}

static void lg_json_escape(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            fprintf(f, "\\%c", ch);
        } else if (ch < 0x20) {
            fprintf(f, "\\u%04x", ch);
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

static const double lg_quantiles[] = {0.5, 0.9, 0.99, 0.999, 0.9999};
static const char *const lg_quantile_names[] = {"p50", "p90", "p99", "p99.9", "p99.99"};

static void lg_write_json(const lg_main *m, FILE *f, double measured_s) {
    const lg_stats *a = &m->all, *ms = &m->measured;
    fprintf(f, "{\"target_rate\":");
    if (m->o.rate > 0) {
        fprintf(f, "%.3f", m->o.rate);
    } else {
        fprintf(f, "\"max\"");
    }
    fprintf(f,
            ",\"connections\":%d,\"threads\":%d,\"duration_s\":%.3f,\"warmup_s\":%.3f,"
            "\"measured_s\":%.3f,\"rate\":%.3f,\"sent\":%" PRIu64 ",\"done\":%" PRIu64
            ",\"reconnects\":%" PRIu64 ",\"unsent\":%" PRIu64 ",\"errors\":%" PRIu64
            ",\"errors_by_kind\":{",
            m->o.connections, m->o.threads, (double)(lg_now() - m->t0_ns) / 1e9, m->o.warmup_s,
            measured_s, measured_s > 0 ? (double)ms->done / measured_s : 0.0, a->sent, a->done,
            a->reconnects, a->unsent, lg_stats_errors(a));
    for (int k = 0; k < LG_ERR_KINDS; k++) {
        fprintf(f, "%s\"%s\":%" PRIu64, k ? "," : "", lg_err_names[k], a->err[k]);
    }
    fprintf(f,
            "},\"status\":{\"1xx\":%" PRIu64 ",\"2xx\":%" PRIu64 ",\"3xx\":%" PRIu64
            ",\"4xx\":%" PRIu64 ",\"5xx\":%" PRIu64 ",\"other\":%" PRIu64 "},\"latency_ms\":{",
            a->status[1], a->status[2], a->status[3], a->status[4], a->status[5], a->status[0]);
    for (size_t q = 0; q < sizeof lg_quantiles / sizeof *lg_quantiles; q++) {
        fprintf(f, "\"%s\":%.3f,", lg_quantile_names[q],
                lg_hist_quantile(&ms->lat, lg_quantiles[q]) / 1e3);
    }
    fprintf(f, "\"max\":%.3f},\"routes\":[", ms->lat.max_us / 1e3);
    for (size_t i = 0; i < m->mix.n; i++) {
        fprintf(f, "%s{\"request\":", i ? "," : "");
        lg_json_escape(f, m->mix.e[i].label);
        fprintf(f, ",\"weight\":%u,\"done\":%" PRIu64 ",\"errors\":%" PRIu64 "}",
                m->mix.e[i].weight, a->route_done[i], a->route_err[i]);
    }
    fprintf(f, "]}\n");
}

static void lg_print_summary(const lg_main *m, double measured_s) {
    const lg_stats *a = &m->all, *ms = &m->measured;
    printf("requests: %" PRIu64 " sent, %" PRIu64 " answered; rate %.1f/s over %.1f s", a->sent,
           a->done, measured_s > 0 ? (double)ms->done / measured_s : 0.0, measured_s);
    if (m->o.rate > 0) {
        printf(" (target %.1f/s)", m->o.rate);
    }
    printf("\nlatency (from the due time):");
    for (size_t q = 0; q < sizeof lg_quantiles / sizeof *lg_quantiles; q++) {
        printf(" %s %.3f ms", lg_quantile_names[q],
               lg_hist_quantile(&ms->lat, lg_quantiles[q]) / 1e3);
    }
    printf(" max %.3f ms\nerrors: %" PRIu64, ms->lat.max_us / 1e3, lg_stats_errors(a));
    for (int k = 0; k < LG_ERR_KINDS; k++) {
        if (a->err[k]) {
            printf(" %s %" PRIu64, lg_err_names[k], a->err[k]);
        }
    }
    printf("; reconnects by the server: %" PRIu64, a->reconnects);
    if (a->unsent) {
        printf("; %" PRIu64 " due but unsent at the stop", a->unsent);
    }
    printf("\n");
}

int main(int argc, char **argv) {
    static lg_main m;
    int rc = lg_parse_args(argc, argv, &m.o);
    if (rc != 0) {
        return rc;
    }
    if ((rc = lg_load_mix(&m.mix, &m.o)) != 0) {
        return rc;
    }
    signal(SIGPIPE, SIG_IGN);
    llhttp_settings_init(&lg_parser_settings);
    lg_parser_settings.on_message_complete = lg_on_message_complete;
    if (lg_stats_init(&m.all, m.mix.n) != 0 || lg_stats_init(&m.measured, m.mix.n) != 0) {
        return LG_EXIT_SETUP;
    }
    if (m.o.csv_path != NULL) {
        m.csv = fopen(m.o.csv_path, "w");
        if (m.csv == NULL) {
            fprintf(stderr, "gyre-loadgen: %s: %s\n", m.o.csv_path, strerror(errno));
            return LG_EXIT_SETUP;
        }
        fputs("t_s,sent,done,errors,backlog,open,p50_ms,p90_ms,p99_ms,max_ms\n", m.csv);
    }
    m.workers = calloc((size_t)m.o.threads, sizeof *m.workers);
    if (m.workers == NULL) {
        return LG_EXIT_SETUP;
    }
    for (int t = 0; t < m.o.threads; t++) {
        int n = m.o.connections / m.o.threads + (t < m.o.connections % m.o.threads);
        if (lg_worker_init(&m.workers[t], &m.o, &m.mix, n, m.o.rate / m.o.threads,
                           m.mix.seqlen * (size_t)t / (size_t)m.o.threads) != 0) {
            fprintf(stderr, "gyre-loadgen: out of memory\n");
            return LG_EXIT_SETUP;
        }
    }
    uv_loop_init(&m.loop);
    uv_timer_init(&m.loop, &m.second);
    m.second.data = &m;
    uv_signal_init(&m.loop, &m.sigint);
    uv_signal_init(&m.loop, &m.sigterm);
    m.sigint.data = m.sigterm.data = &m;
    uv_signal_start(&m.sigint, lg_on_signal, SIGINT);
    uv_signal_start(&m.sigterm, lg_on_signal, SIGTERM);
    /* Workers block the signals: the main loop takes them. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    m.t0_ns = m.last_row_ns = lg_now();
    m.measure_from_ns = m.t0_ns + (uint64_t)(m.o.warmup_s * 1e9);
    for (int t = 0; t < m.o.threads; t++) {
        if (pthread_create(&m.workers[t].thread, NULL, lg_worker_main, &m.workers[t]) != 0) {
            fprintf(stderr, "gyre-loadgen: cannot start a thread\n");
            return LG_EXIT_SETUP;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    uv_timer_init(&m.loop, &m.end);
    m.end.data = &m;
    uv_timer_start(&m.second, lg_on_second, 1000, 1000);
    uv_timer_start(&m.end, lg_on_end, (uint64_t)(m.o.duration_s * 1000), 0);
    uv_run(&m.loop, UV_RUN_DEFAULT);
    for (int t = 0; t < m.o.threads; t++) {
        pthread_join(m.workers[t].thread, NULL);
    }
    lg_take_second(&m); /* the last part-second and the answers that came after the stop */
    double measured_s = (double)m.measured_ns / 1e9;
    if (m.csv != NULL) {
        fclose(m.csv);
    }
    lg_print_summary(&m, measured_s);
    if (m.o.json_path != NULL) {
        FILE *f = fopen(m.o.json_path, "w");
        if (f == NULL) {
            fprintf(stderr, "gyre-loadgen: %s: %s\n", m.o.json_path, strerror(errno));
            return LG_EXIT_SETUP;
        }
        lg_write_json(&m, f, measured_s);
        fclose(f);
    }
    return lg_stats_errors(&m.all) == 0 ? 0 : 1;
}
