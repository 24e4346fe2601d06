/* tests/support/gy_rt.h: bring the Gyre runtime up and down in a test, with
 * the leak check of gy_runtime_shutdown turned into a test failure. */
#ifndef GYRE_TEST_RT_H
#define GYRE_TEST_RT_H

#include "gy_test.h"

#include "gyre/gyre.h"

/* Init the runtime and attach the calling thread as a plain thread. */
#define GY_TEST_UP()                                        \
    do {                                                    \
        gy_errmsg up_err_ = {0};                            \
        int up_rc_ = gy_runtime_init(NULL, &up_err_);       \
        if (up_rc_ != GY_OK) {                              \
            fail_msg("gy_runtime_init: %s", up_err_.text);  \
        }                                                   \
        up_rc_ = gy_thread_attach(NULL, &up_err_);          \
        if (up_rc_ != GY_OK) {                              \
            fail_msg("gy_thread_attach: %s", up_err_.text); \
        }                                                   \
    } while (0)

/* Detach and shut down; any leaked object fails the test with its name. */
#define GY_TEST_DOWN()                                                                      \
    do {                                                                                    \
        assert_int_equal(gy_thread_detach(), GY_OK);                                        \
        gy_errmsg down_err_ = {0};                                                          \
        int down_rc_ = gy_runtime_shutdown(&down_err_);                                     \
        if (down_rc_ != GY_OK) {                                                            \
            fail_msg("gy_runtime_shutdown: %s: %s", gy_err_name(down_rc_), down_err_.text); \
        }                                                                                   \
    } while (0)

#endif /* GYRE_TEST_RT_H */
