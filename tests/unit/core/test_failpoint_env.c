/* core.failpoint_env: GY_FAILPOINTS in the environment (set by ctest to
 * "test.env=nth:2,test.env2=from:1") configures failpoints at the first
 * check, before any test code calls the API. */
#include "gy_test.h"

#include "gyre/failpoint.h"

static void test_environment_configures(void **state) {
    (void)state;
    assert_string_equal(getenv("GY_FAILPOINTS"), "test.env=nth:2,test.env2=from:1");
    assert_false(gy_failpoint("test.env"));
    assert_true(gy_failpoint("test.env"));
    assert_false(gy_failpoint("test.env"));
    assert_true(gy_failpoint("test.env2"));
    assert_int_equal(gy_failpoint_hits("test.env"), 3);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_environment_configures),
};
GY_TEST_MAIN(tests)
