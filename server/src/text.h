/* server/src/text.h: text that reaches a client or a log line.
 *
 * Admin answers are JSON, which must be valid UTF-8; log lines must not let
 * a client or a file write control bytes into an operator's terminal. Both
 * quote what they echo with gy__text_printable. */
#ifndef GYRE_SERVER_TEXT_H
#define GYRE_SERVER_TEXT_H

#include <stddef.h>

/* gy__text_printable: copy the first `len` bytes of `in` into `out` (room
 * for `cap` bytes, cap >= 1, always NUL-terminated) keeping complete, valid
 * UTF-8 characters as they are and writing every other byte (an invalid or
 * cut sequence, a control byte, DEL) as \xNN. Stops before a character or
 * escape that would not fit whole, or once `max_in` input bytes are used:
 * it never cuts a character. Returns how many input bytes were used.
 * Thread-safe. */
size_t gy__text_printable(char *out, size_t cap, const char *in, size_t len, size_t max_in);

#endif /* GYRE_SERVER_TEXT_H */
