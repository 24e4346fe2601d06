/* server/src/objects.c: the Gyre types of the server (connection, request,
 * header list, response) and the request's accessors. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "srv.h"

/* --- connection ------------------------------------------------------------ */
static int gy__conn_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((gy__conn *)self)->req, visit, arg);
    return 0;
}
static void gy__conn_clear(gy_object *self) { gy_ref_clear(&((gy__conn *)self)->req); }
/* Loop-affine: its io pointer is only ever read on its loop, and the
 * collector finalizes and clears it there. */
gy_type gy__conn_type = {
    .name = "http_connection",
    .size = sizeof(gy__conn),
    .traverse = gy__conn_traverse,
    .clear = gy__conn_clear,
    .flags = GY_TYPE_LOOP_AFFINE,
};

/* --- header list: holds only bytes, so it is never in a cycle -------------- */
static int gy__headers_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    gy__headers *h = (gy__headers *)self;
    GY_VISIT(&h->blob, visit, arg);
    return 0;
}
static void gy__headers_clear(gy_object *self) {
    gy__headers *h = (gy__headers *)self;
    gy_ref_clear(&h->blob);
}
gy_type gy__headers_type = {
    .name = "http_headers",
    .size = sizeof(gy__headers),
    .traverse = gy__headers_traverse,
    .clear = gy__headers_clear,
    .flags = GY_TYPE_ACYCLIC,
};

/* --- request --------------------------------------------------------------- */
static int gy__request_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    gy_request *r = (gy_request *)self;
    GY_VISIT(&r->conn, visit, arg);
    GY_VISIT(&r->response, visit, arg);
    GY_VISIT(&r->headers, visit, arg);
    GY_VISIT(&r->body, visit, arg);
    return 0;
}
static void gy__request_clear(gy_object *self) {
    gy_request *r = (gy_request *)self;
    gy_ref_clear(&r->conn);
    gy_ref_clear(&r->response);
    gy_ref_clear(&r->headers);
    gy_ref_clear(&r->body);
}
gy_type gy__request_type = {
    .name = "http_request",
    .size = sizeof(gy_request),
    .traverse = gy__request_traverse,
    .clear = gy__request_clear,
};

/* --- response -------------------------------------------------------------- */
static int gy__response_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    gy__response *r = (gy__response *)self;
    GY_VISIT(&r->request, visit, arg);
    GY_VISIT(&r->body, visit, arg);
    GY_VISIT(&r->extra, visit, arg);
    return 0;
}
static void gy__response_clear(gy_object *self) {
    gy__response *r = (gy__response *)self;
    gy_ref_clear(&r->request);
    gy_ref_clear(&r->body);
    gy_ref_clear(&r->extra);
}
gy_type gy__response_type = {
    .name = "http_response",
    .size = sizeof(gy__response),
    .traverse = gy__response_traverse,
    .clear = gy__response_clear,
};

void gy__request_break_cycles(gy_request *req) {
    gy__response *resp = (gy__response *)gy_load(&req->response);
    if (resp != NULL) {
        gy_ref_clear(&resp->request);
        gy_decref(resp);
    }
    gy_ref_clear(&req->conn);
}

/* --- accessors ------------------------------------------------------------- */
/* The header list's blob and offsets stay alive as long as the request
 * holds the list, and the request holds it until it is cleared (only when
 * unreachable), so borrowed pointers into them are safe for a holder. */
static const gy__headers *gy__hdrs(const gy_request *req) {
    return (const gy__headers *)atomic_load_explicit(&req->headers.gy__ptr, memory_order_acquire);
}

static const char *gy__blob(const gy__headers *h) {
    const gy_bytes *b =
        (const gy_bytes *)atomic_load_explicit(&h->blob.gy__ptr, memory_order_acquire);
    return gy_bytes_data(b);
}

static const uint32_t *gy__offs(const gy__headers *h) {
    return (const uint32_t *)(const void *)(gy__blob(h) + h->offs_at);
}

const char *gy_request_method(const gy_request *req) { return req->method; }
const char *gy_request_path(const gy_request *req) { return req->path; }
const char *gy_request_query(const gy_request *req) { return req->query; }
const char *gy_request_path_tail(const gy_request *req) { return req->tail; }
const char *gy_request_route(const gy_request *req) { return req->route ? req->route->path : ""; }
gy_server *gy_request_server(const gy_request *req) { return req->srv; }

size_t gy_request_header_count(const gy_request *req) {
    const gy__headers *h = gy__hdrs(req);
    return h ? h->count : 0;
}

int gy_request_header_at(const gy_request *req, size_t i, const char **name, const char **value) {
    const gy__headers *h = gy__hdrs(req);
    if (h == NULL || i >= h->count) {
        return GY_ERANGE;
    }
    const char *blob = gy__blob(h);
    const uint32_t *o = gy__offs(h);
    *name = blob + o[2 * i];
    *value = blob + o[2 * i + 1];
    return GY_OK;
}

const char *gy_request_header(const gy_request *req, const char *name) {
    const gy__headers *h = gy__hdrs(req);
    if (h == NULL || h->count == 0) {
        return NULL;
    }
    const char *blob = gy__blob(h);
    const uint32_t *o = gy__offs(h);
    for (uint32_t i = 0; i < h->count; i++) {
        if (strcasecmp(blob + o[2 * i], name) == 0) {
            return blob + o[2 * i + 1];
        }
    }
    return NULL;
}

const char *gy_request_body(const gy_request *req, size_t *len) {
    const gy_bytes *b =
        (const gy_bytes *)atomic_load_explicit(&req->body.gy__ptr, memory_order_acquire);
    if (b == NULL) {
        *len = 0;
        return "";
    }
    *len = gy_bytes_len(b);
    return gy_bytes_data(b);
}

int gy_request_query_int(const gy_request *req, const char *key, long *out) {
    size_t kl = strlen(key);
    const char *q = req->query;
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > kl && q[kl] == '=' && strncmp(q, key, kl) == 0) {
            const char *v = q + kl + 1;
            size_t vl = len - kl - 1;
            char buf[32];
            if (vl == 0 || vl >= sizeof buf) {
                return GY_EINVAL;
            }
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            char *end;
            errno = 0;
            long n = strtol(buf, &end, 10);
            if (*end != '\0' || errno != 0 || !(isdigit((unsigned char)buf[0]) || buf[0] == '-')) {
                return GY_EINVAL;
            }
            *out = n;
            return GY_OK;
        }
        q += len + (amp ? 1 : 0);
    }
    return GY_ENOENT;
}
