/* server/src/server.c: a server's life: configure, bind, run the loops and
 * workers, drain on stop, reconfigure while running. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gyre/gc.h"
#include "srv.h"

uint64_t gy__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- planes ------------------------------------------------------------------------ */

/* The registered planes. Synchronization: none: written by constructors
 * before main (one thread), read-only once any server exists. */
static const gy__plane *gy__planes[GY__PLANES_MAX];
static int gy__nplanes;

void gy__server_plane_register(const gy__plane *plane) {
    if (gy__nplanes == GY__PLANES_MAX) {
        abort(); /* more planes than GY__PLANES_MAX: raise it */
    }
    gy__planes[gy__nplanes++] = plane;
}

void *gy__server_plane_state(const gy_server *srv, const gy__plane *plane) {
    for (int i = 0; i < gy__nplanes; i++) {
        if (gy__planes[i] == plane) {
            return srv->plane_state[i];
        }
    }
    return NULL;
}

/* --- the collector's settings from a config -------------------------------- */

void gy__apply_gc_settings(const gy_config *cfg) {
    /* Bounds already checked by the table (settings.def matches gyre/gc.h). */
    (void)gy_gc_set_threshold((long)gy_config_int(cfg, "gc_threshold0"),
                              (long)gy_config_int(cfg, "gc_threshold1"),
                              (long)gy_config_int(cfg, "gc_threshold2"), NULL);
    gy_gc_pacing p = {
        .increment_budget_us = (uint32_t)gy_config_int(cfg, "gc_increment_budget_us"),
        .pause_goal_us = (uint32_t)gy_config_int(cfg, "gc_pause_goal_us"),
    };
    (void)gy_gc_set_pacing(&p, NULL);
}

/* --- limits from a config ---------------------------------------------------- */

static void gy__limits_load(gy__limits *l, const gy_config *c) {
    /* relaxed: each value stands alone (see gy__limits). */
    atomic_store_explicit(&l->max_connections, gy_config_int(c, "max_connections"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->max_header_bytes, gy_config_int(c, "max_header_bytes"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->max_header_count, gy_config_int(c, "max_header_count"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->max_uri_bytes, gy_config_int(c, "max_uri_bytes"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->max_body_bytes, gy_config_int(c, "max_body_bytes"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->max_requests, gy_config_int(c, "max_requests_per_connection"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->header_timeout_ms, gy_config_int(c, "header_timeout"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->body_min_rate, gy_config_int(c, "body_min_rate"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->idle_timeout_ms, gy_config_int(c, "idle_timeout"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->max_heap_bytes, gy_config_int(c, "max_heap_bytes"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->drain_timeout_ms, gy_config_int(c, "drain_timeout"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->answer_timeout_ms, gy_config_int(c, "answer_timeout"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->drain_grace_ms, gy_config_int(c, "drain_grace"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->memory_trim_interval_ms, gy_config_int(c, "memory_trim_interval"),
                          memory_order_relaxed);
    atomic_store_explicit(&l->break_cycles, gy_config_int(c, "demo_break_cycles") != 0,
                          memory_order_relaxed);
}

/* --- binding ------------------------------------------------------------------- */

int gy__split_address(const char *address, char *host, size_t hsize, char *port, size_t psize) {
    const char *colon = strrchr(address, ':');
    if (colon == NULL) {
        return GY_EINVAL;
    }
    const char *h = address;
    size_t hl = (size_t)(colon - address);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hsize || strlen(colon + 1) >= psize) {
        return GY_EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    return GY_OK;
}

static int gy__listen_socket(const struct sockaddr *sa, socklen_t len, int *out) {
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 || bind(fd, sa, len) != 0 ||
        /* Listening now, not when the loop thread gets to uv_listen: once
         * "listening on" is logged, connections are queued, never refused. */
        listen(fd, 511) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    *out = fd;
    return 0;
}

int gy__server_bind(gy_server *srv, const char *address, gy_errmsg *err) {
    char host[256], port[16];
    if (gy__split_address(address, host, sizeof host, port, sizeof port) != GY_OK) {
        return gy__server_errmsg(err, GY_EINVAL, "listen '%s': not HOST:PORT", address);
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (g != 0 || ai == NULL) {
        return gy__server_errmsg(err, GY_EINVAL, "listen '%s': %s", address, gai_strerror(g));
    }
    memcpy(&srv->addr, ai->ai_addr, ai->ai_addrlen);
    srv->addr_len = (int)ai->ai_addrlen;
    freeaddrinfo(ai);
    for (int i = 0; i < srv->nloops; i++) {
        int rc = gy__listen_socket((struct sockaddr *)&srv->addr, (socklen_t)srv->addr_len,
                                   &srv->loops[i].listen_fd);
        if (rc != 0) {
            for (int j = 0; j < i; j++) {
                close(srv->loops[j].listen_fd);
                srv->loops[j].listen_fd = -1;
            }
            return gy__server_errmsg(err, GY_EIO, "listen '%s': %s", address, strerror(-rc));
        }
        if (i == 0) {
            /* Port 0: the others bind the port the first one got. */
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            getsockname(srv->loops[0].listen_fd, (struct sockaddr *)&ss, &sl);
            int p = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
            srv->port = p;
            if (srv->addr.ss_family == AF_INET6) {
                ((struct sockaddr_in6 *)&srv->addr)->sin6_port = htons((uint16_t)p);
            } else {
                ((struct sockaddr_in *)&srv->addr)->sin_port = htons((uint16_t)p);
            }
        }
    }
    return GY_OK;
}

/* --- new / free ------------------------------------------------------------------ */

int gy_server_new(gy_server **out, const gy_config *cfg, gy_errmsg *err) {
    if (!gy_runtime_running()) {
        return gy__server_errmsg(err, GY_ESTATE, "the runtime is not running");
    }
    gy_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL || gy_config_copy(cfg, &srv->cfg) != GY_OK) {
        free(srv);
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    pthread_rwlock_init(&srv->cfg_lock, NULL);
    pthread_mutex_init(&srv->ctl_lock, NULL);
    gy__limits_load(&srv->lim, srv->cfg);
    int64_t threads = gy_config_int(srv->cfg, "threads");
    if (threads == 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        threads = ncpu > 0 ? ncpu : 1;
    }
    srv->nloops = (int)threads;
    srv->nworkers = (int)gy_config_int(srv->cfg, "worker_threads");
    srv->loops = calloc((size_t)srv->nloops, sizeof *srv->loops);
    if (srv->loops == NULL) {
        gy_server_free(srv);
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    for (int i = 0; i < srv->nloops; i++) {
        srv->loops[i].srv = srv;
        srv->loops[i].index = i;
        srv->loops[i].listen_fd = -1;
    }
    int rc = gy__server_bind(srv, gy_config_str(srv->cfg, "listen"), err);
    for (int i = 0; i < gy__nplanes && rc == GY_OK; i++) {
        if (gy__planes[i]->bind != NULL) {
            rc = gy__planes[i]->bind(srv, &srv->plane_state[i], err);
        }
    }
    if (rc != GY_OK) {
        gy_server_free(srv);
        return rc;
    }
    *out = srv;
    return GY_OK;
}

void gy_server_free(gy_server *srv) {
    if (srv == NULL) {
        return;
    }
    if (srv->loops != NULL) {
        for (int i = 0; i < srv->nloops; i++) {
            gy__loop *l = &srv->loops[i];
            if (l->rbuf != NULL) {
                uv_loop_close(&l->uv);
                pthread_mutex_destroy(&l->post_lock);
                free(l->rbuf);
            } else if (l->listen_fd >= 0) {
                close(l->listen_fd);
            }
        }
        free(srv->loops);
    }
    for (int i = gy__nplanes - 1; i >= 0; i--) {
        if (gy__planes[i]->free != NULL) {
            gy__planes[i]->free(srv, srv->plane_state[i]);
        }
        srv->plane_state[i] = NULL;
    }
    gy__router_free(&srv->router);
    gy_config_free(srv->cfg);
    pthread_rwlock_destroy(&srv->cfg_lock);
    pthread_mutex_destroy(&srv->ctl_lock);
    free(srv);
}

int gy_server_route(gy_server *srv, const char *method, const char *path, gy_handler_fn handler,
                    void *arg) {
    return gy__router_add(&srv->router, method, path, handler, arg);
}

int gy_server_port(const gy_server *srv) { return srv->port; }

/* --- running --------------------------------------------------------------------- */

typedef struct gy__ctl {
    gy_server *srv;
    uv_timer_t drain_timer, heap_timer;
    uv_signal_t sig_term, sig_int, sig_hup;
    bool drain_started;
    gy__trimmer trim;       /* the control thread's own (memory.h) */
    uint64_t trim_requests; /* requests answered at its last trim */
} gy__ctl;

int gy__server_wake_loops(gy_server *srv) {
    int n = 0;
    for (int i = 0; i < srv->nloops; i++) {
        gy__loop *l = &srv->loops[i];
        if (!l->started) {
            continue; /* never initialised (a start failed) */
        }
        pthread_mutex_lock(&l->post_lock); /* the loop closes its async handle under it */
        if (!l->closed) {
            uv_async_send(&l->async);
            n++;
        }
        pthread_mutex_unlock(&l->post_lock);
    }
    return n;
}

static void gy__drain_timeout_cb(uv_timer_t *t) {
    gy__ctl *ctl = t->data;
    gy__server_log(GY_LOG_WARN, "drain timeout: closing the connections left");
    atomic_store(&ctl->srv->forced, true);
    gy__workers_cancel(ctl->srv->workers); /* queued jobs are dropped, not run */
    gy__server_wake_loops(ctl->srv);
}

static void gy__heap_check_cb(uv_timer_t *t) {
    gy__ctl *ctl = t->data;
    gy_server *srv = ctl->srv;
    /* The control thread trims its heap like every thread, and then asks
     * the allocator for the pages past their decay time (jemalloc frees
     * them only while an arena allocates, never on an idle server); when
     * no request came since its last trim, for every unused page, glibc's
     * malloc arenas included (a walk under their locks: not while busy). */
    if (gy__trimmer_tick(&ctl->trim, srv)) {
        uint64_t req = atomic_load_explicit(&srv->st_requests, memory_order_relaxed);
        (void)gy_memory_release(req == ctl->trim_requests ? GY_RELEASE_ALL : GY_RELEASE_DECAYED);
        ctl->trim_requests = req;
    }
    for (int i = 0; i < gy__nplanes; i++) {
        if (gy__planes[i]->tick != NULL) {
            gy__planes[i]->tick(srv, srv->plane_state[i]);
        }
    }
    int64_t max = gy__lim(&srv->lim.max_heap_bytes);
    bool over = false;
    if (max > 0) {
        gy_runtime_stats st;
        gy_runtime_get_stats(&st);
        over = st.bytes_live > (uint64_t)max;
    }
    bool was = atomic_exchange_explicit(&srv->heap_over, over, memory_order_relaxed);
    if (over != was) {
        gy__server_log(over ? GY_LOG_WARN : GY_LOG_INFO, "heap %s max_heap_bytes (%lld)",
                       over ? "over" : "back under", (long long)max);
    }
}

static void gy__ctl_close_all(uv_handle_t *h, void *arg) {
    gy_server *srv = arg;
    if (uv_is_closing(h)) {
        return;
    }
    /* A plane's handles that free themselves in their close callbacks
     * (its client connections) are closed by the plane. */
    for (int i = 0; i < gy__nplanes; i++) {
        const gy__plane *p = gy__planes[i];
        if (p->close_handle != NULL && p->close_handle(srv, srv->plane_state[i], h)) {
            return;
        }
    }
    uv_close(h, NULL);
}

static void gy__ctl_async_cb(uv_async_t *h) {
    gy__ctl *ctl = h->data;
    gy_server *srv = ctl->srv;
    gy__ctl_enter(srv);
    if (atomic_load(&srv->stopping) && !ctl->drain_started) {
        ctl->drain_started = true;
        gy__server_log(GY_LOG_INFO,
                       "draining: no new connections, finishing requests in flight "
                       "(drain_timeout %lld ms)",
                       (long long)gy__lim(&srv->lim.drain_timeout_ms));
        atomic_store(&srv->draining, true);
        gy__server_wake_loops(srv);
        uv_timer_start(&ctl->drain_timer, gy__drain_timeout_cb,
                       (uint64_t)gy__lim(&srv->lim.drain_timeout_ms), 0);
    }
    if (atomic_load_explicit(&srv->loops_done, memory_order_acquire) == srv->nloops) {
        pthread_mutex_lock(&srv->ctl_lock);
        srv->ctl_ready = false;
        pthread_mutex_unlock(&srv->ctl_lock);
        uv_walk(&srv->ctl, gy__ctl_close_all, srv);
    }
}

static void gy__signal_cb(uv_signal_t *s, int signum) {
    gy__ctl *ctl = s->data;
    gy__ctl_enter(ctl->srv);
    if (signum == SIGHUP) {
        if (ctl->srv->on_reload != NULL) {
            ctl->srv->on_reload(ctl->srv, ctl->srv->reload_arg);
        }
        return;
    }
    if (!atomic_load(&ctl->srv->stopping)) {
        gy__server_log(GY_LOG_INFO, "%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    gy_server_stop(ctl->srv);
}

void gy_server_stop(gy_server *srv) {
    atomic_store(&srv->stopping, true);
    pthread_mutex_lock(&srv->ctl_lock);
    if (srv->ctl_ready) {
        uv_async_send(&srv->ctl_async);
    }
    pthread_mutex_unlock(&srv->ctl_lock);
}

/* The control thread is a Gyre loop thread too (the planes' work touches
 * objects: admin commands, collections): quiescent in epoll, woken by ctl_wake. */
static void gy__ctl_wake(void *arg) { uv_async_send(&((gy_server *)arg)->ctl_wake); }

static void gy__ctl_wake_cb(uv_async_t *h) { gy__ctl_enter(h->data); }

static void gy__ctl_prepare_cb(uv_prepare_t *h) {
    gy_server *srv = h->data;
    gy_safepoint();
    gy_quiescent_begin();
    srv->ctl_quiescent = true;
}

static void gy__ctl_check_cb(uv_check_t *h) { gy__ctl_enter(h->data); }

int gy_server_run(gy_server *srv, gy_errmsg *err) {
    if (gy_thread_attached()) {
        return gy__server_errmsg(err, GY_ESTATE, "gy_server_run: the calling thread is attached");
    }
    /* A peer that closes while we write must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    gy__ctl ctl = {.srv = srv};
    uv_loop_init(&srv->ctl);
    uv_async_init(&srv->ctl, &srv->ctl_async, gy__ctl_async_cb);
    srv->ctl_async.data = &ctl;
    uv_timer_init(&srv->ctl, &ctl.drain_timer);
    ctl.drain_timer.data = &ctl;
    uv_timer_init(&srv->ctl, &ctl.heap_timer);
    ctl.heap_timer.data = &ctl;
    uv_timer_start(&ctl.heap_timer, gy__heap_check_cb, 100, 100);
    gy__trimmer_init(&ctl.trim, srv);
    uv_async_init(&srv->ctl, &srv->ctl_wake, gy__ctl_wake_cb);
    srv->ctl_wake.data = srv;
    uv_prepare_init(&srv->ctl, &srv->ctl_prepare);
    srv->ctl_prepare.data = srv;
    uv_prepare_start(&srv->ctl_prepare, gy__ctl_prepare_cb);
    uv_check_init(&srv->ctl, &srv->ctl_check);
    srv->ctl_check.data = srv;
    uv_check_start(&srv->ctl_check, gy__ctl_check_cb);
    gy_thread_options topts = {
        .kind = GY_THREAD_LOOP, .wake = gy__ctl_wake, .wake_arg = srv, .name = "control"};
    bool attached = gy_thread_attach(&topts, err) == GY_OK;
    for (int i = 0; i < gy__nplanes && attached; i++) {
        /* A plane that cannot start is logged; the server runs without it. */
        gy_errmsg perr = {0};
        int prc = gy__planes[i]->start != NULL
                      ? gy__planes[i]->start(srv, srv->plane_state[i], &perr)
                      : GY_OK;
        if (prc != GY_OK) {
            gy__server_log(GY_LOG_ERROR, "%s", perr.text[0] ? perr.text : gy_strerror(prc));
        }
    }
    if (srv->handle_signals) {
        uv_signal_t *sigs[] = {&ctl.sig_term, &ctl.sig_int, &ctl.sig_hup};
        int nums[] = {SIGTERM, SIGINT, SIGHUP};
        for (int i = 0; i < 3; i++) {
            uv_signal_init(&srv->ctl, sigs[i]);
            sigs[i]->data = &ctl;
            uv_signal_start(sigs[i], gy__signal_cb, nums[i]);
        }
    }
    pthread_mutex_lock(&srv->ctl_lock);
    srv->ctl_ready = true;
    if (atomic_load(&srv->stopping)) {
        uv_async_send(&srv->ctl_async); /* a stop asked before we were ready */
    }
    pthread_mutex_unlock(&srv->ctl_lock);
    srv->start_ns = gy__now_ns();

    int rc =
        gy__workers_start(&srv->workers, srv, srv->nworkers, (size_t)srv->nworkers * 1024, err);
    int started = 0;
    if (rc == GY_OK) {
        for (; started < srv->nloops; started++) {
            rc = gy__loop_start(&srv->loops[started], err);
            if (rc != GY_OK) {
                break;
            }
        }
    }
    if (rc != GY_OK) {
        /* Loops that did start stop through the normal drain. */
        atomic_fetch_add(&srv->loops_done, srv->nloops - started);
        gy_server_stop(srv);
    }
    if (started > 0 && rc == GY_OK) {
        char host[64] = "";
        if (srv->addr.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&srv->addr, host, sizeof host);
        } else {
            uv_ip4_name((struct sockaddr_in *)&srv->addr, host, sizeof host);
        }
        gy__server_log(GY_LOG_INFO, "listening on http://%s%s%s:%d/ with %d loop%s and %d worker%s",
                       srv->addr.ss_family == AF_INET6 ? "[" : "", host,
                       srv->addr.ss_family == AF_INET6 ? "]" : "", srv->port, srv->nloops,
                       srv->nloops == 1 ? "" : "s", srv->nworkers, srv->nworkers == 1 ? "" : "s");
    }
    uv_run(&srv->ctl, UV_RUN_DEFAULT);
    if (srv->handle_signals) {
        /* Closing the signal handles restored the default actions: a second
         * SIGTERM during the final collection would kill the process (exit
         * -15, no summary). The stop is under way; further signals change
         * nothing. */
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
    }
    gy__ctl_enter(srv);
    if (attached) {
        gy_thread_detach(); /* before joining: a join is a blocking wait */
    }
    for (int i = 0; i < started; i++) {
        pthread_join(srv->loops[i].thread, NULL);
        if (srv->loops[i].rc != GY_OK && rc == GY_OK) {
            rc = srv->loops[i].rc;
        }
    }
    gy__workers_stop(srv->workers);
    srv->workers = NULL;
    uv_loop_close(&srv->ctl);
    return rc;
}

void gy__server_count_answer(gy_server *srv, const gy__route *route, int status, uint64_t dur_ns) {
    for (int i = 0; i < gy__nplanes; i++) {
        if (gy__planes[i]->answered != NULL) {
            gy__planes[i]->answered(srv, srv->plane_state[i], route, status, dur_ns);
        }
    }
    if (status >= 500) {
        atomic_fetch_add_explicit(&srv->st_5xx, 1, memory_order_relaxed);
    } else if (status >= 400) {
        atomic_fetch_add_explicit(&srv->st_4xx, 1, memory_order_relaxed);
    }
}

static void gy__heap_collect_done(int rc, const gy_gc_result *res, void *arg) {
    (void)rc;
    (void)res;
    gy_server *srv = arg;
    atomic_store_explicit(&srv->heap_collect_pending, false, memory_order_relaxed);
}

void gy__server_heap_collect(gy_server *srv) {
    bool expect = false;
    /* relaxed: only one request at a time; the flag carries no data. */
    if (atomic_compare_exchange_strong_explicit(&srv->heap_collect_pending, &expect, true,
                                                memory_order_relaxed, memory_order_relaxed)) {
        if (gy_gc_collect_async(2, gy__heap_collect_done, srv, NULL) != GY_OK) {
            atomic_store_explicit(&srv->heap_collect_pending, false, memory_order_relaxed);
        }
    }
}

int gy_request_submit(gy_request *req, gy_request_fn fn, void *arg) {
    gy_server *srv = req->srv;
    if (srv->workers == NULL) {
        return GY_ESTATE;
    }
    return gy__workers_submit(srv->workers, req, fn, arg);
}

void gy_server_get_stats(gy_server *srv, gy_server_stats *o) {
    o->connections_accepted = atomic_load_explicit(&srv->st_accepted, memory_order_relaxed);
    o->connections_open = atomic_load_explicit(&srv->st_open, memory_order_relaxed);
    o->connections_refused = atomic_load_explicit(&srv->st_refused, memory_order_relaxed);
    o->requests = atomic_load_explicit(&srv->st_requests, memory_order_relaxed);
    o->responses_4xx = atomic_load_explicit(&srv->st_4xx, memory_order_relaxed);
    o->responses_5xx = atomic_load_explicit(&srv->st_5xx, memory_order_relaxed);
    o->bad_requests = atomic_load_explicit(&srv->st_bad, memory_order_relaxed);
    o->overload_503 = atomic_load_explicit(&srv->st_503, memory_order_relaxed);
    o->timeouts = atomic_load_explicit(&srv->st_timeouts, memory_order_relaxed);
}

/* --- configuration --------------------------------------------------------------- */

int64_t gy_server_config_int(gy_server *srv, const char *name) {
    pthread_rwlock_rdlock(&srv->cfg_lock);
    int64_t v = gy_config_int(srv->cfg, name);
    pthread_rwlock_unlock(&srv->cfg_lock);
    return v;
}

size_t gy_server_config_str(gy_server *srv, const char *name, char *buf, size_t size) {
    pthread_rwlock_rdlock(&srv->cfg_lock);
    size_t n = (size_t)snprintf(buf, size, "%s", gy_config_str(srv->cfg, name));
    pthread_rwlock_unlock(&srv->cfg_lock);
    return n;
}

int gy_server_reconfigure(gy_server *srv, const gy_config *cfg, char *not_applied, size_t size,
                          gy_errmsg *err) {
    size_t n;
    const gy_setting *tab = gy_settings(&n);
    gy_config *next;
    if (gy_config_copy(srv->cfg, &next) != GY_OK) {
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    size_t used = 0;
    if (not_applied && size) {
        not_applied[0] = '\0';
    }
    char changed[1024] = "";
    size_t cused = 0;
    bool access_changed = false;
    for (size_t i = 0; i < n; i++) {
        char a[512], b[512];
        gy_config_format(srv->cfg, tab[i].name, a, sizeof a);
        gy_config_format(cfg, tab[i].name, b, sizeof b);
        if (strcmp(a, b) == 0) {
            continue;
        }
        if (!tab[i].runtime) {
            if (not_applied && size) {
                used += (size_t)snprintf(not_applied + used, used < size ? size - used : 0,
                                         "%s%s (needs a restart)", used ? ", " : "", tab[i].name);
                if (used >= size) {
                    used = size - 1;
                }
            }
            continue;
        }
        if (gy_config_set(next, tab[i].name, b, "reload", err) != GY_OK) {
            gy_config_free(next);
            return err ? err->code : GY_EINVAL;
        }
        if (strcmp(tab[i].name, "access_log") == 0) {
            access_changed = true;
        }
        cused +=
            (size_t)snprintf(changed + cused, cused < sizeof changed ? sizeof changed - cused : 0,
                             "%s%s=%s", cused ? " " : "", tab[i].name, b);
        if (cused >= sizeof changed) {
            cused = sizeof changed - 1;
        }
    }
    /* Everything that can fail first (all or nothing). */
    if (access_changed && gy__access_log_open(gy_config_str(next, "access_log"), err) != GY_OK) {
        gy_config_free(next);
        return GY_EIO;
    }
    gy__apply_gc_settings(next);
    gy__log_set_level(gy__log_level_parse(gy_config_str(next, "log_level")));
    gy__limits_load(&srv->lim, next);
    gy__workers_wake(srv->workers); /* an idle worker's trim is due at the new interval */
    pthread_rwlock_wrlock(&srv->cfg_lock);
    gy_config *old = srv->cfg;
    srv->cfg = next;
    pthread_rwlock_unlock(&srv->cfg_lock);
    gy_config_free(old);
    if (cused > 0) {
        gy__server_log(GY_LOG_INFO, "applied: %s", changed);
    }
    return GY_OK;
}
