/* core/src/spinlock.h: the per-object lock of list and dict.
 *
 * A test-and-set lock on a C11 atomic_flag: one byte, acquire on lock and
 * release on unlock, so TSan sees the synchronisation (ck_spinlock's loads
 * are volatile accesses TSan reports as races). Critical sections are a few
 * dozen instructions and never block, call back or free. */
#ifndef GYRE_CORE_SPINLOCK_H
#define GYRE_CORE_SPINLOCK_H

#include <sched.h>
#include <stdatomic.h>

typedef struct gy__spinlock {
    atomic_flag held;
} gy__spinlock;

static inline void gy__spin_lock(gy__spinlock *l) {
    unsigned spins = 0;
    /* acquire: the previous holder's writes are visible inside. */
    while (atomic_flag_test_and_set_explicit(&l->held, memory_order_acquire)) {
        if (++spins % 64 == 0) {
            sched_yield(); /* the holder may be descheduled */
        } else {
            __builtin_ia32_pause();
        }
    }
}

static inline void gy__spin_unlock(gy__spinlock *l) {
    /* release: our writes are visible to the next holder. */
    atomic_flag_clear_explicit(&l->held, memory_order_release);
}

#endif /* GYRE_CORE_SPINLOCK_H */
