/* canary_ubsan: a signed overflow. UBSan must report it (and, built with
 * -fno-sanitize-recover, end the process). `volatile` keeps the compiler from
 * folding the sum at compile time. */
#include <limits.h>
#include <stdio.h>

int main(void) {
    volatile int big = INT_MAX;
    volatile int one = 1;
    int sum = big + one; /* the bug */
    printf("sum %d: UBSan did not see the overflow\n", sum);
    return 0;
}
