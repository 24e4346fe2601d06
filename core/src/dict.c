/* core/src/dict.c: gy_dict, string keys to references, open addressing with
 * linear probing. Mutators serialise on a per-dict spinlock; the collector's
 * traverse takes no lock (collector/DESIGN.md 9.7): the table is a block
 * that carries its own capacity, each entry's value is atomic (NULL for an
 * empty or deleted entry), and a grow publishes a new block and retires the
 * old one through the epoch (gy__storage_retire). Invariants (under the
 * lock): table is NULL or its cap a power of two; used (live + tombstones)
 * stays under 3/4 of cap; every live entry owns a copied key and one
 * reference to its value. */
#include "spinlock.h"
#include <string.h>

#include "gc_touch.h"
#include "gyre/dict.h"
#include "heap.h"

#define KEY_MAX 65535
static char tombstone_key[1];
#define TOMBSTONE tombstone_key

typedef struct dict_entry {
    char *key; /* NULL: empty; TOMBSTONE: deleted (mutators only) */
    uint32_t hash;
    uint32_t keylen;
    _Atomic(gy_object *) value; /* NULL unless the entry is live */
} dict_entry;

typedef struct dict_table {
    size_t cap; /* fixed for the table's life */
    dict_entry entries[];
} dict_table;

struct gy_dict {
    gy_object ob;
    gy__spinlock lock;           /* guards len, used and the entries' keys */
    size_t len, used;            /* live entries; live + tombstones */
    _Atomic(dict_table *) table; /* NULL: none; stored under the lock, read by traverse */
};

static size_t table_bytes(size_t cap) { return sizeof(dict_table) + cap * sizeof(dict_entry); }

/* The table, for a mutator holding the lock (relaxed: the lock orders our
 * own writes; only mutators under it store the pointer). */
static dict_table *table_locked(gy_dict *d) {
    return atomic_load_explicit(&d->table, memory_order_relaxed);
}

static size_t cap_of(const dict_table *t) { return t != NULL ? t->cap : 0; }

/* Whether e holds a key (neither empty nor deleted). */
static bool entry_live(const dict_entry *e) { return e->key != NULL && e->key != TOMBSTONE; }

/* relaxed: under the lock, or (traverse) after an acquire of the table. */
static gy_object *value_of(dict_entry *e) {
    return atomic_load_explicit(&e->value, memory_order_relaxed);
}

static uint32_t key_hash(const char *key, size_t len) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    }
    return h;
}

/* The entry of t (not NULL) holding key, or the empty slot where it would
 * go (first tombstone preferred). */
static dict_entry *find_slot(dict_table *t, const char *key, size_t len, uint32_t hash) {
    size_t mask = t->cap - 1;
    dict_entry *first_tomb = NULL;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        dict_entry *e = &t->entries[i];
        if (e->key == NULL) {
            return first_tomb ? first_tomb : e;
        }
        if (e->key == TOMBSTONE) {
            if (first_tomb == NULL) {
                first_tomb = e;
            }
        } else if (e->hash == hash && e->keylen == len && memcmp(e->key, key, len) == 0) {
            return e;
        }
    }
}

/* Under the lock: find_slot in the dict's table; NULL when it has none. */
static dict_entry *lookup(gy_dict *d, const char *key, size_t len, uint32_t hash) {
    dict_table *t = table_locked(d);
    return t != NULL ? find_slot(t, key, len, hash) : NULL;
}

/* May run on the collector's thread while mutators change the dict: reads
 * only the table it loaded (acquire: its cap and moved values are visible)
 * and only the values (acquire: the value's header, written before it was
 * stored, is visible). A racing grow or clear retires the table only after a
 * grace period this thread's epoch section holds. */
static int dict_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    gy_dict *d = (gy_dict *)self;
    dict_table *t = atomic_load_explicit(&d->table, memory_order_acquire);
    int rc = 0;
    for (size_t i = 0; t != NULL && i < t->cap && rc == 0; i++) {
        gy_object *v = atomic_load_explicit(&t->entries[i].value, memory_order_acquire);
        if (v != NULL) {
            rc = visit(v, arg);
        }
    }
    return rc;
}

/* Under the lock: publish table t (NULL: none) as the dict's storage
 * (release: a traverse that loads t sees its cap and entries). */
static void table_publish(gy_dict *d, dict_table *t) {
    atomic_store_explicit(&d->table, t, memory_order_release);
}

static void dict_clear(gy_object *self) {
    gy_dict *d = (gy_dict *)self;
    gy__heap *h = gy__tls_heap;
    gy__spin_lock(&d->lock);
    dict_table *t = table_locked(d);
    size_t cap = cap_of(t);
    for (size_t i = 0; gy__gc_watching(h) && i < cap; i++) {
        if (entry_live(&t->entries[i])) {
            (void)gy__gc_touch(h, value_of(&t->entries[i])); /* T1: before they leave */
        }
    }
    table_publish(d, NULL);
    d->len = d->used = 0;
    gy__spin_unlock(&d->lock);
    for (size_t i = 0; i < cap; i++) {
        dict_entry *e = &t->entries[i];
        if (entry_live(e)) {
            gy__mem_free(&d->ob, e->key, e->keylen + 1);
            gy_decref(value_of(e));
        }
    }
    if (t != NULL) {
        gy__storage_retire(&d->ob, t, table_bytes(cap));
    }
}

gy_type gy_dict_type = {
    .name = "dict",
    .size = sizeof(gy_dict),
    .traverse = dict_traverse,
    .clear = dict_clear,
};

int gy__dict_new_at(gy_dict **out, const char *file, int line) {
    return gy__new_at(&gy_dict_type, out, file, line);
}

size_t gy_dict_len(gy_dict *d) {
    gy__spin_lock(&d->lock);
    size_t n = d->len;
    gy__spin_unlock(&d->lock);
    return n;
}

/* Under the lock: make room for one more entry. */
static int dict_grow(gy_dict *d) {
    dict_table *old = table_locked(d);
    if ((d->used + 1) * 4 <= cap_of(old) * 3) {
        return GY_OK;
    }
    size_t cap = 8;
    while (cap * 3 <= (d->len + 1) * 4 * 2) {
        cap *= 2;
    }
    dict_table *fresh = gy__storage_alloc(&d->ob, table_bytes(cap));
    if (fresh == NULL) {
        return GY_ENOMEM;
    }
    fresh->cap = cap;
    for (size_t i = 0; i < cap; i++) {
        fresh->entries[i].key = NULL;
        fresh->entries[i].hash = fresh->entries[i].keylen = 0;
        atomic_init(&fresh->entries[i].value, NULL);
    }
    for (size_t i = 0; i < cap_of(old); i++) {
        dict_entry *e = &old->entries[i];
        if (entry_live(e)) {
            dict_entry *to = find_slot(fresh, e->key, e->keylen, e->hash);
            to->key = e->key;
            to->hash = e->hash;
            to->keylen = e->keylen;
            atomic_init(&to->value, value_of(e));
        }
    }
    table_publish(d, fresh);
    d->used = d->len;
    if (old != NULL) {
        gy__storage_retire(&d->ob, old, table_bytes(old->cap));
    }
    return GY_OK;
}

int gy_dict_set(gy_dict *d, const char *key, void *value) {
    if (key == NULL || value == NULL) {
        return GY_EINVAL;
    }
    size_t len = strlen(key);
    if (len > KEY_MAX) {
        return GY_EINVAL;
    }
    uint32_t hash = key_hash(key, len);
    gy_incref(value);
    gy_object *old = NULL;
    int rc = GY_OK;
    gy__spin_lock(&d->lock);
    dict_entry *e = lookup(d, key, len, hash);
    if (e != NULL && entry_live(e)) {
        old = value_of(e);
        (void)gy__gc_touch(gy__tls_heap, old); /* T1: before it leaves the entry */
        /* release: a traverse that reads value reads its header. */
        atomic_store_explicit(&e->value, (gy_object *)value, memory_order_release);
    } else {
        char *copy = gy__mem_alloc(&d->ob, len + 1);
        rc = copy == NULL ? GY_ENOMEM : dict_grow(d);
        if (rc == GY_OK) {
            memcpy(copy, key, len + 1);
            e = find_slot(table_locked(d), key, len, hash); /* grown: a table */
            if (e->key == NULL) {
                d->used++;
            }
            e->key = copy;
            e->keylen = (uint32_t)len;
            e->hash = hash;
            atomic_store_explicit(&e->value, (gy_object *)value, memory_order_release);
            d->len++;
        } else {
            gy__mem_free(&d->ob, copy, len + 1);
            old = value; /* undo our incref after unlocking */
        }
    }
    gy__spin_unlock(&d->lock);
    gy_xdecref(old);
    return rc;
}

gy_object *gy_dict_get(gy_dict *d, const char *key) {
    if (key == NULL) {
        return NULL;
    }
    size_t len = strlen(key);
    uint32_t hash = key_hash(key, len);
    gy_object *value = NULL;
    gy__spin_lock(&d->lock);
    dict_entry *e = lookup(d, key, len, hash);
    if (e != NULL && entry_live(e)) {
        value = value_of(e);
        gy_incref(value);
    }
    gy__spin_unlock(&d->lock);
    return value;
}

int gy_dict_del(gy_dict *d, const char *key) { return gy__dict_del_if(d, key, NULL); }

int gy__dict_del_if(gy_dict *d, const char *key, const void *expected) {
    if (key == NULL) {
        return GY_ENOENT;
    }
    size_t len = strlen(key);
    uint32_t hash = key_hash(key, len);
    gy_object *old = NULL;
    char *oldkey = NULL;
    gy__spin_lock(&d->lock);
    dict_entry *e = lookup(d, key, len, hash);
    if (e != NULL && entry_live(e) && (expected == NULL || value_of(e) == expected)) {
        old = value_of(e);
        (void)gy__gc_touch(gy__tls_heap, old); /* T1: before it leaves the entry */
        oldkey = e->key;
        e->key = TOMBSTONE;
        /* relaxed: a traverse reads old (touched) or NULL. */
        atomic_store_explicit(&e->value, NULL, memory_order_relaxed);
        d->len--;
    }
    gy__spin_unlock(&d->lock);
    if (old == NULL) {
        return GY_ENOENT;
    }
    gy__mem_free(&d->ob, oldkey, len + 1);
    gy_decref(old);
    return GY_OK;
}

typedef struct snap_entry {
    const char *key;
    gy_object *value;
} snap_entry;

int gy_dict_foreach(gy_dict *d, int (*fn)(const char *key, gy_object *value, void *arg),
                    void *arg) {
    gy__spin_lock(&d->lock);
    dict_table *t = table_locked(d);
    size_t n = d->len, keybytes = 0;
    for (size_t i = 0; i < cap_of(t); i++) {
        if (entry_live(&t->entries[i])) {
            keybytes += t->entries[i].keylen + 1;
        }
    }
    size_t size = n * sizeof(snap_entry) + keybytes;
    snap_entry *snap = size ? gy__mem_alloc(NULL, size) : NULL;
    if (size && snap == NULL) {
        gy__spin_unlock(&d->lock);
        return GY_ENOMEM;
    }
    char *keys = snap != NULL ? (char *)(snap + n) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < cap_of(t); i++) {
        dict_entry *e = &t->entries[i];
        if (entry_live(e)) {
            memcpy(keys, e->key, e->keylen + 1);
            snap[k].key = keys;
            snap[k].value = value_of(e);
            gy_incref(snap[k].value);
            keys += e->keylen + 1;
            k++;
        }
    }
    gy__spin_unlock(&d->lock);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            rc = fn(snap[i].key, snap[i].value, arg);
        }
    }
    for (size_t i = 0; i < n; i++) {
        gy_decref(snap[i].value);
    }
    gy__mem_free(NULL, snap, size);
    return rc;
}

void gy_dict_clear(gy_dict *d) { dict_clear(&d->ob); }
