/* server/src/log.c: the server's log lines on stderr and the access log. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "srv.h"

/* relaxed: a filter; a line logged during a change may use either level. */
static _Atomic int gy__log_level = GY_LOG_INFO;
/* The access log's fd (-1: off). Swapped under the lock; writers take it
 * too, so a reload never closes an fd a writer is using. */
static pthread_mutex_t gy__alog_lock = PTHREAD_MUTEX_INITIALIZER;
static int gy__alog_fd = -1;
static _Atomic bool gy__alog_on; /* relaxed: a hint checked before formatting */

void gy__log_timestamp(char *buf, size_t size) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

gy_log_level gy__log_level_parse(const char *name) {
    return strcmp(name, "debug") == 0   ? GY_LOG_DEBUG
           : strcmp(name, "warn") == 0  ? GY_LOG_WARN
           : strcmp(name, "error") == 0 ? GY_LOG_ERROR
                                        : GY_LOG_INFO;
}

int gy__server_errmsg(gy_errmsg *err, int code, const char *fmt, ...) {
    if (err != NULL) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof err->text, fmt, ap);
        va_end(ap);
    }
    return code;
}

void gy__log_set_level(gy_log_level level) {
    atomic_store_explicit(&gy__log_level, (int)level, memory_order_relaxed);
}

gy_log_level gy__log_get_level(void) {
    return (gy_log_level)atomic_load_explicit(&gy__log_level, memory_order_relaxed);
}

static void gy__log_line(gy_log_level level, const char *module, const char *msg) {
    char line[1200], ts[40];
    gy__log_timestamp(ts, sizeof ts);
    int n = snprintf(line, sizeof line, "%s %-5s %s%s%s\n", ts, gy_log_level_name(level),
                     module ? module : "", module ? ": " : "", msg);
    if (n < 0) {
        return;
    }
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (len == sizeof line - 1) {
        line[len - 1] = '\n';
    }
    /* One write: lines from several threads never interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void gy__server_log(gy_log_level level, const char *fmt, ...) {
    if ((int)level < atomic_load_explicit(&gy__log_level, memory_order_relaxed)) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gy__log_line(level, NULL, msg);
}

static void gy__log_from_gyre(void *ud, gy_log_level level, const char *module, const char *msg) {
    (void)ud;
    if ((int)level >= atomic_load_explicit(&gy__log_level, memory_order_relaxed)) {
        gy__log_line(level, module, msg);
    }
}

void gy__log_install_gyre_handler(void) {
    gy_log_set_handler(gy__log_from_gyre, NULL, GY_LOG_DEBUG);
}

int gy__access_log_open(const char *path, gy_errmsg *err) {
    int fd = -1;
    if (path != NULL && path[0] != '\0') {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            if (err != NULL) {
                err->code = GY_EIO;
                snprintf(err->text, sizeof err->text, "access_log '%s': %s", path, strerror(errno));
            }
            return GY_EIO;
        }
    }
    pthread_mutex_lock(&gy__alog_lock);
    int old = gy__alog_fd;
    gy__alog_fd = fd;
    atomic_store_explicit(&gy__alog_on, fd >= 0, memory_order_relaxed);
    pthread_mutex_unlock(&gy__alog_lock);
    if (old >= 0) {
        close(old);
    }
    return GY_OK;
}

void gy__access_log_close(void) { gy__access_log_open(NULL, NULL); }

bool gy__access_log_enabled(void) {
    return atomic_load_explicit(&gy__alog_on, memory_order_relaxed);
}

void gy__access_log_write(const char *line, size_t len) {
    pthread_mutex_lock(&gy__alog_lock);
    if (gy__alog_fd >= 0) {
        ssize_t w = write(gy__alog_fd, line, len);
        (void)w;
    }
    pthread_mutex_unlock(&gy__alog_lock);
}
