/* server/src/respond.c: answering a request (any thread) and writing an
 * answer's bytes (the loop). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gyre/version.h"
#include "srv.h"

bool gy__buf_reserve(gy__buf *b, size_t more) {
    if (b->cap - b->len >= more) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

bool gy__buf_append(gy__buf *b, const void *data, size_t len) {
    if (len == 0) {
        return true;
    }
    if (!gy__buf_reserve(b, len)) {
        return false;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return true;
}

void gy__buf_free(gy__buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

const char *gy__status_text(int status) {
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 300   ? "OK"
               : status < 400 ? "Redirect"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

bool gy__status_has_body(int status) { return status != 204 && status != 304 && status >= 200; }

/* Append a decimal number (no snprintf on the hot path). */
static char *gy__put_u64(char *p, uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}

static char *gy__put(char *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}
#define GY__PUT_LIT(p, lit) gy__put((p), (lit), sizeof(lit) - 1)

/* The head: status line, Server and Date (one line per loop, rebuilt once a
 * second), Content-Length, Content-Type, the extra lines, Connection. */
static bool gy__head(gy__buf *out, const gy__loop *loop, int status, size_t body_len,
                     const char *ctype, const char *extra, size_t extra_len,
                     const char *connection) {
    const char *text = gy__status_text(status);
    size_t tl = strlen(text), cl = ctype ? strlen(ctype) : 0;
    size_t need = 16 + tl + loop->server_date_len + 40 + (cl ? cl + 16 : 0) + extra_len + 32;
    if (!gy__buf_reserve(out, need)) {
        return false;
    }
    char *p = out->p + out->len;
    p = GY__PUT_LIT(p, "HTTP/1.1 ");
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = gy__put(p, text, tl);
    p = GY__PUT_LIT(p, "\r\n");
    p = gy__put(p, loop->server_date, loop->server_date_len);
    if (gy__status_has_body(status)) {
        p = GY__PUT_LIT(p, "Content-Length: ");
        p = gy__put_u64(p, body_len);
        p = GY__PUT_LIT(p, "\r\n");
    }
    if (cl > 0) {
        p = GY__PUT_LIT(p, "Content-Type: ");
        p = gy__put(p, ctype, cl);
        p = GY__PUT_LIT(p, "\r\n");
    }
    if (extra_len > 0) {
        p = gy__put(p, extra, extra_len);
    }
    if (connection != NULL) {
        p = GY__PUT_LIT(p, "Connection: ");
        p = gy__put(p, connection, strlen(connection));
        p = GY__PUT_LIT(p, "\r\n");
    }
    p = GY__PUT_LIT(p, "\r\n");
    out->len = (size_t)(p - out->p);
    return true;
}

bool gy__response_serialize(gy__buf *out, const gy__loop *loop, const gy_request *req,
                            const gy__response *resp, bool close) {
    const gy_bytes *body =
        (const gy_bytes *)atomic_load_explicit(&resp->body.gy__ptr, memory_order_acquire);
    const gy_bytes *extra =
        (const gy_bytes *)atomic_load_explicit(&resp->extra.gy__ptr, memory_order_acquire);
    /* A streamed answer announces its whole length; its body follows. */
    size_t blen = req->streaming ? (size_t)req->stream_total : body ? gy_bytes_len(body) : 0;
    const char *conn = close ? "close" : (req->http_minor == 0 ? "keep-alive" : NULL);
    size_t mark = out->len;
    if (!gy__head(out, loop, resp->status, blen, resp->ctype[0] ? resp->ctype : NULL,
                  extra ? gy_bytes_data(extra) : NULL, extra ? gy_bytes_len(extra) : 0, conn) ||
        (!req->head && !req->streaming && gy__status_has_body(resp->status) && blen > 0 &&
         !gy__buf_append(out, gy_bytes_data(body), blen))) {
        out->len = mark;
        return false;
    }
    return true;
}

bool gy__response_simple(gy__buf *out, const gy__loop *loop, int status, const char *extra,
                         const char *body, bool close) {
    size_t mark = out->len;
    size_t blen = body ? strlen(body) : 0;
    if (!gy__head(out, loop, status, blen, blen > 0 ? "text/plain" : NULL, extra,
                  extra ? strlen(extra) : 0, close ? "close" : NULL) ||
        (blen > 0 && !gy__buf_append(out, body, blen))) {
        out->len = mark;
        return false;
    }
    return true;
}

/* --- answering (any attached thread) ---------------------------------------- */

static gy__response *gy__response_get(gy_request *req) {
    gy__response *resp = (gy__response *)gy_load(&req->response);
    if (resp != NULL) {
        return resp;
    }
    if (gy_new(&gy__response_type, &resp) != GY_OK) {
        return NULL;
    }
    resp->status = 200;
    gy_store(&resp->request, req);
    gy_store(&req->response, resp);
    return resp; /* NEW */
}

static bool gy__header_ok(const char *name, const char *value) {
    if (*name == '\0') {
        return false;
    }
    for (const char *c = name; *c; c++) {
        if (!gy__is_tchar((unsigned char)*c)) {
            return false;
        }
    }
    for (const char *c = value; *c; c++) {
        if (*c == '\r' || *c == '\n') {
            return false;
        }
    }
    static const char *const reserved[] = {"date", "server", "content-length", "connection",
                                           "transfer-encoding"};
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) {
        if (strcasecmp(name, reserved[i]) == 0) {
            return false;
        }
    }
    return true;
}

/* The answer is built under the request's own little lock, so two threads
 * answering (or setting a header) at once cannot interleave: the first to
 * finish answers, the other gets GY_ESTATE. The spin passes safe points: the
 * holder may be parked by a stop of the world. */
static void gy__build_lock(gy_request *req) {
    /* acquire: see what the previous holder built. */
    while (atomic_flag_test_and_set_explicit(&req->building, memory_order_acquire)) {
        gy_safepoint();
    }
}

static void gy__build_unlock(gy_request *req) {
    atomic_flag_clear_explicit(&req->building, memory_order_release); /* publish it */
}

static int gy__set_header_locked(gy_request *req, const char *name, const char *value) {
    gy__response *resp = gy__response_get(req);
    if (resp == NULL) {
        return GY_ENOMEM;
    }
    gy_bytes *old = (gy_bytes *)gy_load(&resp->extra);
    size_t olen = old ? gy_bytes_len(old) : 0, nl = strlen(name), vl = strlen(value);
    size_t len = olen + nl + vl + 4;
    char *tmp = malloc(len);
    int rc = GY_ENOMEM;
    if (tmp != NULL) {
        if (olen) {
            memcpy(tmp, gy_bytes_data(old), olen);
        }
        memcpy(tmp + olen, name, nl);
        memcpy(tmp + olen + nl, ": ", 2);
        memcpy(tmp + olen + nl + 2, value, vl);
        memcpy(tmp + olen + nl + 2 + vl, "\r\n", 2);
        gy_bytes *nb;
        if (gy_bytes_new(&nb, tmp, len) == GY_OK) {
            gy_store_steal(&resp->extra, nb);
            rc = GY_OK;
        }
        free(tmp);
    }
    gy_xdecref(old);
    gy_decref(resp);
    return rc;
}

int gy_request_set_header(gy_request *req, const char *name, const char *value) {
    if (name == NULL || value == NULL || !gy__header_ok(name, value)) {
        return GY_EINVAL;
    }
    gy__build_lock(req);
    int rc = atomic_load_explicit(&req->answered, memory_order_relaxed)
                 ? GY_ESTATE
                 : gy__set_header_locked(req, name, value);
    gy__build_unlock(req);
    return rc;
}

static int gy__respond(gy_request *req, int status, const char *content_type, const void *body,
                       size_t len, bool streaming, uint64_t total) {
    if (status < 200 || status > 599) {
        return GY_EINVAL;
    }
    size_t ctl = content_type ? strlen(content_type) : 0;
    if (ctl > 0 && strpbrk(content_type, "\r\n") != NULL) {
        return GY_EINVAL;
    }
    gy__build_lock(req);
    if (atomic_load_explicit(&req->answered, memory_order_relaxed)) {
        gy__build_unlock(req);
        return GY_ESTATE;
    }
    int rc = GY_OK;
    if (ctl >= sizeof(((gy__response *)0)->ctype)) {
        /* A long one goes with the other headers. */
        rc = gy__set_header_locked(req, "Content-Type", content_type);
        ctl = 0;
    }
    gy__response *resp = rc == GY_OK ? gy__response_get(req) : NULL;
    if (resp != NULL && len > 0) {
        gy_bytes *b;
        if (gy_bytes_new(&b, body, len) == GY_OK) {
            gy_store_steal(&resp->body, b);
        } else {
            gy_decref(resp);
            resp = NULL;
        }
    }
    if (resp == NULL) {
        /* The answer cannot be built (no memory). Whoever called cannot
         * build another one either, and a worker or a timer has nobody
         * after it to try: the server answers for it, with a static 500
         * that needs no allocation and a close (the loop writes it when
         * the request has no response object). The caller gets GY_ENOMEM,
         * later calls GY_ESTATE. (Before, the request stayed unanswered
         * until answer_timeout.) */
        gy_ref_clear(&req->response);
        rc = GY_ENOMEM;
        streaming = false;
    } else {
        resp->status = status;
        memcpy(resp->ctype, content_type ? content_type : "", ctl);
        resp->ctype[ctl] = '\0';
        gy_decref(resp);
    }
    req->streaming = streaming;
    req->stream_total = total;
    /* release: the loop that writes the answer sees everything built. */
    atomic_store_explicit(&req->answered, 1, memory_order_release);
    gy__build_unlock(req);
    gy__loop *cur = gy__loop_current();
    if (cur == req->loop) {
        gy__conn_answered(cur, req);
    } else {
        gy_incref(req);
        gy__loop_post(req->loop, GY__POST_ANSWER, req, NULL);
    }
    return rc;
}

bool gy__request_claim(gy_request *req) {
    gy__build_lock(req);
    bool mine = !atomic_load_explicit(&req->answered, memory_order_relaxed);
    if (mine) {
        /* release: as an answer (nothing was built). */
        atomic_store_explicit(&req->answered, 1, memory_order_release);
    }
    gy__build_unlock(req);
    return mine;
}

int gy_request_respond(gy_request *req, int status, const char *content_type, const void *body,
                       size_t len) {
    return gy__respond(req, status, content_type, body, len, false, 0);
}

int gy_request_stream_begin(gy_request *req, int status, const char *content_type,
                            uint64_t content_length) {
    return gy__respond(req, status, content_type, NULL, 0, true, content_length);
}

/* stream_written once a piece could not be made: the answer is cut. */
#define GY__STREAM_CUT UINT64_MAX

int gy_request_stream_write(gy_request *req, const void *data, size_t len) {
    if (!req->streaming || !atomic_load_explicit(&req->answered, memory_order_acquire) ||
        req->stream_written == GY__STREAM_CUT) {
        return GY_ESTATE;
    }
    if (len > req->stream_total - req->stream_written) {
        return GY_ERANGE;
    }
    if (len == 0) {
        return GY_OK;
    }
    gy_bytes *b;
    int rc = GY_OK;
    if (gy_bytes_new(&b, data, len) == GY_OK) {
        req->stream_written += len;
    } else {
        /* The head promised stream_total bytes and this piece is lost, so
         * the answer can never be whole: cut it. The loop closes the
         * connection after the pieces already handed over (a NULL piece),
         * so the client sees a short body and a close, never a hang or
         * another body; later writes get GY_ESTATE. (Before, the piece was
         * just dropped: the connection waited for it for ever.) */
        b = NULL;
        req->stream_written = GY__STREAM_CUT;
        rc = GY_ENOMEM;
    }
    gy__loop *cur = gy__loop_current();
    if (cur == req->loop) {
        gy__conn_stream_chunk(cur, req, b);
    } else {
        gy_incref(req);
        gy__loop_post(req->loop, GY__POST_CHUNK, req, b);
    }
    return rc;
}
