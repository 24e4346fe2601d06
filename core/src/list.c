/* core/src/list.c: gy_list, an array of references.
 *
 * Mutators serialise on a per-list spinlock; the collector's traverse takes
 * no lock (collector/DESIGN.md 9.7). The items live in a block that carries
 * its own capacity and length, with atomic slots; a grow publishes a new
 * block and retires the old one through the epoch (gy__storage_retire), so a
 * traverse that loaded the old pointer still reads valid memory, in bounds.
 * Invariants (under the lock): block is NULL or holds len <= cap; slots
 * [0, len) are non-NULL references owned by the list, slots [len, cap) are
 * NULL. */
#include "spinlock.h"
#include <string.h>

#include "gc_touch.h"
#include "gyre/list.h"
#include "heap.h"

typedef struct list_block {
    size_t cap;                  /* fixed for the block's life */
    _Atomic size_t len;          /* written under the list's lock */
    _Atomic(gy_object *) slot[]; /* [len, cap) NULL */
} list_block;

struct gy_list {
    gy_object ob;
    gy__spinlock lock;           /* serialises mutators (not the traverse) */
    _Atomic(list_block *) block; /* NULL: empty, nothing allocated */
};

static size_t block_bytes(size_t cap) { return sizeof(list_block) + cap * sizeof(gy_object *); }

/* The block, for a mutator holding the lock (relaxed: the lock orders our
 * own writes; only mutators under it store the pointer). */
static list_block *block_locked(gy_list *l) {
    return atomic_load_explicit(&l->block, memory_order_relaxed);
}

static size_t len_locked(const list_block *b) {
    return b != NULL ? atomic_load_explicit(&b->len, memory_order_relaxed) : 0;
}

/* May run on the collector's thread while mutators change the list: reads
 * only the block it loaded (acquire: its cap, zeroed slots and copied items
 * are visible), at most cap slots of it, each with acquire (the item's
 * header, written before it was stored, is visible). A racing grow retires
 * the block only after a grace period this thread's epoch section holds. */
static int list_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    gy_list *l = (gy_list *)self;
    list_block *b = atomic_load_explicit(&l->block, memory_order_acquire);
    if (b == NULL) {
        return 0;
    }
    size_t n = atomic_load_explicit(&b->len, memory_order_acquire);
    n = n < b->cap ? n : b->cap;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        gy_object *item = atomic_load_explicit(&b->slot[i], memory_order_acquire);
        if (item != NULL) { /* popped or cleared since we read len */
            rc = visit(item, arg);
        }
    }
    return rc;
}

/* Drop every item and the block; the references are released after unlock.
 * Each item is touched before it leaves (T1), then the empty list is
 * published (release) and the block retired. */
static void list_clear(gy_object *self) {
    gy_list *l = (gy_list *)self;
    gy__heap *h = gy__tls_heap;
    gy__spin_lock(&l->lock);
    list_block *b = block_locked(l);
    size_t len = len_locked(b);
    for (size_t i = 0; gy__gc_watching(h) && i < len; i++) {
        /* T1: before they leave the list */
        (void)gy__gc_touch(h, atomic_load_explicit(&b->slot[i], memory_order_relaxed));
    }
    atomic_store_explicit(&l->block, NULL, memory_order_release);
    gy__spin_unlock(&l->lock);
    for (size_t i = 0; i < len; i++) {
        gy_decref(atomic_load_explicit(&b->slot[i], memory_order_relaxed));
    }
    if (b != NULL) {
        gy__storage_retire(&l->ob, b, block_bytes(b->cap));
    }
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
    size_t n = len_locked(block_locked(l));
    gy__spin_unlock(&l->lock);
    return n;
}

/* Under the lock: a block with room for one more item, or NULL (no memory;
 * the list unchanged). A new block is filled before it is published. */
static list_block *room_for_one(gy_list *l) {
    list_block *old = block_locked(l);
    size_t len = len_locked(old);
    if (old != NULL && len < old->cap) {
        return old;
    }
    size_t cap = len < 4 ? 4 : len + len / 2 + 1;
    list_block *b = gy__storage_alloc(&l->ob, block_bytes(cap));
    if (b == NULL) {
        return NULL;
    }
    b->cap = cap;
    for (size_t i = 0; i < cap; i++) {
        gy_object *item =
            i < len ? atomic_load_explicit(&old->slot[i], memory_order_relaxed) : NULL;
        atomic_init(&b->slot[i], item);
    }
    atomic_init(&b->len, len);
    /* release: a traverse that loads b sees its cap, slots and len. */
    atomic_store_explicit(&l->block, b, memory_order_release);
    if (old != NULL) {
        gy__storage_retire(&l->ob, old, block_bytes(old->cap));
    }
    return b;
}

int gy_list_append(gy_list *l, void *item) {
    if (item == NULL) {
        return GY_EINVAL;
    }
    gy__spin_lock(&l->lock);
    list_block *b = room_for_one(l);
    if (b == NULL) {
        gy__spin_unlock(&l->lock);
        return GY_ENOMEM;
    }
    gy_incref(item);
    size_t len = len_locked(b);
    /* release, slot then len: a traverse that reads the new len (acquire)
     * reads the item in its slot. */
    atomic_store_explicit(&b->slot[len], (gy_object *)item, memory_order_release);
    atomic_store_explicit(&b->len, len + 1, memory_order_release);
    gy__spin_unlock(&l->lock);
    return GY_OK;
}

gy_object *gy_list_get(gy_list *l, size_t i) {
    gy_object *item = NULL;
    gy__spin_lock(&l->lock);
    list_block *b = block_locked(l);
    if (i < len_locked(b)) {
        item = atomic_load_explicit(&b->slot[i], memory_order_relaxed);
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
    list_block *b = block_locked(l);
    if (i >= len_locked(b)) {
        gy__spin_unlock(&l->lock);
        gy_decref(item);
        return GY_ERANGE;
    }
    gy_object *old = atomic_load_explicit(&b->slot[i], memory_order_relaxed);
    (void)gy__gc_touch(gy__tls_heap, old); /* T1: before it leaves the slot */
    atomic_store_explicit(&b->slot[i], (gy_object *)item, memory_order_release);
    gy__spin_unlock(&l->lock);
    gy_decref(old);
    return GY_OK;
}

int gy_list_pop(gy_list *l, gy_object **out) {
    gy__spin_lock(&l->lock);
    list_block *b = block_locked(l);
    size_t len = len_locked(b);
    if (len == 0) {
        gy__spin_unlock(&l->lock);
        return GY_ERANGE;
    }
    gy_object *item = atomic_load_explicit(&b->slot[len - 1], memory_order_relaxed);
    /* T1: the popped item is touched before it leaves the list (its
     * reference moves to the caller with no count change: DESIGN.md R3). */
    (void)gy__gc_touch(gy__tls_heap, item);
    /* relaxed: a traverse reads either the item (touched) or NULL. */
    atomic_store_explicit(&b->len, len - 1, memory_order_relaxed);
    atomic_store_explicit(&b->slot[len - 1], NULL, memory_order_relaxed);
    *out = item;
    gy__spin_unlock(&l->lock);
    return GY_OK;
}

void gy_list_clear(gy_list *l) { list_clear(&l->ob); }
