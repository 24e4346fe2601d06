/* tools/gyrectl/gyrectl.c: the admin socket's command-line client.
 *
 *   gyrectl [-s SOCKET] [--json] COMMAND [ARGS...]   one command
 *   gyrectl [-s SOCKET]                              an interactive shell
 *   gyrectl [-s SOCKET] top [FRAMES]                 a live view (q quits)
 *
 * Everything after COMMAND goes to the server untouched (gyrectl
 * gc.set_threshold -1 sends -1 and prints the server's error). SOCKET may
 * be a glob (-s 'run/NAME*' style): the command runs on every match, answers
 * labelled. Exit: 0 ok, 1 an error answer, 2 cannot connect (and why), 64
 * a usage error of gyrectl itself. Human output: tables for lists of
 * objects, "key: value" for objects, durations and bytes with units;
 * --json prints the server's line as it came. */
#include <editline/readline.h>
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EX_OK 0
#define EX_ANSWER 1
#define EX_CONNECT 2
#define EX_USAGE 64

static void usage(FILE *f) {
    fprintf(f, "usage: gyrectl [-s SOCKET] [--json] COMMAND [ARGS...]\n"
               "       gyrectl [-s SOCKET]            (an interactive shell)\n"
               "       gyrectl [-s SOCKET] top        (a live view; q quits)\n"
               "  -s, --socket PATH   the admin socket, or a glob (default run/gyre.sock)\n"
               "  -j, --json          print the server's JSON answer as it came\n"
               "  -h, --help          this text; 'gyrectl help' lists the server's commands\n"
               "exit: 0 ok, 1 error answer, 2 cannot connect, 64 usage\n");
}

/* Connect; on failure print why and return -1. */
static int connect_to(const char *path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "gyrectl: %s: path too long for a Unix socket\n", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        const char *why = e == ENOENT   ? "no such socket (is gyred running? see --admin-socket)"
                          : e == EACCES ? "permission denied"
                          : e == ECONNREFUSED ? "nothing listening (a stale socket)"
                                              : strerror(e);
        fprintf(stderr, "gyrectl: cannot connect to %s: %s\n", path, why);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/* Send one line, read one line (malloc'd, without the newline) or NULL. */
static char *exchange(int fd, const char *line) {
    size_t len = strlen(line);
    char *out = malloc(len + 2);
    if (out == NULL) {
        return NULL;
    }
    memcpy(out, line, len);
    out[len] = '\n';
    size_t off = 0;
    while (off < len + 1) {
        ssize_t w = write(fd, out + off, len + 1 - off);
        if (w <= 0) {
            free(out);
            return NULL;
        }
        off += (size_t)w;
    }
    free(out);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (nb == NULL) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0) {
            free(buf);
            return NULL;
        }
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return buf;
        }
        n++;
    }
    return NULL;
}

/* --- human output ------------------------------------------------------------- */

static void fmt_value(const char *key, json_t *v, char *out, size_t size) {
    size_t kl = key ? strlen(key) : 0;
    if (json_is_real(v) && kl > 2 && strcmp(key + kl - 2, "_s") == 0) {
        double s = json_real_value(v);
        if (s < 1e-3) {
            snprintf(out, size, "%.1f us", s * 1e6);
        } else if (s < 1) {
            snprintf(out, size, "%.2f ms", s * 1e3);
        } else {
            snprintf(out, size, "%.2f s", s);
        }
    } else if (json_is_integer(v) && key != NULL && strstr(key, "bytes") != NULL) {
        double b = (double)json_integer_value(v);
        const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        int i = 0;
        while (b >= 1024 && i < 4) {
            b /= 1024;
            i++;
        }
        snprintf(out, size, i ? "%.1f %s" : "%.0f %s", b, u[i]);
    } else if (json_is_string(v)) {
        snprintf(out, size, "%s", json_string_value(v));
    } else {
        char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(out, size, "%s", d ? d : "?");
        free(d);
    }
}

static void print_object(json_t *obj, const char *prefix) {
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", k);
        if (json_is_object(v)) {
            print_object(v, name);
        } else {
            char val[512];
            fmt_value(k, v, val, sizeof val);
            printf("%s: %s\n", name, val);
        }
    }
}

/* A list of objects as an aligned table (columns from the first row). */
static void print_table(json_t *arr) {
    json_t *first = json_array_get(arr, 0);
    size_t ncol = json_object_size(first), nrow = json_array_size(arr);
    if (ncol == 0 || ncol > 16) {
        char *d = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", d ? d : "");
        free(d);
        return;
    }
    const char *cols[16];
    size_t width[16], c = 0;
    const char *k;
    json_t *v;
    json_object_foreach(first, k, v) {
        cols[c] = k;
        width[c] = strlen(k);
        c++;
    }
    char ***cells = calloc(nrow, sizeof *cells);
    for (size_t r = 0; cells && r < nrow; r++) {
        cells[r] = calloc(ncol, sizeof **cells);
        for (size_t i = 0; cells[r] && i < ncol; i++) {
            char val[512];
            json_t *x = json_object_get(json_array_get(arr, r), cols[i]);
            fmt_value(cols[i], x ? x : json_null(), val, sizeof val);
            cells[r][i] = strdup(val);
            if (cells[r][i] && strlen(cells[r][i]) > width[i]) {
                width[i] = strlen(cells[r][i]);
            }
        }
    }
    for (size_t i = 0; i < ncol; i++) {
        printf("%-*s%s", (int)width[i], cols[i], i + 1 < ncol ? "  " : "\n");
    }
    for (size_t r = 0; cells && r < nrow; r++) {
        for (size_t i = 0; cells[r] && i < ncol; i++) {
            printf("%-*s%s", (int)width[i], cells[r][i] ? cells[r][i] : "",
                   i + 1 < ncol ? "  " : "\n");
            free(cells[r][i]);
        }
        free(cells[r]);
    }
    free(cells);
}

static void print_result(json_t *res) {
    if (json_is_array(res) && json_array_size(res) > 0 && json_is_object(json_array_get(res, 0))) {
        print_table(res);
    } else if (json_is_array(res) && json_array_size(res) > 0 &&
               json_is_object(json_array_get(res, 0)) == 0) {
        char *d = json_dumps(res, JSON_COMPACT);
        printf("%s\n", d ? d : "");
        free(d);
    } else if (json_is_object(res)) {
        print_object(res, "");
    } else if (json_is_string(res)) {
        const char *s = json_string_value(res);
        printf("%s%s", s, s[0] && s[strlen(s) - 1] == '\n' ? "" : "\n");
    } else {
        char val[512];
        fmt_value(NULL, res, val, sizeof val);
        printf("%s\n", val);
    }
}

/* Run one line on one socket; returns an exit code. */
static int run_line(int fd, const char *line, bool raw) {
    char *answer = exchange(fd, line);
    if (answer == NULL) {
        fprintf(stderr, "gyrectl: the server closed the connection\n");
        return EX_CONNECT;
    }
    json_error_t je;
    json_t *a = json_loads(answer, 0, &je);
    bool okay = a != NULL && json_is_true(json_object_get(a, "ok"));
    if (raw) {
        printf("%s\n", answer);
    } else if (a == NULL) {
        printf("%s\n", answer);
    } else if (okay) {
        print_result(json_object_get(a, "result"));
    } else {
        json_t *e = json_object_get(a, "error");
        fprintf(stderr, "error: %s: %s\n", json_string_value(json_object_get(e, "code")),
                json_string_value(json_object_get(e, "message")));
        json_t *u = json_object_get(e, "usage");
        if (u != NULL) {
            fprintf(stderr, "usage: %s\n", json_string_value(u));
        }
    }
    json_decref(a);
    free(answer);
    return okay ? EX_OK : EX_ANSWER;
}

/* --- the shell ----------------------------------------------------------------- */

static char **g_names;
static size_t g_nnames;

static char *complete_name(const char *text, int state) {
    static size_t i, len;
    if (state == 0) {
        i = 0;
        len = strlen(text);
    }
    while (i < g_nnames) {
        const char *n = g_names[i++];
        if (strncmp(n, text, len) == 0) {
            return strdup(n);
        }
    }
    return NULL;
}

static char **complete(const char *text, int start, int end) {
    (void)end;
    rl_attempted_completion_over = 1;
    return start == 0 ? rl_completion_matches(text, complete_name) : NULL;
}

static int shell(int fd) {
    char *help = exchange(fd, "help");
    json_t *h = help ? json_loads(help, 0, NULL) : NULL;
    json_t *list = json_object_get(h, "result");
    g_nnames = json_array_size(list);
    g_names = calloc(g_nnames + 1, sizeof *g_names);
    for (size_t i = 0; g_names && i < g_nnames; i++) {
        g_names[i] = strdup(json_string_value(json_object_get(json_array_get(list, i), "name")));
    }
    json_decref(h);
    free(help);
    rl_attempted_completion_function = complete;
    using_history();
    int rc = EX_OK;
    char *line;
    while ((line = readline("gyre> ")) != NULL) {
        if (line[0] != '\0') {
            add_history(line);
            if (strcmp(line, "quit") == 0 || strcmp(line, "exit") == 0) {
                free(line);
                break;
            }
            rc = run_line(fd, line, false);
            if (rc == EX_CONNECT) {
                free(line);
                break;
            }
        }
        free(line);
    }
    return rc == EX_CONNECT ? EX_CONNECT : EX_OK;
}

/* --- top ------------------------------------------------------------------------ */

/* The answer's result (a NEW reference) or NULL. */
static json_t *ask(int fd, const char *cmd) {
    char *a = exchange(fd, cmd);
    json_t *j = a ? json_loads(a, 0, NULL) : NULL;
    free(a);
    json_t *r =
        json_is_true(json_object_get(j, "ok")) ? json_incref(json_object_get(j, "result")) : NULL;
    json_decref(j);
    return r;
}

#define TOP_BUCKETS 15 /* the server's 14 bounds and +Inf */

typedef struct top_sample {
    double t;
    double collections, collected, requests;
    double bucket[TOP_BUCKETS]; /* cumulative pause histogram */
    double bound[TOP_BUCKETS];
    int nb;
} top_sample;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Pause buckets out of the metrics text. */
static void parse_pauses(const char *text, top_sample *s) {
    s->nb = 0;
    const char *key = "gyre_gc_pause_seconds_bucket{le=\"";
    for (const char *p = strstr(text, key); p && s->nb < TOP_BUCKETS; p = strstr(p + 1, key)) {
        const char *le = p + strlen(key);
        s->bound[s->nb] = strncmp(le, "+Inf", 4) == 0 ? 1e30 : strtod(le, NULL);
        const char *v = strchr(le, ' ');
        s->bucket[s->nb++] = v ? strtod(v + 1, NULL) : 0;
    }
}

/* The q-quantile of the pauses between two samples, as a bucket bound. */
static double quantile(const top_sample *a, const top_sample *b, double q) {
    int n = a->nb < b->nb ? a->nb : b->nb;
    double total = n ? b->bucket[n - 1] - a->bucket[n - 1] : 0;
    if (total <= 0) {
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (b->bucket[i] - a->bucket[i] >= q * total) {
            return b->bound[i];
        }
    }
    return -1;
}

static void fmt_s(double s, char *out, size_t size) {
    if (s < 0) {
        snprintf(out, size, "-");
    } else if (s >= 1e29) {
        snprintf(out, size, ">2.5 s");
    } else if (s < 1e-3) {
        snprintf(out, size, "<=%.0f us", s * 1e6);
    } else {
        snprintf(out, size, "<=%.1f ms", s * 1e3);
    }
}

static bool take_sample(int fd, top_sample *s, json_t **stats, json_t **count, json_t **thr,
                        json_t **srv, json_t **types) {
    *stats = ask(fd, "gc.get_stats");
    *count = ask(fd, "gc.get_count");
    *thr = ask(fd, "gc.get_threshold");
    *srv = ask(fd, "server.stats");
    *types = ask(fd, "objects.types 8");
    json_t *m = ask(fd, "metrics");
    if (*stats == NULL || *srv == NULL || m == NULL) {
        json_decref(m);
        return false;
    }
    s->t = now_s();
    s->collections = s->collected = 0;
    for (size_t i = 0; i < json_array_size(*stats); i++) {
        json_t *g = json_array_get(*stats, i);
        s->collections += (double)json_integer_value(json_object_get(g, "collections"));
        s->collected += (double)json_integer_value(json_object_get(g, "collected"));
    }
    s->requests =
        (double)json_integer_value(json_object_get(json_object_get(*srv, "requests"), "answered"));
    parse_pauses(json_string_value(m), s);
    json_decref(m);
    return true;
}

/* A full-screen view refreshed every second; q quits (or EOF on stdin). */
static int top(int fd, int frames) {
    struct termios old;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        struct termios raw = old;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    top_sample prev = {0}, cur;
    json_t *st, *cnt, *thr, *srv, *types;
    bool have_prev = false;
    int rc = EX_OK;
    for (int frame = 0; frames == 0 || frame < frames; frame++) {
        if (!take_sample(fd, &cur, &st, &cnt, &thr, &srv, &types)) {
            rc = EX_CONNECT;
            break;
        }
        double dt = have_prev ? cur.t - prev.t : 0;
        printf("\033[H\033[2J");
        printf("gyre top    (q quits)\n\n");
        printf("generation  count  threshold  collections  collected\n");
        for (int g = 0; g < 3; g++) {
            json_t *gs = json_array_get(st, (size_t)g);
            printf("%-10d  %5lld  %9lld  %11lld  %9lld\n", g,
                   (long long)json_integer_value(json_array_get(cnt, (size_t)g)),
                   (long long)json_integer_value(json_array_get(thr, (size_t)g)),
                   (long long)json_integer_value(json_object_get(gs, "collections")),
                   (long long)json_integer_value(json_object_get(gs, "collected")));
        }
        char p50[32] = "-", p99[32] = "-", pmax[32] = "-";
        if (have_prev) {
            fmt_s(quantile(&prev, &cur, 0.5), p50, sizeof p50);
            fmt_s(quantile(&prev, &cur, 0.99), p99, sizeof p99);
        }
        double maxp = 0;
        for (size_t g = 0; g < json_array_size(st); g++) {
            double v = json_real_value(json_object_get(json_array_get(st, g), "max_pause_s"));
            maxp = v > maxp ? v : maxp;
        }
        snprintf(pmax, sizeof pmax, "%.3f ms", maxp * 1e3);
        json_t *heap = json_object_get(srv, "heap");
        printf("\ncollections/s %.1f   collected/s %.0f   requests/s %.0f\n",
               dt > 0 ? (cur.collections - prev.collections) / dt : 0,
               dt > 0 ? (cur.collected - prev.collected) / dt : 0,
               dt > 0 ? (cur.requests - prev.requests) / dt : 0);
        printf("pause p50 %s   p99 %s   max %s\n", p50, p99, pmax);
        printf("heap %lld objects, %.1f MiB\n\n",
               (long long)json_integer_value(json_object_get(heap, "objects")),
               (double)json_integer_value(json_object_get(heap, "bytes")) / 1048576.0);
        if (json_array_size(types) > 0) {
            print_table(types);
        }
        fflush(stdout);
        json_decref(st), json_decref(cnt), json_decref(thr), json_decref(srv), json_decref(types);
        prev = cur;
        have_prev = true;
        if (frames != 0 && frame + 1 >= frames) {
            break;
        }
        /* q on a terminal; otherwise (a pipe, /dev/null) just the second. */
        struct pollfd pfd = {.fd = tty ? STDIN_FILENO : -1, .events = POLLIN};
        if (poll(&pfd, 1, 1000) > 0) {
            char c = 0;
            if (read(STDIN_FILENO, &c, 1) <= 0 || c == 'q') {
                break;
            }
        }
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
    }
    return rc;
}

int main(int argc, char **argv) {
    const char *sock = "run/gyre.sock";
    bool raw = false;
    static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    /* "+": stop at the first non-option, so the command's own arguments
     * (gc.set_threshold -1) reach the server untouched. */
    while ((ch = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            sock = optarg;
            break;
        case 'j':
            raw = true;
            break;
        case 'h':
            usage(stdout);
            return EX_OK;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    char line[4096] = "";
    size_t used = 0;
    for (int i = optind; i < argc; i++) {
        int n = snprintf(line + used, sizeof line - used, "%s%s", i > optind ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= sizeof line - used) {
            fprintf(stderr, "gyrectl: command longer than 4096 bytes\n");
            return EX_USAGE;
        }
        used += (size_t)n;
    }
    glob_t g;
    char *single[1] = {(char *)(uintptr_t)sock}; /* argv's own storage */
    char **paths = single;
    size_t npaths = 1;
    bool globbed = strpbrk(sock, "*?[") != NULL;
    if (globbed) {
        if (glob(sock, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
            fprintf(stderr, "gyrectl: no socket matches %s\n", sock);
            return EX_CONNECT;
        }
        paths = g.gl_pathv;
        npaths = g.gl_pathc;
    }
    if (used == 0 && (npaths != 1 || !isatty(STDIN_FILENO))) {
        if (npaths != 1) {
            fprintf(stderr, "gyrectl: the shell talks to one socket; give a COMMAND\n");
            return EX_USAGE;
        }
    }
    int worst = EX_OK;
    for (size_t i = 0; i < npaths; i++) {
        int fd = connect_to(paths[i]);
        if (fd < 0) {
            worst = EX_CONNECT;
            continue;
        }
        if (globbed) {
            printf("== %s\n", paths[i]);
            fflush(stdout);
        }
        int rc;
        if (strncmp(line, "top", 3) == 0 && (line[3] == '\0' || line[3] == ' ')) {
            /* "top [FRAMES]": FRAMES screens then exit (0: until q). */
            rc = top(fd, line[3] ? atoi(line + 4) : 0);
        } else {
            rc = used == 0 ? shell(fd) : run_line(fd, line, raw);
        }
        close(fd);
        if (rc > worst) {
            worst = rc;
        }
        fflush(stdout);
    }
    if (globbed) {
        globfree(&g);
    }
    return worst;
}
