/* collector/src/pacing.c: increments and pacing of the concurrent collector
 * (collector/DESIGN.md 9.15).
 *
 * Increments. A concurrent collection runs on the collector's thread in
 * increments of at most `increment_budget_us` of work: at each increment
 * point (before each candidate's traverse, every few cells of the walk)
 * the collector checks the clock, and when the budget is spent it passes a
 * quiescent state (gy_quiescent_begin / end): its epoch section ends, so
 * memory every thread freed meanwhile can be reused, and a world stop
 * asked for meanwhile goes through. The longest epoch section the collector
 * held is reported (gy_gc_thread_stats.epoch_hold_max_ns).
 *
 * Pacing. Mutators never wait for the collector to start. When generation
 * 0 reaches GC_SOFT_BEHIND times its threshold while an automatic
 * collection is asked for or running, the collector is behind: a mutator's
 * safe point then waits for it (allocation throttling, timed as an
 * `assist` pause), but for at most `pause_goal_us`, and then runs for at
 * least THROTTLE_RUN_FACTOR times that before it may be throttled again,
 * so a throttled mutator keeps at least 3/4 of its time over any window
 * that holds a wait and its run. Past the hard limit (GC_BEHIND
 * thresholds) memory comes first: it waits until the collection ends, as
 * long as that takes (the pause max and the MMU show it; collector/DESIGN.md
 * 9.15). Waits within the goal alone let a collector slower than the
 * allocation rate fall behind for ever: under TSan collector.concurrent's
 * heap grew past 11 GB that way.
 *
 * Settings are relaxed atomics: each is read at the point that uses it; a
 * change applies from the next increment point or safe point. */
#include "collector.h"

#define BUDGET_DEFAULT_US 500
#define PAUSE_GOAL_DEFAULT_US 1000
#define THROTTLE_RUN_FACTOR 3
#define CLOCK_EVERY 32 /* increment points between two clock reads */

static _Atomic uint32_t budget_us = BUDGET_DEFAULT_US;
static _Atomic uint32_t pause_goal_us = PAUSE_GOAL_DEFAULT_US;

/* The collector's thread only: the running collection's increment state. */
static uint64_t inc_start_ns, hold_start_ns;
static unsigned points;
static uint64_t run_increments;

/* gy_gc_abort: the sequence number of the collection asked to stop
 * (relaxed: a request, checked at every increment point; a stale read
 * only delays the stop by one point). run_seq is odd while one runs.
 * gy__gc_aborted_runs is counted by concurrent.c, where a stop is honoured. */
static _Atomic uint64_t run_seq, abort_seq;
_Atomic uint64_t gy__gc_aborted_runs;

/* Totals and the last collection's longest hold, read by thread.c
 * (relaxed: statistics). */
_Atomic uint64_t gy__gc_increments_total, gy__gc_epoch_hold_max_ns, gy__gc_epoch_hold_last_ns;
static uint64_t run_hold_max_ns;

int gy_gc_set_pacing(const gy_gc_pacing *p, gy_errmsg *err) {
    if (p == NULL) {
        return gy__errmsg_set(err, GY_EINVAL, "gc pacing: NULL settings");
    }
    if (p->increment_budget_us < GY_GC_BUDGET_MIN_US ||
        p->increment_budget_us > GY_GC_BUDGET_MAX_US) {
        return gy__errmsg_set(err, GY_EINVAL, "gc increment budget %u us: outside %u..%u",
                              p->increment_budget_us, GY_GC_BUDGET_MIN_US, GY_GC_BUDGET_MAX_US);
    }
    if (p->pause_goal_us < GY_GC_PAUSE_GOAL_MIN_US || p->pause_goal_us > GY_GC_PAUSE_GOAL_MAX_US) {
        return gy__errmsg_set(err, GY_EINVAL, "gc pause goal %u us: outside %u..%u",
                              p->pause_goal_us, GY_GC_PAUSE_GOAL_MIN_US, GY_GC_PAUSE_GOAL_MAX_US);
    }
    atomic_store_explicit(&budget_us, p->increment_budget_us, memory_order_relaxed);
    atomic_store_explicit(&pause_goal_us, p->pause_goal_us, memory_order_relaxed);
    return GY_OK;
}

void gy_gc_get_pacing(gy_gc_pacing *out) {
    out->increment_budget_us = atomic_load_explicit(&budget_us, memory_order_relaxed);
    out->pause_goal_us = atomic_load_explicit(&pause_goal_us, memory_order_relaxed);
}

void gy__gc_pacing_reset(void) {
    atomic_store_explicit(&budget_us, BUDGET_DEFAULT_US, memory_order_relaxed);
    atomic_store_explicit(&pause_goal_us, PAUSE_GOAL_DEFAULT_US, memory_order_relaxed);
}

/* --- increments (the collector's thread) ---------------------------------- */

static void hold_record(uint64_t now) {
    uint64_t held = now - hold_start_ns;
    run_hold_max_ns = held > run_hold_max_ns ? held : run_hold_max_ns;
    if (held > atomic_load_explicit(&gy__gc_epoch_hold_max_ns, memory_order_relaxed)) {
        atomic_store_explicit(&gy__gc_epoch_hold_max_ns, held, memory_order_relaxed);
    }
}

bool gy_gc_abort(void) {
    uint64_t seq = atomic_load_explicit(&run_seq, memory_order_relaxed);
    if (!(seq & 1)) {
        return false; /* none running */
    }
    atomic_store_explicit(&abort_seq, seq, memory_order_relaxed);
    return true;
}

void gy__gc_increment_begin(void) {
    atomic_fetch_add_explicit(&run_seq, 1, memory_order_relaxed); /* odd: running */
    inc_start_ns = hold_start_ns = gy__clock_ns();
    points = 0;
    run_increments = 1;
    run_hold_max_ns = 0;
}

/* Ends the increment when its budget is spent or a world stop waits. The
 * caller holds no pointer across it that an epoch section protects: only
 * candidates (kept by the limbo, C1), held segments and its own arrays. */
bool gy__gc_increment_point(void) {
    bool aborted = atomic_load_explicit(&abort_seq, memory_order_relaxed) ==
                   atomic_load_explicit(&run_seq, memory_order_relaxed);
    bool stop = atomic_load_explicit(&gy__rt.stop_requested, memory_order_relaxed);
    if (++points < CLOCK_EVERY && !stop) {
        return aborted;
    }
    points = 0;
    uint64_t now = gy__clock_ns();
    uint64_t budget = (uint64_t)atomic_load_explicit(&budget_us, memory_order_relaxed) * 1000;
    if (!stop && now - inc_start_ns < budget) {
        return aborted;
    }
    hold_record(now);
    /* No yield: the scheduler shares the cores; a yield per increment made
     * collections several times longer under TSan's timing. */
    gy_quiescent_begin();
    gy_quiescent_end(); /* returns once a world stop asked for has resumed */
    inc_start_ns = hold_start_ns = gy__clock_ns();
    run_increments++;
    return aborted;
}

void gy__gc_increment_end(void) {
    hold_record(gy__clock_ns());
    atomic_fetch_add_explicit(&gy__gc_increments_total, run_increments, memory_order_relaxed);
    atomic_store_explicit(&gy__gc_epoch_hold_last_ns, run_hold_max_ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&run_seq, 1, memory_order_relaxed); /* even: none */
}

/* --- throttling (mutators' safe points) ----------------------------------- */

/* Per thread: throttling may not wait again before this instant. */
static _Thread_local uint64_t run_until_ns;

void gy__gc_throttle(bool hard) {
    uint64_t start = gy__clock_ns();
    if (!hard && start < run_until_ns) {
        return; /* still in the run after its last wait */
    }
    uint64_t goal = (uint64_t)atomic_load_explicit(&pause_goal_us, memory_order_relaxed) * 1000;
    /* Past the hard limit: until the collection ends (memory first). */
    gy__gc_thread_wait_auto(hard ? 0 : start + goal);
    uint64_t end = gy__clock_ns();
    gy__pause_record(gy__tls_heap, GY_PAUSE_ASSIST, start, end);
    run_until_ns = end + goal * THROTTLE_RUN_FACTOR;
}
