/* core/src/ptrmap.h: open-addressing tables keyed by object address, for
 * the weakref registry and the trace table (each under its stripe's lock).
 *
 * A table is an array of `cap` elements of `size` bytes (cap a power of two
 * or 0) whose first member is the key, `const void *`, NULL when the slot is
 * empty. Linear probing; deletion shifts the rest of the probe run back, so
 * there are no tombstones. Not thread-safe: the caller locks. */
#ifndef GYRE_CORE_PTRMAP_H
#define GYRE_CORE_PTRMAP_H

#include <stddef.h>
#include <stdint.h>

/* The hash of an address: the high bits pick a stripe, the low bits a slot. */
static inline uint64_t gy__ptr_hash(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p >> 3;
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ULL;
    return x ^ (x >> 29);
}

/* gy__ptrmap_find: the index of key's slot, or of the empty slot where it
 * would go. cap must be > 0 and the table not full. */
size_t gy__ptrmap_find(const void *table, size_t cap, size_t size, const void *key);

/* gy__ptrmap_remove: empty slot i and shift its probe run back. */
void gy__ptrmap_remove(void *table, size_t cap, size_t size, size_t i);

/* gy__ptrmap_grow: double the table (16 slots at first), rehashing every
 * element. Returns 0 or GY_ENOMEM (table unchanged). */
int gy__ptrmap_grow(void **table, size_t *cap, size_t size);

#endif /* GYRE_CORE_PTRMAP_H */
