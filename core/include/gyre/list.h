/* gyre/list.h: a list of object references (Python's list, in C).
 *
 * Every operation takes the list's own spinlock for its duration, so a list
 * may be shared between threads; no finalizer or callback runs under the lock
 * (references a call drops are released after unlocking). Items are never
 * NULL. Reference effects are stated per function.
 */
#ifndef GYRE_LIST_H
#define GYRE_LIST_H

#include <stddef.h>

#include "gyre/object.h"

typedef struct gy_list gy_list;

/* The list type (for gy_type_get_stats and gy_type_of comparisons). */
GY_API extern gy_type gy_list_type;

/* gy_list_new(&list): a NEW empty list. Errors as gy_new. */
#define gy_list_new(outp) gy__list_new_at((outp), __FILE__, __LINE__)
GY_API int gy__list_new_at(gy_list **out, const char *file, int line);

/* gy_list_len: the number of items. */
GY_API size_t gy_list_len(gy_list *list);

/* gy_list_append: add `item` at the end, taking a new reference (the caller
 * keeps its own). Returns 0, GY_EINVAL (item NULL), GY_ENOMEM (unchanged). */
GY_API int gy_list_append(gy_list *list, void *item);

/* gy_list_get: a NEW reference to item i, or NULL when i is out of range. */
GY_API gy_object *gy_list_get(gy_list *list, size_t i);

/* gy_list_set: replace item i with `item` (new reference taken; the old item
 * is released after unlocking). Returns 0, GY_ERANGE, GY_EINVAL (NULL item). */
GY_API int gy_list_set(gy_list *list, size_t i, void *item);

/* gy_list_pop: remove the last item and give its reference (NEW) in *out.
 * Returns 0 or GY_ERANGE (empty). */
GY_API int gy_list_pop(gy_list *list, gy_object **out);

/* gy_list_clear: remove every item (released after unlocking). */
GY_API void gy_list_clear(gy_list *list);

#endif /* GYRE_LIST_H */
