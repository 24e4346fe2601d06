/* server/src/conn.h: a connection's loop-side state (gy__io), shared by
 * conn.c (socket, timers, writes) and http.c (the parser's callbacks). */
#ifndef GY_SERVER_CONN_H
#define GY_SERVER_CONN_H

#include "srv.h"

typedef enum {
    GY__T_NONE,    /* nothing to wait for (drain has its own deadline) */
    GY__T_ANSWER,  /* a handler is answering: answer_timeout from its call */
    GY__T_HEADERS, /* the request's headers must arrive by the deadline */
    GY__T_BODY,    /* the body must keep body_min_rate, checked each second */
    GY__T_IDLE,    /* keep-alive, between requests */
    GY__T_WRITE,   /* output queued: the client must read some within idle_timeout */
    GY__T_LINGER,  /* closing: reading what the client still sends, briefly */
} gy__tmode;

struct gy__io {
    uv_tcp_t tcp;
    uv_timer_t timer;
    llhttp_t parser;
    gy__loop *loop;
    gy__conn *conn; /* strong: the socket keeps the connection object */
    gy__io *prev, *next;
    int handles_open;

    /* The request being parsed (reset at each message begin). */
    gy__buf hdr;  /* path\0query\0name\0value\0... */
    gy__buf offs; /* uint32_t pairs: name, value offsets into hdr */
    uint32_t nhdr;
    size_t url_len;          /* bytes of the target so far */
    size_t header_bytes;     /* target + fields + values + 4 per field */
    size_t raw_header_bytes; /* every byte fed while in the headers */
    uint8_t last;            /* 0 none, 1 in a field, 2 in a value */
    uint8_t host_count;
    bool te_chunked;
    bool te_seen;
    bool te_unknown;   /* a coding other than chunked */
    bool version_seen; /* the version's first piece was checked */
    bool expect_continue;
    bool in_headers; /* between message begin and headers complete */
    bool in_message; /* between message begin and message complete */
    gy__buf body;
    const gy__route *route;
    gy__route_result route_result;
    char allow[128];
    int error_status; /* set by a callback that returned -1 */
    const char *error_reason;

    /* The buffer being parsed and the last bytes of the previous one, for
     * checks that look behind a span (obs-fold, "HTTP/"). */
    const char *feed_base;
    char tail[8];
    uint8_t tail_len;

    /* Dispatch and answers. */
    gy_request *cur; /* strong: dispatched and not yet answered */
    bool in_execute; /* inside llhttp_execute: an answer must not re-enter */
    bool waiting;    /* parsing paused until cur is answered */
    bool streaming;  /* cur's streamed head is out; its pieces follow */
    gy__buf pending; /* input read but not parsed while waiting */
    size_t pending_off;

    /* Output. */
    gy__buf out;    /* serialized answers not yet handed to uv_write */
    size_t writing; /* bytes inside uv_write requests */
    bool reading;
    bool close_after;   /* close once the output is written */
    bool last_answered; /* the final answer is decided: nothing more is parsed */
    bool eof;           /* the client half-closed */
    bool shut;          /* shutdown sent; lingering */
    bool closing;       /* uv_close called */

    gy__tmode tmode;
    uint64_t deadline_ms; /* when tmode's deadline passes (UINT64_MAX: none) */
    uint64_t armed_ms;    /* when the uv timer fires (0: not armed) */
    /* While a handler answers: when answer_timeout passes; while an answer
     * streams: answer_timeout after its last piece. */
    uint64_t answer_by_ms;
    uint64_t body_start_ms, body_bytes;
};

/* http.c */
extern const llhttp_settings_t gy__http_settings;
/* Reset the per-request parse state. */
void gy__http_reset(gy__io *io);
/* Map a parse failure to a status and reason (io->error_status or llhttp's). */
int gy__http_error_status(gy__io *io, llhttp_errno_t e, const char **reason);

/* conn.c, for http.c */
void gy__io_set_timer(gy__io *io, gy__tmode mode, uint64_t ms);
void gy__io_write_simple(gy__io *io, int status, const char *extra, const char *body, bool close);
/* Called at message complete: build and dispatch the request. Returns 0 to
 * go on parsing, HPE_PAUSED to stop (waiting for an answer, or closing). */
int gy__io_dispatch(gy__io *io);

#endif /* GY_SERVER_CONN_H */
