/* tests/fuzz/fuzz_http.c: libFuzzer target for the HTTP core: bytes through
 * the real parser (llhttp and http.c), router, dispatch, answers and the
 * connection state machine (conn.c), on a real loop and a real socket.
 *
 * One server lives for the whole run, built like gyred's (limits made small
 * so that inputs reach them) but with routes of its own, and its loop is
 * driven from the fuzzer's thread (gy__loop_adopt): no loop thread, so each
 * input runs the same way every time, except for the thread that answers
 * /thread. Each input is one connection: one end of a socketpair handed to
 * the loop, the bytes written in chunks (each chunk read by the server
 * alone before the next is written), then a half-close, then the loop runs
 * until the server has closed. The input is
 *
 *   byte 0        bits 0-2: number of split lengths that follow (0..7);
 *                 bit 3: write the first 256 bytes one byte at a time;
 *                 bit 4: before the half-close, wait until the server is
 *                 idle (everything answered, nothing queued);
 *                 bit 5: faults: Gyre allocations fail (the "alloc"
 *                 failpoint, in builds with failpoints) with probability
 *                 1/64, 1/16, 1/4 or 1/2 (bits 6-7), drawn from a hash of
 *                 the input, until the server has closed
 *   split bytes   the length of each chunk before the last (0: empty)
 *   the rest      the bytes the client sends
 *
 * Checks, for every input:
 *   - the server reads every chunk and closes after the half-close, all
 *     within DEADLINE_MS (it never hangs);
 *   - what it sent parses as HTTP/1.1 responses: status lines, header lines
 *     of a token, ": " and a value without control bytes, Content-Length
 *     framing (a HEAD answer has none of its body), 100 Continue only as an
 *     interim line, nothing after a "Connection: close" answer;
 *   - it sent exactly one final answer for each request it counted as
 *     answered and each request it refused as bad (gy_server_get_stats;
 *     not under faults, where answers may be static or the close early);
 *   - once the connection is closed and a full collection has run, the
 *     heap holds as many objects as before the input (nothing leaked,
 *     cycles included).
 *
 *   ./tools/fuzz http 600                         (a campaign)
 *   build/debug/tests/fuzz/fuzz_http -dict=tests/fuzz/http.dict CORPUS_DIR
 * ctest fuzz.http_requests runs a short seeded slice over the seed corpus
 * (tests/fuzz/corpus/http) and the regression inputs (tests/fuzz/regress/).
 * GY_FUZZ_SHOW=1 prints what the server sent for each input; GY_FUZZ_LOG=1
 * keeps the server's log lines; GY_FUZZ_DEADLINE_MS=N shortens the deadline
 * (to minimise a hang quickly). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "gyre/failpoint.h"
#include "gy_collect.h" /* gy_test_collect: a collection from this loop */
#include "gyre/gc.h"
#include "loop_adopt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEADLINE_MS 10000   /* per input (GY_FUZZ_DEADLINE_MS); a normal one takes ms */
#define BYTEWISE_MAX 256    /* bytes written one at a time in bytewise mode */
#define OUT_MAX (64u << 20) /* more output than this is a runaway server */

static gy_server *g_srv;
static gy__loop *g_loop;
static uint64_t g_objects; /* live objects between inputs */
static char g_dir[] = "/tmp/gyre-fuzz-http-XXXXXX";
static char g_sock[128];
static bool g_show;
static uint64_t g_deadline_ms = DEADLINE_MS;

/* --- the routes ------------------------------------------------------------------ */

static int h_root(gy_request *req, void *arg) {
    (void)arg;
    return gy_request_respond(req, 200, "text/plain", "hello\n", 6);
}

/* POST|PUT /echo: the body back, with the request's Content-Type. */
static int h_echo(gy_request *req, void *arg) {
    (void)arg;
    size_t len;
    const char *body = gy_request_body(req, &len);
    const char *ctype = gy_request_header(req, "Content-Type");
    return gy_request_respond(req, 200, ctype ? ctype : "application/octet-stream", body, len);
}

static long query_long(gy_request *req, const char *key, long dflt, long max) {
    long v;
    if (gy_request_query_int(req, key, &v) != GY_OK || v < 0) {
        return dflt;
    }
    return v > max ? max : v;
}

/* GET /later?ms=N: answered from a timer on the loop (N <= 2). */
static void later_fire(gy_request *req, void *arg) {
    (void)arg;
    gy_request_respond(req, 200, "text/plain", "later\n", 6);
}
static int h_later(gy_request *req, void *arg) {
    (void)arg;
    int rc = gy_request_after(req, (uint64_t)query_long(req, "ms", 0, 2), later_fire, NULL);
    return rc == GY_OK ? GY_HANDLER_LATER : rc;
}

/* GET /thread?n=N: answered by another thread (the answer is posted to the
 * loop); with n, streamed in n pieces (0..8). The thread is the harness's
 * own, attached like a worker: one request at a time, a reference held. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    gy_request *req;  /* strong: the one to answer */
    bool flush;       /* pass a safe point */
    _Atomic int busy; /* a request or a flush handed over, not yet done */
} g_th = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void thread_answer(gy_request *req) {
    long n = query_long(req, "n", 0, 8);
    if (n == 0) {
        gy_request_respond(req, 200, "text/plain", "threaded\n", 9);
    } else if (gy_request_stream_begin(req, 200, "text/plain", (uint64_t)n * 4) == GY_OK) {
        for (long i = 0; i < n; i++) {
            gy_request_stream_write(req, "abc\n", 4);
        }
    }
}

static void *thread_main(void *arg) {
    (void)arg;
    gy_thread_options o = {.kind = GY_THREAD_PLAIN, .name = "fuzz-answers"};
    if (gy_thread_attach(&o, NULL) != GY_OK) {
        abort();
    }
    for (;;) {
        gy_quiescent_begin(); /* waiting, holding nothing */
        pthread_mutex_lock(&g_th.lock);
        while (g_th.req == NULL && !g_th.flush) {
            pthread_cond_wait(&g_th.cond, &g_th.lock);
        }
        gy_request *req = g_th.req;
        g_th.req = NULL;
        g_th.flush = false;
        pthread_mutex_unlock(&g_th.lock);
        gy_quiescent_end();
        if (req != NULL) {
            thread_answer(req);
            gy_decref(req);
        }
        gy_safepoint();
        atomic_store(&g_th.busy, 0);
    }
    return NULL;
}

static void thread_hand(gy_request *req, bool flush) {
    pthread_mutex_lock(&g_th.lock);
    g_th.req = req;
    g_th.flush = flush;
    atomic_store(&g_th.busy, 1);
    pthread_cond_signal(&g_th.cond);
    pthread_mutex_unlock(&g_th.lock);
}

static bool g_threaded; /* an input reached the thread */
static int h_thread(gy_request *req, void *arg) {
    (void)arg;
    /* One at a time: the previous request's answer is out (requests on a
     * connection are answered in order), but the thread may not have
     * dropped it yet. */
    while (atomic_load(&g_th.busy)) {
        gy_quiescent_begin();
        usleep(10);
        gy_quiescent_end();
    }
    g_threaded = true;
    gy_incref(req);
    thread_hand(req, false);
    return GY_HANDLER_LATER;
}

/* GET /stream?n=N: streamed from the handler itself, n pieces (0..8). */
static int h_stream(gy_request *req, void *arg) {
    (void)arg;
    long n = query_long(req, "n", 2, 8);
    int rc = gy_request_stream_begin(req, 200, "text/plain", (uint64_t)n * 4);
    for (long i = 0; rc == GY_OK && i < n; i++) {
        rc = gy_request_stream_write(req, "xyz\n", 4);
    }
    return rc;
}

/* GET /big?kb=N: N KiB (0..1280: past the server's 1 MiB write mark). */
static int h_big(gy_request *req, void *arg) {
    (void)arg;
    size_t len = (size_t)query_long(req, "kb", 64, 1280) * 1024;
    char *body = malloc(len ? len : 1);
    if (body == NULL) {
        return GY_ENOMEM;
    }
    memset(body, 'b', len);
    int rc = gy_request_respond(req, 200, "application/octet-stream", body, len);
    free(body);
    return rc;
}

/* GET|PUT|DELETE /cache/...: the tail back. */
static int h_cache(gy_request *req, void *arg) {
    (void)arg;
    const char *tail = gy_request_path_tail(req);
    return gy_request_respond(req, strcmp(gy_request_method(req), "PUT") == 0 ? 201 : 200,
                              "text/plain", tail, strlen(tail));
}

/* GET /headers: the query as a response header (refused if it is not a
 * valid value), the request's header names as the body. */
static int h_headers(gy_request *req, void *arg) {
    (void)arg;
    if (gy_request_set_header(req, "X-Query", gy_request_query(req)) != GY_OK) {
        return gy_request_respond(req, 400, "text/plain", "bad value\n", 10);
    }
    char body[1024];
    size_t used = 0;
    for (size_t i = 0; i < gy_request_header_count(req); i++) {
        const char *name, *value;
        if (gy_request_header_at(req, i, &name, &value) == GY_OK) {
            int n = snprintf(body + used, sizeof body - used, "%s\n", name);
            if (n < 0 || (size_t)n >= sizeof body - used) {
                break;
            }
            used += (size_t)n;
        }
    }
    const char *host = gy_request_header(req, "host");
    gy_request_set_header(req, "X-Host-Length", host ? (strlen(host) ? "some" : "0") : "none");
    return gy_request_respond(req, 200, "text/plain", body, used);
}

/* GET /fail: an error without an answer (the framework answers 500). */
static int h_fail(gy_request *req, void *arg) {
    (void)req, (void)arg;
    return GY_EINVAL;
}

/* GET /twice: a second answer is refused and changes nothing. */
static int h_twice(gy_request *req, void *arg) {
    (void)arg;
    int rc = gy_request_respond(req, 204, NULL, NULL, 0);
    if (rc == GY_OK && gy_request_respond(req, 200, "text/plain", "again\n", 6) != GY_ESTATE) {
        fprintf(stderr, "fuzz_http: a second answer was not refused\n");
        abort();
    }
    return rc;
}

static const struct {
    const char *method, *path;
    gy_handler_fn fn;
} g_routes[] = {
    {"GET", "/", h_root},           {"POST", "/echo", h_echo},
    {"PUT", "/echo", h_echo},       {"GET", "/later", h_later},
    {"GET", "/thread", h_thread},   {"GET", "/stream", h_stream},
    {"GET", "/big", h_big},         {"GET", "/cache/...", h_cache},
    {"PUT", "/cache/...", h_cache}, {"DELETE", "/cache/...", h_cache},
    {"GET", "/headers", h_headers}, {"GET", "/fail", h_fail},
    {"GET", "/twice", h_twice},
};

/* --- the server ------------------------------------------------------------------ */

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t live_objects(void) {
    gy_runtime_stats st;
    gy_runtime_get_stats(&st);
    return st.objects_live;
}

/* A full collection, then the objects left alive. This thread is a loop
 * (gy__loop_adopt): in concurrent mode gy_gc_collect is refused there
 * (GY_ESTATE: a loop never waits for the collector), so gy_test_collect asks
 * with gy_gc_collect_async and passes safe points until the answer is
 * delivered. The safe point after it runs what the collection handed to
 * this loop: the clears of its loop-affine trash (connections) and the
 * frees of its objects whose last reference the collector's thread
 * dropped. */
static uint64_t settle(void) {
    gy_safepoint();
    gy_errmsg err = {0};
    int rc = gy_test_collect(2, NULL, &err);
    if (rc != GY_OK) {
        fprintf(stderr, "fuzz_http: settle: gy_gc_collect: %s (%s)\n", gy_err_name(rc), err.text);
        abort();
    }
    gy_safepoint();
    return live_objects();
}

static void cleanup(void) {
    unlink(g_sock);
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    signal(SIGPIPE, SIG_IGN);
    gy_errmsg err;
    if (gy_runtime_init(NULL, &err) != GY_OK) {
        abort();
    }
    if (mkdtemp(g_dir) == NULL) {
        abort();
    }
    atexit(cleanup);
    snprintf(g_sock, sizeof g_sock, "%s/gyre.sock", g_dir);
    gy_config *cfg;
    /* Small limits: short inputs reach each of them; answer_timeout at its
     * least, for a handler that cannot answer (faults). */
    const char *names[] = {"listen",        "metrics_listen",   "admin_socket",
                           "threads",       "max_header_bytes", "max_header_count",
                           "max_uri_bytes", "max_body_bytes",   "max_requests_per_connection",
                           "answer_timeout"};
    const char *values[] = {"127.0.0.1:0", "127.0.0.1:0", g_sock, "1", "1k",
                            "8",           "256",         "2k",   "8", "100ms"};
    size_t n = sizeof names / sizeof *names;
    if (gy_config_new(&cfg) != GY_OK ||
        gy_config_set_many(cfg, n, names, values, "fuzz", false, &err) != GY_OK ||
        gy_server_new(&g_srv, cfg, &err) != GY_OK) {
        fprintf(stderr, "fuzz_http: %s\n", err.text);
        abort();
    }
    gy_config_free(cfg);
    for (size_t i = 0; i < sizeof g_routes / sizeof *g_routes; i++) {
        if (gy_server_route(g_srv, g_routes[i].method, g_routes[i].path, g_routes[i].fn, NULL) !=
            GY_OK) {
            abort();
        }
    }
    /* The server's log lines (a handler without an answer, bad requests at
     * debug) are noise here: GY_FUZZ_LOG=1 keeps them. */
    if (getenv("GY_FUZZ_LOG") == NULL) {
        gy__log_set_level((gy_log_level)(GY_LOG_ERROR + 1));
    }
    g_loop = &g_srv->loops[0];
    if (gy__loop_adopt(g_loop, &err) != GY_OK) {
        fprintf(stderr, "fuzz_http: %s\n", err.text);
        abort();
    }
    pthread_t th;
    if (pthread_create(&th, NULL, thread_main, NULL) != 0) {
        abort();
    }
    g_objects = settle();
    /* A few connections first, so that the first input finds the heap as
     * later ones do (segments made): an input under faults fails the same
     * allocations whether it runs first or later. */
    static const char *warm[] = {
        "\x10GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD /stream HTTP/1.1\r\nHost: a\r\n\r\n",
        "\x10POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
        "\x10GET /later HTTP/1.1\r\nHost: a\r\n\r\nGET /thread?n=2 HTTP/1.1\r\nHost: a\r\n\r\n",
        "\x10GET /headers?q HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
    };
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < sizeof warm / sizeof *warm; i++) {
            LLVMFuzzerTestOneInput((const uint8_t *)warm[i], strlen(warm[i]));
        }
    }
    g_show = getenv("GY_FUZZ_SHOW") != NULL;       /* print what the server sent */
    const char *d = getenv("GY_FUZZ_DEADLINE_MS"); /* shorter: to minimise a hang */
    if (d != NULL && atoi(d) > 0) {
        g_deadline_ms = (uint64_t)atoi(d);
    }
    return 0;
}

/* --- one connection ---------------------------------------------------------------- */

typedef struct client {
    int fd;
    bool eof;        /* the server closed its end */
    uint64_t by_ms;  /* the deadline */
    char *out;       /* everything the server sent */
    size_t len, cap; /* (the buffer is kept across inputs) */
} client;

static client g_c;

static void die(const char *what) {
    gy__io *io = g_loop->conns;
    fprintf(stderr, "fuzz_http: %s (connections %llu, tasks %llu", what,
            (unsigned long long)g_loop->nconns, (unsigned long long)g_loop->tasks);
    if (io != NULL) {
        fprintf(stderr, ", tmode %d cur %p waiting %d reading %d close_after %d eof %d shut %d",
                (int)io->tmode, (void *)io->cur, io->waiting, io->reading, io->close_after, io->eof,
                io->shut);
    }
    fprintf(stderr, "; %zu bytes received)\n%.*s\n", g_c.len,
            (int)(g_c.len < 2000 ? g_c.len : 2000), g_c.out);
    abort();
}

/* Read what the server sent so far. */
static void collect(void) {
    for (;;) {
        if (g_c.cap - g_c.len < 65536) {
            if (g_c.cap >= OUT_MAX) {
                die("runaway output");
            }
            size_t cap = g_c.cap ? g_c.cap * 2 : 1 << 20;
            char *p = realloc(g_c.out, cap);
            if (p == NULL) {
                abort();
            }
            g_c.out = p;
            g_c.cap = cap;
        }
        ssize_t n = read(g_c.fd, g_c.out + g_c.len, g_c.cap - g_c.len);
        if (n > 0) {
            g_c.len += (size_t)n;
        } else if (n == 0) {
            g_c.eof = true;
            return;
        } else if (errno != EINTR) {
            return; /* EAGAIN */
        }
    }
}

static void step(void) {
    uv_run(&g_loop->uv, UV_RUN_NOWAIT);
    collect();
    if (now_ms() > g_c.by_ms) {
        die("no progress within the deadline");
    }
}

/* Block until the loop or the client socket has something (at most 20 ms),
 * quiescent meanwhile like the loop in its poll. */
static void wait_event(void) {
    int timeout = uv_backend_timeout(&g_loop->uv);
    if (timeout < 0 || timeout > 20) {
        timeout = 20;
    }
    /* (After the server's FIN the client socket is always readable.) */
    struct pollfd p[2] = {{.fd = g_c.eof ? -1 : g_c.fd, .events = POLLIN},
                          {.fd = uv_backend_fd(&g_loop->uv), .events = POLLIN}};
    gy_quiescent_begin();
    poll(p, 2, timeout);
    gy_quiescent_end();
}

/* The server has read everything written so far, or stopped reading (an
 * answer pending, or its last answer decided), or closed. */
static bool consumed(void) {
    gy__io *io = g_loop->conns;
    if (io == NULL || io->closing || !io->reading) {
        return true;
    }
    uv_os_fd_t fd;
    int unread = 0;
    return uv_fileno((uv_handle_t *)&io->tcp, &fd) != 0 || ioctl(fd, FIONREAD, &unread) != 0 ||
           unread == 0;
}

/* A timer or the answering thread holds a request. */
static bool busy(void) { return atomic_load(&g_loop->tasks) != 0 || atomic_load(&g_th.busy) != 0; }

/* Nothing in flight: every request answered and written, no timer or job. */
static bool idle(void) {
    gy__io *io = g_loop->conns;
    if (io == NULL || io->closing) {
        return !busy();
    }
    return io->cur == NULL && !io->waiting && io->out.len == 0 && io->writing == 0 && !busy();
}

static void send_chunk(const uint8_t *p, size_t len) {
    while (len > 0) {
        ssize_t n = write(g_c.fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return; /* the server closed: the rest is not read */
        } else {
            step(); /* the socket is full: let the server read */
            if (g_loop->nconns == 0) {
                return;
            }
        }
    }
    for (int i = 0; !consumed(); i++) {
        step();
        if (i > 100) {
            wait_event();
        }
    }
}

/* Objects the answering thread made (an answer, its bytes) and the loop
 * dropped are handed back to it and freed at its next safe point: give it
 * one, and wait. */
static void flush_thread(void) {
    thread_hand(NULL, true);
    while (atomic_load(&g_th.busy)) {
        gy_quiescent_begin();
        usleep(50);
        gy_quiescent_end();
    }
}

/* --- the answers ------------------------------------------------------------------- */

static bool is_tchar(unsigned char c) { return gy__is_tchar(c); }

/* One response head at p[0..len): its length (0: not a valid head), the
 * status, Content-Length (-1: none) and whether it says Connection: close. */
static size_t parse_head(const char *p, size_t len, int *status, long long *clen, bool *close) {
    static const char proto[] = "HTTP/1.1 ";
    if (len < 13 || memcmp(p, proto, 9) != 0) {
        return 0;
    }
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
    }
    *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (*status < 100 || *status > 599 || p[12] != ' ') {
        return 0;
    }
    size_t i = 13;
    while (i < len && p[i] != '\r') {
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
            return 0;
        }
        i++;
    }
    if (i == 13 || i + 1 >= len || p[i + 1] != '\n') {
        return 0; /* an empty reason, or the head is cut */
    }
    i += 2;
    *clen = -1;
    *close = false;
    for (;;) {
        if (i + 1 >= len) {
            return 0;
        }
        if (p[i] == '\r') {
            return p[i + 1] == '\n' ? i + 2 : 0;
        }
        size_t name = i;
        while (i < len && is_tchar((unsigned char)p[i])) {
            i++;
        }
        size_t nlen = i - name;
        if (nlen == 0 || i + 1 >= len || p[i] != ':' || p[i + 1] != ' ') {
            return 0;
        }
        i += 2;
        size_t value = i;
        while (i < len && p[i] != '\r') {
            unsigned char c = (unsigned char)p[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                return 0;
            }
            i++;
        }
        if (i + 1 >= len || p[i + 1] != '\n') {
            return 0;
        }
        size_t vlen = i - value;
        i += 2;
        if (nlen == 14 && strncasecmp(p + name, "Content-Length", 14) == 0) {
            if (*clen != -1 || vlen == 0 || vlen > 12) {
                return 0;
            }
            long long v = 0;
            for (size_t k = 0; k < vlen; k++) {
                if (p[value + k] < '0' || p[value + k] > '9') {
                    return 0;
                }
                v = v * 10 + (p[value + k] - '0');
            }
            *clen = v;
        } else if (nlen == 10 && strncasecmp(p + name, "Connection", 10) == 0) {
            *close = vlen == 5 && strncasecmp(p + value, "close", 5) == 0;
        }
    }
}

/* Memo of answers(pos, k): 0 unknown, 1 yes, 2 no. */
#define MEMO_SIZE 4096
static struct {
    size_t pos;
    int k;
    uint8_t v;
} g_memo[MEMO_SIZE];

static bool g_cut_ok; /* under faults: the last answer may be cut short */

/* Does out[pos..] parse as exactly k final answers (k < 0: any number)?
 * The one ambiguity, a HEAD answer (Content-Length but no body), is tried
 * both ways. */
static bool answers(const char *out, size_t len, size_t pos, int k) {
    if (pos == len) {
        return k <= 0;
    }
    size_t slot = (pos * 31u + (size_t)(k + 1)) % MEMO_SIZE;
    if (g_memo[slot].v != 0 && g_memo[slot].pos == pos && g_memo[slot].k == k) {
        return g_memo[slot].v == 1;
    }
    int status;
    long long clen;
    bool close;
    size_t h = parse_head(out + pos, len - pos, &status, &clen, &close);
    bool ok = false;
    if (h == 0) {
        ok = false;
    } else if (status >= 200 && k == 0) {
        ok = false; /* one final answer too many */
    } else if (status < 200) {
        /* Interim: only "100 Continue", no header lines. */
        ok = status == 100 && h == 25 && !close && answers(out, len, pos + h, k);
    } else if (status == 204 || status == 304) {
        ok = clen == -1 && (close ? pos + h == len && k <= 1 : answers(out, len, pos + h, k - 1));
    } else if (clen >= 0) {
        size_t with = pos + h + (size_t)clen;
        if (with > len && g_cut_ok) {
            /* A streamed answer cut short (a piece lost under faults): the
             * last thing sent. */
            ok = k <= 1 || answers(out, len, pos + h, k - 1);
        } else if (close) {
            /* The last thing sent: the body to the end, or none (HEAD). */
            ok = (with == len || pos + h == len) && k <= 1;
        } else {
            ok = (with <= len && answers(out, len, with, k - 1)) ||
                 (clen > 0 && answers(out, len, pos + h, k - 1));
        }
    }
    g_memo[slot].pos = pos;
    g_memo[slot].k = k;
    g_memo[slot].v = ok ? 1 : 2;
    return ok;
}

/* FNV-1a: the failpoint's seed, from the input. */
static unsigned hash(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

/* --- an input ------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) {
        return 0;
    }
    unsigned nsplit = data[0] & 7;
    bool bytewise = (data[0] & 8) != 0, wait_idle = (data[0] & 16) != 0;
    bool faults = (data[0] & 32) != 0 && gy_failpoints_available();
    if (size < 1 + nsplit) {
        return 0;
    }
    const uint8_t *splits = data + 1, *p = data + 1 + nsplit;
    size_t len = size - 1 - nsplit;

    gy_server_stats before, after;
    gy_server_get_stats(g_srv, &before);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        abort();
    }
    g_c.fd = sv[0];
    g_c.eof = false;
    g_c.len = 0;
    g_c.by_ms = now_ms() + g_deadline_ms;
    if (faults) {
        char spec[64];
        snprintf(spec, sizeof spec, "prob:%s:%u",
                 (const char *[]){"0.015625", "0.0625", "0.25", "0.5"}[data[0] >> 6],
                 hash(data, size));
        if (gy_failpoint_set("alloc", spec, NULL) != GY_OK) {
            abort();
        }
    }
    gy__conn_accept(g_loop, sv[1]); /* the loop owns sv[1] from here */
    if (g_loop->nconns != 1 && !faults) {
        die("the connection was not accepted");
    }

    size_t at = 0;
    if (bytewise) {
        for (; at < len && at < BYTEWISE_MAX && g_loop->nconns != 0; at++) {
            send_chunk(p + at, 1);
        }
    }
    for (unsigned i = 0; i < nsplit && at < len && g_loop->nconns != 0; i++) {
        size_t n = splits[i] < len - at ? splits[i] : len - at;
        send_chunk(p + at, n);
        at += n;
    }
    if (at < len && g_loop->nconns != 0) {
        send_chunk(p + at, len - at);
    }
    while (wait_idle && g_loop->nconns != 0 && !idle()) {
        step();
        if (!idle()) {
            wait_event();
        }
    }
    shutdown(g_c.fd, SHUT_WR);
    /* The server must close (it has everything, and the end of it). */
    while (g_loop->nconns != 0 || busy() || !g_c.eof) {
        step();
        if (g_loop->nconns != 0 || busy() || !g_c.eof) {
            wait_event();
        }
    }
    close(g_c.fd);
    if (faults) {
        gy_failpoint_set("alloc", "off", NULL);
    }
    if (g_show) {
        fprintf(stderr, "--- %zu bytes sent by the server:\n%.*s\n---\n", g_c.len, (int)g_c.len,
                g_c.out);
    }

    /* One final answer for each request answered or refused as bad (a
     * timeout, unlikely here, answers without a count: then any number). */
    gy_server_get_stats(g_srv, &after);
    int expect = -1;
    if (after.timeouts == before.timeouts && !faults) {
        expect =
            (int)((after.requests - before.requests) + (after.bad_requests - before.bad_requests) +
                  (after.connections_refused - before.connections_refused));
    }
    memset(g_memo, 0, sizeof g_memo);
    g_cut_ok = faults;
    if (!answers(g_c.out, g_c.len, 0, expect)) {
        fprintf(stderr, "fuzz_http: expected %d answers (requests %llu, bad %llu)\n", expect,
                (unsigned long long)(after.requests - before.requests),
                (unsigned long long)(after.bad_requests - before.bad_requests));
        die("the answers do not parse");
    }

    /* Everything the connection made is gone (its cycles after a full
     * collection). */
    uint64_t live = settle();
    if (g_threaded) {
        g_threaded = false;
        flush_thread();
        live = settle();
    }
    if (live != g_objects) {
        fprintf(stderr, "fuzz_http: %llu objects alive after the input, %llu before\n",
                (unsigned long long)live, (unsigned long long)g_objects);
        die("objects leaked");
    }
    return 0;
}
