/* server/src/conn.c: a connection on its loop: accept, read and parse,
 * dispatch, answer in order, write, deadlines, close.
 *
 * Life of a connection: accept -> (read -> parse -> dispatch -> answer ->
 * write)* -> close. While a handler has not answered, parsing is paused
 * and reading stopped (bytes already read wait in io->pending), so answers
 * leave in request order and a pipelining client cannot make the server
 * buffer without bound. A connection that is to close (Connection: close,
 * an error, the request limit, a drain) sends FIN after its last answer and
 * reads (discarding) for a moment before closing, so the client sees the
 * answer rather than a reset (lingering close, as nginx does). */
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "gyre/gc.h"
#include "gyre/trace.h"

#define GY__LINGER_MS 2000
#define GY__WRITE_HIGH (1u << 20) /* stop reading above this much unsent output */

/* Queued output is one buffer written as slices of at most GY__SLICE bytes,
 * one uv_write each, so each slice's completion shows progress (the write
 * deadline) and the buffer is freed with its last slice. */
#define GY__SLICE (64u * 1024)
typedef struct gy__wbuf {
    gy__buf buf;
    unsigned slices; /* uv_write requests not yet completed */
} gy__wbuf;
typedef struct gy__write {
    uv_write_t req;
    gy__io *io;
    gy__wbuf *wb;
    size_t len;
} gy__write;

static void gy__io_flush(gy__io *io);
static void gy__io_close(gy__io *io);
static void gy__io_feed(gy__io *io, const char *data, size_t len, bool from_pending);
static void gy__io_arm_answer(gy__io *io);
static void gy__io_stream_cut(gy__io *io, gy_request *req);
static void gy__io_last_answer(gy__io *io);
static void gy__io_finish(gy__io *io);
static void gy__io_drain(gy__io *io);
static void gy__io_answer_static(gy__io *io, int status, const char *body);
static void gy__io_read_start(gy__io *io);

/* --- timers ------------------------------------------------------------------ */

static void gy__timer_cb(uv_timer_t *t) {
    gy__io *io = t->data;
    gy__loop_enter(io->loop);
    gy_server *srv = io->loop->srv;
    io->armed_ms = 0;
    if (io->tmode == GY__T_NONE) {
        return;
    }
    uint64_t now = uv_now(&io->loop->uv);
    if (now < io->deadline_ms) {
        /* Armed for an earlier deadline that has since moved: re-arm. */
        io->armed_ms = io->deadline_ms;
        uv_timer_start(&io->timer, gy__timer_cb, io->deadline_ms - now, 0);
        return;
    }
    switch (io->tmode) {
    case GY__T_ANSWER:
        if (io->cur == NULL) {
            break;
        }
        if (atomic_load_explicit(&io->cur->answered, memory_order_acquire) &&
            gy__loop_has_posts(io->loop) && now < io->answer_by_ms + 1000) {
            /* Answered, and what it sent may be waiting in this loop's
             * posts (a stalled loop runs its timers before its posts): let
             * them run first, for up to a second. */
            gy__io_set_timer(io, GY__T_ANSWER, 10);
            break;
        }
        atomic_fetch_add_explicit(&srv->st_timeouts, 1, memory_order_relaxed);
        if (gy__request_claim(io->cur)) {
            /* The handler has not answered in answer_timeout: the client
             * gets a 503 and a close, the handler's late answer GY_ESTATE. */
            gy__server_log(GY_LOG_WARN, "%s %s: no answer within answer_timeout (%lld ms): 503",
                           io->cur->method, io->cur->path,
                           (long long)gy__lim(&srv->lim.answer_timeout_ms));
            gy__io_answer_static(io, 503, "the handler did not answer in time\n");
        } else if (io->streaming) {
            /* No piece for answer_timeout (the writer stopped, or a piece's
             * hand-off to this loop failed): cut the answer. */
            gy__io_stream_cut(io, io->cur);
        } else {
            /* Answered, but the answer never reached this loop (its
             * hand-off failed for lack of memory): nothing else will come. */
            gy__server_log(GY_LOG_WARN, "%s %s: the answer was lost on its way: 500",
                           io->cur->method, io->cur->path);
            gy__io_answer_static(io, 500, "internal error (the answer was lost)\n");
        }
        break;
    case GY__T_HEADERS:
        atomic_fetch_add_explicit(&srv->st_timeouts, 1, memory_order_relaxed);
        if (io->in_message) {
            gy__io_write_simple(io, 408, NULL, "request headers timed out\n", true);
        } else {
            gy__io_close(io);
        }
        break;
    case GY__T_BODY: {
        if (!io->in_message || io->cur != NULL) {
            break; /* the body is complete: the handler's time is not limited */
        }
        uint64_t secs = (now - io->body_start_ms) / 1000;
        uint64_t rate = (uint64_t)gy__lim(&srv->lim.body_min_rate);
        if (rate > 0 && secs >= 1 && io->body_bytes < rate * secs) {
            atomic_fetch_add_explicit(&srv->st_timeouts, 1, memory_order_relaxed);
            gy__io_write_simple(io, 408, NULL, "request body too slow\n", true);
        } else {
            gy__io_set_timer(io, GY__T_BODY, 1000);
        }
        break;
    }
    case GY__T_IDLE:
        if (atomic_load_explicit(&srv->draining, memory_order_relaxed)) {
            /* drain_grace is over: FIN, then read and discard briefly (a
             * close with unread bytes would send RST). */
            gy__io_last_answer(io);
            gy__io_finish(io);
            break;
        }
        atomic_fetch_add_explicit(&srv->st_timeouts, 1, memory_order_relaxed);
        gy__io_close(io);
        break;
    case GY__T_WRITE: /* a client that stopped reading */
        atomic_fetch_add_explicit(&srv->st_timeouts, 1, memory_order_relaxed);
        gy__io_close(io);
        break;
    case GY__T_LINGER:
        gy__io_close(io);
        break;
    case GY__T_NONE:
        break;
    }
}

/* Deadlines move on every request, so the uv timer is re-armed lazily: a
 * new deadline only records itself, unless it is earlier than the one the
 * timer is armed for; a timer that fires early re-arms for the rest. Two
 * timer-heap operations per request become none. */
void gy__io_set_timer(gy__io *io, gy__tmode mode, uint64_t ms) {
    if (io->closing) {
        return;
    }
    io->tmode = mode;
    if (mode == GY__T_NONE) {
        io->deadline_ms = UINT64_MAX;
        return;
    }
    io->deadline_ms = uv_now(&io->loop->uv) + ms;
    if (io->armed_ms == 0 || io->armed_ms > io->deadline_ms) {
        io->armed_ms = io->deadline_ms;
        uv_timer_start(&io->timer, gy__timer_cb, ms, 0);
    }
}

/* Between requests: idle_timeout from now, as a write deadline while output
 * is still queued (refreshed by each write that completes), then as the
 * keep-alive deadline. */
static void gy__io_wait_next(gy__io *io) {
    if (io->in_message || (io->conn->nrequests == 0 && io->tmode == GY__T_HEADERS)) {
        return; /* a request's own deadlines rule (the first from the accept) */
    }
    uint64_t ms = (uint64_t)gy__lim(&io->loop->srv->lim.idle_timeout_ms);
    if (io->writing > 0) {
        gy__io_set_timer(io, GY__T_WRITE, ms);
    } else if (!io->close_after && !io->waiting && io->cur == NULL) {
        gy__io_set_timer(io, GY__T_IDLE, ms);
    } else if (io->tmode == GY__T_WRITE) {
        gy__io_arm_answer(io); /* written; a handler may still be answering */
    }
}

/* While a handler answers (io->cur set, not answered): the answer deadline,
 * unless output is still draining (its write deadline rules until then). */
static void gy__io_arm_answer(gy__io *io) {
    if (io->cur == NULL) {
        gy__io_set_timer(io, GY__T_NONE, 0);
        return;
    }
    uint64_t now = uv_now(&io->loop->uv);
    gy__io_set_timer(io, GY__T_ANSWER, io->answer_by_ms > now ? io->answer_by_ms - now : 1);
}

/* A streamed answer's next piece is due within answer_timeout (while
 * output drains, the write deadline rules and arms this after). */
static void gy__io_stream_deadline(gy__io *io) {
    io->answer_by_ms =
        uv_now(&io->loop->uv) + (uint64_t)gy__lim(&io->loop->srv->lim.answer_timeout_ms);
    if (io->tmode != GY__T_WRITE) {
        gy__io_arm_answer(io);
    }
}

/* The final answer is decided: stop parsing what the client sends after it
 * (its reads are discarded until the lingering close). */
static void gy__io_last_answer(gy__io *io) {
    io->close_after = true;
    io->last_answered = true;
    if (io->reading) {
        uv_read_stop((uv_stream_t *)&io->tcp);
        io->reading = false;
    }
}

/* --- closing ----------------------------------------------------------------- */

static void gy__io_closed(uv_handle_t *h) {
    gy__io *io = h->data;
    if (--io->handles_open > 0) {
        return;
    }
    gy__loop *loop = io->loop;
    /* Unlink, then drop the socket's reference to the connection object:
     * the object (and any request cycle) lives on until its count or the
     * collector frees it. */
    if (io->prev) {
        io->prev->next = io->next;
    } else {
        loop->conns = io->next;
    }
    if (io->next) {
        io->next->prev = io->prev;
    }
    loop->nconns--;
    atomic_fetch_sub_explicit(&loop->srv->st_open, 1, memory_order_relaxed);
    gy_xdecref(io->cur);
    gy_decref(io->conn);
    gy__buf_free(&io->hdr);
    gy__buf_free(&io->offs);
    gy__buf_free(&io->body);
    gy__buf_free(&io->pending);
    gy__buf_free(&io->out);
    free(io);
}

static void gy__io_close(gy__io *io) {
    if (io->closing) {
        return;
    }
    io->closing = true;
    io->conn->io = NULL; /* answers from now on are dropped */
    uv_timer_stop(&io->timer);
    uv_close((uv_handle_t *)&io->timer, gy__io_closed);
    uv_close((uv_handle_t *)&io->tcp, gy__io_closed);
}

static void gy__shutdown_cb(uv_shutdown_t *req, int status) {
    gy__io *io = req->data;
    gy__loop_enter(io->loop);
    free(req);
    if (io->closing) {
        return;
    }
    if (status != 0 || io->eof) {
        gy__io_close(io);
        return;
    }
    /* Linger: read and discard what the client still sends, briefly. */
    gy__io_set_timer(io, GY__T_LINGER, GY__LINGER_MS);
    gy__io_read_start(io);
}

/* Everything is written and the connection is to close: FIN, then linger. */
static void gy__io_finish(gy__io *io) {
    if (io->shut || io->closing) {
        return;
    }
    io->shut = true;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req == NULL) {
        gy__io_close(io);
        return;
    }
    req->data = io;
    if (uv_shutdown(req, (uv_stream_t *)&io->tcp, gy__shutdown_cb) != 0) {
        free(req);
        gy__io_close(io);
    }
}

/* --- writing ----------------------------------------------------------------- */

static void gy__write_cb(uv_write_t *req, int status) {
    gy__write *w = (gy__write *)req;
    gy__io *io = w->io;
    gy__loop_enter(io->loop);
    io->writing -= w->len;
    if (--w->wb->slices == 0) {
        gy__buf_free(&w->wb->buf);
        free(w->wb);
    }
    free(w);
    if (io->closing) {
        return;
    }
    if (status != 0) {
        gy__io_close(io);
        return;
    }
    if (io->out.len == 0 && io->writing == 0 && io->close_after && !io->waiting &&
        io->cur == NULL) {
        gy__io_finish(io);
        return;
    }
    if (io->tmode == GY__T_WRITE) {
        gy__io_wait_next(io); /* progress: a new write deadline, or idle */
    }
    if (!io->reading && !io->waiting && !io->close_after && io->writing < GY__WRITE_HIGH) {
        gy__io_read_start(io);
    }
}

static void gy__io_flush(gy__io *io) {
    if (io->closing) {
        return;
    }
    if (io->out.len > 0) {
        size_t done = 0;
        if (io->writing == 0) {
            /* Nothing queued: write now, and only queue what the socket
             * did not take (the common case allocates nothing). */
            uv_buf_t b = uv_buf_init(io->out.p, (unsigned)io->out.len);
            int n = uv_try_write((uv_stream_t *)&io->tcp, &b, 1);
            if (n < 0 && n != UV_EAGAIN) {
                gy__io_close(io);
                return;
            }
            done = n > 0 ? (size_t)n : 0;
        }
        if (done < io->out.len) {
            gy__wbuf *wb = malloc(sizeof *wb);
            if (wb == NULL) {
                gy__io_close(io);
                return;
            }
            wb->buf = io->out; /* the buffer moves to the write requests */
            memset(&io->out, 0, sizeof io->out);
            wb->slices = 1; /* held while submitting */
            for (size_t at = done; at < wb->buf.len;) {
                size_t n = wb->buf.len - at < GY__SLICE ? wb->buf.len - at : GY__SLICE;
                gy__write *w = malloc(sizeof *w);
                uv_buf_t b = uv_buf_init(wb->buf.p + at, (unsigned)n);
                if (w != NULL) {
                    w->io = io;
                    w->wb = wb;
                    w->len = n;
                    wb->slices++;
                    io->writing += n;
                }
                if (w == NULL ||
                    uv_write(&w->req, (uv_stream_t *)&io->tcp, &b, 1, gy__write_cb) != 0) {
                    if (w != NULL) {
                        io->writing -= n;
                        wb->slices--;
                        free(w);
                    }
                    gy__io_close(io); /* queued slices complete with ECANCELED */
                    break;
                }
                at += n;
            }
            if (--wb->slices == 0) {
                gy__buf_free(&wb->buf);
                free(wb);
            }
            if (io->closing) {
                return;
            }
            if (io->writing >= GY__WRITE_HIGH && io->reading) {
                uv_read_stop((uv_stream_t *)&io->tcp);
                io->reading = false;
            }
            if (io->tmode == GY__T_IDLE || io->tmode == GY__T_NONE) {
                gy__io_wait_next(io); /* a write deadline while it drains */
            }
            return;
        }
        io->out.len = 0;
    }
    if (io->writing == 0 && io->close_after && !io->waiting && io->cur == NULL) {
        gy__io_finish(io);
    }
}

void gy__io_write_simple(gy__io *io, int status, const char *extra, const char *body, bool close) {
    gy__server_count_answer(io->loop->srv, NULL, status, 0);
    if (!gy__response_simple(&io->out, io->loop, status, extra, body, close)) {
        gy__io_close(io);
        return;
    }
    if (close) {
        io->in_message = false;
        gy__io_last_answer(io);
        gy__io_set_timer(io, GY__T_NONE, 0);
    }
    if (!io->in_execute) {
        gy__io_flush(io);
    }
}

/* Answer io->cur (already claimed: gy__request_claim) with a static
 * response that needs no Gyre allocation, and close after it: the last
 * resort when an answer cannot be built, or comes too late. */
static void gy__io_answer_static(gy__io *io, int status, const char *body) {
    gy_request *req = io->cur;
    io->cur = NULL;
    io->waiting = false;
    /* (A HEAD answer has no body: one here would be read as the next.) */
    gy__io_write_simple(io, status, NULL, req->head ? NULL : body, true);
    gy_decref(req); /* the io's reference */
}

/* --- dispatch and answers ------------------------------------------------------ */

static gy_bytes *gy__bytes_of(const void *p, size_t len) {
    gy_bytes *b;
    return gy_bytes_new(&b, p, len) == GY_OK ? b : NULL;
}

/* Build the request object from the parse state: the request, its header
 * list and one blob (target, names, values, then their offsets), and the
 * body. NEW reference or NULL. */
static gy_request *gy__request_build(gy__io *io) {
    gy__loop *loop = io->loop;
    gy_request *req = NULL;
    gy__headers *h = NULL;
    gy_bytes *blob = NULL, *body = NULL;
    size_t strings = io->hdr.len, pad = (4 - strings % 4) % 4;
    if (!gy__buf_append(&io->hdr, "\0\0\0", pad) ||
        !gy__buf_append(&io->hdr, io->offs.p, io->offs.len) ||
        gy_new(&gy__request_type, &req) != GY_OK || gy_new(&gy__headers_type, &h) != GY_OK ||
        (blob = gy__bytes_of(io->hdr.p, io->hdr.len)) == NULL ||
        (io->body.len > 0 && (body = gy__bytes_of(io->body.p, io->body.len)) == NULL)) {
        gy_xdecref(req);
        gy_xdecref(h);
        gy_xdecref(blob);
        return NULL;
    }
    h->count = io->nhdr;
    h->offs_at = (uint32_t)(strings + pad);
    req->srv = loop->srv;
    req->loop = loop;
    req->route = io->route;
    req->method = llhttp_method_name((llhttp_method_t)io->parser.method);
    req->path = gy_bytes_data(blob);
    req->query = req->path + strlen(req->path) + 1;
    req->tail = io->route && io->route->prefix_len ? req->path + io->route->prefix_len : "";
    req->http_minor = io->parser.http_minor;
    req->keep_alive = llhttp_should_keep_alive(&io->parser) && !io->parser.upgrade;
    req->head = io->parser.method == HTTP_HEAD;
    req->start_ns = gy__now_ns();
    gy_store_steal(&h->blob, blob);
    gy_store_steal(&req->headers, h);
    if (body) {
        gy_store_steal(&req->body, body);
    }
    gy_store(&req->conn, io->conn); /* back-reference: request -> connection */
    return req;
}

/* The per-thread trace tag follows the route; set only when it changes. */
static _Thread_local const char *gy__tag_now;
static void gy__set_tag(const char *tag) {
    if (tag != gy__tag_now) {
        if (gy_trace_set_tag(tag) == GY_OK) {
            gy__tag_now = tag;
        }
    }
}

int gy__io_dispatch(gy__io *io) {
    gy__loop *loop = io->loop;
    gy_server *srv = loop->srv;
    /* A safe point at every request: a collection never waits for a long
     * pipelined batch. */
    gy_safepoint();
    gy__set_tag(io->route ? io->route->path : "(no route)");
    gy_request *req = gy__request_build(io);
    if (req == NULL) {
        gy__io_write_simple(io, 503, "Retry-After: 1\r\n",
                            io->parser.method == HTTP_HEAD ? NULL : "out of memory\n", true);
        return HPE_PAUSED;
    }
    io->conn->nrequests++;
    gy_store(&io->conn->req, req); /* connection -> request */
    io->cur = req;                 /* the io's own reference (from build) */
    gy_incref(req);                /* the handler's borrowed reference, kept across it */
    int rc = GY_HANDLER_DONE;
    if (atomic_load_explicit(&srv->heap_over, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&srv->st_503, 1, memory_order_relaxed);
        gy__server_heap_collect(srv);
        gy_request_set_header(req, "Retry-After", "1");
        gy_request_respond(req, 503, "text/plain", "heap over max_heap_bytes\n", 25);
    } else if (io->route_result == GY__ROUTE_NO_PATH) {
        gy_request_respond(req, 404, "text/plain", "not found\n", 10);
    } else if (io->route_result == GY__ROUTE_NO_METHOD) {
        gy_request_set_header(req, "Allow", io->allow);
        gy_request_respond(req, 405, "text/plain", "method not allowed\n", 19);
    } else {
        rc = io->route->handler(req, io->route->arg);
    }
    if (!atomic_load_explicit(&req->answered, memory_order_acquire) && rc != GY_HANDLER_LATER) {
        gy__server_log(GY_LOG_ERROR, "handler for %s %s returned %d without answering", req->method,
                       io->route ? io->route->path : "?", rc);
        if (gy_request_respond(req, 500, "text/plain", "internal error\n", 15) != GY_OK &&
            io->cur == req && gy__request_claim(req)) {
            /* Not even that could be built (no memory): a static answer. */
            gy__io_answer_static(io, 500, "internal error (out of memory)\n");
        }
    }
    gy_decref(req);
    if (io->cur != NULL) {
        /* Not answered yet: pause until it is, at most answer_timeout. */
        io->waiting = true;
        io->answer_by_ms = uv_now(&io->loop->uv) + (uint64_t)gy__lim(&srv->lim.answer_timeout_ms);
        if (io->writing == 0) {
            gy__io_arm_answer(io);
        }
        return HPE_PAUSED;
    }
    return io->close_after ? HPE_PAUSED : 0;
}

static void gy__access_log(gy__io *io, gy_request *req, int status, size_t blen) {
    char ts[40], line[1024];
    gy__log_timestamp(ts, sizeof ts);
    double secs = (double)(gy__now_ns() - req->start_ns) / 1e9;
    int n = snprintf(line, sizeof line, "%s %s \"%s %s%s%s HTTP/1.%d\" %d %zu %.6f\n", ts,
                     io->conn->peer, req->method, req->path, req->query[0] ? "?" : "", req->query,
                     req->http_minor, status, blen, secs);
    if (n > 0) {
        gy__access_log_write(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    }
}

/* The request is finished on its connection (answered whole, or its
 * stream's last byte queued): count and log it, break its cycles if asked,
 * and go on with the next request. */
/* The answer to req is over (whole, or a stream cut): count and log it. */
static void gy__io_count_answer(gy__io *io, gy_request *req, int status) {
    gy_server *srv = io->loop->srv;
    gy__server_count_answer(srv, req->route, status, gy__now_ns() - req->start_ns);
    atomic_fetch_add_explicit(&srv->st_requests, 1, memory_order_relaxed);
    if (gy__access_log_enabled()) {
        gy__access_log(io, req, status, req->body_sent);
    }
}

/* The status of req's answer (its response object; `none` without one). */
static int gy__request_status(gy_request *req, int none) {
    gy__response *resp = (gy__response *)gy_load(&req->response);
    int status = resp != NULL ? resp->status : none;
    gy_xdecref(resp);
    return status;
}

static void gy__conn_done(gy__loop *loop, gy__io *io, gy__conn *conn, gy_request *req, int status) {
    gy_server *srv = loop->srv;
    gy__io_count_answer(io, req, status);
    if (atomic_load_explicit(&srv->lim.break_cycles, memory_order_relaxed)) {
        gy__request_break_cycles(req);
        gy_ref_clear(&conn->req);
    }
    if (req->close_when_done) {
        gy__io_last_answer(io);
    }
    io->cur = NULL;
    io->streaming = false;
    gy_decref(req); /* the io's reference */
    if (io->in_execute) {
        return; /* the parse loop goes on (or stops for close) and flushes */
    }
    /* An answer after the handler returned: write it and go on parsing. */
    io->waiting = false;
    if (!io->close_after && io->pending.len > io->pending_off) {
        gy__io_feed(io, io->pending.p + io->pending_off, io->pending.len - io->pending_off, true);
    }
    if (!io->closing && !io->waiting && !io->close_after && !io->reading &&
        io->writing < GY__WRITE_HIGH) {
        gy__io_read_start(io);
    }
    gy__io_flush(io);
    if (!io->closing) {
        gy__io_wait_next(io);
    }
}

/* The io of req's connection when req is the one it is answering, with a
 * NEW reference to the connection in *connp; else NULL (the client went
 * away, or the connection was closed by a drain: nothing to write). */
static gy__io *gy__io_answering(gy_request *req, gy__conn **connp) {
    gy__conn *conn = (gy__conn *)gy_load(&req->conn);
    gy__io *io = conn ? conn->io : NULL;
    if (io == NULL || io->cur != req || io->closing) {
        gy_xdecref(conn);
        return NULL;
    }
    *connp = conn;
    return io;
}

void gy__conn_answered(gy__loop *loop, gy_request *req) {
    gy__conn *conn;
    gy__io *io = gy__io_answering(req, &conn);
    if (io == NULL) {
        return;
    }
    gy_server *srv = loop->srv;
    gy__response *resp = (gy__response *)gy_load(&req->response);
    if (resp == NULL) {
        /* Answered without a response: gy__respond had no memory for it. */
        gy__server_log(GY_LOG_WARN, "%s %s: no memory for the answer: 500", req->method, req->path);
        gy__io_answer_static(io, 500, "internal error (out of memory)\n");
        gy_decref(conn);
        return;
    }
    int64_t maxreq = gy__lim(&srv->lim.max_requests);
    req->close_when_done = !req->keep_alive || io->close_after || io->eof ||
                           (int64_t)conn->nrequests >= maxreq ||
                           atomic_load_explicit(&srv->draining, memory_order_relaxed);
    bool ok = gy__response_serialize(&io->out, loop, req, resp, req->close_when_done);
    int status = resp->status;
    const gy_bytes *b =
        (const gy_bytes *)atomic_load_explicit(&resp->body.gy__ptr, memory_order_acquire);
    req->body_sent = b ? gy_bytes_len(b) : 0;
    gy_decref(resp);
    if (!ok) {
        gy_decref(conn);
        gy__io_close(io);
        return;
    }
    if (req->streaming && !req->head && req->stream_total > 0 && gy__status_has_body(status)) {
        /* The head is out; the body follows in gy__conn_stream_chunk, each
         * piece within answer_timeout of the one before. */
        req->body_sent = 0;
        io->streaming = true;
        gy__io_stream_deadline(io);
        gy_decref(conn);
        if (!io->in_execute) {
            gy__io_flush(io);
        }
        return;
    }
    gy__conn_done(loop, io, conn, req, status);
    gy_decref(conn);
}

/* A streamed answer that cannot be finished (a piece could not be made,
 * or none came for answer_timeout): what was queued goes out, then FIN;
 * nothing more is read. */
static void gy__io_stream_cut(gy__io *io, gy_request *req) {
    gy__server_log(GY_LOG_WARN, "%s %s: streamed answer cut after %llu of %llu bytes", req->method,
                   req->path, (unsigned long long)req->body_sent,
                   (unsigned long long)req->stream_total);
    /* Counted and logged as an answer, with its status (the body short). */
    gy__io_count_answer(io, req, gy__request_status(req, 500));
    gy__io_last_answer(io);
    gy__io_set_timer(io, GY__T_NONE, 0);
    io->cur = NULL;
    io->waiting = false;
    io->streaming = false;
    gy_decref(req); /* the io's reference */
    if (!io->in_execute) {
        gy__io_flush(io);
        /* Pieces still unsent to a client that stopped reading: a write
         * deadline, since nothing new was queued to set one (and reading
         * has stopped, so its FIN would go unseen). In llhttp_execute,
         * gy__read_cb does this after. */
        if (!io->closing) {
            gy__io_wait_next(io);
        }
    }
}

void gy__conn_stream_chunk(gy__loop *loop, gy_request *req, gy_bytes *chunk) {
    gy__conn *conn;
    gy__io *io = gy__io_answering(req, &conn);
    if (io == NULL) {
        gy_xdecref(chunk);
        return;
    }
    if (!io->streaming) {
        /* Its head never came (the hand-off was lost): the answer is lost,
         * and answer_timeout ends it with a 500. A piece written here would
         * be read as the head of an answer. */
        gy_xdecref(chunk);
        gy_decref(conn);
        return;
    }
    if (chunk == NULL) {
        gy__io_stream_cut(io, req);
        gy_decref(conn);
        return;
    }
    size_t len = gy_bytes_len(chunk);
    bool ok = gy__buf_append(&io->out, gy_bytes_data(chunk), len);
    gy_decref(chunk);
    if (!ok) {
        gy_decref(conn);
        gy__io_close(io);
        return;
    }
    req->body_sent += len;
    gy__io_stream_deadline(io);
    if (req->body_sent >= req->stream_total) {
        gy__conn_done(loop, io, conn, req, gy__request_status(req, 500));
    } else if (!io->in_execute) {
        gy__io_flush(io);
    }
    gy_decref(conn);
}

/* --- reading and parsing --------------------------------------------------------- */

static void gy__io_fail(gy__io *io, llhttp_errno_t e) {
    const char *reason = NULL;
    int status = gy__http_error_status(io, e, &reason);
    char body[160];
    snprintf(body, sizeof body, "%s\n", reason ? reason : "bad request");
    atomic_fetch_add_explicit(&io->loop->srv->st_bad, 1, memory_order_relaxed);
    gy__server_log(GY_LOG_DEBUG, "%s: %d %s", io->conn->peer, status, reason ? reason : "");
    char extra[160] = "";
    if (status == 405) {
        snprintf(extra, sizeof extra, "Allow: %s\r\n", io->allow);
    } else if (status == 503) {
        snprintf(extra, sizeof extra, "Retry-After: 1\r\n");
    }
    gy__io_write_simple(io, status, extra, body, true);
}

/* Parse data. Stops when waiting for an answer or closing; what is left is
 * kept in io->pending. */
static void gy__io_feed(gy__io *io, const char *data, size_t len, bool from_pending) {
    io->in_execute = true;
    io->feed_base = from_pending ? io->pending.p : data;
    llhttp_errno_t e = llhttp_execute(&io->parser, data, len);
    io->in_execute = false;
    /* Keep the last bytes for look-behind checks in the next buffer. */
    if (len >= sizeof io->tail) {
        memcpy(io->tail, data + len - sizeof io->tail, sizeof io->tail);
        io->tail_len = sizeof io->tail;
    } else {
        size_t keep = io->tail_len + len > sizeof io->tail ? sizeof io->tail - len : io->tail_len;
        memmove(io->tail, io->tail + io->tail_len - keep, keep);
        memcpy(io->tail + keep, data, len);
        io->tail_len = (uint8_t)(keep + len);
    }
    if (e == HPE_OK) {
        if (io->in_headers) {
            /* Bytes the callbacks do not count (whitespace) still count. */
            io->raw_header_bytes += len;
            if (io->raw_header_bytes >
                2 * (size_t)gy__lim(&io->loop->srv->lim.max_header_bytes) + 65536) {
                io->error_status = 431;
                io->error_reason = "request header fields too large";
                gy__io_fail(io, HPE_USER);
            }
        }
        if (from_pending) {
            io->pending.len = io->pending_off = 0;
        }
        return;
    }
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        const char *pos = llhttp_get_error_pos(&io->parser);
        size_t used = pos ? (size_t)(pos - data) : len;
        if (e == HPE_PAUSED) {
            llhttp_resume(&io->parser);
        } else {
            llhttp_resume_after_upgrade(&io->parser);
        }
        /* What precedes io->pending is no longer known to the look-behind. */
        io->tail_len = 0;
        if (io->close_after) {
            /* Nothing after this request will be read. */
            io->pending.len = io->pending_off = 0;
            return;
        }
        if (from_pending) {
            io->pending_off += used;
        } else {
            io->pending.len = io->pending_off = 0;
            if (!gy__buf_append(&io->pending, data + used, len - used)) {
                gy__io_close(io);
                return;
            }
        }
        /* Paused without closing means a handler has not answered (dispatch
         * pauses only for that, or for a close, handled above): read no
         * more until it does. */
        if (io->reading) {
            uv_read_stop((uv_stream_t *)&io->tcp);
            io->reading = false;
        }
        return;
    }
    gy__io_fail(io, e);
}

static void gy__alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)hint;
    gy__io *io = h->data;
    *buf = uv_buf_init(io->loop->rbuf, (unsigned)io->loop->rbuf_size);
}

static void gy__read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    gy__io *io = s->data;
    gy__loop_enter(io->loop);
    if (io->closing) {
        return;
    }
    if (nread < 0) {
        io->eof = true;
        uv_read_stop(s);
        io->reading = false;
        if (io->shut || (!io->waiting && io->cur == NULL && io->writing == 0 && io->out.len == 0)) {
            gy__io_close(io);
        } else {
            /* Answer what is in flight, write what is queued, then close. */
            io->close_after = true;
            gy__io_flush(io);
        }
        return;
    }
    if (nread == 0 || io->shut || io->last_answered) {
        return; /* lingering, or after the last answer: discard */
    }
    /* The next request's first byte switches to its header deadline in
     * on_message_begin (bare CRLFs between requests do not, so they cannot
     * keep an idle connection open). */
    gy__tmode before = io->tmode;
    gy__io_feed(io, buf->base, (size_t)nread, false);
    gy__io_flush(io);
    if (!io->closing && (before != GY__T_IDLE || io->tmode != GY__T_IDLE)) {
        gy__io_wait_next(io);
    }
}

static void gy__io_read_start(gy__io *io) {
    if (!io->reading && !io->closing) {
        if (uv_read_start((uv_stream_t *)&io->tcp, gy__alloc_cb, gy__read_cb) == 0) {
            io->reading = true;
        }
    }
}

/* --- accept ---------------------------------------------------------------------- */

static void gy__peer_name(uv_tcp_t *tcp, char *out, size_t size) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(out, size, "?");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0) {
        return;
    }
    char host[46];
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, host, sizeof host);
        snprintf(out, size, "%s:%d", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, host, sizeof host);
        snprintf(out, size, "[%s]:%d", host, ntohs(a->sin6_port));
    }
}

static void gy__free_handle(uv_handle_t *h) { free(h); }

/* Out of memory: take the connection off the backlog and close it (a
 * listener left with a pending connection stops accepting). */
static void gy__accept_and_drop(gy__loop *loop) {
    uv_tcp_t *t = malloc(sizeof *t);
    if (t == NULL) {
        return;
    }
    uv_tcp_init(&loop->uv, t);
    uv_accept((uv_stream_t *)&loop->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, gy__free_handle);
}

void gy__conn_accept(gy__loop *loop, int fd) {
    gy_server *srv = loop->srv;
    gy__set_tag("(connection)");
    gy__conn *conn = NULL;
    gy__io *io = NULL;
    if (gy_new(&gy__conn_type, &conn) != GY_OK || (io = calloc(1, sizeof *io)) == NULL) {
        gy__server_log(GY_LOG_WARN, "out of memory accepting a connection");
        gy_xdecref(conn);
        if (fd >= 0) {
            close(fd);
        } else {
            gy__accept_and_drop(loop);
        }
        return;
    }
    uv_tcp_init(&loop->uv, &io->tcp);
    int arc = fd >= 0 ? uv_tcp_open(&io->tcp, fd)
                      : uv_accept((uv_stream_t *)&loop->listener, (uv_stream_t *)&io->tcp);
    if (arc != 0) {
        if (fd >= 0) {
            close(fd);
        }
        gy_decref(conn);
        uv_close((uv_handle_t *)&io->tcp, gy__free_handle); /* tcp is io's first member */
        return;
    }
    uint64_t open = atomic_fetch_add_explicit(&srv->st_open, 1, memory_order_relaxed) + 1;
    atomic_fetch_add_explicit(&srv->st_accepted, 1, memory_order_relaxed);
    io->loop = loop;
    io->conn = conn;
    conn->io = io;
    conn->loop = loop;
    io->tcp.data = io;
    io->timer.data = io;
    uv_timer_init(&loop->uv, &io->timer);
    io->handles_open = 2;
    io->next = loop->conns;
    if (loop->conns) {
        loop->conns->prev = io;
    }
    loop->conns = io;
    loop->nconns++;
    gy__peer_name(&io->tcp, conn->peer, sizeof conn->peer);
    uv_tcp_nodelay(&io->tcp, 1);
    llhttp_init(&io->parser, HTTP_REQUEST, &gy__http_settings);
    io->parser.data = io;
    if ((int64_t)open > gy__lim(&srv->lim.max_connections)) {
        atomic_fetch_add_explicit(&srv->st_refused, 1, memory_order_relaxed);
        gy__io_write_simple(io, 503, "Retry-After: 1\r\n", "too many connections\n", true);
        return;
    }
    gy__io_set_timer(io, GY__T_HEADERS, (uint64_t)gy__lim(&srv->lim.header_timeout_ms));
    gy__io_read_start(io);
    if (atomic_load_explicit(&srv->draining, memory_order_relaxed)) {
        /* Accepted while draining (from the backlog): served like the idle
         * keep-alive connections, within drain_grace, and closed after. */
        gy__io_drain(io);
    }
}

/* --- drain and tick ---------------------------------------------------------------- */

/* One connection when the drain starts (not forced). In a request: its
 * answer is its last. Idle (keep-alive between requests, or nothing
 * received yet): it keeps reading for drain_grace, so a request already on
 * its way is answered (with Connection: close, as every answer while
 * draining); after that FIN, never a reset (the GY__T_IDLE case). */
static void gy__io_drain(gy__io *io) {
    if (io->closing) {
        return;
    }
    if (io->in_message || io->cur != NULL || io->out.len != 0 || io->writing != 0) {
        io->close_after = true;
        return;
    }
    gy__io_set_timer(io, GY__T_IDLE, (uint64_t)gy__lim(&io->loop->srv->lim.drain_grace_ms));
}

void gy__conn_drain_all(gy__loop *loop, bool force) {
    gy__io *next;
    for (gy__io *io = loop->conns; io != NULL; io = next) {
        next = io->next;
        if (io->closing) {
            continue;
        }
        if (force) {
            gy__io_close(io);
        } else {
            gy__io_drain(io);
        }
    }
}
