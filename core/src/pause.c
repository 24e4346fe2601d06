/* core/src/pause.c: pauses timed by the threads themselves, their
 * histograms, the minimum mutator utilisation, and the time to safepoint
 * of world stops (gyre/runtime.h gy_pause_stats; collector/DESIGN.md 9.13).
 *
 * Each heap keeps its own counters, written only by its thread with a
 * relaxed load and store (no RMW on the paths that pause), and read by
 * gy_runtime_get_pause_stats with relaxed loads: statistics, exact when
 * nothing runs. */
#include <time.h>

#include "heap.h"

static const char *const kind_names[GY_PAUSE_KINDS] = {
    "stop",
    "collector_work",
    "assist",
    "program_cascade",
};

const char *gy_pause_kind_name(int kind) {
    return kind >= 0 && kind < GY_PAUSE_KINDS ? kind_names[kind] : NULL;
}

uint64_t gy__clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Bucket 0: under 1 us; b: [2^(b-1), 2^b) us; the last: everything above. */
static unsigned bucket_of(uint64_t ns) {
    uint64_t us = ns / 1000;
    unsigned b = 0;
    while (us > 0 && b < GY_PAUSE_BUCKETS - 1) {
        us >>= 1;
        b++;
    }
    return b;
}

static void owner_max(_Atomic uint64_t *field, uint64_t v) {
    if (atomic_load_explicit(field, memory_order_relaxed) < v) {
        atomic_store_explicit(field, v, memory_order_relaxed);
    }
}

void gy__pause_init(gy__pause_rec *rec) {
    atomic_store_explicit(&rec->mmu_ppm[0], 1000000u, memory_order_relaxed);
    atomic_store_explicit(&rec->mmu_ppm[1], 1000000u, memory_order_relaxed);
    rec->ring_n = rec->ring_next = 0;
}

/* The MMU of the window of `w` ns that ends at `end`, over the ring. */
static uint32_t window_ppm(const gy__pause_rec *rec, uint64_t end, uint64_t w) {
    uint64_t from = end > w ? end - w : 0, paused = 0;
    for (uint32_t i = 0; i < rec->ring_n; i++) {
        uint64_t s = rec->ring_start[i] > from ? rec->ring_start[i] : from;
        uint64_t e = rec->ring_end[i] < end ? rec->ring_end[i] : end;
        if (e > s) {
            paused += e - s;
        }
    }
    return paused >= w ? 0 : (uint32_t)(1000000u - paused * 1000000u / w);
}

void gy__pause_record(gy__heap *h, int kind, uint64_t start_ns, uint64_t end_ns) {
    if (h == NULL || kind < 0 || kind >= GY_PAUSE_KINDS || end_ns < start_ns) {
        return;
    }
    gy__pause_rec *rec = &h->pause;
    uint64_t ns = end_ns - start_ns;
    GY__COUNTER_ADD(rec->count[kind], 1);
    GY__COUNTER_ADD(rec->total_ns[kind], ns);
    owner_max(&rec->max_ns[kind], ns);
    GY__COUNTER_ADD(rec->hist[kind][bucket_of(ns)], 1);
    if (kind == GY_PAUSE_PROGRAM_CASCADE) {
        return; /* not the collector's: outside the MMU */
    }
    rec->ring_start[rec->ring_next] = start_ns;
    rec->ring_end[rec->ring_next] = end_ns;
    rec->ring_next = (rec->ring_next + 1) % GY__PAUSE_RING;
    if (rec->ring_n < GY__PAUSE_RING) {
        rec->ring_n++;
    }
    /* The worst window ends at the end of some pause: judge this one's. */
    static const uint64_t windows[2] = {1000000u, 10000000u};
    for (int w = 0; w < 2; w++) {
        uint32_t ppm = window_ppm(rec, end_ns, windows[w]);
        if (ppm < atomic_load_explicit(&rec->mmu_ppm[w], memory_order_relaxed)) {
            atomic_store_explicit(&rec->mmu_ppm[w], ppm, memory_order_relaxed);
        }
    }
}

void gy__pause_ttsp(uint64_t ns) {
    /* threads_lock held: one stopper at a time writes these. */
    GY__COUNTER_ADD(gy__rt.ttsp_count, 1);
    GY__COUNTER_ADD(gy__rt.ttsp_total_ns, ns);
    owner_max(&gy__rt.ttsp_max_ns, ns);
    GY__COUNTER_ADD(gy__rt.ttsp_hist[bucket_of(ns)], 1);
}

static uint64_t rd(const _Atomic uint64_t *p) {
    return atomic_load_explicit(p, memory_order_relaxed);
}

void gy_runtime_get_pause_stats(gy_pause_stats *out) {
    *out = (gy_pause_stats){.mmu_1ms = 1.0, .mmu_10ms = 1.0};
    if (!gy_runtime_running()) {
        return;
    }
    uint32_t worst[2] = {1000000u, 1000000u};
    gy__threads_lock();
    for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
        const gy__pause_rec *rec = &h->pause;
        for (int k = 0; k < GY_PAUSE_KINDS; k++) {
            out->count[k] += rd(&rec->count[k]);
            out->total_ns[k] += rd(&rec->total_ns[k]);
            uint64_t m = rd(&rec->max_ns[k]);
            out->max_ns[k] = m > out->max_ns[k] ? m : out->max_ns[k];
            for (int b = 0; b < GY_PAUSE_BUCKETS; b++) {
                out->hist[k][b] += rd(&rec->hist[k][b]);
            }
        }
        for (int w = 0; w < 2; w++) {
            uint32_t ppm = atomic_load_explicit(&rec->mmu_ppm[w], memory_order_relaxed);
            worst[w] = ppm < worst[w] ? ppm : worst[w];
        }
    }
    pthread_mutex_unlock(&gy__rt.threads_lock);
    out->mmu_1ms = worst[0] / 1e6;
    out->mmu_10ms = worst[1] / 1e6;
    out->ttsp_count = rd(&gy__rt.ttsp_count);
    out->ttsp_total_ns = rd(&gy__rt.ttsp_total_ns);
    out->ttsp_max_ns = rd(&gy__rt.ttsp_max_ns);
    for (int b = 0; b < GY_PAUSE_BUCKETS; b++) {
        out->ttsp_hist[b] = rd(&gy__rt.ttsp_hist[b]);
    }
}
