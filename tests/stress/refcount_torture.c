/* stress.refcount_torture: a torture test of the public reference-counting
 * API across threads.
 *
 * N attached threads (N >= 4; even ones are loops with a wake function and
 * a small cascade budget, odd ones plain) share objects through the gy_ref
 * fields of one table object, a gy_list, a gy_dict, weak references (with
 * callbacks), a gy_weakdict, a gy_weakset and a table of published gy_ids.
 * Each thread picks operations at random (a seeded per-thread PRNG): new +
 * store; the owner's churn (issue 13's pattern: make a fresh object
 * reachable through a hot field, weak reference or id, then drop its own
 * references, so that its last decrement races the other threads' loads,
 * upgrades and lookups of that slot); load + check + drop, overwrite, clear,
 * list append/pop/get/set, dict set/get/del, weakref make/upgrade/drop,
 * weakdict and weakset set/get/del/foreach, id publish/lookup, links between
 * objects (kids: so frees cascade; only from a higher level to a lower one,
 * so there is never a cycle; chains deeper than the trashcan), references
 * held in a thread's "hand" and dropped later on another op (cross-thread
 * frees), replacing whole containers (their contents die with them, weak
 * collections while their values' callbacks run elsewhere), world stops
 * (gy_objects_by_type) and quiescent pauses. Every thread passes
 * gy_safepoint after each operation.
 *
 * Objects (three types: with a finalizer, loop-affine with a finalizer, no
 * finalizer) carry a canary, MAGIC ^ serial, checked on every access (after
 * each successful load, pop, get, upgrade, lookup, foreach) and poisoned by
 * clear. The finalizer writes into its object for a few hundred cycles and
 * checks the canary on entry and exit (a clear running under it shows), and
 * sometimes resurrects the object into a slot that a later operation clears.
 * A shadow ledger, one atomic word per serial, checks that every object is
 * finalized at most once (exactly once for types with a finalizer), before
 * its clear and never during it; cleared (freed) exactly once (core calls
 * clear once per death, and without a collector nothing calls it twice, so
 * a second clear means a second free); never accessed after its clear; a
 * loop-affine object only finalized and cleared on its creating thread
 * while that thread is attached; a weak reference's callback called at most
 * once, while its referent is dying (finalized, not yet cleared). After the
 * threads join and the table is dropped: created = cleared for every serial
 * and type, nothing alive (the shutdown leak check).
 *
 * Every kind of event is counted and the test fails unless each happened:
 * in particular the two outcomes of a load racing an owner's last decrement
 * (runtime stats last_ref_races: the load won, and tryincref_refused: the
 * load lost), failed weak upgrades, resurrections, pops, cross-thread frees.
 * During the first half of a run core's race windows are stretched (a spin
 * of a few microseconds in a share of the passes; see `windows`): the
 * owner's last decrement between reading the shared count and its CAS
 * ("race.last_decref"), its merge after the CAS ("race.merge_queued"), and
 * gy_load between reading the field and its try-incref ("race.load"), so
 * that loads land inside the owner's window often. Through the failpoints
 * of those names in builds with failpoints, through core's internal
 * race-window hook (heap.h) in the others (Release, where the natural window
 * is a few instructions wide and a loaded machine may go tens of seconds
 * without a won load). The second half runs at natural timing.
 *
 * Bounded by operation count by default (a few seconds under ASan and TSan
 * on two cores). Past its count a run goes on until every kind of event
 * has happened (a loaded machine may give the threads little true overlap),
 * for at most EXTEND_S more, and then fails naming what is missing; a
 * watchdog fails it when no thread makes progress for STALL_S (deadlock).
 * Options: --ops N (total), --seconds N (run N seconds instead),
 * --seed S (replay a thread's operation sequence; interleavings differ),
 * --threads N, --no-widen (never stretch the windows). A violated check
 * prints what, where and the seed, then aborts.
 *
 * Build with -DGY_TORTURE_BEFORE_FIX=1 against the tree before issue 13's
 * fix (d39758f): its gy_runtime_stats has no last_ref_races /
 * tryincref_refused (the two race outcomes are then not required) and core
 * has no race window to stretch.
 *
 * Built a second time with -DGY_TORTURE_GC=1 and the collector linked in:
 * stress.refcount_torture_gc. The same, plus objects that die by
 * collection. Operations make cycles (two fresh nodes linking each other,
 * on a loop often a loop-affine one with a plain one; a kid linked back up
 * to its parent; a fresh node and a published one of any thread linked both
 * ways; a node linking itself), so trash sets mix heaps and hold loop-affine
 * members of other loops; collections run automatically (thresholds 50, 5,
 * 5) and explicitly from every thread (any generation); loop threads sleep
 * quiescent now and then (a loop blocked in epoll), so that a clear the
 * collector hands to a loop waits; and the main thread, instead of waiting
 * idle for the workers, collects and at once calls gy_gc_get_objects, while
 * the loops have not yet run the clears just handed to them. "Looks"
 * (gy_gc_get_objects(-1), gy_objects_by_type, gy_objects_referrers) check
 * EVERY object they return: a torture node must pass check_node (canary
 * intact, ledger: not cleared), and no object may be one the collector is
 * destroying (gy__gc_hidden, the collector's own predicate: a trash
 * object's word carries CANDIDATE or HIDDEN; this is what catches intact
 * trash handed out by a finalizer's look, which no canary shows). The
 * finalizer sometimes looks too (gy_objects_by_type of its own type), more
 * often inside a collection on its thread: both as trash being finalized
 * (look_fin_trash) and as a live object freed by the clearing of the trash,
 * while half-cleared trash is around (look_fin_clearing).
 *
 * Where a collection runs depends on gc_mode (gyre/gc.h). In stw mode, on
 * the thread that asked (or whose safe point found it due): a worker or the
 * main thread. In concurrent mode (the default) every collection runs on
 * the collector's own thread, "gyre-gc", and so do its gc callbacks, the
 * finalizers and weakref callbacks of its trash and the clears of its
 * non-loop-affine trash; that thread gets a record of its own
 * (workers[TID_COLLECTOR], bound at its first callback, see bind_record)
 * for its events and random stream, and every check below applies to it as
 * to any other thread ("the collecting thread" is then always the
 * collector's). A loop asks for collections with gy_gc_collect_async in
 * that mode (gy_gc_collect is refused on a loop; see gy_test_collect in
 * tests/support/gy_collect.h). An object of an attached owner whose last reference the collector's
 * clears drop is usually freed by that owner at its next safe point, outside
 * any collection (biased counts); look_fin_clearing counts the frees on the
 * collecting thread itself, so it is rarer in concurrent mode.
 *
 * The ledger with a collector. A collection calls clear on each trash
 * object while holding it (count > 0: the collector's reference, or for a
 * loop-affine member cleared on its owner loop the hand-off's); when the
 * holds go the object is freed by reference counting, and the free calls
 * clear again (gy_clear_fn "may be called more than once"). The rules:
 * - the first clear poisons the canary and counts as "cleared"; "never
 *   accessed after clear" means after that first clear: every path that
 *   hands an object to the test (load, pop, get, upgrade, lookup, foreach,
 *   looks) fails on a poisoned canary or a cleared ledger entry;
 * - the clear that runs at count 0 is the free: exactly one per object
 *   (chunks of the ledger retire on frees; created = freed at the end, and
 *   the per-type counters agree);
 * - a clear at count > 0 (the collector's) is allowed only in this variant,
 *   only as an object's first clear, and only inside a collection on the
 *   clearing thread (which is then the collecting one: in concurrent mode
 *   the collector's own thread, where every gc callback must run) or, for
 *   a loop-affine object, on its owner outside one (a hand-off: in
 *   concurrent mode every loop-affine trash member goes this way, its
 *   owner never being the collecting thread); exactly one more clear, the
 *   free, must follow;
 * - finalized at most once (exactly once for types with a finalizer),
 *   before the first clear and never during it, as in the core variant;
 * - a weak reference's callback: the collector calls the callbacks of weak
 *   references to trash before the trash's finalizers (CPython's order),
 *   so here the referent may not be finalized yet; it is never cleared.
 * traverse is not an access: Gyre calls it with the world stopped on
 * whatever its walks meet (the collector's candidates and its resurrection
 * check, referrers walks), and a cleared object that is still alive is, by
 * the collector's contract (collector/DESIGN.md: a member that outlives its
 * clear is then an ordinary object), one it may walk: it sees two empty
 * fields, and nothing reaches the test. So traverse only checks that the
 * canary is intact or poisoned, never garbage, and counts the poisoned ones
 * (printed as traversed_cleared; in this test no object outlives its clear,
 * so the fixed collector shows 0).
 * Also required: collections that found trash, collector clears (on the
 * collecting thread, and handed to an owner loop: a trash set with a member
 * of another loop), hand-offs that waited for a sleeping loop, trash sets
 * kept for their loop-affine members' finalizers (gy_gc_info.deferred),
 * looks that found torture nodes, gy_gc_get_objects while a loop slept with
 * work in its inbox, and looks from finalizers inside a collection. A few
 * seconds per stage by default, like the core variant.
 *
 * Built a third time with -DGY_TORTURE_CONTINUOUS=1 as well:
 * stress.gc_torture, the collector at work all the time. One more plain
 * thread (record TID_CONTINUOUS) calls gy_gc_collect of a random generation
 * back to back, a gy_safepoint between, from the workers' start to their
 * end, so that in concurrent mode the collector's thread collects without
 * pause while the mutators race (in stw mode that thread collects itself).
 * The same checks, plus: every generation was collected and asked for, and
 * the final quiescent full collections leave created = freed (the ledger's
 * end check). It prints what it asked and what served it per generation.
 * --seconds N for long runs. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "gy_rt.h"

#include "heap.h" /* the count halves (held_at_clear); gy__race_window_hook */

#ifndef GY_TORTURE_GC
#define GY_TORTURE_GC 0
#endif
#ifndef GY_TORTURE_CONTINUOUS
#define GY_TORTURE_CONTINUOUS 0
#endif
#if GY_TORTURE_CONTINUOUS && !GY_TORTURE_GC
#error "GY_TORTURE_CONTINUOUS needs GY_TORTURE_GC"
#endif
#if GY_TORTURE_GC
#ifdef GY_TORTURE_BEFORE_FIX
#error "GY_TORTURE_GC needs the collector of issue 13's fix"
#endif
#include "collector.h" /* gy__gc_hidden, gy__gc.posted_clears */
#include "gyre/gc.h"

#include "gy_collect.h" /* gy_test_collect: gy_gc_collect from loops too */
#endif

/* --- parameters ------------------------------------------------------------ */

#define DEFAULT_THREADS 4
#define MAX_THREADS 16
/* Total operations over all threads by default: a few seconds in each CI
 * stage on two cores (TSan runs about 4x slower than ASan). */
#if GY_TORTURE_GC && GY_TSAN
#define DEFAULT_OPS 300000L /* collections and looks: each op costs more */
#elif GY_TORTURE_GC
#define DEFAULT_OPS 1000000L
#elif GY_TSAN
#define DEFAULT_OPS 1000000L
#else
#define DEFAULT_OPS 3000000L
#endif
#define NSLOTS 16    /* object slots in the table */
#define HOT 2        /* slots 0..HOT-1 get half of the slot picks */
#define NRES 4       /* resurrection slots */
#define NWEAK 8      /* weak reference slots */
#define NIDS 16      /* published ids */
#define NKEYS 16     /* dict / weakdict keys */
#define HAND 8       /* references a thread holds across operations */
#define LEVELS 96    /* kids only point to a lower level: no cycles */
#define CHAIN_MIN 40 /* chains deeper than core's trashcan depth (32) */
#define LIST_MAX 48
#define STALL_S 60.0   /* no progress for this long: fail (deadlock) */
#define GC_FIN_LOOKS 3 /* finalizer looks of each kind per collection, at most */
#define EXTEND_S 120.0 /* how long a run may go on to see every event */

/* --- failure -------------------------------------------------------------- */

static uint64_t opt_seed;
static long opt_ops = DEFAULT_OPS;
static double opt_seconds; /* 0: bounded by opt_ops */
static int opt_threads = DEFAULT_THREADS;
static bool opt_widen = true;

typedef struct worker worker;
/* The records besides the workers' (0..opt_threads-1): the main thread's;
 * the collector's own thread's ("gyre-gc", concurrent mode: its gc
 * callbacks, finalizers, weakref callbacks and clears run there, and its
 * first callback binds it this record, see bind_record); the continuous
 * variant's collecting thread's. */
#define TID_MAIN opt_threads
#define TID_COLLECTOR (opt_threads + 1)
#define TID_CONTINUOUS (opt_threads + 2)
#define RECORDS (MAX_THREADS + 3)
static _Thread_local worker *me; /* the calling thread's worker (main's too) */
static int worker_tid(void);
static uint64_t worker_ops(void);

/* A violated invariant: say what, where and how to replay, and abort (a
 * cmocka assertion cannot end the test from a worker thread). */
GY_PRINTF(1, 2)
_Noreturn static void torture_fail(const char *fmt, ...) {
    static atomic_flag failing = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&failing)) {
        for (;;) { /* another thread is reporting; it aborts the process */
            pause();
        }
    }
    va_list ap;
    va_start(ap, fmt);
    int tid = worker_tid();
    if (tid == TID_MAIN || tid == TID_COLLECTOR || tid == TID_CONTINUOUS) {
        fprintf(stderr,
                "refcount_torture: FAIL (seed %llu, %s thread): ", (unsigned long long)opt_seed,
                tid == TID_MAIN        ? "main"
                : tid == TID_COLLECTOR ? "the collector's"
                                       : "the continuous collecting");
    } else {
        fprintf(stderr, "refcount_torture: FAIL (seed %llu, thread %d, op %llu): ",
                (unsigned long long)opt_seed, worker_tid(), (unsigned long long)worker_ops());
    }
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    abort();
}

#define CHECK(cond, ...)               \
    do {                               \
        if (!(cond)) {                 \
            torture_fail(__VA_ARGS__); \
        }                              \
    } while (0)

/* --- events ---------------------------------------------------------------- */

/* X(name): every event is counted per thread and must happen at least once
 * (load_won / load_lost come from gy_runtime_stats; see the end). */
/* clang-format off */
#define EVENTS(X) \
    X(ops) X(created) X(created_affine) X(created_plain) X(store) X(churn) X(churn_weak)  \
    X(churn_id) X(load_hit) X(load_empty) X(overwrite) X(clear_field) X(list_append)      \
    X(list_pop) X(list_pop_empty) X(list_get) X(list_set) X(dict_set) X(dict_hit)         \
    X(dict_miss) X(dict_del) X(weakref_new) X(weak_upgrade) X(weak_upgrade_failed)        \
    X(weak_callback) X(weakref_drop) X(wdict_set) X(wdict_hit) X(wdict_miss) X(wdict_del) \
    X(wset_add) X(wset_hit) X(wset_discard) X(wset_member) X(id_publish) X(id_found)      \
    X(id_stale) X(link) X(unlink) X(kid_load) X(res_load) X(res_clear) X(hand_drop)       \
    X(finalized) X(finalized_elsewhere) X(resurrected) X(resurrected_freed) X(cleared)    \
    X(cross_thread_free) X(affine_freed) X(container_replace) X(wcoll_replace)            \
    X(world_stop) X(quiescent) X(chain)
/* The collector variant's: cycles made (with a loop-affine member; with a
 * member of another thread), explicit collections, collections that found
 * trash, collector clears (gc_clear; handed to an owner loop; of those, run
 * right after the loop's quiescent sleep), frees after a collector clear,
 * loop sleeps, looks (that found torture nodes; gy_gc_get_objects; that
 * while a loop slept with work in its inbox; referrers) and finalizer looks
 * (inside a collection: of trash being finalized; of a live object freed
 * while the trash is cleared). */
#define GC_EVENTS(X) \
    X(cycle) X(cycle_affine) X(cycle_foreign) X(gc_explicit) X(gc_found) X(gc_clear)      \
    X(gc_clear_handed_off) X(handoff_waited) X(gc_freed) X(sleep) X(look) X(look_found)   \
    X(look_all) X(look_all_sleeping) X(look_referrers) X(look_fin) X(look_fin_trash)      \
    X(look_fin_clearing)
/* clang-format on */
#if GY_TORTURE_GC
#define ALL_EVENTS(X) EVENTS(X) GC_EVENTS(X)
#else
#define ALL_EVENTS(X) EVENTS(X)
#endif

enum {
#define EV_ENUM(name) EV_##name,
    ALL_EVENTS(EV_ENUM)
#undef EV_ENUM
        EV_COUNT
};

static const char *const event_names[EV_COUNT] = {
#define EV_NAME(name) #name,
    ALL_EVENTS(EV_NAME)
#undef EV_NAME
};

struct worker {
    int tid;
    uint64_t rng;
    uint64_t ev[EV_COUNT]; /* written by this thread only; read after join */
    gy_object *hand[HAND];
    pthread_t thread;
    _Atomic(gy__heap *) heap; /* set once attached (the heap outlives the detach) */
};

static worker workers[RECORDS];
static _Atomic bool thread_gone[RECORDS]; /* detaching or detached */
static _Atomic bool thread_done[RECORDS]; /* detached */
static atomic_long progress;              /* operations done, flushed every 1024 */
static atomic_int wakes;
#if GY_TORTURE_GC
static _Atomic bool sleeping[RECORDS]; /* a loop in its quiescent sleep */
static _Thread_local bool slept;       /* this loop slept since its last safe point */
static _Thread_local bool in_gc;       /* a collection runs on this thread (callbacks) */
#endif

static int worker_tid(void) { return me != NULL ? me->tid : -1; }
static uint64_t worker_ops(void) { return me != NULL ? me->ev[EV_ops] : 0; }

/* At the entry of every callback Gyre makes (finalize, clear, weakref and
 * gc callbacks): the calling thread's record. Every thread of the test has
 * one from its start; the collector's own thread (concurrent mode) gets
 * workers[TID_COLLECTOR] here, at its first callback (its events are read
 * after the last collection answered). Any other thread is a failure. */
static void bind_record(void) {
    if (me != NULL) {
        return;
    }
#if GY_TORTURE_GC
    if (gy__gc_on_thread()) {
        me = &workers[TID_COLLECTOR];
        return;
    }
#endif
    torture_fail("a callback on a thread that is neither the test's nor the collector's");
}
#define MASK_WORDS ((EV_COUNT + 63) / 64)
static _Atomic uint64_t seen_mask[MASK_WORDS]; /* events that happened on any thread */
static inline void ev_hit(int e) {
    if (me->ev[e]++ == 0) {
        atomic_fetch_or_explicit(&seen_mask[e / 64], 1ull << (e % 64), memory_order_relaxed);
    }
}
#define EV(name) ev_hit(EV_##name)

/* splitmix64: seeds each thread's xorshift64* stream. */
static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t rnd(void) {
    uint64_t x = me->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    me->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}
static unsigned below(unsigned n) { return (unsigned)((rnd() >> 32) % n); }

/* --- the shadow ledger ----------------------------------------------------- */

/* One word per serial: CREATED, the kind, RESURRECTED, and two counters.
 * Chunks of CHUNK serials are allocated on first use; once every serial of
 * a chunk was freed, the chunk is verified and retired (its pointer set
 * to RETIRED; the memory freed a few retirements later), so a long run
 * holds only the chunks with live objects. An event on a retired serial is
 * an event after free. */
#define CHUNK_SHIFT 16
#define CHUNK (1u << CHUNK_SHIFT)
#define MAX_CHUNKS (1u << 16) /* 2^32 serials */
enum {
    L_CREATED = 1u << 0,
    L_KIND_SHIFT = 1,
    L_KIND_MASK = 3u << 1,
    L_RESURRECTED = 1u << 3,
    L_IN_FIN = 1u << 4, /* its finalizer is running */
    L_GC_CLR = 1u << 5, /* its first clear ran while it was held (the collector's) */
    L_FIN_ONE = 1u << 8,
    L_CLR_ONE = 1u << 16,
};
enum { K_FIN = 0, K_AFFINE = 1, K_PLAIN = 2 };

typedef struct chunk {
    _Atomic uint32_t word[CHUNK];
    atomic_uint cleared; /* serials of this chunk freed (their clear at count 0) */
} chunk;

#define RETIRED ((chunk *)(uintptr_t)1)
static _Atomic(chunk *) chunks[MAX_CHUNKS];
static _Atomic uint64_t next_serial = 1; /* 0 is never used */
static atomic_long n_created, n_finalized, n_cleared, n_freed, n_gc_cleared, n_expected_fin;
static pthread_mutex_t grave_lock = PTHREAD_MUTEX_INITIALIZER;
static chunk *grave[8]; /* retired chunks, freed a few retirements later */
static unsigned grave_next;

static unsigned fin_count(uint32_t w) { return (w >> 8) & 0xff; }
static unsigned clr_count(uint32_t w) { return (w >> 16) & 0xff; }
static unsigned kind_of(uint32_t w) { return (w & L_KIND_MASK) >> L_KIND_SHIFT; }
static unsigned expected_fin(unsigned kind) { return kind == K_PLAIN ? 0 : 1; }

static _Atomic uint32_t *ledger_word(uint64_t serial, const char *what) {
    CHECK(serial > 0 && serial < atomic_load(&next_serial), "%s: serial %llu never issued", what,
          (unsigned long long)serial);
    chunk *c = atomic_load_explicit(&chunks[serial >> CHUNK_SHIFT], memory_order_acquire);
    CHECK(c != RETIRED, "%s: serial %llu: every object of its chunk was already freed", what,
          (unsigned long long)serial);
    CHECK(c != NULL, "%s: serial %llu has no ledger chunk", what, (unsigned long long)serial);
    return &c->word[serial & (CHUNK - 1)];
}

static uint64_t ledger_create(unsigned kind) {
    uint64_t serial = atomic_fetch_add(&next_serial, 1);
    CHECK(serial < (uint64_t)MAX_CHUNKS * CHUNK, "ledger full");
    _Atomic(chunk *) *slot = &chunks[serial >> CHUNK_SHIFT];
    chunk *c = atomic_load_explicit(slot, memory_order_acquire);
    if (c == NULL) {
        chunk *fresh = calloc(1, sizeof *fresh);
        CHECK(fresh != NULL, "out of memory for the ledger");
        /* acq_rel: publish the zeroed chunk; see one installed first. */
        if (atomic_compare_exchange_strong_explicit(slot, &c, fresh, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            c = fresh;
        } else {
            free(fresh);
        }
    }
    CHECK(c != RETIRED, "serial %llu: its chunk retired before it was created",
          (unsigned long long)serial);
    uint32_t old =
        atomic_fetch_or(&c->word[serial & (CHUNK - 1)], L_CREATED | (kind << L_KIND_SHIFT));
    CHECK(old == 0, "serial %llu created twice", (unsigned long long)serial);
    atomic_fetch_add(&n_created, 1);
    if (expected_fin(kind)) {
        atomic_fetch_add(&n_expected_fin, 1);
    }
    return serial;
}

/* Every serial of a fully freed chunk: finalized as its kind says, and
 * cleared once (the free), or twice when the collector cleared it first. */
static void ledger_verify(chunk *c, uint64_t base, uint64_t end) {
    for (uint64_t s = base; s < end; s++) {
        if (s == 0) {
            continue;
        }
        uint32_t w = atomic_load(&c->word[s - base]);
        CHECK(w & L_CREATED, "serial %llu: no creation recorded", (unsigned long long)s);
        unsigned want = (w & L_GC_CLR) ? 2 : 1;
        CHECK(clr_count(w) == want, "serial %llu cleared %u times (want %u)", (unsigned long long)s,
              clr_count(w), want);
        CHECK(fin_count(w) == expected_fin(kind_of(w)), "serial %llu finalized %u times (want %u)",
              (unsigned long long)s, fin_count(w), expected_fin(kind_of(w)));
    }
}

static void ledger_retire(uint64_t serial) {
    uint64_t idx = serial >> CHUNK_SHIFT;
    chunk *c = atomic_load(&chunks[idx]);
    ledger_verify(c, idx << CHUNK_SHIFT, (idx + 1) << CHUNK_SHIFT);
    atomic_store(&chunks[idx], RETIRED);
    pthread_mutex_lock(&grave_lock);
    free(grave[grave_next % 8]);
    grave[grave_next++ % 8] = c;
    pthread_mutex_unlock(&grave_lock);
}

/* An access through a reference the caller holds: the object was created
 * and not cleared. */
static void ledger_access(uint64_t serial, const char *where) {
    uint32_t w = atomic_load_explicit(ledger_word(serial, where), memory_order_relaxed);
    CHECK(w & L_CREATED, "%s: serial %llu not created", where, (unsigned long long)serial);
    CHECK(clr_count(w) == 0, "%s: serial %llu accessed after its clear (use after free)", where,
          (unsigned long long)serial);
}

static uint32_t ledger_finalize(uint64_t serial) {
    uint32_t old = atomic_fetch_add(ledger_word(serial, "finalize"), L_FIN_ONE | L_IN_FIN);
    CHECK(fin_count(old) == 0, "serial %llu finalized a second time", (unsigned long long)serial);
    CHECK(clr_count(old) == 0, "serial %llu finalized after its clear", (unsigned long long)serial);
    atomic_fetch_add(&n_finalized, 1);
    return old;
}

/* A clear of serial: `held` when the object was held meanwhile (a
 * collector's clear), else the free's. Returns the word before. */
static uint32_t ledger_clear(uint64_t serial, bool held) {
    _Atomic uint32_t *w = ledger_word(serial, "clear");
    uint32_t old = atomic_fetch_add(w, L_CLR_ONE);
    if (clr_count(old) == 0) {
        CHECK(!held || GY_TORTURE_GC,
              "serial %llu cleared while held (count > 0) without a collector: a clear of a live "
              "object",
              (unsigned long long)serial);
        CHECK(!(old & L_IN_FIN), "serial %llu cleared while its finalizer runs (freed under it)",
              (unsigned long long)serial);
        CHECK(fin_count(old) == expected_fin(kind_of(old)),
              "serial %llu cleared with %u finalizer runs (want %u)", (unsigned long long)serial,
              fin_count(old), expected_fin(kind_of(old)));
        atomic_fetch_add(&n_cleared, 1);
        if (held) {
            atomic_fetch_or(w, L_GC_CLR); /* one clear at a time: checked above and below */
            atomic_fetch_add(&n_gc_cleared, 1);
        }
    } else {
        /* Only the free after a collector's clear (gy_clear_fn may run more
         * than once), and only once. */
        CHECK(clr_count(old) == 1 && (old & L_GC_CLR) && !held,
              "serial %llu cleared a second time (%s; before: %u clears%s): freed twice, or "
              "cleared again by the collector",
              (unsigned long long)serial, held ? "held" : "at count 0", clr_count(old),
              (old & L_GC_CLR) ? ", the first held" : "");
    }
    if (held) {
        return old;
    }
    atomic_fetch_add(&n_freed, 1);
    chunk *c = atomic_load(&chunks[serial >> CHUNK_SHIFT]);
    /* acq_rel: the thread that frees a chunk's last serial sees every other
     * free of it, and retires it. */
    unsigned need = serial >> CHUNK_SHIFT == 0 ? CHUNK - 1 : CHUNK; /* serial 0: never used */
    if (atomic_fetch_add_explicit(&c->cleared, 1, memory_order_acq_rel) + 1 == need) {
        ledger_retire(serial);
    }
    return old;
}

/* Weak reference callbacks: a ring indexed by the weakref's serial, each
 * entry (serial << 1 | CALLED, referent serial). An entry reused by a newer
 * weakref leaves the old one unchecked (counted, not a failure). */
#define RING (1u << 16)
typedef struct wring {
    _Atomic uint64_t tag;    /* wserial << 1 | called; 0 while written */
    _Atomic uint64_t target; /* the referent's serial */
} wring;
static wring weak_ring[RING];
static _Atomic uint64_t next_wserial = 1;
static atomic_long weak_unchecked;

/* --- objects --------------------------------------------------------------- */

#define MAGIC 0x5a17c0ffee15900dull
#define DEAD 0xdeaddeaddeaddeadull

typedef struct tnode {
    gy_object ob;
    gy_ref kid[2];
    uint64_t canary; /* MAGIC ^ serial; DEAD once cleared */
    uint64_t serial;
    uint16_t level; /* a kid's level is lower than its parent's: no cycles */
    uint8_t kind, creator;
    uint32_t fin_runs;   /* the finalizer's writes */
    uint64_t scratch[4]; /* ditto */
} tnode;

typedef struct table {
    gy_object ob;
    gy_ref slot[NSLOTS]; /* tnodes */
    gy_ref res[NRES];    /* tnodes resurrected by their finalizers */
    gy_ref weak[NWEAK];  /* gy_weakref */
    gy_ref list, dict, wdict, wset;
} table;

static table *tab;
static atomic_bool no_resurrect; /* set at teardown: finalizers leave tab alone */

static atomic_long traversed_cleared; /* traverse calls that met a poisoned canary */

/* Not an access (see the header): Gyre walks what it walks, a cleared
 * object still alive included; the canary must be intact or poisoned. */
static int node_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    tnode *n = (tnode *)self;
    /* relaxed atomic: in concurrent mode a traverse runs beside the clear
     * that poisons the canary (gyre/object.h's contract: a traverse reads
     * fields other threads write atomically). */
    uint64_t c = __atomic_load_n(&n->canary, __ATOMIC_RELAXED);
    if (c == DEAD) {
        atomic_fetch_add_explicit(&traversed_cleared, 1, memory_order_relaxed); /* a statistic */
    } else {
        CHECK(c == (MAGIC ^ n->serial), "traverse: serial %llu: canary %#llx corrupt",
              (unsigned long long)n->serial, (unsigned long long)c);
    }
    GY_VISIT(&n->kid[0], visit, arg);
    GY_VISIT(&n->kid[1], visit, arg);
    return 0;
}
static void node_clear(gy_object *self);
static void node_finalize(gy_object *self);

static gy_type node_types[3] = {
    [K_FIN] = {.name = "torture_node",
               .size = sizeof(tnode),
               .traverse = node_traverse,
               .clear = node_clear,
               .finalize = node_finalize},
    [K_AFFINE] = {.name = "torture_affine",
                  .size = sizeof(tnode),
                  .traverse = node_traverse,
                  .clear = node_clear,
                  .finalize = node_finalize,
                  .flags = GY_TYPE_LOOP_AFFINE},
    [K_PLAIN] = {.name = "torture_plain",
                 .size = sizeof(tnode),
                 .traverse = node_traverse,
                 .clear = node_clear},
};

static int table_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    table *t = (table *)self;
    for (int i = 0; i < NSLOTS; i++) {
        GY_VISIT(&t->slot[i], visit, arg);
    }
    for (int i = 0; i < NRES; i++) {
        GY_VISIT(&t->res[i], visit, arg);
    }
    for (int i = 0; i < NWEAK; i++) {
        GY_VISIT(&t->weak[i], visit, arg);
    }
    GY_VISIT(&t->list, visit, arg);
    GY_VISIT(&t->dict, visit, arg);
    GY_VISIT(&t->wdict, visit, arg);
    GY_VISIT(&t->wset, visit, arg);
    return 0;
}
static void table_clear(gy_object *self) {
    table *t = (table *)self;
    for (int i = 0; i < NWEAK; i++) {
        gy_ref_clear(&t->weak[i]);
    }
    for (int i = 0; i < NSLOTS; i++) {
        gy_ref_clear(&t->slot[i]);
    }
    gy_ref_clear(&t->wdict);
    gy_ref_clear(&t->wset);
    gy_ref_clear(&t->list);
    gy_ref_clear(&t->dict);
    for (int i = 0; i < NRES; i++) {
        gy_ref_clear(&t->res[i]);
    }
}
static gy_type table_type = {.name = "torture_table",
                             .size = sizeof(table),
                             .traverse = table_traverse,
                             .clear = table_clear};

static bool is_node_type(const gy_type *t) {
    return t == &node_types[K_FIN] || t == &node_types[K_AFFINE] || t == &node_types[K_PLAIN];
}

/* The check on every access to an object the caller holds a reference to. */
static tnode *check_node(gy_object *o, const char *where) {
    CHECK(is_node_type(gy_type_of(o)), "%s: %p is a %s, not a torture node", where, (void *)o,
          gy_type_of(o)->name);
    tnode *n = (tnode *)o;
    uint64_t c = n->canary, s = n->serial;
    CHECK(c != DEAD, "%s: serial %llu touched after its clear (canary poisoned by clear)", where,
          (unsigned long long)s);
    CHECK(c == (MAGIC ^ s), "%s: serial %llu: canary %#llx corrupt", where, (unsigned long long)s,
          (unsigned long long)c);
    ledger_access(s, where);
    return n;
}

/* A loop-affine object is finalized and freed on its creator while that
 * thread is attached (after its detach, on whoever drains its orphans). */
static void check_affine(const tnode *n, const char *what) {
    if (n->kind == K_AFFINE && n->creator != me->tid) {
        CHECK(atomic_load(&thread_gone[n->creator]),
              "loop-affine serial %llu %s on thread %d, created on attached thread %d",
              (unsigned long long)n->serial, what, me->tid, n->creator);
    }
}

#if GY_TORTURE_GC
static atomic_bool looks_on;                   /* the run: looks from finalizers allowed */
static _Thread_local unsigned look_depth;      /* inside a look (its releases run finalizers) */
static _Thread_local unsigned gc_fin_looks[2]; /* this collection's: as trash, as live */
static gy_gc_info gc_info0;                    /* at the start */

static bool is_known_type(const gy_type *t);

/* The check on every object a look returns (a NEW reference the caller
 * holds): a torture node passes check_node, and nothing returned is an
 * object the collector is destroying (its word says trash: CANDIDATE while
 * a collection runs, HIDDEN while its set's clears wait for owner loops;
 * once the look returned it, the caller's reference keeps it out of every
 * later trash set). True for a torture node. */
static bool check_look(gy_object *o, const char *where) {
    const gy_type *t = gy_type_of(o);
    bool node = is_node_type(t);
    if (node) {
        check_node(o, where);
    } else {
        CHECK(is_known_type(t), "%s: returned a %s", where, t->name);
    }
    CHECK(!gy__gc_hidden(o), "%s: returned %s %p (serial %llu) that the collector is destroying",
          where, t->name, (void *)o, node ? (unsigned long long)((tnode *)o)->serial : 0ull);
    return node;
}

/* A finalizer's look at the objects of its own type: rarely, more often
 * inside a collection (as trash being finalized, or as a live object freed
 * while the trash is cleared; a few of each per collection). Never nested,
 * never at teardown. */
static void finalizer_look(tnode *n) {
    if (!atomic_load_explicit(&looks_on, memory_order_relaxed) || look_depth > 0 ||
        atomic_load(&thread_gone[me->tid])) {
        return;
    }
    /* During its own collection a trash object's word says CANDIDATE. */
    bool trash = in_gc && gy__gc_hidden(&n->ob);
    if (!in_gc) {
        if (below(256) != 0) {
            return;
        }
    } else if (trash) {
        if (gc_fin_looks[0] >= GC_FIN_LOOKS || below(4) != 0) {
            return;
        }
        gc_fin_looks[0]++;
    } else {
        if (gc_fin_looks[1] >= GC_FIN_LOOKS || below(2) != 0) {
            return;
        }
        gc_fin_looks[1]++;
    }
    look_depth++;
    gy_objects objs = {0};
    CHECK(gy_objects_by_type(&node_types[n->kind], 0, &objs) == GY_OK,
          "gy_objects_by_type (finalizer)");
    for (size_t i = 0; i < objs.len; i++) {
        (void)check_look(objs.items[i], trash   ? "gy_objects_by_type (finalizer of trash)"
                                        : in_gc ? "gy_objects_by_type (finalizer, collection)"
                                                : "gy_objects_by_type (finalizer)");
    }
    gy_objects_release(&objs); /* maybe last references: finalizers, no look */
    look_depth--;
    EV(look_fin);
    if (in_gc) {
        if (trash) {
            EV(look_fin_trash);
        } else {
            EV(look_fin_clearing);
        }
    }
}
#endif

static void node_finalize(gy_object *self) {
    bind_record();
    tnode *n = check_node(self, "finalize (entry)");
    uint64_t serial = n->serial;
    ledger_finalize(serial);
    check_affine(n, "finalized");
    /* Write into the object for a few hundred cycles: a clear running on
     * another thread meanwhile poisons the canary under us. */
    n->fin_runs++;
    for (unsigned i = 0; i < 256; i++) {
        n->scratch[i & 3] += i ^ serial;
        atomic_signal_fence(memory_order_seq_cst);
    }
    check_node(self, "finalize (exit)");
#if GY_TORTURE_GC
    finalizer_look(n);
#endif
    atomic_fetch_and(ledger_word(serial, "finalize"), ~(uint32_t)L_IN_FIN);
    EV(finalized);
    if (n->creator != me->tid) {
        EV(finalized_elsewhere);
    }
    if (!atomic_load(&no_resurrect) && below(12) == 0) {
        /* Resurrect: the slot's new reference keeps it; whoever clears or
         * overwrites the slot later frees it (without a second finalizer). */
        atomic_fetch_or(ledger_word(serial, "resurrect"), L_RESURRECTED);
        EV(resurrected);
        gy_store(&tab->res[below(NRES)], n);
    }
}

/* Whether o is held while its clear runs: a collector's clear holds the
 * trash (its own reference, or the hand-off's), the free's clear runs at
 * count 0. The two halves are read apart; only an owner's merge between
 * its two steps (ref_local already UNOWNED, ref_shared not yet MERGED:
 * core/DESIGN.md 3a, T5, T8, T9) reads low, for a few instructions: wait
 * that out. Any other interleaving reads the true count or more. */
static bool held_at_clear(gy_object *o) {
    for (;;) {
        uint32_t l = atomic_load_explicit(&o->gy__local, memory_order_acquire);
        int32_t s = atomic_load_explicit(&o->gy__shared, memory_order_acquire);
        if (l != GY__UNOWNED || (s & GY__RC_MERGED)) {
            return (int64_t)(s >> GY__RC_SHIFT) + (l != GY__UNOWNED ? (int64_t)l : 0) > 0;
        }
        sched_yield();
    }
}

static void node_clear(gy_object *self) {
    bind_record();
    tnode *n = (tnode *)self;
    uint64_t s = n->serial;
    bool held = held_at_clear(self);
    if (n->canary == DEAD) {
        /* The free after a collector's clear (ledger_clear checks it). */
        CHECK(GY_TORTURE_GC, "clear: serial %llu cleared again (canary already poisoned)",
              (unsigned long long)s);
        (void)ledger_clear(s, held);
        check_affine(n, "freed");
        /* Nobody can reach it to store into it (relaxed: only a test). */
        CHECK(atomic_load_explicit(&n->kid[0].gy__ptr, memory_order_relaxed) == NULL &&
                  atomic_load_explicit(&n->kid[1].gy__ptr, memory_order_relaxed) == NULL,
              "clear: serial %llu: a field refilled after its clear", (unsigned long long)s);
#if GY_TORTURE_GC
        EV(gc_freed);
#endif
        return;
    }
    CHECK(n->canary == (MAGIC ^ s), "clear: serial %llu: canary %#llx corrupt",
          (unsigned long long)s, (unsigned long long)n->canary);
    uint32_t w = ledger_clear(s, held);
    CHECK(n->fin_runs == expected_fin(n->kind), "clear: serial %llu after %u finalizer runs",
          (unsigned long long)s, n->fin_runs);
    check_affine(n, "cleared");
#if GY_TORTURE_GC
    if (held) {
        EV(gc_clear);
        if (!in_gc) {
            /* Not inside a collection on this thread (the collecting one:
             * in concurrent mode always the collector's own): a clear the
             * collector handed to the owner of a loop-affine trash object. */
            CHECK(n->kind == K_AFFINE,
                  "clear: serial %llu (%s) cleared while held outside any collection here",
                  (unsigned long long)s, node_types[n->kind].name);
            EV(gc_clear_handed_off);
            if (slept) {
                EV(handoff_waited); /* it waited through this loop's sleep */
            }
        }
    }
#endif
    __atomic_store_n(&n->canary, DEAD, __ATOMIC_RELAXED); /* a traverse may read it */
    EV(cleared);
    if (n->creator != me->tid) {
        EV(cross_thread_free);
    }
    if (n->kind == K_AFFINE) {
        EV(affine_freed);
    }
    if (w & L_RESURRECTED) {
        EV(resurrected_freed);
    }
    gy_ref_clear(&n->kid[0]); /* frees cascade (deferred on deep chains) */
    gy_ref_clear(&n->kid[1]);
}

static tnode *new_node(unsigned kind) {
    uint64_t serial = ledger_create(kind);
    tnode *n;
    CHECK(gy_new(&node_types[kind], &n) == GY_OK, "gy_new failed");
    n->serial = serial;
    n->canary = MAGIC ^ serial;
    n->kind = (uint8_t)kind;
    n->level = (uint16_t)below(LEVELS);
    n->creator = (uint8_t)me->tid;
    EV(created);
    if (kind == K_AFFINE) {
        EV(created_affine);
    } else if (kind == K_PLAIN) {
        EV(created_plain);
    }
    return n;
}

static unsigned random_kind(void) {
    unsigned k = below(8);
    return k == 0 ? K_AFFINE : k == 1 ? K_PLAIN : K_FIN;
}

/* --- the hand: references held across operations --------------------------- */

static void hand_put(gy_object *o) {
    unsigned i = below(HAND);
    gy_object *old = me->hand[i];
    me->hand[i] = o;
    if (old != NULL) {
        gy_decref(old); /* maybe the last reference, far from its creator */
        EV(hand_drop);
    }
}

/* Keep o in the hand (1 in `one_in`) or drop it. */
static void keep_or_drop(gy_object *o, unsigned one_in) {
    if (below(one_in) == 0) {
        hand_put(o);
    } else {
        gy_decref(o);
    }
}

/* --- ids -------------------------------------------------------------------- */

typedef struct idslot {
    atomic_flag lock; /* guards the rest; never held across a Gyre call */
    bool valid;
    gy_id id;
    uint64_t serial;
} idslot;
static idslot ids[NIDS];

static void id_lock(idslot *s) {
    while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire)) {
    }
}
static void id_unlock(idslot *s) { atomic_flag_clear_explicit(&s->lock, memory_order_release); }

/* --- operations ------------------------------------------------------------ */

static unsigned pick_slot(void) { return below(2) ? below(HOT) : below(NSLOTS); }

static gy_object *load_slot(unsigned i) {
    gy_object *o = gy_load(&tab->slot[i]);
    if (o != NULL) {
        check_node(o, "gy_load(slot)");
        EV(load_hit);
    } else {
        EV(load_empty);
    }
    return o;
}

static void key_of(char *buf, size_t len, char prefix, unsigned k) {
    snprintf(buf, len, "%c%u", prefix, k);
}

static void op_new_store(void) {
    tnode *n = new_node(random_kind());
    for (int k = 0; k < 2; k++) {
        if (below(2) == 0) {
            gy_object *o = load_slot(pick_slot());
            if (o != NULL && ((tnode *)o)->level < n->level) {
                gy_store(&n->kid[k], o);
                EV(link);
            }
            gy_xdecref(o);
        }
    }
    gy_store(&tab->slot[pick_slot()], n);
    EV(store);
    keep_or_drop(&n->ob, 4);
}

static void weakref_make(gy_object *o, unsigned i);
static void id_publish(gy_object *o, unsigned i);

/* Issue 13's pattern: the owner makes a fresh object reachable without a
 * reference (a gy_ref field, a weak reference, an id), then drops its own
 * references, so that its last decrement races every load, upgrade or
 * lookup of that hot slot. A burst. */
static void op_churn(void) {
    unsigned s = below(HOT), n = 1 + below(4), how = below(4);
    for (unsigned i = 0; i < n; i++) {
        tnode *x = new_node(K_FIN);
        if (how <= 1) { /* through a field: store, drop, clear */
            gy_store(&tab->slot[s], x);
            gy_decref(x);
            gy_ref_clear(&tab->slot[s]);
            EV(churn);
        } else if (how == 2) { /* through a weak reference */
            weakref_make(&x->ob, s);
            gy_decref(x);
            EV(churn_weak);
        } else { /* through an id */
            id_publish(&x->ob, s);
            gy_decref(x);
            EV(churn_id);
        }
    }
}

static void op_load(void) {
    unsigned s = below(4) ? below(HOT) : below(NSLOTS), n = 1 + below(8);
    for (unsigned i = 0; i < n; i++) {
        gy_object *o = load_slot(s);
        if (o != NULL) {
            keep_or_drop(o, 8);
        }
    }
}

static void op_overwrite(void) {
    gy_object *o = load_slot(pick_slot());
    gy_store(&tab->slot[pick_slot()], o);
    gy_xdecref(o);
    EV(overwrite);
}

static void op_clear(void) {
    gy_ref_clear(&tab->slot[pick_slot()]);
    EV(clear_field);
}

static void op_list(void) {
    gy_list *l = (gy_list *)gy_load(&tab->list);
    CHECK(l != NULL, "the list slot is empty");
    gy_object *o;
    switch (below(6)) {
    case 0: /* append a published object */
        if ((o = load_slot(pick_slot())) != NULL) {
            CHECK(gy_list_append(l, o) == GY_OK, "gy_list_append");
            gy_decref(o);
            EV(list_append);
        }
        break;
    case 1: { /* append a fresh, never published one */
        tnode *n = new_node(random_kind());
        CHECK(gy_list_append(l, n) == GY_OK, "gy_list_append");
        gy_decref(n);
        EV(list_append);
        break;
    }
    case 2:
    case 3: /* pop (twice when long) */
        for (int i = gy_list_len(l) > LIST_MAX ? 2 : 1; i > 0; i--) {
            if (gy_list_pop(l, &o) == GY_OK) {
                check_node(o, "gy_list_pop");
                EV(list_pop);
                keep_or_drop(o, 6);
            } else {
                EV(list_pop_empty);
            }
        }
        break;
    case 4: /* get */
        if ((o = gy_list_get(l, below(8))) != NULL) {
            check_node(o, "gy_list_get");
            EV(list_get);
            gy_decref(o);
        }
        break;
    default: /* set */
        if ((o = load_slot(pick_slot())) != NULL) {
            if (gy_list_set(l, below(8), o) == GY_OK) {
                EV(list_set);
            }
            gy_decref(o);
        }
        break;
    }
    gy_decref(l);
}

static void op_dict(void) {
    gy_dict *d = (gy_dict *)gy_load(&tab->dict);
    CHECK(d != NULL, "the dict slot is empty");
    char key[16];
    key_of(key, sizeof key, 'd', below(NKEYS));
    gy_object *o;
    switch (below(4)) {
    case 0: { /* set a fresh object or a published one */
        o = below(2) ? &new_node(random_kind())->ob : load_slot(pick_slot());
        if (o != NULL) {
            CHECK(gy_dict_set(d, key, o) == GY_OK, "gy_dict_set");
            gy_decref(o);
            EV(dict_set);
        }
        break;
    }
    case 1:
    case 2:
        if ((o = gy_dict_get(d, key)) != NULL) {
            check_node(o, "gy_dict_get");
            EV(dict_hit);
            keep_or_drop(o, 8);
        } else {
            EV(dict_miss);
        }
        break;
    default:
        if (gy_dict_del(d, key) == GY_OK) {
            EV(dict_del);
        }
        break;
    }
    gy_decref(d);
}

/* A weakref's callback: at most once per weakref, while its referent dies
 * (finalized if it has a finalizer, not yet cleared). */
static void weak_callback(gy_weakref *wr, void *arg) {
    bind_record();
    uint64_t ws = (uint64_t)(uintptr_t)arg;
    wring *e = &weak_ring[ws % RING];
    gy_object *t = gy_weakref_get(wr);
    CHECK(t == NULL, "weakref %llu upgraded inside its own callback", (unsigned long long)ws);
    EV(weak_callback);
    uint64_t tag = atomic_load(&e->tag);
    uint64_t target = atomic_load(&e->target);
    if (atomic_load(&e->tag) != tag || tag >> 1 != ws) {
        atomic_fetch_add(&weak_unchecked, 1); /* entry reused by a newer weakref */
        return;
    }
    CHECK(!(tag & 1), "weakref %llu called back twice", (unsigned long long)ws);
    uint64_t want = tag;
    if (!atomic_compare_exchange_strong(&e->tag, &want, tag | 1)) {
        CHECK(want != (tag | 1), "weakref %llu called back twice (concurrently)",
              (unsigned long long)ws);
        atomic_fetch_add(&weak_unchecked, 1);
        return;
    }
    uint32_t w = atomic_load(ledger_word(target, "weakref callback"));
    CHECK(clr_count(w) == 0, "weakref %llu called back after its referent %llu was cleared",
          (unsigned long long)ws, (unsigned long long)target);
    /* The collector calls back before it finalizes the trash (CPython's
     * order); reference counting after the finalizer. */
    CHECK(GY_TORTURE_GC || fin_count(w) == expected_fin(kind_of(w)),
          "weakref %llu called back before its referent %llu was finalized", (unsigned long long)ws,
          (unsigned long long)target);
}

/* A weak reference to o (a tnode the caller holds), stored in weak slot i. */
static void weakref_make(gy_object *o, unsigned i) {
    uint64_t ws = atomic_fetch_add(&next_wserial, 1);
    wring *e = &weak_ring[ws % RING];
    atomic_store(&e->tag, 0); /* seq_cst: a reader that sees tag ws sees target */
    atomic_store(&e->target, ((tnode *)o)->serial);
    atomic_store(&e->tag, ws << 1);
    bool with_cb = below(4) != 0;
    gy_weakref *wr;
    CHECK(gy_weakref_new(&wr, o, with_cb ? weak_callback : NULL, (void *)(uintptr_t)ws) == GY_OK,
          "gy_weakref_new");
    gy_store(&tab->weak[i], wr);
    gy_decref(wr);
    EV(weakref_new);
}

static unsigned pick_weak(void) { return below(2) ? below(HOT) : below(NWEAK); }

static void op_weakref(void) {
    unsigned i = pick_weak();
    switch (below(5)) {
    case 0: { /* make a weakref to a published object */
        gy_object *o = load_slot(pick_slot());
        if (o != NULL) {
            weakref_make(o, i);
            keep_or_drop(o, 8);
        }
        break;
    }
    case 1:
    case 2:
    case 3: { /* upgrade, a burst */
        gy_object *wr = gy_load(&tab->weak[i]);
        if (wr == NULL) {
            break;
        }
        CHECK(gy_type_of(wr) == &gy_weakref_type, "weak slot holds a %s", gy_type_of(wr)->name);
        for (unsigned k = 1 + below(4); k > 0; k--) {
            gy_object *o = gy_weakref_get((gy_weakref *)wr);
            if (o != NULL) {
                check_node(o, "gy_weakref_get");
                EV(weak_upgrade);
                keep_or_drop(o, 8);
            } else {
                EV(weak_upgrade_failed);
            }
        }
        /* Maybe the weakref's last reference: it dies, unregistering. */
        gy_decref(wr);
        break;
    }
    default:
        gy_ref_clear(&tab->weak[i]);
        EV(weakref_drop);
        break;
    }
}

static void op_weakdict(void) {
    gy_weakdict *wd = (gy_weakdict *)gy_load(&tab->wdict);
    CHECK(wd != NULL, "the weakdict slot is empty");
    char key[16];
    key_of(key, sizeof key, 'w', below(NKEYS));
    gy_object *o;
    switch (below(4)) {
    case 0:
        if ((o = load_slot(pick_slot())) != NULL) {
            CHECK(gy_weakdict_set(wd, key, o) == GY_OK, "gy_weakdict_set");
            EV(wdict_set);
            keep_or_drop(o, 8);
        }
        break;
    case 1:
    case 2:
        if ((o = gy_weakdict_get(wd, key)) != NULL) {
            check_node(o, "gy_weakdict_get");
            EV(wdict_hit);
            keep_or_drop(o, 8);
        } else {
            EV(wdict_miss);
        }
        break;
    default:
        if (gy_weakdict_del(wd, key) == GY_OK) {
            EV(wdict_del);
        }
        break;
    }
    gy_decref(wd);
}

static int wset_member(gy_object *member, void *arg) {
    (void)arg;
    check_node(member, "gy_weakset_foreach");
    EV(wset_member);
    return 0;
}

static void op_weakset(void) {
    gy_weakset *ws = (gy_weakset *)gy_load(&tab->wset);
    CHECK(ws != NULL, "the weakset slot is empty");
    gy_object *o;
    switch (below(4)) {
    case 0:
        if ((o = load_slot(pick_slot())) != NULL) {
            CHECK(gy_weakset_add(ws, o) == GY_OK, "gy_weakset_add");
            EV(wset_add);
            keep_or_drop(o, 8);
        }
        break;
    case 1:
        if ((o = load_slot(pick_slot())) != NULL) {
            if (gy_weakset_contains(ws, o)) {
                EV(wset_hit);
            }
            if (below(2) && gy_weakset_discard(ws, o) == GY_OK) {
                EV(wset_discard);
            }
            gy_decref(o);
        }
        break;
    case 2:
        if (below(8) == 0) {
            (void)gy_weakset_foreach(ws, wset_member, NULL);
        }
        break;
    default:
        (void)gy_weakset_len(ws);
        break;
    }
    gy_decref(ws);
}

/* Publish the id of o (a tnode the caller holds) in id slot i. */
static void id_publish(gy_object *o, unsigned i) {
    idslot *s = &ids[i];
    gy_id id = gy_object_id(o);
    uint64_t serial = ((tnode *)o)->serial;
    id_lock(s);
    s->id = id;
    s->serial = serial;
    s->valid = true;
    id_unlock(s);
    EV(id_publish);
}

static unsigned pick_id(void) { return below(2) ? below(HOT) : below(NIDS); }

static void op_id(void) {
    unsigned i = pick_id();
    if (below(2) == 0) { /* publish the id of a live object */
        gy_object *o = load_slot(pick_slot());
        if (o != NULL) {
            id_publish(o, i);
            keep_or_drop(o, 8);
        }
        return;
    }
    idslot *s = &ids[i];
    id_lock(s);
    bool valid = s->valid;
    gy_id id = s->id;
    uint64_t serial = s->serial;
    id_unlock(s);
    if (!valid) {
        return;
    }
    for (unsigned k = 1 + below(3); k > 0; k--) { /* a burst of lookups */
        gy_object *o;
        int rc = gy_object_from_id(id, &o);
        if (rc == GY_OK) {
            tnode *n = check_node(o, "gy_object_from_id");
            CHECK(n->serial == serial, "gy_object_from_id: id of serial %llu gave serial %llu",
                  (unsigned long long)serial, (unsigned long long)n->serial);
            EV(id_found);
            keep_or_drop(o, 8);
        } else {
            CHECK(rc == GY_ESTALE, "gy_object_from_id: %s", gy_err_name(rc));
            EV(id_stale);
        }
    }
}

static void op_link(void) {
    gy_object *a = load_slot(pick_slot());
    if (a == NULL) {
        return;
    }
    tnode *n = (tnode *)a;
    unsigned k = below(2);
    switch (below(3)) {
    case 0: {
        gy_object *b = load_slot(pick_slot());
        if (b != NULL && ((tnode *)b)->level < n->level) {
            gy_store(&n->kid[k], b); /* maybe dropping the old kid: a cascade */
            EV(link);
        }
        gy_xdecref(b);
        break;
    }
    case 1:
        gy_ref_clear(&n->kid[k]);
        EV(unlink);
        break;
    default: {
        gy_object *c = gy_load(&n->kid[k]);
        if (c != NULL) {
            check_node(c, "gy_load(kid)");
            EV(kid_load);
            keep_or_drop(c, 8);
        }
        break;
    }
    }
    gy_decref(a);
}

static void op_res(void) {
    unsigned i = below(NRES);
    gy_object *o = gy_load(&tab->res[i]);
    if (o != NULL) {
        check_node(o, "gy_load(resurrection slot)");
        EV(res_load);
        keep_or_drop(o, 4);
    }
    if (below(2) == 0) {
        gy_ref_clear(&tab->res[i]); /* the resurrected object's death, usually */
        EV(res_clear);
    }
}

static void op_hand(void) {
    unsigned i = below(HAND);
    if (me->hand[i] != NULL) {
        gy_decref(me->hand[i]);
        me->hand[i] = NULL;
        EV(hand_drop);
    }
}

/* A chain deeper than the trashcan depth, hung off a slot: when it dies,
 * the nested frees go to the deferred stack, and on a loop thread (budget
 * 16) continue over several safe points. */
static void op_chain(void) {
    if (below(4) != 0) {
        return;
    }
    unsigned len = CHAIN_MIN + below(LEVELS - CHAIN_MIN);
    tnode *prev = NULL;
    for (unsigned i = 0; i < len; i++) {
        tnode *n = new_node(below(4) == 0 ? K_PLAIN : K_FIN);
        n->level = (uint16_t)i;
        if (prev != NULL) {
            gy_store_steal(&n->kid[0], prev);
        }
        prev = n;
    }
    gy_store_steal(&tab->slot[below(NSLOTS)], prev);
    EV(chain);
}

/* Replace a container with a fresh empty one: the old one dies with its
 * contents, wherever its last reference drops. */
static void op_replace(void) {
    switch (below(4)) {
    case 0: {
        gy_list *l;
        CHECK(gy_list_new(&l) == GY_OK, "gy_list_new");
        gy_store_steal(&tab->list, l);
        EV(container_replace);
        break;
    }
    case 1: {
        gy_dict *d;
        CHECK(gy_dict_new(&d) == GY_OK, "gy_dict_new");
        gy_store_steal(&tab->dict, d);
        EV(container_replace);
        break;
    }
    case 2: {
        gy_weakdict *wd;
        CHECK(gy_weakdict_new(&wd) == GY_OK, "gy_weakdict_new");
        gy_store_steal(&tab->wdict, wd);
        EV(wcoll_replace);
        break;
    }
    default: {
        gy_weakset *ws;
        CHECK(gy_weakset_new(&ws) == GY_OK, "gy_weakset_new");
        gy_store_steal(&tab->wset, ws);
        EV(wcoll_replace);
        break;
    }
    }
}

/* A world stop (introspection walk) now and then, or an idle loop's pause. */
static void op_rare(void) {
    if (below(16) == 0) {
        gy_objects objs = {0};
        CHECK(gy_objects_by_type(&node_types[below(3)], 16, &objs) == GY_OK, "gy_objects_by_type");
        for (size_t i = 0; i < objs.len; i++) {
            check_node(objs.items[i], "gy_objects_by_type");
        }
        gy_objects_release(&objs); /* maybe the last references */
        EV(world_stop);
    } else {
        gy_quiescent_begin();
        gy_quiescent_end();
        EV(quiescent);
    }
}

#if GY_TORTURE_GC
static bool is_loop(void) { return me->tid % 2 == 0 && me->tid < opt_threads; }

/* Cycles: objects that only a collection frees. */
static void op_cycle(void) {
    switch (below(4)) {
    case 0: { /* two fresh nodes linking each other; on a loop often a loop-affine one */
        tnode *a = new_node(is_loop() && below(2) ? K_AFFINE : random_kind());
        tnode *b = new_node(below(2) ? K_PLAIN : K_FIN);
        gy_store(&a->kid[0], b);
        gy_store(&b->kid[0], a);
        if (below(2) == 0) { /* an older node, often moved out of its slot onto the cycle */
            unsigned i = pick_slot();
            gy_object *o = load_slot(i);
            if (o != NULL) {
                gy_store(&b->kid[1], o);
                EV(link);
                if (below(2) == 0) {
                    /* Freed while the collector clears the cycle (when it is
                     * in an older generation than the one collected). */
                    gy_ref_clear(&tab->slot[i]);
                    EV(clear_field);
                }
                gy_decref(o);
            }
        }
        if (a->kind == K_AFFINE || b->kind == K_AFFINE) {
            EV(cycle_affine);
        }
        if (below(2) == 0) { /* trash once the slot changes; else at once */
            gy_store(&tab->slot[pick_slot()], a);
            EV(store);
        }
        gy_decref(a);
        gy_decref(b);
        EV(cycle);
        break;
    }
    case 1: { /* a kid linked back up to its parent */
        gy_object *p = load_slot(pick_slot());
        if (p == NULL) {
            break;
        }
        gy_object *c = gy_load(&((tnode *)p)->kid[below(2)]);
        if (c != NULL) {
            tnode *cn = check_node(c, "gy_load(kid)"), *pn = (tnode *)p;
            EV(kid_load);
            gy_store(&cn->kid[below(2)], p); /* maybe dropping c's old kid */
            EV(cycle);
            if (cn->kind == K_AFFINE || pn->kind == K_AFFINE) {
                EV(cycle_affine);
            }
            if (cn->creator != me->tid || pn->creator != me->tid) {
                EV(cycle_foreign);
            }
            gy_decref(c);
        }
        gy_decref(p);
        break;
    }
    case 2: { /* a fresh node of this thread and a published one of any thread */
        gy_object *o = load_slot(pick_slot());
        if (o == NULL) {
            break;
        }
        tnode *on = (tnode *)o, *n = new_node(is_loop() && below(2) ? K_AFFINE : random_kind());
        gy_store(&n->kid[0], o);
        gy_store(&on->kid[below(2)], n);
        EV(cycle);
        if (n->kind == K_AFFINE || on->kind == K_AFFINE) {
            EV(cycle_affine);
        }
        if (on->creator != me->tid) {
            EV(cycle_foreign);
        }
        gy_decref(n);
        gy_decref(o);
        break;
    }
    default: { /* a node linking itself */
        tnode *n = new_node(random_kind());
        gy_store(&n->kid[below(2)], n);
        if (below(2) == 0) {
            gy_store(&tab->slot[pick_slot()], n);
            EV(store);
        }
        gy_decref(n);
        EV(cycle);
        break;
    }
    }
}

/* Some loop is in its quiescent sleep with work waiting in its inbox (a
 * hand-off among it, perhaps). */
static bool loop_sleeps_with_work(void) {
    for (int i = 0; i < opt_threads; i += 2) {
        gy__heap *h = atomic_load(&workers[i].heap);
        /* relaxed: a hint for an event count. */
        if (h != NULL && atomic_load(&sleeping[i]) &&
            (atomic_load_explicit(&h->pending, memory_order_relaxed) & GY__PEND_INBOX)) {
            return true;
        }
    }
    return false;
}

static atomic_long looks_posted; /* gy_gc_get_objects while a hand-off was pending */

/* gy_gc_get_objects(-1): every tracked object, each checked. */
static void look_all(void) {
    bool sleeps = loop_sleeps_with_work();
    if (atomic_load_explicit(&gy__gc.posted_clears, memory_order_relaxed) > 0) {
        atomic_fetch_add_explicit(&looks_posted, 1, memory_order_relaxed); /* a statistic */
    }
    gy_list *l;
    gy_errmsg err = {0};
    CHECK(gy_gc_get_objects(-1, &l, &err) == GY_OK, "gy_gc_get_objects: %s", err.text);
    bool found = false;
    for (size_t i = 0, len = gy_list_len(l); i < len; i++) {
        gy_object *o = gy_list_get(l, i);
        if (o != NULL) {
            found |= check_look(o, "gy_gc_get_objects");
            gy_decref(o);
        }
    }
    look_depth++;
    gy_decref(l); /* maybe last references: finalizers here, no look */
    look_depth--;
    EV(look);
    EV(look_all);
    if (found) {
        EV(look_found);
    }
    if (sleeps) {
        EV(look_all_sleeping);
    }
}

/* gy_objects_by_type or gy_objects_referrers, each object checked. */
static void look_some(void) {
    gy_objects objs = {0};
    gy_object *o = NULL;
    const char *where = "gy_objects_by_type";
    if (below(2) == 0) {
        CHECK(gy_objects_by_type(&node_types[below(3)], 0, &objs) == GY_OK, "gy_objects_by_type");
    } else {
        if ((o = load_slot(pick_slot())) == NULL) {
            return;
        }
        CHECK(gy_objects_referrers(o, &objs) == GY_OK, "gy_objects_referrers");
        where = "gy_objects_referrers";
        EV(look_referrers);
    }
    bool found = false;
    for (size_t i = 0; i < objs.len; i++) {
        found |= check_look(objs.items[i], where);
    }
    look_depth++;
    gy_objects_release(&objs);
    gy_xdecref(o);
    look_depth--;
    EV(look);
    if (found) {
        EV(look_found);
    }
}

static void op_look(void) {
    if (below(4) != 0) {
        return;
    }
    if (below(4) == 0) {
        look_all();
    } else {
        look_some();
    }
}

/* An explicit collection of any generation; often followed at once by a
 * look at every object, while the loops have not yet run the clears just
 * handed to them. */
static void gc_now(bool look) {
    gy_gc_result res;
    gy_errmsg err = {0};
    CHECK(gy_test_collect((int)below(3), &res, &err) == GY_OK, "gy_gc_collect: %s", err.text);
    EV(gc_explicit);
    if (look) {
        look_all();
    }
}

static void op_gc(void) {
    if (below(8) == 0) {
        gc_now(below(2) == 0);
    }
}

/* A loop blocked in epoll: quiescent for tens to hundreds of microseconds;
 * what was handed to it waits. */
static void op_sleep(void) {
    if (!is_loop() || below(2) != 0) {
        return;
    }
    atomic_store(&sleeping[me->tid], true);
    gy_quiescent_begin();
    struct timespec nap = {0, (long)(20 + below(200)) * 1000};
    nanosleep(&nap, NULL);
#if GY_TORTURE_GC
    /* One sleep in four lasts until the collector has posted a clear and
     * this loop's inbox has work (up to 4 ms), as a loop blocked in epoll
     * until woken: under TSan's timing a short nap alone never saw a
     * collector's hand-off arrive in 120 s (nor did waking on any pending
     * bit: a handshake or a remote free sets one first). */
    for (int i = below(4) == 0 ? 0 : 80; i < 80; i++) {
        if ((atomic_load_explicit(&gy__tls_heap->pending, memory_order_relaxed) & GY__PEND_INBOX) &&
            atomic_load_explicit(&gy__gc.posted_clears, memory_order_relaxed) > 0) {
            break;
        }
        struct timespec tick = {0, 50 * 1000};
        nanosleep(&tick, NULL);
    }
#endif
    gy_quiescent_end();
    atomic_store(&sleeping[me->tid], false);
    slept = true; /* until the next safe point, which runs what waited */
    EV(sleep);
}

/* The collection callbacks (on the collecting thread). */
static void on_collection(gy_gc_phase phase, const gy_gc_callback_info *info, void *arg) {
    (void)arg;
    bind_record();
    /* Concurrent mode: every collection runs on the collector's thread. */
    CHECK(gy_gc_get_mode() != GY_GC_MODE_CONCURRENT || gy__gc_on_thread(),
          "a gc callback on thread %d, not the collector's, in concurrent mode", me->tid);
    if (phase == GY_GC_START) {
        in_gc = true;
        gc_fin_looks[0] = gc_fin_looks[1] = 0;
        return;
    }
    in_gc = false;
    if (info->collected > 0) {
        EV(gc_found);
    }
}
#endif

typedef void (*op_fn)(void);
static const struct {
    op_fn fn;
    unsigned weight;
} ops[] = {
    {op_new_store, 14}, {op_churn, 16}, {op_load, 28},    {op_overwrite, 8}, {op_clear, 6},
    {op_list, 12},      {op_dict, 10},  {op_weakref, 14}, {op_weakdict, 8},  {op_weakset, 8},
    {op_id, 5},         {op_link, 10},  {op_res, 4},      {op_hand, 6},      {op_replace, 1},
    {op_chain, 1},      {op_rare, 1},
#if GY_TORTURE_GC
    {op_cycle, 8},      {op_gc, 1},     {op_look, 1},     {op_sleep, 3},
#endif
};
static op_fn op_table[256];
static unsigned op_table_len;

static void build_op_table(void) {
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        for (unsigned w = 0; w < ops[i].weight; w++) {
            op_table[op_table_len++] = ops[i].fn;
        }
    }
}

/* --- threads --------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void wake(void *arg) {
    (void)arg;
    atomic_fetch_add_explicit(&wakes, 1, memory_order_relaxed);
}

static double t_start, t_deadline;
static atomic_bool widened;
/* The race windows stretched during the first half of a run, and in which
 * share of the passes (a failpoint name the build does not check is
 * harmless): the owner's last decrement between its read of the count and
 * its CAS, and its merge just after the CAS, often; gy_load between its
 * read of the field and its try-incref now and then (every load pays it;
 * together with the first it makes loads that win). */
static const struct {
    const char *name;
    const char *spec; /* the failpoint's */
    unsigned every;   /* the hook's: every Nth pass */
} windows[] = {
    {"race.last_decref", "prob:0.5", 2},
    {"race.merge_queued", "prob:0.5", 2},
    {"race.load", "prob:0.125", 8},
};
#define NWINDOWS (sizeof windows / sizeof windows[0])
static _Atomic uint64_t widened_hits[NWINDOWS]; /* firings of each */
static gy_runtime_stats stats0;                 /* at the start */
static atomic_bool all_seen;

static atomic_bool hook_on;

#ifndef GY_TORTURE_BEFORE_FIX
/* The race-window hook (builds without failpoints): called by the thread in
 * the window; spins there, as the failpoint does, in the window's share of
 * the passes while the widening is on. Windows it does not know pass. */
static void widen_hook(const char *window) {
    static _Thread_local unsigned calls[NWINDOWS];
    if (!atomic_load_explicit(&hook_on, memory_order_relaxed)) {
        return;
    }
    for (size_t w = 0; w < NWINDOWS; w++) {
        if (strcmp(window, windows[w].name) == 0) {
            if (calls[w]++ % windows[w].every == 0) {
                for (volatile int i = 0; i < 4000; i++) {
                }
                /* relaxed: a statistic. */
                atomic_fetch_add_explicit(&widened_hits[w], 1, memory_order_relaxed);
            }
            return;
        }
    }
}
#endif

static void widen_on(void) {
    if (gy_failpoints_available()) {
        for (size_t i = 0; i < NWINDOWS; i++) {
            char spec[64];
            snprintf(spec, sizeof spec, "%s:%llu", windows[i].spec,
                     (unsigned long long)(opt_seed | 1));
            CHECK(gy_failpoint_set(windows[i].name, spec, NULL) == GY_OK, "gy_failpoint_set");
        }
    } else {
        atomic_store(&hook_on, true);
#ifndef GY_TORTURE_BEFORE_FIX
        /* Set before the threads start, as heap.h asks; cleared after. */
        atomic_store(&gy__race_window_hook, widen_hook);
#endif
    }
    atomic_store(&widened, true);
}

static void widen_off(void) {
    if (gy_failpoints_available()) {
        for (size_t i = 0; i < NWINDOWS; i++) {
            /* Setting a spec resets its counters: read them first. */
            atomic_fetch_add(&widened_hits[i], gy_failpoint_fired(windows[i].name));
            CHECK(gy_failpoint_set(windows[i].name, "off", NULL) == GY_OK, "gy_failpoint_set");
        }
    }
    atomic_store(&hook_on, false);
}

/* Every kind of event happened (the race outcomes from the runtime's
 * statistics): the run may end. */
static bool every_event_seen(void) {
    if (atomic_load(&all_seen)) {
        return true;
    }
    for (int i = 0; i < MASK_WORDS; i++) {
        int bits = EV_COUNT - 64 * i;
        uint64_t want = bits >= 64 ? ~0ull : (1ull << bits) - 1;
        if (atomic_load_explicit(&seen_mask[i], memory_order_relaxed) != want) {
            return false;
        }
    }
#ifndef GY_TORTURE_BEFORE_FIX
    gy_runtime_stats st;
    gy_runtime_get_stats(&st);
    if (st.last_ref_races == stats0.last_ref_races ||
        st.tryincref_refused == stats0.tryincref_refused) {
        return false;
    }
#endif
#if GY_TORTURE_GC
    gy_gc_info gi;
    gy_gc_get_info(&gi);
    if (gi.deferred == gc_info0.deferred) {
        return false;
    }
#endif
    atomic_store(&all_seen, true);
    return true;
}

static void *worker_main(void *arg) {
    me = arg;
    gy_thread_options loop = {
        .kind = GY_THREAD_LOOP, .wake = wake, .cascade_budget = 16, .name = "torture-loop"};
    gy_thread_options plain = {.kind = GY_THREAD_PLAIN, .name = "torture-plain"};
    gy_errmsg err = {0};
    CHECK(gy_thread_attach(me->tid % 2 == 0 ? &loop : &plain, &err) == GY_OK,
          "gy_thread_attach: %s", err.text);
    atomic_store(&me->heap, gy__tls_heap);
    long quota = opt_ops / opt_threads;
    for (long op = 0;; op++) {
        if ((op & 1023) == 0) {
            if (op > 0) {
                atomic_fetch_add_explicit(&progress, 1024, memory_order_relaxed);
            }
            bool half, done;
            double t = now_s();
            if (opt_seconds > 0) {
                half = t - t_start > opt_seconds / 2;
                done = t >= t_deadline;
            } else {
                half = op >= quota / 2;
                done = op >= quota;
            }
            if (half && me->tid == 0 && atomic_exchange(&widened, false)) {
                widen_off(); /* the second half at natural timing */
            }
            /* Past the quota, go on until every kind of event happened (a
             * loaded machine may give the threads little true overlap), for
             * at most EXTEND_S more: then the end fails, naming what is
             * missing. */
            if (done && (every_event_seen() || t > t_deadline + EXTEND_S)) {
                break;
            }
        }
        op_table[below(op_table_len)]();
        EV(ops);
        gy_safepoint();
#if GY_TORTURE_GC
        slept = false;
#endif
    }
    for (int i = 0; i < HAND; i++) {
        gy_xdecref(me->hand[i]);
        me->hand[i] = NULL;
    }
    /* Before the detach, which hands this thread's loop-affine objects to
     * whoever drains its orphans: from here check_affine lets them go. */
    atomic_store(&thread_gone[me->tid], true);
    CHECK(gy_thread_detach() == GY_OK, "gy_thread_detach");
    atomic_store(&thread_done[me->tid], true);
    return NULL;
}

/* The watchdog (a thread of its own, not attached): fails the run when no
 * worker makes progress for STALL_S (a deadlock, the main thread's too). */
static atomic_bool watch_stop;

static void *watchdog_main(void *arg) {
    (void)arg;
    long last = -1;
    double since = now_s();
    while (!atomic_load(&watch_stop)) {
        long p = atomic_load(&progress);
        if (p != last) {
            last = p;
            since = now_s();
        } else if (now_s() - since > STALL_S) {
            fprintf(stderr,
                    "refcount_torture: FAIL (seed %llu): no progress for %.0f s at %ld ops\n",
                    (unsigned long long)opt_seed, STALL_S, p);
            for (int i = 0; i < opt_threads; i++) {
                fprintf(stderr, "  thread %d: %s\n", i,
                        atomic_load(&thread_done[i])   ? "detached"
                        : atomic_load(&thread_gone[i]) ? "detaching"
                                                       : "running");
            }
            abort();
        }
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    return NULL;
}

static bool workers_done(void) {
    for (int i = 0; i < opt_threads; i++) {
        if (!atomic_load(&thread_done[i])) {
            return false;
        }
    }
    return true;
}

#if GY_TORTURE_CONTINUOUS
/* The continuous variant's collecting thread (plain): gy_gc_collect of a
 * random generation, back to back, a safe point between, until the workers
 * are done, so that a collection runs (or is asked for) at every moment of
 * the run. What it saw (written by it, read after its join): collections
 * asked per generation, answers per generation of the collection that
 * served them (requests pending together share one, of the oldest
 * generation asked), and what they collected. */
static atomic_bool continuous_stop;
static pthread_t continuous_thread;
static uint64_t continuous_asked[GY_GC_GENERATIONS], continuous_served[GY_GC_GENERATIONS];
static uint64_t continuous_collected;

static void *continuous_main(void *arg) {
    me = arg;
    gy_thread_options plain = {.kind = GY_THREAD_PLAIN, .name = "torture-collect"};
    gy_errmsg err = {0};
    CHECK(gy_thread_attach(&plain, &err) == GY_OK, "gy_thread_attach: %s", err.text);
    while (!atomic_load(&continuous_stop)) {
        int g = (int)below(GY_GC_GENERATIONS);
        gy_gc_result res;
        CHECK(gy_gc_collect(g, &res, &err) == GY_OK, "gy_gc_collect (continuous): %s", err.text);
        CHECK(res.generation >= g && res.generation < GY_GC_GENERATIONS,
              "gy_gc_collect(%d) answered by a collection of generation %d", g, res.generation);
        continuous_asked[g]++;
        continuous_served[res.generation]++;
        continuous_collected += res.collected;
        gy_safepoint();
    }
    atomic_store(&thread_gone[me->tid], true);
    CHECK(gy_thread_detach() == GY_OK, "gy_thread_detach");
    atomic_store(&thread_done[me->tid], true);
    return NULL;
}
#endif

/* Wait for the workers. Quiescent meanwhile (a world stop must not wait for
 * this thread); in the collector variant it wakes every millisecond or so
 * to collect and look (see the header). */
static void join_workers(void) {
    gy_quiescent_begin();
    while (!workers_done()) {
#if GY_TORTURE_GC
        gy_quiescent_end();
        if (below(2) == 0) {
            gc_now(true);
        } else if (below(2) == 0) {
            look_all();
        } else {
            look_some();
        }
        gy_safepoint();
        gy_quiescent_begin();
        struct timespec nap = {0, (long)(200 + below(1000)) * 1000};
#else
        struct timespec nap = {0, 20 * 1000 * 1000};
#endif
        nanosleep(&nap, NULL);
    }
    for (int i = 0; i < opt_threads; i++) {
        pthread_join(workers[i].thread, NULL);
    }
#if GY_TORTURE_CONTINUOUS
    atomic_store(&continuous_stop, true);
    pthread_join(continuous_thread, NULL);
#endif
    gy_quiescent_end();
}

/* --- the test ---------------------------------------------------------------- */

static const gy_type *const other_types[] = {&table_type,      &gy_list_type,     &gy_dict_type,
                                             &gy_weakref_type, &gy_weakdict_type, &gy_weakset_type};
#define NOTHER (sizeof other_types / sizeof other_types[0])

#if GY_TORTURE_GC
/* What a look may return besides torture nodes. */
static bool is_known_type(const gy_type *t) {
    for (size_t k = 0; k < NOTHER; k++) {
        if (t == other_types[k]) {
            return true;
        }
    }
    return false;
}
#endif

/* Objects alive of every type the test makes (exact once the threads are
 * gone). */
static int64_t live_total(void) {
    int64_t live = 0;
    for (int k = 0; k < 3; k++) {
        gy_type_stats ts;
        gy_type_get_stats(&node_types[k], &ts);
        live += ts.live;
    }
    for (size_t k = 0; k < NOTHER; k++) {
        gy_type_stats ts;
        gy_type_get_stats(other_types[k], &ts);
        live += ts.live;
    }
    return live;
}

static void test_refcount_torture(void **state) {
    (void)state;
    GY_TEST_UP();
    worker *main_w = &workers[TID_MAIN];
    main_w->tid = TID_MAIN;
    me = main_w;
    build_op_table();
#if GY_TORTURE_GC
    /* Before any callback can bind it (gy_gc_callback_add publishes it);
     * seeded apart, so the workers' streams stay those of the seed. */
    uint64_t extra_seeder = opt_seed ^ 0x6c6c6f63u;
    workers[TID_COLLECTOR].tid = TID_COLLECTOR;
    workers[TID_COLLECTOR].rng = splitmix(&extra_seeder) | 1;
#if GY_TORTURE_CONTINUOUS
    workers[TID_CONTINUOUS].tid = TID_CONTINUOUS;
    workers[TID_CONTINUOUS].rng = splitmix(&extra_seeder) | 1;
#endif
#endif
#if GY_TORTURE_GC
    gy_errmsg gc_err = {0};
    CHECK(gy_gc_set_threshold(50, 5, 5, &gc_err) == GY_OK, "gy_gc_set_threshold: %s", gc_err.text);
    CHECK(gy_gc_callback_add(on_collection, NULL) == GY_OK, "gy_gc_callback_add");
    gy_gc_get_info(&gc_info0);
    atomic_store(&looks_on, true);
#endif

    CHECK(gy_new(&table_type, &tab) == GY_OK, "gy_new(table)");
    gy_list *l;
    gy_dict *d;
    gy_weakdict *wd;
    gy_weakset *ws;
    CHECK(gy_list_new(&l) == GY_OK && gy_dict_new(&d) == GY_OK && gy_weakdict_new(&wd) == GY_OK &&
              gy_weakset_new(&ws) == GY_OK,
          "containers");
    gy_store_steal(&tab->list, l);
    gy_store_steal(&tab->dict, d);
    gy_store_steal(&tab->wdict, wd);
    gy_store_steal(&tab->wset, ws);

    if (opt_widen) {
        widen_on(); /* the first half of the run */
    }
    gy_runtime_stats st1, st0;
    gy_runtime_get_stats(&stats0);
    st0 = stats0;

    uint64_t seeder = opt_seed;
    t_start = now_s();
    /* ops mode: the extension to see every event is timed from the start. */
    t_deadline = t_start + opt_seconds;
    for (int i = 0; i < opt_threads; i++) {
        workers[i].tid = i;
        workers[i].rng = splitmix(&seeder) | 1;
        assert_int_equal(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]), 0);
    }
    main_w->rng = splitmix(&seeder) | 1;
#if GY_TORTURE_CONTINUOUS
    assert_int_equal(
        pthread_create(&continuous_thread, NULL, continuous_main, &workers[TID_CONTINUOUS]), 0);
#endif
    pthread_t watchdog;
    assert_int_equal(pthread_create(&watchdog, NULL, watchdog_main, NULL), 0);
    join_workers();
    atomic_store(&watch_stop, true);
    pthread_join(watchdog, NULL);
    double elapsed = now_s() - t_start;
    if (atomic_exchange(&widened, false)) { /* a run too short to reach its half */
        widen_off();
    }
#ifndef GY_TORTURE_BEFORE_FIX
    atomic_store(&gy__race_window_hook, NULL);
#endif

    /* Tear down: finalizers no longer resurrect (nor look); the table's
     * clear drops every slot; this thread's safe points run what the
     * detached threads left in their queues (orphans: loop-affine frees,
     * queued merges, and the collector's hand-offs to loops that left). In
     * the collector variant what is left is cycles: full collections until
     * one finds nothing and nothing is alive (a set whose loop-affine
     * member's finalizer was handed to its gone owner goes in a later one). */
    atomic_store(&no_resurrect, true);
#if GY_TORTURE_GC
    atomic_store(&looks_on, false);
#endif
    gy_decref(tab);
    int drains = 0;
    bool quiet = !GY_TORTURE_GC; /* the last collection found nothing */
    while (drains < 4 || ((live_total() != 0 || !quiet) && drains < 1000)) {
        gy_safepoint();
#if GY_TORTURE_GC
        gy_gc_result res;
        CHECK(gy_test_collect(2, &res, NULL) == GY_OK, "gy_gc_collect (teardown)");
        gy_safepoint();
        quiet = res.collected == 0;
#endif
        if (++drains > 10) {
            struct timespec nap = {0, 1000 * 1000};
            nanosleep(&nap, NULL);
        }
    }
    gy_runtime_get_stats(&st1);

    uint64_t ev[EV_COUNT] = {0};
    /* Every record: the workers', main's and (collector variant) the
     * collector thread's and the continuous collecting thread's. */
    for (int i = 0; i < opt_threads + 3; i++) {
        for (int e = 0; e < EV_COUNT; e++) {
            ev[e] += workers[i].ev[e];
        }
    }
#ifndef GY_TORTURE_BEFORE_FIX
    uint64_t won = st1.last_ref_races - st0.last_ref_races;
    uint64_t lost = st1.tryincref_refused - st0.tryincref_refused;
#endif
    print_message("refcount_torture: seed %llu, %d threads, %llu ops in %.2f s (%.0f ops/s), "
                  "race windows widened %llu + %llu + %llu times\n",
                  (unsigned long long)opt_seed, opt_threads, (unsigned long long)ev[EV_ops],
                  elapsed, (double)ev[EV_ops] / elapsed,
                  (unsigned long long)atomic_load(&widened_hits[0]),
                  (unsigned long long)atomic_load(&widened_hits[1]),
                  (unsigned long long)atomic_load(&widened_hits[2]));
#ifndef GY_TORTURE_BEFORE_FIX
    print_message("  load_won (last_ref_races) %llu, load_lost (tryincref_refused) %llu\n",
                  (unsigned long long)won, (unsigned long long)lost);
#else
    print_message("  load_won / load_lost: not counted (GY_TORTURE_BEFORE_FIX)\n");
#endif
    print_message("  merges %llu, cascade_objects %llu, world_stops %llu, wakes %d, "
                  "weak callbacks unchecked %ld\n",
                  (unsigned long long)(st1.merges - st0.merges),
                  (unsigned long long)(st1.cascade_objects - st0.cascade_objects),
                  (unsigned long long)(st1.world_stops - st0.world_stops), atomic_load(&wakes),
                  atomic_load(&weak_unchecked));
    char line[128];
    size_t at = 0;
    for (int e = 0; e < EV_COUNT; e++) {
        at += (size_t)snprintf(line + at, sizeof line - at, " %s %llu", event_names[e],
                               (unsigned long long)ev[e]);
        if (at > 80 || e == EV_COUNT - 1) {
            print_message(" %s\n", line);
            at = 0;
        }
    }
    print_message("  ledger: created %ld, finalized %ld (expected %ld), cleared %ld (by the "
                  "collector %ld), freed %ld; traversed_cleared %ld; teardown: %d safe points\n",
                  atomic_load(&n_created), atomic_load(&n_finalized), atomic_load(&n_expected_fin),
                  atomic_load(&n_cleared), atomic_load(&n_gc_cleared), atomic_load(&n_freed),
                  atomic_load(&traversed_cleared), drains);
#if GY_TORTURE_GC
    gy_gc_gen_stats gs[GY_GC_GENERATIONS];
    gy_gc_get_stats(gs);
    gy_gc_info gi;
    gy_gc_get_info(&gi);
    uint64_t deferred = gi.deferred - gc_info0.deferred;
    print_message("  collections %llu/%llu/%llu (automatic %llu, explicit %llu), collected "
                  "%llu; deferred %llu, resurrections %llu, finalizers %llu, weakrefs_cleared "
                  "%llu; looks while a hand-off was pending %ld\n",
                  (unsigned long long)gs[0].collections, (unsigned long long)gs[1].collections,
                  (unsigned long long)gs[2].collections,
                  (unsigned long long)(gi.automatic - gc_info0.automatic),
                  (unsigned long long)(gi.explicit_ - gc_info0.explicit_),
                  (unsigned long long)(gs[0].collected + gs[1].collected + gs[2].collected),
                  (unsigned long long)deferred,
                  (unsigned long long)(gi.resurrections - gc_info0.resurrections),
                  (unsigned long long)(gi.finalizers - gc_info0.finalizers),
                  (unsigned long long)(gi.weakrefs_cleared - gc_info0.weakrefs_cleared),
                  atomic_load(&looks_posted));
    gy_gc_thread_stats thr;
    gy_gc_get_thread_stats(&thr);
    print_message("  gc mode %s; the collector's thread: runs %llu, busy %.1f ms, handshakes "
                  "%llu, world stops %llu (fallbacks %llu), aborted sets %llu, anomalies %llu\n",
                  gy_gc_mode_name(gy_gc_get_mode()), (unsigned long long)thr.runs,
                  (double)thr.busy_ns / 1e6, (unsigned long long)thr.handshakes,
                  (unsigned long long)thr.world_stops, (unsigned long long)thr.fallback_stops,
                  (unsigned long long)thr.aborted_sets, (unsigned long long)thr.anomalies);
    /* A recount refused with no late toucher is a missing barrier. */
    assert_int_equal(thr.anomalies, 0);
#if GY_TORTURE_CONTINUOUS
    print_message("  continuous: asked %llu/%llu/%llu, served by collections of generation "
                  "%llu/%llu/%llu, collected %llu\n",
                  (unsigned long long)continuous_asked[0], (unsigned long long)continuous_asked[1],
                  (unsigned long long)continuous_asked[2], (unsigned long long)continuous_served[0],
                  (unsigned long long)continuous_served[1],
                  (unsigned long long)continuous_served[2],
                  (unsigned long long)continuous_collected);
    /* The collector ran all along: every generation was collected. */
    for (int g = 0; g < GY_GC_GENERATIONS; g++) {
        if (gs[g].collections == 0 || continuous_asked[g] == 0) {
            fail_msg("continuous: generation %d: %llu collections, %llu asked by the continuous "
                     "thread",
                     g, (unsigned long long)gs[g].collections,
                     (unsigned long long)continuous_asked[g]);
        }
    }
#endif
    CHECK(gy_gc_callback_remove(on_collection, NULL) == GY_OK, "gy_gc_callback_remove");
#endif

    /* Every object finalized (as its type says), cleared and freed exactly
     * once (cleared twice when the collector cleared it first). */
    assert_int_equal(atomic_load(&n_cleared), atomic_load(&n_created));
    assert_int_equal(atomic_load(&n_freed), atomic_load(&n_created));
    assert_int_equal(atomic_load(&n_finalized), atomic_load(&n_expected_fin));
    uint64_t end = atomic_load(&next_serial);
    for (uint64_t c = 0; c <= (end - 1) >> CHUNK_SHIFT; c++) {
        chunk *ch = atomic_load(&chunks[c]);
        if (ch != RETIRED && ch != NULL) {
            uint64_t base = c << CHUNK_SHIFT, lim = base + CHUNK < end ? base + CHUNK : end;
            ledger_verify(ch, base, lim);
            free(ch);
        }
        atomic_store(&chunks[c], NULL);
    }
    for (int i = 0; i < 8; i++) {
        free(grave[i]);
        grave[i] = NULL;
    }
    long per_type = 0;
    for (int k = 0; k < 3; k++) {
        gy_type_stats ts;
        gy_type_get_stats(&node_types[k], &ts);
        assert_int_equal(ts.live, 0);
        assert_int_equal(ts.allocated, ts.freed);
        per_type += (long)ts.allocated;
    }
    assert_int_equal(per_type, atomic_load(&n_created));
    for (size_t k = 0; k < NOTHER; k++) {
        gy_type_stats ts;
        gy_type_get_stats(other_types[k], &ts);
        if (ts.live != 0) {
            fail_msg("%s: %lld still alive after %d safe points", other_types[k]->name,
                     (long long)ts.live, drains);
        }
    }

    /* Every kind of event happened. */
    int missing = 0;
    for (int e = 0; e < EV_COUNT; e++) {
        if (ev[e] == 0) {
            print_message("refcount_torture: event %s never happened\n", event_names[e]);
            missing++;
        }
    }
#ifndef GY_TORTURE_BEFORE_FIX
    if (won == 0 || lost == 0) {
        print_message("refcount_torture: load race %s never happened\n",
                      won == 0 ? "won (last_ref_races)" : "lost (tryincref_refused)");
        missing++;
    }
#endif
#if GY_TORTURE_GC
    if (deferred == 0) {
        print_message("refcount_torture: no trash set waited for its loop-affine members' "
                      "finalizers (gy_gc_info.deferred)\n");
        missing++;
    }
#endif
    if (missing > 0) {
        fail_msg("%d kinds of event never happened (seed %llu); run longer (--ops, --seconds)",
                 missing, (unsigned long long)opt_seed);
    }
    GY_TEST_DOWN(); /* the leak check */
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [--ops N] [--seconds N] [--seed S] [--threads N] [--no-widen]\n"
            "  --ops N      total operations over all threads (default %ld)\n"
            "  --seconds N  run for N seconds instead\n"
            "  --seed S     seed of the threads' operation sequences (default: time)\n"
            "  --threads N  worker threads, 4..%d (default %d); even ones are loops\n"
            "  --no-widen   never stretch the race windows (failpoints or hook)\n",
            argv0, DEFAULT_OPS, MAX_THREADS, DEFAULT_THREADS);
}

int main(int argc, char **argv) {
    opt_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *endp = NULL;
        if (strcmp(a, "--no-widen") == 0) {
            opt_widen = false;
            continue;
        }
        if (v == NULL) {
            usage(argv[0]);
            return 2;
        }
        i++;
        if (strcmp(a, "--ops") == 0) {
            opt_ops = strtol(v, &endp, 10);
        } else if (strcmp(a, "--seconds") == 0) {
            opt_seconds = strtod(v, &endp);
        } else if (strcmp(a, "--seed") == 0) {
            opt_seed = strtoull(v, &endp, 0);
        } else if (strcmp(a, "--threads") == 0) {
            opt_threads = (int)strtol(v, &endp, 10);
        } else {
            usage(argv[0]);
            return 2;
        }
        if (endp == NULL || *endp != '\0' || opt_ops <= 0 || opt_seconds < 0 || opt_threads < 4 ||
            opt_threads > MAX_THREADS) {
            usage(argv[0]);
            return 2;
        }
    }
    fprintf(stderr, "refcount_torture: seed %llu (replay: --seed %llu)\n",
            (unsigned long long)opt_seed, (unsigned long long)opt_seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refcount_torture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
