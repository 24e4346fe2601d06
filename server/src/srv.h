/* server/src/srv.h: the server's internal types, shared by its files.
 *
 * Threads: N loop threads (loop.c), each owning its uv loop, listener and
 * connections; W worker threads (workers.c); the thread that called
 * gy_server_run (server.c), which owns the control loop (drain timer, heap
 * check, the planes: see gy__plane) and is not attached to Gyre while it
 * waits.
 *
 * Ownership of a connection:
 *   gy__io (malloc, loop only) --strong--> gy__conn (Gyre object, loop-affine)
 *   gy__conn.io ---------------------------> gy__io (plain pointer, NULL once closed)
 *   gy__conn.req <--> gy_request.conn      (a cycle, by design)
 *   gy_request.response <--> gy__response.request
 * The io's reference keeps the connection object alive while its socket is
 * open; the socket's close callback frees the io and drops that reference,
 * never a decref.
 */
#ifndef GY_SERVER_SRV_H
#define GY_SERVER_SRV_H

#include <llhttp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "gyre/bytes.h"
#include "gyre/config.h"
#include "gyre/log.h"
#include "gyre/object.h"
#include "gyre/runtime.h"
#include "gyre/server.h"
#include "memory.h"

#define GY__SERVER_NAME "gyred"

/* --- log.c ----------------------------------------------------------------- */
/* One line on stderr: "2026-11-25T21:30:00.123Z info  message". Any thread;
 * one write(2) per line. */
void gy__server_log(gy_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gy__log_set_level(gy_log_level level);
gy_log_level gy__log_get_level(void);
/* The library's own log lines (collector debug output) go to gy__log. */
void gy__log_install_gyre_handler(void);
/* Apply the collector's run-time settings of `cfg` (thresholds, pacing;
 * the settings table has checked their bounds): at start and on reload. */
void gy__apply_gc_settings(const gy_config *cfg);
/* Access log: open `path` (""= off). Returns 0 or GY_EIO (old one kept). */
int gy__access_log_open(const char *path, gy_errmsg *err);
void gy__access_log_close(void);
bool gy__access_log_enabled(void);
void gy__access_log_write(const char *line, size_t len);
/* gy__log_level_parse: "debug", "info", "warn", "error" (the log_level
 * setting's choices; anything else is info). */
gy_log_level gy__log_level_parse(const char *name);
/* gy__server_errmsg: fill err (NULL allowed) with code and a formatted
 * message; returns code, so `return gy__server_errmsg(err, GY_EINVAL, ...)`. */
int gy__server_errmsg(gy_errmsg *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* gy__log_timestamp: ISO 8601 UTC with milliseconds into buf (>= 32). */
void gy__log_timestamp(char *buf, size_t size);

/* --- http.c: RFC 9110 5.6.2 tchar, for names checked anywhere ---------------- */
bool gy__is_tchar(unsigned char c);

/* --- router.c -------------------------------------------------------------- */
typedef struct gy__route {
    char *method;
    char *path;        /* as registered ("/cache/...") */
    size_t prefix_len; /* for "/x/...": strlen("/x/"); else 0 */
    gy_handler_fn handler;
    void *arg;
} gy__route;

typedef struct gy__router {
    gy__route *routes;
    size_t n, cap;
} gy__router;

typedef enum { GY__ROUTE_FOUND, GY__ROUTE_NO_PATH, GY__ROUTE_NO_METHOD } gy__route_result;
int gy__router_add(gy__router *r, const char *method, const char *path, gy_handler_fn fn,
                   void *arg);
void gy__router_free(gy__router *r);
/* Find the route for method and path (path without the query). For
 * NO_METHOD, `allow` receives the methods that exist ("GET, PUT"). */
gy__route_result gy__router_find(const gy__router *r, const char *method, const char *path,
                                 size_t path_len, const gy__route **out, char *allow,
                                 size_t allow_size);

/* --- limits: the run-time mutable settings the loops read ----------------- */
/* Synchronization: relaxed atomics; a reload stores each, a loop reads each
 * when it needs it (a request may see some old and some new values). */
typedef struct gy__limits {
    _Atomic int64_t max_connections, max_header_bytes, max_header_count, max_uri_bytes;
    _Atomic int64_t max_body_bytes, max_requests, header_timeout_ms, body_min_rate;
    _Atomic int64_t idle_timeout_ms, max_heap_bytes, drain_timeout_ms, answer_timeout_ms;
    _Atomic int64_t drain_grace_ms, memory_trim_interval_ms;
    _Atomic bool break_cycles;
} gy__limits;

static inline int64_t gy__lim(_Atomic int64_t *v) {
    return atomic_load_explicit(v, memory_order_relaxed); /* relaxed: a setting */
}

/* --- objects.c: the Gyre types --------------------------------------------- */
typedef struct gy__loop gy__loop;
typedef struct gy__io gy__io;

/* A connection: loop-affine (finalized and freed on its loop). */
typedef struct gy__conn {
    gy_object ob;
    gy_ref req; /* the request being read or answered (then the last one) */
    gy__io *io; /* loop only; NULL once the socket is closed */
    gy__loop *loop;
    uint32_t nrequests;
    char peer[64]; /* "[IPv6]:port" */
} gy__conn;

/* A request's header list: one bytes blob
 * "path\0query\0name\0value\0..." then, 4-aligned at offs_at, uint32_t
 * offsets of each name and value (2 * count). */
typedef struct gy__headers {
    gy_object ob;
    gy_ref blob; /* gy_bytes */
    uint32_t count;
    uint32_t offs_at;
} gy__headers;

struct gy_request {
    gy_object ob;
    gy_ref conn;     /* back-reference: gy__conn */
    gy_ref response; /* gy__response, once answered */
    gy_ref headers;  /* gy__headers */
    gy_ref body;     /* gy_bytes or NULL */
    gy_server *srv;
    gy__loop *loop; /* the loop that read it; answers are written there */
    const gy__route *route;
    const char *method; /* static (llhttp's names) */
    const char *path, *query, *tail;
    uint64_t start_ns;
    uint8_t http_minor;
    bool keep_alive;
    bool head;
    /* A streamed answer (gy_request_stream_begin): its Content-Length, and
     * what the answering thread has handed over so far. */
    bool streaming;
    uint64_t stream_total;
    uint64_t stream_written; /* the answering thread only */
    /* Loop only: decided when the head is written; body bytes queued. */
    bool close_when_done;
    uint64_t body_sent;
    /* 0 open, 1 answered: set under `building` (release: the answer's fields
     * are published with it; readers load it acquire). */
    _Atomic int answered;
    atomic_flag building; /* guards building the answer (respond.c) */
};

/* A response: status, body, extra header lines. */
typedef struct gy__response {
    gy_object ob;
    gy_ref request; /* back-reference */
    gy_ref body;    /* gy_bytes or NULL */
    gy_ref extra;   /* gy_bytes: "Name: value\r\n"... or NULL */
    int status;
    char ctype[56]; /* Content-Type when short (else a line in extra) */
} gy__response;

extern gy_type gy__conn_type, gy__headers_type, gy__request_type, gy__response_type;

/* Breaks request <-> connection and response <-> request (break_cycles). */
void gy__request_break_cycles(gy_request *req);

/* --- respond.c ------------------------------------------------------------- */
/* A growable byte buffer (malloc). */
typedef struct gy__buf {
    char *p;
    size_t len, cap;
} gy__buf;
/* Make room for `more` bytes; false when out of memory (unchanged). */
bool gy__buf_reserve(gy__buf *b, size_t more);
bool gy__buf_append(gy__buf *b, const void *data, size_t len);
void gy__buf_free(gy__buf *b);

const char *gy__status_text(int status);
bool gy__status_has_body(int status);
/* Append the response of `req` (answered) to `out`: status line, Server,
 * Date, Content-Length, the response's own headers, Connection when
 * `close` (or keep-alive for an HTTP/1.0 client), then the body unless HEAD
 * or a status without one. Returns false when out of memory. */
bool gy__response_serialize(gy__buf *out, const gy__loop *loop, const gy_request *req,
                            const gy__response *resp, bool close);
/* A response the server makes without a request object (bad input, limits,
 * overload): always closes the connection unless `keep`. */
/* Mark req answered when nobody has answered it yet, without building a
 * response (the loop then writes a static answer: no memory, or a handler
 * past answer_timeout); a later gy_request_respond gets GY_ESTATE. Returns
 * false when it was already answered. Any thread. */
bool gy__request_claim(gy_request *req);
bool gy__response_simple(gy__buf *out, const gy__loop *loop, int status, const char *extra,
                         const char *body, bool close);

/* --- loop.c ---------------------------------------------------------------- */
typedef enum { GY__POST_ANSWER, GY__POST_CHUNK, GY__POST_WORK_DONE } gy__post_kind;
typedef struct gy__post {
    struct gy__post *next;
    gy__post_kind kind;
    gy_request *req; /* a reference owned by the post */
    gy_bytes *chunk; /* GY__POST_CHUNK: a reference owned by the post */
} gy__post;

struct gy__loop {
    gy_server *srv;
    int index;
    uv_loop_t uv;
    uv_async_t async;
    uv_tcp_t listener;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_timer_t trim_timer; /* every second: the trimmer's tick (memory.h) */
    gy__trimmer trim;
    pthread_t thread;
    int listen_fd;
    bool listening;
    bool quiescent; /* between prepare and the first callback after the poll */
    bool draining_seen;
    bool forced_seen;
    bool done;
    bool started;             /* initialised and its thread created (server thread only) */
    struct gy__after *afters; /* gy_request_after timers (loop only) */
    /* Posts from other threads. Synchronization: post_lock; `closed` says
     * the loop no longer takes posts or wakes. */
    pthread_mutex_t post_lock;
    gy__post *post_head, *post_tail;
    bool closed;
    /* Loop only. */
    gy__io *conns; /* doubly linked */
    uint64_t nconns;
    /* Timers and worker jobs holding a request of this loop (relaxed: a
     * count; the loop reads it only to know when a drain is done). */
    _Atomic uint64_t tasks;
    char date[40];
    int64_t date_sec;
    char server_date[96]; /* "Server: gyred/V\r\nDate: ...\r\n" */
    size_t server_date_len;
    char *rbuf; /* the read buffer, shared by this loop's connections */
    size_t rbuf_size;
    int rc;
};

/* The loop of the calling thread, or NULL. */
gy__loop *gy__loop_current(void);
/* Hand `req` (reference stolen) to its loop; false if the loop is closed
 * (the reference is dropped). Any attached thread. */
bool gy__loop_post(gy__loop *loop, gy__post_kind kind, gy_request *req, gy_bytes *chunk);
/* Whether posts wait for `loop` (any thread; takes post_lock). */
bool gy__loop_has_posts(gy__loop *loop);
int gy__loop_start(gy__loop *loop, gy_errmsg *err);
/* Called by every callback that the poll phase may run while quiescent. */
static inline void gy__loop_enter(gy__loop *loop) {
    if (loop->quiescent) {
        loop->quiescent = false;
        gy_quiescent_end();
    }
}
void gy__loop_update_date(gy__loop *loop);

/* --- conn.c ---------------------------------------------------------------- */
/* Accept a connection from the loop's listener (fd -1) or an accepted fd. */
void gy__conn_accept(gy__loop *loop, int fd);
/* An answer (from the handler, a timer, a post) for req: write it (no
 * response object: gy__respond had no memory; a static 500 and a close). */
void gy__conn_answered(gy__loop *loop, gy_request *req);
/* A piece of a streamed answer (reference stolen): write it. NULL piece:
 * the answer is cut (what was queued goes out, then a close). */
void gy__conn_stream_chunk(gy__loop *loop, gy_request *req, gy_bytes *chunk);
/* The loop drains (close idle connections, mark the rest) or forces. */
void gy__conn_drain_all(gy__loop *loop, bool force);

/* --- workers.c ------------------------------------------------------------- */
typedef struct gy__workers gy__workers;
int gy__workers_start(gy__workers **out, gy_server *srv, int n, size_t queue_max, gy_errmsg *err);
/* Wake every waiting worker (memory.purge: each trims). Returns the number
 * of workers. Any thread; NULL allowed (0). */
int gy__workers_wake(gy__workers *w);
int gy__workers_submit(gy__workers *w, gy_request *req, gy_request_fn fn, void *arg);
/* Finish what is queued, then join. The caller must not be attached. */
void gy__workers_stop(gy__workers *w);
/* From now on queued jobs are dropped instead of run (a forced stop); their
 * requests go back to their loops unanswered. Any thread; NULL allowed. */
void gy__workers_cancel(gy__workers *w);

/* --- planes: what runs beside the HTTP core (server.c) ----------------------- */
/* A plane is a part of the server that the HTTP core does not know by name:
 * server/ops (the operator's plane: the metrics listener and the admin
 * socket) registers its planes from a constructor, and the core calls their
 * hooks at fixed points of a server's life, in registration order (free in
 * the reverse order). The core includes nothing of a plane; a plane may use
 * everything in this header and conn.h. Every hook is optional.
 *
 * `state` is the plane's own state for one server: bind sets it (NULL until
 * then; gy__server_plane_state finds it from anywhere).
 *
 * Which thread calls each hook:
 *   bind          gy_server_new's caller, before any thread of the server
 *   start         the control thread (gy_server_run's caller), attached to
 *                 Gyre as a loop thread, before the HTTP loops start
 *   tick          the control thread, every 100 ms (before the heap check)
 *   close_handle  the control thread, in the final walk of srv->ctl once
 *                 every HTTP loop is done
 *   answered      the thread that sent an answer (any HTTP loop): must be
 *                 thread-safe and must not block
 *   free          gy_server_free's caller, nothing of the server running */
typedef struct gy__plane {
    const char *name;
    /* In gy_server_new, after the HTTP listeners are bound: bind what the
     * plane serves, so a busy port or socket is reported there. Sets
     * *state, also when it fails (free then releases it). Returns 0 or a
     * GY_E* code with err filled: gy_server_new fails with it and the
     * planes after this one are not bound. */
    int (*bind)(gy_server *srv, void **state, gy_errmsg *err);
    /* Start serving on the control loop (srv->ctl). Returns 0 or a GY_E*
     * code with err filled: logged, and the server runs without it. */
    int (*start)(gy_server *srv, void *state, gy_errmsg *err);
    void (*tick)(gy_server *srv, void *state);
    /* h (a handle of srv->ctl, not closing) at the end of gy_server_run:
     * when it is one of the plane's handles that free themselves in their
     * close callback, close it and return true. Handles no plane claims get
     * uv_close(h, NULL): a plane's handles inside its state live until free. */
    bool (*close_handle)(gy_server *srv, void *state, uv_handle_t *h);
    /* An answer went out (route NULL: none matched; dur_ns 0: not timed). */
    void (*answered)(gy_server *srv, void *state, const gy__route *route, int status,
                     uint64_t dur_ns);
    /* Release state (NULL when bind never set it). */
    void (*free)(gy_server *srv, void *state);
} gy__plane;

#define GY__PLANES_MAX 4

/* Register `plane` (static storage; never copied). Only before main, from a
 * constructor (planes are a build-time set: the registry has no lock; a
 * server made earlier would not know the plane). Aborts past
 * GY__PLANES_MAX: a programming error. */
void gy__server_plane_register(const gy__plane *plane);
/* The state `plane` bound for srv, or NULL (not registered, not bound).
 * Any thread. */
void *gy__server_plane_state(const gy_server *srv, const gy__plane *plane);

/* --- server.c -------------------------------------------------------------- */
struct gy_server {
    gy_config *cfg; /* guarded by cfg_lock */
    pthread_rwlock_t cfg_lock;
    gy__limits lim;
    gy__router router;
    int nloops;
    gy__loop *loops;
    int port;
    struct sockaddr_storage addr;
    int addr_len;
    gy__workers *workers;
    int nworkers;
    /* gy_server_main's hooks: signals handled on the control loop. */
    bool handle_signals;
    void (*on_reload)(gy_server *srv, void *arg);
    void *reload_arg;
    uv_loop_t ctl;       /* gy_server_run's loop */
    uv_async_t ctl_wake; /* the control thread's Gyre wake function */
    uv_prepare_t ctl_prepare;
    uv_check_t ctl_check;
    bool ctl_quiescent; /* control thread only, as gy__loop.quiescent */
    /* Per registered plane (gy__planes' order): what its bind set. Written
     * by gy_server_new, read by any thread afterwards, freed by
     * gy_server_free. */
    void *plane_state[GY__PLANES_MAX];
    gy__memory_shared mem; /* memory.purge's generation (memory.h) */
    uv_async_t ctl_async;  /* wakes it: stop requested */
    bool ctl_ready;
    pthread_mutex_t ctl_lock; /* guards ctl_ready against gy_server_stop */
    /* seq_cst: set once by gy_server_stop, read by every loop. */
    _Atomic bool stopping;
    _Atomic bool draining;
    _Atomic bool forced;
    _Atomic int loops_done;
    /* Heap limit: set by the control loop's check (relaxed: advisory). */
    _Atomic bool heap_over;
    _Atomic bool heap_collect_pending;
    /* Statistics (relaxed counters). */
    _Atomic uint64_t st_accepted, st_open, st_refused, st_requests, st_4xx, st_5xx, st_bad, st_503,
        st_timeouts;
    uint64_t start_ns;
};

uint64_t gy__now_ns(void);
/* The control thread's gy__loop_enter. */
static inline void gy__ctl_enter(gy_server *srv) {
    if (srv->ctl_quiescent) {
        srv->ctl_quiescent = false;
        gy_quiescent_end();
    }
}
/* Wake every running loop (its async callback: posts, the drain, a purge).
 * Returns how many were woken. Any thread. */
int gy__server_wake_loops(gy_server *srv);
/* Ask for a collection because the heap is over its limit (never waits). */
void gy__server_heap_collect(gy_server *srv);
/* An answer went out: the 4xx/5xx counters and every plane's `answered`
 * (route NULL: none matched; dur_ns 0: not timed). Any thread. */
void gy__server_count_answer(gy_server *srv, const gy__route *route, int status, uint64_t dur_ns);
/* Split "HOST:PORT" or "[IPv6]:PORT" into host and port. Returns 0 or
 * GY_EINVAL (no colon, or a part too long). */
int gy__split_address(const char *address, char *host, size_t hsize, char *port, size_t psize);
/* Bind the listening sockets: nloops sockets with SO_REUSEPORT on the
 * configured address (the first picks the port when it is 0). */
int gy__server_bind(gy_server *srv, const char *address, gy_errmsg *err);

#endif /* GY_SERVER_SRV_H */
