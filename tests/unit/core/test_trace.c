/* Allocation tracing.
 *   core.seed_tracemalloc_top      display_top: the biggest site is this
 *                                  file's line, with its source text
 *   core.seed_tracemalloc_compare  compare_to: growth between snapshots is
 *                                  reported at the line that allocated
 *   core.trace                     filters, tags, types, traced memory,
 *                                  backing storage, off means untraced
 * Run as `test_core_trace NAME`. */
#include "gy_rt.h"

typedef struct rec {
    gy_object ob;
    char payload[40];
} rec;
static gy_type rec_type = {.name = "record", .size = sizeof(rec), .flags = GY_TYPE_LEAF};

static void test_seed_tracemalloc_top(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_list *keep;
    assert_int_equal(gy_list_new(&keep), GY_OK);
    assert_int_equal(gy_trace_start(), GY_OK);
    int big_line = 0, small_line = 0;
    for (int i = 0; i < 200; i++) {
        rec *r;
        big_line = __LINE__ + 1;
        assert_int_equal(gy_new(&rec_type, &r), GY_OK); /* the big site */
        assert_int_equal(gy_list_append(keep, r), GY_OK);
        gy_decref(r);
    }
    for (int i = 0; i < 3; i++) {
        gy_bytes *b;
        small_line = __LINE__ + 1;
        assert_int_equal(gy_bytes_new(&b, "tiny", 4), GY_OK);
        assert_int_equal(gy_list_append(keep, b), GY_OK);
        gy_decref(b);
    }
    gy_snapshot *snap;
    assert_int_equal(gy_trace_take_snapshot(&snap), GY_OK);
    gy_trace_stat *stats;
    size_t n;
    assert_int_equal(gy_snapshot_statistics(snap, GY_TRACE_BY_SITE, &stats, &n), GY_OK);
    assert_true(n >= 2);
    /* The caller's line, not a line inside Gyre. */
    assert_string_equal(stats[0].file, __FILE__);
    assert_int_equal(stats[0].line, big_line);
    assert_int_equal(stats[0].count, 200);
    assert_true(stats[0].size >= 200 * sizeof(rec));
    int found_small = 0;
    for (size_t i = 0; i < n; i++) {
        found_small |= stats[i].line == small_line && stats[i].count == 3;
    }
    assert_true(found_small);
    char *report;
    assert_int_equal(gy_trace_format_top(stats, n, GY_TRACE_BY_SITE, 1, &report), GY_OK);
    print_message("%s", report);
    char want[64];
    snprintf(want, sizeof want, "#1: test_trace.c:%d:", big_line);
    assert_non_null(strstr(report, want));
    assert_non_null(
        strstr(report, "assert_int_equal(gy_new(&rec_type, &r), GY_OK); /* the big site */"));
    assert_non_null(strstr(report, "other: "));
    assert_non_null(strstr(report, "Total allocated size: "));
    free(report);
    free(stats);
    gy_snapshot_free(snap);
    assert_int_equal(gy_trace_stop(), GY_OK);
    gy_decref(keep);
    GY_TEST_DOWN();
}

static void test_seed_tracemalloc_compare(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_list *keep;
    assert_int_equal(gy_list_new(&keep), GY_OK);
    assert_int_equal(gy_trace_start(), GY_OK);
    gy_snapshot *before, *after;
    assert_int_equal(gy_trace_take_snapshot(&before), GY_OK);
    int leak_line = 0;
    for (int i = 0; i < 50; i++) {
        rec *r;
        leak_line = __LINE__ + 1;
        assert_int_equal(gy_new(&rec_type, &r), GY_OK);
        assert_int_equal(gy_list_append(keep, r), GY_OK);
        gy_decref(r);
    }
    assert_int_equal(gy_trace_take_snapshot(&after), GY_OK);
    gy_trace_stat *diff;
    size_t n;
    assert_int_equal(gy_snapshot_compare(after, before, GY_TRACE_BY_SITE, &diff, &n), GY_OK);
    assert_true(n >= 1);
    assert_int_equal(diff[0].line, leak_line);
    assert_int_equal(diff[0].count_diff, 50);
    assert_int_equal(diff[0].size_diff, (int64_t)diff[0].size);
    free(diff);
    /* Reversed: the same site shrinks to zero. */
    assert_int_equal(gy_snapshot_compare(before, after, GY_TRACE_BY_SITE, &diff, &n), GY_OK);
    assert_int_equal(diff[0].line, leak_line);
    assert_int_equal(diff[0].count_diff, -50);
    assert_int_equal(diff[0].size, 0);
    free(diff);
    gy_snapshot_free(before);
    gy_snapshot_free(after);
    gy_trace_stop();
    gy_decref(keep);
    GY_TEST_DOWN();
}

static void test_filters_tags_types_memory(void **state) {
    (void)state;
    GY_TEST_UP();
    size_t cur, peak;
    rec *untraced;
    assert_int_equal(gy_new(&rec_type, &untraced), GY_OK); /* tracing off */
    assert_false(gy_trace_is_tracing());
    assert_int_equal(gy_trace_start(), GY_OK);
    assert_true(gy_trace_is_tracing());
    gy_trace_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(gy_trace_set_tag("route:/tree"), GY_OK);
    rec *a;
    assert_int_equal(gy_new(&rec_type, &a), GY_OK);
    assert_int_equal(gy_trace_set_tag(NULL), GY_OK);
    gy_list *l;
    int list_line = __LINE__ + 1;
    assert_int_equal(gy_list_new(&l), GY_OK);
    gy_trace_get_traced_memory(&cur, &peak);
    size_t before_growth = cur;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(gy_list_append(l, a), GY_OK); /* the array grows */
    }
    gy_trace_get_traced_memory(&cur, &peak);
    assert_true(cur >= before_growth + 1000 * sizeof(void *));
    gy_snapshot *snap;
    assert_int_equal(gy_trace_take_snapshot(&snap), GY_OK);
    assert_int_equal(snap->len, 2); /* a and l; `untraced` predates start */
    /* Backing storage counts towards the list's own site. */
    gy_trace_stat *st;
    size_t n;
    assert_int_equal(gy_snapshot_statistics(snap, GY_TRACE_BY_SITE, &st, &n), GY_OK);
    assert_int_equal(st[0].line, list_line);
    free(st);
    assert_int_equal(gy_snapshot_statistics(snap, GY_TRACE_BY_TAG, &st, &n), GY_OK);
    assert_int_equal(n, 2);
    int tagged = st[0].tag != NULL ? 0 : 1;
    assert_string_equal(st[tagged].tag, "route:/tree");
    free(st);
    assert_int_equal(gy_snapshot_statistics(snap, GY_TRACE_BY_TYPE, &st, &n), GY_OK);
    assert_int_equal(n, 2);
    assert_ptr_equal(st[0].type, &gy_list_type); /* the bigger one */
    free(st);
    /* Filters: include by type, exclude by line, by tag glob. */
    gy_snapshot *f;
    gy_trace_filter only_records = {.inclusive = true, .type = &rec_type};
    assert_int_equal(gy_snapshot_filter(snap, &only_records, 1, &f), GY_OK);
    assert_int_equal(f->len, 1);
    gy_snapshot_free(f);
    gy_trace_filter no_list_line = {.inclusive = false, .line = list_line};
    assert_int_equal(gy_snapshot_filter(snap, &no_list_line, 1, &f), GY_OK);
    assert_int_equal(f->len, 1);
    assert_ptr_equal(f->traces[0].type, &rec_type);
    gy_snapshot_free(f);
    gy_trace_filter route = {.inclusive = true, .tag_pattern = "route:*"};
    gy_trace_filter other_file = {.inclusive = true, .file_pattern = "*/nothing.c"};
    gy_trace_filter both[] = {route, other_file};
    assert_int_equal(gy_snapshot_filter(snap, both, 2, &f), GY_OK);
    assert_int_equal(f->len, 1);
    gy_snapshot_free(f);
    gy_trace_filter this_file = {.inclusive = true, .file_pattern = "*test_trace.c"};
    assert_int_equal(gy_snapshot_filter(snap, &this_file, 1, &f), GY_OK);
    assert_int_equal(f->len, 2);
    gy_snapshot_free(f);
    gy_snapshot_free(snap);
    /* Freed objects leave the traces; peak remembers. */
    gy_decref(l);
    gy_trace_get_traced_memory(&cur, &peak);
    assert_true(peak > cur);
    assert_int_equal(cur, (sizeof(rec) + 7) & ~(size_t)7); /* only `a` is left */
    gy_trace_reset_peak();
    size_t cur2, peak2;
    gy_trace_get_traced_memory(&cur2, &peak2);
    assert_int_equal(peak2, cur2);
    gy_trace_clear_traces();
    gy_trace_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 0);
    gy_decref(a);
    gy_decref(untraced);
    gy_trace_stop();
    GY_TEST_DOWN();
}

int main(int argc, char **argv) {
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_seed_tracemalloc_top),
        cmocka_unit_test(test_seed_tracemalloc_compare),
        cmocka_unit_test(test_filters_tags_types_memory),
    };
    const char *names[] = {"seed_tracemalloc_top", "seed_tracemalloc_compare", "trace"};
    for (size_t i = 0; argc > 1 && i < 3; i++) {
        if (strcmp(argv[1], names[i]) == 0) {
            const struct CMUnitTest one[] = {all[i]};
            return cmocka_run_group_tests_name(names[i], one, NULL, NULL) != 0;
        }
    }
    return cmocka_run_group_tests(all, NULL, NULL) != 0;
}
