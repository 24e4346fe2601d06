/* server/src/http.c: llhttp's callbacks: collect one request's target,
 * headers and body within the limits, and apply the RFC 9112 / 9110 rules
 * that llhttp 8.1's strict mode leaves to the server (see "the gaps" below).
 *
 * Every check that fails sets io->error_status and returns -1: llhttp stops
 * with HPE_USER and conn.c answers that status and closes the connection. */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "conn.h"

static int gy__fail(gy__io *io, int status, const char *reason) {
    io->error_status = status;
    io->error_reason = reason;
    return -1;
}

static gy__io *gy__io_of(llhttp_t *p) { return (gy__io *)p->data; }

/* The byte k (>= 1) places before `at`, which lies in the buffer being
 * parsed: from that buffer, else from the previous buffer's last bytes;
 * -1 when unknown. */
static int gy__behind(const gy__io *io, const char *at, size_t k) {
    if ((size_t)(at - io->feed_base) >= k) {
        return (unsigned char)at[-(ptrdiff_t)k];
    }
    size_t back = k - (size_t)(at - io->feed_base); /* into the tail */
    if (back <= io->tail_len) {
        return (unsigned char)io->tail[io->tail_len - back];
    }
    return -1;
}

/* RFC 9110 5.6.2 tchar, as a table. */
static const unsigned char gy__tchars[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

bool gy__is_tchar(unsigned char c) { return gy__tchars[c] != 0; }

void gy__http_reset(gy__io *io) {
    io->hdr.len = 0;
    io->offs.len = 0;
    io->nhdr = 0;
    io->url_len = 0;
    io->header_bytes = 0;
    io->raw_header_bytes = 0;
    io->last = 0;
    io->host_count = 0;
    io->te_chunked = false;
    io->te_seen = false;
    io->te_unknown = false;
    io->version_seen = false;
    io->expect_continue = false;
    io->body.len = 0;
    io->route = NULL;
    io->error_status = 0;
    io->error_reason = NULL;
}

static int gy__on_message_begin(llhttp_t *p) {
    gy__io *io = gy__io_of(p);
    gy__http_reset(io);
    io->in_headers = true;
    io->in_message = true;
    /* The first request's deadline runs from the accept; a later request's
     * from its first byte (between requests the idle timeout applies). */
    if (io->tmode != GY__T_HEADERS) {
        gy__io_set_timer(io, GY__T_HEADERS,
                         (uint64_t)gy__lim(&io->loop->srv->lim.header_timeout_ms));
    }
    return 0;
}

/* RFC 9112 3: single spaces around the target (llhttp skips several: a
 * SHOULD-400 that smuggling probes use). Looks behind the first byte of the
 * target (or of the version): the separator must be one SP. */
static int gy__check_single_sp(gy__io *io, const char *at, size_t sep_at) {
    int before = gy__behind(io, at, sep_at + 1);
    if (before == ' ' || before == '\t') {
        return gy__fail(io, 400, "malformed request line");
    }
    return 0;
}

/* RFC 9112 2.3: the version is "HTTP/" DIGIT "." DIGIT; llhttp also takes
 * RTSP/ and ICE/ (for their methods) and reports only the digits. */
static int gy__on_version(llhttp_t *p, const char *at, size_t len) {
    gy__io *io = gy__io_of(p);
    (void)len;
    if (io->version_seen) {
        return 0; /* a later piece of the same version */
    }
    io->version_seen = true;
    static const char proto[] = "HTTP/";
    for (size_t k = 1; k <= 5; k++) {
        int c = gy__behind(io, at, k);
        if (c != -1 && c != proto[5 - k]) {
            return gy__fail(io, 400, "not an HTTP request");
        }
    }
    return gy__check_single_sp(io, at, 6); /* "/  HTTP/1.1" */
}

static int gy__count_header_bytes(gy__io *io, size_t n) {
    io->header_bytes += n;
    if (io->header_bytes > (size_t)gy__lim(&io->loop->srv->lim.max_header_bytes)) {
        return gy__fail(io, 431, "request header fields too large");
    }
    return 0;
}

static int gy__on_url(llhttp_t *p, const char *at, size_t len) {
    gy__io *io = gy__io_of(p);
    if (io->url_len == 0 && gy__check_single_sp(io, at, 1) != 0) {
        return -1;
    }
    io->url_len += len;
    if (io->url_len > (size_t)gy__lim(&io->loop->srv->lim.max_uri_bytes)) {
        return gy__fail(io, 414, "request target too long");
    }
    /* RFC 9112 3.2: the target has no whitespace or control characters;
     * llhttp rejects most, the check costs nothing. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)at[i];
        if (c <= 0x20 || c == 0x7f) {
            return gy__fail(io, 400, "invalid character in request target");
        }
    }
    if (gy__count_header_bytes(io, len) != 0 || !gy__buf_append(&io->hdr, at, len)) {
        return io->error_status ? -1 : gy__fail(io, 503, "out of memory");
    }
    return 0;
}

static int gy__on_url_complete(llhttp_t *p) {
    gy__io *io = gy__io_of(p);
    /* Split "path?query" into "path\0query\0" (a fragment is not sent by
     * clients; RFC 9110 4.2.1 says to strip it if present). */
    size_t n = io->hdr.len;
    if (!gy__buf_reserve(&io->hdr, 2)) {
        return gy__fail(io, 503, "out of memory");
    }
    char *u = io->hdr.p;
    /* RFC 9112 3.2.2: a server MUST accept the absolute form; route on its
     * path (the authority is not checked against Host: no virtual hosts). */
    size_t skip = 0;
    if (n >= 7 && strncasecmp(u, "http://", 7) == 0) {
        skip = 7;
    } else if (n >= 8 && strncasecmp(u, "https://", 8) == 0) {
        skip = 8;
    }
    if (skip > 0) {
        char *slash = memchr(u + skip, '/', n - skip);
        char *qm = memchr(u + skip, '?', n - skip);
        if (slash == NULL || (qm != NULL && qm < slash)) {
            /* "http://a" or "http://a?q": the path is "/". */
            size_t rest = qm ? (size_t)(u + n - qm) : 0;
            u[0] = '/';
            if (rest > 0) {
                memmove(u + 1, qm, rest);
            }
            n = 1 + rest;
        } else {
            n = (size_t)(u + n - slash);
            memmove(u, slash, n);
        }
        io->hdr.len = n;
    }
    char *hash = memchr(u, '#', n);
    if (hash != NULL) {
        n = (size_t)(hash - u);
    }
    char *q = memchr(u, '?', n);
    if (q != NULL) {
        *q = '\0';
        u[n] = '\0';
        io->hdr.len = n + 1;
    } else {
        u[n] = '\0';
        u[n + 1] = '\0';
        io->hdr.len = n + 2;
    }
    return 0;
}

static bool gy__offs_push(gy__io *io) {
    uint32_t off = (uint32_t)io->hdr.len;
    return gy__buf_append(&io->offs, &off, sizeof off);
}

/* Fields after the last chunk are trailers: counted against the header
 * limit, never used (not for framing: RFC 9110 6.5.1). */
static int gy__trailer_bytes(gy__io *io, size_t len) { return gy__count_header_bytes(io, len); }

static int gy__on_header_field(llhttp_t *p, const char *at, size_t len) {
    gy__io *io = gy__io_of(p);
    if (!io->in_headers) {
        return gy__trailer_bytes(io, len + 4);
    }
    if (io->last != 1) {
        if (io->nhdr + 1 > (uint32_t)gy__lim(&io->loop->srv->lim.max_header_count)) {
            return gy__fail(io, 431, "too many header fields");
        }
        if (gy__count_header_bytes(io, 4) != 0) {
            return -1;
        }
        if (!gy__offs_push(io)) {
            return gy__fail(io, 503, "out of memory");
        }
        io->last = 1;
    }
    if (gy__count_header_bytes(io, len) != 0) {
        return -1;
    }
    if (!gy__buf_append(&io->hdr, at, len)) {
        return gy__fail(io, 503, "out of memory");
    }
    return 0;
}

static int gy__on_header_field_complete(llhttp_t *p) {
    gy__io *io = gy__io_of(p);
    if (!io->in_headers) {
        return 0;
    }
    /* RFC 9110 5.1: a field name is a token; llhttp 8.1 accepts an empty
     * one (": x"). */
    const uint32_t *o = (const uint32_t *)(const void *)io->offs.p;
    const char *name = io->hdr.p + o[2 * io->nhdr];
    size_t nlen = io->hdr.len - o[2 * io->nhdr];
    if (nlen == 0) {
        return gy__fail(io, 400, "empty header field name");
    }
    for (size_t i = 0; i < nlen; i++) {
        if (!gy__is_tchar((unsigned char)name[i])) {
            return gy__fail(io, 400, "invalid header field name");
        }
    }
    if (!gy__buf_append(&io->hdr, "", 1) || !gy__offs_push(io)) {
        return gy__fail(io, 503, "out of memory");
    }
    io->last = 2;
    return 0;
}

static int gy__on_header_value(llhttp_t *p, const char *at, size_t len) {
    gy__io *io = gy__io_of(p);
    if (!io->in_headers) {
        return gy__trailer_bytes(io, len);
    }
    /* RFC 9112 5.2: obs-fold (a line starting with SP or HTAB continuing a
     * value) is rejected with 400; llhttp 8.1 joins it silently. A value span
     * preceded by LF (after skipping SP/HTAB) starts a folded line. */
    if (len > 0) {
        size_t k = 1;
        int c;
        while ((c = gy__behind(io, at, k)) == ' ' || c == '\t') {
            k++;
        }
        if (c == '\n') {
            return gy__fail(io, 400, "obsolete line folding in a header field");
        }
    }
    if (gy__count_header_bytes(io, len) != 0) {
        return -1;
    }
    if (!gy__buf_append(&io->hdr, at, len)) {
        return gy__fail(io, 503, "out of memory");
    }
    return 0;
}

/* RFC 9110 7.2 / 4.2.3: Host is uri-host [ ":" port ]: reg-name, IPv4 or
 * an IP literal in brackets; no userinfo, path or whitespace. */
static bool gy__host_valid(const char *v, size_t n) {
    if (n == 0) {
        return true; /* an empty Host is allowed (RFC 9110 7.2, no authority) */
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-._~!$&'()*+,;=:[]%", c))) {
            return false;
        }
    }
    return true;
}

static bool gy__token_eq(const char *s, size_t n, const char *word) {
    size_t wl = strlen(word);
    return n == wl && strncasecmp(s, word, n) == 0;
}

/* Transfer-Encoding: a list of codings; we understand only chunked, once,
 * last (RFC 9112 6.1, 6.3, 7). */
static int gy__check_te(gy__io *io, const char *v, size_t n) {
    const char *s = v, *end = v + n;
    while (s < end) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == ',')) {
            s++;
        }
        const char *e = s;
        while (e < end && *e != ',') {
            e++;
        }
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t')) {
            t--;
        }
        if (t > s) {
            if (io->te_chunked) {
                /* Something after chunked, or chunked twice. */
                return gy__fail(io, 400, "chunked must be the final transfer coding, once");
            }
            if (gy__token_eq(s, (size_t)(t - s), "chunked")) {
                io->te_chunked = true;
            } else {
                io->te_unknown = true; /* 501, unless chunked is not last (400) */
            }
        }
        s = e;
    }
    return 0;
}

static int gy__on_header_value_complete(llhttp_t *p) {
    gy__io *io = gy__io_of(p);
    if (!io->in_headers) {
        return 0;
    }
    const uint32_t *o = (const uint32_t *)(const void *)io->offs.p;
    const char *name = io->hdr.p + o[2 * io->nhdr];
    const char *value = io->hdr.p + o[2 * io->nhdr + 1];
    size_t vlen = io->hdr.len - o[2 * io->nhdr + 1];
    /* RFC 9110 5.5: field-value is VCHAR, obs-text, SP and HTAB; a server
     * MUST reject CR, LF and NUL and should reject other controls. llhttp
     * 8.1 lets some through (gap 1). */
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return gy__fail(io, 400, "invalid character in header field value");
        }
    }
    /* Trailing whitespace is not part of the value (RFC 9110 5.5). */
    while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t')) {
        vlen--;
    }
    io->hdr.len = o[2 * io->nhdr + 1] + vlen;
    if (!gy__buf_append(&io->hdr, "", 1)) {
        return gy__fail(io, 503, "out of memory");
    }
    /* The offsets were relative to a buffer that may have moved: they are
     * offsets, so nothing to fix. */
    char c0 = (char)(name[0] | 0x20); /* a cheap filter before strcasecmp */
    if (c0 == 'h' && strcasecmp(name, "host") == 0) {
        /* RFC 9112 3.2: more than one Host, or an invalid one: 400 (gap). */
        if (++io->host_count > 1) {
            return gy__fail(io, 400, "more than one Host header");
        }
        if (!gy__host_valid(value, vlen)) {
            return gy__fail(io, 400, "invalid Host header");
        }
    } else if (c0 == 't' && strcasecmp(name, "transfer-encoding") == 0) {
        io->te_seen = true;
        if (gy__check_te(io, value, vlen) != 0) {
            return -1;
        }
    } else if (c0 == 'e' && strcasecmp(name, "expect") == 0) {
        if (gy__token_eq(value, vlen, "100-continue")) {
            io->expect_continue = true;
        } else {
            return gy__fail(io, 417, "unsupported expectation");
        }
    }
    io->nhdr++;
    io->last = 0;
    return 0;
}

static int gy__on_headers_complete(llhttp_t *p) {
    gy__io *io = gy__io_of(p);
    gy_server *srv = io->loop->srv;
    io->in_headers = false;
    if (p->http_major != 1) {
        return gy__fail(io, 505, "HTTP version not supported");
    }
    /* RFC 9112 3.2: an HTTP/1.1 request without Host is rejected (gap). */
    if (p->http_minor >= 1 && io->host_count == 0) {
        return gy__fail(io, 400, "missing Host header");
    }
    bool has_te = (p->flags & F_TRANSFER_ENCODING) != 0;
    /* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request means faulty
     * framing (gap). */
    if (has_te && p->http_minor == 0) {
        return gy__fail(io, 400, "Transfer-Encoding in an HTTP/1.0 request");
    }
    if (has_te && (p->flags & F_CONTENT_LENGTH)) {
        return gy__fail(io, 400, "both Content-Length and Transfer-Encoding");
    }
    /* An empty Transfer-Encoding sets no llhttp flag and would frame the
     * request as bodiless (gap). */
    if (io->te_seen && !has_te) {
        return gy__fail(io, 400, "empty Transfer-Encoding");
    }
    if (has_te && !io->te_chunked) {
        return gy__fail(io, 400, "chunked is not the final transfer coding");
    }
    /* RFC 9112 6.1: a coding we do not understand (gzip, chunked): 501. */
    if (io->te_unknown) {
        return gy__fail(io, 501, "transfer coding not implemented");
    }
    bool body = has_te || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    if ((p->flags & F_CONTENT_LENGTH) &&
        p->content_length > (uint64_t)gy__lim(&srv->lim.max_body_bytes)) {
        return gy__fail(io, 413, "request body too large");
    }
    if (p->method == HTTP_CONNECT) {
        return gy__fail(io, 501, "CONNECT not implemented");
    }
    const char *method = llhttp_method_name((llhttp_method_t)p->method);
    const char *path = io->hdr.p;
    io->route_result = gy__router_find(&srv->router, method, path, strlen(path), &io->route,
                                       io->allow, sizeof io->allow);
    if (body) {
        /* RFC 9110 10.1.1: to "Expect: 100-continue", 100 before reading
         * the body, or the final status at once (then close: the body is
         * not read). Never a 1xx to an HTTP/1.0 client (RFC 9110 15.2). */
        if (io->expect_continue && p->http_minor >= 1) {
            if (io->route_result == GY__ROUTE_NO_PATH) {
                return gy__fail(io, 404, "not found");
            }
            if (io->route_result == GY__ROUTE_NO_METHOD) {
                return gy__fail(io, 405, "method not allowed");
            }
            if (atomic_load_explicit(&srv->heap_over, memory_order_relaxed)) {
                return gy__fail(io, 503, "heap over max_heap_bytes");
            }
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            gy__buf_append(&io->out, cont, sizeof cont - 1);
        }
        io->body_start_ms = uv_now(&io->loop->uv);
        io->body_bytes = 0;
        gy__io_set_timer(io, GY__T_BODY, 1000);
    } else {
        gy__io_set_timer(io, GY__T_NONE, 0);
    }
    return 0;
}

static int gy__on_body(llhttp_t *p, const char *at, size_t len) {
    gy__io *io = gy__io_of(p);
    io->body_bytes += len;
    if (io->body.len + len > (size_t)gy__lim(&io->loop->srv->lim.max_body_bytes)) {
        return gy__fail(io, 413, "request body too large");
    }
    if (!gy__buf_append(&io->body, at, len)) {
        return gy__fail(io, 503, "out of memory");
    }
    return 0;
}

static int gy__on_message_complete(llhttp_t *p) {
    gy__io *io = gy__io_of(p);
    io->in_message = false;
    gy__io_set_timer(io, GY__T_NONE, 0); /* the handler's time is not limited */
    return gy__io_dispatch(io);
}

const llhttp_settings_t gy__http_settings = {
    .on_message_begin = gy__on_message_begin,
    .on_version = gy__on_version,
    .on_url = gy__on_url,
    .on_url_complete = gy__on_url_complete,
    .on_header_field = gy__on_header_field,
    .on_header_field_complete = gy__on_header_field_complete,
    .on_header_value = gy__on_header_value,
    .on_header_value_complete = gy__on_header_value_complete,
    .on_headers_complete = gy__on_headers_complete,
    .on_body = gy__on_body,
    .on_message_complete = gy__on_message_complete,
};

int gy__http_error_status(gy__io *io, llhttp_errno_t e, const char **reason) {
    (void)e;
    if (io->error_status != 0) { /* our check (HPE_USER or HPE_CB_*) */
        *reason = io->error_reason;
        return io->error_status;
    }
    *reason = llhttp_errno_name(e);
    switch (e) {
    case HPE_INVALID_METHOD:
        return 501; /* RFC 9110 9.1: an unrecognized method */
    case HPE_INVALID_VERSION:
        return 505;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
    case HPE_INVALID_TRANSFER_ENCODING:
    default:
        return 400;
    }
}
