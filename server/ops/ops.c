/* server/ops/ops.c: the operator's plane, installed: the metrics listener
 * (metrics.c) and the admin socket (admin.c, admin_cmds.c, admin_heap.c)
 * are planes of the server (gy__plane in srv.h). They use the HTTP core's
 * internals; the core knows them only through the plane registry, which
 * this file fills before main (the collector installs its hooks into core
 * the same way, collector/src/gc.c). */
#include "admin.h"
#include "metrics.h"

/* Linked in, the planes are on: registered before main, so every server
 * binds them. Metrics first: gy_server_new binds in registration order and
 * reports the first failure (listen, then metrics_listen, then
 * admin_socket), and the admin socket uses metrics (the `metrics`
 * command). */
__attribute__((constructor)) static void gy__ops_install(void) {
    gy__server_plane_register(&gy__metrics_plane);
    gy__server_plane_register(&gy__admin_plane);
}
