"""CPython's side of the pauses benchmark (run with Debian's /usr/bin/python3).

The same kind of loop as bench_pauses_gyre (pauses_gyre.c): two threads,
each owning half of a live heap of N nodes (`__slots__` next and prev, rings
of 21, heads in a list); a step allocates a ring of 4 nodes (cyclic garbage)
and drops it, and every 8th step also splices a new node into a random old
ring of the thread's half. Each size runs GY_PAUSES_STEPS steps (default
2000000, both threads together), the same number as every Gyre side.

What is measured:
  stw_pause_max_N   the longest collection of the run: gc.callbacks "start"
                    to "stop" (time.perf_counter_ns), during which the
                    collecting thread holds the GIL, so every thread waits;
                    the only row the registry uses (no goal).
  also printed      collector_pause_p99_N, mmu_10ms_N (from the same
                    intervals), step_p999_N (per-step wall time),
                    garbage_created_N / garbage_freed_N (objects/s; freed =
                    the callbacks' "collected"), outstanding_garbage_max_N
                    (created minus freed, sampled every 1024 steps per
                    thread), throughput_N (steps/s of both threads),
                    full_collections_N.

Limits: a collection's interval runs from its "start" callback to its "stop"
callback; those callbacks are Python code, so the GIL may pass to the other
thread inside them (it then runs steps, which cannot start a collection,
inside the measured pause): an over-count of at most about one switch
interval per collection. On this machine a plain gc.collect() of the same
10M-node heap, one thread, no loop, takes 4.5-6.9 s (measured while
writing this), so the 10M anchor is seconds. The GIL makes "two threads" nominal: one runs Python at a time and
they trade the GIL every sys.getswitchinterval() (5 ms), so per-step latency
includes waits for the other thread, not only for the collector. Thresholds
are CPython's defaults (700, 10, 10); its long-lived guard keeps automatic
full collections rare over a big old heap, so thread 0 forces 3 with
gc.collect(2) at 1/4, 2/4 and 3/4 of its steps (inline: a polling driver
thread would take the GIL from the mutators).
"""
import array
import bisect
import gc
import os
import random
import sys
import threading
import time

LIVE_RING = 21
GARBAGE_RING = 4
OLD_STORE_EVERY = 8
FULL_COLLECTIONS = 3
SAMPLE_EVERY = 1024
MMU_WINDOW_NS = 10_000_000


class Node:
    __slots__ = ("next", "prev")

    def __init__(self):
        self.next = None
        self.prev = None


def parse_size(s):
    mult = {"k": 1_000, "K": 1_000, "M": 1_000_000, "m": 1_000_000}.get(s[-1:], 1)
    return int(float(s[:-1] if mult != 1 else s) * mult)


def build_heap(n):
    heads = []
    for _ in range(n // LIVE_RING):
        head = Node()
        cur = head
        for _ in range(LIVE_RING - 1):
            nx = Node()
            cur.next = nx
            nx.prev = cur
            cur = nx
        cur.next = head
        head.prev = cur
        heads.append(head)
    return heads


class Run:
    def __init__(self):
        self.recording = False
        self.t_start = 0
        self.gcs = []  # (start_ns, stop_ns, generation, collected)
        self.freed = 0
        self.full = 0
        self.done = [0, 0]

    def callback(self, phase, info):
        if phase == "start":
            self.t_start = time.perf_counter_ns()
            return
        t = time.perf_counter_ns()
        if self.recording:
            self.gcs.append((self.t_start, t, info["generation"], info["collected"]))
            self.freed += info["collected"]
            if info["generation"] == 2:
                self.full += 1


def mutator(run, k, heads, steps, total, out):
    rnd = random.Random(k + 1)
    durations = array.array("q")
    add = durations.append
    clock = time.perf_counter_ns
    nheads = len(heads)
    outstanding = 0
    forced = 0
    t_prev = t_start = clock()
    for s in range(steps):
        r = [Node() for _ in range(GARBAGE_RING)]
        for i in range(GARBAGE_RING):
            a, b = r[i], r[(i + 1) % GARBAGE_RING]
            a.next = b
            b.prev = a
        del r, a, b
        if s % OLD_STORE_EVERY == 0:
            h = heads[rnd.randrange(nheads)]
            x = h.next
            z = x.next
            y = Node()
            y.prev = h
            y.next = z
            h.next = y
            z.prev = y
            del h, x, y, z
        if k == 0 and forced < FULL_COLLECTIONS and s + 1 >= steps * (forced + 1) // (FULL_COLLECTIONS + 1):
            # gc.collect returns at once, collecting nothing, when called
            # while the other thread is inside a collection's callbacks
            # (they run Python code, so the GIL can change hands there):
            # ask again until a full collection has run.
            before = run.full
            while run.full == before:
                gc.collect(2)
            forced += 1
        t = clock()
        add(t - t_prev)
        t_prev = t
        run.done[k] = s + 1
        if (s + 1) % SAMPLE_EVERY == 0:
            created = (run.done[0] + run.done[1]) * GARBAGE_RING
            o = created - run.freed
            if o > outstanding:
                outstanding = o
    out[k] = (t_start, clock(), durations, outstanding, run.freed)


def percentile(sorted_values, q):
    if not sorted_values:
        return 0
    rank = max(1, min(len(sorted_values), int(q * len(sorted_values) + 0.999999)))
    return sorted_values[rank - 1]


def mmu(pauses, t0, t1):
    """Minimum over 10 ms windows inside [t0, t1] of 1 - paused/window; the
    worst window starts at a pause's start or ends at a pause's end.
    `pauses` are sorted and disjoint (one collection at a time)."""
    if not pauses:
        return 1.0
    w = min(MMU_WINDOW_NS, t1 - t0)
    lo, hi = t0, max(t0, t1 - w)
    starts = [a for a, _ in pauses]
    ends = [b for _, b in pauses]
    prefix = [0]
    for a, b in pauses:
        prefix.append(prefix[-1] + b - a)

    def parked(a, b):
        j = bisect.bisect_right(ends, a)   # first pause ending after a
        k = bisect.bisect_left(starts, b)  # one past the last starting before b
        if k <= j:
            return 0
        s = prefix[k] - prefix[j]
        s -= max(0, a - starts[j])
        s -= max(0, ends[k - 1] - b)
        return s

    worst = 0
    for a0, b0 in pauses:
        for a in (a0, b0 - w):
            a = min(max(a, lo), hi)
            worst = max(worst, parked(a, a + w))
    return 0.0 if worst >= w else 1.0 - worst / w


def run_size(label, n, steps):
    gc.disable()
    halves = [build_heap(n // 2), build_heap(n // 2)]
    gc.collect()
    run = Run()
    gc.callbacks.append(run.callback)
    run.recording = True
    gc.enable()
    per = steps // 2
    total = per * 2
    out = [None, None]
    threads = [threading.Thread(target=mutator, args=(run, k, halves[k], per, total, out))
               for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.recording = False
    gc.disable()
    gc.callbacks.remove(run.callback)

    t0 = min(o[0] for o in out)
    t1 = max(o[1] for o in out)
    secs = (t1 - t0) / 1e9
    freed = max(o[4] for o in out)
    steps_ns = sorted(out[0][2].tolist() + out[1][2].tolist())
    pauses = [(a, b) for a, b, _, _ in run.gcs]
    lengths = sorted(b - a for a, b in pauses)
    full = sum(1 for g in run.gcs if g[2] == 2)
    # Every thread waits for a collection (GIL): the windows are the run's.
    util = mmu(pauses, t0, t1)
    print(f"@bench stw_pause_max_{label} {(lengths[-1] if lengths else 0) / 1e3:.1f} us")
    print(f"@bench collector_pause_p99_{label} {percentile(lengths, 0.99) / 1e3:.1f} us")
    print(f"@bench mmu_10ms_{label} {util:.4f} ratio")
    print(f"@bench step_p50_{label} {percentile(steps_ns, 0.5) / 1e3:.3f} us")
    print(f"@bench step_p999_{label} {percentile(steps_ns, 0.999) / 1e3:.3f} us")
    print(f"@bench step_max_{label} {steps_ns[-1] / 1e3:.1f} us")
    print(f"@bench garbage_created_{label} {total * GARBAGE_RING / secs:.0f} objects/s")
    print(f"@bench garbage_freed_{label} {freed / secs:.0f} objects/s")
    print(f"@bench outstanding_garbage_max_{label} {max(o[3] for o in out)} objects")
    print(f"@bench throughput_{label} {total / secs:.0f} steps/s")
    print(f"@bench full_collections_{label} {full} count")
    print(f"@bench collections_{label} {len(run.gcs)} count")
    print(f"# {label}: {n} live nodes, {total} steps in {secs:.2f} s, {len(run.gcs)} collections"
          f" ({full} full), {freed} freed of {total * GARBAGE_RING} created", flush=True)
    del halves, out, steps_ns
    gc.collect()


def main():
    sizes = os.environ.get("GY_PAUSES_SIZES") or "100k,1M,10M"
    steps = int(os.environ.get("GY_PAUSES_STEPS") or 2_000_000)
    print(f"# cpython {sys.version.split()[0]} ({sys.executable}), sizes {sizes}, {steps} steps "
          f"per size, switch interval {sys.getswitchinterval() * 1e3:.1f} ms")
    for label in sizes.split(","):
        run_size(label, parse_size(label), steps)


if __name__ == "__main__":
    main()
