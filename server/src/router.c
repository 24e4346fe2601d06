/* server/src/router.c: the route table: exact paths and "/prefix/...". */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

static bool gy__is_token(const char *s) {
    if (*s == '\0') {
        return false;
    }
    for (; *s; s++) {
        if (!gy__is_tchar((unsigned char)*s)) {
            return false;
        }
    }
    return true;
}

int gy__router_add(gy__router *r, const char *method, const char *path, gy_handler_fn fn,
                   void *arg) {
    if (method == NULL || path == NULL || fn == NULL || !gy__is_token(method) || path[0] != '/') {
        return GY_EINVAL;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->routes[i].method, method) == 0 && strcmp(r->routes[i].path, path) == 0) {
            return GY_EEXIST;
        }
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        gy__route *nr = realloc(r->routes, cap * sizeof *nr);
        if (nr == NULL) {
            return GY_ENOMEM;
        }
        r->routes = nr;
        r->cap = cap;
    }
    gy__route *e = &r->routes[r->n];
    e->method = strdup(method);
    e->path = strdup(path);
    if (e->method == NULL || e->path == NULL) {
        free(e->method);
        free(e->path);
        return GY_ENOMEM;
    }
    size_t len = strlen(path);
    e->prefix_len = (len >= 4 && strcmp(path + len - 4, "/...") == 0) ? len - 3 : 0;
    e->handler = fn;
    e->arg = arg;
    r->n++;
    return GY_OK;
}

void gy__router_free(gy__router *r) {
    for (size_t i = 0; i < r->n; i++) {
        free(r->routes[i].method);
        free(r->routes[i].path);
    }
    free(r->routes);
    memset(r, 0, sizeof *r);
}

static bool gy__route_matches(const gy__route *e, const char *path, size_t len) {
    if (e->prefix_len != 0) {
        return len > e->prefix_len && memcmp(path, e->path, e->prefix_len) == 0;
    }
    return strlen(e->path) == len && memcmp(path, e->path, len) == 0;
}

gy__route_result gy__router_find(const gy__router *r, const char *method, const char *path,
                                 size_t path_len, const gy__route **out, char *allow,
                                 size_t allow_size) {
    bool path_seen = false;
    size_t used = 0;
    if (allow_size > 0) {
        allow[0] = '\0';
    }
    /* An exact path wins over a prefix route. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < r->n; i++) {
            const gy__route *e = &r->routes[i];
            if ((pass == 0) != (e->prefix_len == 0) || !gy__route_matches(e, path, path_len)) {
                continue;
            }
            if (strcmp(e->method, method) == 0 ||
                (strcmp(method, "HEAD") == 0 && strcmp(e->method, "GET") == 0)) {
                *out = e;
                return GY__ROUTE_FOUND;
            }
            path_seen = true;
            size_t ml = strlen(e->method);
            if (used + ml + 3 < allow_size) {
                if (used > 0) {
                    memcpy(allow + used, ", ", 2);
                    used += 2;
                }
                memcpy(allow + used, e->method, ml + 1);
                used += ml;
            }
        }
        if (path_seen) {
            break;
        }
    }
    return path_seen ? GY__ROUTE_NO_METHOD : GY__ROUTE_NO_PATH;
}
