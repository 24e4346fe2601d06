/* gyre/introspect.h: looking at the live heap (the seed's gc.get_objects,
 * gc.get_referrers, objgraph's show_growth and find_backref_chain).
 *
 * Functions that need a consistent view stop the world (gyre/runtime.h)
 * for the walk: every other attached thread is held at a safe point for a
 * time proportional to the heap. They may be called from a plain attached
 * thread or a loop thread; results are built after the world resumes.
 * Returned arrays hold NEW references unless stated; free them with
 * gy_objects_release.
 */
#ifndef GYRE_INTROSPECT_H
#define GYRE_INTROSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "gyre/object.h"

/* An array of NEW references. */
typedef struct gy_objects {
    gy_object **items;
    size_t len;
} gy_objects;

/* gy_objects_release: drop every reference and free the array. */
GY_API void gy_objects_release(gy_objects *objs);

/* gy_objects_by_type: live objects of `type` (NULL: every type), at most
 * `limit` (0: no limit). Returns 0, GY_ENOMEM, GY_ESTATE (not attached). */
GY_API int gy_objects_by_type(const gy_type *type, size_t limit, gy_objects *out);

/* gy_objects_referents: what obj references (through its type's traverse). */
GY_API int gy_objects_referents(void *obj, gy_objects *out);

/* gy_objects_referrers: the live objects whose traverse reaches obj. */
GY_API int gy_objects_referrers(void *obj, gy_objects *out);

/* gy_root_add: register obj as a named root (what the application holds
 * globally, e.g. "cache"); takes a NEW reference, released by
 * gy_root_remove or at shutdown. Returns 0, GY_EEXIST, GY_ENOMEM. */
GY_API int gy_root_add(void *obj, const char *name);
/* gy_root_remove: drop the named root. Returns 0 or GY_ENOENT. */
GY_API int gy_root_remove(const char *name);

typedef enum gy_backrefs_format {
    GY_BACKREFS_TEXT = 0, /* "root 'cache' (dict) -> list #... -> node #..." */
    GY_BACKREFS_DOT = 1,  /* a Graphviz digraph of the same chain */
} gy_backrefs_format;

/* gy_backrefs: the shortest chain of referrers from a root to obj: a named
 * root, or an object held from outside the heap (its count exceeds its
 * referrers inside the heap; the caller's own reference to obj is not
 * counted). *out is a malloc'd NUL-terminated text (free() it). Returns 0,
 * GY_ENOENT (no chain: obj is held only from outside), GY_ENOMEM. */
GY_API int gy_backrefs(void *obj, gy_backrefs_format format, char **out);

/* One row of gy_types_growth. */
typedef struct gy_type_growth {
    const gy_type *type;
    int64_t count; /* live now */
    int64_t delta; /* since the previous call */
} gy_type_growth;

/* gy_types_growth: types whose live count grew since the previous call
 * (objgraph's show_growth), largest growth first; up to `max` rows in out,
 * the number written in *n. The first call compares with zero. */
GY_API int gy_types_growth(gy_type_growth *out, size_t max, size_t *n);

#endif /* GYRE_INTROSPECT_H */
