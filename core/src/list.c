/* core/src/list.c: gy_list, an array of references under a per-list spinlock.
 * Invariant: items[0..len) are non-NULL references owned by the list; the
 * array lives in the arena (raw memory counted against the list type). */
#include "spinlock.h"
#include <string.h>

#include "gc_touch.h"
#include "gyre/list.h"
#include "heap.h"

struct gy_list {
    gy_object ob;
    gy__spinlock lock; /* guards len, cap, items */
    size_t len, cap;
    gy_object **items;
};

static int list_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    gy_list *l = (gy_list *)self;
    int rc = 0;
    gy__spin_lock(&l->lock);
    for (size_t i = 0; i < l->len && rc == 0; i++) {
        rc = visit(l->items[i], arg);
    }
    gy__spin_unlock(&l->lock);
    return rc;
}

/* Drop every item and the array; the references are released after unlock. */
static void list_clear(gy_object *self) {
    gy_list *l = (gy_list *)self;
    gy__heap *h = gy__tls_heap;
    gy__spin_lock(&l->lock);
    gy_object **items = l->items;
    size_t len = l->len, cap = l->cap;
    for (size_t i = 0; gy__gc_watching(h) && i < len; i++) {
        (void)gy__gc_touch(h, items[i]); /* T1: before they leave the list */
    }
    l->items = NULL;
    l->len = l->cap = 0;
    gy__spin_unlock(&l->lock);
    for (size_t i = 0; i < len; i++) {
        gy_decref(items[i]);
    }
    gy__mem_free(&l->ob, items, cap * sizeof *items);
}

gy_type gy_list_type = {
    .name = "list",
    .size = sizeof(gy_list),
    .traverse = list_traverse,
    .clear = list_clear,
};

int gy__list_new_at(gy_list **out, const char *file, int line) {
    return gy__new_at(&gy_list_type, out, file, line);
}

size_t gy_list_len(gy_list *l) {
    gy__spin_lock(&l->lock);
    size_t n = l->len;
    gy__spin_unlock(&l->lock);
    return n;
}

int gy_list_append(gy_list *l, void *item) {
    if (item == NULL) {
        return GY_EINVAL;
    }
    gy__spin_lock(&l->lock);
    if (l->len == l->cap) {
        size_t cap = l->cap < 4 ? 4 : l->cap + l->cap / 2 + 1;
        gy_object **grown = gy__mem_alloc(&l->ob, cap * sizeof *grown);
        if (grown == NULL) {
            gy__spin_unlock(&l->lock);
            return GY_ENOMEM;
        }
        if (l->len > 0) {
            memcpy(grown, l->items, l->len * sizeof *grown);
        }
        /* The old array is reused only after a grace period. */
        gy__mem_free(&l->ob, l->items, l->cap * sizeof *grown);
        l->items = grown;
        l->cap = cap;
    }
    gy_incref(item);
    l->items[l->len++] = item;
    gy__spin_unlock(&l->lock);
    return GY_OK;
}

gy_object *gy_list_get(gy_list *l, size_t i) {
    gy_object *item = NULL;
    gy__spin_lock(&l->lock);
    if (i < l->len) {
        item = l->items[i];
        gy_incref(item); /* the list's reference keeps it alive meanwhile */
    }
    gy__spin_unlock(&l->lock);
    return item;
}

int gy_list_set(gy_list *l, size_t i, void *item) {
    if (item == NULL) {
        return GY_EINVAL;
    }
    gy_incref(item);
    gy__spin_lock(&l->lock);
    if (i >= l->len) {
        gy__spin_unlock(&l->lock);
        gy_decref(item);
        return GY_ERANGE;
    }
    gy_object *old = l->items[i];
    (void)gy__gc_touch(gy__tls_heap, old); /* T1: before it leaves the slot */
    l->items[i] = item;
    gy__spin_unlock(&l->lock);
    gy_decref(old);
    return GY_OK;
}

int gy_list_pop(gy_list *l, gy_object **out) {
    gy__spin_lock(&l->lock);
    if (l->len == 0) {
        gy__spin_unlock(&l->lock);
        return GY_ERANGE;
    }
    /* T1: the popped item is touched before it leaves the list (its
     * reference moves to the caller with no count change: DESIGN.md R3). */
    (void)gy__gc_touch(gy__tls_heap, l->items[l->len - 1]);
    *out = l->items[--l->len];
    gy__spin_unlock(&l->lock);
    return GY_OK;
}

void gy_list_clear(gy_list *l) { list_clear(&l->ob); }
