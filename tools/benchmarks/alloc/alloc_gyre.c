/* bench_alloc_gyre: Gyre's side of the alloc benchmark.
 *   rss_per_object   resident bytes per object: 1M objects with two
 *                    reference fields, held in a gy_list (measured first,
 *                    in a fresh process)
 *   header_bytes     the object header
 *   alloc_owner_1t   ns per step: gy_new (32..128 bytes) + gy_incref +
 *                    gy_decref into a random slot of a 4096-slot window, the
 *                    replaced object's last gy_decref frees it; a safe point
 *                    every 1024 steps, as an event loop would pass
 *   alloc_shared_2t  ns per object: gy_new on thread A, handed to thread B
 *                    through a ck_ring SPSC ring, gy_incref + gy_decref +
 *                    gy_decref on B (three shared-count RMW); the owner A
 *                    merges and frees at its safe points
 *   incref_decref_owner  ns per step: gy_incref + gy_decref by the owner of
 *                    a live tracked object (two reference fields), through a
 *                    pointer the compiler cannot see through; a safe point
 *                    every 1024 steps
 * Parts for callgrind (tools/benchmarks/alloc/instructions.sh): "owner"
 * and "incref" run one loop of BENCH_OWNER_STEPS steps; GYRE_GC_MODE picks
 * the collector's mode (the instruction rows compare concurrent with stw). */
#include <ck_ring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "gyre/gyre.h"

#define NTYPES 7 /* 32, 48, ..., 128 bytes */
static gy_type types[NTYPES];

typedef struct node {
    gy_object ob;
    gy_ref a, b;
} node;

static int node_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((node *)self)->a, visit, arg);
    GY_VISIT(&((node *)self)->b, visit, arg);
    return 0;
}
static void node_clear(gy_object *self) {
    gy_ref_clear(&((node *)self)->a);
    gy_ref_clear(&((node *)self)->b);
}
static gy_type node_type = {
    .name = "node2", .size = sizeof(node), .traverse = node_traverse, .clear = node_clear};

static void check(int rc, const char *what) {
    if (rc != GY_OK) {
        fprintf(stderr, "%s: %s\n", what, gy_strerror(rc));
        exit(1);
    }
}

static double rss_per_object(void) {
    long before = bench_rss_kib();
    gy_list *holder;
    check(gy_list_new(&holder), "gy_list_new");
    for (unsigned i = 0; i < RSS_OBJECTS; i++) {
        node *n;
        check(gy_new(&node_type, &n), "gy_new");
        check(gy_list_append(holder, n), "gy_list_append");
        gy_decref(n);
    }
    long after = bench_rss_kib();
    gy_decref(holder);
    gy_safepoint();
    return (double)(after - before) * 1024.0 / RSS_OBJECTS;
}

static gy_object *slots[WINDOW];

static double owner_1t(void) {
    uint64_t s = 88172645463325252ULL;
    for (unsigned i = 0; i < WINDOW; i++) {
        check(gy_new(&types[(bench_size(bench_rand(&s)) - 32) / 16], &slots[i]), "gy_new");
    }
    double t0 = bench_now();
    const unsigned steps = OWNER_STEPS; /* read once: it may come from the environment */
    for (unsigned step = 0; step < steps; step++) {
        uint64_t r = bench_rand(&s);
        unsigned i = (unsigned)r & (WINDOW - 1);
        gy_object *o;
        if (gy_new(&types[(bench_size(r) - 32) / 16], &o) != GY_OK) {
            exit(1);
        }
        gy_incref(o);
        gy_decref(o);
        gy_decref(slots[i]);
        slots[i] = o;
        if ((step & 1023) == 0) {
            gy_safepoint();
        }
    }
    double dt = bench_now() - t0;
    for (unsigned i = 0; i < WINDOW; i++) {
        gy_decref(slots[i]);
    }
    return dt * 1e9 / steps;
}

static ck_ring_t ring;
static ck_ring_buffer_t ring_buf[RING_SIZE];
static atomic_int consumer_done;

static void *consumer(void *arg) {
    (void)arg;
    check(gy_thread_attach(NULL, NULL), "attach");
    for (unsigned n = 0; n < SHARED_OBJECTS;) {
        gy_object *o;
        if (!ck_ring_dequeue_spsc(&ring, ring_buf, &o)) {
            gy_safepoint();
            continue;
        }
        gy_incref(o);
        gy_decref(o);
        gy_decref(o); /* the last reference: queued to the owner */
        if ((++n & 255) == 0) {
            gy_safepoint();
        }
    }
    gy_thread_detach();
    atomic_store(&consumer_done, 1);
    return NULL;
}

static double shared_2t(void) {
    ck_ring_init(&ring, RING_SIZE);
    uint64_t s = 88172645463325252ULL;
    pthread_t b;
    double t0 = bench_now();
    pthread_create(&b, NULL, consumer, NULL);
    for (unsigned n = 0; n < SHARED_OBJECTS; n++) {
        gy_object *o;
        if (gy_new(&types[(bench_size(bench_rand(&s)) - 32) / 16], &o) != GY_OK) {
            exit(1);
        }
        while (!ck_ring_enqueue_spsc(&ring, ring_buf, o)) {
            gy_safepoint();
        }
        if ((n & 255) == 0) {
            gy_safepoint(); /* merge what B handed back, free it */
        }
    }
    while (!atomic_load(&consumer_done)) {
        gy_safepoint();
    }
    pthread_join(b, NULL);
    gy_safepoint();
    double dt = bench_now() - t0;
    gy_runtime_stats st;
    gy_runtime_get_stats(&st);
    if (st.objects_live != 0) {
        fprintf(stderr, "shared_2t: %llu objects still alive\n",
                (unsigned long long)st.objects_live);
        exit(1);
    }
    return dt * 1e9 / SHARED_OBJECTS;
}

/* The object, through a volatile pointer: the loop cannot be folded. */
static node *volatile incref_target;

static double incref_decref_owner(void) {
    node *n;
    check(gy_new(&node_type, &n), "gy_new");
    incref_target = n;
    const unsigned steps = OWNER_STEPS;
    double t0 = bench_now();
    for (unsigned step = 0; step < steps; step++) {
        node *o = incref_target;
        gy_incref(o);
        gy_decref(o);
        if ((step & 1023) == 0) {
            gy_safepoint();
        }
    }
    double dt = bench_now() - t0;
    gy_decref(n);
    return dt * 1e9 / steps;
}

int main(int argc, char **argv) {
    /* An optional argument runs one part only (for profiling). */
    const char *only = argc > 1 ? argv[1] : "";
    static char names[NTYPES][16];
    for (int t = 0; t < NTYPES; t++) {
        snprintf(names[t], sizeof names[t], "blob%d", 32 + 16 * t);
        types[t].name = names[t];
        types[t].size = (size_t)(32 + 16 * t);
        types[t].flags = GY_TYPE_LEAF;
    }
    check(gy_runtime_init(NULL, NULL), "gy_runtime_init");
    check(gy_thread_attach(NULL, NULL), "gy_thread_attach");
    if (!*only || !strcmp(only, "rss")) {
        printf("@bench rss_per_object %.2f B\n", rss_per_object());
        printf("@bench header_bytes %zu B\n", sizeof(gy_object));
    }
    if (!*only || !strcmp(only, "owner")) {
        printf("@bench alloc_owner_1t %.3f ns\n", owner_1t());
    }
    if (!*only || !strcmp(only, "incref")) {
        printf("@bench incref_decref_owner %.3f ns\n", incref_decref_owner());
    }
    if (!*only || !strcmp(only, "shared")) {
        printf("@bench alloc_shared_2t %.3f ns\n", shared_2t());
    }
    gy_thread_detach();
    gy_errmsg err;
    if (gy_runtime_shutdown(&err) != GY_OK) {
        fprintf(stderr, "shutdown: %s\n", err.text);
        return 1;
    }
    return 0;
}
