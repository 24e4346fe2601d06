/* server/gyred/main.c: gyred, the demo application on libgyre-server. */
#include "demo.h"
#include "gyre/server.h"

int main(int argc, char **argv) {
    gy_server_app app = {
        .name = "gyred",
        .setup = gyred_demo_setup,
        .teardown = gyred_demo_teardown,
    };
    return gy_server_main(argc, argv, &app);
}
