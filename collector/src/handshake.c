/* collector/src/handshake.c: the concurrent collector's handshakes
 * (collector/DESIGN.md 9.4).
 *
 * A handshake stores a new phase word (rt.gc_phase: epoch, WATCH, tag) and
 * asks every attached thread to answer it at its next safe point
 * (GY__PEND_HANDSHAKE; a loop is woken through its wake function). A thread
 * answers by reading the phase into its heap's gc_watch and publishing the
 * epoch (gy__gc_watch_answer). A quiescent thread counts as answered: it
 * touches nothing while quiescent and answers when it leaves quiescence,
 * before it touches anything (gy_quiescent_end): the collector's "store
 * phase; load state" and the thread's "store state; load phase", all
 * seq_cst, are a Dekker pair, so one of them sees the other.
 */
#include <time.h>

#include "collector.h"

_Atomic uint64_t gy__gc_handshakes;

/* Whether h has answered `epoch`, or cannot touch before it does. */
static bool answered(gy__heap *h, uint32_t epoch) {
    /* acquire: what h did before its answer happens before what the
     * collector reads next (W1). */
    if (atomic_load_explicit(&h->gc_answered, memory_order_acquire) == epoch) {
        return true;
    }
    int st = atomic_load_explicit(&h->state, memory_order_seq_cst);
    return st == GY__QUIESCENT || st == GY__DETACHED;
}

void gy__gc_handshake(uint32_t bits, bool wait) {
    static uint32_t epoch; /* the collector's thread only */
    if (++epoch == 0) {
        epoch = 1; /* 0 is what a fresh heap has answered */
    }
    gy__heap *me = gy__tls_heap;
    uint64_t t0 = gy__clock_ns();
    /* threads_lock: no thread attaches meanwhile (an attach reads the phase
     * under it) and no world stop runs, so threads are RUNNING, QUIESCENT
     * or DETACHED. */
    gy__threads_lock();
    /* seq_cst: then each thread's state (the Dekker pair above). */
    atomic_store_explicit(&gy__rt.gc_phase, (uint64_t)epoch << 32 | bits, memory_order_seq_cst);
    for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
        if (h != me && !answered(h, epoch)) {
            /* release: the answer's acquire of the phase sees it anyway. */
            atomic_fetch_or_explicit(&h->pending, GY__PEND_HANDSHAKE, memory_order_release);
            gy__heap_wake(h);
        }
    }
    if (wait) {
        /* Waiting costs no mutator anything: each answers at its own next
         * safe point. Polled: answers are a store, not a signal. */
        for (gy__heap *h = gy__rt.heaps; h != NULL; h = h->next) {
            while (h != me && !answered(h, epoch)) {
                struct timespec ts = {0, 20000};
                nanosleep(&ts, NULL);
            }
        }
        gy__pause_ttsp(gy__clock_ns() - t0);
    }
    pthread_mutex_unlock(&gy__rt.threads_lock);
    atomic_fetch_add_explicit(&gy__gc_handshakes, 1, memory_order_relaxed);
}
