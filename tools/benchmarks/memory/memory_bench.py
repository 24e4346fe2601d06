"""One side of the memory benchmark: does resident memory come back on an
idle gyred after a burst? (run with Debian's /usr/bin/python3)

    memory_bench.py [--objects N] [--idle S] GYRED [-- GYRED_ARGS...]

A fresh gyred (Release, default settings, demo_leaks = on so that /leak
exists; free ports) serves a warm-up of GET / over many connections, so that
every loop has served, and its RSS is read: the pre-burst figure. Then the
burst: N objects (default 1,000,000) kept through GET /leak?n=..., in ten
requests on ten connections (the kernel spreads them over the loops), then
DELETE /leak and `gc.collect 2` over the admin socket, from yet other
connections: objects made on one loop are released by another. The server is
then left idle for S seconds (default 30) and its RSS read again. It prints

    @bench rss_before_burst N MiB   VmRSS before the burst
    @bench rss_peak N MiB           VmRSS with the burst live
    @bench rss_after_burst N MiB    VmRSS after the release and S s idle
    @bench rss_excess N MiB         rss_after_burst - rss_before_burst
    @bench retained_after N MiB     Gyre's retained bytes then (memory.stats)
    @bench heap_after N B           Gyre's live bytes then

A failed request, an admin error or a server that does not stop cleanly
fails the side (exit 1).
"""

import argparse
import json
import os
import socket
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
from server_bench import LISTEN_RE, Server, SideError, free_port  # noqa: E402


def admin(path, line):
    """One admin command; its JSON answer (an error fails the side)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    answer = json.loads(buf.decode())
    if not answer.get("ok"):
        raise SideError(f"admin {line!r}: {answer}")
    return answer["result"]


def get(port, method, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
        if r.status != 200:
            raise SideError(f"{method} {path}: {r.status}")
        return body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gyred")
    ap.add_argument("--objects", type=int, default=1000000)
    ap.add_argument("--idle", type=float, default=30.0)
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    extra = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
    with tempfile.TemporaryDirectory(prefix="gy-membench-") as work:
        sock = os.path.join(work, "admin.sock")
        argv = [a.gyred, "--listen", "127.0.0.1:0", "--admin-socket", sock,
                "--set", f"metrics_listen=127.0.0.1:{free_port()}",
                "--set", "demo_leaks=on", *extra]
        srv = Server(argv, work, "gyred")
        try:
            port = int(srv.wait_line(LISTEN_RE).group(1))
            for _ in range(200):  # new connections each: every loop serves
                get(port, "GET", "/")
            time.sleep(1.0)
            before, _ = srv.memory_mib()
            per = a.objects // 10
            for _ in range(10):
                get(port, "GET", f"/leak?n={per}")
            peak, _ = srv.memory_mib()
            get(port, "DELETE", "/leak")
            admin(sock, "gc.collect 2")
            time.sleep(a.idle)
            after, _ = srv.memory_mib()
            stats = admin(sock, "memory.stats")
        finally:
            rc = srv.stop()
        if rc != 0:
            raise SideError(f"gyred exited {rc} on SIGTERM:\n{srv.stderr_text()[-2000:]}")
    print(f"run: rss before {before:.2f} MiB, peak {peak:.2f}, after {a.idle:.0f} s idle "
          f"{after:.2f} (x{after / before:.3f}); retained {stats['retained_bytes']} B, "
          f"segments {stats['segment_bytes']} B, heap {stats['live_bytes']} B", flush=True)
    print(f"@bench rss_before_burst {before:.3f} MiB")
    print(f"@bench rss_peak {peak:.3f} MiB")
    print(f"@bench rss_after_burst {after:.3f} MiB")
    print(f"@bench rss_excess {after - before:.3f} MiB")
    print(f"@bench retained_after {stats['retained_bytes'] / 1048576:.3f} MiB")
    print(f"@bench heap_after {stats['live_bytes']} B")


if __name__ == "__main__":
    try:
        main()
    except SideError as e:
        print(f"memory_bench: {e}", file=sys.stderr)
        sys.exit(1)
