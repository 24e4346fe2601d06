/* gyre/log.h: where the library's log lines go.
 *
 * The library never prints. It hands each log line to a callback the
 * application installs; by default there is none and lines are dropped.
 */
#ifndef GYRE_LOG_H
#define GYRE_LOG_H

#include "gyre/common.h"

typedef enum gy_log_level {
    GY_LOG_DEBUG = 0,
    GY_LOG_INFO = 1,
    GY_LOG_WARN = 2,
    GY_LOG_ERROR = 3,
} gy_log_level;

/* A log callback: `module` names the part of Gyre that speaks ("core",
 * "collector", ...), `msg` is one line without a trailing newline, valid only
 * during the call. It may be called from any thread that uses Gyre, possibly
 * at once from several, possibly with Gyre's internal locks held, so it
 * must not call into Gyre (write the line somewhere and return). */
typedef void (*gy_log_fn)(void *userdata, gy_log_level level, const char *module, const char *msg);

/* gy_log_set_handler: install `fn` (NULL: drop lines again) with `userdata`
 * and the lowest level passed to it. Lines logged by other threads during the
 * call go to the old or the new handler, never to a mix. Thread-safe; the
 * old handler may still be running in another thread when this returns. */
GY_API void gy_log_set_handler(gy_log_fn fn, void *userdata, gy_log_level min_level);

/* gy_log_level_name: "debug", "info", "warn" or "error" ("?" otherwise). */
GY_API const char *gy_log_level_name(gy_log_level level);

#endif /* GYRE_LOG_H */
