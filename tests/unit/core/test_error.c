/* Unit tests of core/src/error.c: names, messages, the message buffer. */
#include "gy_test.h"

#include "internal.h"

static void test_codes_are_negative_and_distinct(void **state) {
    (void)state;
    int seen[GY__ERR_COUNT + 1] = {0};
#define CHECK(name, msg)                    \
    assert_true(GY_E##name < 0);            \
    assert_int_equal(seen[-GY_E##name], 0); \
    seen[-GY_E##name] = 1;
    GY_ERR_MAP(CHECK)
#undef CHECK
    /* The first code is -1 and the list has no gaps. */
    assert_int_equal(GY_ENOMEM, -1);
    for (int i = 1; i <= GY__ERR_COUNT; i++) {
        assert_int_equal(seen[i], 1);
    }
}

static void test_names_and_messages(void **state) {
    (void)state;
    assert_string_equal(gy_err_name(GY_OK), "OK");
    assert_string_equal(gy_strerror(GY_OK), "success");
    assert_string_equal(gy_err_name(GY_ENOMEM), "ENOMEM");
    assert_string_equal(gy_strerror(GY_ENOMEM), "out of memory");
    assert_string_equal(gy_err_name(GY_ESTALE), "ESTALE");
    assert_string_equal(gy_err_name(-1000), "EUNKNOWN");
    assert_string_equal(gy_strerror(-1000), "unknown error");
    assert_string_equal(gy_err_name(5), "EUNKNOWN");
    /* Every listed code has a name that is "E" + its identifier. */
#define CHECK(name, msg)                                     \
    assert_string_equal(gy_err_name(GY_E##name), "E" #name); \
    assert_string_equal(gy_strerror(GY_E##name), msg);
    GY_ERR_MAP(CHECK)
#undef CHECK
}

static void test_errmsg_set(void **state) {
    (void)state;
    gy_errmsg err = {0};
    assert_int_equal(gy__errmsg_set(&err, GY_ERANGE, "x=%d too big", 42), GY_ERANGE);
    assert_int_equal(err.code, GY_ERANGE);
    assert_string_equal(err.text, "x=42 too big");
    /* NULL buffer: only the code comes back. */
    assert_int_equal(gy__errmsg_set(NULL, GY_EINVAL, "ignored"), GY_EINVAL);
    /* A long message is truncated and terminated. */
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    gy__errmsg_set(&err, GY_EINVAL, "%s", big);
    assert_int_equal(strlen(err.text), GY_ERRMSG_SIZE - 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_codes_are_negative_and_distinct),
    cmocka_unit_test(test_names_and_messages),
    cmocka_unit_test(test_errmsg_set),
};
GY_TEST_MAIN(tests)
