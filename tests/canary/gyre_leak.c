/* canary_gyre_leak: leaks an object on purpose. LeakSanitizer cannot see
 * arena memory, so gy_runtime_shutdown's own check must name the leak; the
 * program prints the error it returns and fails. */
#include <stdio.h>

#include "gyre/gyre.h"

typedef struct leaky {
    gy_object ob;
    long payload;
} leaky;

static gy_type leaky_type = {.name = "leaky", .size = sizeof(leaky), .flags = GY_TYPE_LEAF};

int main(void) {
    if (gy_runtime_init(NULL, NULL) != GY_OK || gy_thread_attach(NULL, NULL) != GY_OK) {
        return 2;
    }
    leaky *l;
    if (gy_new(&leaky_type, &l) != GY_OK) {
        return 2;
    }
    /* the bug: no gy_decref(l) */
    gy_thread_detach();
    gy_errmsg err = {0};
    int rc = gy_runtime_shutdown(&err);
    if (rc != GY_OK) {
        fprintf(stderr, "gy_runtime_shutdown: %s: %s\n", gy_err_name(rc), err.text);
        return 1;
    }
    printf("no leak reported\n");
    return 0;
}
