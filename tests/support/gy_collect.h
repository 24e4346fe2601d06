/* tests/support/gy_collect.h: gy_gc_collect from any test thread.
 *
 * In gc_mode concurrent a loop thread may not wait in gy_gc_collect (it
 * fails with GY_ESTATE), so gy_test_collect asks with gy_gc_collect_async
 * there and passes safe points, quiescent in between, until the answer is
 * delivered: a test's loop may wait this way, as it never blocks the
 * collector. On a plain thread, or in stw mode, it is gy_gc_collect. */
#ifndef GYRE_TEST_COLLECT_H
#define GYRE_TEST_COLLECT_H

#include <sched.h>
#include <stdatomic.h>

#include "gyre/gc.h"
#include "gyre/runtime.h"

typedef struct gy_test_collect_answer {
    atomic_int done;
    int rc;
    gy_gc_result res;
} gy_test_collect_answer;

static inline void gy_test_collect_done(int rc, const gy_gc_result *res, void *arg) {
    gy_test_collect_answer *a = arg;
    a->rc = rc;
    a->res = *res;
    atomic_store(&a->done, 1);
}

/* gy_gc_collect(generation, res, err) from any attached thread; the same
 * returns (res may be NULL). */
static inline int gy_test_collect(int generation, gy_gc_result *res, gy_errmsg *err) {
    int rc = gy_gc_collect(generation, res, err);
    if (rc != GY_ESTATE || gy_gc_get_mode() != GY_GC_MODE_CONCURRENT) {
        return rc;
    }
    gy_test_collect_answer a = {0};
    rc = gy_gc_collect_async(generation, gy_test_collect_done, &a, err);
    while (rc == GY_OK && !atomic_load(&a.done)) {
        gy_quiescent_begin();
        sched_yield();
        gy_quiescent_end();
        gy_safepoint();
    }
    if (rc == GY_OK) {
        rc = a.rc;
        if (res != NULL) {
            *res = a.res;
        }
    }
    return rc;
}

#endif /* GYRE_TEST_COLLECT_H */
