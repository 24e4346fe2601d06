/* gyre/error.h: the one error model of every Gyre library.
 *
 * Every fallible function returns 0 (GY_OK) on success or a negative GY_E*
 * code, and says in its comment what state remains after a failure. Where
 * context matters, a function also takes a `gy_errmsg *` (NULL allowed) that
 * receives a one-line message naming what was wrong. The library never prints.
 *
 * The codes come from one X-macro list; new codes are appended only, so a
 * code's number never changes between versions.
 */
#ifndef GYRE_ERROR_H
#define GYRE_ERROR_H

#include <stddef.h>

#include "gyre/common.h"

/* X(NAME, message): GY_ENAME is the code, "ENAME" its name. */
#define GY_ERR_MAP(X)                                       \
    X(NOMEM, "out of memory")                               \
    X(INVAL, "invalid argument")                            \
    X(RANGE, "value out of range")                          \
    X(NOENT, "no such entry")                               \
    X(EXIST, "entry already exists")                        \
    X(BUSY, "resource busy")                                \
    X(AGAIN, "resource temporarily unavailable, try again") \
    X(STATE, "operation not valid in the current state")    \
    X(NOTSUP, "operation not supported")                    \
    X(OVERFLOW, "value too large")                          \
    X(PERM, "permission denied")                            \
    X(IO, "input/output error")                             \
    X(TIMEDOUT, "timed out")                                \
    X(STALE, "object no longer exists")                     \
    X(LEAK, "objects still alive")

/* Internal: each code's position in the list. */
enum gy__err_index {
#define GY__ERR_INDEX(name, msg) GY__ERR_INDEX_##name,
    GY_ERR_MAP(GY__ERR_INDEX)
#undef GY__ERR_INDEX
        GY__ERR_COUNT
};

/* The error codes: GY_OK is 0, every error is negative (-1, -2, ...). */
typedef enum gy_err {
    GY_OK = 0,
#define GY__ERR_CODE(name, msg) GY_E##name = -(GY__ERR_INDEX_##name + 1),
    GY_ERR_MAP(GY__ERR_CODE)
#undef GY__ERR_CODE
} gy_err;

/* Size of a gy_errmsg text, terminating NUL included. */
#define GY_ERRMSG_SIZE 256

/* A caller-provided message buffer. `code` repeats the returned code and
 * `text` says what was wrong in one line (truncated to fit, always
 * NUL-terminated). Untouched on success. */
typedef struct gy_errmsg {
    int code;
    char text[GY_ERRMSG_SIZE];
} gy_errmsg;

/* gy_strerror: the fixed message of `code` ("success" for 0, "unknown error"
 * for a code not in the list). Never NULL; static storage. Thread-safe. */
GY_API const char *gy_strerror(int code);

/* gy_err_name: the code's name, e.g. "ENOMEM" ("OK" for 0, "EUNKNOWN" for a
 * code not in the list). Never NULL; static storage. Thread-safe. */
GY_API const char *gy_err_name(int code);

#endif /* GYRE_ERROR_H */
