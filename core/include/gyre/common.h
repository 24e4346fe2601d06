/* gyre/common.h: macros shared by every public Gyre header.
 *
 * GY_API marks the functions a Gyre library exports; everything else is built
 * with hidden visibility, so only gy_-prefixed symbols leave the library.
 */
#ifndef GYRE_COMMON_H
#define GYRE_COMMON_H

#if defined(GY_BUILDING_LIBRARY)
#define GY_API __attribute__((visibility("default")))
#else
#define GY_API
#endif

/* Mark a result the caller must look at (an error code, a new reference). */
#define GY_NODISCARD __attribute__((warn_unused_result))

/* printf-style argument checking. */
#define GY_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

#endif /* GYRE_COMMON_H */
