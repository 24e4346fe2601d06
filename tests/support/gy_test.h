/* tests/support/gy_test.h: what every cmocka test of Gyre includes.
 *
 * GY_SKIP(reason) skips the running test, except under CI=true, where a skip
 * is a failure (a test that needs a tool or root must run in CI, not skip).
 * GY_TEST_MAIN(tests) runs a group and exits 77 when something was skipped,
 * which ctest reports as "Skipped". gy_test_run_named runs one test of a
 * group by name (without "test_"), for one ctest name per seed example.
 */
#ifndef GYRE_TEST_SUPPORT_H
#define GYRE_TEST_SUPPORT_H

/* cmocka needs these before its header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set by GY_SKIP; read by GY_TEST_MAIN. */
extern int gy_test_skipped;

/* True when the environment says this is a CI run. */
bool gy_test_in_ci(void);

#define GY_SKIP(reason)                                                                 \
    do {                                                                                \
        if (gy_test_in_ci()) {                                                          \
            fail_msg("skipped under CI=true, which counts as a failure: %s", (reason)); \
        }                                                                               \
        fprintf(stderr, "SKIP: %s\n", (reason));                                        \
        gy_test_skipped = 1;                                                            \
        skip();                                                                         \
    } while (0)

#define GY_TEST_MAIN(tests)                                      \
    int main(void) {                                             \
        int failed_ = cmocka_run_group_tests(tests, NULL, NULL); \
        return failed_ != 0 ? 1 : (gy_test_skipped ? 77 : 0);    \
    }

/* Run all of `tests` (no NAME argument) or the one named argv[1] (its
 * function name without "test_"); returns main's exit code (2: unknown). */
static inline int gy_test_run_named(const struct CMUnitTest *tests, size_t n, int argc,
                                    char **argv) {
    if (argc < 2) {
        return _cmocka_run_group_tests("tests", tests, n, NULL, NULL) != 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tests[i].name + strlen("test_"), argv[1]) == 0) {
            return _cmocka_run_group_tests(argv[1], &tests[i], 1, NULL, NULL) != 0;
        }
    }
    fprintf(stderr, "unknown test '%s'\n", argv[1]);
    return 2;
}

#endif /* GYRE_TEST_SUPPORT_H */
