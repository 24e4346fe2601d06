/* tests/fuzz/fuzz_config.c: libFuzzer target for the config file reader
 * and the settings table (config/src/config.c): any bytes as a file holds
 * them, NULs included. Checks: a load either applies or changes nothing;
 * an error message is text with no raw control byte (file bytes are quoted
 * \xNN); a file that loaded once loads again to the same effect.
 *
 *   build/debug/tests/fuzz/fuzz_config -max_total_time=600 -dict=tests/fuzz/config.dict
 * ctest fuzz.config_files runs a short deterministic slice. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gyre/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int gy__config_load_bytes(gy_config *cfg, const char *name, const char *data, size_t len,
                          gy_errmsg *err);

static void check_text(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7F) {
            fprintf(stderr, "raw control byte 0x%02x in a message: %s\n", *p, s);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gy_config *cfg = NULL;
    gy_errmsg err = {0};
    if (gy_config_new(&cfg) != GY_OK) {
        abort();
    }
    int rc = gy__config_load_bytes(cfg, "fuzz.conf", (const char *)data, size, &err);
    if (rc != GY_OK) {
        check_text(err.text);
        /* Nothing changed: the defaults load on top as from new. */
        gy_config *fresh = NULL;
        if (gy_config_new(&fresh) != GY_OK) {
            abort();
        }
        if (gy_config_int(cfg, "max_connections") != gy_config_int(fresh, "max_connections") ||
            strcmp(gy_config_str(cfg, "listen"), gy_config_str(fresh, "listen")) != 0) {
            fprintf(stderr, "a failed load changed the settings\n");
            abort();
        }
        gy_config_free(fresh);
    } else {
        /* Loading it again gives the same values (all or nothing, and
         * deterministic). */
        long mc = (long)gy_config_int(cfg, "max_connections");
        gy_errmsg err2 = {0};
        if (gy__config_load_bytes(cfg, "fuzz.conf", (const char *)data, size, &err2) != GY_OK ||
            (long)gy_config_int(cfg, "max_connections") != mc) {
            fprintf(stderr, "a file that loaded once did not load the same again\n");
            abort();
        }
    }
    gy_config_free(cfg);
    return 0;
}
