/* tools/example/example.c: a service built on the *installed* gyre-server
 * (the test suite compiles it with `pkg-config --cflags --libs gyre-server`
 * against a `cmake --install` prefix). Two routes:
 *   GET /hello         answered at once
 *   GET /later?ms=N    answered N ms later from a timer on the same loop
 *   GET /stream?n=N    N pieces streamed from a worker thread, 10 ms apart
 * Run it like gyred: ./example --listen 127.0.0.1:8081 (all gyred flags). */
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c11 */
#include <stdio.h>
#include <time.h>

#include "gyre/gyre.h"
#include "gyre/server.h"

static int hello(gy_request *req, void *arg) {
    (void)arg;
    return gy_request_respond(req, 200, "text/plain", "hello from example\n", 19);
}

static void later_fire(gy_request *req, void *arg) {
    char body[64];
    int n = snprintf(body, sizeof body, "answered after %ld ms\n", (long)(intptr_t)arg);
    gy_request_respond(req, 200, "text/plain", body, (size_t)n);
}

static int later(gy_request *req, void *arg) {
    (void)arg;
    long ms;
    if (gy_request_query_int(req, "ms", &ms) != GY_OK || ms < 0 || ms > 10000) {
        return gy_request_respond(req, 400, "text/plain", "ms must be 0..10000\n", 20);
    }
    /* The timer holds a reference to the request until it fires. */
    int rc = gy_request_after(req, (uint64_t)ms, later_fire, (void *)(intptr_t)ms);
    return rc == GY_OK ? GY_HANDLER_LATER : rc;
}

/* On a worker: the head, then one 8-byte piece every 10 ms. */
static void stream_work(gy_request *req, void *arg) {
    long n = (long)(intptr_t)arg;
    if (gy_request_stream_begin(req, 200, "text/plain", (uint64_t)n * 8) != GY_OK) {
        return; /* the loop answers 500 for a job that did not answer */
    }
    for (long i = 0; i < n; i++) {
        char piece[9];
        snprintf(piece, sizeof piece, "piece%02ld\n", i % 100);
        gy_request_stream_write(req, piece, 8);
        struct timespec ts = {0, 10 * 1000000L};
        gy_quiescent_begin(); /* blocking: never hold a collection back */
        nanosleep(&ts, NULL);
        gy_quiescent_end();
    }
}

static int stream(gy_request *req, void *arg) {
    (void)arg;
    long n;
    if (gy_request_query_int(req, "n", &n) != GY_OK || n < 0 || n > 1000) {
        return gy_request_respond(req, 400, "text/plain", "n must be 0..1000\n", 18);
    }
    int rc = gy_request_submit(req, stream_work, (void *)(intptr_t)n);
    return rc == GY_OK ? GY_HANDLER_LATER : rc;
}

static int setup(gy_server *srv, void *arg) {
    (void)arg;
    int rc = gy_server_route(srv, "GET", "/hello", hello, NULL);
    if (rc == GY_OK) {
        rc = gy_server_route(srv, "GET", "/later", later, NULL);
    }
    return rc != GY_OK ? rc : gy_server_route(srv, "GET", "/stream", stream, NULL);
}

int main(int argc, char **argv) {
    gy_server_app app = {.name = "example", .setup = setup};
    return gy_server_main(argc, argv, &app);
}
