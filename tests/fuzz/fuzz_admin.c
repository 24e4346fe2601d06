/* tests/fuzz/fuzz_admin.c: libFuzzer target for the admin command parser
 * and dispatcher (server/ops/admin_cmds.c): any line, any level change,
 * every command's argument checks. Each answer must be one line of valid
 * JSON with "ok". Runs against a real (not running) server: sockets bound
 * on port 0 and a scratch admin socket, the fuzzer's thread attached.
 *
 *   build/debug/tests/fuzz/fuzz_admin -max_total_time=600   (a campaign)
 * ctest fuzz.admin_commands runs a short deterministic slice. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "gyre/gc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gy_server *g_srv;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    gy_errmsg err;
    if (gy_runtime_init(NULL, &err) != GY_OK || gy_thread_attach(NULL, &err) != GY_OK) {
        abort();
    }
    char dir[] = "/tmp/gyre-fuzz-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        abort();
    }
    char sock[128];
    snprintf(sock, sizeof sock, "%s/gyre.sock", dir);
    gy_config *cfg;
    const char *names[] = {"listen", "metrics_listen", "admin_socket", "threads"};
    const char *values[] = {"127.0.0.1:0", "127.0.0.1:0", sock, "1"};
    if (gy_config_new(&cfg) != GY_OK ||
        gy_config_set_many(cfg, 4, names, values, "fuzz", false, &err) != GY_OK ||
        gy_server_new(&g_srv, cfg, &err) != GY_OK) {
        fprintf(stderr, "fuzz_admin: %s\n", err.text);
        abort();
    }
    gy_config_free(cfg);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char line[4200];
    if (size >= sizeof line) {
        size = sizeof line - 1;
    }
    memcpy(line, data, size);
    line[size] = '\0';
    /* One line (the connection code splits lines; NUL ends it like C). */
    for (size_t i = 0; i < size; i++) {
        if (line[i] == '\n' || line[i] == '\r') {
            line[i] = ' ';
        }
    }
    /* config.set may name any file (access_log): not from a fuzzer. */
    if (strstr(line, "config.set") != NULL) {
        return 0;
    }
    gy__admin_session s = {.srv = g_srv, .level = GY__LEVEL_ADMIN};
    char *answer = gy__admin_exec(&s, strlen(line) > 4096 ? NULL : line);
    if (answer != NULL) {
        json_t *j = json_loads(answer, 0, NULL);
        if (j == NULL || !json_is_boolean(json_object_get(j, "ok")) || strchr(answer, '\n')) {
            fprintf(stderr, "bad answer: %s\n", answer);
            abort();
        }
        json_decref(j);
        free(answer);
    }
    gy_gc_enable(); /* a gc.disable must not leak into the next input */
    gy_safepoint();
    return 0;
}
