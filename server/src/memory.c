/* server/src/memory.c: memory given back on a running server: each thread's
 * trimmer and memory.purge (see memory.h). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "srv.h"

void gy__trimmer_init(gy__trimmer *t, gy_server *srv) {
    t->trimmed_ns = gy__now_ns();
    t->gen = GY__PURGE_GEN(atomic_load(&srv->mem.purge));
}

/* Count this thread's trim for purge generation `gen`, unless a newer
 * purge began meanwhile (it will be served at the next tick). */
static void gy__memory_ack(gy_server *srv, uint64_t gen) {
    uint64_t w = atomic_load(&srv->mem.purge);
    while (GY__PURGE_GEN(w) == gen && !atomic_compare_exchange_weak(&srv->mem.purge, &w, w + 1)) {
    }
}

bool gy__trimmer_tick(gy__trimmer *t, gy_server *srv) {
    uint64_t gen = GY__PURGE_GEN(atomic_load(&srv->mem.purge));
    uint64_t now = gy__now_ns();
    bool asked = gen != t->gen;
    int64_t every_ms = gy__lim(&srv->lim.memory_trim_interval_ms);
    bool due = every_ms > 0 && now - t->trimmed_ns >= (uint64_t)every_ms * 1000000u;
    if (!asked && !due) {
        return false;
    }
    /* A safe point first: counts other threads handed back to this one
     * merge and its deferred frees run, so that an idle thread (a worker
     * without jobs has no other safe point) frees what it owns and then
     * gives the memory back. */
    gy_safepoint();
    (void)gy_memory_trim();
    t->trimmed_ns = now;
    if (asked) {
        t->gen = gen;
        gy__memory_ack(srv, gen); /* seq_cst: after the trim */
    }
    return true;
}

uint64_t gy__trimmer_due_ms(const gy__trimmer *t, gy_server *srv) {
    int64_t every_ms = gy__lim(&srv->lim.memory_trim_interval_ms);
    if (every_ms <= 0) {
        return 0;
    }
    uint64_t since_ms = (gy__now_ns() - t->trimmed_ns) / 1000000u;
    return since_ms >= (uint64_t)every_ms ? 1 : (uint64_t)every_ms - since_ms;
}

/* One round: every thread trims once; waits (quiescent) for them, at most
 * until `deadline_ns`. Returns how many of `*asked` acknowledged. */
static int gy__memory_round(gy_server *srv, int *asked, uint64_t deadline_ns) {
    /* One purge at a time: admin commands run on the control thread only.
     * The next generation, with no ack yet. */
    uint64_t w = atomic_load(&srv->mem.purge);
    atomic_store(&srv->mem.purge, (GY__PURGE_GEN(w) + 1) << 16);
    /* A woken loop serves the purge in its async callback. */
    *asked = gy__server_wake_loops(srv) + gy__workers_wake(srv->workers);
    gy_safepoint(); /* as every trimmer's tick: merge and free first */
    (void)gy_memory_trim();
    /* Quiescent while waiting: a collection started meanwhile must not
     * wait for us. */
    gy_quiescent_begin();
    while ((int)(atomic_load(&srv->mem.purge) & 0xffff) < *asked && gy__now_ns() < deadline_ns) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
        nanosleep(&ts, NULL);
    }
    gy_quiescent_end();
    return (int)(atomic_load(&srv->mem.purge) & 0xffff);
}

void gy__memory_purge(gy_server *srv, gy__purge_result *out) {
    gy_memory_get_stats(&out->before);
    uint64_t t0 = gy__now_ns(), deadline = t0 + 5000000000u;
    /* Freed cells and blocks come back only after an epoch grace period,
     * which every thread's trim advances at most a step (ck_epoch frees a
     * batch two epochs after it was retired): four rounds at least, then
     * until the retained bytes stop falling. */
    uint64_t last = out->before.retained_bytes;
    for (int round = 0; round < 8; round++) {
        out->acknowledged = gy__memory_round(srv, &out->threads, deadline);
        gy_memory_stats now;
        gy_memory_get_stats(&now);
        if (round >= 3 && now.retained_bytes >= last) {
            break;
        }
        last = now.retained_bytes;
        if (out->acknowledged < out->threads) {
            break; /* a thread is busy: it trims when it can */
        }
    }
    (void)gy_memory_release(GY_RELEASE_ALL);
    out->wait_s = (double)(gy__now_ns() - t0) / 1e9;
    gy_memory_get_stats(&out->after);
    srv->mem.last_purge_ns = gy__now_ns();
    srv->mem.last_purge_wait_ns = srv->mem.last_purge_ns - t0;
}

uint64_t gy__memory_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return 0;
    }
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (uint64_t)resident * (uint64_t)page : 0;
}
