/* bench_tracing / bench_tracing_compiled_out: the cost of allocation
 * tracing. The same source links against Gyre with tracing compiled in
 * (bench_tracing) and compiled out (GY_TRACING=0, the baseline).
 *   bench_tracing off      alloc_tracing_off     ns per step, tracing off
 *   bench_tracing on       alloc_tracing_on      ns per step, tracing on
 *                          weakref_get / incref  ns per upgrade+release vs
 *                                                incref+decref
 *   bench_tracing_compiled_out  tracing_compiled_out  ns per step
 * A step: gy_new (48 bytes) into a random slot of a 256-slot window, the
 * replaced object freed; a safe point every 1024 steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gyre/gyre.h"

#define BENCH_CLOCK CLOCK_MONOTONIC
#define WINDOW 256u
static unsigned STEPS = 4000000u; /* argv[2] overrides (profiling) */
#define UPGRADES 20000000u

typedef struct blob {
    gy_object ob;
    char payload[40];
} blob;
static gy_type blob_type = {.name = "blob", .size = sizeof(blob), .flags = GY_TYPE_LEAF};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(BENCH_CLOCK, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double alloc_loop(void) {
    static blob *slots[WINDOW];
    uint64_t s = 88172645463325252ULL;
    for (unsigned i = 0; i < WINDOW; i++) {
        if (gy_new(&blob_type, &slots[i]) != GY_OK) {
            exit(1);
        }
    }
    double t0 = now_s();
    for (unsigned step = 0; step < STEPS; step++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        unsigned i = (unsigned)(s * 0x2545F4914F6CDD1DULL >> 56) & (WINDOW - 1);
        blob *b;
        if (gy_new(&blob_type, &b) != GY_OK) {
            exit(1);
        }
        gy_decref(slots[i]);
        slots[i] = b;
        if ((step & 1023) == 0) {
            gy_safepoint();
        }
    }
    double dt = now_s() - t0;
    for (unsigned i = 0; i < WINDOW; i++) {
        gy_decref(slots[i]);
    }
    return dt * 1e9 / STEPS;
}

#if !defined(BENCH_COMPILED_OUT)
static void upgrades(double *weak_ns, double *incref_ns) {
    blob *b;
    gy_weakref *wr;
    if (gy_new(&blob_type, &b) != GY_OK || gy_weakref_new(&wr, b, NULL, NULL) != GY_OK) {
        exit(1);
    }
    double t0 = now_s();
    for (unsigned i = 0; i < UPGRADES; i++) {
        gy_object *o = gy_weakref_get(wr);
        gy_decref(o);
    }
    double t1 = now_s();
    for (unsigned i = 0; i < UPGRADES; i++) {
        gy_incref(b);
        gy_decref(b);
    }
    double t2 = now_s();
    *weak_ns = (t1 - t0) * 1e9 / UPGRADES;
    *incref_ns = (t2 - t1) * 1e9 / UPGRADES;
    gy_decref(wr);
    gy_decref(b);
}
#endif

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "off";
    if (argc > 2) {
        STEPS = (unsigned)strtoul(argv[2], NULL, 10);
    }
    if (gy_runtime_init(NULL, NULL) != GY_OK || gy_thread_attach(NULL, NULL) != GY_OK) {
        return 1;
    }
#if defined(BENCH_COMPILED_OUT)
    (void)mode;
    printf("@bench tracing_compiled_out %.3f ns\n", alloc_loop());
#else
    if (strcmp(mode, "on") == 0) {
        gy_trace_start();
        printf("@bench alloc_tracing_on %.3f ns\n", alloc_loop());
        gy_trace_stop();
        double weak, incref;
        upgrades(&weak, &incref);
        printf("@bench weakref_get %.3f ns\n", weak);
        printf("@bench incref %.3f ns\n", incref);
    } else {
        printf("@bench alloc_tracing_off %.3f ns\n", alloc_loop());
    }
#endif
    gy_thread_detach();
    return gy_runtime_shutdown(NULL) == GY_OK ? 0 : 1;
}
