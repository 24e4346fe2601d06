/* gyre/trace.h: allocation tracing (Python's tracemalloc, in C).
 *
 * Off by default, and nearly free when off (one relaxed load per
 * allocation). While on, every object allocation remembers the caller's
 * file:line (gy_new and the container constructors are macros that forward
 * the call site), the calling thread's tag (gy_trace_set_tag; the server
 * tags by route) and the type; the size of a traced object includes its
 * backing storage (list arrays, dict tables, bytes payloads) as it grows and
 * shrinks. Snapshots are plain C copies: filter them, group them by site,
 * tag or type, compare two, and format the seed's "top N" report.
 *
 * Thread-safety: every function is safe from any thread; snapshots are
 * immutable and may be shared.
 */
#ifndef GYRE_TRACE_H
#define GYRE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gyre/object.h"

/* gy_trace_start / gy_trace_stop: start or stop recording new allocations.
 * Stopping also drops every trace (as tracemalloc.stop does). Return 0. */
GY_API int gy_trace_start(void);
GY_API int gy_trace_stop(void);
GY_API bool gy_trace_is_tracing(void);

/* gy_trace_get_traced_memory: bytes held by traced objects now, and the
 * peak since tracing started or gy_trace_reset_peak. */
GY_API void gy_trace_get_traced_memory(size_t *current, size_t *peak);
GY_API void gy_trace_reset_peak(void);
/* gy_trace_clear_traces: forget every trace (tracing stays on). */
GY_API void gy_trace_clear_traces(void);

/* gy_trace_set_tag: the calling thread's tag for the allocations it makes
 * from now on (NULL: none). The text is copied (interned). Returns 0 or
 * GY_ENOMEM (tag unchanged). */
GY_API int gy_trace_set_tag(const char *tag);

/* One traced allocation. file, tag and type->name have static lifetime. */
typedef struct gy_trace {
    const char *file;
    int line;
    const char *tag; /* NULL: untagged */
    const gy_type *type;
    size_t size;
} gy_trace;

typedef struct gy_snapshot {
    gy_trace *traces;
    size_t len;
} gy_snapshot;

/* gy_trace_take_snapshot: every live trace. Returns 0, GY_ENOMEM. Free it
 * with gy_snapshot_free. */
GY_API int gy_trace_take_snapshot(gy_snapshot **out);
GY_API void gy_snapshot_free(gy_snapshot *snapshot);

/* A filter, as tracemalloc.Filter/DomainFilter: a trace is kept if it
 * matches one inclusive filter (when there is any) and no exclusive one.
 * Unset fields match everything. */
typedef struct gy_trace_filter {
    bool inclusive;
    const char *file_pattern; /* fnmatch glob on the file, NULL: any */
    int line;                 /* 0: any */
    const char *tag_pattern;  /* fnmatch glob on the tag ("" for untagged), NULL: any */
    const gy_type *type;      /* NULL: any */
} gy_trace_filter;

/* gy_snapshot_filter: a new snapshot of the traces that pass. */
GY_API int gy_snapshot_filter(const gy_snapshot *snapshot, const gy_trace_filter *filters,
                              size_t nfilters, gy_snapshot **out);

typedef enum gy_trace_group {
    GY_TRACE_BY_SITE = 0, /* file:line */
    GY_TRACE_BY_TAG = 1,
    GY_TRACE_BY_TYPE = 2,
} gy_trace_group;

/* One group of traces. For a comparison, the diffs are new minus old. */
typedef struct gy_trace_stat {
    const char *file;    /* BY_SITE */
    int line;            /* BY_SITE */
    const char *tag;     /* BY_TAG (NULL: untagged) */
    const gy_type *type; /* BY_TYPE */
    size_t size, count;
    int64_t size_diff, count_diff;
} gy_trace_stat;

/* gy_snapshot_statistics: groups sorted by size, largest first (then
 * count). *out is malloc'd (free()). Returns 0, GY_ENOMEM. */
GY_API int gy_snapshot_statistics(const gy_snapshot *snapshot, gy_trace_group group,
                                  gy_trace_stat **out, size_t *n);

/* gy_snapshot_compare: groups of `now` against `old` (tracemalloc's
 * compare_to), sorted by absolute size difference, largest first. Groups
 * gone since `old` appear with size 0. */
GY_API int gy_snapshot_compare(const gy_snapshot *now, const gy_snapshot *old, gy_trace_group group,
                               gy_trace_stat **out, size_t *n);

/* gy_trace_format_top: the seed's display_top report of stats[0..n) grouped
 * by `group`: "#1: file.c:42: 3.9 KiB (40 objects)" then the source line
 * when the file is readable, "N other: X KiB" beyond `limit`, and "Total
 * allocated size: X KiB". *out is malloc'd (free()). Returns 0, GY_ENOMEM. */
GY_API int gy_trace_format_top(const gy_trace_stat *stats, size_t n, gy_trace_group group,
                               size_t limit, char **out);

#endif /* GYRE_TRACE_H */
