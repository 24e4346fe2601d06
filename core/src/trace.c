/* core/src/trace.c: allocation tracing (tracemalloc's job).
 *
 * Traces live in 64 stripes keyed by object address, each a mutex and an
 * open-addressing table (linear probing, backward-shift deletion) of trace
 * records. Hooks (trace_hooks.h) reach it only while tracing is on (new
 * allocations) or while traces are held (frees, backing-storage resizes).
 * Snapshots copy the records; everything after that works on the copy.
 */
#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gyre/trace.h"
#include "heap.h"
#include "ptrmap.h"
#include "textbuf.h"
#include "trace_hooks.h"

#define STRIPES 64

_Atomic int gy__trace_on;
_Atomic long gy__trace_held;
static _Atomic long traced_current, traced_peak; /* relaxed: statistics */

typedef struct record {
    gy_object *key; /* NULL: empty */
    gy_trace t;
} record;

typedef struct tstripe {
    pthread_mutex_t lock; /* guards the table */
    record *recs;
    size_t cap, len;
} tstripe;

static tstripe stripes[STRIPES] = {
#define S PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0
    {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S},
    {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S},
    {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S},
    {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S}, {S},
#undef S
};

static _Thread_local const char *current_tag;

static tstripe *stripe_for(const void *p) { return &stripes[gy__ptr_hash(p) >> 58]; }

static size_t rec_find(const tstripe *st, const gy_object *key) {
    return gy__ptrmap_find(st->recs, st->cap, sizeof(record), key);
}

static int rec_grow(tstripe *st) {
    void *table = st->recs;
    int rc = gy__ptrmap_grow(&table, &st->cap, sizeof(record));
    st->recs = table;
    return rc;
}

static void rec_remove(tstripe *st, size_t i) {
    gy__ptrmap_remove(st->recs, st->cap, sizeof(record), i);
    st->len--;
}

static void account(int64_t delta) {
    long now = atomic_fetch_add_explicit(&traced_current, delta, memory_order_relaxed) + delta;
    long peak = atomic_load_explicit(&traced_peak, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&traced_peak, &peak, now, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

void gy__trace_alloc_slow(gy_object *ob, const gy_type *type, size_t size, const char *file,
                          int line) {
    tstripe *st = stripe_for(ob);
    pthread_mutex_lock(&st->lock);
    if ((st->len + 1) * 2 > st->cap && rec_grow(st) != GY_OK) {
        pthread_mutex_unlock(&st->lock);
        return; /* untraced: tracing never fails an allocation */
    }
    size_t i = rec_find(st, ob);
    if (st->recs[i].key == NULL) {
        st->len++;
        atomic_fetch_add_explicit(&gy__trace_held, 1, memory_order_relaxed);
    }
    st->recs[i].key = ob;
    st->recs[i].t = (gy_trace){file, line, current_tag, type, size};
    pthread_mutex_unlock(&st->lock);
    account((int64_t)size);
}

void gy__trace_free_slow(gy_object *ob) {
    tstripe *st = stripe_for(ob);
    int64_t size = 0;
    pthread_mutex_lock(&st->lock);
    if (st->cap > 0) {
        size_t i = rec_find(st, ob);
        if (st->recs[i].key == ob) {
            size = (int64_t)st->recs[i].t.size;
            rec_remove(st, i);
            atomic_fetch_sub_explicit(&gy__trace_held, 1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&st->lock);
    if (size != 0) {
        account(-size);
    }
}

void gy__trace_resize_slow(gy_object *ob, int64_t delta) {
    tstripe *st = stripe_for(ob);
    bool found = false;
    pthread_mutex_lock(&st->lock);
    if (st->cap > 0) {
        size_t i = rec_find(st, ob);
        if (st->recs[i].key == ob) {
            st->recs[i].t.size = (size_t)((int64_t)st->recs[i].t.size + delta);
            found = true;
        }
    }
    pthread_mutex_unlock(&st->lock);
    if (found) {
        account(delta);
    }
}

int gy_trace_start(void) {
    atomic_store_explicit(&gy__trace_on, 1, memory_order_relaxed);
    return GY_OK;
}

bool gy_trace_is_tracing(void) {
    return atomic_load_explicit(&gy__trace_on, memory_order_relaxed) != 0;
}

void gy_trace_clear_traces(void) {
    for (size_t s = 0; s < STRIPES; s++) {
        tstripe *st = &stripes[s];
        pthread_mutex_lock(&st->lock);
        atomic_fetch_sub_explicit(&gy__trace_held, (long)st->len, memory_order_relaxed);
        free(st->recs);
        st->recs = NULL;
        st->cap = st->len = 0;
        pthread_mutex_unlock(&st->lock);
    }
    atomic_store_explicit(&traced_current, 0, memory_order_relaxed);
    atomic_store_explicit(&traced_peak, 0, memory_order_relaxed);
}

int gy_trace_stop(void) {
    atomic_store_explicit(&gy__trace_on, 0, memory_order_relaxed);
    gy_trace_clear_traces();
    return GY_OK;
}

void gy_trace_get_traced_memory(size_t *current, size_t *peak) {
    long c = atomic_load_explicit(&traced_current, memory_order_relaxed);
    long p = atomic_load_explicit(&traced_peak, memory_order_relaxed);
    *current = c > 0 ? (size_t)c : 0;
    *peak = p > 0 ? (size_t)p : 0;
}

void gy_trace_reset_peak(void) {
    atomic_store_explicit(&traced_peak, atomic_load_explicit(&traced_current, memory_order_relaxed),
                          memory_order_relaxed);
}

/* Interned tags: kept for the life of the process (traces point at them). */
typedef struct tag_node {
    struct tag_node *next;
    char text[];
} tag_node;
static pthread_mutex_t tags_lock = PTHREAD_MUTEX_INITIALIZER; /* guards tags */
static tag_node *tags;

int gy_trace_set_tag(const char *tag) {
    if (tag == NULL) {
        current_tag = NULL;
        return GY_OK;
    }
    pthread_mutex_lock(&tags_lock);
    tag_node *n = tags;
    while (n != NULL && strcmp(n->text, tag) != 0) {
        n = n->next;
    }
    if (n == NULL) {
        size_t len = strlen(tag);
        n = malloc(sizeof *n + len + 1);
        if (n == NULL) {
            pthread_mutex_unlock(&tags_lock);
            return GY_ENOMEM;
        }
        memcpy(n->text, tag, len + 1);
        n->next = tags;
        tags = n;
    }
    pthread_mutex_unlock(&tags_lock);
    current_tag = n->text;
    return GY_OK;
}

/* --- snapshots -------------------------------------------------------------- */

int gy_trace_take_snapshot(gy_snapshot **out) {
    gy_snapshot *snap = calloc(1, sizeof *snap);
    if (snap == NULL) {
        return GY_ENOMEM;
    }
    size_t cap = 0;
    for (size_t s = 0; s < STRIPES; s++) {
        tstripe *st = &stripes[s];
        pthread_mutex_lock(&st->lock);
        if (snap->len + st->len > cap) {
            size_t want = (snap->len + st->len) * 2 + 64;
            gy_trace *grown = realloc(snap->traces, want * sizeof *grown);
            if (grown == NULL) {
                pthread_mutex_unlock(&st->lock);
                gy_snapshot_free(snap);
                return GY_ENOMEM;
            }
            snap->traces = grown;
            cap = want;
        }
        for (size_t i = 0; i < st->cap; i++) {
            if (st->recs[i].key != NULL) {
                snap->traces[snap->len++] = st->recs[i].t;
            }
        }
        pthread_mutex_unlock(&st->lock);
    }
    *out = snap;
    return GY_OK;
}

void gy_snapshot_free(gy_snapshot *snapshot) {
    if (snapshot != NULL) {
        free(snapshot->traces);
        free(snapshot);
    }
}

static bool filter_match(const gy_trace_filter *f, const gy_trace *t) {
    if (f->file_pattern != NULL && fnmatch(f->file_pattern, t->file ? t->file : "", 0) != 0) {
        return false;
    }
    if (f->line != 0 && f->line != t->line) {
        return false;
    }
    if (f->tag_pattern != NULL && fnmatch(f->tag_pattern, t->tag ? t->tag : "", 0) != 0) {
        return false;
    }
    return f->type == NULL || f->type == t->type;
}

int gy_snapshot_filter(const gy_snapshot *snapshot, const gy_trace_filter *filters, size_t nfilters,
                       gy_snapshot **out) {
    gy_snapshot *snap = calloc(1, sizeof *snap);
    if (snap == NULL) {
        return GY_ENOMEM;
    }
    snap->traces = malloc((snapshot->len + 1) * sizeof *snap->traces);
    if (snap->traces == NULL) {
        free(snap);
        return GY_ENOMEM;
    }
    bool any_inclusive = false;
    for (size_t f = 0; f < nfilters; f++) {
        any_inclusive |= filters[f].inclusive;
    }
    for (size_t i = 0; i < snapshot->len; i++) {
        const gy_trace *t = &snapshot->traces[i];
        bool included = !any_inclusive, excluded = false;
        for (size_t f = 0; f < nfilters; f++) {
            if (filter_match(&filters[f], t)) {
                if (filters[f].inclusive) {
                    included = true;
                } else {
                    excluded = true;
                }
            }
        }
        if (included && !excluded) {
            snap->traces[snap->len++] = *t;
        }
    }
    *out = snap;
    return GY_OK;
}

/* --- statistics ------------------------------------------------------------- */

static int strcmp_null(const char *a, const char *b) {
    if (a == b) {
        return 0;
    }
    if (a == NULL || b == NULL) {
        return a == NULL ? -1 : 1;
    }
    return strcmp(a, b);
}

static gy_trace_group sort_group; /* qsort has no context argument */
static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static int key_cmp(const gy_trace_stat *a, const gy_trace_stat *b, gy_trace_group g) {
    switch (g) {
    case GY_TRACE_BY_SITE: {
        int c = strcmp_null(a->file, b->file);
        return c != 0 ? c : (a->line > b->line) - (a->line < b->line);
    }
    case GY_TRACE_BY_TAG:
        return strcmp_null(a->tag, b->tag);
    case GY_TRACE_BY_TYPE:
        return strcmp_null(a->type ? a->type->name : NULL, b->type ? b->type->name : NULL);
    }
    return 0;
}

static int by_key(const void *a, const void *b) { return key_cmp(a, b, sort_group); }

static int by_size_desc(const void *a, const void *b) {
    const gy_trace_stat *x = a, *y = b;
    if (x->size != y->size) {
        return x->size < y->size ? 1 : -1;
    }
    return (x->count < y->count) - (x->count > y->count);
}

static int by_abs_diff_desc(const void *a, const void *b) {
    const gy_trace_stat *x = a, *y = b;
    int64_t dx = x->size_diff < 0 ? -x->size_diff : x->size_diff;
    int64_t dy = y->size_diff < 0 ? -y->size_diff : y->size_diff;
    if (dx != dy) {
        return dx < dy ? 1 : -1;
    }
    return by_size_desc(a, b);
}

static void sort_by_key(gy_trace_stat *rows, size_t n, gy_trace_group g) {
    pthread_mutex_lock(&sort_lock);
    sort_group = g;
    qsort(rows, n, sizeof *rows, by_key);
    pthread_mutex_unlock(&sort_lock);
}

/* Groups of a snapshot, sorted by key. */
static int group_traces(const gy_snapshot *s, gy_trace_group g, gy_trace_stat **out, size_t *n) {
    gy_trace_stat *rows = malloc((s->len + 1) * sizeof *rows);
    if (rows == NULL) {
        return GY_ENOMEM;
    }
    for (size_t i = 0; i < s->len; i++) {
        const gy_trace *t = &s->traces[i];
        rows[i] = (gy_trace_stat){0};
        if (g == GY_TRACE_BY_SITE) {
            rows[i].file = t->file;
            rows[i].line = t->line;
        } else if (g == GY_TRACE_BY_TAG) {
            rows[i].tag = t->tag;
        } else {
            rows[i].type = t->type;
        }
        rows[i].size = t->size;
        rows[i].count = 1;
    }
    sort_by_key(rows, s->len, g);
    size_t k = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (k > 0 && key_cmp(&rows[k - 1], &rows[i], g) == 0) {
            rows[k - 1].size += rows[i].size;
            rows[k - 1].count += rows[i].count;
        } else {
            rows[k++] = rows[i];
        }
    }
    *out = rows;
    *n = k;
    return GY_OK;
}

int gy_snapshot_statistics(const gy_snapshot *snapshot, gy_trace_group group, gy_trace_stat **out,
                           size_t *n) {
    int rc = group_traces(snapshot, group, out, n);
    if (rc == GY_OK) {
        qsort(*out, *n, sizeof **out, by_size_desc);
    }
    return rc;
}

int gy_snapshot_compare(const gy_snapshot *now, const gy_snapshot *old, gy_trace_group group,
                        gy_trace_stat **out, size_t *n) {
    gy_trace_stat *a, *b;
    size_t na, nb;
    int rc = group_traces(now, group, &a, &na);
    if (rc != GY_OK) {
        return rc;
    }
    if ((rc = group_traces(old, group, &b, &nb)) != GY_OK) {
        free(a);
        return rc;
    }
    gy_trace_stat *rows = malloc((na + nb + 1) * sizeof *rows);
    if (rows == NULL) {
        free(a);
        free(b);
        return GY_ENOMEM;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < na || j < nb) {
        int c = i == na ? 1 : j == nb ? -1 : key_cmp(&a[i], &b[j], group);
        if (c == 0) {
            rows[k] = a[i];
            rows[k].size_diff = (int64_t)a[i].size - (int64_t)b[j].size;
            rows[k].count_diff = (int64_t)a[i].count - (int64_t)b[j].count;
            i++, j++;
        } else if (c < 0) {
            rows[k] = a[i++];
            rows[k].size_diff = (int64_t)rows[k].size;
            rows[k].count_diff = (int64_t)rows[k].count;
        } else {
            rows[k] = b[j++];
            rows[k].size_diff = -(int64_t)rows[k].size;
            rows[k].count_diff = -(int64_t)rows[k].count;
            rows[k].size = rows[k].count = 0;
        }
        k++;
    }
    free(a);
    free(b);
    qsort(rows, k, sizeof *rows, by_abs_diff_desc);
    *out = rows;
    *n = k;
    return GY_OK;
}

/* --- the report ------------------------------------------------------------ */

/* Line `line` of `file`, stripped, into buf; false if unreadable. */
static bool source_line(const char *file, int line, char *buf, size_t size) {
    FILE *f = file ? fopen(file, "r") : NULL;
    if (f == NULL) {
        return false;
    }
    bool ok = false;
    for (int i = 1; fgets(buf, (int)size, f) != NULL; i++) {
        if (i == line) {
            ok = true;
            break;
        }
    }
    fclose(f);
    if (ok) {
        char *start = buf;
        while (*start == ' ' || *start == '\t') {
            start++;
        }
        size_t len = strlen(start);
        while (len > 0 && (start[len - 1] == '\n' || start[len - 1] == '\r')) {
            start[--len] = '\0';
        }
        memmove(buf, start, len + 1);
    }
    return ok;
}

static const char *base_name(const char *path) {
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path ? path : "?";
}

int gy_trace_format_top(const gy_trace_stat *stats, size_t n, gy_trace_group group, size_t limit,
                        char **out) {
    gy__textbuf t = {0};
    static const char *what[] = {"lines", "tags", "types"};
    gy__textbuf_printf(&t, "Top %zu %s\n", limit < n ? limit : n, what[group]);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += stats[i].size;
    }
    for (size_t i = 0; i < n && i < limit; i++) {
        const gy_trace_stat *s = &stats[i];
        double kib = (double)s->size / 1024.0;
        if (group == GY_TRACE_BY_SITE) {
            gy__textbuf_printf(&t, "#%zu: %s:%d: %.1f KiB (%zu objects)\n", i + 1,
                               base_name(s->file), s->line, kib, s->count);
            char src[512];
            if (source_line(s->file, s->line, src, sizeof src)) {
                gy__textbuf_printf(&t, "    %s\n", src);
            }
        } else if (group == GY_TRACE_BY_TAG) {
            gy__textbuf_printf(&t, "#%zu: %s: %.1f KiB (%zu objects)\n", i + 1,
                               s->tag ? s->tag : "(untagged)", kib, s->count);
        } else {
            gy__textbuf_printf(&t, "#%zu: %s: %.1f KiB (%zu objects)\n", i + 1,
                               s->type && s->type->name ? s->type->name : "?", kib, s->count);
        }
    }
    if (n > limit) {
        size_t other = 0;
        for (size_t i = limit; i < n; i++) {
            other += stats[i].size;
        }
        gy__textbuf_printf(&t, "%zu other: %.1f KiB\n", n - limit, (double)other / 1024.0);
    }
    gy__textbuf_printf(&t, "Total allocated size: %.1f KiB\n", (double)total / 1024.0);
    if (t.failed) {
        free(t.s);
        return GY_ENOMEM;
    }
    *out = t.s;
    return GY_OK;
}
