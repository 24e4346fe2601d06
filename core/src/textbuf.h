/* core/src/textbuf.h: a growing malloc'd text buffer for reports (trace
 * top, backref chains). An allocation failure sets `failed` and later
 * appends do nothing; the caller checks it once at the end. */
#ifndef GYRE_CORE_TEXTBUF_H
#define GYRE_CORE_TEXTBUF_H

#include <stddef.h>

#include "gyre/common.h"

typedef struct gy__textbuf {
    char *s; /* NUL-terminated once anything was appended */
    size_t len, cap;
    int failed;
} gy__textbuf;

/* Append formatted text. */
void gy__textbuf_printf(gy__textbuf *t, const char *fmt, ...) GY_PRINTF(2, 3);

#endif /* GYRE_CORE_TEXTBUF_H */
