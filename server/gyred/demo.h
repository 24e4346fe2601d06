/* server/gyred/demo.h: gyred's demo routes (README lists them with curl). */
#ifndef GYRED_DEMO_H
#define GYRED_DEMO_H

#include "gyre/server.h"

/* Register the routes and create the shared cache and leak root (called
 * attached, before the loops start). Returns 0 or an error. */
int gyred_demo_setup(gy_server *srv, void *arg);
/* Drop the cache and the leak root (attached, after the loops stopped). */
void gyred_demo_teardown(gy_server *srv, void *arg);

#endif
