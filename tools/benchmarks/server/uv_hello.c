/* tools/benchmarks/server/uv_hello.c: the uv_hello anchor of the server
 * benchmark, a bare libuv HTTP/1.1 hello server on one loop.
 *
 *   bench_uv_hello [PORT]     (0 or none: any free port)
 *
 * Prints "listening on http://127.0.0.1:PORT/" on stderr, then answers every
 * complete request head (up to "\r\n\r\n", found across reads) with a fixed
 * keep-alive 200 carrying "hello". No parsing beyond that: no bodies, no
 * limits, no timeouts; what is left is what any libuv server pays (accept,
 * read, write). The responses to the heads that one read completes go out
 * in one uv_write. SIGTERM or SIGINT close every handle and exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

static char response[] = "HTTP/1.1 200 OK\r\n"
                         "Content-Length: 5\r\n"
                         "Content-Type: text/plain\r\n"
                         "\r\n"
                         "hello";
#define RESPONSE_LEN (sizeof response - 1)

/* One loop and read callbacks that finish with the buffer before
 * returning: one read buffer serves every connection. */
static char read_buf[65536];
static unsigned long long requests;

typedef struct {
    uv_tcp_t tcp;
    int matched; /* bytes of "\r\n\r\n" seen at the end of the data so far */
} conn;

typedef struct {
    uv_write_t req;
    uv_buf_t bufs[]; /* every one the same response */
} write_batch;

static void on_close(uv_handle_t *h) { free(h->data); }

static void close_conn(conn *c) {
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_write(uv_write_t *req, int status) {
    if (status < 0) {
        close_conn(req->handle->data);
    }
    free(req);
}

/* The number of request heads that data completes, carrying the partial
 * terminator over in *matched. */
static unsigned count_heads(int *matched, const char *data, size_t len) {
    static const char end[] = "\r\n\r\n";
    unsigned heads = 0;
    int m = *matched;
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (ch == end[m]) {
            if (++m == 4) {
                heads++;
                m = 0;
            }
        } else {
            m = ch == '\r' ? 1 : 0;
        }
    }
    *matched = m;
    return heads;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    conn *c = stream->data;
    if (nread < 0) {
        close_conn(c);
        return;
    }
    unsigned heads = count_heads(&c->matched, buf->base, (size_t)nread);
    if (heads == 0) {
        return;
    }
    requests += heads;
    write_batch *w = malloc(sizeof *w + heads * sizeof w->bufs[0]);
    if (w == NULL) {
        close_conn(c);
        return;
    }
    for (unsigned i = 0; i < heads; i++) {
        w->bufs[i] = uv_buf_init(response, (unsigned)RESPONSE_LEN);
    }
    if (uv_write(&w->req, stream, w->bufs, heads, on_write) != 0) {
        free(w);
        close_conn(c);
    }
}

static void on_connection(uv_stream_t *server, int status) {
    if (status < 0) {
        fprintf(stderr, "uv_hello: accept: %s\n", uv_strerror(status));
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return;
    }
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        close_conn(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        close_conn(c);
    }
}

static void close_any(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) {
        /* Connections own their memory (data); the listener and the
         * signal handles live in main's frame (data NULL). */
        uv_close(h, h->data != NULL ? on_close : NULL);
    }
}

static void on_signal(uv_signal_t *sig, int signum) {
    (void)signum;
    uv_walk(sig->loop, close_any, NULL);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    if (argc > 2 || port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
        return 64;
    }
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    uv_signal_t sigterm, sigint;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(loop, &server);
    server.data = NULL;
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&server, SOMAXCONN, on_connection);
    }
    if (rc != 0) {
        fprintf(stderr, "uv_hello: 127.0.0.1:%d: %s\n", port, uv_strerror(rc));
        return 1;
    }
    struct sockaddr_storage bound;
    int len = (int)sizeof bound;
    uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
    fprintf(stderr, "uv_hello: listening on http://127.0.0.1:%d/\n",
            ntohs(((struct sockaddr_in *)&bound)->sin_port));
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    sigterm.data = sigint.data = NULL;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    fprintf(stderr, "uv_hello: %llu requests\n", requests);
    return 0;
}
