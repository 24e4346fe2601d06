"""One side of the server benchmark: one HTTP server started fresh, one wrk
measurement against it, '@bench' lines out (run with Debian's /usr/bin/python3).

    server_bench.py [--hold N] gyred BINARY PATH EXPECT [-- GYRED_ARGS...]
    server_bench.py uv_hello BINARY PATH EXPECT
    server_bench.py nginx NGINX PATH EXPECT [--workers N]

--hold N (gyred, with demo_leaks=on among its arguments) makes it hold N
live objects on the /leak root list before the check (GET /leak?n=..., in
chunks of a million): the big-heap rows.

The server listens on 127.0.0.1 on a free port. The side checks that PATH
answers 200 with body EXPECT, warms up with wrk for 1 s, then measures with
`wrk -t2 -c64 -d5s --latency` (Debian's wrk, loopback only). It prints

    @bench rps N req/s           requests per second (wrk's Requests/sec)
    @bench p99 N ms              99th percentile latency (wrk --latency)
    @bench p50 N ms              median latency
    @bench rss N MiB             VmRSS of the server (nginx: master + workers),
                                 read from /proc just before it is stopped
    @bench rss_peak N MiB        VmHWM, the same processes
    @bench collections N count   gyred only: from its summary line on SIGTERM
    @bench collections_gen0|1|2  the same, per generation
    @bench socket_errors N count wrk's connect+read+write+timeout errors

and a readable "run:" line with the same figures. A non-2xx answer counted by
wrk, a server that dies or does not stop cleanly on SIGTERM, or one that
answers the check wrongly fails the side (exit 1): its figures would not
measure the server it claims to. Servers are stopped with SIGTERM, then
SIGKILL to their process group (their own session) if they do not exit.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

WRK = "/usr/bin/wrk"
WRK_THREADS = 2
CONNECTIONS = 64
DURATION_S = 5
WARMUP_S = 1
START_TIMEOUT_S = 15
# gyred drains for at most drain_timeout (30 s by default) after SIGTERM.
STOP_TIMEOUT_S = 40

LISTEN_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)/")
SUMMARY_RE = re.compile(r"summary: .*?(\d+) collections \(gen0 (\d+), gen1 (\d+), gen2 (\d+)\)")
SUMMARY_REQ_RE = re.compile(r"summary: up [0-9.]+ s, (\d+) requests \((\d+) 4xx, (\d+) 5xx, "
                            r"(\d+) bad\)")
LATENCY_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


class SideError(Exception):
    pass


def free_port():
    """A port free on 127.0.0.1 now (nginx cannot bind port 0 and say which)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process in its own session, stderr to a file."""

    def __init__(self, argv, workdir, name):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(workdir, f"{name}.stderr")
        self.log = open(self.log_path, "w")
        print(f"server: {' '.join(argv)}", flush=True)
        self.proc = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.returncode = None

    def stderr_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_line(self, regex):
        """The first match of regex in the server's stderr, waiting for it."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            m = regex.search(self.stderr_text())
            if m:
                return m
            if self.proc.poll() is not None:
                raise SideError(f"{self.name} exited {self.proc.returncode} before listening:\n"
                                f"{self.stderr_text()[-2000:]}")
            time.sleep(0.02)
        raise SideError(f"{self.name}: no '{regex.pattern}' in {START_TIMEOUT_S} s")

    def wait_port(self, port):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SideError(f"{self.name} exited {self.proc.returncode} before listening:\n"
                                f"{self.stderr_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        raise SideError(f"{self.name}: port {port} not open in {START_TIMEOUT_S} s")

    def pids(self):
        """The server and its children (nginx's workers)."""
        pids = [self.proc.pid]
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def memory_mib(self):
        """(VmRSS, VmHWM) summed over pids(), MiB."""
        rss = hwm = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss += int(line.split()[1])
                        elif line.startswith("VmHWM:"):
                            hwm += int(line.split()[1])
            except OSError:
                pass
        return rss / 1024.0, hwm / 1024.0

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, wait, then SIGKILL the whole group; the exit code, or
        None when it had to be killed."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.returncode = self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.returncode = None
        else:
            self.returncode = self.proc.returncode
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers (nginx workers)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait()
        self.log.close()
        return self.returncode


def check(port, path, expect):
    url = f"http://127.0.0.1:{port}{path}"
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read().decode(errors="replace")
        if r.status != 200 or body != expect:
            raise SideError(f"GET {path}: {r.status} {body!r}, expected 200 {expect!r}")


def wrk(port, path, seconds, latency=True):
    argv = [WRK, f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s"]
    if latency:
        argv.append("--latency")
    argv.append(f"http://127.0.0.1:{port}{path}")
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=seconds + 60)
    if p.returncode != 0:
        raise SideError(f"{' '.join(argv)} exited {p.returncode}:\n{p.stdout}")
    return " ".join(argv), p.stdout


def parse_wrk(text):
    """{rps, p50, p99 (ms), requests, non2xx, socket_errors} from wrk's output."""
    out = {}
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if not m:
        raise SideError(f"no Requests/sec in wrk's output:\n{text}")
    out["rps"] = float(m.group(1))
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([0-9.]+)(us|ms|s|m|h)\s*$", text, re.M)
        if not m:
            raise SideError(f"no {pct}% latency in wrk's output (--latency):\n{text}")
        out[f"p{pct}"] = float(m.group(1)) * LATENCY_UNITS[m.group(2)]
    m = re.search(r"^\s+(\d+) requests in", text, re.M)
    out["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    return out


def nginx_conf(tmp, port, workers):
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""\
# The nginx anchor of the server benchmark: a fixed 5-byte body.
daemon off;
master_process on;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = / {{
            default_type text/plain;
            return 200 "hello";
        }}
    }}
}}
""")
    return conf


def start(args, tmp):
    """(Server, port)."""
    if args.kind == "gyred":
        srv = Server([args.binary, "--listen", "127.0.0.1:0", "--admin-socket",
                      os.path.join(tmp, "gyre.sock"), "--set", "metrics_listen=127.0.0.1:0",
                      *args.server_args], tmp, "gyred")
        return srv, int(srv.wait_line(LISTEN_RE).group(1))
    if args.kind == "uv_hello":
        srv = Server([args.binary, "0", *args.server_args], tmp, "uv_hello")
        return srv, int(srv.wait_line(LISTEN_RE).group(1))
    port = free_port()
    conf = nginx_conf(tmp, port, args.workers)
    srv = Server([args.binary, "-e", os.path.join(tmp, "error.log"), "-c", conf, "-p", tmp],
                 tmp, "nginx")
    srv.wait_port(port)
    return srv, port


def hold(port, n):
    """Make gyred hold n live objects (GET /leak?n=..., at most 1M each)."""
    while n > 0:
        chunk = min(n, 1000000)
        url = f"http://127.0.0.1:{port}/leak?n={chunk}"
        with urllib.request.urlopen(url, timeout=120) as r:
            body = r.read().decode(errors="replace")
            if r.status != 200 or not body.startswith("leaked"):
                raise SideError(f"GET {url}: {r.status} {body!r}")
        n -= chunk
    print(f"held: {body.strip()}", flush=True)


def measure(args, tmp):
    srv, port = start(args, tmp)
    failures = []
    try:
        if args.hold:
            hold(port, args.hold)
        check(port, args.path, args.expect)
        wrk(port, args.path, WARMUP_S, latency=False)
        cmd, text = wrk(port, args.path, DURATION_S)
        print(f"wrk: {cmd}\n{text}", flush=True)
        w = parse_wrk(text)
        if not srv.alive():
            raise SideError(f"{srv.name} died under load (exit {srv.proc.returncode})")
        rss, peak = srv.memory_mib()
    finally:
        rc = srv.stop()
        log = srv.stderr_text()
        lines = log.splitlines()
        if args.kind == "nginx":  # nginx's own log, not its stderr
            with open(os.path.join(tmp, "error.log"), errors="replace") as f:
                lines += f.read().splitlines()
        # Everything but gyred's routine info lines, so warnings show in the log.
        shown = lines
        if args.kind == "gyred":
            shown = [l for l in lines if " info " not in l or "listening on" in l
                     or "summary:" in l]
        print(f"{srv.name} log ({len(lines)} lines; gyred: warnings, errors, listening and "
              f"summary):", flush=True)
        for line in shown[-40:]:
            print(f"  {line}")
    if rc != 0:
        failures.append(f"{srv.name} exit {'SIGKILL after timeout' if rc is None else rc} "
                        f"on SIGTERM")
    if w["non2xx"]:
        failures.append(f"wrk counted {w['non2xx']} non-2xx/3xx responses")
    res = {"rps": (w["rps"], "req/s"), "p99": (w["p99"], "ms"), "p50": (w["p50"], "ms"),
           "rss": (rss, "MiB"), "rss_peak": (peak, "MiB"),
           "socket_errors": (w["socket_errors"], "count")}
    if args.kind == "gyred":
        m = SUMMARY_RE.search(log)
        if not m:
            failures.append("no summary line from gyred")
        else:
            total, g0, g1, g2 = (int(x) for x in m.groups())
            res.update({"collections": (total, "count"), "collections_gen0": (g0, "count"),
                        "collections_gen1": (g1, "count"), "collections_gen2": (g2, "count")})
        m = SUMMARY_REQ_RE.search(log)
        if m and (int(m.group(3)) or int(m.group(4))):
            failures.append(f"gyred counted {m.group(3)} 5xx and {m.group(4)} bad requests")
    return res, failures


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("gyred", "uv_hello", "nginx"))
    p.add_argument("binary")
    p.add_argument("path")
    p.add_argument("expect", help="the body PATH must answer (escapes: \\n)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="nginx worker_processes (default: cores, as gyred's threads = 0)")
    p.add_argument("--hold", type=int, default=0,
                   help="gyred: live objects to hold on /leak before the run (demo_leaks=on)")
    p.add_argument("server_args", nargs="*", help="after --: more arguments for the server")
    args = p.parse_args()
    args.expect = args.expect.encode().decode("unicode_escape")
    args.binary = os.path.abspath(args.binary)  # the server runs in a temporary directory
    if not shutil.which(WRK):
        print(f"server_bench: {WRK} missing (Debian package wrk)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="gyre-bench-server-") as tmp:
        try:
            res, failures = measure(args, tmp)
        except (SideError, OSError, subprocess.SubprocessError) as e:
            print(f"server_bench: {e}", file=sys.stderr)
            return 1
    for key, (value, unit) in res.items():
        print(f"@bench {key} {value:.6g} {unit}")
    print("run: " + ", ".join(f"{k} {v:.6g} {u}" for k, (v, u) in res.items()))
    if failures:
        print("server_bench: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
