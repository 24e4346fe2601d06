/* server/src/admin.h: the admin Unix socket (admin.c) and its command table
 * (admin_cmds.c). Everything here runs on the control thread, which is
 * attached to Gyre as a loop thread while the server runs. */
#ifndef GY_SERVER_ADMIN_H
#define GY_SERVER_ADMIN_H

#include <jansson.h>

#include "srv.h"

/* Access levels, HAProxy's: each includes the ones below it. */
typedef enum { GY__LEVEL_USER = 0, GY__LEVEL_OPERATOR = 1, GY__LEVEL_ADMIN = 2 } gy__level;

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

/* admin_cmds.c: the table, NULL-name terminated. */
extern const gy__admin_cmd gy__admin_cmds[];
/* Run one command line; returns the answer line (malloc'd, no newline). */
char *gy__admin_exec(gy__admin_session *s, char *line);
/* The gc.disable pause that resumes by itself: checked by the control
 * loop's timer (time and allocation budget). */
void gy__admin_pause_check(gy_server *srv);

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
void gy__admin_snaps_free(gy_server *srv);

/* admin.c */
/* Bind the socket (before the loops start; umask 0177 for the bind: 0600): a stale
 * socket is replaced only if nothing answers on it; a path longer than
 * sun_path is refused. Returns 0, GY_EINVAL, GY_EEXIST, GY_EIO. */
int gy__admin_bind(gy_server *srv, const char *path, gy_errmsg *err);
/* Start serving it on the control loop. */
int gy__admin_start(gy_server *srv, gy_errmsg *err);
/* Close a client connection of the admin socket (the control loop's
 * final walk). */
void gy__admin_conn_close(uv_handle_t *h);
/* Remove the socket file (at free). */
void gy__admin_unlink(gy_server *srv);

#endif /* GY_SERVER_ADMIN_H */
