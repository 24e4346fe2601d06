/* server/ops/admin.c: the admin Unix socket: one command per line, one line
 * of JSON per answer, in order, many per connection. A connection's level
 * comes from SO_PEERCRED: root and the server's own uid are admin; anyone
 * else is refused (the socket is 0600 anyway). A client that writes without
 * reading is not read from while answers taking more than 1 MiB of memory
 * wait for it. The admin plane (gy__admin_plane) is at the end. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin.h"

#define GY__ADMIN_LINE_MAX 4096
#define GY__ADMIN_OUT_HIGH (1u << 20)

typedef struct gy__admin_conn {
    uv_pipe_t pipe;
    gy__admin_session s;
    gy__buf in;
    bool discarding; /* inside a line that was too long */
    bool reading;
    bool closing;
    size_t out_pending; /* memory of answers not yet written (gy__admin_write_cost) */
} gy__admin_conn;

typedef struct gy__admin_write {
    uv_write_t req;
    gy__admin_conn *c;
    size_t len;
    size_t cost; /* the memory it takes, counted against GY__ADMIN_OUT_HIGH */
    char data[];
} gy__admin_write;

/* What an answer waiting to be written costs: the allocation (request,
 * header, the line) and the allocator's own overhead per block (malloc's
 * header and rounding to 16), not only the payload: a client that never
 * reads small answers costs about ten times their bytes. */
static size_t gy__admin_write_cost(size_t len) {
    return ((sizeof(gy__admin_write) + len + 1 + 15) & ~(size_t)15) + 16;
}

static int gy__afail(gy_errmsg *err, int code, const char *what, const char *path) {
    return gy__server_errmsg(err, code, "admin_socket '%s': %s", path, what);
}

/* mkdir -p of the socket's directory (0700). */
static int gy__mkdirs(const char *path) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) {
        return 0;
    }
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(dir, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Bind one socket at `path` with umask `mask` (so its mode is right from
 * the start), owned by group `gid` when it is not (gid_t)-1. */
static int gy__admin_bind_one(const char *path, mode_t mask, gid_t gid, int *out, gy_errmsg *err) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    /* libuv 1.44 truncates long paths silently: check here. */
    if (strlen(path) >= sizeof sa.sun_path) {
        char what[128];
        snprintf(what, sizeof what, "longer than the %zu bytes a Unix socket path may have",
                 sizeof sa.sun_path - 1);
        return gy__afail(err, GY_EINVAL, what, path);
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (gy__mkdirs(path) != 0) {
        return gy__afail(err, GY_EIO, strerror(errno), path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return gy__afail(err, GY_EIO, strerror(errno), path);
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        close(fd);
        return gy__afail(err, GY_EEXIST, "another server answers on it", path);
    }
    if (errno == ECONNREFUSED) {
        unlink(path); /* stale: nothing listens on it */
    }
    close(fd);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return gy__afail(err, GY_EIO, strerror(errno), path);
    }
    /* The mode comes from the umask at bind: no window in which others could
     * connect. The umask is the process's, so this runs before any other
     * thread starts. The group (admin_group) is set right after; until then
     * the group is the server's own. */
    mode_t old = umask(mask);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    umask(old);
    if (rc == 0 && gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) != 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0 || listen(fd, 64) != 0) {
        if (rc == 0) {
            e = errno;
        }
        close(fd);
        return gy__afail(err, GY_EIO, strerror(e), path);
    }
    *out = fd;
    return GY_OK;
}

gy__admin *gy__admin_of(const gy_server *srv) {
    return gy__server_plane_state(srv, &gy__admin_plane);
}

/* The plane's `bind` (in gy_server_new, before the loops start; umask 0177
 * for the bind: 0600): a stale socket is replaced only if nothing answers
 * on it; a path longer than sun_path is refused. Returns 0, GY_ENOMEM,
 * GY_EINVAL, GY_EEXIST, GY_EIO. */
static int gy__admin_bind(gy_server *srv, void **state, gy_errmsg *err) {
    gy__admin *a = calloc(1, sizeof *a);
    if (a == NULL) {
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    a->fd = -1;
    a->ro_fd = -1;
    a->gid = (gid_t)-1;
    *state = a;
    const char *path = gy_config_str(srv->cfg, "admin_socket");
    const char *group = gy_config_str(srv->cfg, "admin_group");
    if (group[0] != '\0') {
        struct group gr, *res = NULL;
        char buf[4096];
        if (getgrnam_r(group, &gr, buf, sizeof buf, &res) != 0 || res == NULL) {
            if (err != NULL) {
                err->code = GY_EINVAL;
                snprintf(err->text, sizeof err->text, "admin_group '%s': no such group", group);
            }
            return GY_EINVAL;
        }
        a->gid = gr.gr_gid;
    }
    const char *lvl = gy_config_str(srv->cfg, "admin_group_level");
    a->group_level = strcmp(lvl, "admin") == 0  ? GY__LEVEL_ADMIN
                     : strcmp(lvl, "user") == 0 ? GY__LEVEL_USER
                                                : GY__LEVEL_OPERATOR;
    /* 0600, or 0660 with a group. */
    int rc = gy__admin_bind_one(path, a->gid != (gid_t)-1 ? 0117 : 0177, a->gid, &a->fd, err);
    if (rc != GY_OK) {
        return rc;
    }
    snprintf(a->path, sizeof a->path, "%s", path);
    const char *ro = gy_config_str(srv->cfg, "admin_socket_readonly");
    if (ro[0] != '\0') {
        rc = gy__admin_bind_one(ro, 0111, (gid_t)-1, &a->ro_fd, err); /* 0666 */
        if (rc != GY_OK) {
            return rc;
        }
        snprintf(a->ro_path, sizeof a->ro_path, "%s", ro);
    }
    return GY_OK;
}

/* The plane's `free`: close what was bound and not served, remove the
 * socket files, drop the named snapshots. */
static void gy__admin_free(gy_server *srv, void *state) {
    (void)srv;
    gy__admin *a = state;
    if (a == NULL) {
        return;
    }
    if (a->fd >= 0) {
        close(a->fd);
    }
    if (a->ro_fd >= 0) {
        close(a->ro_fd);
    }
    if (a->path[0] != '\0') {
        unlink(a->path);
    }
    if (a->ro_path[0] != '\0') {
        unlink(a->ro_path);
    }
    gy__admin_snaps_free(a);
    free(a);
}

/* Whether uid (or its primary group) is a member of gid. */
static bool gy__in_group(uid_t uid, gid_t pgid, gid_t gid) {
    if (pgid == gid) {
        return true;
    }
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) != 0 || res == NULL) {
        return false;
    }
    gid_t groups[256];
    int n = 256;
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0) {
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (groups[i] == gid) {
            return true;
        }
    }
    return false;
}

static void gy__admin_closed(uv_handle_t *h) {
    gy__admin_conn *c = (gy__admin_conn *)h;
    gy__buf_free(&c->in);
    free(c);
}

static void gy__admin_close(gy__admin_conn *c) {
    if (!c->closing && !uv_is_closing((uv_handle_t *)&c->pipe)) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->pipe, gy__admin_closed);
    }
}

/* The plane's `close_handle`: a client connection (its pipe's data is the
 * plane's state) frees itself. */
static bool gy__admin_close_handle(gy_server *srv, void *state, uv_handle_t *h) {
    (void)srv;
    if (state == NULL || h->data != state) {
        return false;
    }
    gy__admin_close((gy__admin_conn *)h); /* the pipe is its first member */
    return true;
}

static void gy__admin_process(gy__admin_conn *c);
static void gy__admin_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void gy__admin_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)h;
    (void)hint;
    static _Thread_local char rbuf[8192]; /* the control thread only */
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void gy__admin_write_cb(uv_write_t *req, int status) {
    gy__admin_write *w = (gy__admin_write *)req;
    gy__admin_conn *c = w->c;
    gy__ctl_enter(c->s.srv);
    c->out_pending -= w->cost;
    free(w);
    if (status != 0) {
        gy__admin_close(c);
        return;
    }
    if (!c->closing && c->out_pending < GY__ADMIN_OUT_HIGH / 4) {
        gy__admin_process(c); /* lines left waiting, then read more */
    }
}

static void gy__admin_send(gy__admin_conn *c, const char *line) {
    size_t len = strlen(line);
    gy__admin_write *w = malloc(sizeof *w + len + 1);
    if (w == NULL) {
        gy__admin_close(c);
        return;
    }
    memcpy(w->data, line, len);
    w->data[len] = '\n';
    w->len = len + 1;
    w->cost = gy__admin_write_cost(len);
    w->c = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    c->out_pending += w->cost;
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, gy__admin_write_cb) != 0) {
        c->out_pending -= w->cost;
        free(w);
        gy__admin_close(c);
    }
}

/* Run the complete lines in c->in while the client keeps up; then read. */
static void gy__admin_process(gy__admin_conn *c) {
    size_t start = 0;
    while (c->in.len > 0 && !c->closing && c->out_pending < GY__ADMIN_OUT_HIGH) {
        char *nl = memchr(c->in.p + start, '\n', c->in.len - start);
        if (nl == NULL) {
            break;
        }
        *nl = '\0';
        char *line = c->in.p + start;
        start = (size_t)(nl - c->in.p) + 1;
        if (c->discarding) {
            c->discarding = false; /* the end of the over-long line */
            continue;
        }
        size_t ll = strlen(line);
        if (ll > 0 && line[ll - 1] == '\r') {
            line[--ll] = '\0';
        }
        if (ll == 0) {
            continue; /* an empty line gets no answer */
        }
        char *answer = gy__admin_exec(&c->s, ll > GY__ADMIN_LINE_MAX ? NULL : line);
        if (answer == NULL) {
            gy__admin_close(c);
            return;
        }
        gy__admin_send(c, answer);
        free(answer);
    }
    if (start > 0) {
        memmove(c->in.p, c->in.p + start, c->in.len - start);
        c->in.len -= start;
    }
    if (c->in.len > GY__ADMIN_LINE_MAX && !c->discarding) {
        /* A line over the limit: answer once, drop it up to its newline. */
        char *answer = gy__admin_exec(&c->s, NULL);
        if (answer != NULL) {
            gy__admin_send(c, answer);
            free(answer);
        }
        c->discarding = true;
        c->in.len = 0;
    } else if (c->discarding) {
        c->in.len = 0;
    }
    bool want = !c->closing && c->out_pending < GY__ADMIN_OUT_HIGH;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->pipe, gy__admin_alloc, gy__admin_read_cb) == 0) {
            c->reading = true;
        }
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->reading = false;
    }
}

static void gy__admin_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
    gy__admin_conn *c = (gy__admin_conn *)st;
    gy__ctl_enter(c->s.srv);
    if (n < 0) {
        gy__admin_close(c);
        return;
    }
    if (n > 0 && !gy__buf_append(&c->in, buf->base, (size_t)n)) {
        gy__admin_close(c);
        return;
    }
    gy__admin_process(c);
}

static void gy__admin_connection_cb(uv_stream_t *server, int status) {
    gy_server *srv = server->data;
    gy__ctl_enter(srv);
    gy__admin *a = gy__admin_of(srv);
    if (status < 0) {
        return;
    }
    gy__admin_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return;
    }
    uv_pipe_init(&srv->ctl, &c->pipe, 0);
    c->pipe.data = a; /* a client: see gy__admin_close_handle */
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        uv_close((uv_handle_t *)&c->pipe, gy__admin_closed);
        return;
    }
    c->s.srv = srv;
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t cl = sizeof cred;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
        gy__admin_close(c);
        return;
    }
    bool readonly = server == (uv_stream_t *)&a->ro_pipe;
    if (readonly) {
        c->s.level = GY__LEVEL_USER; /* whoever may open it */
    } else if (cred.uid == 0 || cred.uid == getuid()) {
        c->s.level = GY__LEVEL_ADMIN;
    } else if (a->gid != (gid_t)-1 && gy__in_group(cred.uid, cred.gid, a->gid)) {
        c->s.level = (gy__level)a->group_level;
    } else {
        gy__server_log(GY_LOG_WARN, "admin: refused uid %u (pid %d)", (unsigned)cred.uid,
                       (int)cred.pid);
        gy__admin_send(c, "{\"ok\":false,\"error\":{\"code\":\"EPERM\",\"message\":\"this uid may "
                          "not use the admin socket\"}}");
        gy__admin_close(c);
        return;
    }
    gy__admin_process(c);
}

static int gy__admin_serve(gy_server *srv, uv_pipe_t *pipe, int *fd, const char *path,
                           gy_errmsg *err) {
    uv_pipe_init(&srv->ctl, pipe, 0);
    pipe->data = srv;
    int rc = uv_pipe_open(pipe, *fd);
    if (rc == 0) {
        *fd = -1; /* the handle owns it now */
        rc = uv_listen((uv_stream_t *)pipe, 64, gy__admin_connection_cb);
    }
    if (rc != 0) {
        return gy__afail(err, GY_EIO, uv_strerror(rc), path);
    }
    return GY_OK;
}

/* The plane's `start`: serve the bound sockets on the control loop. */
static int gy__admin_start(gy_server *srv, void *state, gy_errmsg *err) {
    gy__admin *a = state;
    if (a->fd >= 0) {
        int rc = gy__admin_serve(srv, &a->pipe, &a->fd, a->path, err);
        if (rc != GY_OK) {
            return rc;
        }
        gy__server_log(GY_LOG_INFO, "admin socket %s", a->path);
    }
    if (a->ro_fd >= 0) {
        int rc = gy__admin_serve(srv, &a->ro_pipe, &a->ro_fd, a->ro_path, err);
        if (rc != GY_OK) {
            return rc;
        }
        gy__server_log(GY_LOG_INFO, "read-only admin socket %s", a->ro_path);
    }
    return GY_OK;
}

/* The plane's `tick` (every 100 ms): end a gc.disable pause whose time or
 * budget ran out; once a second, the request rate over the last second
 * (server.stats). */
static void gy__admin_tick(gy_server *srv, void *state) {
    gy__admin *a = state;
    gy__admin_pause_check(a);
    uint64_t now = gy__now_ns();
    if (now - a->rate_at_ns >= 1000000000u) {
        uint64_t req = atomic_load_explicit(&srv->st_requests, memory_order_relaxed);
        if (a->rate_at_ns != 0) {
            a->requests_per_s =
                (double)(req - a->rate_requests) * 1e9 / (double)(now - a->rate_at_ns);
        }
        a->rate_at_ns = now;
        a->rate_requests = req;
    }
}

const gy__plane gy__admin_plane = {
    .name = "admin",
    .bind = gy__admin_bind,
    .start = gy__admin_start,
    .tick = gy__admin_tick,
    .close_handle = gy__admin_close_handle,
    .free = gy__admin_free,
};
