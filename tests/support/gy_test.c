/* tests/support/gy_test.c: state behind gy_test.h. */
#include "gy_test.h"

int gy_test_skipped;

bool gy_test_in_ci(void) {
    const char *ci = getenv("CI");
    return ci != NULL && strcmp(ci, "true") == 0;
}
