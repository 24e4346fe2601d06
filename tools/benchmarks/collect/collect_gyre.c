/* Gyre's side of the collect benchmark: the graphs of pyperformance's
 * gc_collect (rings of 21 nodes, next and prev references) built in Gyre.
 * objects/s = tracked objects examined by gy_gc_collect(2) (every tracked
 * object present) over its wall time; gen0_young = one generation-0
 * collection with 714 young garbage objects (34 rings) over 1M live ones, in µs. Also
 * prints ns/object per phase of the collector. */
#include <stdio.h>
#include <stdlib.h>

#include "gyre/gc.h"
#include "gyre/gyre.h"

#include "../ring_node.h" /* node, node_traverse, node_clear */

static gy_type node_type = {
    .name = "Node", .size = sizeof(node), .traverse = node_traverse, .clear = node_clear};

/* n/21 rings of 21 nodes, their heads in a list (a NEW reference). */
static gy_list *create_gc_cycles(size_t n) {
    gy_list *cycles;
    if (gy_list_new(&cycles) != GY_OK) {
        exit(1);
    }
    for (size_t c = 0; c < n / 21; c++) {
        node *head = ring_make(&node_type, 21);
        gy_list_append(cycles, head);
        gy_decref(head);
    }
    return cycles;
}

static gy_gc_result collect(int generation) {
    gy_gc_result res;
    gy_errmsg err = {0};
    if (gy_gc_collect(generation, &res, &err) != GY_OK) {
        fprintf(stderr, "collect: %s\n", err.text);
        exit(1);
    }
    return res;
}

static void report(const char *name, const gy_gc_result *res) {
    double s = (double)res->duration_ns / 1e9;
    printf("@bench %s %.0f objects/s\n", name, (double)res->candidates / s);
    printf("@bench %s_ns_per_object %.2f ns\n", name,
           (double)res->duration_ns / (double)res->candidates);
    for (int p = 0; p < GY_GC_PHASES; p++) {
        printf("@bench %s_phase_%s %.2f ns\n", name, gy_gc_phase_name(p),
               (double)res->phase_ns[p] / (double)res->candidates);
    }
    printf("# %s: %llu candidates, %llu collected, %.1f ms (%.1f ms stopped)\n", name,
           (unsigned long long)res->candidates, (unsigned long long)res->collected, s * 1e3,
           (double)res->pause_ns / 1e6);
}

static void live(size_t n, const char *name) {
    collect(2);
    gy_list *cycles = create_gc_cycles(n);
    gy_gc_result res = collect(2);
    report(name, &res);
    gy_decref(cycles);
    collect(2);
}

static void garbage(size_t n, const char *name) {
    collect(2);
    gy_list *cycles = create_gc_cycles(n);
    gy_decref(cycles);
    gy_gc_result res = collect(2);
    report(name, &res);
}

static void gen0_young(void) {
    collect(2);
    gy_list *heap = create_gc_cycles(1000000);
    collect(2); /* the heap is old now */
    gy_list *young = create_gc_cycles(700 + 20);
    gy_decref(young);
    gy_gc_result res = collect(0);
    printf("@bench gen0_young %.1f us\n", (double)res.duration_ns / 1e3);
    printf("# gen0_young: %llu candidates, %llu collected, %.1f us stopped; phases (us):",
           (unsigned long long)res.candidates, (unsigned long long)res.collected,
           (double)res.pause_ns / 1e3);
    for (int p = 0; p < GY_GC_PHASES; p++) {
        printf(" %s %.1f", gy_gc_phase_name(p), (double)res.phase_ns[p] / 1e3);
    }
    printf("\n");
    gy_decref(heap);
    collect(2);
}

int main(void) {
    gy_errmsg err = {0};
    if (gy_runtime_init(NULL, &err) != GY_OK || gy_thread_attach(NULL, &err) != GY_OK) {
        fprintf(stderr, "init: %s\n", err.text);
        return 1;
    }
    gy_gc_disable(); /* only the collections we time */
    live(1000000, "collect_live_1M");
    live(5000000, "collect_live_5M");
    garbage(100000, "collect_garbage_100k");
    garbage(1000000, "collect_garbage_1M");
    garbage(5000000, "collect_garbage_5M");
    gen0_young();
    gy_thread_detach();
    if (gy_runtime_shutdown(&err) != GY_OK) {
        fprintf(stderr, "shutdown: %s\n", err.text);
        return 1;
    }
    return 0;
}
