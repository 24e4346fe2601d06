/* core/src/arena.c: segments, cells, raw backing storage, epoch reclamation.
 *
 * A heap allocates cells from its own segments without locks: each segment
 * has an owner-only free list and bump index. Freed cells wait in a bag for an
 * epoch grace period (ck_epoch), then go back to their segment: to its free
 * list when the reclaiming heap owns it, otherwise to its `remote` ck_stack,
 * which the owner collects. Empty segments go back to jemalloc.
 * See core/DESIGN.md sections 2 and 5.
 */
#include <stdio.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "gyre/failpoint.h"
#include "heap.h"
#include "trace_hooks.h"

#if GY_USE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

static void segment_release(gy__heap *h, gy__segment *seg);
static void segment_release_memory(gy__heap *h, gy__segment *seg);

/* Raw size classes: 16-byte steps at first, then 1.5x. */
static const uint32_t raw_class_size[GY__RAW_CLASSES] = {
    16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192};

/* Large raw blocks carry this header in front of the caller's memory. */
typedef struct large_header {
    ck_epoch_entry_t entry; /* deferred free */
    uint64_t size;          /* caller's size */
    uint64_t magic;
} large_header;
#define LARGE_MAGIC 0x4779426967426c6bULL

static uint32_t raw_class_of(size_t size) {
    for (uint32_t c = 0; c < GY__RAW_CLASSES; c++) {
        if (size <= raw_class_size[c]) {
            return c;
        }
    }
    return GY__RAW_CLASSES;
}

/* --- memory from jemalloc (or libc under sanitizers) -------------------- */

/* Sanitizer builds take segments from the (intercepted) libc allocator so
 * ASan and TSan see every block; release builds use a dedicated jemalloc
 * arena without a thread cache, so segments never mix with malloc's. */
static void *seg_mem_alloc(size_t size, size_t align) {
#if GY_USE_JEMALLOC
    return mallocx(size,
                   MALLOCX_ALIGN(align) | MALLOCX_ARENA(gy__rt.arena_index) | MALLOCX_TCACHE_NONE);
#else
    return aligned_alloc(align, (size + align - 1) / align * align);
#endif
}

static void seg_mem_free(void *p) {
#if GY_USE_JEMALLOC
    dallocx(p, MALLOCX_TCACHE_NONE);
#else
    free(p);
#endif
}

int gy__arena_init(gy_errmsg *err) {
#if GY_USE_JEMALLOC
    unsigned index;
    size_t len = sizeof index;
    if (mallctl("arenas.create", &index, &len, NULL, 0) != 0) {
        return gy__errmsg_set(err, GY_ENOMEM, "jemalloc: arenas.create failed");
    }
    gy__rt.arena_index = index;
    /* Freed extents of this arena go back to the OS at once (madvise): each
     * heap keeps a few spare empty segments, so what reaches jemalloc is
     * memory Gyre really gave up (a released burst, a replaced array). */
    char name[64];
    ssize_t zero = 0;
    snprintf(name, sizeof name, "arena.%u.dirty_decay_ms", index);
    (void)mallctl(name, NULL, NULL, &zero, sizeof zero);
    snprintf(name, sizeof name, "arena.%u.muzzy_decay_ms", index);
    (void)mallctl(name, NULL, NULL, &zero, sizeof zero);
    /* Map virtual memory in steps of at most 4 MiB (jemalloc grows them
     * geometrically by default): a burst leaves less address space mapped,
     * and with it less of jemalloc's page map (resident metadata that is
     * never given back). */
    size_t grow = (size_t)4 << 20;
    snprintf(name, sizeof name, "arena.%u.retain_grow_limit", index);
    (void)mallctl(name, NULL, NULL, &grow, sizeof grow);
#else
    (void)err;
#endif
    return GY_OK;
}

void gy__arena_shutdown(void) { (void)gy_memory_trim(); }

/* Release the calling heap's empty allocation segments too. */
static void tcache_flush(gy__heap *h);
static void spares_release(gy__heap *h);

static void trim_heap(gy__heap *h) {
    tcache_flush(h);
    gy__arena_quiesce(h);
    gy__arena_collect_remote(h);
    for (uint32_t t = 0; t < GY__MAX_TYPES; t++) {
        gy__segment *s = h->cur[t];
        if (s != NULL && s->nused == 0) {
            h->cur[t] = NULL;
            segment_release(h, s);
        }
    }
    for (uint32_t c = 0; c < GY__RAW_CLASSES; c++) {
        gy__segment *s = h->raw_cur[c];
        if (s != NULL && s->nused == 0) {
            h->raw_cur[c] = NULL;
            segment_release(h, s);
        }
    }
    spares_release(h);
    /* relaxed load + store: only the owner writes it. */
    GY__COUNTER_ADD(h->trims, 1);
}

int gy_memory_trim(void) {
    if (gy__tls_heap != NULL) {
        trim_heap(gy__tls_heap);
    }
#if GY_USE_JEMALLOC
    char name[64];
    snprintf(name, sizeof name, "arena.%u.purge", gy__rt.arena_index);
    (void)mallctl(name, NULL, NULL, NULL, 0);
#endif
    return GY_OK;
}

int gy_memory_release(gy_release_mode mode) {
    if (mode != GY_RELEASE_DECAYED && mode != GY_RELEASE_ALL) {
        return GY_EINVAL;
    }
#if GY_USE_JEMALLOC
    /* Every arena (MALLCTL_ARENAS_ALL): Gyre's and malloc's, which is
     * jemalloc too in a process linked with it. "decay" frees what is past
     * the arenas' decay time; jemalloc otherwise does that only while the
     * arena allocates, so an idle process would keep it. */
    char name[64];
    snprintf(name, sizeof name, "arena.%u.%s", (unsigned)MALLCTL_ARENAS_ALL,
             mode == GY_RELEASE_ALL ? "purge" : "decay");
    if (mallctl(name, NULL, NULL, NULL, 0) != 0) {
        return GY_EIO;
    }
#if defined(__GLIBC__)
    /* ALL: and glibc's malloc, which serves the process's plain malloc when libc
     * comes before jemalloc in the symbol lookup (a program linked with
     * libgyre, whose dependency jemalloc is): its per-thread arenas keep
     * the pages of freed blocks (Gyre's reclamation batches and hand-off
     * nodes after a burst among them) until asked. */
    if (mode == GY_RELEASE_ALL) {
        (void)malloc_trim(0);
    }
#endif
#endif
    return GY_OK;
}

/* Read one size_t statistic of jemalloc (0 when it has none). */
#if GY_USE_JEMALLOC
static uint64_t je_stat(const char *name) {
    size_t v = 0, len = sizeof v;
    return mallctl(name, &v, &len, NULL, 0) == 0 ? (uint64_t)v : 0;
}
#endif

void gy__arena_allocator_stats(gy_memory_stats *out) {
#if GY_USE_JEMALLOC
    /* Writing "epoch" refreshes jemalloc's statistics snapshot. */
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    if (mallctl("epoch", &epoch, &len, &epoch, len) != 0) {
        return;
    }
    out->allocator_allocated = je_stat("stats.allocated");
    out->allocator_active = je_stat("stats.active");
    out->allocator_resident = je_stat("stats.resident");
    out->allocator_mapped = je_stat("stats.mapped");
    out->allocator_retained = je_stat("stats.retained");
    out->allocator_metadata = je_stat("stats.metadata");
    char name[64];
    snprintf(name, sizeof name, "stats.arenas.%u.pdirty", (unsigned)MALLCTL_ARENAS_ALL);
    uint64_t pdirty = je_stat(name);
    snprintf(name, sizeof name, "stats.arenas.%u.pmuzzy", (unsigned)MALLCTL_ARENAS_ALL);
    uint64_t pmuzzy = je_stat(name);
    out->allocator_dirty = (pdirty + pmuzzy) * je_stat("arenas.page");
#else
    (void)out;
#endif
}

/* --- cell link word ------------------------------------------------------ */

/* Free cells are linked through the word at offset 8; offset 0..7 of an
 * object cell keeps the dead header (local UNOWNED, shared MERGED|0) so a late
 * try-incref fails. ASan builds keep [8, size) poisoned while the cell is
 * free and unpoison the link word only to touch it. */
static void **cell_link(void *cell) { return (void **)((char *)cell + 8); }

static void *link_get(void *cell) {
    GY__UNPOISON(cell_link(cell), sizeof(void *));
    void *next = *cell_link(cell);
    GY__POISON(cell_link(cell), sizeof(void *));
    return next;
}

static void link_set(void *cell, void *next) {
    GY__UNPOISON(cell_link(cell), sizeof(void *));
    *cell_link(cell) = next;
    GY__POISON(cell_link(cell), sizeof(void *));
}

/* --- segments ------------------------------------------------------------ */

static gy__segment **seg_list_head(gy__heap *h, gy__segment *seg) {
    return seg->type != NULL ? &h->segs[seg->type_index] : &h->raw_segs[seg->raw_class];
}

static gy__segment **seg_cur_slot(gy__heap *h, gy__segment *seg) {
    return seg->type != NULL ? &h->cur[seg->type_index] : &h->raw_cur[seg->raw_class];
}

static gy__segment *segment_new(gy__heap *h, gy_type *type, uint32_t tindex, uint32_t raw_class,
                                uint32_t cell_size) {
    if (gy_failpoint("alloc")) {
        return NULL;
    }
    char *mem;
    if (h->nspare > 0) {
        mem = h->spare[--h->nspare]; /* an empty segment kept for reuse */
        atomic_store_explicit(&h->spare_segments, h->nspare, memory_order_relaxed);
    } else {
        mem = seg_mem_alloc(GY__SEG_SIZE, GY__SEG_SIZE);
        if (mem == NULL) {
            return NULL;
        }
        atomic_fetch_add_explicit(&h->segments, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&h->segment_bytes, GY__SEG_SIZE, memory_order_relaxed);
    }
    gy__segment *seg = (gy__segment *)mem;
    memset(seg, 0, sizeof *seg);
    size_t header = (sizeof *seg + 15) & ~(size_t)15;
    /* Cache colouring: segments are 64 KiB-aligned, so without an offset
     * the same cell of every segment would fall in the same cache sets.
     * relaxed: the serial only has to be unique. */
    uint32_t serial =
        atomic_fetch_add_explicit(&gy__rt.segment_serial, 1, memory_order_relaxed) + 1;
    size_t colour = (size_t)(serial % 16) * 64;
    /* Each cell costs its size plus its 4-byte serial, plus the collector's
     * 4-byte word for tracked types. */
    bool tracked = gy__type_tracked(type);
    size_t side = tracked ? 8 : 4;
    size_t ncells = (GY__SEG_SIZE - header - 32 - colour) / (cell_size + side);
    seg->magic = GY__SEG_MAGIC;
    seg->raw_class = raw_class;
    seg->heap = h;
    seg->type = type;
    seg->type_index = tindex;
    seg->cell_size = cell_size;
    seg->ncells = (uint32_t)ncells;
    seg->serial_hi = serial;
    /* Initialised before the segment is published (under seg_lock below):
     * serials zeroed; a cell never handed out has generation 3 (permanent)
     * in its word, so that a concurrent walk, which may see a cell counted
     * in `bump` before its owner has made it an object, skips it without
     * reading it. */
    memset(mem + header, 0, ncells * sizeof(uint32_t));
    seg->serials = (_Atomic uint32_t *)(mem + header);
    seg->gcw = tracked ? (uint32_t *)(mem + header + ncells * sizeof(uint32_t)) : NULL;
    for (size_t i = 0; tracked && i < ncells; i++) {
        seg->gcw[i] = 3;
    }
    seg->recip = (uint32_t)(((uint64_t)1 << 32) / cell_size + 1);
    seg->cells =
        (char *)(((uintptr_t)(mem + header + ncells * side + colour) + 15) & ~(uintptr_t)15);
    ck_stack_init(&seg->remote);
    GY__POISON(seg->cells, ncells * cell_size);

    pthread_mutex_lock(&h->seg_lock);
    gy__segment **head = seg_list_head(h, seg);
    seg->next = *head;
    if (*head != NULL) {
        (*head)->prev = seg;
    }
    *head = seg;
    pthread_mutex_unlock(&h->seg_lock);
    return seg;
}

/* Give a segment's memory back to jemalloc (relaxed counters: statistics). */
static void segment_free_memory(gy__heap *h, void *mem) {
    atomic_fetch_sub_explicit(&h->segments, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&h->segment_bytes, GY__SEG_SIZE, memory_order_relaxed);
    seg_mem_free(mem);
}

/* Release the spare empty segments (trim, shutdown). */
static void spares_release(gy__heap *h) {
    while (h->nspare > 0) {
        segment_free_memory(h, h->spare[--h->nspare]);
    }
    atomic_store_explicit(&h->spare_segments, 0, memory_order_relaxed);
}

/* seg_lock held: take seg out of h->young_segs. */
static void young_remove_locked(gy__heap *h, gy__segment *seg) {
    if (seg->young_slot == 0) {
        return;
    }
    uint32_t i = seg->young_slot - 1;
    gy__segment *last = h->young_segs[--h->nyoung];
    h->young_segs[i] = last;
    last->young_slot = i + 1;
    seg->young_slot = 0;
}

void gy__young_segment_add_locked(gy__heap *h, gy__segment *seg) {
    if (seg->young_slot != 0 || h->young_overflow) {
        return;
    }
    if (h->nyoung == h->young_cap) {
        uint32_t cap = h->young_cap ? h->young_cap * 2 : 64;
        gy__segment **grown =
            gy_failpoint("internal") ? NULL : realloc(h->young_segs, cap * sizeof *grown);
        if (grown == NULL) {
            h->young_overflow = true; /* the collector walks everything */
            return;
        }
        h->young_segs = grown;
        h->young_cap = cap;
    }
    h->young_segs[h->nyoung++] = seg;
    seg->young_slot = h->nyoung;
}

void gy__young_segment_add(gy__heap *h, gy__segment *seg) {
    pthread_mutex_lock(&h->seg_lock);
    gy__young_segment_add_locked(h, seg);
    pthread_mutex_unlock(&h->seg_lock);
}

static void segment_release(gy__heap *h, gy__segment *seg) {
    pthread_mutex_lock(&h->seg_lock);
    young_remove_locked(h, seg);
    if (seg->prev != NULL) {
        seg->prev->next = seg->next;
    } else {
        *seg_list_head(h, seg) = seg->next;
    }
    if (seg->next != NULL) {
        seg->next->prev = seg->prev;
    }
    pthread_mutex_unlock(&h->seg_lock);
    /* C1: while a collection watches, the collector may still read this
     * segment (its snapshot of the lists, a pointer read from a field just
     * emptied): unlinked, but held until the watch ends. relaxed: the
     * collector reads segments only after this thread answered the watch;
     * the global phase covers the collector's own thread. */
    /* Walks (walk.c): their snapshots may list it (seq_cst, against the
     * walker's increment before its snapshot's seg_lock). */
    if (h->gc_watch != 0 ||
        (atomic_load_explicit(&gy__rt.gc_phase, memory_order_relaxed) & GY__PHASE_WATCH) ||
        atomic_load_explicit(&gy__rt.walkers, memory_order_seq_cst) > 0) {
        seg->next = h->held;
        h->held = seg;
        return;
    }
    segment_release_memory(h, seg);
}

/* The second half of a release: the segment's memory goes to the spares or
 * back to jemalloc. */
static void segment_release_memory(gy__heap *h, gy__segment *seg) {
    free(seg->gcv);
    seg->gcv = NULL;
    GY__UNPOISON(seg->cells, (size_t)seg->ncells * seg->cell_size);
    seg->magic = 0;
    if (h->nspare < GY__SPARE_SEGMENTS) {
        h->spare[h->nspare++] = seg; /* kept: the next segment_new takes it */
        atomic_store_explicit(&h->spare_segments, h->nspare, memory_order_relaxed);
    } else {
        segment_free_memory(h, seg);
    }
}

/* Release seg if nothing in it is used and it is not the allocation segment. */
static void segment_maybe_release(gy__heap *h, gy__segment *seg) {
    if (seg->nused == 0 && *seg_cur_slot(h, seg) != seg) {
        segment_release(h, seg);
    }
}

/* Owner: take a cell from seg, or NULL when it has none. */
static void *segment_pop(gy__segment *seg) {
    void *cell = seg->free_list;
    if (cell != NULL) {
        seg->free_list = link_get(cell);
    } else {
        /* relaxed: owner-only writes; id lookups read it (heap.h). */
        uint32_t b = atomic_load_explicit(&seg->bump, memory_order_relaxed);
        if (b == seg->ncells) {
            return NULL;
        }
        cell = seg->cells + (size_t)b * seg->cell_size;
        atomic_store_explicit(&seg->bump, b + 1, memory_order_relaxed);
    }
    seg->nused++;
    return cell;
}

/* Owner: move cells other heaps returned to seg onto its free list. */
static void segment_collect_remote(gy__segment *seg) {
    if (atomic_load_explicit(&seg->nremote, memory_order_relaxed) == 0) {
        return;
    }
    ck_stack_entry_t *e = ck_stack_batch_pop_upmc(&seg->remote);
    GY__TSAN_ACQUIRE(&seg->remote); /* see return_cell */
    uint32_t n = 0;
    while (e != NULL) {
        ck_stack_entry_t *next = e->next;
        void *cell = (char *)e - 8;
        link_set(cell, seg->free_list);
        seg->free_list = cell;
        n++;
        e = next;
    }
    /* relaxed: only a hint that remote cells exist; the stack orders them. */
    atomic_fetch_sub_explicit(&seg->nremote, n, memory_order_relaxed);
    seg->nused -= n;
}

static bool segment_has_room(gy__segment *seg) {
    segment_collect_remote(seg);
    return seg->free_list != NULL ||
           atomic_load_explicit(&seg->bump, memory_order_relaxed) < seg->ncells;
}

/* Owner: a cell of `cell_size` for the list at *cur / *head, refilling from
 * the epoch, then other segments of the list, then a new segment. */
static void *alloc_cell(gy__heap *h, gy__segment **cur, gy__segment **head, gy_type *type,
                        uint32_t tindex, uint32_t raw_class, uint32_t cell_size) {
    gy__segment *seg = *cur;
    void *cell = seg != NULL ? segment_pop(seg) : NULL;
    if (cell != NULL) {
        return cell;
    }
    /* Refill: a quiescent state first, so our own freed cells can return. */
    gy__arena_quiesce(h);
    if (seg != NULL && segment_has_room(seg)) {
        return segment_pop(seg);
    }
    for (gy__segment *s = *head; s != NULL; s = s->next) {
        if (s != seg && segment_has_room(s)) {
            *cur = s;
            if (seg != NULL) {
                segment_maybe_release(h, seg);
            }
            return segment_pop(s);
        }
    }
    gy__segment *fresh = segment_new(h, type, tindex, raw_class, cell_size);
    if (fresh == NULL) {
        return NULL;
    }
    *cur = fresh;
    if (seg != NULL) {
        segment_maybe_release(h, seg);
    }
    return segment_pop(fresh);
}

int gy__arena_alloc_object(gy__heap *h, gy_type *type, uint32_t index, gy_object **out) {
    uint32_t size = gy__type_cell_size(type);
    gy_object *ob = gy__tcache_pop(h, index);
    if (ob == NULL) {
        ob = alloc_cell(h, &h->cur[index], &h->segs[index], type, index, 0, size);
        if (ob == NULL) {
            return GY_ENOMEM;
        }
    }
    gy__cell_init_object(h, index, ob, size);
    *out = ob;
    return GY_OK;
}

bool gy__object_is_live(const gy_object *ob) {
    return !(atomic_load_explicit(&ob->gy__local, memory_order_relaxed) == GY__UNOWNED &&
             atomic_load_explicit(&ob->gy__shared, memory_order_relaxed) == GY__RC_DEAD);
}

/* --- freeing and reclamation --------------------------------------------- */

static void bag_reclaim(ck_epoch_entry_t *entry);

static void retired_reclaim(ck_epoch_entry_t *entry);

/* Hand the bag in *slot to the epoch, to `reclaim` after a grace period. */
static void bag_flush(gy__heap *h, gy__bag **slot, ck_epoch_cb_t *reclaim) {
    gy__bag *bag = *slot;
    if (bag != NULL && bag->count > 0) {
        *slot = NULL;
        GY__TSAN_RELEASE(&gy__rt.epoch);
        ck_epoch_call(&h->epoch, &bag->entry, reclaim);
    }
}

void gy__arena_flush_bag(gy__heap *h) {
    bag_flush(h, &h->bag, bag_reclaim);
    bag_flush(h, &h->retired, retired_reclaim);
}

/* Link cell into the bag in *slot (a new one if none); false when no bag
 * can be had (the caller keeps the cell: a bounded leak, counted). */
static bool bag_push(gy__heap *h, gy__bag **slot, void *cell) {
    gy__bag *bag = *slot;
    if (bag == NULL) {
        bag = gy_failpoint("internal") ? NULL : malloc(sizeof *bag);
        if (bag == NULL) {
            /* relaxed: a statistic. */
            atomic_fetch_add_explicit(&h->internal_failures, 1, memory_order_relaxed);
            return false;
        }
        bag->heap = h;
        bag->head = NULL;
        bag->count = 0;
        *slot = bag;
    }
    link_set(cell, bag->head);
    bag->head = cell;
    return ++bag->count == GY__BAG_CELLS;
}

/* Mark an object cell dead: a late try-incref reads this and fails. */
static void cell_mark_dead(gy__segment *seg, void *cell) {
    if (seg->type != NULL) {
        gy_object *ob = cell;
        /* relaxed: the cell is not reused before a grace period (or, for
         * gy__arena_free_cell_now, nobody else can reach it). */
        atomic_store_explicit(&ob->gy__local, GY__UNOWNED, memory_order_relaxed);
        atomic_store_explicit(&ob->gy__shared, GY__RC_DEAD, memory_order_relaxed);
    }
}

void gy__arena_free_cell(gy__heap *h, void *cell) {
    gy__segment *seg = gy__segment_of(cell);
    cell_mark_dead(seg, cell);
    GY__POISON((char *)cell + 8, seg->cell_size - 8);
    /* Without a bag the cell stays used: a bounded leak, never a
     * use-after-free (counted by bag_push). */
    if (bag_push(h, &h->bag, cell)) {
        bag_flush(h, &h->bag, bag_reclaim);
    }
}

static void return_cell(gy__heap *h, void *cell);

void gy__arena_free_cell_now(gy__heap *h, gy_object *ob) {
    gy__segment *seg = gy__segment_of(ob);
    cell_mark_dead(seg, ob);
    GY__POISON((char *)ob + 8, seg->cell_size - 8);
    gy__tcache *tc = h->tcache[seg->type_index];
    if (tc == NULL) {
        tc = h->tcache[seg->type_index] = calloc(1, sizeof *tc);
    }
    if (tc != NULL && tc->n < GY__TCACHE_CELLS) {
        tc->cells[tc->n++] = ob;
        return;
    }
    return_cell(h, ob); /* cache full: straight back to its segment */
}

/* Give every cached cell back to its segment (trim, detach, shutdown). */
static void tcache_flush(gy__heap *h) {
    for (uint32_t t = 0; t < GY__MAX_TYPES; t++) {
        gy__tcache *tc = h->tcache[t];
        while (tc != NULL && tc->n > 0) {
            return_cell(h, tc->cells[--tc->n]);
        }
    }
}

/* Return one reclaimed cell to its segment. Runs on the thread of `h`. */
static void return_cell(gy__heap *h, void *cell) {
    gy__segment *seg = gy__segment_of(cell);
    if (seg->heap == h) {
        link_set(cell, seg->free_list);
        seg->free_list = cell;
        seg->nused--;
        segment_maybe_release(h, seg);
        return;
    }
    /* Another heap's segment: hand it back through its remote stack. The
     * link word stays unpoisoned while ck_stack owns it. */
    GY__UNPOISON(cell_link(cell), sizeof(void *));
    /* Everything we need from seg is read before the push: once the cell is
     * on the stack its owner may take it, find the segment empty and free
     * it (heaps themselves live as long as the runtime). */
    gy__heap *owner = seg->heap;
    /* relaxed: a hint for the owner; the stack push is the real hand-over.
     * Counted first, so the hint is never below the stack's size. */
    atomic_fetch_add_explicit(&seg->nremote, 1, memory_order_relaxed);
    /* ck_stack's CAS orders what we did to the cell (the collector's reads
     * of it included) before the owner's reuse; TSan cannot see it. */
    GY__TSAN_RELEASE(&seg->remote);
    ck_stack_push_upmc(&seg->remote, (ck_stack_entry_t *)cell_link(cell));
    if (!(atomic_fetch_or_explicit(&owner->pending, GY__PEND_REMOTE, memory_order_release) &
          GY__PEND_REMOTE)) {
        gy__heap_wake(owner);
    }
}

/* Return a bag's cells to their segments after its grace period; `poison`:
 * retired storage, left readable until now (freed cells were poisoned at
 * their free). */
static void bag_return(ck_epoch_entry_t *entry, bool poison) {
    gy__bag *bag = (gy__bag *)((char *)entry - offsetof(gy__bag, entry));
    /* The grace period ordered every reader's accesses before this point;
     * tell TSan, which cannot see ck_epoch's uninstrumented code. */
    GY__TSAN_ACQUIRE(&gy__rt.epoch);
    void *cell = bag->head;
    while (cell != NULL) {
        void *next = link_get(cell);
        if (poison) {
            GY__POISON((char *)cell + 8, gy__segment_of(cell)->cell_size - 8);
        }
        return_cell(bag->heap, cell);
        cell = next;
    }
    free(bag);
}

static void bag_reclaim(ck_epoch_entry_t *entry) { bag_return(entry, false); }

static void retired_reclaim(ck_epoch_entry_t *entry) { bag_return(entry, true); }

void gy__arena_quiesce(gy__heap *h) {
    GY__TSAN_RELEASE(&gy__rt.epoch);
    ck_epoch_end(&h->epoch, NULL);
    ck_epoch_begin(&h->epoch, NULL);
    gy__arena_flush_bag(h);
    (void)ck_epoch_poll(&h->epoch);
}

/* Collect the remote frees of every segment of one list; release empties. */
static void collect_remote_list(gy__heap *h, gy__segment *s) {
    while (s != NULL) {
        gy__segment *next = s->next; /* s may be released below */
        segment_collect_remote(s);
        segment_maybe_release(h, s);
        s = next;
    }
}

void gy__arena_collect_remote(gy__heap *h) {
    for (uint32_t t = 0; t < GY__MAX_TYPES; t++) {
        collect_remote_list(h, h->segs[t]);
    }
    for (uint32_t c = 0; c < GY__RAW_CLASSES; c++) {
        collect_remote_list(h, h->raw_segs[c]);
    }
}

void gy__arena_reclaim_all(gy__heap *h) {
    gy__arena_flush_bag(h);
    GY__TSAN_RELEASE(&gy__rt.epoch);
    ck_epoch_barrier(&h->epoch);
}

void gy__arena_release_held(gy__heap *h) {
    while (h->held != NULL) {
        gy__segment *seg = h->held;
        h->held = seg->next;
        segment_release_memory(h, seg);
    }
}

/* --- C1: the limbo of a watching collection (collector/DESIGN.md 9.3) --- */

void gy__arena_limbo_open(void) {
    pthread_mutex_lock(&gy__rt.limbo_lock);
    gy__rt.limbo_open = true;
    pthread_mutex_unlock(&gy__rt.limbo_lock);
}

bool gy__arena_limbo_take(gy__heap *h, gy_object *ob) {
    gy__segment *seg = gy__segment_of(ob);
    uint32_t *w = &seg->gcw[gy__cell_index(seg, ob)];
    /* seq_cst fence, then the word: against the walk's CAS of CANDIDATE,
     * fence, then its re-read of the count. Either it sees this object
     * dead (and drops it) or this free sees CANDIDATE. */
    atomic_thread_fence(memory_order_seq_cst);
    /* acquire: a word without CANDIDATE was reset by the collector after its
     * last read of the object (release, gy__gc_word_reset). */
    if (!(__atomic_load_n(w, __ATOMIC_ACQUIRE) & GY__GCW_CANDIDATE)) {
        return false;
    }
    pthread_mutex_lock(&gy__rt.limbo_lock);
    if (!gy__rt.limbo_open) {
        pthread_mutex_unlock(&gy__rt.limbo_lock);
        return false; /* the collection ended: the normal path */
    }
    if (gy__rt.nlimbo == gy__rt.limbo_cap) {
        size_t cap = gy__rt.limbo_cap ? gy__rt.limbo_cap * 2 : 256;
        void **grown = gy_failpoint("internal") ? NULL : realloc(gy__rt.limbo, cap * sizeof *grown);
        if (grown == NULL) {
            /* The cell must not be reused: it stays used (a bounded leak,
             * never a use-after-free), counted. relaxed: a statistic. */
            pthread_mutex_unlock(&gy__rt.limbo_lock);
            cell_mark_dead(seg, ob);
            atomic_fetch_add_explicit(&h->internal_failures, 1, memory_order_relaxed);
            return true;
        }
        gy__rt.limbo = grown;
        gy__rt.limbo_cap = cap;
    }
    gy__rt.limbo[gy__rt.nlimbo++] = ob;
    pthread_mutex_unlock(&gy__rt.limbo_lock);
    /* Dead for every reader (a late try-incref fails), but not poisoned:
     * the collector may still traverse it (it finds its fields cleared). */
    cell_mark_dead(seg, ob);
    return true;
}

void gy__arena_limbo_close(gy__heap *h) {
    pthread_mutex_lock(&gy__rt.limbo_lock);
    gy__rt.limbo_open = false;
    void **cells = gy__rt.limbo;
    size_t n = gy__rt.nlimbo;
    gy__rt.limbo = NULL;
    gy__rt.nlimbo = gy__rt.limbo_cap = 0;
    pthread_mutex_unlock(&gy__rt.limbo_lock);
    for (size_t i = 0; i < n; i++) {
        gy__arena_free_cell(h, cells[i]); /* after a grace period, to its segment */
    }
    free(cells);
}

void gy__arena_release_heap(gy__heap *h) {
    h->gc_watch = 0; /* no collection runs at shutdown */
    gy__arena_release_held(h);
    for (uint32_t t = 0; t < GY__MAX_TYPES; t++) {
        free(h->tcache[t]);
        h->tcache[t] = NULL;
        h->cur[t] = NULL;
        while (h->segs[t] != NULL) {
            segment_release(h, h->segs[t]);
        }
    }
    for (uint32_t c = 0; c < GY__RAW_CLASSES; c++) {
        h->raw_cur[c] = NULL;
        while (h->raw_segs[c] != NULL) {
            segment_release(h, h->raw_segs[c]);
        }
    }
    spares_release(h);
    free(h->young_segs);
    h->young_segs = NULL;
    h->nyoung = h->young_cap = 0;
    h->young_overflow = false;
}

int gy__heap_foreach_object(gy__heap *h, int (*fn)(gy_object *, void *), void *arg) {
    int rc = 0;
    pthread_mutex_lock(&h->seg_lock);
    for (uint32_t t = 1; t < GY__MAX_TYPES && rc == 0; t++) {
        for (gy__segment *s = h->segs[t]; s != NULL && rc == 0; s = s->next) {
            uint32_t bump = atomic_load_explicit(&s->bump, memory_order_relaxed);
            for (uint32_t i = 0; i < bump && rc == 0; i++) {
                gy_object *ob = (gy_object *)(s->cells + (size_t)i * s->cell_size);
                if (gy__object_is_live(ob)) {
                    rc = fn(ob, arg);
                }
            }
        }
    }
    pthread_mutex_unlock(&h->seg_lock);
    return rc;
}

/* --- raw backing storage ------------------------------------------------- */

static void counters_add_bytes(gy__heap *h, uint32_t tindex, int64_t delta) {
    GY__COUNTER_ADD(h->counters[tindex].backing, delta);
}

static void large_reclaim(ck_epoch_entry_t *entry) {
    GY__TSAN_ACQUIRE(&gy__rt.epoch);
    large_header *hdr = (large_header *)entry;
    /* relaxed: a statistic (gy_memory_get_stats). */
    atomic_fetch_sub_explicit(&gy__rt.large_bytes, (int64_t)hdr->size, memory_order_relaxed);
    seg_mem_free(hdr);
}

void *gy__mem_alloc(gy_object *owner, size_t size) {
    gy__heap *h = gy__tls_heap;
    if (h == NULL || size == 0 || gy_failpoint("alloc")) {
        return NULL;
    }
    uint32_t tindex = owner != NULL ? gy__segment_of(owner)->type_index : 0;
    uint32_t c = raw_class_of(size);
    if (c < GY__RAW_CLASSES) {
        void *cell = alloc_cell(h, &h->raw_cur[c], &h->raw_segs[c], NULL, 0, c, raw_class_size[c]);
        if (cell == NULL) {
            return NULL;
        }
        GY__UNPOISON(cell, raw_class_size[c]);
        counters_add_bytes(h, tindex, raw_class_size[c]);
        gy__trace_resize(owner, (int64_t)raw_class_size[c]);
        return cell;
    }
    large_header *hdr = seg_mem_alloc(sizeof *hdr + size, 16);
    if (hdr == NULL) {
        return NULL;
    }
    hdr->size = size;
    hdr->magic = LARGE_MAGIC;
    atomic_fetch_add_explicit(&gy__rt.large_bytes, (int64_t)size, memory_order_relaxed);
    counters_add_bytes(h, tindex, (int64_t)size);
    gy__trace_resize(owner, (int64_t)size);
    return hdr + 1;
}

/* Count raw storage of `owner` as given back (its class's size for a cell). */
static void mem_uncount(gy__heap *h, gy_object *owner, int64_t bytes) {
    uint32_t tindex = owner != NULL ? gy__segment_of(owner)->type_index : 0;
    counters_add_bytes(h, tindex, -bytes);
    gy__trace_resize(owner, -bytes);
}

void gy__mem_free(gy_object *owner, void *p, size_t size) {
    if (p == NULL) {
        return;
    }
    gy__heap *h = gy__tls_heap;
    uint32_t c = raw_class_of(size);
    if (c < GY__RAW_CLASSES) {
        mem_uncount(h, owner, raw_class_size[c]);
        gy__arena_free_cell(h, p);
        return;
    }
    large_header *hdr = (large_header *)p - 1;
    mem_uncount(h, owner, (int64_t)hdr->size);
    ck_epoch_call(&h->epoch, &hdr->entry, large_reclaim);
}

/* --- storage a concurrent traverse reads ---------------------------------- */

void *gy__storage_alloc(gy_object *owner, size_t size) {
    if (size == 0 || size > SIZE_MAX - GY__STORAGE_PREFIX) {
        return NULL;
    }
    char *base = gy__mem_alloc(owner, size + GY__STORAGE_PREFIX);
    return base != NULL ? base + GY__STORAGE_PREFIX : NULL;
}

void gy__storage_retire(gy_object *owner, void *p, size_t size) {
    if (p == NULL) {
        return;
    }
    gy__heap *h = gy__tls_heap;
    char *base = (char *)p - GY__STORAGE_PREFIX;
    size += GY__STORAGE_PREFIX;
    uint32_t c = raw_class_of(size);
    if (c >= GY__RAW_CLASSES) {
        gy__mem_free(owner, base, size); /* large: freed after a grace period */
        return;
    }
    mem_uncount(h, owner, raw_class_size[c]);
    /* Linked through the prefix; the caller's bytes stay readable (and
     * unpoisoned) until retired_reclaim. */
    if (bag_push(h, &h->retired, base)) {
        bag_flush(h, &h->retired, retired_reclaim);
    }
}
