/* tools/benchmarks/alloc/bench.h: shared helpers of the alloc benchmark. */
#ifndef GYRE_BENCH_ALLOC_H
#define GYRE_BENCH_ALLOC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WINDOW 4096u /* live slots in the window pattern */
/* Steps of the owner loop; BENCH_OWNER_STEPS overrides (for callgrind). */
#define OWNER_STEPS bench_owner_steps()
#define SHARED_OBJECTS 4000000u
#define RING_SIZE 4096u
#define RSS_OBJECTS 1000000u

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: a cheap, fixed-seed random stream (same in every binary). */
static inline uint64_t bench_rand(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* Object sizes 32..128 bytes. */
static inline unsigned bench_size(uint64_t r) { return 32u + (unsigned)((r >> 32) % 97u); }

static inline unsigned bench_owner_steps(void) {
    const char *env = getenv("BENCH_OWNER_STEPS");
    return env != NULL ? (unsigned)strtoul(env, NULL, 10) : 20000000u;
}

static inline long bench_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kib;
}

#endif /* GYRE_BENCH_ALLOC_H */
