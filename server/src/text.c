/* server/src/text.c: quoting untrusted text for answers and logs. */
#include "text.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The length of the valid UTF-8 sequence at p (at most n bytes there), or 0
 * when it is not one: overlong forms, surrogates and code points above
 * U+10FFFF are invalid (RFC 3629). */
static size_t gy__utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    size_t want;
    uint32_t cp, min;
    if (c < 0x80) {
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        want = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        want = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        want = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < want) {
        return 0;
    }
    for (size_t i = 1; i < want; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return want;
}

size_t gy__text_printable(char *out, size_t cap, const char *in, size_t len, size_t max_in) {
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0;
    while (i < len && i < max_in) {
        size_t k = gy__utf8_len(p + i, len - i);
        if (k > 0 && i + k > max_in) {
            break; /* a whole character past the limit: left out, not cut */
        }
        bool plain = k > 0 && !(k == 1 && (p[i] < 0x20 || p[i] == 0x7F));
        if (plain) {
            if (o + k >= cap) {
                break;
            }
            for (size_t j = 0; j < k; j++) {
                out[o++] = (char)p[i + j];
            }
            i += k;
        } else {
            if (o + 4 >= cap) {
                break;
            }
            snprintf(out + o, 5, "\\x%02x", p[i]);
            o += 4;
            i++;
        }
    }
    out[o] = '\0';
    return i;
}
