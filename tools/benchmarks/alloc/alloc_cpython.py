"""CPython's side of the alloc benchmark (run with Debian's /usr/bin/python3):
resident bytes per object for 1M __slots__ instances with two slots held in a
list, and the size of an object header (an empty __slots__ instance)."""
import sys


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Node:
    __slots__ = ("a", "b")


class Empty:
    __slots__ = ()


N = 1_000_000
print(f"cpython: {sys.executable} {sys.version.split()[0]}")
before = rss_kib()
objs = [Node() for _ in range(N)]
after = rss_kib()
print(f"@bench rss_per_object {(after - before) * 1024 / N:.2f} B")
print(f"@bench header_bytes {sys.getsizeof(Empty())} B")
del objs
