/* gyre/failpoint.h: named failpoints, to make any allocation fail on purpose.
 *
 * Code that can fail marks the spot: `if (gy_failpoint("alloc")) return
 * GY_ENOMEM;`. Every name is declared once, with what it makes fail, in
 * gyre/failpoint_names.h; no other name is accepted. In builds configured with GY_FAILPOINTS=ON the
 * check consults the failpoints configured by a test or by the environment; in other builds the
 * macro is the constant 0 and costs nothing.
 *
 * A failpoint is configured with a spec:
 *   "off"            never fire, stop counting (an off check costs one load)
 *   "count"          never fire, count hits (how many allocations a run does)
 *   "nth:N"          fire at the Nth hit after configuration, once (N >= 1)
 *   "from:N"         fire at the Nth hit and every hit after it
 *   "prob:P[:SEED]"  fire each hit with probability P (0..1); the draw is a
 *                    hash of SEED (default 1) and the hit number, so a run
 *                    that hits in the same order fires at the same hits.
 * The environment variable GY_FAILPOINTS ("name=spec;name=spec", or with
 * commas between entries) is read at gy_runtime_init, which fails naming
 * the entry when a name is unknown or a spec bad (in builds without
 * failpoints the variable is ignored).
 *
 * Every firing calls gy_failpoint_breakpoint(), a function that does nothing
 * and exists for `break gy_failpoint_breakpoint` in a debugger.
 */
#ifndef GYRE_FAILPOINT_H
#define GYRE_FAILPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gyre/common.h"
#include "gyre/error.h"

#if defined(GY_FAILPOINTS) && GY_FAILPOINTS
/* gy_failpoint: true when the failpoint NAME (a string literal) fires now. */
#define gy_failpoint(name) gy__failpoint_check(name)
#else
#define gy_failpoint(name) false
#endif

/* Internal: the check behind gy_failpoint(). Thread-safe. */
GY_API bool gy__failpoint_check(const char *name);

/* gy_failpoints_available: true when this library was built with failpoints;
 * when false, the functions below return GY_ENOTSUP or 0. */
GY_API bool gy_failpoints_available(void);

/* gy_failpoint_known: whether NAME is a declared failpoint (or a "test."
 * name). gy_failpoint_name: the i-th declared name (0-based), NULL past the
 * last. Both work in every build. */
GY_API bool gy_failpoint_known(const char *name);
GY_API const char *gy_failpoint_name(size_t i);

/* gy_failpoint_set: configure NAME with SPEC (grammar above) and reset its hit
 * and fire counters. Returns 0, GY_EINVAL for an unknown name or a bad spec (message in
 * `err`, NULL allowed; nothing changed), GY_ENOMEM when the table of 64 names
 * is full, GY_ENOTSUP without failpoints. Thread-safe; checks running at the
 * same time see the old or the new spec. */
GY_API int gy_failpoint_set(const char *name, const char *spec, gy_errmsg *err);

/* gy_failpoint_set_env: parse "name=spec;name=spec" (";" or ",") as from the
 * environment.
 * Errors as gy_failpoint_set; the entries before a bad one stay applied. */
GY_API int gy_failpoint_set_env(const char *list, gy_errmsg *err);

/* gy_failpoint_reset_all: turn every failpoint off and zero its counters. */
GY_API void gy_failpoint_reset_all(void);

/* gy_failpoint_hits / gy_failpoint_fired: how often NAME was checked / fired
 * since it was last configured; 0 for a name never configured. */
GY_API uint64_t gy_failpoint_hits(const char *name);
GY_API uint64_t gy_failpoint_fired(const char *name);

/* gy_failpoint_breakpoint: called at every firing with the name and the hit
 * number (1-based). Does nothing; never inlined. */
GY_API void gy_failpoint_breakpoint(const char *name, uint64_t hit);

#endif /* GYRE_FAILPOINT_H */
