/* server/ops/admin_memory.c: the admin socket's memory commands:
 * memory.stats (where the memory is) and memory.purge (give it back now). */
#include "admin.h"
#include "memory.h"

/* gy_memory_stats and the process's RSS as a JSON object (NULL: no memory). */
static json_t *gy__memory_json(const gy_memory_stats *m, uint64_t rss) {
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rss_bytes",
        (json_int_t)rss, "live_bytes", (json_int_t)m->live_bytes, "segment_bytes",
        (json_int_t)m->segment_bytes, "large_bytes", (json_int_t)m->large_bytes, "retained_bytes",
        (json_int_t)m->retained_bytes, "spare_segments", (json_int_t)m->spare_segments, "trims",
        (json_int_t)m->trims, "allocator_allocated", (json_int_t)m->allocator_allocated,
        "allocator_active", (json_int_t)m->allocator_active, "allocator_resident",
        (json_int_t)m->allocator_resident, "allocator_mapped", (json_int_t)m->allocator_mapped,
        "allocator_retained", (json_int_t)m->allocator_retained, "allocator_metadata",
        (json_int_t)m->allocator_metadata, "allocator_dirty", (json_int_t)m->allocator_dirty);
}

int gy__memory_stats_cmd(gy__admin_session *s, int argc, char **argv, json_t **out,
                         gy_errmsg *err) {
    (void)s, (void)argc, (void)argv;
    gy_memory_stats m;
    gy_memory_get_stats(&m);
    *out = gy__memory_json(&m, gy__memory_rss_bytes());
    return *out != NULL ? GY_OK : gy__server_errmsg(err, GY_ENOMEM, "out of memory");
}

int gy__memory_purge_cmd(gy__admin_session *s, int argc, char **argv, json_t **out,
                         gy_errmsg *err) {
    (void)argc, (void)argv;
    /* A purge may wait (up to 5 s) for a busy thread, on the control
     * thread: one at a time, and not again within a second or twice the
     * last one's wait, so that pipelined purges cannot hold it. */
    gy__memory_shared *m = &s->srv->mem;
    uint64_t now = gy__now_ns();
    uint64_t gap =
        m->last_purge_wait_ns * 2 > 1000000000u ? m->last_purge_wait_ns * 2 : 1000000000u;
    if (m->last_purge_ns != 0 && now - m->last_purge_ns < gap) {
        return gy__server_errmsg(err, GY_EAGAIN, "memory.purge ran %.2f s ago: again in %.2f s",
                                 (double)(now - m->last_purge_ns) / 1e9,
                                 (double)(gap - (now - m->last_purge_ns)) / 1e9);
    }
    uint64_t rss_before = gy__memory_rss_bytes();
    gy__purge_result r;
    gy__memory_purge(s->srv, &r);
    json_t *before = gy__memory_json(&r.before, rss_before);
    json_t *after = gy__memory_json(&r.after, gy__memory_rss_bytes());
    if (before == NULL || after == NULL) {
        json_decref(before);
        json_decref(after);
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    /* "o" steals both references, also when the packing fails (jansson
     * >= 2.11). */
    *out = json_pack("{s:o, s:o, s:i, s:i, s:f}", "before", before, "after", after, "threads",
                     r.threads, "acknowledged", r.acknowledged, "wait_s", r.wait_s);
    if (*out == NULL) {
        return gy__server_errmsg(err, GY_ENOMEM, "out of memory");
    }
    return GY_OK;
}
