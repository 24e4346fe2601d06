/* A program built against the installed Gyre (build.install). */
#include <gyre/gyre.h>
#include <stdio.h>

int main(void) {
    printf("gyre %s %s\n", gy_version(), gy_err_name(GY_ENOMEM));
    return 0;
}
