/* collector/src/concurrent.c: one collection in gc_mode concurrent
 * (collector/DESIGN.md 9.5), on the collector's thread, the world running.
 *
 *   1. watch      a new tag; two handshakes (W1): every thread's barriers
 *                 touch from now on
 *   2. walk       live tracked cells of the generations collected that are
 *                 not touched, queued, hidden or doomed become candidates
 *                 (CANDIDATE by CAS, a stale TAG reset); gcv = count
 *   3. subtract   gcv -= references from candidates
 *   4. mark       roots: gcv > 0 or touched; REACHABLE over what they reach
 *   5. seal       each unmarked candidate: a CAS that fails on a touch (S1);
 *                 a touched one is re-marked, with what it reaches
 *   6. recount    the sealed set's counts minus its own references: zero, or
 *                 the set is aborted (an anomaly unless `late`)
 *   7. handle     uncollectable closure; weak references cleared; callbacks
 *                 and finalizers run (not yet published); recount again
 *   8. publish    under doom_lock, unless a late upgrade or merge saw a
 *                 member (D1); then DOOMED on each member (D2)
 *   9. clear      as stop-the-world mode (section 2 step 6)
 *  10. end        phase idle; survivors' words reset; the limbo released
 *
 * Every collector write to a word is an RMW (S0). Candidates' cells are
 * kept by core's limbo and segments held (C1), so every word, gcv entry and
 * candidate cell read here is mapped. */
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "gc_hooks.h"
#include "gyre/failpoint.h"

#ifndef NDEBUG
#define GC_DEBUG_ANOMALY 1
#else
#define GC_DEBUG_ANOMALY 0
#endif

_Atomic uint64_t gy__gc_aborted_sets, gy__gc_anomalies, gy__gc_fallback_stops;

/* --- words ---------------------------------------------------------------- */

static inline int32_t *gcv_of(const gy_object *ob) {
    gy__segment *seg = gy__segment_of(ob);
    return &seg->gcv[gy__cell_index(seg, ob)];
}
/* relaxed loads; the RMWs are seq_cst, against the touch's (S1). */
static inline uint32_t wload(const uint32_t *w) { return __atomic_load_n(w, __ATOMIC_RELAXED); }
static inline uint32_t wor(uint32_t *w, uint32_t bits) {
    return __atomic_fetch_or(w, bits, __ATOMIC_SEQ_CST);
}
static inline uint32_t wand(uint32_t *w, uint32_t bits) {
    return __atomic_fetch_and(w, bits, __ATOMIC_SEQ_CST);
}
static inline uint32_t tag_of(uint32_t w) { return w >> GC_TAG_SHIFT; }
static inline bool alive(const gy_object *ob) { return gy__refcount_total(ob) > 0; }

/* --- the touch and the doom (hooks) --------------------------------------- */

/* D1's state: the set published, and `late` (an upgrade, merge or disown
 * found a member sealed before the publication). doom_lock is a leaf, held
 * O(1) by both sides. */
static pthread_mutex_t doom_lock = PTHREAD_MUTEX_INITIALIZER;
static bool doom_late;
static bool doom_published;

bool gy__gc_touch_hook(gy_object *ob) {
    /* relaxed: a thread watches only after its answer (acquire); a stale
     * phase is an older collection's, which ended, or a newer one's. */
    uint64_t phase = atomic_load_explicit(&gy__rt.gc_phase, memory_order_relaxed);
    if (!(phase & GY__PHASE_WATCH)) {
        return false;
    }
    uint32_t tag = GY__PHASE_TAG(phase);
    uint32_t *w = gc_cand_word(ob);
    uint32_t old = wload(w);
    /* T1: one RMW per object per collection; seq_cst against the seal. */
    while (tag_of(old) != tag) {
        if (__atomic_compare_exchange_n(w, &old, (old & ~GC_TAG_MASK) | tag << GC_TAG_SHIFT, true,
                                        __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
            break;
        }
    }
    if (old & GC_SEALED) {
        /* D1 for every toucher, not only upgrades and merges: a thread that
         * reaches a sealed member before the publication got its pointer
         * from a holder the seal pass had not yet re-marked (9.6, the
         * re-mark lag); the set is aborted. */
        pthread_mutex_lock(&doom_lock);
        if (!doom_published) {
            doom_late = true;
        }
        pthread_mutex_unlock(&doom_lock);
    }
    return (old & GC_SEALED) != 0;
}

bool gy__gc_doom_check_hook(gy_object *ob, int why) {
    bool ok = true;
    pthread_mutex_lock(&doom_lock);
    if (wload(gc_cand_word(ob)) & GC_SEALED) {
        if (doom_published) {
            ok = why == GY__DOOM_MERGE; /* doomed: the upgrade fails */
        } else {
            doom_late = true; /* the collector aborts the set */
        }
    }
    pthread_mutex_unlock(&doom_lock);
    return ok;
}

/* --- arrays ---------------------------------------------------------------- */

typedef struct vec {
    gy_object **v;
    size_t n, cap;
} vec;

/* Kept between collections (collect_lock). */
static vec cands, work;
static gy__segment **segs;
static size_t segs_cap;

static bool vec_push(vec *a, gy_object *ob, const char *failpoint) {
    (void)failpoint; /* unused where failpoints are compiled out */
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4096;
        gy_object **grown = gy_failpoint(failpoint) ? NULL : realloc(a->v, cap * sizeof *grown);
        if (grown == NULL) {
            return false;
        }
        a->v = grown;
        a->cap = cap;
    }
    a->v[a->n++] = ob;
    return true;
}

static void vec_trim(vec *a) {
    if (a->cap > 65536 && a->n < a->cap / 8) {
        free(a->v); /* keep memory flat after a big collection */
        a->v = NULL;
        a->cap = 0;
    }
    a->n = 0;
}

typedef struct crun {
    int gen;
    unsigned mask, newgen;
    uint32_t tag;
    bool shrunk; /* the candidate array or a side array could not grow: fewer candidates */
    bool failed; /* the worklist could not grow: everything survives */
    size_t n, nreach, ntrash;
    gy_weakref *callbacks;
    size_t weakrefs;
} crun;

/* An increment point (pacing.c) of a loop that gy_gc_abort may still stop:
 * true when it does, with r failed (every candidate survives) and counted
 * once in aborted_runs. */
static bool point_or_abort(crun *r) {
    if (!gy__gc_increment_point()) {
        return false;
    }
    if (!r->failed) {
        atomic_fetch_add_explicit(&gy__gc_aborted_runs, 1, memory_order_relaxed);
    }
    r->failed = true;
    return true;
}

/* --- 2. the walk ------------------------------------------------------------ */

/* Copy the segments a walk of h visits (seg_lock held). */
static size_t segs_snapshot(crun *r, gy__heap *h) {
    uint32_t ntypes = atomic_load_explicit(&gy__rt.ntypes, memory_order_acquire);
    size_t n = 0;
    bool young = r->mask == 1 && !h->young_overflow;
    size_t want = young ? h->nyoung : 0;
    if (!young) {
        for (uint32_t t = 1; t <= ntypes; t++) {
            if (gy__type_tracked(gy__rt.types[t])) {
                for (gy__segment *s = h->segs[t]; s != NULL; s = s->next) {
                    want++;
                }
            }
        }
    }
    if (want > segs_cap) {
        gy__segment **grown = gy_failpoint("gc.side") ? NULL : realloc(segs, want * sizeof *segs);
        if (grown == NULL) {
            r->shrunk = true; /* this heap's objects survive */
            return 0;
        }
        segs = grown;
        segs_cap = want;
    }
    if (young) {
        if (want > 0) {
            memcpy(segs, h->young_segs, want * sizeof *segs);
        }
        return want;
    }
    for (uint32_t t = 1; t <= ntypes; t++) {
        if (gy__type_tracked(gy__rt.types[t])) {
            for (gy__segment *s = h->segs[t]; s != NULL; s = s->next) {
                segs[n++] = s;
            }
        }
    }
    return n;
}

/* Make ob (cell i of s, word first read as w) a candidate, or say why not.
 * Returns true when it is one. */
static bool walk_take(crun *r, gy__segment *s, uint32_t i, gy_object *ob, uint32_t w) {
    int32_t sh = atomic_load_explicit(&ob->gy__shared, memory_order_relaxed);
    if (sh & (GY__RC_QUEUED | GY__RC_DOOMED)) {
        return false; /* a merge pending (uncounted pointer), or trash */
    }
    if (w & ~(GC_TAG_MASK | GC_GEN_MASK)) {
        return false; /* HIDDEN (a handed-off set's member), or a flag left */
    }
    uint32_t want = (w & GC_GEN_MASK) | GC_CANDIDATE; /* a stale TAG goes */
    /* seq_cst CAS, then a fence, then the count: against the free path's
     * count drop, fence, word load (gy__arena_limbo_take). A CAS that fails
     * saw a touch or a new occupant: not a candidate (an outside holder). */
    if (!__atomic_compare_exchange_n(&s->gcw[i], &w, want, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_RELAXED)) {
        return false;
    }
    atomic_thread_fence(memory_order_seq_cst);
    int64_t total = gy__refcount_total(ob);
    bool room = true;
    if (total <= 0 || total > INT32_MAX || !(wload(&s->gcw[i]) & GC_CANDIDATE) ||
        !(room = vec_push(&cands, ob, "gc.alloc"))) {
        /* Died meanwhile (its free may have missed CANDIDATE: then its cell
         * is being reused, and this RMW keeps whatever its new word is), or
         * no room (the walk stops: any subset of candidates is sound). */
        (void)wand(&s->gcw[i], ~GC_CANDIDATE);
        r->shrunk |= !room;
        return false;
    }
    s->gcv[i] = (int32_t)total;
    return true;
}

static void walk_segment(crun *r, gy__segment *s) {
    unsigned gens = atomic_load_explicit(&s->gc_gens, memory_order_relaxed);
    if (!(gens & r->mask)) {
        return;
    }
    if (s->gcv == NULL) {
        s->gcv = gy_failpoint("gc.side") ? NULL : calloc(s->ncells, sizeof *s->gcv);
        if (s->gcv == NULL) {
            r->shrunk = true; /* its objects survive this collection; gens stay */
            return;
        }
    }
    unsigned keep = gens & ~r->mask;
    uint32_t bump = atomic_load_explicit(&s->bump, memory_order_acquire);
    for (uint32_t i = 0; i < bump && !r->shrunk && !r->failed; i++) {
        if (point_or_abort(r)) {
            break;
        }
        uint32_t w = wload(&s->gcw[i]);
        unsigned bit = 1u << (w & GC_GEN_MASK);
        if (!(bit & r->mask)) {
            continue;
        }
        gy_object *ob = (gy_object *)(s->cells + (size_t)i * s->cell_size);
        if (tag_of(w) == r->tag) {
            keep |= bit; /* touched, or born during this collection */
            continue;
        }
        if (!alive(ob)) {
            if (gy__object_is_live(ob)) {
                keep |= bit; /* dying: its owner frees it */
            }
            continue;
        }
        if (!walk_take(r, s, i, ob, w)) {
            keep |= bit;
        }
    }
    if (r->shrunk || r->failed) {
        return; /* gens stay as they were: conservative */
    }
    unsigned drop = r->mask & ~keep;
    if (drop == 0) {
        return;
    }
    /* seq_cst, then gc_born: against a birth's store of gc_born then load
     * of gc_gens (heap.h, gy__cell_init_object). A birth here during the
     * walk keeps (or gets back) generation 0's bit. */
    atomic_fetch_and_explicit(&s->gc_gens, (uint8_t)~drop, memory_order_seq_cst);
    if ((drop & 1) && atomic_load_explicit(&s->gc_born, memory_order_seq_cst) == r->tag) {
        atomic_fetch_or_explicit(&s->gc_gens, 1, memory_order_relaxed);
    }
}

/* Post: cands.v[0..n) are the candidates, each with CANDIDATE in its word
 * and its count in gcv. */
static void phase_walk(crun *r) {
    gy__threads_lock();
    gy__heap *first = gy__rt.heaps; /* heaps are only ever added at the head */
    pthread_mutex_unlock(&gy__rt.threads_lock);
    for (gy__heap *h = first; h != NULL && !r->shrunk && !r->failed; h = h->next) {
        pthread_mutex_lock(&h->seg_lock);
        size_t n = segs_snapshot(r, h);
        pthread_mutex_unlock(&h->seg_lock);
        for (size_t i = 0; i < n && !r->shrunk && !r->failed; i++) {
            walk_segment(r, segs[i]);
        }
        pthread_mutex_lock(&h->seg_lock);
        if (!h->young_overflow && !r->shrunk) {
            gy__gc_young_filter(h);
        }
        pthread_mutex_unlock(&h->seg_lock);
    }
    r->n = cands.n;
}

/* --- 3. subtract, 4. mark, 5. seal ------------------------------------------- */

static int visit_subtract(gy_object *child, void *arg) {
    (void)arg;
    const uint32_t *w = gc_word(child);
    if (w != NULL && (wload(w) & GC_CANDIDATE)) {
        (*gcv_of(child))--;
    }
    return 0;
}

/* Every candidate is traversed, dying or dead ones too: a dying object
 * (count zero, its free deferred) still holds its references until its
 * clear removes them, with touches; a dead one's cell is in the limbo (C1),
 * its fields cleared. (Skipping a dying root left what it still held
 * unmarked: the recount caught it as an anomaly in stress.gc_mixed.) */
static void traverse_cand(crun *r, gy_object *ob, gy_visit_fn fn, void *arg) {
    if (point_or_abort(r)) {
        return;
    }
    if (GC_DEBUG_ANOMALY && !(wload(gc_cand_word(ob)) & GC_CANDIDATE)) {
        gy__log(GY_LOG_ERROR, "gc", "gc: traverse of a non-candidate <%s %p> word %#x",
                gc_type_of(ob)->name, (void *)ob, wload(gc_cand_word(ob)));
        abort();
    }
    (void)gc_type_of(ob)->traverse(ob, fn, arg);
}

static void phase_subtract(crun *r) {
    for (size_t i = 0; i < r->n && !r->failed; i++) {
        traverse_cand(r, cands.v[i], visit_subtract, NULL);
    }
}

/* Mark child REACHABLE if it is an unmarked candidate; `unseal`: remove
 * SEALED from it too (a re-mark). Pushed on the worklist when newly marked. */
static int mark_child(gy_object *child, crun *r, bool unseal) {
    uint32_t *w = gc_word(child);
    if (w == NULL) {
        return 0;
    }
    uint32_t v = wload(w);
    if ((v & (GC_CANDIDATE | GC_REACHABLE)) != GC_CANDIDATE) {
        return 0;
    }
    v = wor(w, GC_REACHABLE);
    if (v & GC_REACHABLE) {
        return 0;
    }
    if (unseal && (v & GC_SEALED)) {
        (void)wand(w, ~GC_SEALED);
    }
    if (!vec_push(&work, child, "gc.worklist")) {
        r->failed = true;
    }
    return 0;
}

static int visit_mark(gy_object *child, void *arg) { return mark_child(child, arg, false); }
static int visit_remark(gy_object *child, void *arg) { return mark_child(child, arg, true); }

static void drain(crun *r, gy_visit_fn fn) {
    while (work.n > 0 && !r->failed) {
        traverse_cand(r, work.v[--work.n], fn, r);
    }
}

/* Post: every candidate reachable from a root (count from outside, or
 * touched) carries REACHABLE. */
static void phase_mark(crun *r) {
    for (size_t i = 0; i < r->n && !r->failed; i++) {
        gy_object *ob = cands.v[i];
        uint32_t *w = gc_cand_word(ob);
        uint32_t v = wload(w);
        if (!(v & GC_REACHABLE) && (*gcv_of(ob) > 0 || tag_of(v) == r->tag)) {
            (void)wor(w, GC_REACHABLE);
            if (!vec_push(&work, ob, "gc.worklist")) {
                r->failed = true;
            }
            drain(r, visit_mark);
        }
    }
}

/* A unit test's hook into a window of the collection (relaxed: set before
 * the test's threads start); one load when none is installed. */
static void race_point(const char *window) {
    gy__race_hook_fn hook = atomic_load_explicit(&gy__race_window_hook, memory_order_relaxed);
    if (hook != NULL) {
        hook(window);
    }
}

/* S1. Post: every unmarked candidate is SEALED, and no sealed one is
 * reachable from a touched one. */
static void phase_seal(crun *r) {
    for (size_t i = 0; i < r->n && !r->failed; i++) {
        if (point_or_abort(r)) {
            break;
        }
        uint32_t *w = gc_cand_word(cands.v[i]);
        uint32_t v = wload(w);
        for (;;) {
            if (v & GC_REACHABLE) {
                break;
            }
            if (tag_of(v) == r->tag) {
                /* Touched since marking: live, with what it reaches. */
                (void)wor(w, GC_REACHABLE);
                if (!vec_push(&work, cands.v[i], "gc.worklist")) {
                    r->failed = true;
                }
                drain(r, visit_remark);
                break;
            }
            if (__atomic_compare_exchange_n(w, &v, v | GC_SEALED, true, __ATOMIC_SEQ_CST,
                                            __ATOMIC_RELAXED)) {
                race_point("race.gc_seal_step");
                break;
            }
        }
    }
}

static bool in_set(uint32_t v) {
    return (v & (GC_CANDIDATE | GC_SEALED | GC_REACHABLE | GC_UNCOLL)) ==
           (GC_CANDIDATE | GC_SEALED);
}

/* Partition cands.v[0..n): the sealed set last, from nreach. */
static void partition(crun *r) {
    size_t lo = 0, hi = r->n;
    for (;;) {
        while (lo < hi && !in_set(wload(gc_cand_word(cands.v[lo])))) {
            lo++;
        }
        while (lo < hi && in_set(wload(gc_cand_word(cands.v[hi - 1])))) {
            hi--;
        }
        if (lo >= hi) {
            break;
        }
        gy_object *t = cands.v[lo];
        cands.v[lo++] = cands.v[hi - 1];
        cands.v[--hi] = t;
    }
    r->nreach = lo;
}

/* --- 6. recount (Σ) ------------------------------------------------------------ */

static int visit_recount(gy_object *child, void *arg) {
    (void)arg;
    const uint32_t *w = gc_word(child);
    if (w != NULL && in_set(wload(w))) {
        (*gcv_of(child))--;
    }
    return 0;
}

/* Whether every member of cands.v[lo..hi) is referenced only by members
 * (and `hold` references of the collector's). */
static bool recount(size_t lo, size_t hi, int64_t hold) {
    for (size_t i = lo; i < hi; i++) {
        int64_t c = gy__refcount_total(cands.v[i]) - hold;
        if (c <= 0 || c > INT32_MAX) {
            return false; /* dead or dying: its last decrement broke the set */
        }
        *gcv_of(cands.v[i]) = (int32_t)c;
    }
    for (size_t i = lo; i < hi; i++) {
        (void)gy__gc_increment_point(); /* too late to abort: the recount decides */
        (void)gc_type_of(cands.v[i])->traverse(cands.v[i], visit_recount, NULL);
    }
    for (size_t i = lo; i < hi; i++) {
        if (*gcv_of(cands.v[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* Whether a member of cands.v[lo..hi) was touched since its seal (its TAG
 * is this collection's). Run after the seal pass: a member reached through
 * a holder whose re-mark came too late (its edge removed before the
 * re-mark, touching the member) is seen here. The seq_cst fence and loads:
 * the touch is a seq_cst RMW made before the slot change that the re-mark
 * read (a release of the field or of the container's lock). */
static bool set_touched(const crun *r, size_t lo, size_t hi) {
    atomic_thread_fence(memory_order_seq_cst);
    for (size_t i = lo; i < hi; i++) {
        if (tag_of(__atomic_load_n(gc_cand_word(cands.v[i]), __ATOMIC_SEQ_CST)) == r->tag) {
            return true;
        }
    }
    return false;
}

static bool late_now(void) {
    pthread_mutex_lock(&doom_lock);
    bool late = doom_late;
    pthread_mutex_unlock(&doom_lock);
    return late;
}

/* --- 7. handle ----------------------------------------------------------------- */

static int visit_uncoll(gy_object *child, void *arg) {
    crun *r = arg;
    uint32_t *w = gc_word(child);
    if (w == NULL) {
        return 0;
    }
    if (in_set(wload(w)) && !(wor(w, GC_UNCOLL) & GC_UNCOLL) &&
        !vec_push(&work, child, "gc.worklist")) {
        r->failed = true;
    }
    return 0;
}

/* Legacy finalizers and the members they reach are uncollectable: put
 * first in the set, objs[nreach..ntrash). */
static void split_uncollectable(crun *r) {
    for (size_t i = r->nreach; i < r->n; i++) {
        gy_object *ob = cands.v[i];
        if ((gc_type_of(ob)->flags & GY_TYPE_LEGACY_FINALIZER) &&
            !(wor(gc_cand_word(ob), GC_UNCOLL) & GC_UNCOLL)) {
            (void)vec_push(&work, ob, "gc.worklist"); /* failure: counted in drain below */
        }
    }
    while (work.n > 0) {
        gy_object *ob = work.v[--work.n];
        (void)gc_type_of(ob)->traverse(ob, visit_uncoll, r);
    }
    size_t k = r->nreach;
    for (size_t i = r->nreach; i < r->n; i++) {
        if (wload(gc_cand_word(cands.v[i])) & GC_UNCOLL) {
            gy_object *t = cands.v[k];
            cands.v[k++] = cands.v[i];
            cands.v[i] = t;
        }
    }
    r->ntrash = k;
}

static bool is_trash(const gy_object *ob) {
    const uint32_t *w = gc_word(ob);
    return w != NULL && in_set(wload(w));
}

/* Hold the trash, and clear the weak references to it. */
static void hold_and_detach(crun *r) {
    for (size_t i = r->ntrash; i < r->n; i++) {
        gy_incref(cands.v[i]);
    }
    for (size_t i = r->ntrash; i < r->n; i++) {
        r->weakrefs += gy__weakref_detach_trash(cands.v[i]) ? 1 : 0;
    }
    for (size_t i = r->ntrash; i < r->n; i++) {
        gy_object *ob = cands.v[i];
        if (atomic_load_explicit(&ob->gy__shared, memory_order_relaxed) & GY__RC_WEAKREFS) {
            r->weakrefs += gy__weakref_detach_for_gc(ob, is_trash, &r->callbacks);
        }
    }
}

/* Remove SEALED (and UNCOLL) from cands.v[lo..hi): they are not freed. */
static void unseal(size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i++) {
        (void)wand(gc_cand_word(cands.v[i]), ~(GC_SEALED | GC_UNCOLL));
    }
}

/* D1: publish the set unless a late toucher saw it. */
static bool publish(void) {
    pthread_mutex_lock(&doom_lock);
    bool ok = !doom_late;
    if (ok) {
        doom_published = true;
    }
    pthread_mutex_unlock(&doom_lock);
    return ok;
}

/* --- the collection --------------------------------------------------------------- */

static uint32_t next_tag(void) {
    static uint32_t tag; /* the collector's thread only */
    tag = tag % 0xFFFFu + 1;
    return tag;
}

/* Generation 0's count loses what this collection examined: the snapshot
 * taken when it started (new allocations keep counting). */
static void young_sub(int64_t seen) {
    int64_t old = atomic_load_explicit(&gy__rt.gc_young, memory_order_relaxed), n;
    do {
        n = old > seen ? old - seen : 0;
    } while (!atomic_compare_exchange_weak_explicit(&gy__rt.gc_young, &old, n, memory_order_relaxed,
                                                    memory_order_relaxed));
}

/* Reset every candidate's word but the members about to be cleared:
 * objs[0..lo) to newgen, flags gone, TAG kept. */
static void words_reset(crun *r, size_t lo) {
    for (size_t i = 0; i < lo; i++) {
        (void)gy__gc_increment_point();
        gy__gc_word_reset(gc_cand_word(cands.v[i]), r->newgen);
        gy__gc_gens_add(cands.v[i], r->newgen);
    }
}

static int aborted_streak[GY_GC_GENERATIONS];

void gy__gc_run_concurrent(int generation, gy_gc_result *res) {
    if (aborted_streak[generation] >= 3) {
        /* 9.8: a set aborted three times in a row is validated with the
         * world stopped, the one world stop of concurrent mode. */
        aborted_streak[generation] = 0;
        atomic_fetch_add_explicit(&gy__gc_fallback_stops, 1, memory_order_relaxed);
        gy__gc_run(generation, res);
        return;
    }
    memset(res, 0, sizeof *res);
    res->generation = generation;
    gy__gc_increment_begin(); /* increments of the budget from here (9.15) */
    crun r = {0};
    unsigned debug = atomic_load_explicit(&gy__gc.debug, memory_order_relaxed);
    r.gen = generation;
    r.mask = (2u << generation) - 1;
    r.newgen = generation < 2 ? (unsigned)generation + 1 : 2;
    r.tag = next_tag();
    gy_gc_info info = {0};
    uint64_t t0 = gy__clock_ns(), t;
    int64_t young_seen = atomic_load_explicit(&gy__rt.gc_young, memory_order_relaxed);

    pthread_mutex_lock(&doom_lock);
    doom_late = false;
    doom_published = false;
    pthread_mutex_unlock(&doom_lock);
    gy__arena_limbo_open();
    t = gy__clock_ns();
    gy__gc_handshake(GY__PHASE_WATCH | r.tag, true);
    gy__gc_handshake(GY__PHASE_WATCH | r.tag, true); /* W1: twice */
    phase_walk(&r);
    res->phase_ns[GY_GC_PHASE_UPDATE] = gy__clock_ns() - t;
    t = gy__clock_ns();
    phase_subtract(&r);
    res->phase_ns[GY_GC_PHASE_SUBTRACT] = gy__clock_ns() - t;
    t = gy__clock_ns();
    phase_mark(&r);
    phase_seal(&r);
    if (r.shrunk) {
        if (r.n == 0) {
            info.skipped_nomem++;
        } else {
            info.shrunk_nomem++;
        }
    }
    if (r.failed) {
        /* The worklist could not grow, or gy_gc_abort: nothing is freed,
         * all survive. */
        unseal(0, r.n);
        r.nreach = r.ntrash = r.n;
    } else {
        partition(&r);
        r.ntrash = r.n;
        bool touched = r.nreach < r.n && set_touched(&r, r.nreach, r.n);
        if (r.nreach < r.n && (touched || !recount(r.nreach, r.n, 0))) {
            /* Σ: a member touched since its seal, or referenced from
             * outside the set. With either, or `late`, a thread reached a
             * member before the publication (D1); otherwise a barrier is
             * missing. */
            if (!touched && !late_now()) {
                atomic_fetch_add_explicit(&gy__gc_anomalies, 1, memory_order_relaxed);
                gy__log(GY_LOG_ERROR, "gc",
                        "gc: anomaly: a sealed set of %zu objects is referenced from outside "
                        "(a missing barrier); the set survives",
                        r.n - r.nreach);
                if (GC_DEBUG_ANOMALY) {
                    for (size_t i = r.nreach; i < r.n; i++) {
                        gy_object *ob = cands.v[i];
                        if (*gcv_of(ob) != 0) {
                            gy__log(GY_LOG_ERROR, "gc",
                                    "gc: anomaly: <%s %p> outside refs %d, count %lld, word %#x",
                                    gc_type_of(ob)->name, (void *)ob, *gcv_of(ob),
                                    (long long)gy__refcount_total(ob), wload(gc_cand_word(ob)));
                        }
                    }
                    abort();
                }
            }
            atomic_fetch_add_explicit(&gy__gc_aborted_sets, 1, memory_order_relaxed);
            aborted_streak[generation]++;
            unseal(r.nreach, r.n);
            r.nreach = r.ntrash = r.n;
        }
    }
    res->phase_ns[GY_GC_PHASE_MARK] = gy__clock_ns() - t;
    if (r.nreach < r.n) {
        /* The window between the seal and the publication, where a late
         * upgrade aborts the set (D1). */
        race_point("race.gc_sealed");
    }

    t = gy__clock_ns();
    words_reset(&r, r.nreach); /* survivors: ordinary objects again */
    if (r.nreach < r.n) {
        split_uncollectable(&r);
    }
    /* Uncollectable: held, listed, then ordinary objects again. */
    for (size_t i = r.nreach; i < r.ntrash; i++) {
        gy_incref(cands.v[i]);
    }
    if (debug & GY_GC_DEBUG_UNCOLLECTABLE) {
        gy__gc_log_objects(cands.v, r.nreach, r.ntrash, "uncollectable");
    }
    gy__gc_garbage_append(cands.v, r.nreach, r.ntrash, (debug & GY_GC_DEBUG_SAVEALL) != 0);
    unseal(r.nreach, r.ntrash);
    gy__gc_release_kept(cands.v, r.nreach, r.ntrash, r.newgen);
    if (r.ntrash < r.n) {
        hold_and_detach(&r);
    }
    young_sub(young_seen);
    res->phase_ns[GY_GC_PHASE_HANDLE] = gy__clock_ns() - t;
    if (debug & GY_GC_DEBUG_COLLECTABLE) {
        gy__gc_log_objects(cands.v, r.ntrash, r.n, "collectable");
    }
    info.weakrefs_cleared = r.weakrefs;

    /* Callbacks and finalizers run before the publication, so that a
     * finalizer's gy_load of a peer works; the resurrection check is the
     * recount again, minus the hold (9.5 step 8). */
    t = gy__clock_ns();
    bool survive = false;
    if (r.ntrash < r.n) {
        bool user_code = r.callbacks != NULL;
        gy__weakref_run_pending(r.callbacks);
        r.callbacks = NULL;
        if (gy__gc_finalize_set(cands.v, r.ntrash, r.n, &info, &user_code)) {
            info.deferred++;
            survive = true;
        } else if (!(debug & GY_GC_DEBUG_SAVEALL)) {
            if (user_code && !recount(r.ntrash, r.n, 1)) {
                info.resurrections++;
                survive = true;
            } else if (!publish()) {
                atomic_fetch_add_explicit(&gy__gc_aborted_sets, 1, memory_order_relaxed);
                aborted_streak[generation]++;
                survive = true;
            }
        }
    }
    res->phase_ns[GY_GC_PHASE_FINALIZE] = gy__clock_ns() - t;

    t = gy__clock_ns();
    uint64_t collected = 0;
    if (r.ntrash < r.n) {
        if (survive) {
            unseal(r.ntrash, r.n);
            gy__gc_release_kept(cands.v, r.ntrash, r.n, r.newgen);
        } else if (debug & GY_GC_DEBUG_SAVEALL) {
            collected = r.n - r.ntrash;
            unseal(r.ntrash, r.n);
            gy__gc_garbage_append(cands.v, r.ntrash, r.n, true);
            gy__gc_release_kept(cands.v, r.ntrash, r.n, r.newgen);
        } else {
            /* D2: doomed before the first clear; every upgrade fails. */
            for (size_t i = r.ntrash; i < r.n; i++) {
                atomic_fetch_or_explicit(&cands.v[i]->gy__shared, GY__RC_DOOMED,
                                         memory_order_acq_rel);
            }
            aborted_streak[generation] = 0;
            collected = r.n - r.ntrash;
            gy__gc_clear_set(cands.v, r.ntrash, r.n, r.newgen);
        }
    }
    res->phase_ns[GY_GC_PHASE_CLEAR] = gy__clock_ns() - t;

    /* The end: nobody touches any more; the limbo's cells go back. */
    gy__gc_handshake(0, false);
    gy__arena_limbo_close(gy__tls_heap);
    pthread_mutex_lock(&doom_lock);
    doom_published = false;
    pthread_mutex_unlock(&doom_lock);
    gy__gc_increment_end();

    res->collected = collected;
    res->uncollectable = r.ntrash - r.nreach;
    res->candidates = r.n;
    res->pause_ns = 0;
    res->duration_ns = gy__clock_ns() - t0;
    vec_trim(&cands);
    vec_trim(&work);
    gy__gc_account(generation, res, r.nreach, &info, debug);
}

void gy__gc_release_concurrent_buffers(void) {
    free(cands.v);
    free(work.v);
    free(segs);
    memset(&cands, 0, sizeof cands);
    memset(&work, 0, sizeof work);
    segs = NULL;
    segs_cap = 0;
    memset(aborted_streak, 0, sizeof aborted_streak);
}
