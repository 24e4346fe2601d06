/* core.failpoint_env_unknown: an unknown failpoint name in GY_FAILPOINTS
 * (set by ctest to "alloc=count,arena.alloc=nth:3") stops gy_runtime_init
 * with an error naming it, instead of being taken and testing nothing
 * (issue 14, defect 6). */
#include "gy_test.h"

#include "gyre/gyre.h"

static void test_unknown_name_stops_the_start(void **state) {
    (void)state;
    gy_errmsg err = {0};
    assert_int_equal(gy_runtime_init(NULL, &err), GY_EINVAL);
    assert_non_null(strstr(err.text, "GY_FAILPOINTS"));
    assert_non_null(strstr(err.text, "arena.alloc"));
    assert_false(gy_runtime_running());
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_unknown_name_stops_the_start),
};
GY_TEST_MAIN(tests)
