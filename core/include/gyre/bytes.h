/* gyre/bytes.h: immutable byte strings. Holds no references (never tracked);
 * safe to read from any thread. The payload lives in Gyre's arena. */
#ifndef GYRE_BYTES_H
#define GYRE_BYTES_H

#include <stddef.h>

#include "gyre/object.h"

typedef struct gy_bytes gy_bytes;

GY_API extern gy_type gy_bytes_type;

/* gy_bytes_new(&b, data, len): a NEW bytes object holding a copy of data
 * (NUL-terminated after len for convenience). Errors as gy_new. */
#define gy_bytes_new(outp, data, len) gy__bytes_new_at((outp), (data), (len), __FILE__, __LINE__)
GY_API int gy__bytes_new_at(gy_bytes **out, const void *data, size_t len, const char *file,
                            int line);

/* gy_bytes_data / gy_bytes_len: the payload, valid while you hold a reference. */
GY_API const char *gy_bytes_data(const gy_bytes *bytes);
GY_API size_t gy_bytes_len(const gy_bytes *bytes);

#endif /* GYRE_BYTES_H */
