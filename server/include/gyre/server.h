/* gyre/server.h: gyred's HTTP/1.1 server framework on Gyre's heap.
 *
 * A server runs N event loops (libuv), each a Gyre thread attached as a
 * loop, sharing one port with SO_REUSEPORT, plus a small pool of worker
 * threads for blocking work. Connections, requests, their header lists and
 * responses are Gyre objects with natural back-references (request <->
 * connection, response <-> request), so what a request leaves behind is
 * real work for the cycle collector.
 *
 * A service registers handlers with gy_server_route, then runs the server,
 * usually through gy_server_main (flags, config file, signals, summary):
 *
 *     static int hello(gy_request *req, void *arg) {
 *         return gy_request_respond(req, 200, "text/plain", "hello", 5);
 *     }
 *     static int setup(gy_server *srv, void *arg) {
 *         return gy_server_route(srv, "GET", "/", hello, NULL);
 *     }
 *     int main(int argc, char **argv) {
 *         gy_server_app app = {.name = "hello", .setup = setup};
 *         return gy_server_main(argc, argv, &app);
 *     }
 *
 * Handlers and threads (the rules for handing objects around):
 *   - A handler runs on the loop that read the request, with the request
 *     BORROWED for the call. It answers now (gy_request_respond) and returns
 *     GY_HANDLER_DONE, or keeps a reference (gy_incref) and returns
 *     GY_HANDLER_LATER, answering later from a timer (gy_request_after), a
 *     worker (gy_request_submit) or any attached thread, then dropping its
 *     reference. The next request on that connection waits for the answer
 *     (responses leave in request order).
 *   - A request's method, target, headers and body never change after the
 *     handler is called: any attached thread holding a reference may read
 *     them. Everything else of a connection (its socket, its timers) belongs
 *     to its loop and is never exposed.
 *   - Worker threads are attached PLAIN threads. A work function that
 *     blocks (sleep, disk, a database) must bracket the blocking call with
 *     gy_quiescent_begin()/gy_quiescent_end() and touch no Gyre object in
 *     between, so a collection never waits for it.
 *   - Objects created on a worker may be stored in a response or a shared
 *     structure and dropped on any thread: counts are biased and safe.
 *   - On SIGTERM the server stops accepting, lets every request already read
 *     (including those at a timer or a worker) answer within drain_timeout,
 *     then closes what is left.
 *
 * Thread-safety: gy_server_route and gy_server_on_config before
 * gy_server_run only; gy_request_* as stated per function.
 */
#ifndef GYRE_SERVER_H
#define GYRE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gyre/common.h"
#include "gyre/config.h"
#include "gyre/error.h"
#include "gyre/object.h"

typedef struct gy_server gy_server;
/* A request: a Gyre object (starts with gy_object), so gy_incref/gy_decref
 * apply; opaque otherwise. */
typedef struct gy_request gy_request;

/* What a handler returns. */
enum {
    GY_HANDLER_DONE = 0,  /* answered (or a 500 is sent if it did not) */
    GY_HANDLER_LATER = 1, /* will answer later; it kept a reference */
};

/* A route handler: `req` BORROWED for the call. Returns GY_HANDLER_DONE,
 * GY_HANDLER_LATER, or a negative GY_E* code (answered 500 unless already
 * answered). Runs on a loop thread: must not block. */
typedef int (*gy_handler_fn)(gy_request *req, void *arg);

/* --- the server ------------------------------------------------------------ */

/* gy_server_new: a server for configuration `cfg` (copied). Binds the
 * listener now so a busy port is reported here: GY_EIO with the address and
 * the system's reason; GY_EINVAL for an address that does not resolve;
 * GY_ENOMEM. The runtime must be running. */
GY_API int gy_server_new(gy_server **out, const gy_config *cfg, gy_errmsg *err);

/* gy_server_free: release a server that is not running (NULL allowed). */
GY_API void gy_server_free(gy_server *srv);

/* gy_server_route: call `handler` for requests with this method and path.
 * A path ending in "/..." matches every path under it ("/cache/..." matches
 * "/cache/a"; gy_request_path_tail gives "a"). A path that matches but with
 * another method is answered 405 with an Allow header; no match is 404.
 * Returns 0, GY_EEXIST (same method and path), GY_EINVAL (method not a
 * token, path not starting with '/'), GY_ENOMEM. Before gy_server_run. */
GY_API int gy_server_route(gy_server *srv, const char *method, const char *path,
                           gy_handler_fn handler, void *arg);

/* gy_server_port: the HTTP port bound (useful with port 0). */
GY_API int gy_server_port(const gy_server *srv);

/* gy_server_run: run the loops and workers on new threads and block until
 * gy_server_stop, then drain (see above) and join them. Sets SIGPIPE to
 * SIG_IGN (a peer closing during a write is an error, not a signal). The calling thread
 * must not be attached. Returns 0 or GY_ENOMEM / GY_EIO (threads could not
 * start; nothing left running). */
GY_API int gy_server_run(gy_server *srv, gy_errmsg *err);

/* gy_server_stop: begin a graceful stop (drain, then gy_server_run
 * returns). Safe from any thread and from a signal handler's loop. */
GY_API void gy_server_stop(gy_server *srv);

/* gy_server_reconfigure: apply `cfg`'s run-time mutable settings that
 * differ from the current ones (limits, log level, access log, collector
 * thresholds, demo settings), all or nothing. `not_applied` (may be NULL)
 * receives a one-line list of changed settings that need a restart
 * ("listen (needs a restart), threads (needs a restart)"), "" if none.
 * Returns 0, GY_EIO (the access log cannot be opened; nothing changed),
 * GY_ENOMEM. Thread-safe. */
GY_API int gy_server_reconfigure(gy_server *srv, const gy_config *cfg, char *not_applied,
                                 size_t size, gy_errmsg *err);

/* gy_server_config_int / gy_server_config_str: the current value of a
 * setting (see gyre/config.h); str copies into buf. Thread-safe. */
GY_API int64_t gy_server_config_int(gy_server *srv, const char *name);
GY_API size_t gy_server_config_str(gy_server *srv, const char *name, char *buf, size_t size);

/* Counters since the server started. Thread-safe snapshot. */
typedef struct gy_server_stats {
    uint64_t connections_accepted;
    uint64_t connections_open;
    uint64_t connections_refused; /* over max_connections */
    uint64_t requests;            /* answered */
    uint64_t responses_4xx, responses_5xx;
    uint64_t bad_requests; /* parse or framing errors */
    uint64_t overload_503; /* answered 503 for max_heap_bytes */
    uint64_t timeouts;     /* header, body-rate or idle deadlines */
} gy_server_stats;
GY_API void gy_server_get_stats(gy_server *srv, gy_server_stats *out);

/* --- the request (handlers) ---------------------------------------------- */

/* Accessors: the returned strings live as long as the request; any thread
 * holding a reference may call them. */
GY_API const char *gy_request_method(const gy_request *req);
GY_API const char *gy_request_path(const gy_request *req);      /* as sent (not decoded) */
GY_API const char *gy_request_query(const gy_request *req);     /* after '?', "" if none */
GY_API const char *gy_request_path_tail(const gy_request *req); /* after a "/..." route's prefix */
/* gy_request_route: the route pattern that matched ("/cache/..."). */
GY_API const char *gy_request_route(const gy_request *req);
/* gy_request_header: the value of the first header `name` (any case), or
 * NULL. gy_request_header_count / gy_request_header_at: all of them. */
GY_API const char *gy_request_header(const gy_request *req, const char *name);
GY_API size_t gy_request_header_count(const gy_request *req);
GY_API int gy_request_header_at(const gy_request *req, size_t i, const char **name,
                                const char **value);
/* gy_request_body: the whole body (chunked bodies are joined); len 0 and a
 * "" pointer when there is none. */
GY_API const char *gy_request_body(const gy_request *req, size_t *len);
/* gy_request_query_int: the decimal value of query parameter `key` in
 * *out. Returns 0, GY_ENOENT (absent), GY_EINVAL (not a decimal integer). */
GY_API int gy_request_query_int(const gy_request *req, const char *key, long *out);
/* gy_request_server: the server (borrowed). */
GY_API gy_server *gy_request_server(const gy_request *req);

/* gy_request_set_header: add a header to the response to come (not Date,
 * Server, Content-Length, Connection: the server writes those). Returns 0,
 * GY_EINVAL (name not a token, or a value with CR, LF or NUL), GY_ESTATE
 * (already answered), GY_ENOMEM. Thread-safe like gy_request_respond. */
GY_API int gy_request_set_header(gy_request *req, const char *name, const char *value);

/* gy_request_respond: answer the request: status 100..599 (not 1xx),
 * Content-Type (NULL: none), body copied (len bytes). From the loop it is
 * written now; from any other attached thread it is handed to the loop. A
 * HEAD request gets the headers only. Returns 0; GY_ESTATE (already
 * answered); GY_EINVAL (bad status); GY_ENOMEM: this answer could not be
 * built, so the server answers in its place with a static 500 and closes
 * the connection (the request counts as answered: later calls get
 * GY_ESTATE; no caller needs a fallback of its own). When the client has
 * gone, the answer is dropped and 0 returned. Thread-safe. */
GY_API int gy_request_respond(gy_request *req, int status, const char *content_type,
                              const void *body, size_t len);

/* gy_request_stream_begin / gy_request_stream_write: stream an answer of
 * `content_length` bytes: begin writes the head (status, Content-Type,
 * Content-Length) like gy_request_respond; each write sends the next piece
 * (copied) in order; the answer is complete, and the connection goes on to
 * its next request, when content_length bytes were written. Both from the
 * thread answering the request (the loop, a worker, any attached thread).
 * begin: errors as gy_request_respond. write: 0; GY_ESTATE (not begun, or
 * cut); GY_ERANGE (more than content_length in all; nothing sent);
 * GY_ENOMEM: the piece could not be copied, so the answer can never be
 * whole: it is cut (the pieces already written go out, then the
 * connection closes; the client sees a short body) and later writes get
 * GY_ESTATE. A HEAD request gets the head only; pieces for a client that
 * has gone are dropped. */
GY_API int gy_request_stream_begin(gy_request *req, int status, const char *content_type,
                                   uint64_t content_length);
GY_API int gy_request_stream_write(gy_request *req, const void *data, size_t len);

/* gy_request_after: call fn(req, arg) on the request's loop after `ms`
 * milliseconds (a reference is held meanwhile). Loop thread only (from a
 * handler). Returns 0, GY_ENOMEM, GY_ESTATE (server stopping). */
typedef void (*gy_request_fn)(gy_request *req, void *arg);
GY_API int gy_request_after(gy_request *req, uint64_t ms, gy_request_fn fn, void *arg);

/* gy_request_submit: run fn(req, arg) on a worker thread (a reference is
 * held meanwhile); fn answers with gy_request_respond. Any attached thread.
 * Returns 0, GY_EAGAIN (queue full: answer 503), GY_ESTATE (stopping). */
GY_API int gy_request_submit(gy_request *req, gy_request_fn fn, void *arg);

/* --- gy_server_main: gyred's main, for any service ------------------------ */

typedef struct gy_server_app {
    const char *name; /* for --version and logs */
    /* setup: register routes; called once before the loops start.
     * Returns 0 or an error (the server does not start). */
    int (*setup)(gy_server *srv, void *arg);
    /* teardown: drop what setup created (called after the loops stopped,
     * with the main thread attached). May be NULL. */
    void (*teardown)(gy_server *srv, void *arg);
    void *arg;
} gy_server_app;

/* gy_server_main: parse the flags (gyre/config.h: --config, --listen,
 * --admin-socket, --threads, --set, --help, --version) over the embedded
 * default gyre.conf, start the runtime, raise the open-file limit, log to
 * stderr, run the server until SIGTERM or SIGINT (graceful drain, a final
 * collection, a one-line summary), reload the config file on SIGHUP.
 * Returns the process exit code: 0, 64 (bad flags), 78 (bad config), 70
 * (could not start). */
GY_API int gy_server_main(int argc, char **argv, const gy_server_app *app);

#endif /* GYRE_SERVER_H */
