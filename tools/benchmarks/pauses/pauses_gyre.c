/* bench_pauses_gyre: Gyre's sides of the pauses benchmark (./tools/bench
 * pauses; registry.py has the rows and goals).
 *
 * The loop. Two mutator threads (the machine has 2 cores: saturated), each
 * owning half of a live heap of N tracked nodes (rings of 21, next and prev
 * references, their heads in a gy_list the thread owns). One *step* of a
 * mutator: allocate GARBAGE_RING (4) nodes, link them into a ring (next and
 * prev), drop them (4 objects of cyclic garbage); every OLD_STORE_EVERY-th
 * step (1 in 8 = 12.5% >= the 10%) also splices a new node into a
 * random old ring (4 gy_store into old objects and the new node; the
 * node spliced out dies by refcount, so the live heap stays N); then
 * gy_safepoint(). Every side runs the same number of steps per size
 * (GY_PAUSES_STEPS, both mutators together; the driver splits it evenly).
 *
 * Sides (argv[1]):
 *   collector     the collector on, in the mode GYRE_GC_MODE names: the
 *                 `gyre` side (concurrent) and the `stw` side (stw).
 *   break_cycles  the same loop, each garbage ring's next and prev fields
 *                 cleared by hand before it is dropped (refcounting frees
 *                 it at once) and automatic collection off (gy_gc_disable):
 *                 memory stays flat; no forced collections either.
 *
 * Full collections. Thresholds are the defaults (700, 10, 10), and
 * CPython's long-lived guard keeps automatic generation-2 collections rare
 * over a big old heap, so the driver (the main thread, attached, quiescent
 * while it sleeps) forces FULL_COLLECTIONS (3) with gy_gc_collect(2) when
 * the mutators pass 1/4, 2/4 and 3/4 of their steps (in concurrent mode the
 * collector's thread runs them, in stw mode the driver itself). The STOP
 * callback counts every generation-2 collection that completed during the
 * run (full_collections_N); aborted sets (gy_gc_thread_stats.aborted_sets),
 * deferred and resurrected sets (gy_gc_info) during the run are printed,
 * so "committed their sets" is checked, not assumed (all 0 today: the
 * collector never aborts). Fewer than 3 full collections prints a WARNING.
 *
 * What is measured (all times CLOCK_MONOTONIC, per mutator, per step):
 *   collector pause  an interval in which a mutator waited on the
 *                 collector, seen from the mutator: a gy_safepoint() call
 *                 that took over PARK_CHECK_NS and during which the
 *                 runtime's world-stop counter (gy_gc_get_info.world_stops)
 *                 advanced, i.e. the mutator was parked in a world stop
 *                 (time to reach the stop, for the other threads, included),
 *                 or during which the runtime's count of assist pauses
 *                 advanced: the mutator was throttled, waiting for the
 *                 collector (collector/DESIGN.md 9.15; an over-count when
 *                 the other mutator's assist and a slow safe point of this
 *                 one coincide).
 *                 In stw mode the collecting mutator's safe point runs the
 *                 whole collection (its finalize and clear phases too): the
 *                 pause that mutator sees. Parks of both mutators in the same
 *                 stop (the same counter value) make one pause, the longer of
 *                 the two: collector_pause_max_N is the longest pause of the
 *                 run, collector_pause_p99_N the 99th percentile of pauses
 *                 (one world stop per collection here: no finalizers, so no
 *                 resurrection check; so per pause = per collection).
 *                 Limits: a park shorter than PARK_CHECK_NS is not seen
 *                 (its stop is then attributed to the next slow safe point,
 *                 an over-count); the safe point that parks may also run
 *                 pending frees after the stop (counted as pause).
 *                 Cross-check from the library: lib_pause_max_N and
 *                 lib_pause_p99_N, each collection's stop-the-world time
 *                 (gy_gc_gen_stats.pause_ns deltas read in a STOP gc
 *                 callback: from all threads parked to resume, so without
 *                 the time to reach the stop).
 *   mmu_10ms_N    minimum mutator utilization over 10 ms windows: for each
 *                 mutator, 1 - (time parked inside the window) / 10 ms, the
 *                 minimum over every window inside that mutator's run (the
 *                 worst window starts at a pause's start or ends at a
 *                 pause's end: those are the windows tried), the minimum of
 *                 the two mutators.
 *   step_p999_N   99.9th percentile of per-step wall time (the step and its
 *                 safe point), both mutators' steps, from a log-linear
 *                 histogram (64 buckets per octave: within 1.6%).
 *   garbage_created_N  cyclic garbage objects created per second of the run
 *                 (4 per step; in break_cycles the same rings, broken).
 *   garbage_freed_N    objects the collector freed (sum of
 *                 gy_gc_gen_stats.collected deltas) per second of the run:
 *                 garbage still outstanding when the steps end counts
 *                 against it.
 *   outstanding_garbage_max_N  max over the run of garbage created minus
 *                 freed, sampled by each mutator every 1024 steps.
 *   throughput_N  steps per second of both mutators (total steps over the
 *                 time from the first mutator's start to the last one's end).
 *   rss_N         resident MiB at the end of the run (heap and garbage).
 * Also printed: zgc_goal (1000 us) and ideal (1): the fixed targets,
 * which the registry uses as anchors.
 *
 * Known cost outside the collector: at 10M the arena's refill (core/src/
 * arena.c alloc_cell walks the type's whole segment list for one with room)
 * dominates every Gyre side (92% of break_cycles' samples under perf), so
 * the 10M steps are slow on all three Gyre sides alike.
 *
 * Today (collector/DESIGN.md 9.0: stage 3b not started) every collection in
 * concurrent mode still stops the world for its whole marking, so the pause
 * rows MISS and grow with the heap: that is what this benchmark is for.
 *
 * Environment: GY_PAUSES_SIZES (default "100k,1M,10M"; k and M suffixes),
 * GY_PAUSES_STEPS (steps per size, both mutators together; default 2000000),
 * GYRE_GC_MODE (stw | concurrent); GY_PAUSES_VERBOSE=1 prints one line per
 * collection on stderr. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gyre/gc.h"
#include "gyre/gyre.h"

enum {
    MUTATORS = 2,
    LIVE_RING = 21,      /* nodes per ring of the live heap */
    GARBAGE_RING = 4,    /* nodes of cyclic garbage per step */
    OLD_STORE_EVERY = 8, /* 1 step in 8 also splices into an old ring */
    FULL_COLLECTIONS = 3,
    SAMPLE_EVERY = 1024, /* steps between samples of outstanding garbage */
    HIST_SUB_BITS = 6,   /* log-linear histogram: 64 buckets per octave */
    HIST_BUCKETS = 64 * 60,
};
#define PARK_CHECK_NS 1000u       /* a safe point slower than this may have parked */
#define MMU_WINDOW_NS 10000000ull /* 10 ms */
#define DEFAULT_STEPS 2000000ull  /* per size, both mutators */
#define DEFAULT_SIZES "100k,1M,10M"

#include "../ring_node.h" /* node, node_traverse, node_clear */

static gy_type node_type = {
    .name = "pauses_node", .size = sizeof(node), .traverse = node_traverse, .clear = node_clear};

static void die(const char *what, int rc) {
    fprintf(stderr, "bench_pauses_gyre: %s: %s\n", what, gy_strerror(rc));
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rand_next(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* --- growable arrays and the step histogram -------------------------------- */

typedef struct park {
    uint64_t t0, t1;  /* the safe point's start and end */
    uint64_t stop_no; /* world_stops read after it: which stop it waited in */
} park;

typedef struct park_vec {
    park *v;
    size_t n, cap;
} park_vec;

/* Room for element n of an array of `size`-byte elements with capacity
 * *cap: the array, grown (doubled, 1024 at first) when it is full. */
static void *vec_room(void *v, size_t *cap, size_t n, size_t size) {
    if (n < *cap) {
        return v;
    }
    *cap = *cap ? *cap * 2 : 1024;
    v = realloc(v, *cap * size);
    if (v == NULL) {
        die("realloc", GY_ENOMEM);
    }
    return v;
}

static void park_push(park_vec *pv, park p) {
    pv->v = vec_room(pv->v, &pv->cap, pv->n, sizeof *pv->v);
    pv->v[pv->n++] = p;
}

typedef struct u64_vec {
    uint64_t *v;
    size_t n, cap;
} u64_vec;

static void u64_push(u64_vec *uv, uint64_t x) {
    uv->v = vec_room(uv->v, &uv->cap, uv->n, sizeof *uv->v);
    uv->v[uv->n++] = x;
}

static int u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile q (0..1) of v[0..n) (sorted here); 0 when empty. */
static uint64_t percentile(uint64_t *v, size_t n, double q) {
    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof *v, u64_cmp);
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return v[rank - 1];
}

static size_t hist_index(uint64_t v) {
    if (v < (1u << HIST_SUB_BITS)) {
        return (size_t)v;
    }
    int e = 63 - __builtin_clzll(v); /* >= HIST_SUB_BITS */
    size_t sub = (size_t)(v >> (e - HIST_SUB_BITS)) & ((1u << HIST_SUB_BITS) - 1);
    size_t i = (size_t)(e - HIST_SUB_BITS + 1) * (1u << HIST_SUB_BITS) + sub;
    return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

/* The upper bound of bucket i (the value a percentile reports). */
static uint64_t hist_upper(size_t i) {
    if (i < (1u << HIST_SUB_BITS)) {
        return i;
    }
    int e = (int)(i >> HIST_SUB_BITS) + HIST_SUB_BITS - 1;
    uint64_t sub = i & ((1u << HIST_SUB_BITS) - 1);
    return (((1ull << HIST_SUB_BITS) + sub + 1) << (e - HIST_SUB_BITS)) - 1;
}

/* --- the shared state of one size's run ----------------------------------- */

typedef struct mutator {
    pthread_t tid;
    int index;
    size_t live; /* nodes of the live heap this mutator owns */
    uint64_t steps;
    uint64_t seed;
    gy_list *heads;
    size_t nheads;
    _Atomic uint64_t done; /* steps done (the driver reads it) */
    uint64_t t_start, t_end;
    uint64_t hist[HIST_BUCKETS];
    park_vec parks;
    uint64_t last_stops;   /* world_stops at this mutator's last check */
    uint64_t last_assists; /* assist pauses (all threads) at its last check */
    uint64_t outstanding_max;
    uint64_t freed_end; /* sum of collected when this mutator finished */
} mutator;

static struct {
    bool break_cycles;
    pthread_barrier_t barrier;
    mutator mut[MUTATORS];
    /* Set by the driver between barriers, read by the mutators after them. */
    uint64_t freed_base; /* sum of collected at the start */
    /* The callback's record of this run. */
    pthread_mutex_t lock;
    bool recording;
    bool verbose;            /* GY_PAUSES_VERBOSE: one stderr line per collection */
    uint64_t pause_sum_last; /* sum of pause_ns at the last STOP */
    u64_vec lib_pauses;      /* per collection, during the run */
    uint64_t full_collections, collections;
} run;

static uint64_t freed_total(void) {
    gy_gc_gen_stats st[GY_GC_GENERATIONS];
    gy_gc_get_stats(st);
    uint64_t s = 0;
    for (int g = 0; g < GY_GC_GENERATIONS; g++) {
        s += st[g].collected;
    }
    return s;
}

static uint64_t pause_total(void) {
    gy_gc_gen_stats st[GY_GC_GENERATIONS];
    gy_gc_get_stats(st);
    uint64_t s = 0;
    for (int g = 0; g < GY_GC_GENERATIONS; g++) {
        s += st[g].pause_ns;
    }
    return s;
}

static uint64_t world_stops(void) {
    gy_gc_info info;
    gy_gc_get_info(&info);
    return info.world_stops;
}

/* Allocation-throttling waits so far, every thread (gy_pause_stats). */
#define ASSIST_NO_BASE (UINT64_MAX / 2)
static uint64_t assists(void) {
    gy_pause_stats p;
    gy_runtime_get_pause_stats(&p);
    return p.count[GY_PAUSE_ASSIST];
}

/* Runs on the collecting thread, no Gyre lock held: each collection's
 * stop-the-world time, from the statistics it has just updated. */
static void on_gc(gy_gc_phase phase, const gy_gc_callback_info *info, void *arg) {
    (void)arg;
    if (phase != GY_GC_STOP) {
        return;
    }
    uint64_t total = pause_total();
    pthread_mutex_lock(&run.lock);
    uint64_t delta = total - run.pause_sum_last;
    run.pause_sum_last = total;
    if (run.recording) {
        u64_push(&run.lib_pauses, delta);
        run.collections++;
        if (info->generation == 2) {
            run.full_collections++;
        }
    }
    if (run.verbose) {
        fprintf(stderr, "# gc gen %d: collected %llu, %.1f us, stopped %.1f us%s\n",
                info->generation, (unsigned long long)info->collected,
                (double)info->duration_ns / 1e3, (double)delta / 1e3,
                run.recording ? "" : " (outside the run)");
    }
    pthread_mutex_unlock(&run.lock);
}

static void barrier_quiescent(void) {
    gy_quiescent_begin(); /* a world stop must not wait for a thread at the barrier */
    pthread_barrier_wait(&run.barrier);
    gy_quiescent_end();
}

/* --- the mutators ---------------------------------------------------------- */

static void build_heap(mutator *m) {
    int rc = gy_list_new(&m->heads);
    if (rc != GY_OK) {
        die("gy_list_new", rc);
    }
    m->nheads = m->live / LIVE_RING;
    for (size_t c = 0; c < m->nheads; c++) {
        node *head = ring_make(&node_type, LIVE_RING);
        if ((rc = gy_list_append(m->heads, head)) != GY_OK) {
            die("gy_list_append", rc);
        }
        gy_decref(head);
        if ((c & 1023) == 0) {
            gy_safepoint();
        }
    }
}

/* Replace the second node of a random old ring by a new one: four stores
 * into old objects (and the new node); the node cut out dies by refcount. */
static void splice_old(mutator *m) {
    size_t i = (size_t)(rand_next(&m->seed) % m->nheads);
    node *h = (node *)gy_list_get(m->heads, i);
    node *x = (node *)gy_load(&h->next);
    node *z = (node *)gy_load(&x->next);
    node *y = ring_node_new(&node_type);
    gy_store(&y->prev, h);
    gy_store(&y->next, z);
    gy_store(&h->next, y);
    gy_store(&z->prev, y);
    gy_decref(y);
    gy_decref(z);
    gy_decref(x); /* its last reference: freed here */
    gy_decref(h);
}

/* One ring of cyclic garbage; broken by hand first on the break_cycles side
 * (every next and prev cleared, so refcounting frees it at once). */
static void garbage_ring(void) {
    node *r[GARBAGE_RING];
    for (int i = 0; i < GARBAGE_RING; i++) {
        r[i] = ring_node_new(&node_type);
    }
    for (int i = 0; i < GARBAGE_RING; i++) {
        ring_link_next(r[i], r[(i + 1) % GARBAGE_RING]);
    }
    if (run.break_cycles) {
        for (int i = 0; i < GARBAGE_RING; i++) {
            gy_ref_clear(&r[i]->next);
            gy_ref_clear(&r[i]->prev);
        }
    }
    for (int i = 0; i < GARBAGE_RING; i++) {
        gy_decref(r[i]);
    }
}

static void *mutator_main(void *arg) {
    mutator *m = arg;
    gy_errmsg err = {0};
    int rc = gy_thread_attach(NULL, &err);
    if (rc != GY_OK) {
        fprintf(stderr, "attach: %s\n", err.text);
        exit(1);
    }
    build_heap(m);
    barrier_quiescent(); /* A: heaps built */
    barrier_quiescent(); /* B: the driver collected and took its baseline */
    m->last_stops = world_stops();
    m->last_assists = assists();
    uint64_t t_prev = now_ns();
    m->t_start = t_prev;
    for (uint64_t s = 0; s < m->steps; s++) {
        garbage_ring();
        if (s % OLD_STORE_EVERY == 0) {
            splice_old(m);
        }
        uint64_t t_sp = now_ns();
        gy_safepoint();
        uint64_t t_end = now_ns();
        if (t_end - t_sp > PARK_CHECK_NS) {
            uint64_t w = world_stops();
            uint64_t a = assists();
            if (w != m->last_stops) {
                m->last_stops = w;
                park_push(&m->parks, (park){t_sp, t_end, w});
            } else if (a != m->last_assists) {
                /* Throttled (an assist pause): a pause of its own, never
                 * merged with another mutator's (numbers above every stop). */
                park_push(&m->parks, (park){t_sp, t_end, ASSIST_NO_BASE + a});
            }
            m->last_assists = a;
        }
        m->hist[hist_index(t_end - t_prev)]++;
        t_prev = t_end;
        /* relaxed: a progress counter; the barrier orders the final value. */
        atomic_store_explicit(&m->done, s + 1, memory_order_relaxed);
        if ((s + 1) % SAMPLE_EVERY == 0) {
            uint64_t freed = freed_total() - run.freed_base;
            uint64_t created = 0;
            for (int k = 0; k < MUTATORS; k++) {
                created += atomic_load_explicit(&run.mut[k].done, memory_order_relaxed);
            }
            created *= GARBAGE_RING;
            uint64_t out = created > freed ? created - freed : 0;
            if (out > m->outstanding_max) {
                m->outstanding_max = out;
            }
        }
    }
    m->t_end = now_ns();
    m->freed_end = freed_total();
    barrier_quiescent(); /* C: the driver reads the run's figures */
    barrier_quiescent(); /* D: collection is off again */
    gy_decref(m->heads);
    m->heads = NULL;
    gy_thread_detach();
    return NULL;
}

/* --- the figures ----------------------------------------------------------- */

/* Time inside [a, b) covered by the sorted, disjoint parks pv (prefix[i] =
 * total length of parks 0..i-1). */
static uint64_t parked_in(const park_vec *pv, const uint64_t *prefix, uint64_t a, uint64_t b) {
    /* j: first park ending after a; k: one past the last park starting before b. */
    size_t lo = 0, hi = pv->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pv->v[mid].t1 <= a) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    size_t j = lo;
    lo = j, hi = pv->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pv->v[mid].t0 < b) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    size_t k = lo;
    if (k <= j) {
        return 0;
    }
    uint64_t sum = prefix[k] - prefix[j];
    if (pv->v[j].t0 < a) {
        sum -= a - pv->v[j].t0;
    }
    if (pv->v[k - 1].t1 > b) {
        sum -= pv->v[k - 1].t1 - b;
    }
    return sum;
}

/* Minimum utilization of one mutator over every window of MMU_WINDOW_NS
 * inside its run (the whole run when it is shorter). */
static double mmu(const mutator *m) {
    const park_vec *pv = &m->parks;
    if (pv->n == 0) {
        return 1.0;
    }
    uint64_t *prefix = malloc((pv->n + 1) * sizeof *prefix);
    if (prefix == NULL) {
        die("malloc", GY_ENOMEM);
    }
    prefix[0] = 0;
    for (size_t i = 0; i < pv->n; i++) {
        prefix[i + 1] = prefix[i] + (pv->v[i].t1 - pv->v[i].t0);
    }
    uint64_t w = MMU_WINDOW_NS;
    uint64_t lo = m->t_start, hi = m->t_end > w + m->t_start ? m->t_end - w : m->t_start;
    if (m->t_end - m->t_start < w) {
        w = m->t_end - m->t_start;
    }
    uint64_t worst = 0;
    for (size_t i = 0; i < pv->n; i++) {
        /* The window starting at this park's start, and the one ending at its end. */
        uint64_t starts[2] = {pv->v[i].t0, pv->v[i].t1 > w ? pv->v[i].t1 - w : 0};
        for (int c = 0; c < 2; c++) {
            uint64_t a = starts[c] < lo ? lo : starts[c] > hi ? hi : starts[c];
            uint64_t p = parked_in(pv, prefix, a, a + w);
            if (p > worst) {
                worst = p;
            }
        }
    }
    free(prefix);
    return worst >= w ? 0.0 : 1.0 - (double)worst / (double)w;
}

typedef struct stop_park {
    uint64_t stop_no, ns;
} stop_park;

static int stop_park_cmp(const void *a, const void *b) {
    const stop_park *x = a, *y = b;
    return x->stop_no < y->stop_no ? -1 : x->stop_no > y->stop_no;
}

/* Pauses, one per world stop: the longer park of the two mutators in it. */
static void pauses(u64_vec *out) {
    size_t n = 0;
    for (int k = 0; k < MUTATORS; k++) {
        n += run.mut[k].parks.n;
    }
    stop_park *all = malloc((n + 1) * sizeof *all);
    if (all == NULL) {
        die("malloc", GY_ENOMEM);
    }
    size_t i = 0;
    for (int k = 0; k < MUTATORS; k++) {
        for (size_t j = 0; j < run.mut[k].parks.n; j++) {
            const park *p = &run.mut[k].parks.v[j];
            all[i++] = (stop_park){p->stop_no, p->t1 - p->t0};
        }
    }
    qsort(all, n, sizeof *all, stop_park_cmp);
    for (i = 0; i < n;) {
        uint64_t longest = 0, stop = all[i].stop_no;
        for (; i < n && all[i].stop_no == stop; i++) {
            longest = all[i].ns > longest ? all[i].ns : longest;
        }
        u64_push(out, longest);
    }
    free(all);
}

static uint64_t hist_percentile(const uint64_t *h, double q) {
    uint64_t total = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        total += h[i];
    }
    uint64_t want = (uint64_t)(q * (double)total + 0.999999), seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h[i];
        if (seen >= want && h[i] > 0) {
            return hist_upper(i);
        }
    }
    return 0;
}

static double rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return (double)kib / 1024.0;
}

/* --- the driver ------------------------------------------------------------ */

static void collect_full(void) {
    gy_errmsg err = {0};
    int rc = gy_gc_collect(2, NULL, &err);
    if (rc != GY_OK) {
        fprintf(stderr, "gy_gc_collect: %s\n", err.text);
        exit(1);
    }
}

static void sleep_quiescent(long ns) {
    struct timespec ts = {0, ns};
    gy_quiescent_begin();
    nanosleep(&ts, NULL);
    gy_quiescent_end();
}

static void run_size(const char *label, size_t n, uint64_t steps) {
    for (int k = 0; k < MUTATORS; k++) {
        memset(&run.mut[k], 0, sizeof run.mut[k]);
        run.mut[k].index = k;
        run.mut[k].live = n / MUTATORS;
        run.mut[k].steps = steps / MUTATORS;
        run.mut[k].seed = 0x9E3779B97F4A7C15ull * (uint64_t)(k + 1);
    }
    run.lib_pauses.n = 0;
    run.full_collections = run.collections = 0;
    pthread_barrier_init(&run.barrier, NULL, MUTATORS + 1);
    gy_gc_disable();
    uint64_t t_build = now_ns();
    for (int k = 0; k < MUTATORS; k++) {
        if (pthread_create(&run.mut[k].tid, NULL, mutator_main, &run.mut[k]) != 0) {
            die("pthread_create", GY_ENOMEM);
        }
    }
    barrier_quiescent(); /* A */
    collect_full();      /* the heap is old and nothing else is left */
    double build_s = (double)(now_ns() - t_build) / 1e9;

    gy_gc_thread_stats ts0, ts1;
    gy_gc_info in0, in1;
    gy_gc_get_thread_stats(&ts0);
    gy_gc_get_info(&in0);
    pthread_mutex_lock(&run.lock);
    run.freed_base = freed_total();
    run.pause_sum_last = pause_total();
    run.recording = true;
    pthread_mutex_unlock(&run.lock);
    if (!run.break_cycles) {
        gy_gc_enable();
    }
    barrier_quiescent(); /* B: the run starts */

    uint64_t total = (steps / MUTATORS) * MUTATORS;
    int forced = 0;
    for (;;) {
        uint64_t done = 0;
        for (int k = 0; k < MUTATORS; k++) {
            done += atomic_load_explicit(&run.mut[k].done, memory_order_relaxed);
        }
        if (done >= total) {
            break;
        }
        if (!run.break_cycles && forced < FULL_COLLECTIONS &&
            done >= total / (FULL_COLLECTIONS + 1) * (uint64_t)(forced + 1)) {
            collect_full();
            forced++;
        } else {
            sleep_quiescent(200000);
        }
    }
    barrier_quiescent(); /* C: both mutators are done */
    gy_gc_disable();
    pthread_mutex_lock(&run.lock);
    run.recording = false;
    pthread_mutex_unlock(&run.lock);
    gy_gc_get_thread_stats(&ts1);
    gy_gc_get_info(&in1);
    double rss = rss_mib();
    barrier_quiescent(); /* D: the mutators drop their heaps and detach */
    for (int k = 0; k < MUTATORS; k++) {
        pthread_join(run.mut[k].tid, NULL);
    }
    uint64_t t_free = now_ns();
    collect_full(); /* the heaps' rings, owned by no thread now */
    double free_s = (double)(now_ns() - t_free) / 1e9;
    pthread_barrier_destroy(&run.barrier);

    /* The figures. */
    uint64_t t0 = UINT64_MAX, t1 = 0, freed_end = 0, outstanding = 0;
    uint64_t hist[HIST_BUCKETS] = {0};
    double mmu_min = 1.0;
    for (int k = 0; k < MUTATORS; k++) {
        const mutator *m = &run.mut[k];
        t0 = m->t_start < t0 ? m->t_start : t0;
        t1 = m->t_end > t1 ? m->t_end : t1;
        freed_end = m->freed_end > freed_end ? m->freed_end : freed_end;
        outstanding = m->outstanding_max > outstanding ? m->outstanding_max : outstanding;
        for (size_t i = 0; i < HIST_BUCKETS; i++) {
            hist[i] += m->hist[i];
        }
        double u = mmu(m);
        mmu_min = u < mmu_min ? u : mmu_min;
    }
    double secs = (double)(t1 - t0) / 1e9;
    u64_vec p = {0};
    pauses(&p);
    uint64_t pause_max = 0;
    for (size_t i = 0; i < p.n; i++) {
        pause_max = p.v[i] > pause_max ? p.v[i] : pause_max;
    }
    uint64_t pause_p99 = percentile(p.v, p.n, 0.99);
    uint64_t lib_max = 0;
    for (size_t i = 0; i < run.lib_pauses.n; i++) {
        lib_max = run.lib_pauses.v[i] > lib_max ? run.lib_pauses.v[i] : lib_max;
    }
    uint64_t lib_p99 = percentile(run.lib_pauses.v, run.lib_pauses.n, 0.99);
    uint64_t created = total * GARBAGE_RING;
    uint64_t freed = freed_end - run.freed_base;

    printf("@bench collector_pause_max_%s %.1f us\n", label, (double)pause_max / 1e3);
    printf("@bench collector_pause_p99_%s %.1f us\n", label, (double)pause_p99 / 1e3);
    printf("@bench lib_pause_max_%s %.1f us\n", label, (double)lib_max / 1e3);
    printf("@bench lib_pause_p99_%s %.1f us\n", label, (double)lib_p99 / 1e3);
    printf("@bench mmu_10ms_%s %.4f ratio\n", label, mmu_min);
    printf("@bench step_p50_%s %.3f us\n", label, (double)hist_percentile(hist, 0.5) / 1e3);
    printf("@bench step_p99_%s %.3f us\n", label, (double)hist_percentile(hist, 0.99) / 1e3);
    printf("@bench step_p999_%s %.3f us\n", label, (double)hist_percentile(hist, 0.999) / 1e3);
    printf("@bench step_max_%s %.1f us\n", label, (double)hist_percentile(hist, 1.0) / 1e3);
    printf("@bench garbage_created_%s %.0f objects/s\n", label, (double)created / secs);
    printf("@bench garbage_freed_%s %.0f objects/s\n", label, (double)freed / secs);
    printf("@bench outstanding_garbage_max_%s %llu objects\n", label,
           (unsigned long long)outstanding);
    printf("@bench throughput_%s %.0f steps/s\n", label, (double)total / secs);
    printf("@bench full_collections_%s %llu count\n", label,
           (unsigned long long)run.full_collections);
    printf("@bench collections_%s %llu count\n", label, (unsigned long long)run.collections);
    printf("@bench pauses_%s %zu count\n", label, p.n);
    printf("@bench rss_%s %.1f MiB\n", label, rss);
    printf("# %s: %zu live nodes, %llu steps in %.2f s (heap built in %.2f s, freed in %.2f s);"
           " %llu created, %llu freed; world stops %llu; forced full collections %d;"
           " aborted sets %llu, deferred %llu, resurrections %llu; collector thread runs %llu,"
           " busy %.2f s\n",
           label, n, (unsigned long long)total, secs, build_s, free_s, (unsigned long long)created,
           (unsigned long long)freed, (unsigned long long)(in1.world_stops - in0.world_stops),
           forced, (unsigned long long)(ts1.aborted_sets - ts0.aborted_sets),
           (unsigned long long)(in1.deferred - in0.deferred),
           (unsigned long long)(in1.resurrections - in0.resurrections),
           (unsigned long long)(ts1.runs - ts0.runs), (double)(ts1.busy_ns - ts0.busy_ns) / 1e9);
    if (!run.break_cycles && run.full_collections < FULL_COLLECTIONS) {
        printf("# WARNING %s: only %llu full collections completed during the run\n", label,
               (unsigned long long)run.full_collections);
    }
    fflush(stdout);
    free(p.v);
    for (int k = 0; k < MUTATORS; k++) {
        free(run.mut[k].parks.v);
    }
}

/* "100k" -> 100000, "1M" -> 1000000; 0 on a bad size. */
static size_t parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (*end == 'k' || *end == 'K') {
        v *= 1e3;
        end++;
    } else if (*end == 'M' || *end == 'm') {
        v *= 1e6;
        end++;
    }
    return (*end == '\0' && v >= LIVE_RING * MUTATORS) ? (size_t)v : 0;
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "collector") != 0 && strcmp(argv[1], "break_cycles") != 0)) {
        fprintf(stderr,
                "usage: %s collector|break_cycles (GYRE_GC_MODE, GY_PAUSES_SIZES, "
                "GY_PAUSES_STEPS in the environment)\n",
                argv[0]);
        return 2;
    }
    run.break_cycles = strcmp(argv[1], "break_cycles") == 0;
    const char *sizes = getenv("GY_PAUSES_SIZES");
    sizes = sizes != NULL && *sizes != '\0' ? sizes : DEFAULT_SIZES;
    const char *steps_env = getenv("GY_PAUSES_STEPS");
    uint64_t steps = steps_env != NULL ? strtoull(steps_env, NULL, 10) : DEFAULT_STEPS;
    if (steps < MUTATORS * (FULL_COLLECTIONS + 1)) {
        fprintf(stderr, "GY_PAUSES_STEPS too small\n");
        return 2;
    }
    pthread_mutex_init(&run.lock, NULL);
    run.verbose = getenv("GY_PAUSES_VERBOSE") != NULL;
    gy_errmsg err = {0};
    if (gy_runtime_init(NULL, &err) != GY_OK || gy_thread_attach(NULL, &err) != GY_OK) {
        fprintf(stderr, "init: %s\n", err.text);
        return 1;
    }
    int rc = gy_gc_callback_add(on_gc, NULL);
    if (rc != GY_OK) {
        die("gy_gc_callback_add", rc);
    }
    printf("# side %s, gc_mode %s, sizes %s, %llu steps per size\n", argv[1],
           gy_gc_mode_name(gy_gc_get_mode()), sizes, (unsigned long long)steps);
    /* The fixed targets, printed so the registry can name them. */
    printf("@bench zgc_goal 1000 us\n@bench ideal 1 ratio\n");
    char buf[256];
    snprintf(buf, sizeof buf, "%s", sizes);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        size_t n = parse_size(tok);
        if (n == 0) {
            fprintf(stderr, "bad size '%s' in GY_PAUSES_SIZES\n", tok);
            return 2;
        }
        run_size(tok, n, steps);
    }
    gy_gc_callback_remove(on_gc, NULL);
    gy_thread_detach();
    if (gy_runtime_shutdown(&err) != GY_OK) {
        fprintf(stderr, "shutdown: %s\n", err.text);
        return 1;
    }
    free(run.lib_pauses.v);
    return 0;
}
