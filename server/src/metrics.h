/* server/src/metrics.h: Prometheus metrics: the counters the loops feed,
 * the text rendering, and the listener on metrics_listen (GET /metrics,
 * GET /healthz). The listener runs on the control thread. */
#ifndef GY_SERVER_METRICS_H
#define GY_SERVER_METRICS_H

#include "srv.h"

/* Allocate the per-route rows (routes are fixed once the server runs). */
int gy__metrics_init(gy_server *srv);
void gy__metrics_free(gy_server *srv);
/* A request answered (route NULL: none matched; dur_ns 0: not timed). */
void gy__metrics_request(gy_server *srv, const gy__route *route, int status, uint64_t dur_ns);
/* Bind metrics_listen (in gy_server_new) and serve it (control loop). */
int gy__metrics_bind(gy_server *srv, const char *address, gy_errmsg *err);
int gy__metrics_start(gy_server *srv, gy_errmsg *err);
/* Close a metrics client connection (the control loop's final walk). */
void gy__metrics_conn_close(uv_handle_t *h);
/* The Prometheus text (malloc'd, NUL-terminated) or NULL. Attached thread. */
char *gy__metrics_render(gy_server *srv);

#endif /* GY_SERVER_METRICS_H */
