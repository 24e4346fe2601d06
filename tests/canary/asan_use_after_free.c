/* canary_asan_use_after_free: reads a field of a Gyre object after its last
 * reference is gone. The arena poisons freed cells, so ASan must report the
 * read (as use-after-poison: the cell is Gyre's, not malloc's). */
#include <stdio.h>

#include "gyre/gyre.h"

typedef struct cell {
    gy_object ob;
    long payload[4];
} cell;

static gy_type cell_type = {.name = "canary_cell", .size = sizeof(cell), .flags = GY_TYPE_LEAF};

int main(void) {
    if (gy_runtime_init(NULL, NULL) != GY_OK || gy_thread_attach(NULL, NULL) != GY_OK) {
        return 2;
    }
    cell *c;
    if (gy_new(&cell_type, &c) != GY_OK) {
        return 2;
    }
    c->payload[2] = 42;
    gy_decref(c);                                 /* freed here: the cell is poisoned */
    long seen = *(volatile long *)&c->payload[2]; /* the bug */
    printf("read %ld after free: ASan did not see it\n", seen);
    return 0;
}
