/* server/ops/admin_cmds.c: the admin commands, declared once in a table
 * (name, arguments, level, summary, handler; HAProxy cli.c style). `help`
 * is generated from it. Names follow Python's gc module. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "metrics.h"
#include "text.h"
#include "gyre/failpoint.h"
#include "gyre/gc.h"
#include "gyre/list.h"

static const char *const gy__level_names[] = {"user", "operator", "admin"};

/* A decimal integer argument within [lo, hi]. */
static int gy__arg_long(const char *s, long lo, long hi, const char *what, long *out,
                        gy_errmsg *err) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (*s == '\0' || *end != '\0' || errno != 0) {
        return gy__server_errmsg(err, GY_EINVAL, "%s '%s': not an integer", what, s);
    }
    if (v < lo || v > hi) {
        return gy__server_errmsg(err, GY_ERANGE, "%s %ld: must be %ld..%ld", what, v, lo, hi);
    }
    *out = v;
    return GY_OK;
}

/* --- help, level ------------------------------------------------------------------ */

static json_t *gy__cmd_json(const gy__admin_cmd *c) {
    char usage[160];
    snprintf(usage, sizeof usage, "%s%s%s", c->name, c->args[0] ? " " : "", c->args);
    return json_pack("{s:s, s:s, s:s, s:s}", "name", c->name, "usage", usage, "level",
                     gy__level_names[c->level], "summary", c->summary);
}

static int gy__help(gy__admin_session *s, int argc, char **argv, json_t **out, gy_errmsg *err) {
    (void)s;
    json_t *list = json_array();
    for (const gy__admin_cmd *c = gy__admin_cmds; c->name; c++) {
        if (argc == 1 && strcmp(c->name, argv[0]) == 0) {
            json_decref(list);
            *out = gy__cmd_json(c);
            return GY_OK;
        }
        if (argc == 0) {
            json_array_append_new(list, gy__cmd_json(c));
        }
    }
    if (argc == 1) {
        json_decref(list);
        return gy__server_errmsg(err, GY_ENOENT, "no command '%s'", argv[0]);
    }
    *out = list;
    return GY_OK;
}

static int gy__cmd_level(gy__admin_session *s, int argc, char **argv, json_t **out,
                         gy_errmsg *err) {
    (void)argc;
    for (int l = 0; l <= GY__LEVEL_ADMIN; l++) {
        if (strcmp(argv[0], gy__level_names[l]) == 0) {
            if ((gy__level)l > s->level) {
                return gy__server_errmsg(err, GY_EPERM, "level %s is above this session's (%s)",
                                         argv[0], gy__level_names[s->level]);
            }
            s->level = (gy__level)l;
            *out = json_string(gy__level_names[l]);
            return GY_OK;
        }
    }
    return gy__server_errmsg(err, GY_EINVAL, "unknown level '%s' (user, operator, admin)", argv[0]);
}

/* --- gc.* --------------------------------------------------------------------------- */

static int gy__gc_get_threshold(gy__admin_session *s, int argc, char **argv, json_t **out,
                                gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    long t[GY_GC_GENERATIONS];
    gy_gc_get_threshold(t);
    *out = json_pack("[I,I,I]", (json_int_t)t[0], (json_int_t)t[1], (json_int_t)t[2]);
    return GY_OK;
}

static int gy__gc_set_threshold(gy__admin_session *s, int argc, char **argv, json_t **out,
                                gy_errmsg *err) {
    (void)s;
    long t[GY_GC_GENERATIONS];
    gy_gc_get_threshold(t);
    for (int i = 0; i < argc; i++) {
        char what[32];
        snprintf(what, sizeof what, "threshold %d", i);
        int rc = gy__arg_long(argv[i], 0, GY_GC_THRESHOLD_MAX, what, &t[i], err);
        if (rc != GY_OK) {
            return rc;
        }
    }
    int rc = gy_gc_set_threshold(t[0], t[1], t[2], err);
    if (rc != GY_OK) {
        return rc;
    }
    return gy__gc_get_threshold(s, 0, NULL, out, err);
}

static int gy__gc_isenabled(gy__admin_session *s, int argc, char **argv, json_t **out,
                            gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    *out = json_boolean(gy_gc_isenabled());
    return GY_OK;
}

static int gy__gc_get_count(gy__admin_session *s, int argc, char **argv, json_t **out,
                            gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    long c[GY_GC_GENERATIONS];
    gy_gc_get_count(c);
    *out = json_pack("[I,I,I]", (json_int_t)c[0], (json_int_t)c[1], (json_int_t)c[2]);
    return GY_OK;
}

static int gy__gc_get_stats(gy__admin_session *s, int argc, char **argv, json_t **out,
                            gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    gy_gc_gen_stats g[GY_GC_GENERATIONS];
    gy_gc_get_stats(g);
    json_t *list = json_array();
    for (int i = 0; i < GY_GC_GENERATIONS; i++) {
        json_array_append_new(
            list, json_pack("{s:I, s:I, s:I, s:f, s:f, s:f}", "collections",
                            (json_int_t)g[i].collections, "collected", (json_int_t)g[i].collected,
                            "uncollectable", (json_int_t)g[i].uncollectable, "duration_s",
                            (double)g[i].duration_ns / 1e9, "pause_s", (double)g[i].pause_ns / 1e9,
                            "max_pause_s", (double)g[i].max_pause_ns / 1e9));
    }
    *out = list;
    return GY_OK;
}

/* gc.get_thread: the mode and the collector's thread (gyre/gc.h). */
static int gy__gc_get_thread(gy__admin_session *s, int argc, char **argv, json_t **out,
                             gy_errmsg *err) {
    (void)s, (void)argc, (void)argv;
    static const char *const states[] = {"stopped", "idle", "running", "paused"};
    gy_gc_thread_stats t;
    gy_gc_get_thread_stats(&t);
    const char *mode = gy_gc_mode_name(gy_gc_get_mode());
    *out = json_pack(
        "{s:s, s:s, s:I, s:f, s:I, s:f, s:f, s:I, s:I, s:I, s:I, s:I}", "mode", mode ? mode : "?",
        "state", t.state >= 0 && t.state < 4 ? states[t.state] : "?", "runs", (json_int_t)t.runs,
        "busy_s", (double)t.busy_ns / 1e9, "increments", (json_int_t)t.increments,
        "epoch_hold_max_us", (double)t.epoch_hold_max_ns / 1e3, "epoch_hold_last_us",
        (double)t.epoch_hold_last_ns / 1e3, "handshakes", (json_int_t)t.handshakes, "aborted_sets",
        (json_int_t)t.aborted_sets, "anomalies", (json_int_t)t.anomalies, "fallback_stops",
        (json_int_t)t.fallback_stops, "world_stops", (json_int_t)t.world_stops);
    return *out != NULL ? GY_OK : gy__server_errmsg(err, GY_ENOMEM, "gc.get_thread: out of memory");
}

/* A pause histogram as {"<1us": n, "<2us": n, ...}: bucket b's upper bound. */
static json_t *pause_hist_json(const uint64_t hist[GY_PAUSE_BUCKETS]) {
    json_t *h = json_object();
    for (int b = 0; b < GY_PAUSE_BUCKETS; b++) {
        if (hist[b] == 0) {
            continue;
        }
        char key[32];
        if (b == GY_PAUSE_BUCKETS - 1) {
            snprintf(key, sizeof key, ">=%luus", 1ul << (b - 1));
        } else {
            snprintf(key, sizeof key, "<%luus", 1ul << b);
        }
        json_object_set_new(h, key, json_integer((json_int_t)hist[b]));
    }
    return h;
}

/* gc.get_pause_stats: the mutators' pauses by kind (count, total, max,
 * histogram), the MMU over 1 ms and 10 ms, the time to safepoint, the
 * collector thread's CPU and the young count (gyre/runtime.h, gyre/gc.h). */
static int gy__gc_get_pause_stats(gy__admin_session *s, int argc, char **argv, json_t **out,
                                  gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    gy_pause_stats p;
    gy_runtime_get_pause_stats(&p);
    json_t *kinds = json_object();
    for (int k = 0; k < GY_PAUSE_KINDS; k++) {
        json_object_set_new(kinds, gy_pause_kind_name(k),
                            json_pack("{s:I, s:f, s:f, s:o}", "count", (json_int_t)p.count[k],
                                      "total_s", (double)p.total_ns[k] / 1e9, "max_us",
                                      (double)p.max_ns[k] / 1e3, "histogram",
                                      pause_hist_json(p.hist[k])));
    }
    gy_gc_thread_stats t;
    gy_gc_get_thread_stats(&t);
    long count[GY_GC_GENERATIONS];
    gy_gc_get_count(count);
    gy_gc_pacing pace;
    gy_gc_get_pacing(&pace);
    *out = json_pack(
        "{s:o, s:f, s:f, s:{s:I, s:f, s:f, s:o}, s:f, s:I, s:I, s:f, s:I, s:I}", "pauses", kinds,
        "mmu_1ms", p.mmu_1ms, "mmu_10ms", p.mmu_10ms, "time_to_safepoint", "count",
        (json_int_t)p.ttsp_count, "total_s", (double)p.ttsp_total_ns / 1e9, "max_us",
        (double)p.ttsp_max_ns / 1e3, "histogram", pause_hist_json(p.ttsp_hist), "collector_cpu_s",
        (double)t.busy_ns / 1e9, "young_count", (json_int_t)count[0], "increments",
        (json_int_t)t.increments, "epoch_hold_max_us", (double)t.epoch_hold_max_ns / 1e3,
        "increment_budget_us", (json_int_t)pace.increment_budget_us, "pause_goal_us",
        (json_int_t)pace.pause_goal_us);
    return *out != NULL ? GY_OK
                        : gy__server_errmsg(err, GY_ENOMEM, "gc.get_pause_stats: out of memory");
}

static int gy__gc_enable(gy__admin_session *s, int argc, char **argv, json_t **out,
                         gy_errmsg *err) {
    (void)argc, (void)argv, (void)err;
    gy__admin_of(s->srv)->gc_pause.active = false;
    gy_gc_enable();
    *out = json_true();
    return GY_OK;
}

/* gc.disable [abort] [SECONDS] [max-bytes N]: a pause that ends by itself
 * when the time or the allocation budget (heap growth since the pause) runs
 * out; `abort` also stops the running collection, whose candidates all
 * survive (gy_gc_abort). */
static int gy__gc_disable(gy__admin_session *s, int argc, char **argv, json_t **out,
                          gy_errmsg *err) {
    gy__gc_pause *p = &gy__admin_of(s->srv)->gc_pause;
    long secs = 0, bytes = 0;
    int i = 0;
    bool abort_running = i < argc && strcmp(argv[i], "abort") == 0;
    if (abort_running) {
        i++;
    }
    if (i < argc && strcmp(argv[i], "max-bytes") != 0) {
        int rc = gy__arg_long(argv[i], 1, 86400 * 365, "SECONDS", &secs, err);
        if (rc != GY_OK) {
            return rc;
        }
        i++;
    }
    if (i < argc) {
        if (strcmp(argv[i], "max-bytes") != 0 || i + 1 >= argc) {
            return gy__server_errmsg(err, GY_EINVAL, "expected 'max-bytes N' after SECONDS");
        }
        int rc = gy__arg_long(argv[i + 1], 1, LONG_MAX, "max-bytes", &bytes, err);
        if (rc != GY_OK) {
            return rc;
        }
        i += 2;
    }
    if (i != argc) {
        return gy__server_errmsg(err, GY_EINVAL, "unexpected '%s'", argv[i]);
    }
    gy_runtime_stats st;
    gy_runtime_get_stats(&st);
    p->active = secs > 0 || bytes > 0;
    p->until_ns = secs > 0 ? gy__now_ns() + (uint64_t)secs * 1000000000u : 0;
    p->max_bytes = (uint64_t)bytes;
    p->base_bytes = st.bytes_live;
    p->pauses++;
    gy_gc_disable();
    bool aborted = abort_running && gy_gc_abort();
    *out = json_pack("{s:b, s:I, s:I, s:b}", "enabled", 0, "seconds", (json_int_t)secs, "max_bytes",
                     (json_int_t)bytes, "aborted", aborted);
    return *out != NULL ? GY_OK : gy__server_errmsg(err, GY_ENOMEM, "gc.disable: out of memory");
}

void gy__admin_pause_check(gy__admin *a) {
    gy__gc_pause *p = &a->gc_pause;
    if (!p->active) {
        return;
    }
    const char *why = NULL;
    if (p->until_ns != 0 && gy__now_ns() >= p->until_ns) {
        why = "its time ran out";
        p->resumed_time++;
    } else if (p->max_bytes != 0) {
        gy_runtime_stats st;
        gy_runtime_get_stats(&st);
        if (st.bytes_live > p->base_bytes && st.bytes_live - p->base_bytes > p->max_bytes) {
            why = "its allocation budget ran out";
            p->resumed_bytes++;
        }
    }
    if (why != NULL) {
        p->active = false;
        gy_gc_enable();
        gy__server_log(GY_LOG_INFO, "gc.disable: collection enabled again: %s", why);
    }
}

/* gc.collect's collection on a plain thread of its own (concurrent mode). */
typedef struct gy__collect_job {
    int generation, rc;
    gy_gc_result res;
    gy_errmsg err;
} gy__collect_job;

static void *gy__collect_thread(void *arg) {
    gy__collect_job *j = arg;
    j->rc = gy_thread_attach(NULL, &j->err);
    if (j->rc == GY_OK) {
        j->rc = gy_gc_collect(j->generation, &j->res, &j->err);
        gy_thread_detach();
    }
    return NULL;
}

/* gy_gc_collect for the control loop. In concurrent mode a loop may not
 * wait in gy_gc_collect, so a short-lived plain thread asks and the control
 * loop waits for it quiescent: world stops count it as stopped, and the
 * collector never waits for the control loop (what it hands over waits in
 * the inbox), so this cannot deadlock. It does hold the admin socket while
 * the collection runs, as gc.collect always did; the HTTP loops never
 * wait. (Answering admin commands later, from gy_gc_collect_async's
 * callback, is the cleaner follow-up.) */
static int gy__admin_collect(int generation, gy_gc_result *res, gy_errmsg *err) {
    if (gy_gc_get_mode() != GY_GC_MODE_CONCURRENT) {
        return gy_gc_collect(generation, res, err);
    }
    gy__collect_job j = {.generation = generation};
    pthread_t t;
    if (pthread_create(&t, NULL, gy__collect_thread, &j) != 0) {
        return gy__server_errmsg(err, GY_EAGAIN, "gc.collect: cannot start a thread");
    }
    gy_quiescent_begin();
    pthread_join(t, NULL);
    gy_quiescent_end();
    gy_safepoint(); /* what the collection freed of ours */
    if (j.rc != GY_OK && err != NULL) {
        *err = j.err;
    }
    *res = j.res;
    return j.rc;
}

static int gy__gc_collect(gy__admin_session *s, int argc, char **argv, json_t **out,
                          gy_errmsg *err) {
    (void)s;
    long gen = 2;
    if (argc == 1) {
        int rc = gy__arg_long(argv[0], 0, 2, "GEN", &gen, err);
        if (rc != GY_OK) {
            return rc;
        }
    }
    gy_gc_result r;
    int rc = gy__admin_collect((int)gen, &r, err);
    if (rc != GY_OK) {
        return rc;
    }
    *out = json_pack("{s:I, s:I, s:f, s:f}", "collected", (json_int_t)r.collected, "uncollectable",
                     (json_int_t)r.uncollectable, "duration_s", (double)r.duration_ns / 1e9,
                     "pause_s", (double)r.pause_ns / 1e9);
    return GY_OK;
}

/* A list of {id, type} for the objects of `list`, at most n. */
static json_t *gy__objects_json(gy_list *list, long n) {
    json_t *arr = json_array();
    size_t len = gy_list_len(list);
    for (size_t i = 0; i < len && (long)i < n; i++) {
        gy_object *ob = gy_list_get(list, i);
        if (ob != NULL) {
            json_array_append_new(arr, gy__admin_object_json(ob));
            gy_decref(ob);
        }
    }
    return arr;
}

static int gy__gc_get_objects(gy__admin_session *s, int argc, char **argv, json_t **out,
                              gy_errmsg *err) {
    (void)s;
    long gen = -1, n = 100;
    if (argc >= 1 && gy__arg_long(argv[0], -1, 2, "GEN", &gen, err) != GY_OK) {
        return err->code;
    }
    if (argc >= 2 && gy__arg_long(argv[1], 0, 1000000, "N", &n, err) != GY_OK) {
        return err->code;
    }
    gy_list *list;
    int rc = gy_gc_get_objects((int)gen, &list, err);
    if (rc != GY_OK) {
        return rc;
    }
    *out = json_pack("{s:I, s:o}", "count", (json_int_t)gy_list_len(list), "objects",
                     gy__objects_json(list, n));
    gy_decref(list);
    return GY_OK;
}

static int gy__gc_freeze(gy__admin_session *s, int argc, char **argv, json_t **out,
                         gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    gy_gc_freeze();
    *out = json_integer((json_int_t)gy_gc_get_freeze_count());
    return GY_OK;
}

static int gy__gc_unfreeze(gy__admin_session *s, int argc, char **argv, json_t **out,
                           gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    gy_gc_unfreeze();
    *out = json_integer((json_int_t)gy_gc_get_freeze_count());
    return GY_OK;
}

static int gy__gc_get_freeze_count(gy__admin_session *s, int argc, char **argv, json_t **out,
                                   gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    *out = json_integer((json_int_t)gy_gc_get_freeze_count());
    return GY_OK;
}

static int gy__gc_garbage(gy__admin_session *s, int argc, char **argv, json_t **out,
                          gy_errmsg *err) {
    (void)s, (void)argc, (void)argv;
    gy_list *list;
    int rc = gy_gc_garbage(&list);
    if (rc != GY_OK) {
        return gy__server_errmsg(err, rc, "%s", gy_strerror(rc));
    }
    *out = gy__objects_json(list, 1000);
    gy_decref(list);
    return GY_OK;
}

static int gy__gc_set_debug(gy__admin_session *s, int argc, char **argv, json_t **out,
                            gy_errmsg *err) {
    (void)s, (void)argc;
    long flags = 0;
    int rc = gy__arg_long(argv[0], 0, 0xffff, "FLAGS", &flags, err);
    if (rc != GY_OK) {
        return rc;
    }
    if (gy_gc_set_debug((unsigned)flags) != GY_OK) {
        return gy__server_errmsg(err, GY_EINVAL,
                                 "unknown flag bits in %ld (STATS 1, COLLECTABLE 2, "
                                 "UNCOLLECTABLE 4, SAVEALL 32, LEAK 38)",
                                 flags);
    }
    *out = json_integer((json_int_t)gy_gc_get_debug());
    return GY_OK;
}

static int gy__gc_get_debug(gy__admin_session *s, int argc, char **argv, json_t **out,
                            gy_errmsg *err) {
    (void)s, (void)argc, (void)argv, (void)err;
    *out = json_integer((json_int_t)gy_gc_get_debug());
    return GY_OK;
}

/* --- config.*, server.* ------------------------------------------------------------ */

static int gy__config_get(gy__admin_session *s, int argc, char **argv, json_t **out,
                          gy_errmsg *err) {
    size_t n;
    const gy_setting *tab = gy_settings(&n);
    json_t *obj = json_object();
    for (size_t i = 0; i < n; i++) {
        if (argc == 1 && strcmp(tab[i].name, argv[0]) != 0) {
            continue;
        }
        char v[512];
        pthread_rwlock_rdlock(&s->srv->cfg_lock);
        gy_config_format(s->srv->cfg, tab[i].name, v, sizeof v);
        pthread_rwlock_unlock(&s->srv->cfg_lock);
        json_object_set_new(obj, tab[i].name, json_string(v));
    }
    if (argc == 1 && json_object_size(obj) == 0) {
        json_decref(obj);
        return gy__server_errmsg(err, GY_ENOENT, "no setting '%s'", argv[0]);
    }
    *out = obj;
    return GY_OK;
}

static int gy__config_set(gy__admin_session *s, int argc, char **argv, json_t **out,
                          gy_errmsg *err) {
    (void)argc;
    gy_config *next;
    pthread_rwlock_rdlock(&s->srv->cfg_lock);
    int rc = gy_config_copy(s->srv->cfg, &next);
    pthread_rwlock_unlock(&s->srv->cfg_lock);
    if (rc != GY_OK) {
        return gy__server_errmsg(err, rc, "out of memory");
    }
    const char *names[1] = {argv[0]}, *values[1] = {argv[1]};
    rc = gy_config_set_many(next, 1, names, values, "admin config.set", true, err);
    if (rc == GY_OK) {
        rc = gy_server_reconfigure(s->srv, next, NULL, 0, err);
    }
    gy_config_free(next);
    if (rc != GY_OK) {
        return rc;
    }
    return gy__config_get(s, 1, argv, out, err);
}

static int gy__server_stats(gy__admin_session *s, int argc, char **argv, json_t **out,
                            gy_errmsg *err) {
    (void)argc, (void)argv, (void)err;
    gy_server_stats st;
    gy_server_get_stats(s->srv, &st);
    gy_runtime_stats rt;
    gy_runtime_get_stats(&rt);
    const gy__admin *a = gy__admin_of(s->srv);
    const gy__gc_pause *p = &a->gc_pause;
    *out = json_pack(
        "{s:f, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}, s:{s:I, s:I}, "
        "s:{s:b, s:I, s:I, s:I}}",
        "uptime_s", (double)(gy__now_ns() - s->srv->start_ns) / 1e9, "connections", "open",
        (json_int_t)st.connections_open, "accepted", (json_int_t)st.connections_accepted, "refused",
        (json_int_t)st.connections_refused, "requests", "answered", (json_int_t)st.requests, "4xx",
        (json_int_t)st.responses_4xx, "5xx", (json_int_t)st.responses_5xx, "bad",
        (json_int_t)st.bad_requests, "overload_503", (json_int_t)st.overload_503, "timeouts",
        (json_int_t)st.timeouts, "per_s_last_second", a->requests_per_s, "per_s_since_start",
        (double)st.requests / ((double)(gy__now_ns() - s->srv->start_ns) / 1e9 + 1e-9), "heap",
        "objects", (json_int_t)rt.objects_live, "bytes", (json_int_t)rt.bytes_live, "gc_pause",
        "active", p->active, "pauses", (json_int_t)p->pauses, "resumed_by_time",
        (json_int_t)p->resumed_time, "resumed_by_bytes", (json_int_t)p->resumed_bytes);
    return GY_OK;
}

static int gy__metrics_cmd(gy__admin_session *s, int argc, char **argv, json_t **out,
                           gy_errmsg *err) {
    (void)argc, (void)argv;
    char *text = gy__metrics_render(s->srv);
    if (text == NULL) {
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    *out = json_string(text);
    free(text);
    return GY_OK;
}

/* --- the table -------------------------------------------------------------------------- */

#define U GY__LEVEL_USER
#define O GY__LEVEL_OPERATOR
#define A GY__LEVEL_ADMIN
/* --- debug.failpoint ------------------------------------------------------------ */

/* debug.failpoint: every declared failpoint with its hits and firings, or
 * arm/disarm one (builds with failpoints only; others answer ENOTSUP). */
static int gy__debug_failpoint(gy__admin_session *s, int argc, char **argv, json_t **out,
                               gy_errmsg *err) {
    (void)s;
    if (!gy_failpoints_available()) {
        return gy__server_errmsg(err, GY_ENOTSUP,
                                 "this gyred was built without failpoints (GY_FAILPOINTS=OFF)");
    }
    if (argc == 2) {
        int rc = gy_failpoint_set(argv[0], argv[1], err);
        if (rc != GY_OK) {
            return rc;
        }
        gy__server_log(GY_LOG_WARN, "admin: failpoint %s = %s", argv[0], argv[1]);
    } else if (argc == 1) {
        return gy__server_errmsg(err, GY_EINVAL, "debug.failpoint takes NAME SPEC, or nothing");
    }
    json_t *list = json_array();
    for (size_t i = 0; gy_failpoint_name(i) != NULL; i++) {
        const char *name = gy_failpoint_name(i);
        json_array_append_new(list, json_pack("{s:s, s:I, s:I}", "name", name, "hits",
                                              (json_int_t)gy_failpoint_hits(name), "fired",
                                              (json_int_t)gy_failpoint_fired(name)));
    }
    *out = list;
    return GY_OK;
}

const gy__admin_cmd gy__admin_cmds[] = {
    {"help", "[CMD]", 0, 1, U, "the commands, or one", gy__help},
    {"level", "user|operator|admin", 1, 1, U, "lower this session's level", gy__cmd_level},
    {"gc.get_threshold", "", 0, 0, U, "the three thresholds", gy__gc_get_threshold},
    {"gc.set_threshold", "T0 [T1 [T2]]", 1, 3, O, "set thresholds (0 disables automatic)",
     gy__gc_set_threshold},
    {"gc.isenabled", "", 0, 0, U, "whether automatic collection is on", gy__gc_isenabled},
    {"gc.get_count", "", 0, 0, U, "counts toward each threshold", gy__gc_get_count},
    {"gc.get_stats", "", 0, 0, U, "per generation: collections, collected, uncollectable",
     gy__gc_get_stats},
    {"gc.get_thread", "", 0, 0, U, "the collector's mode, its thread's state and work",
     gy__gc_get_thread},
    {"gc.get_pause_stats", "", 0, 0, U,
     "mutator pauses by kind (histograms), MMU 1 ms / 10 ms, time to safepoint",
     gy__gc_get_pause_stats},
    {"gc.disable", "[abort] [SECONDS] [max-bytes N]", 0, 4, O,
     "pause automatic collection (until the time or heap growth runs out); abort: also stop "
     "the running collection, keeping its candidates",
     gy__gc_disable},
    {"gc.enable", "", 0, 0, O, "resume automatic collection", gy__gc_enable},
    {"gc.collect", "[GEN]", 0, 1, O, "collect a generation (default 2)", gy__gc_collect},
    {"gc.get_objects", "[GEN] [N]", 0, 2, A, "tracked objects (ids and types)", gy__gc_get_objects},
    {"gc.freeze", "", 0, 0, O, "move everything tracked to the permanent generation",
     gy__gc_freeze},
    {"gc.unfreeze", "", 0, 0, O, "move it back to the oldest generation", gy__gc_unfreeze},
    {"gc.get_freeze_count", "", 0, 0, U, "objects in the permanent generation",
     gy__gc_get_freeze_count},
    {"gc.garbage", "", 0, 0, A, "the garbage list (ids and types)", gy__gc_garbage},
    {"gc.set_debug", "FLAGS", 1, 1, A, "debug flags (Python's values)", gy__gc_set_debug},
    {"gc.get_debug", "", 0, 0, U, "debug flags", gy__gc_get_debug},
    {"objects.types", "[N]", 0, 1, U, "most common live types: count, bytes",
     gy__cmd_objects_types},
    {"objects.growth", "[N]", 0, 1, U, "types that grew since the last call",
     gy__cmd_objects_growth},
    {"objects.by_type", "TYPE [N]", 1, 2, A, "ids of live objects of a type",
     gy__cmd_objects_by_type},
    {"objects.referents", "ID [N]", 1, 2, A, "what an object references",
     gy__cmd_objects_referents},
    {"objects.referrers", "ID [N]", 1, 2, A, "what references an object",
     gy__cmd_objects_referrers},
    {"objects.backrefs", "ID [dot]", 1, 2, A, "the shortest chain from a root to an object",
     gy__cmd_objects_backrefs},
    {"tracemalloc.start", "", 0, 0, O, "trace allocations from now on", gy__cmd_trace_start},
    {"tracemalloc.stop", "", 0, 0, O, "stop tracing and forget the traces", gy__cmd_trace_stop},
    {"tracemalloc.traced_memory", "", 0, 0, U, "traced bytes now and at the peak",
     gy__cmd_trace_memory},
    {"tracemalloc.snapshot", "NAME", 1, 1, O, "keep a snapshot of the traces under NAME",
     gy__cmd_trace_snapshot},
    {"tracemalloc.filter", "NAME include|exclude PATTERN", 3, 3, O,
     "filter a snapshot by file glob (or tag=GLOB)", gy__cmd_trace_filter},
    {"tracemalloc.top", "[NAME] [site|tag|type] [N]", 0, 3, U,
     "largest groups of a snapshot (or of now)", gy__cmd_trace_top},
    {"tracemalloc.compare", "OLD NEW [N]", 2, 3, U, "what grew between two snapshots",
     gy__cmd_trace_compare},
    {"metrics", "", 0, 0, U, "the Prometheus text, as a JSON string", gy__metrics_cmd},
    {"config.get", "[KEY]", 0, 1, U, "settings and their values", gy__config_get},
    {"config.set", "KEY VALUE", 2, 2, A, "change a run-time setting", gy__config_set},
    {"server.stats", "", 0, 0, U, "connections, requests, heap", gy__server_stats},
    {"memory.stats", "", 0, 0, U, "where the memory is: live, retained, the allocator's, RSS",
     gy__memory_stats_cmd},
    {"memory.purge", "", 0, 0, O,
     "every thread gives its empty memory back, the allocator its pages", gy__memory_purge_cmd},
    {"debug.failpoint", "[NAME SPEC]", 0, 2, A,
     "failpoints and their counts, or arm one (SPEC: off, count, nth:N, from:N, prob:P[:SEED])",
     gy__debug_failpoint},
    {NULL, NULL, 0, 0, U, NULL, NULL},
};
#undef U
#undef O
#undef A

/* --- running a line ---------------------------------------------------------------------- */

static size_t gy__distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) {
        return 99;
    }
    size_t d[41][41];
    for (size_t i = 0; i <= la; i++) {
        d[i][0] = i;
    }
    for (size_t j = 0; j <= lb; j++) {
        d[0][j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    }
    return d[la][lb];
}

/* An error answer. The message may echo what the client sent: quoted as
 * valid UTF-8 (gy__text_printable), or jansson would refuse it and the
 * session would end without an answer. */
static char *gy__answer_error(int code, const char *message, const char *usage) {
    char text[1024];
    (void)gy__text_printable(text, sizeof text, message, strlen(message), SIZE_MAX);
    json_t *e = json_pack("{s:s, s:s}", "code", gy_err_name(code), "message", text);
    if (usage != NULL) {
        json_object_set_new(e, "usage", json_string(usage));
    }
    json_t *a = json_pack("{s:b, s:o}", "ok", 0, "error", e);
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

char *gy__admin_exec(gy__admin_session *s, char *line) {
    if (line == NULL) {
        return gy__answer_error(GY_EINVAL, "line longer than 4096 bytes (ignored)", NULL);
    }
    char *argv[17];
    int argc = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t", &save); t != NULL;
         t = strtok_r(NULL, " \t", &save)) {
        if (argc == 17) {
            return gy__answer_error(GY_EINVAL, "too many arguments", NULL);
        }
        argv[argc++] = t;
    }
    if (argc == 0) {
        /* (An empty line gets no answer; one of blanks is a mistake.) */
        return gy__answer_error(GY_EINVAL, "a line of blanks is not a command", NULL);
    }
    const gy__admin_cmd *cmd = NULL, *near = NULL;
    size_t best = 99;
    for (const gy__admin_cmd *c = gy__admin_cmds; c->name; c++) {
        if (strcmp(c->name, argv[0]) == 0) {
            cmd = c;
            break;
        }
        size_t d = gy__distance(c->name, argv[0]);
        if (d < best) {
            best = d;
            near = c;
        }
    }
    char msg[GY_ERRMSG_SIZE + 64];
    if (cmd == NULL) {
        /* At most 64 bytes of the name, never cut inside a character. */
        char name[4 * 64 + 1];
        (void)gy__text_printable(name, sizeof name, argv[0], strlen(argv[0]), 64);
        if (near != NULL && best <= 3) {
            snprintf(msg, sizeof msg, "unknown command '%s'; did you mean '%s'?", name, near->name);
        } else {
            snprintf(msg, sizeof msg, "unknown command '%s' (try help)", name);
        }
        return gy__answer_error(GY_ENOENT, msg, NULL);
    }
    char usage[160];
    snprintf(usage, sizeof usage, "%s%s%s", cmd->name, cmd->args[0] ? " " : "", cmd->args);
    if (cmd->level > s->level) {
        snprintf(msg, sizeof msg, "%s needs level %s (this session: %s)", cmd->name,
                 gy__level_names[cmd->level], gy__level_names[s->level]);
        gy__server_log(GY_LOG_WARN, "admin: refused %s at level %s", cmd->name,
                       gy__level_names[s->level]);
        return gy__answer_error(GY_EPERM, msg, usage);
    }
    int nargs = argc - 1;
    if (nargs < cmd->min_args || nargs > cmd->max_args) {
        snprintf(msg, sizeof msg, "%s takes %d to %d arguments, got %d", cmd->name, cmd->min_args,
                 cmd->max_args, nargs);
        return gy__answer_error(GY_EINVAL, msg, usage);
    }
    json_t *result = NULL;
    gy_errmsg err = {0};
    int rc = cmd->fn(s, nargs, argv + 1, &result, &err);
    if (rc != GY_OK) {
        return gy__answer_error(rc, err.text[0] ? err.text : gy_strerror(rc), usage);
    }
    json_t *a = json_pack("{s:b, s:o}", "ok", 1, "result", result ? result : json_null());
    char *out = a != NULL ? json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(a);
    if (out == NULL) {
        /* A result jansson could not encode (text that is not UTF-8 in it,
         * or no memory): an error answer, never a session cut short. */
        return gy__answer_error(GY_EINVAL, "the result could not be encoded as JSON", usage);
    }
    return out;
}
