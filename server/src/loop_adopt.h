/* server/src/loop_adopt.h: a hook for tests that drive an HTTP loop from
 * their own thread, one step at a time (tests/fuzz/fuzz_http.c): no loop
 * thread, no listener served, connections handed in as sockets. The server
 * itself never calls it. */
#ifndef GY_SERVER_LOOP_ADOPT_H
#define GY_SERVER_LOOP_ADOPT_H

#include "srv.h"

/* gy__loop_adopt: make the calling thread `loop`'s thread instead of
 * starting one (use it in place of gy_server_run, on a server that will
 * not run): the loop is initialised as gy__loop_start does, the thread
 * attached to Gyre as a loop thread (woken through the loop's async handle)
 * and made gy__loop_current(), the prepare and check handles started (safe
 * points and quiescence as on a real loop). The listener is opened but not
 * served, and the loop's once-a-second trim timer is not started. The
 * caller then hands the loop connected stream sockets with
 * gy__conn_accept(loop, fd) and runs uv_run(&loop->uv, ...) itself; posts
 * from other threads (answers, workers started by the caller) and
 * gy_request_after timers work as on a real loop. Returns 0, GY_EIO (the
 * loop could not be initialised) or gy_thread_attach's error (the thread
 * was attached already). Not undone: the server is not freed afterwards. */
int gy__loop_adopt(gy__loop *loop, gy_errmsg *err);

#endif /* GY_SERVER_LOOP_ADOPT_H */
