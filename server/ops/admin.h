/* server/ops/admin.h: the admin Unix socket (admin.c), a plane of the
 * server (gy__plane), and its command table (admin_cmds.c, admin_heap.c).
 * Everything here runs on the control thread, which is attached to Gyre as
 * a loop thread while the server runs (and in gy_server_new/free for bind
 * and free). */
#ifndef GY_SERVER_OPS_ADMIN_H
#define GY_SERVER_OPS_ADMIN_H

#include <jansson.h>

#include "srv.h"

/* Access levels, HAProxy's: each includes the ones below it. */
typedef enum { GY__LEVEL_USER = 0, GY__LEVEL_OPERATOR = 1, GY__LEVEL_ADMIN = 2 } gy__level;

/* gc.disable's self-ending pause (admin_cmds.c). */
typedef struct gy__gc_pause {
    bool active;
    uint64_t until_ns;   /* 0: no time limit */
    uint64_t max_bytes;  /* 0: no allocation budget */
    uint64_t base_bytes; /* heap bytes when it began */
    uint64_t pauses, resumed_time, resumed_bytes;
} gy__gc_pause;

/* A named tracemalloc snapshot (admin_heap.c). */
typedef struct gy__snap {
    char name[64];
    struct gy_snapshot *snap;
} gy__snap;

/* One server's admin socket (the plane's state). Control thread only,
 * except bind and free (gy_server_new's and gy_server_free's caller). */
typedef struct gy__admin {
    int fd; /* bound, not yet served (-1: none) */
    char path[108];
    uv_pipe_t pipe;
    int ro_fd; /* admin_socket_readonly, as fd */
    char ro_path[108];
    uv_pipe_t ro_pipe;
    gid_t gid;       /* admin_group, (gid_t)-1: none */
    int group_level; /* a gy__level */
    gy__gc_pause gc_pause;
    /* The last second's request rate (server.stats), from the tick. */
    uint64_t rate_at_ns, rate_requests;
    double requests_per_s;
    gy__snap *snaps; /* tracemalloc_max_snapshots at most */
    size_t nsnaps;
} gy__admin;

/* The plane: binds admin_socket (and admin_socket_readonly) in
 * gy_server_new, serves them on the control loop, ends gc.disable pauses
 * on the tick, removes the socket files at free. */
extern const gy__plane gy__admin_plane;
/* srv's admin state (never NULL once gy_server_new returned srv). */
gy__admin *gy__admin_of(const gy_server *srv);

/* One session (connection) as a command sees it. */
typedef struct gy__admin_session {
    gy_server *srv;
    gy__level level;
} gy__admin_session;

/* A command: fills *result (a NEW json reference) and returns 0, or returns
 * a GY_E* code with a message in err (the usage is added by the caller). */
typedef int (*gy__admin_fn)(gy__admin_session *s, int argc, char **argv, json_t **result,
                            gy_errmsg *err);

typedef struct gy__admin_cmd {
    const char *name;
    const char *args; /* usage after the name, "" if none */
    int min_args, max_args;
    gy__level level;
    const char *summary;
    gy__admin_fn fn;
} gy__admin_cmd;

/* admin_memory.c: memory.stats and memory.purge. */
int gy__memory_stats_cmd(gy__admin_session *s, int argc, char **argv, json_t **out, gy_errmsg *err);
int gy__memory_purge_cmd(gy__admin_session *s, int argc, char **argv, json_t **out, gy_errmsg *err);

/* admin_cmds.c: the table, NULL-name terminated. */
extern const gy__admin_cmd gy__admin_cmds[];
/* Run one command line; returns the answer line (malloc'd, no newline). */
char *gy__admin_exec(gy__admin_session *s, char *line);
/* The gc.disable pause that resumes by itself: checked on the plane's
 * tick (time and allocation budget). */
void gy__admin_pause_check(gy__admin *a);

/* admin_heap.c: objects.* and tracemalloc.* */
#define GY__HEAP_CMD(name) \
    int gy__cmd_##name(gy__admin_session *s, int argc, char **argv, json_t **out, gy_errmsg *err);
GY__HEAP_CMD(objects_types)
GY__HEAP_CMD(objects_growth)
GY__HEAP_CMD(objects_by_type)
GY__HEAP_CMD(objects_referents)
GY__HEAP_CMD(objects_referrers)
GY__HEAP_CMD(objects_backrefs)
GY__HEAP_CMD(trace_start)
GY__HEAP_CMD(trace_stop)
GY__HEAP_CMD(trace_memory)
GY__HEAP_CMD(trace_snapshot)
GY__HEAP_CMD(trace_filter)
GY__HEAP_CMD(trace_top)
GY__HEAP_CMD(trace_compare)
#undef GY__HEAP_CMD
/* {"id": "0xADDR:SERIAL", "type": NAME} for one object (a NEW json
 * reference); ids are what objects.* commands take. */
json_t *gy__admin_object_json(const gy_object *ob);
/* Drop the named snapshots (at free). */
void gy__admin_snaps_free(gy__admin *a);

#endif /* GY_SERVER_OPS_ADMIN_H */
