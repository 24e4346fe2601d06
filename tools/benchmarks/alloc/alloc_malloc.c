/* bench_alloc_{jemalloc,glibc,mimalloc}: the raw-allocator anchors of the
 * alloc benchmark. The same source is linked against each allocator (a
 * linked jemalloc or mimalloc replaces malloc for the whole process).
 *   alloc_owner_1t      ns per step: malloc(32..128) into a random slot of a
 *                       4096-slot window, free the block it replaces
 *   jemalloc_atomic_rc  ns per object: malloc on thread A, an atomic count
 *                       (+1 on A; -1, -1 on B: three RMW), free on B, handed
 *                       over through a ck_ring SPSC ring like Gyre's side */
#include <ck_ring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#if defined(BENCH_MIMALLOC)
#include <mimalloc.h>
#define ALLOCATOR "mimalloc"
#elif defined(BENCH_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define ALLOCATOR "jemalloc"
#else
#define ALLOCATOR "glibc"
#endif

static void *slots[WINDOW];

static double owner_1t(void) {
    uint64_t s = 88172645463325252ULL;
    for (unsigned i = 0; i < WINDOW; i++) {
        slots[i] = malloc(bench_size(bench_rand(&s)));
    }
    double t0 = bench_now();
    const unsigned steps = OWNER_STEPS; /* read once: it may come from the environment */
    for (unsigned step = 0; step < steps; step++) {
        uint64_t r = bench_rand(&s);
        unsigned i = (unsigned)r & (WINDOW - 1);
        void *p = malloc(bench_size(r));
        free(slots[i]);
        slots[i] = p;
    }
    double dt = bench_now() - t0;
    for (unsigned i = 0; i < WINDOW; i++) {
        free(slots[i]);
    }
    return dt * 1e9 / steps;
}

typedef struct counted {
    atomic_long rc;
    char payload[];
} counted;

static ck_ring_t ring;
static ck_ring_buffer_t ring_buf[RING_SIZE];

static void *consumer(void *arg) {
    (void)arg;
    for (unsigned n = 0; n < SHARED_OBJECTS;) {
        counted *c;
        if (!ck_ring_dequeue_spsc(&ring, ring_buf, &c)) {
            continue;
        }
        atomic_fetch_sub_explicit(&c->rc, 1, memory_order_release);
        if (atomic_fetch_sub_explicit(&c->rc, 1, memory_order_acq_rel) == 1) {
            free(c);
        }
        n++;
    }
    return NULL;
}

static double shared_2t(void) {
    ck_ring_init(&ring, RING_SIZE);
    uint64_t s = 88172645463325252ULL;
    pthread_t b;
    double t0 = bench_now();
    pthread_create(&b, NULL, consumer, NULL);
    for (unsigned n = 0; n < SHARED_OBJECTS; n++) {
        counted *c = malloc(bench_size(bench_rand(&s)));
        atomic_init(&c->rc, 1);
        atomic_fetch_add_explicit(&c->rc, 1, memory_order_relaxed);
        while (!ck_ring_enqueue_spsc(&ring, ring_buf, c)) {
        }
    }
    pthread_join(b, NULL);
    return (bench_now() - t0) * 1e9 / SHARED_OBJECTS;
}

int main(void) {
    /* Prove which allocator serves malloc in this binary. */
#if defined(BENCH_MIMALLOC)
    char *probe = calloc(1, 64);
    if (probe == NULL || !mi_is_in_heap_region(probe)) {
        fprintf(stderr, "mimalloc does not serve malloc in this binary\n");
        return 1;
    }
    free(probe);
#elif defined(BENCH_JEMALLOC)
    char *probe = calloc(1, 64);
    if (probe == NULL || sallocx(probe, 0) < 64) {
        fprintf(stderr, "jemalloc does not serve malloc in this binary\n");
        return 1;
    }
    free(probe);
#endif
    printf("allocator: %s\n", ALLOCATOR);
    printf("@bench alloc_owner_1t %.3f ns\n", owner_1t());
#if defined(BENCH_JEMALLOC)
    printf("@bench jemalloc_atomic_rc %.3f ns\n", shared_2t());
#else
    (void)shared_2t;
#endif
    return 0;
}
