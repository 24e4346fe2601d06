/* server/src/loop.c: an event loop thread: a Gyre loop thread running a uv
 * loop, its listener, the posts other threads hand it, and its stop.
 *
 * Gyre and libuv meet in two handles: the prepare callback (just before
 * libuv blocks in epoll) passes a safe point and declares the thread
 * quiescent, so a collection never waits for an idle loop; every callback
 * the poll phase can run starts with gy__loop_enter, which ends the
 * quiescence before touching any object, and the check callback ends it if
 * no callback ran. The Gyre wake function is uv_async_send. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>

#include "gyre/failpoint.h"
#include "gyre/version.h"
#include "loop_adopt.h"
#include "srv.h"

typedef struct gy__after {
    uv_timer_t timer;
    gy_request *req; /* strong */
    gy_request_fn fn;
    void *arg;
    struct gy__after *prev, *next;
} gy__after;

static _Thread_local gy__loop *gy__tls_loop;

gy__loop *gy__loop_current(void) { return gy__tls_loop; }

void gy__loop_update_date(gy__loop *loop) {
    time_t now = time(NULL);
    if (now != loop->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(loop->date, sizeof loop->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        loop->date_sec = now;
        int n = snprintf(loop->server_date, sizeof loop->server_date,
                         "Server: " GY__SERVER_NAME "/" GY_VERSION_STRING "\r\nDate: %s\r\n",
                         loop->date);
        loop->server_date_len = n > 0 && (size_t)n < sizeof loop->server_date ? (size_t)n : 0;
    }
}

/* The runtime's wake function: called only while this loop is attached, and
 * the async handle is closed only after detaching, so it is always valid. */
static void gy__loop_wake(void *arg) {
    gy__loop *loop = arg;
    uv_async_send(&loop->async);
}

bool gy__loop_post(gy__loop *loop, gy__post_kind kind, gy_request *req, gy_bytes *chunk) {
    /* internal: a hand-off node (the faults test loses posts with it). */
    gy__post *p = gy_failpoint("internal") ? NULL : malloc(sizeof *p);
    if (p != NULL) {
        p->next = NULL;
        p->kind = kind;
        p->req = req;
        p->chunk = chunk;
        pthread_mutex_lock(&loop->post_lock);
        if (!loop->closed) {
            if (loop->post_tail) {
                loop->post_tail->next = p;
            } else {
                loop->post_head = p;
            }
            loop->post_tail = p;
            /* Under the lock: the loop closes the handle only after setting
             * `closed` under it. */
            uv_async_send(&loop->async);
            pthread_mutex_unlock(&loop->post_lock);
            return true;
        }
        pthread_mutex_unlock(&loop->post_lock);
        free(p);
    }
    gy__server_log(GY_LOG_DEBUG, "loop %d closed: an answer was dropped", loop->index);
    if (kind == GY__POST_WORK_DONE) {
        atomic_fetch_sub_explicit(&loop->tasks, 1, memory_order_relaxed);
    }
    gy_xdecref(chunk);
    gy_decref(req);
    return false;
}

bool gy__loop_has_posts(gy__loop *loop) {
    pthread_mutex_lock(&loop->post_lock);
    bool some = loop->post_head != NULL;
    pthread_mutex_unlock(&loop->post_lock);
    return some;
}

static gy__post *gy__loop_take_posts(gy__loop *loop, bool close) {
    pthread_mutex_lock(&loop->post_lock);
    gy__post *list = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    if (close) {
        loop->closed = true;
    }
    pthread_mutex_unlock(&loop->post_lock);
    return list;
}

static void gy__loop_run_posts(gy__loop *loop, gy__post *p) {
    while (p != NULL) {
        gy__post *next = p->next;
        if (p->kind == GY__POST_ANSWER) {
            gy__conn_answered(loop, p->req);
        } else if (p->kind == GY__POST_CHUNK) {
            gy__conn_stream_chunk(loop, p->req, p->chunk);
        } else {
            if (!atomic_load_explicit(&p->req->answered, memory_order_acquire) &&
                !atomic_load_explicit(&loop->srv->forced, memory_order_relaxed)) {
                gy__server_log(GY_LOG_ERROR, "work for %s %s returned without answering",
                               p->req->method, p->req->path);
                gy_request_respond(p->req, 500, "text/plain", "internal error\n", 15);
            }
            atomic_fetch_sub_explicit(&loop->tasks, 1, memory_order_relaxed);
        }
        gy_decref(p->req);
        free(p);
        p = next;
    }
}

static void gy__close_cb_noop(uv_handle_t *h) { (void)h; }

static void gy__after_closed(uv_handle_t *h) {
    gy__after *a = h->data;
    gy_decref(a->req);
    free(a);
}

static void gy__after_remove(gy__loop *loop, gy__after *a) {
    if (a->prev) {
        a->prev->next = a->next;
    } else {
        loop->afters = a->next;
    }
    if (a->next) {
        a->next->prev = a->prev;
    }
    atomic_fetch_sub_explicit(&loop->tasks, 1, memory_order_relaxed);
    uv_close((uv_handle_t *)&a->timer, gy__after_closed);
}

static void gy__loop_maybe_done(gy__loop *loop) {
    gy_server *srv = loop->srv;
    if (loop->done || !loop->draining_seen || loop->nconns != 0) {
        return;
    }
    bool forced = atomic_load_explicit(&srv->forced, memory_order_relaxed);
    if (!forced && atomic_load_explicit(&loop->tasks, memory_order_relaxed) != 0) {
        return;
    }
    loop->done = true;
    /* A forced stop: timers still pending fire now (their clients are gone,
     * their answers dropped), so whoever waits on them releases what it
     * holds. */
    while (loop->afters != NULL) {
        gy__after *a = loop->afters;
        a->fn(a->req, a->arg);
        gy__after_remove(loop, a);
    }
    uv_close((uv_handle_t *)&loop->prepare, gy__close_cb_noop);
    uv_close((uv_handle_t *)&loop->check, gy__close_cb_noop);
    uv_close((uv_handle_t *)&loop->trim_timer, gy__close_cb_noop);
    uv_stop(&loop->uv);
}

static void gy__loop_accept_backlog(gy__loop *loop);

static void gy__async_cb(uv_async_t *h) {
    gy__loop *loop = h->data;
    gy__loop_enter(loop);
    gy_server *srv = loop->srv;
    gy__loop_run_posts(loop, gy__loop_take_posts(loop, false));
    (void)gy__trimmer_tick(&loop->trim, srv); /* memory.purge wakes us for this */
    if (!loop->draining_seen && atomic_load_explicit(&srv->draining, memory_order_relaxed)) {
        loop->draining_seen = true;
        gy__conn_drain_all(loop, false);
        if (loop->listening) {
            gy__loop_accept_backlog(loop);
            loop->listening = false;
            uv_close((uv_handle_t *)&loop->listener, gy__close_cb_noop);
        }
    }
    if (!loop->forced_seen && atomic_load_explicit(&srv->forced, memory_order_relaxed)) {
        loop->forced_seen = true;
        gy__conn_drain_all(loop, true);
    }
    gy__loop_maybe_done(loop);
}

static void gy__prepare_cb(uv_prepare_t *h) {
    gy__loop *loop = h->data;
    gy__loop_update_date(loop);
    if (loop->draining_seen) {
        gy__loop_maybe_done(loop); /* connections closed since the last check */
        if (loop->done) {
            return;
        }
    }
    gy_safepoint();
    gy_quiescent_begin();
    loop->quiescent = true;
}

static void gy__check_cb(uv_check_t *h) { gy__loop_enter(h->data); }

/* Every second: the loop's trimmer (memory.h). A loop gives back what was
 * freed into its segments even while it idles or serves other types. */
static void gy__trim_cb(uv_timer_t *t) {
    gy__loop *loop = t->data;
    gy__loop_enter(loop);
    (void)gy__trimmer_tick(&loop->trim, loop->srv);
}

static void gy__connection_cb(uv_stream_t *server, int status) {
    gy__loop *loop = server->data;
    gy__loop_enter(loop);
    if (status < 0) {
        gy__server_log(GY_LOG_WARN, "accept: %s", uv_strerror(status));
        return;
    }
    gy__conn_accept(loop, -1);
}

/* The drain: accept every connection waiting in this loop's listen backlog
 * before the listener closes (closing it would reset them); they are
 * served within drain_grace like idle keep-alive connections. */
static void gy__loop_accept_backlog(gy__loop *loop) {
    uv_os_fd_t lfd;
    if (uv_fileno((uv_handle_t *)&loop->listener, &lfd) != 0) {
        return;
    }
    for (int n = 0; n < 100000; n++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            return; /* EAGAIN: the backlog is empty (or an error: stop) */
        }
        gy__conn_accept(loop, fd);
    }
}

static void gy__count_handles(uv_handle_t *h, void *arg) {
    int *n = arg;
    if (h->type != UV_ASYNC) {
        (*n)++;
    }
}

static int gy__loop_other_handles(gy__loop *loop) {
    int n = 0;
    uv_walk(&loop->uv, gy__count_handles, &n);
    return n;
}

static void *gy__loop_main(void *arg) {
    gy__loop *loop = arg;
    gy__tls_loop = loop;
    char name[32];
    snprintf(name, sizeof name, "loop-%d", loop->index);
    gy_thread_options o = {
        .kind = GY_THREAD_LOOP, .wake = gy__loop_wake, .wake_arg = loop, .name = name};
    gy_errmsg err;
    if (gy_thread_attach(&o, &err) != GY_OK) {
        gy__server_log(GY_LOG_ERROR, "loop %d: attach: %s", loop->index, err.text);
        loop->rc = GY_ESTATE;
        gy_server_stop(loop->srv);
    } else {
        int rc = uv_listen((uv_stream_t *)&loop->listener, 511, gy__connection_cb);
        if (rc != 0) {
            gy__server_log(GY_LOG_ERROR, "loop %d: listen: %s", loop->index, uv_strerror(rc));
            loop->rc = GY_EIO;
            gy_server_stop(loop->srv);
        }
        uv_prepare_start(&loop->prepare, gy__prepare_cb);
        uv_check_start(&loop->check, gy__check_cb);
        gy__trimmer_init(&loop->trim, loop->srv);
        uv_timer_start(&loop->trim_timer, gy__trim_cb, 1000, 1000);
        uv_unref((uv_handle_t *)&loop->trim_timer); /* never what keeps the loop running */
        uv_run(&loop->uv, UV_RUN_DEFAULT);
        gy__loop_enter(loop);
        /* Finish every close while attached (their callbacks drop refs). */
        while (gy__loop_other_handles(loop) > 0) {
            uv_run(&loop->uv, UV_RUN_NOWAIT);
        }
        gy__loop_run_posts(loop, gy__loop_take_posts(loop, true));
        gy_thread_detach();
    }
    pthread_mutex_lock(&loop->post_lock);
    loop->closed = true;
    pthread_mutex_unlock(&loop->post_lock);
    uv_close((uv_handle_t *)&loop->async, NULL);
    uv_run(&loop->uv, UV_RUN_DEFAULT);
    atomic_fetch_add_explicit(&loop->srv->loops_done, 1, memory_order_release);
    uv_async_send(&loop->srv->ctl_async);
    return NULL;
}

/* Everything a loop needs but its thread: the uv loop and its handles, the
 * read buffer, the listener opened (not yet listening). Returns 0 or a uv
 * error (what was made is left for gy_server_free). */
static int gy__loop_init(gy__loop *loop) {
    int rc = uv_loop_init(&loop->uv);
    if (rc != 0) {
        return rc;
    }
    pthread_mutex_init(&loop->post_lock, NULL);
    loop->rbuf_size = 64 * 1024;
    loop->rbuf = malloc(loop->rbuf_size);
    if (loop->rbuf == NULL) {
        return UV_ENOMEM;
    }
    uv_async_init(&loop->uv, &loop->async, gy__async_cb);
    loop->async.data = loop;
    uv_prepare_init(&loop->uv, &loop->prepare);
    loop->prepare.data = loop;
    uv_check_init(&loop->uv, &loop->check);
    loop->check.data = loop;
    uv_timer_init(&loop->uv, &loop->trim_timer);
    loop->trim_timer.data = loop;
    uv_tcp_init(&loop->uv, &loop->listener);
    loop->listener.data = loop;
    rc = uv_tcp_open(&loop->listener, loop->listen_fd);
    if (rc != 0) {
        return rc;
    }
    loop->listening = true;
    gy__loop_update_date(loop);
    return 0;
}

static int gy__loop_error(const gy__loop *loop, int rc, gy_errmsg *err) {
    if (err != NULL) {
        err->code = GY_EIO;
        snprintf(err->text, sizeof err->text, "loop %d: %s", loop->index, uv_strerror(rc));
    }
    return GY_EIO;
}

int gy__loop_start(gy__loop *loop, gy_errmsg *err) {
    int rc = gy__loop_init(loop);
    if (rc != 0) {
        return gy__loop_error(loop, rc, err);
    }
    loop->started = true; /* its async handle exists: it may be woken */
    rc = pthread_create(&loop->thread, NULL, gy__loop_main, loop);
    if (rc != 0) {
        loop->started = false;
        return gy__loop_error(loop, UV_EAGAIN, err);
    }
    return GY_OK;
}

int gy__loop_adopt(gy__loop *loop, gy_errmsg *err) {
    int rc = gy__loop_init(loop);
    if (rc != 0) {
        return gy__loop_error(loop, rc, err);
    }
    gy_thread_options o = {
        .kind = GY_THREAD_LOOP, .wake = gy__loop_wake, .wake_arg = loop, .name = "loop-adopted"};
    rc = gy_thread_attach(&o, err);
    if (rc != GY_OK) {
        return rc;
    }
    loop->started = true;
    loop->thread = pthread_self();
    gy__tls_loop = loop;
    /* As gy__loop_main, but the listener is not served and the trim timer
     * not started (the loop trims when woken; no timer of its own fires in
     * the middle of a test's step). */
    uv_prepare_start(&loop->prepare, gy__prepare_cb);
    uv_check_start(&loop->check, gy__check_cb);
    gy__trimmer_init(&loop->trim, loop->srv);
    return GY_OK;
}

/* --- gy_request_after ----------------------------------------------------------- */

static void gy__after_cb(uv_timer_t *t) {
    gy__after *a = t->data;
    gy__loop *loop = a->req->loop;
    gy__loop_enter(loop);
    a->fn(a->req, a->arg);
    gy__after_remove(loop, a);
}

int gy_request_after(gy_request *req, uint64_t ms, gy_request_fn fn, void *arg) {
    gy__loop *loop = req->loop;
    if (gy__loop_current() != loop || loop->done) {
        return GY_ESTATE;
    }
    gy__after *a = calloc(1, sizeof *a);
    if (a == NULL) {
        return GY_ENOMEM;
    }
    uv_timer_init(&loop->uv, &a->timer);
    a->timer.data = a;
    gy_incref(req);
    a->req = req;
    a->fn = fn;
    a->arg = arg;
    a->next = loop->afters;
    if (loop->afters) {
        loop->afters->prev = a;
    }
    loop->afters = a;
    atomic_fetch_add_explicit(&loop->tasks, 1, memory_order_relaxed);
    uv_timer_start(&a->timer, gy__after_cb, ms, 0);
    return GY_OK;
}
