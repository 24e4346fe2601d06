/* server/ops/admin_heap.c: the leak-hunting admin commands: objects.* (the
 * live heap, through gyre/introspect.h) and tracemalloc.* (allocation
 * traces and named snapshots, through gyre/trace.h). They run on the
 * control thread; those that need a consistent heap stop the world for
 * their walk (HTTP loops pause at their next safe point). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "gyre/introspect.h"
#include "gyre/trace.h"

static int gy__count_arg(const char *s, long dflt, long *out, gy_errmsg *err) {
    if (s == NULL) {
        *out = dflt;
        return GY_OK;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < 1 || v > 1000000) {
        return gy__server_errmsg(err, GY_EINVAL, "N '%s': must be 1..1000000", s);
    }
    *out = v;
    return GY_OK;
}

json_t *gy__admin_object_json(const gy_object *ob) {
    gy_id id = gy_object_id(ob);
    char buf[48];
    snprintf(buf, sizeof buf, "0x%" PRIx64 ":%" PRIu64, id.addr, id.serial);
    return json_pack("{s:s, s:s}", "id", buf, "type", gy_type_of(ob)->name);
}

/* "0xADDR:SERIAL" -> a NEW reference, or an error. */
static int gy__obj_arg(const char *s, gy_object **out, gy_errmsg *err) {
    gy_id id;
    char *end;
    errno = 0;
    id.addr = strtoull(s, &end, 16);
    if (errno != 0 || *end != ':') {
        return gy__server_errmsg(err, GY_EINVAL, "ID '%s': expected 0xADDR:SERIAL (from an answer)",
                                 s);
    }
    id.serial = strtoull(end + 1, &end, 10);
    if (errno != 0 || *end != '\0') {
        return gy__server_errmsg(err, GY_EINVAL, "ID '%s': expected 0xADDR:SERIAL (from an answer)",
                                 s);
    }
    if (gy_object_from_id(id, out) != GY_OK) {
        return gy__server_errmsg(err, GY_ESTALE, "object %s no longer exists", s);
    }
    return GY_OK;
}

static json_t *gy__objs_json(const gy_objects *o, long n) {
    json_t *arr = json_array();
    for (size_t i = 0; i < o->len && (long)i < n; i++) {
        json_array_append_new(arr, gy__admin_object_json(o->items[i]));
    }
    return arr;
}

/* --- objects.* ------------------------------------------------------------------- */

typedef struct gy__type_row {
    const gy_type *type;
    int64_t live, bytes;
} gy__type_row;

typedef struct gy__type_rows {
    gy__type_row *rows;
    size_t n, cap;
    const char *want; /* objects.by_type: the name looked for */
    const gy_type *found;
} gy__type_rows;

static int gy__collect_type(const gy_type *type, const gy_type_stats *st, void *arg) {
    gy__type_rows *r = arg;
    if (r->want != NULL) {
        if (strcmp(type->name, r->want) == 0) {
            r->found = type;
            return 1;
        }
        return 0;
    }
    if (st->live <= 0) {
        return 0;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        gy__type_row *nr = realloc(r->rows, cap * sizeof *nr);
        if (nr == NULL) {
            return GY_ENOMEM;
        }
        r->rows = nr;
        r->cap = cap;
    }
    r->rows[r->n++] = (gy__type_row){type, st->live, st->bytes};
    return 0;
}

static int gy__by_live(const void *a, const void *b) {
    const gy__type_row *x = a, *y = b;
    return x->live < y->live ? 1 : x->live > y->live ? -1 : strcmp(x->type->name, y->type->name);
}

int gy__cmd_objects_types(gy__admin_session *s, int argc, char **argv, json_t **out,
                          gy_errmsg *err) {
    (void)s;
    long n;
    if (gy__count_arg(argc ? argv[0] : NULL, 20, &n, err) != GY_OK) {
        return err->code;
    }
    gy__type_rows r = {0};
    if (gy_types_foreach(gy__collect_type, &r) != 0) {
        free(r.rows);
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    if (r.n > 1) {
        qsort(r.rows, r.n, sizeof *r.rows, gy__by_live);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < r.n && (long)i < n; i++) {
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "type", r.rows[i].type->name,
                                             "count", (json_int_t)r.rows[i].live, "bytes",
                                             (json_int_t)r.rows[i].bytes));
    }
    free(r.rows);
    *out = arr;
    return GY_OK;
}

int gy__cmd_objects_growth(gy__admin_session *s, int argc, char **argv, json_t **out,
                           gy_errmsg *err) {
    (void)s;
    long n;
    if (gy__count_arg(argc ? argv[0] : NULL, 20, &n, err) != GY_OK) {
        return err->code;
    }
    gy_type_growth rows[64];
    size_t got = 0;
    int rc = gy_types_growth(rows, n < 64 ? (size_t)n : 64, &got);
    if (rc != GY_OK) {
        return gy__server_errmsg(err, rc, "%s", gy_strerror(rc));
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < got; i++) {
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "type", rows[i].type->name, "count",
                                             (json_int_t)rows[i].count, "delta",
                                             (json_int_t)rows[i].delta));
    }
    *out = arr;
    return GY_OK;
}

int gy__cmd_objects_by_type(gy__admin_session *s, int argc, char **argv, json_t **out,
                            gy_errmsg *err) {
    (void)s;
    long n;
    if (gy__count_arg(argc > 1 ? argv[1] : NULL, 100, &n, err) != GY_OK) {
        return err->code;
    }
    gy__type_rows r = {.want = argv[0]};
    gy_types_foreach(gy__collect_type, &r);
    if (r.found == NULL) {
        return gy__server_errmsg(err, GY_ENOENT, "no type '%s' (objects.types lists them)",
                                 argv[0]);
    }
    gy_objects o;
    int rc = gy_objects_by_type(r.found, (size_t)n, &o);
    if (rc != GY_OK) {
        return gy__server_errmsg(err, rc, "%s", gy_strerror(rc));
    }
    *out = gy__objs_json(&o, n);
    gy_objects_release(&o);
    return GY_OK;
}

static int gy__refs(int argc, char **argv, json_t **out, gy_errmsg *err, bool referrers) {
    long n;
    if (gy__count_arg(argc > 1 ? argv[1] : NULL, 100, &n, err) != GY_OK) {
        return err->code;
    }
    gy_object *ob;
    if (gy__obj_arg(argv[0], &ob, err) != GY_OK) {
        return err->code;
    }
    gy_objects o;
    int rc = referrers ? gy_objects_referrers(ob, &o) : gy_objects_referents(ob, &o);
    gy_decref(ob);
    if (rc != GY_OK) {
        return gy__server_errmsg(err, rc, "%s", gy_strerror(rc));
    }
    *out = gy__objs_json(&o, n);
    gy_objects_release(&o);
    return GY_OK;
}

int gy__cmd_objects_referents(gy__admin_session *s, int argc, char **argv, json_t **out,
                              gy_errmsg *err) {
    (void)s;
    return gy__refs(argc, argv, out, err, false);
}

int gy__cmd_objects_referrers(gy__admin_session *s, int argc, char **argv, json_t **out,
                              gy_errmsg *err) {
    (void)s;
    return gy__refs(argc, argv, out, err, true);
}

int gy__cmd_objects_backrefs(gy__admin_session *s, int argc, char **argv, json_t **out,
                             gy_errmsg *err) {
    (void)s;
    gy_backrefs_format f = GY_BACKREFS_TEXT;
    if (argc == 2) {
        if (strcmp(argv[1], "dot") != 0) {
            return gy__server_errmsg(err, GY_EINVAL, "expected 'dot', got '%s'", argv[1]);
        }
        f = GY_BACKREFS_DOT;
    }
    gy_object *ob;
    if (gy__obj_arg(argv[0], &ob, err) != GY_OK) {
        return err->code;
    }
    char *text = NULL;
    int rc = gy_backrefs(ob, f, &text);
    gy_decref(ob);
    if (rc == GY_ENOENT) {
        return gy__server_errmsg(err, rc, "no chain from a root: held only from outside the heap");
    }
    if (rc != GY_OK) {
        return gy__server_errmsg(err, rc, "%s", gy_strerror(rc));
    }
    *out = json_string(text);
    free(text);
    return GY_OK;
}

/* --- tracemalloc.* ------------------------------------------------------------------ */

static gy__snap *gy__snap_find(gy__admin *a, const char *name) {
    for (size_t i = 0; i < a->nsnaps; i++) {
        if (strcmp(a->snaps[i].name, name) == 0) {
            return &a->snaps[i];
        }
    }
    return NULL;
}

void gy__admin_snaps_free(gy__admin *a) {
    for (size_t i = 0; i < a->nsnaps; i++) {
        gy_snapshot_free(a->snaps[i].snap);
    }
    free(a->snaps);
    a->snaps = NULL;
    a->nsnaps = 0;
}

int gy__cmd_trace_start(gy__admin_session *s, int argc, char **argv, json_t **out, gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    gy_trace_start();
    *out = json_true();
    return GY_OK;
}

int gy__cmd_trace_stop(gy__admin_session *s, int argc, char **argv, json_t **out, gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    gy_trace_stop();
    *out = json_false();
    return GY_OK;
}

int gy__cmd_trace_memory(gy__admin_session *s, int argc, char **argv, json_t **out,
                         gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    size_t cur, peak;
    gy_trace_get_traced_memory(&cur, &peak);
    *out = json_pack("{s:b, s:I, s:I}", "tracing", gy_trace_is_tracing(), "current",
                     (json_int_t)cur, "peak", (json_int_t)peak);
    return GY_OK;
}

int gy__cmd_trace_snapshot(gy__admin_session *s, int argc, char **argv, json_t **out,
                           gy_errmsg *err) {
    (void)argc;
    gy_server *srv = s->srv;
    gy__admin *adm = gy__admin_of(srv);
    const char *name = argv[0];
    if (strlen(name) >= sizeof adm->snaps[0].name) {
        return gy__server_errmsg(err, GY_EINVAL, "NAME longer than %zu bytes",
                                 sizeof adm->snaps[0].name - 1);
    }
    if (!gy_trace_is_tracing()) {
        return gy__server_errmsg(err, GY_ESTATE, "not tracing (tracemalloc.start first)");
    }
    gy__snap *old = gy__snap_find(adm, name);
    size_t max = (size_t)gy_server_config_int(srv, "tracemalloc_max_snapshots");
    if (old == NULL && adm->nsnaps >= max) {
        return gy__server_errmsg(err, GY_ERANGE,
                                 "%zu snapshots kept already (tracemalloc_max_snapshots); "
                                 "replace one by its name",
                                 adm->nsnaps);
    }
    gy_snapshot *snap;
    if (gy_trace_take_snapshot(&snap) != GY_OK) {
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    size_t maxt = (size_t)gy_server_config_int(srv, "tracemalloc_max_traces");
    if (snap->len > maxt) {
        size_t len = snap->len;
        gy_snapshot_free(snap);
        return gy__server_errmsg(err, GY_ERANGE, "%zu traces, over tracemalloc_max_traces (%zu)",
                                 len, maxt);
    }
    if (old != NULL) {
        gy_snapshot_free(old->snap);
        old->snap = snap;
    } else {
        gy__snap *ns = realloc(adm->snaps, (adm->nsnaps + 1) * sizeof *ns);
        if (ns == NULL) {
            gy_snapshot_free(snap);
            return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
        }
        adm->snaps = ns;
        snprintf(ns[adm->nsnaps].name, sizeof ns[0].name, "%s", name);
        ns[adm->nsnaps++].snap = snap;
    }
    *out = json_pack("{s:s, s:I}", "name", name, "traces", (json_int_t)snap->len);
    return GY_OK;
}

int gy__cmd_trace_filter(gy__admin_session *s, int argc, char **argv, json_t **out,
                         gy_errmsg *err) {
    (void)argc;
    gy__snap *sn = gy__snap_find(gy__admin_of(s->srv), argv[0]);
    if (sn == NULL) {
        return gy__server_errmsg(err, GY_ENOENT, "no snapshot '%s'", argv[0]);
    }
    bool inclusive = strcmp(argv[1], "include") == 0;
    if (!inclusive && strcmp(argv[1], "exclude") != 0) {
        return gy__server_errmsg(err, GY_EINVAL, "expected include or exclude, got '%s'", argv[1]);
    }
    /* PATTERN: a file glob, or tag=GLOB for tags. */
    gy_trace_filter f = {.inclusive = inclusive};
    if (strncmp(argv[2], "tag=", 4) == 0) {
        f.tag_pattern = argv[2] + 4;
    } else {
        f.file_pattern = argv[2];
    }
    gy_snapshot *filtered;
    if (gy_snapshot_filter(sn->snap, &f, 1, &filtered) != GY_OK) {
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    gy_snapshot_free(sn->snap);
    sn->snap = filtered;
    *out = json_pack("{s:s, s:I}", "name", sn->name, "traces", (json_int_t)filtered->len);
    return GY_OK;
}

static int gy__group_arg(const char *s, gy_trace_group *g, gy_errmsg *err) {
    if (strcmp(s, "site") == 0) {
        *g = GY_TRACE_BY_SITE;
    } else if (strcmp(s, "tag") == 0) {
        *g = GY_TRACE_BY_TAG;
    } else if (strcmp(s, "type") == 0) {
        *g = GY_TRACE_BY_TYPE;
    } else {
        return gy__server_errmsg(err, GY_EINVAL, "group '%s': site, tag or type", s);
    }
    return GY_OK;
}

static json_t *gy__stats_json(const gy_trace_stat *st, size_t n, long limit, gy_trace_group g,
                              bool diff) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n && (long)i < limit; i++) {
        char where[300];
        if (g == GY_TRACE_BY_SITE) {
            snprintf(where, sizeof where, "%s:%d", st[i].file, st[i].line);
        } else if (g == GY_TRACE_BY_TAG) {
            snprintf(where, sizeof where, "%s", st[i].tag ? st[i].tag : "(untagged)");
        } else {
            snprintf(where, sizeof where, "%s", st[i].type ? st[i].type->name : "?");
        }
        json_t *row = json_pack("{s:s, s:I, s:I}", "where", where, "size", (json_int_t)st[i].size,
                                "count", (json_int_t)st[i].count);
        if (diff) {
            json_object_set_new(row, "size_diff", json_integer((json_int_t)st[i].size_diff));
            json_object_set_new(row, "count_diff", json_integer((json_int_t)st[i].count_diff));
        }
        json_array_append_new(arr, row);
    }
    return arr;
}

/* tracemalloc.top [NAME] [site|tag|type] [N] */
int gy__cmd_trace_top(gy__admin_session *s, int argc, char **argv, json_t **out, gy_errmsg *err) {
    int i = 0;
    gy__snap *sn = NULL;
    gy_trace_group g = GY_TRACE_BY_SITE;
    long n = 10;
    if (i < argc && gy__group_arg(argv[i], &g, err) != GY_OK) {
        /* not a group: a snapshot name */
        sn = gy__snap_find(gy__admin_of(s->srv), argv[i]);
        if (sn == NULL) {
            return gy__server_errmsg(err, GY_ENOENT, "no snapshot '%s'", argv[i]);
        }
        i++;
        if (i < argc && gy__group_arg(argv[i], &g, err) == GY_OK) {
            i++;
        }
    } else if (i < argc) {
        i++;
    }
    if (i < argc && gy__count_arg(argv[i++], 10, &n, err) != GY_OK) {
        return err->code;
    }
    if (i != argc) {
        return gy__server_errmsg(err, GY_EINVAL, "unexpected '%s'", argv[i]);
    }
    gy_snapshot *fresh = NULL;
    if (sn == NULL) {
        if (!gy_trace_is_tracing()) {
            return gy__server_errmsg(err, GY_ESTATE, "not tracing (tracemalloc.start first)");
        }
        if (gy_trace_take_snapshot(&fresh) != GY_OK) {
            return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
        }
    }
    gy_trace_stat *st = NULL;
    size_t ns = 0;
    int rc = gy_snapshot_statistics(sn ? sn->snap : fresh, g, &st, &ns);
    gy_snapshot_free(fresh);
    if (rc != GY_OK) {
        return gy__server_errmsg(err, rc, "out of memory");
    }
    *out = gy__stats_json(st, ns, n, g, false);
    free(st);
    return GY_OK;
}

/* tracemalloc.compare OLD NEW [N] (grouped by site) */
int gy__cmd_trace_compare(gy__admin_session *s, int argc, char **argv, json_t **out,
                          gy_errmsg *err) {
    gy__admin *adm = gy__admin_of(s->srv);
    gy__snap *a = gy__snap_find(adm, argv[0]), *b = gy__snap_find(adm, argv[1]);
    if (a == NULL || b == NULL) {
        return gy__server_errmsg(err, GY_ENOENT, "no snapshot '%s'", a == NULL ? argv[0] : argv[1]);
    }
    long n;
    if (gy__count_arg(argc > 2 ? argv[2] : NULL, 10, &n, err) != GY_OK) {
        return err->code;
    }
    gy_trace_stat *st = NULL;
    size_t ns = 0;
    if (gy_snapshot_compare(b->snap, a->snap, GY_TRACE_BY_SITE, &st, &ns) != GY_OK) {
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    *out = gy__stats_json(st, ns, n, GY_TRACE_BY_SITE, true);
    free(st);
    return GY_OK;
}
