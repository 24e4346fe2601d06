/* server/src/main.c: gy_server_main, the whole life of a server process:
 * flags and config, the runtime, the open-file limit, signals, reload, the
 * final collection and the summary line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gyre/gc.h"
#include "gyre/version.h"
#include "srv.h"

typedef struct gy__main_ctx {
    int argc;
    char **argv;
} gy__main_ctx;

static void gy__raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        gy__server_log(GY_LOG_WARN, "open files: getrlimit: %s", strerror(errno));
        return;
    }
    if (rl.rlim_cur == rl.rlim_max) {
        gy__server_log(GY_LOG_INFO, "open files: limit %llu (already the hard limit)",
                       (unsigned long long)rl.rlim_cur);
        return;
    }
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        gy__server_log(GY_LOG_WARN, "open files: cannot raise %llu to %llu: %s",
                       (unsigned long long)old, (unsigned long long)rl.rlim_max, strerror(errno));
        return;
    }
    gy__server_log(GY_LOG_INFO, "open files: soft limit raised from %llu to the hard limit %llu",
                   (unsigned long long)old, (unsigned long long)rl.rlim_max);
}

/* Flags errors are usage errors (64); anything about a value is a config
 * error (78). gy_config_apply_args says "see --help" for the former. */
static int gy__config_exit(const gy_errmsg *err) {
    return strstr(err->text, "see --help") != NULL ? 64 : 78;
}

static void gy__reload(gy_server *srv, void *arg) {
    gy__main_ctx *ctx = arg;
    gy_config *cfg;
    gy_errmsg err = {0};
    gy_config_action action;
    const char *path;
    if (gy_config_new(&cfg) != GY_OK) {
        gy__server_log(GY_LOG_ERROR, "SIGHUP: out of memory; nothing changed");
        return;
    }
    if (gy_config_apply_args(cfg, ctx->argc, ctx->argv, gy_config_default_text(), &action, &path,
                             &err) != GY_OK) {
        gy__server_log(GY_LOG_ERROR, "SIGHUP: reload refused, nothing changed: %s", err.text);
        gy_config_free(cfg);
        return;
    }
    char not_applied[1024];
    if (gy_server_reconfigure(srv, cfg, not_applied, sizeof not_applied, &err) != GY_OK) {
        gy__server_log(GY_LOG_ERROR, "SIGHUP: reload refused, nothing changed: %s", err.text);
    } else {
        gy__server_log(GY_LOG_INFO, "SIGHUP: reloaded %s%s%s", path ? path : "(embedded gyre.conf)",
                       not_applied[0] ? "; not applied: " : "", not_applied);
    }
    gy_config_free(cfg);
}

static void gy__summary(gy_server *srv, const gy_gc_result *final, double secs) {
    gy_server_stats s;
    gy_server_get_stats(srv, &s);
    gy_gc_gen_stats g[GY_GC_GENERATIONS];
    gy_gc_get_stats(g);
    gy_runtime_stats rt;
    gy_runtime_get_stats(&rt);
    uint64_t coll = 0, collected = 0, pause = 0, max_pause = 0, dur = 0;
    for (int i = 0; i < GY_GC_GENERATIONS; i++) {
        coll += g[i].collections;
        collected += g[i].collected;
        pause += g[i].pause_ns;
        dur += g[i].duration_ns;
        max_pause = g[i].max_pause_ns > max_pause ? g[i].max_pause_ns : max_pause;
    }
    /* Collector pauses the collections' own figures do not see: the
     * mutators' throttling waits (concurrent mode's pacing, 9.15). */
    gy_pause_stats ps;
    gy_runtime_get_pause_stats(&ps);
    char ts[40], line[768];
    gy__log_timestamp(ts, sizeof ts);
    int n = snprintf(
        line, sizeof line,
        "%s info  summary: up %.1f s, %llu requests (%llu 4xx, %llu 5xx, %llu bad), %llu "
        "connections, %llu timeouts; %llu collections (gen0 %llu, gen1 %llu, gen2 %llu), "
        "%llu objects collected (final collection: %zu), collecting %.3f s, paused %.3f s "
        "(max pause %.0f us), throttled %.3f s (max %.0f us); heap %llu objects, "
        "%llu bytes\n",
        ts, secs, (unsigned long long)s.requests, (unsigned long long)s.responses_4xx,
        (unsigned long long)s.responses_5xx, (unsigned long long)s.bad_requests,
        (unsigned long long)s.connections_accepted, (unsigned long long)s.timeouts,
        (unsigned long long)coll, (unsigned long long)g[0].collections,
        (unsigned long long)g[1].collections, (unsigned long long)g[2].collections,
        (unsigned long long)collected, final ? final->collected : (size_t)0, (double)dur / 1e9,
        (double)pause / 1e9, (double)max_pause / 1e3, (double)ps.total_ns[GY_PAUSE_ASSIST] / 1e9,
        (double)ps.max_ns[GY_PAUSE_ASSIST] / 1e3, (unsigned long long)rt.objects_live,
        (unsigned long long)rt.bytes_live);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line);
        (void)w;
    }
}

int gy_server_main(int argc, char **argv, const gy_server_app *app) {
    const char *prog = app && app->name ? app->name : GY__SERVER_NAME;
    gy_config *cfg;
    if (gy_config_new(&cfg) != GY_OK) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 70;
    }
    gy_errmsg err = {0};
    gy_config_action action;
    const char *path;
    if (gy_config_apply_args(cfg, argc, argv, gy_config_default_text(), &action, &path, &err) !=
        GY_OK) {
        fprintf(stderr, "%s: %s\n", prog, err.text);
        gy_config_free(cfg);
        return gy__config_exit(&err);
    }
    if (action == GY_CONFIG_HELP) {
        size_t need = gy_config_usage(NULL, 0, prog) + 1;
        char *buf = malloc(need);
        if (buf != NULL) {
            gy_config_usage(buf, need, prog);
            fputs(buf, stdout);
            free(buf);
        }
        gy_config_free(cfg);
        return 0;
    }
    if (action == GY_CONFIG_VERSION) {
        printf("%s %s (gyre %s, libuv %s, llhttp %d.%d.%d)\n", prog, GY_VERSION_STRING,
               gy_version(), uv_version_string(), LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR,
               LLHTTP_VERSION_PATCH);
        gy_config_free(cfg);
        return 0;
    }
    gy__log_set_level(gy__log_level_parse(gy_config_str(cfg, "log_level")));
    gy__log_install_gyre_handler();
    gy__server_log(GY_LOG_INFO, "%s %s starting (config: %s)", prog, GY_VERSION_STRING,
                   path ? path : "embedded gyre.conf");
    gy__raise_nofile();
    /* gc_mode is read once, here: it cannot change while the runtime runs
     * (settings.def marks it restart-only). */
    gy_runtime_options ropts = {.gc_mode = strcmp(gy_config_str(cfg, "gc_mode"), "stw") == 0
                                               ? GY_GC_MODE_STW
                                               : GY_GC_MODE_CONCURRENT};
    if (gy_runtime_init(&ropts, &err) != GY_OK) {
        gy__server_log(GY_LOG_ERROR, "runtime: %s", err.text);
        gy_config_free(cfg);
        return 70;
    }
    int code = 0;
    gy_server *srv = NULL;
    gy__apply_gc_settings(cfg);
    if (gy__access_log_open(gy_config_str(cfg, "access_log"), &err) != GY_OK ||
        gy_server_new(&srv, cfg, &err) != GY_OK) {
        gy__server_log(GY_LOG_ERROR, "cannot start: %s", err.text);
        code = 70;
        goto out;
    }
    gy__main_ctx ctx = {argc, argv};
    srv->handle_signals = true;
    srv->on_reload = gy__reload;
    srv->reload_arg = &ctx;
    if (app != NULL && app->setup != NULL) {
        gy_thread_attach(NULL, NULL);
        int rc = app->setup(srv, app->arg);
        gy_thread_detach();
        if (rc != GY_OK) {
            gy__server_log(GY_LOG_ERROR, "cannot start: setup failed: %s", gy_strerror(rc));
            code = 70;
            goto out;
        }
    }
    if (gy_server_run(srv, &err) != GY_OK) {
        gy__server_log(GY_LOG_ERROR, "server: %s", err.text);
        code = 70;
    }
    double secs = (double)(gy__now_ns() - srv->start_ns) / 1e9;
    gy_thread_attach(NULL, NULL);
    if (app != NULL && app->teardown != NULL) {
        app->teardown(srv, app->arg);
    }
    /* The final collection, repeated while it finds something: cycles
     * through a loop's connections are deferred by one collection (their
     * clears go to the loop, now gone, so the next collection finishes
     * them). */
    gy_gc_result res = {0};
    for (int round = 0; round < 4; round++) {
        gy_gc_result one = {0};
        if (gy_gc_collect(2, &one, &err) != GY_OK) {
            gy__server_log(GY_LOG_WARN, "final collection: %s", err.text);
            break;
        }
        res.collected += one.collected;
        if (one.collected == 0 && one.uncollectable == 0) {
            break;
        }
    }
    gy__summary(srv, &res, secs);
    gy_thread_detach();
out:
    gy_server_free(srv);
    gy__access_log_close();
    gy_config_free(cfg);
    if (gy_runtime_shutdown(&err) != GY_OK) {
        gy__server_log(GY_LOG_WARN, "at exit: %s", err.text);
    }
    return code;
}
