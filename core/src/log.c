/* core/src/log.c: the log callback and its level filter.
 *
 * The handler, its userdata and its level are one immutable record; the
 * current record is published through one atomic pointer, so a logging thread
 * sees one whole record. Records are never freed while the process runs (a
 * logger on another thread may still read the old one); they stay reachable
 * from `all_records` so leak checkers do not report them. Handlers are set a few
 * times per process, so this costs a few dozen bytes.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

typedef struct log_record {
    gy_log_fn fn;
    void *userdata;
    gy_log_level min_level;
    struct log_record *all_next; /* every record ever made, kept reachable */
} log_record;

/* Synchronization: release on store so the record's fields are visible to a
 * thread that acquires the pointer. */
static _Atomic(log_record *) current;
/* Synchronization: a CAS-pushed list only ever read by leak checkers. */
static _Atomic(log_record *) all_records;

void gy_log_set_handler(gy_log_fn fn, void *userdata, gy_log_level min_level) {
    log_record *rec = NULL;
    if (fn != NULL) {
        rec = malloc(sizeof *rec);
        if (rec == NULL) {
            return; /* keep the old handler: logging must never fail loudly */
        }
        rec->fn = fn;
        rec->userdata = userdata;
        rec->min_level = min_level;
        log_record *head = atomic_load_explicit(&all_records, memory_order_relaxed);
        do {
            rec->all_next = head;
            /* relaxed: the list orders nothing; it only keeps records reachable */
        } while (!atomic_compare_exchange_weak_explicit(
            &all_records, &head, rec, memory_order_relaxed, memory_order_relaxed));
    }
    /* release: the record's fields are written before a logger can load it. */
    atomic_store_explicit(&current, rec, memory_order_release);
}

const char *gy_log_level_name(gy_log_level level) {
    switch (level) {
    case GY_LOG_DEBUG:
        return "debug";
    case GY_LOG_INFO:
        return "info";
    case GY_LOG_WARN:
        return "warn";
    case GY_LOG_ERROR:
        return "error";
    }
    return "?";
}

int gy__log_enabled(gy_log_level level) {
    /* acquire: pairs with the release in gy_log_set_handler. */
    const log_record *rec = atomic_load_explicit(&current, memory_order_acquire);
    return rec != NULL && level >= rec->min_level;
}

void gy__log(gy_log_level level, const char *module, const char *fmt, ...) {
    /* acquire: pairs with the release in gy_log_set_handler. */
    const log_record *rec = atomic_load_explicit(&current, memory_order_acquire);
    if (rec == NULL || level < rec->min_level) {
        return;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    rec->fn(rec->userdata, level, module, line);
}
