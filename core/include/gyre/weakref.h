/* gyre/weakref.h: weak references, weak-value dictionaries and weak sets.
 *
 * A weak reference names an object without keeping it alive (Python's
 * weakref.ref). When the referent dies, every weak reference to it is
 * cleared and their callbacks run exactly once, newest registration first,
 * on the thread where the referent died, with no Gyre lock held. A weak
 * reference that dies before its referent never calls back.
 *
 * Thread-safety: every function here is safe from any attached thread;
 * gy_weakref_get is correct when another thread drops the last strong
 * reference at the same moment (it returns the object or NULL, never a
 * dying object).
 */
#ifndef GYRE_WEAKREF_H
#define GYRE_WEAKREF_H

#include <stdbool.h>
#include <stddef.h>

#include "gyre/object.h"

typedef struct gy_weakref gy_weakref;

/* Called once when the referent dies; `wr` is borrowed for the call (its
 * gy_weakref_get already answers NULL). `arg` is the one given at creation. */
typedef void (*gy_weakref_callback)(gy_weakref *wr, void *arg);

GY_API extern gy_type gy_weakref_type;

/* gy_weakref_new(&wr, target, callback, arg): a NEW weak reference to
 * target (any live object; callback may be NULL). Returns 0 or an error of
 * gy_new (nothing registered on error). */
#define gy_weakref_new(outp, target, cb, arg) \
    gy__weakref_new_at((outp), (target), (cb), (arg), __FILE__, __LINE__)
GY_API int gy__weakref_new_at(gy_weakref **out, void *target, gy_weakref_callback cb, void *arg,
                              const char *file, int line);

/* gy_weakref_get: a NEW reference to the referent, or NULL once it died. */
GY_API gy_object *gy_weakref_get(gy_weakref *wr);

/* gy_weakref_count: how many weak references to obj are registered. */
GY_API size_t gy_weakref_count(const void *obj);

/* --- weak-value dictionaries (Python's WeakValueDictionary) ---------------
 * String keys to values held weakly: an entry lives while something else
 * holds its value and disappears when the value dies (removed by the
 * value's weakref callback, on the thread where it died). Iteration works on
 * a snapshot, so removals during it are deferred to after it for the
 * iterator's view and never disturb it. Safe from any attached thread. */
typedef struct gy_weakdict gy_weakdict;
GY_API extern gy_type gy_weakdict_type;

/* gy_weakdict_new(&d): a NEW empty weak-value dictionary. */
#define gy_weakdict_new(outp) gy__weakdict_new_at((outp), __FILE__, __LINE__)
GY_API int gy__weakdict_new_at(gy_weakdict **out, const char *file, int line);
/* gy_weakdict_set: map key to value, held weakly. Returns 0, GY_EINVAL,
 * GY_ENOMEM (unchanged). */
GY_API int gy_weakdict_set(gy_weakdict *d, const char *key, void *value);
/* gy_weakdict_get: a NEW reference to the live value of key, or NULL. */
GY_API gy_object *gy_weakdict_get(gy_weakdict *d, const char *key);
/* gy_weakdict_del: remove key. Returns 0 or GY_ENOENT. */
GY_API int gy_weakdict_del(gy_weakdict *d, const char *key);
/* gy_weakdict_len: entries whose value is alive. */
GY_API size_t gy_weakdict_len(gy_weakdict *d);
/* gy_weakdict_foreach: fn(key, value, arg) for each live entry of a
 * snapshot (value borrowed for the call); stops on non-zero and returns it. */
GY_API int gy_weakdict_foreach(gy_weakdict *d,
                               int (*fn)(const char *key, gy_object *value, void *arg), void *arg);

/* --- weak sets (Python's WeakSet) ------------------------------------------
 * Objects held weakly, by identity; a member leaves when it dies. */
typedef struct gy_weakset gy_weakset;
GY_API extern gy_type gy_weakset_type;

#define gy_weakset_new(outp) gy__weakset_new_at((outp), __FILE__, __LINE__)
GY_API int gy__weakset_new_at(gy_weakset **out, const char *file, int line);
/* gy_weakset_add: add obj (no-op if present). Returns 0, GY_ENOMEM. */
GY_API int gy_weakset_add(gy_weakset *s, void *obj);
/* gy_weakset_discard: remove obj. Returns 0 or GY_ENOENT. */
GY_API int gy_weakset_discard(gy_weakset *s, void *obj);
GY_API bool gy_weakset_contains(gy_weakset *s, void *obj);
/* gy_weakset_len: live members (the seed's active_count()). */
GY_API size_t gy_weakset_len(gy_weakset *s);
/* gy_weakset_foreach: fn(member, arg) for each live member of a snapshot. */
GY_API int gy_weakset_foreach(gy_weakset *s, int (*fn)(gy_object *member, void *arg), void *arg);

#endif /* GYRE_WEAKREF_H */
