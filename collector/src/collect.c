/* collector/src/collect.c: one collection, step by step (trial deletion as
 * in CPython's Python/gc.c, over an array instead of linked lists).
 *
 * The candidates are the live tracked objects of the generations collected.
 * Their pointers go into one array, objs[0..n); every later step permutes
 * that array in place; marking keeps a worklist for references to objects
 * its pass has gone by (and rescans when that list cannot grow):
 *
 *   world stopped
 *   1. update    objs = candidates; word.VALUE = reference count
 *   2. subtract  word.VALUE -= references from other candidates
 *                => VALUE > 0 exactly for candidates referenced from outside
 *   3. mark      what they reach, in one pass in array order (a worklist
 *                only for references back to objects already passed); then
 *                objs[0..nreach) is everything reachable, objs[nreach..n)
 *                cyclic trash
 *   4. handle    survivors move up a generation; trash reached from a legacy
 *                finalizer is uncollectable, objs[nreach..ntrash); the rest,
 *                objs[ntrash..n), is held (one reference each) and its weak
 *                references are cleared
 *   world running
 *   5. finalize  weakref callbacks, then finalizers (PEP 442); if user code
 *                ran, the world stops again to check for resurrection
 *   6. clear     each trash object's clear, then the collector's reference
 *                goes: the ordinary refcount path frees the objects
 *
 * Debug builds (no NDEBUG) validate the array and words between steps.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector.h"
#include "gyre/failpoint.h"
#include "gyre/list.h"

#ifndef NDEBUG
#define GC_VALIDATE 1
#else
#define GC_VALIDATE 0
#endif

/* A broken invariant is a bug in a traverse function or in the collector:
 * stop before it can free a live object. */
#define GC_CHECK(cond, what)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            gy__log(GY_LOG_ERROR, "gc", "invariant broken: %s (%s:%d)", what, __FILE__, __LINE__); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The candidate array, kept between collections (collect_lock). */
static gy_object **cand_buf;
static size_t cand_cap;

typedef struct run {
    int gen;
    unsigned mask;   /* generation bits collected: 0..gen */
    unsigned newgen; /* where survivors go */
    gy_object **objs;
    size_t n;
    bool shrunk;    /* the array could not grow: fewer candidates */
    size_t nreach;  /* objs[0..nreach): reachable */
    size_t ntrash;  /* objs[nreach..ntrash): uncollectable; [ntrash..n): trash */
    bool id_taken;  /* some trash object's id was handed out */
    unsigned debug; /* GY_GC_DEBUG_*, read once when the collection starts */
    gy_weakref *callbacks;
    size_t weakrefs;
    uint64_t stops_after; /* rt.world_stops after our first stop */
    uint64_t pause_ns;
} run;

/* Plain word accesses happen with the world stopped. Outside a stop the
 * collector writes only the words of objects it holds (their cells cannot
 * be reused), with gy__gc_word_reset. */

void gy__gc_word_reset(uint32_t *w, uint32_t v) {
    /* A CAS so that a concurrent touch's TAG (concurrent mode, S0) is kept;
     * in stw mode no thread touches and the TAG bits are zero. release: a
     * free that reads the word without CANDIDATE (acquire, in
     * gy__arena_limbo_take) comes after every read the collector made of
     * the object, its traverses included. */
    uint32_t old = __atomic_load_n(w, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(w, &old, (old & GC_TAG_MASK) | v, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED)) {
    }
}

void gy__gc_gens_add(const gy_object *ob, unsigned gen) {
    gy__segment *seg = gy__segment_of(ob);
    uint8_t bit = (uint8_t)(1u << gen);
    if (!(atomic_load_explicit(&seg->gc_gens, memory_order_relaxed) & bit)) {
        atomic_fetch_or_explicit(&seg->gc_gens, bit, memory_order_relaxed);
    }
}

/* --- 1. update ------------------------------------------------------------ */

static bool cand_push(run *r, gy_object *ob) {
    if (r->shrunk) {
        return false;
    }
    if (r->n == cand_cap) {
        size_t cap = cand_cap ? cand_cap * 2 : 4096;
        if (cap > GC_VALUE_MAX) {
            cap = GC_VALUE_MAX; /* the index must fit the word */
        }
        gy_object **grown = cap <= cand_cap || gy_failpoint("gc.alloc")
                                ? NULL
                                : realloc(cand_buf, cap * sizeof *grown);
        if (grown == NULL) {
            r->shrunk = true; /* collect what we have: any subset is sound */
            return false;
        }
        cand_buf = grown;
        cand_cap = cap;
    }
    cand_buf[r->n++] = ob;
    return true;
}

/* Reserve room for `want` candidates up front (one allocation instead of
 * doublings); failure is fine, the pushes will try again. */
static void cand_reserve(size_t want) {
    if (want <= cand_cap || want > GC_VALUE_MAX || gy_failpoint("gc.alloc")) {
        return;
    }
    gy_object **grown = realloc(cand_buf, want * sizeof *grown);
    if (grown != NULL) {
        cand_buf = grown;
        cand_cap = want;
    }
}

/* Live tracked objects in every heap: an upper bound on the candidates. */
static size_t tracked_live(void) {
    uint32_t ntypes = atomic_load_explicit(&gy__rt.ntypes, memory_order_acquire);
    int64_t live = 0;
    for (uint32_t t = 1; t <= ntypes; t++) {
        if (gy__type_tracked(gy__rt.types[t])) {
            gy_type_stats st;
            gy__type_sum(t, &st);
            live += st.live;
        }
    }
    return live > 0 ? (size_t)live : 0;
}

/* Walk one segment for phase_update. */
static void update_segment(run *r, gy__segment *s) {
    unsigned gens = atomic_load_explicit(&s->gc_gens, memory_order_relaxed);
    if (!(gens & r->mask)) {
        return;
    }
    unsigned keep = gens & ~r->mask;
    /* Loop invariant: every live object of cells [0, i) in the collected
     * generations is a candidate or has its bit in keep. */
    uint32_t bump = atomic_load_explicit(&s->bump, memory_order_relaxed);
    for (uint32_t i = 0; i < bump; i++) {
        /* A touch's TAG (concurrent mode: this is its fallback) goes. */
        uint32_t w = s->gcw[i] & ~GC_TAG_MASK;
        unsigned bit = 1u << (w & GC_GEN_MASK);
        if (!(bit & r->mask)) {
            continue;
        }
        gy_object *ob = (gy_object *)(s->cells + (size_t)i * s->cell_size);
        int64_t total = gy__refcount_total(ob);
        if (total <= 0) {
            /* Dead (free cell), or dying: its owner frees it. */
            if (gy__object_is_live(ob)) {
                keep |= bit;
            }
            continue;
        }
        if (w & GC_HIDDEN) {
            /* A member of an earlier trash set whose clears were handed to
             * owner threads (phase_clear), alive: its set may still be
             * half cleared, so it stays hidden and out (a reference to it
             * counts as one from outside the candidates, like any other
             * non-candidate's). Once every handed-off clear has run, it
             * outlived its set's clear: an ordinary object again. */
            if (GC_VALIDATE) {
                GC_CHECK((w & ~GC_GEN_MASK) == GC_HIDDEN, "a hidden word carries other flags");
            }
            if (atomic_load_explicit(&gy__gc.posted_clears, memory_order_acquire) > 0) {
                keep |= bit;
                continue;
            }
            w &= GC_GEN_MASK;
            s->gcw[i] = w;
            /* acq_rel: as doom(); the world is stopped. */
            atomic_fetch_and_explicit(&ob->gy__shared, ~GY__RC_DOOMED, memory_order_acq_rel);
        }
        if (GC_VALIDATE) {
            GC_CHECK((w & ~GC_GEN_MASK) == 0, "a live word carries collection flags");
        }
        if (total > (int64_t)GC_VALUE_MAX || !cand_push(r, ob)) {
            keep |= bit; /* left out: stays where it is */
            continue;
        }
        s->gcw[i] = GC_CANDIDATE | (w & GC_GEN_MASK) | ((uint32_t)total << GC_SHIFT);
    }
    atomic_store_explicit(&s->gc_gens, (uint8_t)keep, memory_order_relaxed);
}

/* Keep in h->young_segs only the segments that still hold generation 0
 * (seg_lock held): the invariant "gen-0 bit set => listed" holds after. */
void gy__gc_young_filter(gy__heap *h) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < h->nyoung; i++) {
        gy__segment *s = h->young_segs[i];
        if (atomic_load_explicit(&s->gc_gens, memory_order_relaxed) & 1) {
            h->young_segs[k++] = s;
            s->young_slot = k;
        } else {
            s->young_slot = 0;
        }
    }
    h->nyoung = k;
}

/* Post: objs[0..n) are the live tracked objects of generations `mask` with
 * a positive count (up to what the array could hold); each has CANDIDATE
 * and VALUE = its count. Segments' gc_gens keep the bits of what was left
 * out. A generation-0 collection walks only the heaps' young segments. */
static void phase_update(run *r) {
    uint32_t ntypes = atomic_load_explicit(&gy__rt.ntypes, memory_order_acquire);
    for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
        pthread_mutex_lock(&h->seg_lock);
        if (r->mask == 1 && !h->young_overflow) {
            for (uint32_t i = 0; i < h->nyoung; i++) {
                update_segment(r, h->young_segs[i]);
            }
        } else {
            /* After an overflow the list starts afresh from this walk: it
             * lists the segments still holding generation 0 (left-out or
             * dying objects). */
            bool relist = h->young_overflow;
            if (relist) {
                for (uint32_t i = 0; i < h->nyoung; i++) {
                    h->young_segs[i]->young_slot = 0;
                }
                h->nyoung = 0;
                h->young_overflow = false;
            }
            for (uint32_t t = 1; t <= ntypes; t++) {
                if (!gy__type_tracked(gy__rt.types[t])) {
                    continue;
                }
                for (gy__segment *s = h->segs[t]; s != NULL; s = s->next) {
                    update_segment(r, s);
                    if (relist && (atomic_load_explicit(&s->gc_gens, memory_order_relaxed) & 1)) {
                        gy__young_segment_add_locked(h, s);
                    }
                }
            }
        }
        gy__gc_young_filter(h);
        pthread_mutex_unlock(&h->seg_lock);
    }
    r->objs = cand_buf;
}

/* --- 2. subtract ---------------------------------------------------------- */

static int visit_decref(gy_object *child, void *arg) {
    (void)arg;
    uint32_t *w = gc_word(child);
    if (w != NULL && (*w & GC_CANDIDATE)) {
        if (GC_VALIDATE) {
            GC_CHECK((*w >> GC_SHIFT) > 0,
                     "gc_refs below zero: a traverse visits a reference its object does not hold");
        }
        if ((*w >> GC_SHIFT) > 0) {
            *w -= 1u << GC_SHIFT;
        }
    }
    return 0;
}

/* Post: VALUE = references to the candidate from outside the candidates. */
static void phase_subtract(run *r) {
    /* Invariant: VALUE of each candidate = count - references from
     * objs[0..i). */
    for (size_t i = 0; i < r->n; i++) {
        (void)gc_type_of(r->objs[i])->traverse(r->objs[i], visit_decref, NULL);
    }
}

/* --- 3. mark --------------------------------------------------------------- */

/* Swap objs[i] and objs[j], keeping the index in their words. */
static inline void swap(run *r, size_t i, size_t j) {
    if (i == j) {
        return;
    }
    gy_object *a = r->objs[i], *b = r->objs[j];
    r->objs[i] = b;
    r->objs[j] = a;
    uint32_t *wa = gc_cand_word(a), *wb = gc_cand_word(b);
    *wa = (*wa & GC_FLAGS_MASK) | ((uint32_t)j << GC_SHIFT);
    *wb = (*wb & GC_FLAGS_MASK) | ((uint32_t)i << GC_SHIFT);
}

typedef struct closure_ctx {
    run *r;
    size_t lo, hi; /* the region */
    size_t front;  /* objs[lo..front) are marked */
    uint32_t mark;
} closure_ctx;

static int visit_mark(gy_object *child, void *arg) {
    closure_ctx *c = arg;
    uint32_t *w = gc_word(child);
    if (w == NULL || (*w & (GC_CANDIDATE | c->mark)) != GC_CANDIDATE) {
        return 0; /* not a candidate, or already marked */
    }
    size_t idx = *w >> GC_SHIFT;
    if (idx < c->lo || idx >= c->hi) {
        return 0; /* outside the region */
    }
    *w |= c->mark;
    swap(c->r, idx, c->front++);
    return 0;
}

/* Within objs[lo..hi): move the objects flagged `seed` to the front, then
 * everything they reach inside the region, marking each with `mark`.
 * Returns the end of the marked front. In place: breadth first, the front
 * is its own queue. */
static size_t closure(run *r, size_t lo, size_t hi, uint32_t seed, uint32_t mark) {
    closure_ctx c = {r, lo, hi, lo, mark};
    for (size_t i = lo; i < hi; i++) {
        uint32_t *w = gc_cand_word(r->objs[i]);
        if (*w & seed) {
            *w |= mark;
            swap(r, i, c.front++);
        }
    }
    /* Invariant: objs[lo..p) are marked and their children in the region
     * are marked (inside objs[lo..front)); objs[p..front) are marked and
     * wait for their traverse. */
    for (size_t p = lo; p < c.front; p++) {
        (void)gc_type_of(r->objs[p])->traverse(r->objs[p], visit_mark, &c);
    }
    return c.front;
}

/* The marking worklist, kept between collections (collect_lock). */
static gy_object **work_buf;
static size_t work_cap, work_len;
static bool work_overflow; /* a push failed: rescan for REACHABLE && !SCANNED */

static void work_push(gy_object *ob) {
    if (work_len == work_cap) {
        size_t cap = work_cap ? work_cap * 2 : 1024;
        gy_object **grown =
            gy_failpoint("gc.worklist") ? NULL : realloc(work_buf, cap * sizeof *grown);
        if (grown == NULL) {
            work_overflow = true; /* found again by a rescan pass */
            return;
        }
        work_buf = grown;
        work_cap = cap;
    }
    work_buf[work_len++] = ob;
}

/* A reachable object's reference: its target is reachable too. One the
 * linear pass has not reached yet is scanned when the pass gets there; one
 * it has gone by goes on the worklist. */
static int visit_reach(gy_object *child, void *arg) {
    (void)arg;
    uint32_t *w = gc_word(child);
    if (w == NULL || (*w & (GC_CANDIDATE | GC_REACHABLE)) != GC_CANDIDATE) {
        return 0;
    }
    *w |= GC_REACHABLE;
    if (*w & GC_PASSED) {
        work_push(child);
    }
    return 0;
}

static void scan(gy_object *ob, uint32_t *w) {
    *w |= GC_REACHABLE | GC_SCANNED;
    (void)gc_type_of(ob)->traverse(ob, visit_reach, NULL);
    while (work_len > 0) {
        gy_object *x = work_buf[--work_len];
        uint32_t *wx = gc_cand_word(x);
        if (!(*wx & GC_SCANNED)) {
            *wx |= GC_SCANNED;
            (void)gc_type_of(x)->traverse(x, visit_reach, NULL);
        }
    }
}

/* Post: objs[0..nreach) is everything reachable from outside the
 * candidates (REACHABLE); objs[nreach..n) is cyclic trash, each with only
 * CANDIDATE, its generation and its index. */
static void phase_mark(run *r) {
    /* Invariant: every candidate in objs[0..i) that is reachable from a
     * candidate with gc_refs > 0 is REACHABLE, and SCANNED unless a worklist
     * push failed (work_overflow). */
    for (size_t i = 0; i < r->n; i++) {
        uint32_t *w = gc_cand_word(r->objs[i]);
        if (!(*w & GC_SCANNED) && ((*w & GC_REACHABLE) || (*w >> GC_SHIFT) > 0)) {
            scan(r->objs[i], w);
        }
        *w |= GC_PASSED;
    }
    while (work_overflow) {
        work_overflow = false;
        for (size_t i = 0; i < r->n; i++) {
            uint32_t *w = gc_cand_word(r->objs[i]);
            if ((*w & (GC_REACHABLE | GC_SCANNED)) == GC_REACHABLE) {
                scan(r->objs[i], w);
            }
        }
    }
    /* Partition, reachable first; in place, swapping only misplaced pairs,
     * so an all-live or all-trash array keeps its (allocation) order. */
    size_t lo = 0, hi = r->n;
    for (;;) {
        while (lo < hi && (*gc_cand_word(r->objs[lo]) & GC_REACHABLE)) {
            lo++;
        }
        while (lo < hi && !(*gc_cand_word(r->objs[hi - 1]) & GC_REACHABLE)) {
            hi--;
        }
        if (lo >= hi) {
            break;
        }
        gy_object *t = r->objs[lo];
        r->objs[lo++] = r->objs[hi - 1];
        r->objs[--hi] = t;
    }
    r->nreach = lo;
    for (size_t i = r->nreach; i < r->n; i++) {
        uint32_t *w = gc_cand_word(r->objs[i]);
        *w = (*w & GC_GEN_MASK) | GC_CANDIDATE | ((uint32_t)i << GC_SHIFT);
    }
    if (work_cap > 65536) {
        free(work_buf); /* keep memory flat after a deep graph */
        work_buf = NULL;
        work_cap = 0;
    }
}

#if GC_VALIDATE
static int visit_check_reach(gy_object *child, void *arg) {
    (void)arg;
    uint32_t *w = gc_word(child);
    GC_CHECK(w == NULL || !(*w & GC_CANDIDATE) || (*w & GC_REACHABLE),
             "a reachable object references an object marked as trash");
    return 0;
}

static void validate_mark(const run *r) {
    for (size_t i = 0; i < r->n; i++) {
        uint32_t w = *gc_cand_word(r->objs[i]);
        GC_CHECK(w & GC_CANDIDATE, "a candidate lost its flag");
        GC_CHECK(((w & GC_REACHABLE) != 0) == (i < r->nreach), "reachable and trash interleave");
        GC_CHECK(i < r->nreach ? (w & GC_SCANNED) != 0 : (w >> GC_SHIFT) == i,
                 "a reachable object was not scanned, or a trash index is stale");
    }
    for (size_t i = 0; i < r->nreach; i++) {
        (void)gc_type_of(r->objs[i])->traverse(r->objs[i], visit_check_reach, NULL);
    }
}
#endif

/* --- 4. handle (world still stopped) ---------------------------------------- */

/* Is this weakref itself trash (its callback is then not called)? */
static bool is_trash(const gy_object *ob) {
    const uint32_t *w = gc_word(ob);
    return w != NULL && (*w & (GC_CANDIDATE | GC_REACHABLE | GC_UNCOLL)) == GC_CANDIDATE;
}

/* Post: survivors carry only their new generation; objs[nreach..ntrash)
 * (uncollectable: reached from a legacy finalizer) too, and are held;
 * objs[ntrash..n) (trash) keep CANDIDATE, are held, and no weak reference
 * reaches them. Generation 0's count is zero. */
static void phase_handle(run *r) {
    for (size_t i = 0; i < r->nreach; i++) {
        *gc_cand_word(r->objs[i]) = r->newgen; /* world stopped: plain */
        gy__gc_gens_add(r->objs[i], r->newgen);
    }
    /* Uncollectable: legacy finalizers and the trash they reach. */
    for (size_t i = r->nreach; i < r->n; i++) {
        if (gc_type_of(r->objs[i])->flags & GY_TYPE_LEGACY_FINALIZER) {
            *gc_cand_word(r->objs[i]) |= GC_ROOT;
        }
    }
    r->ntrash = closure(r, r->nreach, r->n, GC_ROOT, GC_UNCOLL);
    for (size_t i = r->nreach; i < r->ntrash; i++) {
        gy_incref(r->objs[i]); /* held until they are in the garbage list */
        *gc_cand_word(r->objs[i]) = r->newgen;
        gy__gc_gens_add(r->objs[i], r->newgen);
    }
    /* Weak references that are trash themselves: unregistered first, so
     * that their callbacks never run, not even when clearing the trash frees
     * their (non-trash) referent through an untracked holder (bpo-38006). */
    for (size_t i = r->ntrash; i < r->n; i++) {
        r->weakrefs += gy__weakref_detach_trash(r->objs[i]) ? 1 : 0;
    }
    /* Weak references to the trash: cleared now, so no thread can reach the
     * trash through them once the world runs again. */
    for (size_t i = r->ntrash; i < r->n; i++) {
        gy_object *ob = r->objs[i];
        int32_t s = atomic_load_explicit(&ob->gy__shared, memory_order_relaxed);
        r->id_taken |= (s & GY__RC_ID_TAKEN) != 0;
        if (s & GY__RC_WEAKREFS) {
            r->weakrefs += gy__weakref_detach_for_gc(ob, is_trash, &r->callbacks);
        }
    }
    /* Every trash object is held (one reference each) until the end: user
     * code (callbacks, finalizers), clears on other threads and the owners
     * freeing what our decrefs hand them must never free one of them while
     * it is still in this array. */
    for (size_t i = r->ntrash; i < r->n; i++) {
        gy_incref(r->objs[i]);
    }
    gy__gc_young_reset();
}

void gy__gc_young_reset(void) {
    atomic_store_explicit(&gy__rt.gc_young, 0, memory_order_relaxed);
    for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
        atomic_store_explicit(&h->gc_delta, 0, memory_order_relaxed);
    }
}

#if GC_VALIDATE
/* After handle: survivors and uncollectables carry only their new
 * generation; the trash keeps CANDIDATE, is neither reachable nor
 * uncollectable, and holds no legacy finalizer. */
static void validate_handle(const run *r) {
    GC_CHECK(r->nreach <= r->ntrash && r->ntrash <= r->n, "regions out of order");
    for (size_t i = 0; i < r->ntrash; i++) {
        GC_CHECK(*gc_cand_word(r->objs[i]) == r->newgen, "a kept object's word is not clean");
    }
    for (size_t i = r->ntrash; i < r->n; i++) {
        uint32_t w = *gc_cand_word(r->objs[i]);
        GC_CHECK((w & (GC_CANDIDATE | GC_REACHABLE | GC_UNCOLL)) == GC_CANDIDATE,
                 "a trash object is marked reachable or uncollectable");
        GC_CHECK(!(gc_type_of(r->objs[i])->flags & GY_TYPE_LEGACY_FINALIZER),
                 "a legacy finalizer is in the collectable trash");
    }
}
#endif

/* --- 5. finalize --------------------------------------------------------------- */

/* World stopped: does anything outside the trash (other than the
 * collector's hold) reference the trash now? */
static bool trash_resurrected(run *r) {
    for (size_t i = r->ntrash; i < r->n; i++) {
        int64_t outside = gy__refcount_total(r->objs[i]) - 1; /* minus our hold */
        uint32_t v = outside < 0                       ? 0
                     : outside > (int64_t)GC_VALUE_MAX ? GC_VALUE_MAX
                                                       : (uint32_t)outside;
        uint32_t *w = gc_cand_word(r->objs[i]);
        *w = (*w & GC_FLAGS_MASK) | (v << GC_SHIFT);
    }
    for (size_t i = r->ntrash; i < r->n; i++) {
        (void)gc_type_of(r->objs[i])->traverse(r->objs[i], visit_decref, NULL);
    }
    for (size_t i = r->ntrash; i < r->n; i++) {
        if ((*gc_cand_word(r->objs[i]) >> GC_SHIFT) > 0) {
            return true;
        }
    }
    return false;
}

static void doom(run *r, bool on) {
    for (size_t i = r->ntrash; i < r->n; i++) {
        /* acq_rel: a try-incref that sees DOOMED fails; one that won before
         * shows up in the count checked afterwards. */
        if (on) {
            atomic_fetch_or_explicit(&r->objs[i]->gy__shared, GY__RC_DOOMED, memory_order_acq_rel);
        } else {
            atomic_fetch_and_explicit(&r->objs[i]->gy__shared, ~GY__RC_DOOMED,
                                      memory_order_acq_rel);
        }
    }
}

bool gy__gc_finalize_set(gy_object **objs, size_t lo, size_t hi, gy_gc_info *info,
                         bool *user_code) {
    gy__heap *me = gy__tls_heap;
    bool deferred = false;
    for (size_t i = lo; i < hi; i++) {
        gy_object *ob = objs[i];
        const gy_type *type = gc_type_of(ob);
        if (type->finalize == NULL ||
            (atomic_load_explicit(&ob->gy__shared, memory_order_acquire) & GY__RC_FINALIZED)) {
            continue;
        }
        if ((type->flags & GY_TYPE_LOOP_AFFINE) && !(type->flags & GY_TYPE_FINALIZE_ANY_THREAD) &&
            gy__segment_of(ob)->heap != me) {
            /* Its owner finalizes it; a later collection frees the set. */
            gy_incref(ob);
            if (!gy__object_post_to_owner(ob, GY__POST_FINALIZE)) {
                gy_decref(ob);
            }
            deferred = true;
            continue;
        }
        /* acq_rel: the flag is set once, by whoever runs the finalizer. */
        int32_t s =
            atomic_fetch_or_explicit(&ob->gy__shared, GY__RC_FINALIZED, memory_order_acq_rel);
        if (!(s & GY__RC_FINALIZED)) {
            type->finalize(ob);
            info->finalizers++;
            *user_code = true;
        }
    }
    gy__refcount_flush_outbox(me);
    return deferred;
}

/* Returns true when the trash must survive this collection (resurrected,
 * or a finalizer was handed to its owner thread). */
static bool phase_finalize(run *r, gy_gc_info *info) {
    bool user_code = r->callbacks != NULL;
    gy__weakref_run_pending(r->callbacks);
    r->callbacks = NULL;
    bool deferred = gy__gc_finalize_set(r->objs, r->ntrash, r->n, info, &user_code);
    if (deferred) {
        info->deferred++;
        return true;
    }
    if (r->debug & GY_GC_DEBUG_SAVEALL) {
        return false; /* saved, not freed: no doom */
    }
    /* Anyone who could have taken a reference since the first stop: user
     * code, a holder of an id, or a thread that stopped the world to walk
     * the heap (introspection). Then doom the set (late upgrades fail) and
     * look again, world stopped. Otherwise nothing can reach the trash. */
    if (!user_code && !r->id_taken &&
        atomic_load_explicit(&gy__rt.world_stops, memory_order_relaxed) == r->stops_after) {
        return false;
    }
    doom(r, true);
    uint64_t t0 = gy__clock_ns();
    gy__world_stop();
    bool back = trash_resurrected(r);
    if (back) {
        doom(r, false);
    }
    gy__world_resume();
    r->pause_ns += gy__clock_ns() - t0;
    if (back) {
        info->resurrections++;
        return true;
    }
    return false;
}

/* --- 6. clear ---------------------------------------------------------------- */

void gy__gc_log_objects(gy_object *const *objs, size_t lo, size_t hi, const char *what) {
    for (size_t i = lo; i < hi; i++) {
        gy__log(GY_LOG_INFO, "gc", "gc: %s <%s %p>", what, gc_type_of(objs[i])->name,
                (void *)objs[i]);
    }
}

/* Reset the words of objs[lo..hi) (they stay, in the next generation) and
 * drop the hold on them. */
void gy__gc_release_kept(gy_object **objs, size_t lo, size_t hi, unsigned newgen) {
    for (size_t i = lo; i < hi; i++) {
        gy__gc_word_reset(gc_cand_word(objs[i]), newgen);
        gy__gc_gens_add(objs[i], newgen);
        gy_decref(objs[i]);
    }
}

static void release_kept(run *r, size_t lo, size_t hi) {
    gy__gc_release_kept(r->objs, lo, hi, r->newgen);
}

/* Append objs[lo..hi) to the garbage list (created on first use): all of
 * them when `all`, else only the objects of legacy-finalizer types (as
 * CPython's gc.garbage lists only those unless DEBUG_SAVEALL; what they
 * reach is uncollectable too, counted but not listed). Without memory an
 * object is not saved; it stays held by nothing but its cycle and is found
 * again by a later collection. */
void gy__gc_garbage_append(gy_object *const *objs, size_t lo, size_t hi, bool all) {
    if (lo == hi || (gy__gc.garbage == NULL && gy_list_new(&gy__gc.garbage) != GY_OK)) {
        return;
    }
    for (size_t i = lo; i < hi; i++) {
        if (all || (gc_type_of(objs[i])->flags & GY_TYPE_LEGACY_FINALIZER)) {
            (void)gy_list_append(gy__gc.garbage, objs[i]);
        }
    }
}

/* Clear every trash object; loop-affine ones of other threads on their
 * owner thread.
 *
 * No member of the set may be handed out half cleared. When every clear
 * runs here, the words keep CANDIDATE (hidden, see gy__gc_hidden) through
 * the clear loop and become plain generations after it: a member that
 * outlives its clear (it holds a reference its clear does not drop) is then
 * an ordinary object. When some clears go to owner loops, which run them
 * later, the whole set is marked HIDDEN and DOOMED first (every gy_load or
 * upgrade of a member fails, even through a loop's raw pointer to its own
 * object), before any hand-off: after its post an object is no longer ours
 * to touch. Members are freed when the last clears drop the last
 * references; one that outlives them is made visible again by the first
 * collection of its generation that starts once every handed-off clear has
 * run (phase_update). A hand-off that cannot be allocated (out of memory)
 * is cleared here instead, rather than leave the set half cleared.
 * Post: the collector's holds are dropped (the objects owned here, or by no
 * thread, are freed). */
void gy__gc_clear_set(gy_object **objs, size_t lo, size_t hi, unsigned newgen) {
    gy__heap *me = gy__tls_heap;
    bool handoff = false;
    for (size_t i = lo; i < hi && !handoff; i++) {
        handoff = (gc_type_of(objs[i])->flags & GY_TYPE_LOOP_AFFINE) &&
                  gy__segment_of(objs[i])->heap != me;
    }
    if (handoff) {
        for (size_t i = lo; i < hi; i++) {
            gy__gc_word_reset(gc_cand_word(objs[i]), newgen | GC_HIDDEN);
            gy__gc_gens_add(objs[i], newgen);
            /* acq_rel: as doom(). */
            atomic_fetch_or_explicit(&objs[i]->gy__shared, GY__RC_DOOMED, memory_order_acq_rel);
        }
    }
    for (size_t i = lo; i < hi; i++) {
        gy_object *ob = objs[i];
        const gy_type *type = gc_type_of(ob);
        if ((type->flags & GY_TYPE_LOOP_AFFINE) && gy__segment_of(ob)->heap != me) {
            /* The owner clears it and drops our hold (stolen here).
             * acq_rel: counted before the owner can see the request. */
            atomic_fetch_add_explicit(&gy__gc.posted_clears, 1, memory_order_acq_rel);
            if (gy__object_post_to_owner(ob, GY__POST_CLEAR)) {
                objs[i] = NULL;
                continue;
            }
            atomic_fetch_sub_explicit(&gy__gc.posted_clears, 1, memory_order_acq_rel);
        }
        type->clear(ob);
    }
    for (size_t i = lo; i < hi && !handoff; i++) {
        gy__gc_word_reset(gc_cand_word(objs[i]), newgen);
        gy__gc_gens_add(objs[i], newgen);
    }
    for (size_t i = lo; i < hi; i++) {
        if (objs[i] != NULL) {
            gy_decref(objs[i]); /* usually the last reference: freed here */
        }
    }
    /* Objects of other threads are freed by them at their next safe point;
     * those of heaps without a thread, now, here. */
    gy__refcount_flush_outbox(me);
    if (atomic_load_explicit(&me->pending, memory_order_relaxed) & GY__PEND_ORPHAN) {
        gy__runtime_drain_orphans();
    }
}

/* A stop-the-world collection (gy__gc_run) is under way: its trash carries
 * CANDIDATE (the concurrent rule for `hidden` does not apply). Written by
 * the collecting thread; relaxed: read by the hook as a hint, as the word. */
static _Atomic bool stw_running;

bool gy__gc_hidden(const gy_object *ob) {
    const uint32_t *w = gc_word(ob);
    /* relaxed: exact with the world stopped (the handshake orders the
     * collector's writes) or on the collecting thread. gy_object_from_id
     * calls it with the world running (threads_lock held): a collection may
     * be rewriting the word meanwhile, but trash whose id was taken is
     * DOOMED before its set is cleared (phase_finalize), so the lookup's
     * try-incref refuses it anyway. Outside the stopped phases CANDIDATE
     * marks trash being destroyed; HIDDEN a member of a set whose clears
     * were handed off. */
    if (w == NULL) {
        return false;
    }
    uint32_t v = __atomic_load_n(w, __ATOMIC_RELAXED);
    if (gy__gc_mode() == GY_GC_MODE_CONCURRENT && gy__gc_mark_concurrent() &&
        !atomic_load_explicit(&stw_running, memory_order_relaxed)) {
        /* Every candidate carries CANDIDATE while the world runs: hidden
         * are the members of a sealed set (from the seal: if the set is
         * aborted they reappear, as live objects do after a snapshot) and
         * HIDDEN ones (9.5). */
        return (v & (GC_HIDDEN | GC_SEALED)) != 0;
    }
    return (v & GC_DESTROYING) != 0;
}

void gy__gc_posted_clear_done(gy_object *ob) {
    (void)ob;
    /* Never below zero: runtime shutdown resets the count before it runs
     * the clears still waiting in inboxes. release: the clear's effects
     * happen before a collection that sees the count at zero unhides what
     * outlived it (acquire in update). */
    int64_t v = atomic_load_explicit(&gy__gc.posted_clears, memory_order_relaxed);
    while (v > 0 &&
           !atomic_compare_exchange_weak_explicit(&gy__gc.posted_clears, &v, v - 1,
                                                  memory_order_release, memory_order_relaxed)) {
    }
}

/* --- the collection -------------------------------------------------------- */

static void run_stw(int generation, gy_gc_result *res);

void gy__gc_run(int generation, gy_gc_result *res) {
    atomic_store_explicit(&stw_running, true, memory_order_relaxed);
    run_stw(generation, res);
    atomic_store_explicit(&stw_running, false, memory_order_relaxed);
}

static void run_stw(int generation, gy_gc_result *res) {
    memset(res, 0, sizeof *res);
    res->generation = generation;
    run r = {0};
    r.debug = atomic_load_explicit(&gy__gc.debug, memory_order_relaxed);
    r.gen = generation;
    r.mask = (2u << generation) - 1;
    r.newgen = generation < 2 ? (unsigned)generation + 1 : 2;
    gy_gc_info info = {0};
    uint64_t t0 = gy__clock_ns(), t;

    gy__world_stop();
    uint64_t stop0 = gy__clock_ns();
    if (generation == 2) {
        cand_reserve(tracked_live() + 64);
    }
    phase_update(&r);
    t = gy__clock_ns();
    res->phase_ns[GY_GC_PHASE_UPDATE] = t - stop0;
    phase_subtract(&r);
    res->phase_ns[GY_GC_PHASE_SUBTRACT] = gy__clock_ns() - t;
    t = gy__clock_ns();
    phase_mark(&r);
#if GC_VALIDATE
    validate_mark(&r);
#endif
    res->phase_ns[GY_GC_PHASE_MARK] = gy__clock_ns() - t;
    t = gy__clock_ns();
    phase_handle(&r);
#if GC_VALIDATE
    validate_handle(&r);
#endif
    r.stops_after = atomic_load_explicit(&gy__rt.world_stops, memory_order_relaxed);
    res->phase_ns[GY_GC_PHASE_HANDLE] = gy__clock_ns() - t;
    gy__world_resume();
    r.pause_ns = gy__clock_ns() - stop0;
    if (r.shrunk) {
        if (r.n == 0) {
            info.skipped_nomem++;
        } else {
            info.shrunk_nomem++;
        }
    }
    info.weakrefs_cleared = r.weakrefs;

    /* World running. Uncollectable objects go to the garbage list. */
    if (r.debug & GY_GC_DEBUG_UNCOLLECTABLE) {
        gy__gc_log_objects(r.objs, r.nreach, r.ntrash, "uncollectable");
    }
    gy__gc_garbage_append(r.objs, r.nreach, r.ntrash, (r.debug & GY_GC_DEBUG_SAVEALL) != 0);
    release_kept(&r, r.nreach, r.ntrash);
    if (r.debug & GY_GC_DEBUG_COLLECTABLE) {
        gy__gc_log_objects(r.objs, r.ntrash, r.n, "collectable");
    }

    t = gy__clock_ns();
    bool survive = r.ntrash < r.n && phase_finalize(&r, &info);
    res->phase_ns[GY_GC_PHASE_FINALIZE] = gy__clock_ns() - t;
    t = gy__clock_ns();
    uint64_t collected = 0;
    if (survive) {
        release_kept(&r, r.ntrash, r.n);
    } else if (r.debug & GY_GC_DEBUG_SAVEALL) {
        collected = r.n - r.ntrash;
        gy__gc_garbage_append(r.objs, r.ntrash, r.n, true);
        release_kept(&r, r.ntrash, r.n);
    } else {
        collected = r.n - r.ntrash;
        gy__gc_clear_set(r.objs, r.ntrash, r.n, r.newgen);
    }
    res->phase_ns[GY_GC_PHASE_CLEAR] = gy__clock_ns() - t;

    res->collected = collected;
    res->uncollectable = r.ntrash - r.nreach;
    res->candidates = r.n;
    res->pause_ns = r.pause_ns;
    res->duration_ns = gy__clock_ns() - t0;

    /* Keep the array unless it is far larger than this collection needed. */
    if (cand_cap > 65536 && r.n < cand_cap / 8) {
        free(cand_buf);
        cand_buf = NULL;
        cand_cap = 0;
    }

    gy__gc_account(generation, res, r.nreach, &info, r.debug);
}

void gy__gc_account(int generation, const gy_gc_result *res, size_t nreach, const gy_gc_info *info,
                    unsigned debug) {
    pthread_mutex_lock(&gy__gc.lock);
    if (generation < 2) {
        gy__gc.count[generation + 1]++;
    }
    for (int g = 1; g <= generation; g++) {
        gy__gc.count[g] = 0;
    }
    if (generation == 2) {
        gy__gc.long_lived_total = nreach;
        gy__gc.long_lived_pending = 0;
    } else if (generation == 1) {
        gy__gc.long_lived_pending += nreach;
    }
    gy_gc_gen_stats *st = &gy__gc.stats[generation];
    st->collections++;
    st->collected += res->collected;
    st->uncollectable += res->uncollectable;
    st->candidates += res->candidates;
    st->duration_ns += res->duration_ns;
    st->pause_ns += res->pause_ns;
    if (res->pause_ns > st->max_pause_ns) {
        st->max_pause_ns = res->pause_ns;
    }
    gy_gc_info *gi = &gy__gc.info;
    gi->shrunk_nomem += info->shrunk_nomem;
    gi->skipped_nomem += info->skipped_nomem;
    gi->resurrections += info->resurrections;
    gi->deferred += info->deferred;
    gi->finalizers += info->finalizers;
    gi->weakrefs_cleared += info->weakrefs_cleared;
    pthread_mutex_unlock(&gy__gc.lock);

    if (debug & GY_GC_DEBUG_STATS) {
        gy__log(GY_LOG_INFO, "gc",
                "gc: done, generation %d: %llu candidates, %llu unreachable, %llu uncollectable, "
                "%.4fs elapsed (%.4fs stopped)",
                generation, (unsigned long long)res->candidates,
                (unsigned long long)(res->collected + res->uncollectable),
                (unsigned long long)res->uncollectable, (double)res->duration_ns / 1e9,
                (double)res->pause_ns / 1e9);
    }
}

void gy__gc_walk(unsigned gens, gc_cell_fn fn, void *arg) {
    uint32_t ntypes = atomic_load_explicit(&gy__rt.ntypes, memory_order_acquire);
    for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
        pthread_mutex_lock(&h->seg_lock);
        for (uint32_t t = 1; t <= ntypes; t++) {
            if (!gy__type_tracked(gy__rt.types[t])) {
                continue;
            }
            for (gy__segment *s = h->segs[t]; s != NULL; s = s->next) {
                if (!(atomic_load_explicit(&s->gc_gens, memory_order_relaxed) & gens)) {
                    continue;
                }
                uint32_t bump = atomic_load_explicit(&s->bump, memory_order_relaxed);
                for (uint32_t i = 0; i < bump; i++) {
                    if (!((1u << (s->gcw[i] & GC_GEN_MASK)) & gens)) {
                        continue;
                    }
                    gy_object *ob = (gy_object *)(s->cells + (size_t)i * s->cell_size);
                    /* Hidden trash (phase_clear) is never handed out. */
                    if (gy__refcount_total(ob) > 0 && !(s->gcw[i] & GC_DESTROYING)) {
                        fn(ob, &s->gcw[i], s, arg);
                    }
                }
            }
        }
        pthread_mutex_unlock(&h->seg_lock);
    }
}

void gy__gc_release_buffers(void) {
    gy__gc_release_concurrent_buffers();
    free(cand_buf);
    cand_buf = NULL;
    cand_cap = 0;
    free(work_buf);
    work_buf = NULL;
    work_cap = 0;
}
