"""CPython's side of the collect benchmark (run with Debian's /usr/bin/python3).

The graphs of pyperformance's gc_collect: rings of 21 nodes (a head and 20
links), each node pointing at the next and the previous. objects/s is the
number of tracked objects present when gc.collect(2) starts (len of
gc.get_objects()) over its wall time; gen0_young is one gc.collect(0) with
714 young garbage objects (34 rings) over a heap of 1M live ones, in microseconds.
"""
import gc
import sys
import time


class Node:
    def __init__(self):
        self.next = None
        self.prev = None

    def link_next(self, next):
        self.next = next
        self.next.prev = self


def create_cycle(node, n_links):
    current = node
    for _ in range(n_links):
        next_node = Node()
        current.link_next(next_node)
        current = next_node
    current.link_next(node)


def create_gc_cycles(n_objects):
    cycles = []
    for _ in range(n_objects // 21):
        node = Node()
        cycles.append(node)
        create_cycle(node, 20)
    return cycles


def tracked():
    objs = gc.get_objects()
    n = len(objs)
    del objs
    return n


def timed_collect(generation):
    t0 = time.perf_counter()
    gc.collect(generation)
    return time.perf_counter() - t0


def live(n, name):
    gc.collect()
    cycles = create_gc_cycles(n)
    count = tracked()
    dt = timed_collect(2)
    print(f"@bench {name} {count / dt:.0f} objects/s")
    print(f"@bench {name}_ns_per_object {dt * 1e9 / count:.2f} ns")
    del cycles
    gc.collect()


def garbage(n, name):
    gc.collect()
    cycles = create_gc_cycles(n)
    del cycles
    count = tracked()
    dt = timed_collect(2)
    print(f"@bench {name} {count / dt:.0f} objects/s")
    print(f"@bench {name}_ns_per_object {dt * 1e9 / count:.2f} ns")


def gen0_young():
    gc.collect()
    heap = create_gc_cycles(1_000_000)
    gc.collect()  # the heap is old now
    young = create_gc_cycles(700 + 20)  # 34 rings of 21: 714 young objects
    del young
    dt = timed_collect(0)
    print(f"@bench gen0_young {dt * 1e6:.1f} us")
    del heap
    gc.collect()


def main():
    print(f"cpython: {sys.executable} {sys.version.split()[0]}")
    gc.disable()  # only the collections we time
    live(1_000_000, "collect_live_1M")
    live(5_000_000, "collect_live_5M")
    garbage(100_000, "collect_garbage_100k")
    garbage(1_000_000, "collect_garbage_1M")
    garbage(5_000_000, "collect_garbage_5M")
    gen0_young()


main()
