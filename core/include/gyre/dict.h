/* gyre/dict.h: a dictionary from C strings to object references.
 *
 * Keys are copied (any bytes but NUL; at most 65535 bytes). Every operation
 * takes the dict's own spinlock; no finalizer or callback runs under it.
 */
#ifndef GYRE_DICT_H
#define GYRE_DICT_H

#include <stddef.h>

#include "gyre/object.h"

typedef struct gy_dict gy_dict;

GY_API extern gy_type gy_dict_type;

/* gy_dict_new(&dict): a NEW empty dict. Errors as gy_new. */
#define gy_dict_new(outp) gy__dict_new_at((outp), __FILE__, __LINE__)
GY_API int gy__dict_new_at(gy_dict **out, const char *file, int line);

GY_API size_t gy_dict_len(gy_dict *dict);

/* gy_dict_set: map key to value (new reference taken; a replaced value is
 * released after unlocking). Returns 0, GY_EINVAL (NULL value or key, key
 * too long), GY_ENOMEM (unchanged). */
GY_API int gy_dict_set(gy_dict *dict, const char *key, void *value);

/* gy_dict_get: a NEW reference to the value of key, or NULL. */
GY_API gy_object *gy_dict_get(gy_dict *dict, const char *key);

/* gy_dict_del: remove key (its value released after unlocking). Returns 0 or
 * GY_ENOENT. */
GY_API int gy_dict_del(gy_dict *dict, const char *key);

/* gy_dict_foreach: call fn(key, value, arg) for each entry of a snapshot
 * taken under the lock; fn runs without the lock, may change the dict, and
 * gets borrowed key and value valid during the call. A non-zero return from
 * fn stops and is returned; GY_ENOMEM if no snapshot could be taken. */
GY_API int gy_dict_foreach(gy_dict *dict, int (*fn)(const char *key, gy_object *value, void *arg),
                           void *arg);

/* gy_dict_clear: remove every entry (values released after unlocking). */
GY_API void gy_dict_clear(gy_dict *dict);

#endif /* GYRE_DICT_H */
