/* core/src/heap.h: segments, heaps and the runtime (internal).
 *
 * Layout and protocols are described in core/DESIGN.md; this header states
 * each field's synchronisation. Lock order (outer first): rt.threads_lock,
 * heap.seg_lock, rt.park_lock, heap.wake_lock (a leaf: held only around the
 * wake call). Weakref and trace stripe locks are leaves too. A list or
 * dict spinlock may be held while the arena takes the owner heap's seg_lock
 * or a wake_lock (growth allocates); introspection takes spinlocks under a
 * seg_lock only while the world is stopped, when no other thread can be
 * inside a list or dict operation, so the two orders never meet.
 */
#ifndef GYRE_CORE_HEAP_H
#define GYRE_CORE_HEAP_H

#include <ck_epoch.h>
#include <ck_stack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "gyre/object.h"
#include "gyre/runtime.h"
#include "internal.h"

#define GY__SEG_SIZE ((uintptr_t)64 * 1024)
#define GY__SEG_MAGIC 0x47795365u /* "GySe" */
#define GY__MAX_TYPES 512         /* type index 0 is "raw memory" */
#define GY__MAX_OBJECT_SIZE 4096
#define GY__RAW_CLASSES 18
#define GY__RAW_MAX 8192 /* larger raw blocks come straight from the arena */
#define GY__BAG_CELLS 256
#define GY__SPARE_SEGMENTS 4 /* empty segments a heap keeps for reuse */
#define GY__TRASH_DEPTH 32
#define GY__OUTBOX_SLOTS 62
#define GY__UNOWNED UINT32_MAX

/* ref_shared: count << 7 | flags. QUEUED and MERGED drive the biased-count
 * protocol; PUBLISHED (the object was stored in a gy_ref field, so another
 * thread may try-incref it from there) and ID_TAKEN (someone holds its
 * gy_id) decide whether its cell may be reused at once or only after an
 * epoch grace period; FINALIZED says its finalizer has run; WEAKREFS says
 * weak references to it may be registered; DOOMED (set by the collector)
 * makes every upgrade fail. A dead cell holds exactly MERGED (and ref_local
 * UNOWNED). 25 bits of count: at most 2^24 - 1 references held by
 * non-owner threads at once. */
#define GY__RC_QUEUED 1
#define GY__RC_MERGED 2
#define GY__RC_PUBLISHED 4
#define GY__RC_ID_TAKEN 8
#define GY__RC_FINALIZED 16
#define GY__RC_WEAKREFS 32
#define GY__RC_DOOMED 64
#define GY__RC_FLAGS 127
#define GY__RC_SHIFT 7
#define GY__RC_ONE (1 << GY__RC_SHIFT)
#define GY__RC_DEAD GY__RC_MERGED

/* Unpublished objects freed by their owner: reused at once (LIFO, hot in
 * cache), as jemalloc's tcache does. */
#define GY__TCACHE_CELLS 64
typedef struct gy__tcache {
    uint32_t n;
    void *cells[GY__TCACHE_CELLS];
} gy__tcache;

typedef struct gy__heap gy__heap;

typedef struct gy__segment {
    uint32_t magic;
    uint32_t raw_class;  /* raw segments: size class index; objects: 0 */
    gy__heap *heap;      /* immutable: the owning heap (heaps are adopted whole) */
    gy_type *type;       /* immutable: NULL for raw segments */
    uint32_t type_index; /* immutable: 0 for raw */
    uint32_t cell_size;  /* immutable */
    uint32_t ncells;     /* immutable */
    uint32_t serial_hi;  /* immutable: segment creation number */
    char *cells;         /* immutable: first cell */
    uint32_t recip;      /* immutable: ceil(2^32 / cell_size), for gy__cell_index */
    /* The collector's word per cell (collector/DESIGN.md), present only in
     * segments of tracked types (neither LEAF nor ACYCLIC), else NULL. Set
     * to 0 ("tracked, generation 0") by the owner when it hands a cell out;
     * otherwise read and written only by the collector while the world is
     * stopped, so plain accesses: the stop handshake orders them. */
    uint32_t *gcw;
    /* Generations that may have objects here (bit g), conservative: set by
     * the owner on allocation (bit 0) and by the collector; cleared only by
     * the collector with the world stopped. Relaxed: a filter for walks that
     * run with the world stopped, which orders them. */
    _Atomic uint8_t gc_gens;
    /* 1 + its index in heap.young_segs, 0 when not listed; seg_lock. */
    uint32_t young_slot;
    /* Reuse counters, bumped when an object whose id was taken is freed;
     * written by the freeing thread, read by id lookups (relaxed). */
    _Atomic uint32_t *serials;
    /* Owner-only (the heap's current thread): */
    void *free_list; /* cells linked through their link word */
    /* Cells [bump, ncells) were never handed out. Written by the owner only,
     * read by id lookups without the world stopped: relaxed atomic (it only
     * grows while the segment lives, so a stale read is a smaller bound). */
    _Atomic uint32_t bump;
    uint32_t nused;                  /* cells not on free_list/bump: live, in a bag, or remote */
    struct gy__segment *next, *prev; /* the heap's list for this type or class; seg_lock */
    /* The tag of the last concurrent collection during which the owner
     * allocated here (collector/DESIGN.md 9.5 step 2): with the collector's
     * clearing of gc_gens' bit 0, a Dekker pair (seq_cst on both sides), so
     * that a birth during a walk never loses the segment its generation-0
     * bit. Written by the owner while watching, read by the collector. */
    _Atomic uint32_t gc_born;
    /* The concurrent collector's number per cell (its count while counting),
     * allocated by the collector on its first walk of the segment, freed
     * with the segment (never while a collection watches: segments are then
     * held, gy__arena_release_held). Only the collector's thread reads or
     * writes the numbers. */
    int32_t *gcv;
    /* Any thread: cells returned by other heaps' reclamation. */
    ck_stack_t remote; /* push_upmc by others, batch_pop_upmc by the owner */
    _Atomic uint32_t nremote;
} gy__segment;

/* Per heap and type. Live objects = allocated - freed and their bytes =
 * live x cell size + backing, summed over heaps on read, so allocation and
 * free each bump one counter. Written by the heap's thread only (relaxed
 * load + store), read by anyone (relaxed). */
typedef struct gy__type_counters {
    _Atomic uint64_t allocated;
    _Atomic uint64_t freed;
    _Atomic int64_t backing; /* raw backing storage bytes */
} gy__type_counters;

/* Bump an owner-written counter: a relaxed load and store, no RMW. */
#define GY__COUNTER_ADD(field, delta)                                                     \
    atomic_store_explicit(&(field),                                                       \
                          atomic_load_explicit(&(field), memory_order_relaxed) + (delta), \
                          memory_order_relaxed)

/* Whether the collector tracks objects of `type`: it may hold references
 * that take part in cycles (neither LEAF nor ACYCLIC). */
static inline bool gy__type_tracked(const gy_type *type) {
    return type != NULL && !(type->flags & (GY_TYPE_LEAF | GY_TYPE_ACYCLIC));
}

/* The cell size of a type: its size rounded up to 8, at least 16. */
static inline uint32_t gy__type_cell_size(const gy_type *type) {
    uint32_t size = (uint32_t)((type->size + 7) & ~(size_t)7);
    return size < 16 ? 16 : size;
}

/* A batch of freed cells waiting for an epoch grace period. */
typedef struct gy__bag {
    ck_epoch_entry_t entry;
    gy__heap *heap;
    void *head;
    uint32_t count;
} gy__bag;

/* Objects handed to another heap (biased-count merges, loop-affine frees).
 * The low bit of a slot marks a free request. */
typedef struct gy__outbox {
    ck_stack_entry_t entry;
    gy__heap *dest;
    uint32_t count;
    uintptr_t slots[GY__OUTBOX_SLOTS];
} gy__outbox;

/* Thread states (gy__heap.state). */
enum { GY__RUNNING = 0, GY__QUIESCENT = 1, GY__HELD = 2, GY__PARKED = 3, GY__DETACHED = 4 };
/* Pending work bits (gy__heap.pending). */
enum {
    GY__PEND_STOP = 1u << 0,
    GY__PEND_INBOX = 1u << 1,
    GY__PEND_DEFERRED = 1u << 2,
    GY__PEND_REMOTE = 1u << 3,
    GY__PEND_ORPHAN = 1u << 4,
    GY__PEND_COLLECT = 1u << 5,   /* the collector's hook runs at the next safe point */
    GY__PEND_HANDSHAKE = 1u << 6, /* answer the collector's phase (gy__gc_watch_answer) */
};

/* The concurrent collector's phase word, rt.gc_phase (collector/DESIGN.md
 * 9.4): epoch << 32 | WATCH | tag. `epoch` numbers handshakes; WATCH says a
 * collection watches; `tag` (1..65535) is its number, stamped into the
 * bits GY__GCW_TAG_SHIFT.. of the words of objects touched while it
 * watches. Written by the collector's thread only (seq_cst, against the
 * state load of gy_quiescent_end: a Dekker pair); read by threads that
 * answer a handshake and by the touch. */
#define GY__PHASE_WATCH (1u << 16)
#define GY__PHASE_TAG(p) ((uint32_t)(p)&0xFFFFu)
#define GY__PHASE_EPOCH(p) ((uint32_t)((p) >> 32))
/* In a tracked cell's word (collector/src/collector.h has the rest): the
 * CANDIDATE bit, which core's free path reads (C1), and the TAG's place. */
#define GY__GCW_CANDIDATE (1u << 2)
#define GY__GCW_TAG_SHIFT 16

/* A thread's pauses (pause.c; gyre/runtime.h gy_pause_stats). Counters:
 * written by the owner only (relaxed load + store), read by anyone
 * (relaxed). The ring of its last collector pauses, for the MMU, is the
 * owner's; the worst MMU so far, in parts per million, is published. */
enum { GY__PAUSE_RING = 64 };
typedef struct gy__pause_rec {
    _Atomic uint64_t count[GY_PAUSE_KINDS], total_ns[GY_PAUSE_KINDS], max_ns[GY_PAUSE_KINDS];
    _Atomic uint64_t hist[GY_PAUSE_KINDS][GY_PAUSE_BUCKETS];
    _Atomic uint32_t mmu_ppm[2]; /* 1 ms, 10 ms windows; 1000000 = no pause */
    uint64_t ring_start[GY__PAUSE_RING], ring_end[GY__PAUSE_RING];
    uint32_t ring_n, ring_next;
} gy__pause_rec;

struct gy__heap {
    ck_epoch_record_t epoch; /* first: cache-line aligned */
    /* Owner-only hot state. */
    gy__segment *cur[GY__MAX_TYPES];  /* allocation segment per type */
    gy__segment *segs[GY__MAX_TYPES]; /* all segments per type; seg_lock for writers+walkers */
    gy__segment *raw_cur[GY__RAW_CLASSES];
    gy__segment *raw_segs[GY__RAW_CLASSES];
    gy__tcache *tcache[GY__MAX_TYPES]; /* immediate reuse, allocated lazily */
    gy__bag *bag;                      /* current bag of freed cells */
    gy__bag *retired;                  /* current bag of retired storage */
    void *spare[GY__SPARE_SEGMENTS];   /* empty segments kept for reuse */
    uint32_t nspare;
    gy__outbox *outbox;   /* current outgoing batch */
    gy_object **deferred; /* trashcan stack */
    uint32_t ndeferred, deferred_cap;
    uint32_t depth;  /* nested frees */
    uint64_t nfreed; /* objects this heap's thread freed */
    uint32_t budget; /* cascade budget per safe point; 0 = unlimited */
    int kind;
    bool internal; /* attached by gy__thread_attach_internal (threads_lock) */
    /* The collection this thread has answered (collector/DESIGN.md 9.4), 0
     * for none: while it is non-zero every barrier of this thread touches
     * (gc_touch.h). Written by this thread only, when it answers a
     * handshake at a safe point or leaves quiescence; read only by this
     * thread's barriers, so a plain field. */
    uint32_t gc_watch;
    /* The epoch of the last handshake this thread answered (release store by
     * the thread, acquire load by the collector). */
    _Atomic uint32_t gc_answered;
    /* Segments that became empty while a collection watched: unlinked from
     * the lists but not released, since the collector may still read them
     * (C1); released when this thread answers a handshake that ends the
     * watch. Owner only; linked through `next`. */
    gy__segment *held;
    /* The loop's wake function, guarded by wake_lock so that once detach
     * has cleared it no other thread is still calling it (the loop may then
     * free what wake_arg points to). `wakeable` is a lock-free hint. */
    pthread_mutex_t wake_lock;
    gy_wake_fn wake;
    void *wake_arg;
    _Atomic int wakeable;
    char name[32];
    /* Shared. */
    _Atomic int state;        /* GY__RUNNING...; CAS transitions, see runtime.c */
    _Atomic unsigned pending; /* GY__PEND_* bits; set by anyone, cleared by the owner */
    ck_stack_t inbox;         /* gy__outbox nodes pushed by other heaps */
    pthread_mutex_t seg_lock; /* guards the segment lists against walkers */
    gy__type_counters counters[GY__MAX_TYPES];
    _Atomic uint64_t segments, segment_bytes;
    /* Owner-written mirrors for gy_memory_get_stats (relaxed store; read by
     * anyone): nspare, and the trims this heap has run. */
    _Atomic uint64_t spare_segments, trims;
    _Atomic uint64_t cascade_objects, cascade_ns, merges;
    /* Counted by this heap's thread (relaxed RMW; statistics). */
    _Atomic uint64_t last_ref_races, tryincref_refused;
    _Atomic uint64_t internal_failures; /* bag/outbox allocations that failed */
    /* World stops this heap's thread made (relaxed: the owner counts, a
     * statistic read by anyone). */
    _Atomic uint64_t world_stops_made;
    /* Tracked allocations minus frees not yet added to rt.gc_young (owner:
     * relaxed load + store; the collector resets it with the world stopped). */
    _Atomic int32_t gc_delta;
    gy__pause_rec pause; /* this thread's pauses (pause.c) */
    gy__heap *next;      /* rt.heaps list; threads_lock */
    /* Segments of tracked types that got a generation-0 object since the
     * collector last looked: a generation-0 collection walks only these.
     * seg_lock (appended by the owner when it sets a segment's gen-0 bit,
     * removed on segment release, filtered by the collector with the world
     * stopped). young_overflow: an append failed; walk every segment. */
    gy__segment **young_segs;
    uint32_t nyoung, young_cap;
    bool young_overflow;
};

typedef struct gy__runtime {
    _Atomic int running;
    ck_epoch_t epoch;
    pthread_mutex_t threads_lock; /* heaps list, attach/detach, world stops */
    gy__heap *heaps;              /* every heap, attached or orphaned */
    _Atomic uint64_t nattached;
    _Atomic uint64_t ninternal; /* of nattached: the runtime's own threads (threads_lock) */
    pthread_mutex_t park_lock;  /* with park_cond: parked threads wait for resume */
    pthread_cond_t park_cond;
    _Atomic int stop_requested; /* seq_cst: read by threads at safe points */
    _Atomic uint64_t world_stops;
    _Atomic uint32_t segment_serial;
    _Atomic uint32_t ntypes;       /* type indexes handed out (1-based) */
    gy_type *types[GY__MAX_TYPES]; /* index -> type; written once before index is published */
    uint32_t default_budget;
    unsigned arena_index; /* jemalloc arena (release builds) */
    /* Bytes of large backing blocks held, until their grace period ends
     * (relaxed RMW by any heap: statistics). */
    _Atomic int64_t large_bytes;
    /* Generation 0's count: tracked allocations minus frees (never below 0),
     * fed by the heaps' gc_delta; when an allocation takes it above
     * gc_young_limit (set by the collector; INT64_MAX: never) the allocating
     * heap gets GY__PEND_COLLECT. Relaxed: a trigger, not a synchronisation. */
    _Atomic int64_t gc_young;
    _Atomic int64_t gc_young_limit;
    /* Time to safepoint of world stops (pause.c): written by the stopper
     * with threads_lock held, read by anyone (relaxed). */
    _Atomic uint64_t ttsp_count, ttsp_total_ns, ttsp_max_ns;
    _Atomic uint64_t ttsp_hist[GY_PAUSE_BUCKETS];
    /* The concurrent collector's phase (GY__PHASE_*); 0: never watched. */
    _Atomic uint64_t gc_phase;
    /* C1's limbo: cells of this collection's candidates freed while it
     * watches, kept (not reused, not poisoned) until it ends. limbo_lock is
     * a leaf held O(1) by a freeing thread and by the collector when it
     * opens or closes the limbo. */
    pthread_mutex_t limbo_lock;
    bool limbo_open;
    /* Sliced walks under way (walk.c): while above zero, emptied segments
     * are held, not released (seq_cst, against segment_release). */
    _Atomic int walkers;
    void **limbo;
    size_t nlimbo, limbo_cap;
} gy__runtime;

extern gy__runtime gy__rt;
/* The calling thread's heap, NULL when detached. */
/* initial-exec: one %fs-relative load even inside the shared library
 * (the default model there calls __tls_get_addr on every incref). Gyre is
 * linked at start-up, not dlopen'd late, so static TLS space is there. */
#define GY__TLS_MODEL __attribute__((tls_model("initial-exec")))
extern _Thread_local gy__heap *gy__tls_heap GY__TLS_MODEL;

static inline gy__segment *gy__segment_of(const void *p) {
    return (gy__segment *)((uintptr_t)p & ~(GY__SEG_SIZE - 1));
}

/* --- arena.c --- */
int gy__arena_init(gy_errmsg *err);
void gy__arena_shutdown(void);
/* Fill the allocator_* fields of out (jemalloc; untouched on libc). */
void gy__arena_allocator_stats(gy_memory_stats *out);
/* Allocate a zeroed object cell of `type` (index > 0) from heap h (the
 * caller, gy__new_at, has passed the "alloc" failpoint). */
int gy__arena_alloc_object(gy__heap *h, gy_type *type, uint32_t index, gy_object **out);
/* Put a dead object's cell (or raw cell) in h's bag; reused after a grace
 * period. */
void gy__arena_free_cell(gy__heap *h, void *cell);
/* A dead object's cell that no other thread can reach (never published, id
 * never taken, h owns its segment): reused at once. */
void gy__arena_free_cell_now(gy__heap *h, gy_object *ob);
/* Whether a cell holds a live object (its header is not the dead marker). */
bool gy__object_is_live(const gy_object *ob);
/* Raw backing storage of `owner` (NULL: scratch memory), counted against
 * its type and, when tracing, its allocation trace. */
void *gy__mem_alloc(gy_object *owner, size_t size);
void gy__mem_free(gy_object *owner, void *p, size_t size);
/* Storage a concurrent reader (the collector's traverse) may read while its
 * owner replaces it (gy_storage_alloc and gy_storage_retire, gyre/object.h):
 * gy__mem_alloc'd with GY__STORAGE_PREFIX bytes in front that are the
 * arena's (the retire list links through them), so a retired block's bytes
 * stay as they were, unpoisoned, until its grace period ends. */
#define GY__STORAGE_PREFIX 16
void *gy__storage_alloc(gy_object *owner, size_t size);
void gy__storage_retire(gy_object *owner, void *p, size_t size);
/* Epoch quiescent state for h, then reclaim what the grace period allows. */
void gy__arena_quiesce(gy__heap *h);
/* Push the current bag to the epoch (h's safe point). */
void gy__arena_flush_bag(gy__heap *h);
/* Return cells other heaps freed into h's segments; release empty ones. */
void gy__arena_collect_remote(gy__heap *h);
/* Wait for a grace period and reclaim everything h deferred (shutdown). */
void gy__arena_reclaim_all(gy__heap *h);
/* Release every segment of h (shutdown). */
void gy__arena_release_heap(gy__heap *h);
/* Release the segments h held while a collection watched (owner). */
void gy__arena_release_held(gy__heap *h);
/* C1: a dying object's cell, about to be freed by h: true when it was
 * taken into the limbo instead (a candidate of the collection that
 * watches), false when it takes the normal path. */
bool gy__arena_limbo_take(gy__heap *h, gy_object *ob);
static inline bool gy__arena_limbo_maybe(gy__heap *h, gy__segment *seg, gy_object *ob) {
    /* acquire: a candidate exists only after this thread answered the
     * watch, or on the collector's own thread; and a phase that no longer
     * watches orders this free after every read the collector made of the
     * object (its seq_cst store of the phase that ends the watch). Seen
     * missing by TSan in stress.gc_torture: a relaxed load here let a free
     * right after a collection race the collector's last traversals. */
    return seg->gcw != NULL &&
           __builtin_expect((atomic_load_explicit(&gy__rt.gc_phase, memory_order_acquire) &
                             GY__PHASE_WATCH) != 0,
                            0) &&
           gy__arena_limbo_take(h, ob);
}
/* The collector, when a collection starts watching (open) and when it ends
 * (close: the cells go back through `h`'s grace period). */
void gy__arena_limbo_open(void);
void gy__arena_limbo_close(gy__heap *h);
/* The index of a cell in its segment: a multiply by the reciprocal, exact
 * for offsets below 2^16 and cell sizes up to 2^13. */
static inline uint32_t gy__cell_index(const gy__segment *seg, const void *cell) {
    uint64_t off = (uint64_t)((const char *)cell - seg->cells);
    return (uint32_t)((off * seg->recip) >> 32);
}
/* Call fn for every live object of h (owner or world stopped). */
int gy__heap_foreach_object(gy__heap *h, int (*fn)(gy_object *, void *), void *arg);
/* Call fn for every live object of every heap (of `type` only, when not
 * NULL) in slices of at most 32768 cells, each with the world stopped,
 * until fn returns non-zero (returned). Objects born during the walk may
 * be missed. Returns -1 when the segment snapshot cannot be allocated
 * (nothing walked). An attached, running thread; no Gyre lock held. */
int gy__walk_sliced(const gy_type *type, int (*fn)(gy_object *, void *), void *arg);

/* --- refcount.c --- */
/* Take a reference to an object that may be dying; false when it is dead.
 * The caller must be inside its epoch section (attached, not quiescent). */
bool gy__try_incref(gy__heap *h, gy_object *ob);
void gy__object_dealloc(gy_object *ob);
/* Mark ob reachable by try-incref (PUBLISHED) before making a pointer to it
 * reachable to other threads without a reference (a gy_ref field, a weak
 * reference's stripe, a weak collection's handle). From then on its last
 * owner decrement goes through the CAS and its cell waits for a grace
 * period. The caller holds a reference. */
void gy__object_mark_reachable(gy_object *ob);
/* A unit test's hook into the protocol's race windows (NULL: none), called
 * by the thread in the window with the window's name: "race.last_decref"
 * (between the owner's last decrement reading the shared word and its CAS),
 * "race.merge_queued" (right after the owner's merge CAS, where the
 * object may already be freed by another thread), "race.load" (in gy_load,
 * between reading the field and the try-incref) and "race.load_reread"
 * (after a successful try-incref, before the field is read again); the
 * concurrent collector calls it with "race.gc_sealed" on its thread between
 * a set's seal and its publication. Set it before starting threads.
 */
typedef void (*gy__race_hook_fn)(const char *window);
extern _Atomic(gy__race_hook_fn) gy__race_window_hook;
/* Process h's inbox (merges and loop-affine frees). */
void gy__refcount_drain_inbox(gy__heap *h);
/* Process popped inbox nodes on the calling thread (heap h). */
void gy__refcount_process_nodes(gy__heap *h, ck_stack_entry_t *nodes);
/* Push h's outbox to its destination. */
void gy__refcount_flush_outbox(gy__heap *h);
/* Run deferred frees; `budget` 0 means all. Returns how many are left. */
uint32_t gy__refcount_drain_deferred(gy__heap *h, uint32_t budget);
/* Hand every object h owns over to shared counting (detach). */
void gy__refcount_disown_all(gy__heap *h);

/* List seg in h->young_segs (its gen-0 bit was just set); takes seg_lock.
 * The _locked variant: the caller holds it. */
void gy__young_segment_add(gy__heap *h, gy__segment *seg);
void gy__young_segment_add_locked(gy__heap *h, gy__segment *seg);

/* Flush h's gc_delta (now `value`) into rt.gc_young; `alloc`: an allocation
 * made it, so past the limit the heap gets GY__PEND_COLLECT. */
void gy__gc_young_flush(gy__heap *h, int32_t value, bool alloc);

/* Count a tracked allocation (+1) or free (-1) on h (its own thread). One
 * relaxed load and store per call; the shared counter is touched every 32
 * events, or when this allocation may cross the limit. */
#define GY__GC_YOUNG_BATCH 32
static inline void gy__gc_young_add(gy__heap *h, int32_t d) {
    int32_t v = atomic_load_explicit(&h->gc_delta, memory_order_relaxed) + d;
    if (v >= GY__GC_YOUNG_BATCH || v <= -GY__GC_YOUNG_BATCH ||
        (d > 0 && v + atomic_load_explicit(&gy__rt.gc_young, memory_order_relaxed) >
                      atomic_load_explicit(&gy__rt.gc_young_limit, memory_order_relaxed))) {
        gy__gc_young_flush(h, v, d > 0);
        return;
    }
    atomic_store_explicit(&h->gc_delta, v, memory_order_relaxed);
}

/* The number of references to ob: both halves of its biased count. Exact
 * with the world stopped; a hint otherwise. */
static inline int64_t gy__refcount_total(const gy_object *ob) {
    uint32_t l =
        atomic_load_explicit(&((gy_object *)(uintptr_t)ob)->gy__local, memory_order_relaxed);
    int32_t s =
        atomic_load_explicit(&((gy_object *)(uintptr_t)ob)->gy__shared, memory_order_relaxed);
    return (int64_t)(s >> GY__RC_SHIFT) + (l != GY__UNOWNED ? (int64_t)l : 0);
}

/* --- refcount.c (collector support) --- */
/* Ask ob's owner thread to run its finalizer (once) or its clear at its
 * next safe point (at once when the caller owns ob), then drop the
 * reference this call STEALS. False when no hand-off node could be
 * allocated (the caller keeps its reference). The caller then flushes its
 * outbox (gy__refcount_flush_outbox). */
typedef enum gy__post_kind { GY__POST_FINALIZE, GY__POST_CLEAR } gy__post_kind;
bool gy__object_post_to_owner(gy_object *ob, gy__post_kind what);

/* --- runtime.c --- */
void gy__safepoint_slow(gy__heap *h);
/* Take rt.threads_lock. An attached, running caller waits quiescent when
 * the lock is busy (its holder may be stopping the world and waiting for
 * this thread), so it must hold no uncounted object pointer here. */
void gy__threads_lock(void);
/* Stop every other attached thread at a safe point (or hold it quiescent);
 * returns with rt.threads_lock held. The caller may be attached or not. */
void gy__world_stop(void);
void gy__world_resume(void);
void gy__heap_wake(gy__heap *h);
/* Work left in orphaned heaps (inboxes filled after their thread left). */
void gy__runtime_drain_orphans(void);

/* --- weakref.c --- */
typedef struct gy_weakref gy_weakref;
/* The collector, world stopped: unregister every weak reference to `ob`
 * (cyclic trash). Those for which is_trash(weakref) is false and that have
 * a callback are taken (a NEW reference each) and chained onto *pending;
 * the rest just read NULL from now on. Returns how many were cleared. */
size_t gy__weakref_detach_for_gc(gy_object *ob, bool (*is_trash)(const gy_object *),
                                 gy_weakref **pending);
/* The collector, world stopped: if `ob` is a weak reference (cyclic trash
 * itself), unregister it from its referent so that its callback is never
 * called, whatever the clearing of the trash frees later (CPython's
 * handle_weakrefs, bpo-38006). Returns true when it was registered. */
bool gy__weakref_detach_trash(gy_object *ob);
/* Run the callbacks of a chain built by gy__weakref_detach_for_gc and drop
 * its references (world running, no lock held). */
void gy__weakref_run_pending(gy_weakref *pending);
/* The object is dying (count zero, finalizer done): clear every weak
 * reference to it and run their callbacks, newest first. No lock held. */
void gy__weakref_clear_all(gy_object *ob);
void gy__weakref_init(void);
void gy__weakref_shutdown(void);
/* gy_weakref_new with an `arg_release` called when the weakref dies. */
int gy__weakref_new_full(gy_weakref **out, void *target, void (*cb)(gy_weakref *, void *),
                         void *arg, void (*arg_release)(void *), const char *file, int line);

/* --- dict.c --- */
typedef struct gy_dict gy_dict;
/* gy_dict_del, only while key maps to `expected` (NULL: any value). */
int gy__dict_del_if(gy_dict *d, const char *key, const void *expected);

/* --- introspect.c --- */
/* Drop every named root (shutdown, with a heap context set). */
void gy__roots_release_all(void);

/* --- object.c --- */
gy_type *gy__type_by_index(uint32_t index);
/* Counters of type index `index` summed over every heap (threads_lock held). */
void gy__type_sum(uint32_t index, gy_type_stats *out);

/* TSan annotations for synchronisation TSan cannot see (ck_epoch's
 * uninstrumented grace-period code). */
#if GY_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define GY__TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define GY__TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define GY__TSAN_ACQUIRE(p) ((void)0)
#define GY__TSAN_RELEASE(p) ((void)0)
#endif

#if GY_ASAN
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define GY__POISON(p, n) __asan_poison_memory_region((p), (n))
#define GY__UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define GY__POISON(p, n) ((void)(p), (void)(n))
#define GY__UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Zero a new object's cell but its first word, the header, which the
 * caller writes with atomic stores: an id lookup may read the header of a
 * reused cell at the same time (size: a multiple of 8, at least 16). Cells
 * up to 128 bytes, the common case, get straight-line stores instead of a
 * call to memset: the switch enters at the cell's last word and falls
 * through to the second. */
static inline void gy__zero_cell(void *cell, uint32_t size) {
    uint64_t *w = cell;
    switch (size / 8) {
#define GY__ZERO_WORD(n) \
    case n + 1:          \
        w[n] = 0;        \
        __attribute__((fallthrough))
        GY__ZERO_WORD(15);
        GY__ZERO_WORD(14);
        GY__ZERO_WORD(13);
        GY__ZERO_WORD(12);
        GY__ZERO_WORD(11);
        GY__ZERO_WORD(10);
        GY__ZERO_WORD(9);
        GY__ZERO_WORD(8);
        GY__ZERO_WORD(7);
        GY__ZERO_WORD(6);
        GY__ZERO_WORD(5);
        GY__ZERO_WORD(4);
        GY__ZERO_WORD(3);
        GY__ZERO_WORD(2);
        GY__ZERO_WORD(1);
#undef GY__ZERO_WORD
    case 1:
        break;
    default:
        __builtin_memset(w + 1, 0, size - 8);
    }
}

/* The most recently freed cell of type index `index` (hot in cache), or
 * NULL when the heap's per-type cache is empty. Owner only. */
static inline gy_object *gy__tcache_pop(gy__heap *h, uint32_t index) {
    gy__tcache *tc = h->tcache[index];
    return tc != NULL && tc->n > 0 ? tc->cells[--tc->n] : NULL;
}

/* Pauses (pause.c): the monotonic clock in ns; record a pause of `kind`
 * from start to end on h (the calling thread's heap; NULL: nothing); a
 * world stop's time to safepoint; reset a heap's record. */
uint64_t gy__clock_ns(void);
void gy__pause_record(gy__heap *h, int kind, uint64_t start_ns, uint64_t end_ns);
void gy__pause_ttsp(uint64_t ns);
void gy__pause_init(gy__pause_rec *rec);

/* The collector's touch of a tracked object (gc_touch.c, gc_touch.h). */
bool gy__gc_touch_slow(gy_object *ob);

/* Make `ob` (a cell of `size` bytes taken for type index `index`) a new
 * object owned by h with a count of 1. */
static inline void gy__cell_init_object(gy__heap *h, uint32_t index, gy_object *ob, uint32_t size) {
    GY__UNPOISON(ob, size);
    gy__zero_cell(ob, size);
    gy__segment *seg = gy__segment_of(ob);
    if (seg->gcw != NULL) {
        /* A tracked type: generation 0, counted towards threshold 0. B1:
         * born while a collection watches, it carries the collection's tag,
         * so it is never its candidate. The word is stored before the count
         * that makes the cell live (release below): a walk that reads the
         * new count (acquire) reads this word. Atomic: the collector may
         * RMW the word of the cell's previous, dead occupant meanwhile. */
        uint32_t watch = h->gc_watch;
        __atomic_store_n(&seg->gcw[gy__cell_index(seg, ob)], watch << GY__GCW_TAG_SHIFT,
                         __ATOMIC_RELAXED);
        if (__builtin_expect(watch != 0, 0)) {
            /* seq_cst store, then seq_cst load of gc_gens: against the
             * walk's clearing of bit 0 then load of gc_born. */
            if (atomic_load_explicit(&seg->gc_born, memory_order_relaxed) != watch) {
                atomic_store_explicit(&seg->gc_born, watch, memory_order_seq_cst);
            }
        }
        if (!(atomic_load_explicit(&seg->gc_gens, memory_order_seq_cst) & 1)) {
            atomic_fetch_or_explicit(&seg->gc_gens, 1, memory_order_relaxed);
            gy__young_segment_add(h, seg);
        }
        gy__gc_young_add(h, 1);
    }
    /* The shared word first, then the owner's count with release (see
     * above); no other thread can reach the object yet. */
    atomic_store_explicit(&ob->gy__shared, 0, memory_order_relaxed);
    atomic_store_explicit(&ob->gy__local, 1, memory_order_release);
    GY__COUNTER_ADD(h->counters[index].allocated, 1);
}

#endif /* GYRE_CORE_HEAP_H */
