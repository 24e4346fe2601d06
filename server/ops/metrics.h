/* server/ops/metrics.h: Prometheus metrics, a plane of the server
 * (gy__plane): the counters every answer feeds, the text rendering, and
 * the listener on metrics_listen (GET /metrics, GET /healthz), which runs
 * on the control thread. */
#ifndef GY_SERVER_OPS_METRICS_H
#define GY_SERVER_OPS_METRICS_H

#include "srv.h"

/* The plane: binds metrics_listen (gy_server_new), serves it (control
 * loop), counts every answer (any loop), closes its clients at the end. */
extern const gy__plane gy__metrics_plane;

/* The Prometheus text (malloc'd, NUL-terminated) or NULL (out of memory).
 * Attached thread. */
char *gy__metrics_render(gy_server *srv);

#endif /* GY_SERVER_OPS_METRICS_H */
