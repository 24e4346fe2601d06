/* core/src/ptrmap.c: see ptrmap.h. */
#include <stdlib.h>
#include <string.h>

#include "gyre/error.h"
#include "ptrmap.h"

static const void *key_at(const void *table, size_t size, size_t i) {
    const void *key;
    memcpy(&key, (const char *)table + i * size, sizeof key);
    return key;
}

size_t gy__ptrmap_find(const void *table, size_t cap, size_t size, const void *key) {
    size_t mask = cap - 1, i = (size_t)gy__ptr_hash(key) & mask;
    for (;;) {
        const void *k = key_at(table, size, i);
        if (k == NULL || k == key) {
            return i;
        }
        i = (i + 1) & mask;
    }
}

void gy__ptrmap_remove(void *table, size_t cap, size_t size, size_t i) {
    char *t = table;
    size_t mask = cap - 1;
    memset(t + i * size, 0, size);
    for (size_t j = (i + 1) & mask; key_at(t, size, j) != NULL; j = (j + 1) & mask) {
        size_t home = (size_t)gy__ptr_hash(key_at(t, size, j)) & mask;
        /* Move j back to i when i lies cyclically in [home, j). */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            memcpy(t + i * size, t + j * size, size);
            memset(t + j * size, 0, size);
            i = j;
        }
    }
}

int gy__ptrmap_grow(void **table, size_t *cap, size_t size) {
    size_t newcap = *cap ? *cap * 2 : 16;
    char *fresh = calloc(newcap, size);
    if (fresh == NULL) {
        return GY_ENOMEM;
    }
    char *old = *table;
    for (size_t i = 0; i < *cap; i++) {
        const void *k = key_at(old, size, i);
        if (k != NULL) {
            memcpy(fresh + gy__ptrmap_find(fresh, newcap, size, k) * size, old + i * size, size);
        }
    }
    free(old);
    *table = fresh;
    *cap = newcap;
    return GY_OK;
}
