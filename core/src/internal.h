/* core/src/internal.h: helpers shared by core's sources; never installed. */
#ifndef GYRE_CORE_INTERNAL_H
#define GYRE_CORE_INTERNAL_H

#include "gyre/common.h"
#include "gyre/error.h"
#include "gyre/log.h"

/* gy__errmsg_set: fill `err` (NULL allowed) with `code` and a formatted
 * message; returns `code`, so `return gy__errmsg_set(err, GY_EINVAL, ...)`. */
int gy__errmsg_set(gy_errmsg *err, int code, const char *fmt, ...) GY_PRINTF(3, 4);

/* gy__log: format one line and pass it to the installed handler, if any and
 * if `level` is at or above its minimum. Thread-safe; never blocks on a lock. */
void gy__log(gy_log_level level, const char *module, const char *fmt, ...) GY_PRINTF(3, 4);
/* Parse GY_FAILPOINTS now if no check has yet (failpoint.c); its error, if
 * any: an unknown name or a bad spec. GY_OK without failpoints. */
int gy__failpoint_env_check(gy_errmsg *err);

/* gy__log_enabled: true when a line at `level` would reach a handler; lets a
 * caller skip expensive formatting. */
int gy__log_enabled(gy_log_level level);

#endif /* GYRE_CORE_INTERNAL_H */
