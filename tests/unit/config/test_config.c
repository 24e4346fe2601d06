/* config.table: every kind of bad value, files, flags, all-or-nothing.
 * config.default_file: config/gyre.conf lists every setting once, with its
 * default (run as `test_config default_file PATH`). */
#include <unistd.h>

#include "gy_test.h"
#include "gyre/config.h"

static gy_config *fresh(void) {
    gy_config *cfg = NULL;
    assert_int_equal(gy_config_new(&cfg), GY_OK);
    return cfg;
}

/* Setting `name` to `value` fails with `code`, the message names the
 * setting, the value and the source, and nothing changes. */
static void refused(const char *name, const char *value, int code) {
    gy_config *cfg = fresh();
    char before[256], after[256];
    gy_config_format(cfg, name, before, sizeof before);
    gy_errmsg err = {0};
    int rc = gy_config_set(cfg, name, value, "test:7", &err);
    if (rc != code) {
        fail_msg("%s = '%s': got %d (%s), expected %d", name, value, rc, err.text, code);
    }
    assert_non_null(strstr(err.text, "test:7"));
    assert_non_null(strstr(err.text, name));
    assert_non_null(strstr(err.text, value));
    assert_non_null(strstr(err.text, "allowed"));
    gy_config_format(cfg, name, after, sizeof after);
    assert_string_equal(before, after);
    gy_config_free(cfg);
}

static void accepted(const char *name, const char *value, const char *formatted) {
    gy_config *cfg = fresh();
    gy_errmsg err = {0};
    if (gy_config_set(cfg, name, value, "test", &err) != GY_OK) {
        fail_msg("%s = '%s' refused: %s", name, value, err.text);
    }
    char buf[256];
    gy_config_format(cfg, name, buf, sizeof buf);
    assert_string_equal(buf, formatted);
    gy_config_free(cfg);
}

static void test_defaults_round_trip(void **state) {
    (void)state;
    size_t n;
    const gy_setting *s = gy_settings(&n);
    assert_true(n >= 20);
    gy_config *cfg = fresh();
    for (size_t i = 0; i < n; i++) {
        assert_non_null(gy_setting_find(s[i].name));
        assert_non_null(s[i].description);
        char buf[256];
        gy_config_format(cfg, s[i].name, buf, sizeof buf);
        assert_string_equal(buf, s[i].default_value); /* defaults written canonically */
        gy_errmsg err = {0};
        assert_int_equal(gy_config_set(cfg, s[i].name, buf, "round trip", &err), GY_OK);
    }
    assert_int_equal(gy_config_int(cfg, "max_connections"), 10000);
    assert_int_equal(gy_config_int(cfg, "max_header_bytes"), 16384);
    assert_int_equal(gy_config_int(cfg, "header_timeout"), 10000);
    assert_int_equal(gy_config_int(cfg, "demo_leaks"), 0);
    assert_string_equal(gy_config_str(cfg, "listen"), "127.0.0.1:8080");
    assert_string_equal(gy_config_str(cfg, "admin_socket"), "run/gyre.sock");
    assert_string_equal(gy_config_str(cfg, "log_level"), "info");
    assert_null(gy_setting_find("no_such_thing"));
    gy_config_free(cfg);
}

static void test_bad_values(void **state) {
    (void)state;
    /* bool */
    refused("demo_leaks", "maybe", GY_EINVAL);
    refused("demo_leaks", "", GY_EINVAL);
    accepted("demo_leaks", "yes", "on");
    accepted("demo_break_cycles", "0", "off");
    /* int */
    refused("max_connections", "12x", GY_EINVAL);
    refused("max_connections", "", GY_EINVAL);
    refused("max_connections", "0", GY_ERANGE);
    refused("max_connections", "1000001", GY_ERANGE);
    refused("max_connections", "99999999999999999999", GY_EINVAL);
    refused("threads", "-1", GY_ERANGE);
    refused("threads", "four", GY_EINVAL);
    accepted("threads", "8", "8");
    /* bytes */
    refused("max_body_bytes", "1q", GY_EINVAL);
    refused("max_body_bytes", "1kk", GY_EINVAL);
    refused("max_body_bytes", "2g", GY_ERANGE);
    refused("max_header_bytes", "100", GY_ERANGE);
    refused("max_header_bytes", "k", GY_EINVAL);
    accepted("max_body_bytes", "512k", "512k");
    accepted("max_body_bytes", "1048577", "1048577");
    accepted("max_heap_bytes", "0", "0");
    /* duration */
    refused("idle_timeout", "10x", GY_EINVAL);
    refused("idle_timeout", "5 s", GY_EINVAL);
    refused("idle_timeout", "2h", GY_ERANGE);
    refused("header_timeout", "50ms", GY_ERANGE);
    accepted("idle_timeout", "90", "90s");
    accepted("idle_timeout", "1500ms", "1500ms");
    accepted("drain_timeout", "2m", "2m");
    /* string */
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    refused("admin_socket", longpath, GY_ERANGE);
    refused("admin_socket", "", GY_ERANGE);
    accepted("access_log", "", "");
    /* address */
    refused("listen", "nohost", GY_EINVAL);
    refused("listen", "1.2.3.4", GY_EINVAL);
    refused("listen", "1.2.3.4:", GY_EINVAL);
    refused("listen", ":80", GY_EINVAL);
    refused("listen", "1.2.3.4:70000", GY_EINVAL);
    refused("listen", "999.1.1.1:80", GY_EINVAL);
    refused("listen", "[::1:80", GY_EINVAL);
    refused("listen", "1.2.3.4:-1", GY_EINVAL);
    accepted("listen", "[::1]:8080", "[::1]:8080");
    accepted("listen", "localhost:0", "localhost:0");
    /* enum */
    refused("log_level", "verbose", GY_EINVAL);
    accepted("log_level", "debug", "debug");
}

static void test_unknown_and_many(void **state) {
    (void)state;
    gy_config *cfg = fresh();
    gy_errmsg err = {0};
    assert_int_equal(gy_config_set(cfg, "max_conections", "5", "--set", &err), GY_ENOENT);
    assert_non_null(strstr(err.text, "did you mean 'max_connections'"));
    /* All or nothing: the good first change is not applied either. */
    const char *names[] = {"max_connections", "idle_timeout"};
    const char *bad[] = {"5", "soon"};
    assert_int_equal(gy_config_set_many(cfg, 2, names, bad, "reload", false, &err), GY_EINVAL);
    assert_int_equal(gy_config_int(cfg, "max_connections"), 10000);
    const char *good[] = {"5", "30s"};
    assert_int_equal(gy_config_set_many(cfg, 2, names, good, "reload", false, &err), GY_OK);
    assert_int_equal(gy_config_int(cfg, "max_connections"), 5);
    assert_int_equal(gy_config_int(cfg, "idle_timeout"), 30000);
    /* Run-time changes refuse what needs a restart, and say so. */
    const char *ln[] = {"max_connections", "listen"};
    const char *lv[] = {"6", "127.0.0.1:9"};
    assert_int_equal(gy_config_set_many(cfg, 2, ln, lv, "SIGHUP", true, &err), GY_EPERM);
    assert_non_null(strstr(err.text, "listen cannot change while the server runs"));
    assert_int_equal(gy_config_int(cfg, "max_connections"), 5);
    gy_config_free(cfg);
}

static void test_files(void **state) {
    (void)state;
    gy_config *cfg = fresh();
    gy_errmsg err = {0};
    assert_int_equal(gy_config_load_string(cfg,
                                           "# comment\n"
                                           "max_connections = 50\n"
                                           "idle_timeout = 5s ; inline comment\n"
                                           "max_connections = 60\n",
                                           "a.conf", &err),
                     GY_OK);
    assert_int_equal(gy_config_int(cfg, "max_connections"), 60); /* the later one */
    assert_int_equal(gy_config_int(cfg, "idle_timeout"), 5000);
    /* A bad value names file:line; nothing of the file is applied. */
    assert_int_equal(gy_config_load_string(cfg,
                                           "max_connections = 70\n"
                                           "\n"
                                           "max_body_bytes = lots\n",
                                           "b.conf", &err),
                     GY_EINVAL);
    assert_non_null(strstr(err.text, "b.conf:3: max_body_bytes = 'lots'"));
    assert_int_equal(gy_config_int(cfg, "max_connections"), 60);
    /* Syntax errors and sections. */
    assert_int_equal(
        gy_config_load_string(cfg, "max_connections = 80\nnonsense line\n", "c.conf", &err),
        GY_EINVAL);
    assert_non_null(strstr(err.text, "c.conf:2: syntax error"));
    assert_int_equal(gy_config_load_string(cfg, "[server]\nthreads = 2\n", "d.conf", &err),
                     GY_EINVAL);
    assert_non_null(strstr(err.text, "d.conf:1: [server]"));
    assert_int_equal(gy_config_load_string(cfg, "thread = 2\n", "e.conf", &err), GY_ENOENT);
    assert_non_null(strstr(err.text, "e.conf:1: no setting 'thread' (did you mean 'threads'?)"));
    assert_int_equal(gy_config_int(cfg, "max_connections"), 60);
    /* Issue 14, defect 5: inih's 200-byte lines, NUL bytes cutting values
     * short, indented lines continuing the setting above. Lines up to 4096
     * bytes parse; the rest are errors naming file:line and the setting. */
    char big[5000];
    snprintf(big, sizeof big, "# %0300d\naccess_log = /tmp/%0240d.log\n", 0, 0);
    assert_int_equal(gy_config_load_string(cfg, big, "f.conf", &err), GY_OK);
    assert_int_equal(strlen(gy_config_str(cfg, "access_log")), strlen("/tmp/.log") + 240);
    memset(big, 'x', 4096);
    memcpy(big, "# ", 2);
    big[4096] = '\0';
    assert_int_equal(gy_config_load_string(cfg, big, "g.conf", &err), GY_OK); /* 4096 bytes */
    strcpy(big + 4096, "x\nthreads = 2\n");
    assert_int_equal(gy_config_load_string(cfg, big, "h.conf", &err), GY_EINVAL);
    assert_non_null(strstr(err.text, "h.conf:1: line longer than 4096 bytes"));
    assert_int_equal(gy_config_load_string(cfg, "max_connections = 90\n  max_connections = 91\n",
                                           "i.conf", &err),
                     GY_EINVAL);
    assert_non_null(strstr(err.text, "i.conf:2: indented line"));
    assert_non_null(strstr(err.text, "the setting above is 'max_connections'"));
    assert_int_equal(gy_config_load_string(cfg, "max_connections = 9\x1b[2J9\n", "j.conf", &err),
                     GY_EINVAL);
    assert_non_null(strstr(err.text, "j.conf:1: a control byte (\\x1b)"));
    assert_non_null(strstr(err.text, "'max_connections'"));
    assert_null(strchr(err.text, 0x1b)); /* quoted, never raw */
    /* fuzz_config's first find: a tab in an unknown name was echoed raw. */
    assert_int_equal(gy_config_load_string(cfg, "\xff\t\xff\xff==\n", "k.conf", &err), GY_ENOENT);
    assert_null(strchr(err.text, '\t'));
    assert_non_null(strstr(err.text, "\\x09"));
    assert_int_equal(gy_config_int(cfg, "max_connections"), 60);
    /* Files. */
    assert_int_equal(gy_config_load_file(cfg, "/nonexistent/gyre.conf", &err), GY_EIO);
    assert_non_null(strstr(err.text, "/nonexistent/gyre.conf: cannot read"));
    char path[] = "/tmp/gyre_config_testXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char body[] = "threads = 3\ndemo_leaks = on\n";
    assert_int_equal(write(fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
    close(fd);
    assert_int_equal(gy_config_load_file(cfg, path, &err), GY_OK);
    assert_int_equal(gy_config_int(cfg, "threads"), 3);
    assert_int_equal(gy_config_int(cfg, "demo_leaks"), 1);
    /* A NUL byte no longer cuts a value short (it loaded 10). */
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    const char nul[] = "# x\nmax_connections = 10\0 99\n";
    assert_int_equal(fwrite(nul, 1, sizeof nul - 1, fp), sizeof nul - 1);
    fclose(fp);
    assert_int_equal(gy_config_load_file(cfg, path, &err), GY_EINVAL);
    assert_non_null(strstr(err.text, ":2: a NUL byte (\\x00) at column 21 in the value of "
                                     "'max_connections'"));
    assert_int_equal(gy_config_int(cfg, "max_connections"), 60);
    unlink(path);
    gy_config_free(cfg);
}

/* getopt wants writable argv: copy the literals. */
static int run_args(gy_config *cfg, gy_errmsg *err, gy_config_action *action, const char *def,
                    int argc, const char *const *args) {
    char *argv[32];
    for (int i = 0; i < argc; i++) {
        argv[i] = strdup(args[i]);
    }
    argv[argc] = NULL;
    const char *path;
    int rc = gy_config_apply_args(cfg, argc, argv, def, action, &path, err);
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
    return rc;
}

static void test_flags(void **state) {
    (void)state;
    gy_config *cfg = fresh();
    gy_errmsg err = {0};
    gy_config_action action;
    const char *const a1[] = {
        "gyred",       "--threads",      "4",      "--set", "demo_leaks=on",    "--listen",
        "127.0.0.1:0", "--admin-socket", "x.sock", "--set", "max_connections=7"};
    assert_int_equal(run_args(cfg, &err, &action, "max_connections = 9\nthreads = 2\n", 11, a1),
                     GY_OK);
    assert_int_equal(action, GY_CONFIG_RUN);
    assert_int_equal(gy_config_int(cfg, "threads"), 4); /* flags override the file */
    assert_int_equal(gy_config_int(cfg, "max_connections"), 7);
    assert_int_equal(gy_config_int(cfg, "demo_leaks"), 1);
    assert_string_equal(gy_config_str(cfg, "listen"), "127.0.0.1:0");
    assert_string_equal(gy_config_str(cfg, "admin_socket"), "x.sock");
    /* Refused, and nothing applied. */
    const char *const a2[] = {"gyred", "--threads", "2", "--set", "threads=many"};
    assert_int_equal(run_args(cfg, &err, &action, NULL, 5, a2), GY_EINVAL);
    assert_non_null(strstr(err.text, "--set: threads = 'many'"));
    assert_int_equal(gy_config_int(cfg, "threads"), 4);
    const char *const a3[] = {"gyred", "--bogus"};
    assert_int_equal(run_args(cfg, &err, &action, NULL, 2, a3), GY_EINVAL);
    assert_non_null(strstr(err.text, "--bogus"));
    const char *const a4[] = {"gyred", "--set", "novalue"};
    assert_int_equal(run_args(cfg, &err, &action, NULL, 3, a4), GY_EINVAL);
    const char *const a5[] = {"gyred", "--threads"};
    assert_int_equal(run_args(cfg, &err, &action, NULL, 2, a5), GY_EINVAL);
    assert_non_null(strstr(err.text, "needs a value"));
    const char *const a6[] = {"gyred", "--config", "/nonexistent.conf"};
    assert_int_equal(run_args(cfg, &err, &action, NULL, 3, a6), GY_EIO);
    const char *const a7[] = {"gyred", "--help"};
    assert_int_equal(run_args(cfg, &err, &action, NULL, 2, a7), GY_OK);
    assert_int_equal(action, GY_CONFIG_HELP);
    const char *const a8[] = {"gyred", "--version"};
    assert_int_equal(run_args(cfg, &err, &action, NULL, 2, a8), GY_OK);
    assert_int_equal(action, GY_CONFIG_VERSION);
    const char *const a9[] = {"gyred", "stray"};
    assert_int_equal(run_args(cfg, &err, &action, NULL, 2, a9), GY_EINVAL);
    /* --help lists every setting. */
    size_t need = gy_config_usage(NULL, 0, "gyred");
    char *usage = malloc(need + 1);
    assert_non_null(usage);
    assert_int_equal(gy_config_usage(usage, need + 1, "gyred"), need);
    size_t n;
    const gy_setting *s = gy_settings(&n);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(strstr(usage, s[i].name));
    }
    free(usage);
    gy_config_free(cfg);
}

static const char *default_file;

/* config/gyre.conf loads, names every setting exactly once, each with its
 * default and a comment line above it. */
static void test_default_file(void **state) {
    (void)state;
    FILE *f = fopen(default_file, "r");
    assert_non_null(f);
    static char text[65536];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    /* The embedded copy gyred runs on is this very file. */
    assert_string_equal(gy_config_default_text(), text);
    gy_config *cfg = fresh();
    gy_errmsg err = {0};
    if (gy_config_load_string(cfg, text, default_file, &err) != GY_OK) {
        fail_msg("%s", err.text);
    }
    size_t n;
    const gy_setting *s = gy_settings(&n);
    for (size_t i = 0; i < n; i++) {
        char line[256];
        snprintf(line, sizeof line, "\n%s = %s\n", s[i].name, s[i].default_value);
        const char *at = strstr(text, line);
        if (at == NULL) {
            fail_msg("%s does not list '%s = %s'", default_file, s[i].name, s[i].default_value);
        }
        assert_null(strstr(at + 1, line)); /* once */
        /* the line before is a comment */
        const char *prev = at - 1;
        while (prev > text && prev[-1] != '\n') {
            prev--;
        }
        assert_int_equal(*prev, '#');
        char loaded[256];
        gy_config_format(cfg, s[i].name, loaded, sizeof loaded);
        assert_string_equal(loaded, s[i].default_value);
    }
    gy_config_free(cfg);
}

int main(int argc, char **argv) {
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_defaults_round_trip),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_unknown_and_many),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_flags),
    };
    const struct CMUnitTest file[] = {cmocka_unit_test(test_default_file)};
    if (argc == 3 && strcmp(argv[1], "default_file") == 0) {
        default_file = argv[2];
        return cmocka_run_group_tests_name("default_file", file, NULL, NULL) != 0;
    }
    return cmocka_run_group_tests_name("table", all, NULL, NULL) != 0;
}
