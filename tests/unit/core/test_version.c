/* Unit tests of core/src/version.c. */
#include "gy_test.h"

#include "gyre/version.h"

static void test_version_matches_headers(void **state) {
    (void)state;
    assert_string_equal(gy_version(), GY_VERSION_STRING);
    assert_int_equal(gy_version_hex(), GY_VERSION_HEX);
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", GY_VERSION_MAJOR, GY_VERSION_MINOR,
             GY_VERSION_PATCH);
    assert_string_equal(gy_version(), expect);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_version_matches_headers),
};
GY_TEST_MAIN(tests)
