/* canary_tsan_race: two threads write one int with no synchronisation. TSan
 * must report a data race. The threads meet at no lock or atomic, so nothing
 * orders their writes. */
#include <pthread.h>
#include <stdio.h>

static int shared_counter; /* the racy variable */

static void *writer(void *arg) {
    for (int i = 0; i < 10000; i++) {
        shared_counter += (int)(long)arg; /* the bug */
    }
    return NULL;
}

int main(void) {
    pthread_t a, b;
    pthread_create(&a, NULL, writer, (void *)1L);
    pthread_create(&b, NULL, writer, (void *)2L);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("counter %d: TSan did not see the race\n", shared_counter);
    return 0;
}
