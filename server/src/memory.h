/* server/src/memory.h: memory given back on a running server (memory.c).
 *
 * Only a heap's own thread can return its empty segments (core's
 * gy_memory_trim), and jemalloc returns decayed pages only while an arena
 * allocates, so an idle server would keep a released burst resident
 * forever. Every thread of the server (each loop, each worker, the control
 * thread) therefore keeps a trimmer: it trims every memory_trim_interval,
 * and at once when memory.purge asks every thread (a generation counter). */
#ifndef GY_SERVER_MEMORY_H
#define GY_SERVER_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "gyre/runtime.h"

typedef struct gy_server gy_server;

/* One thread's trimmer (owned by that thread). */
typedef struct gy__trimmer {
    uint64_t trimmed_ns; /* the last trim (or the start) */
    uint64_t gen;        /* the last purge generation served */
} gy__trimmer;

/* The server's share (in gy_server). purge: memory.purge's generation
 * (bits 16 and up, bumped by the control thread) and the threads that
 * trimmed for it (bits 0-15), in one word so that an ack counts only for
 * the generation it served (CAS; seq_cst, no other data rides on it).
 * last_purge_ns, last_purge_wait_ns: when the last purge ended and how
 * long it took (control thread only). */
typedef struct gy__memory_shared {
    _Atomic uint64_t purge;
    uint64_t last_purge_ns, last_purge_wait_ns;
} gy__memory_shared;

#define GY__PURGE_GEN(w) ((w) >> 16)

/* Start a trimmer on the calling thread: due one interval from now. */
void gy__trimmer_init(gy__trimmer *t, gy_server *srv);

/* On the trimmer's thread (attached), now and then: trim when a purge was
 * asked since the last call, or when memory_trim_interval has passed since
 * the last trim (0: never by time). Returns whether it trimmed. */
bool gy__trimmer_tick(gy__trimmer *t, gy_server *srv);

/* Milliseconds until the trimmer is due by time (0: not by time), for a
 * thread that sleeps on a condition variable (workers). */
uint64_t gy__trimmer_due_ms(const gy__trimmer *t, gy_server *srv);

/* What memory.purge did. */
typedef struct gy__purge_result {
    gy_memory_stats before, after;
    int threads;      /* loops and workers asked to trim */
    int acknowledged; /* of them, those that had trimmed within the wait */
    double wait_s;
} gy__purge_result;

/* memory.purge, on the control thread: every loop and worker trims at once
 * (the call waits, quiescent, up to five seconds for them), the control
 * thread trims, and the allocator returns every unused page. */
void gy__memory_purge(gy_server *srv, gy__purge_result *out);

/* Resident set size of this process, bytes (from /proc; 0 if unknown). */
uint64_t gy__memory_rss_bytes(void);

#endif /* GY_SERVER_MEMORY_H */
