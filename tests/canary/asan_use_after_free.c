/* canary_asan_use_after_free: reads a heap block after freeing it. ASan must
 * report heap-use-after-free. (When Gyre's object arena lands, this canary
 * reads a freed Gyre object instead, proving the arena poisons freed cells.) */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    int *cell = malloc(16 * sizeof *cell);
    if (cell == NULL) {
        return 2;
    }
    cell[3] = 42;
    free(cell);
    int seen = *(volatile int *)&cell[3]; /* the bug */
    printf("read %d after free: ASan did not see it\n", seen);
    return 0;
}
