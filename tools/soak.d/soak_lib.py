"""tools/soak.d/soak_lib.py: the parts of ./tools/soak that do not decide
anything: gyred as a child process, the admin socket client, a plain HTTP
client for the settle and the cache keys, the once-a-second sampler, the
least-squares fit, the CSV and the gnuplot plot. Python's standard library
only (the python3 first on PATH may not be Debian's)."""

import csv
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import threading
import time


class SetupError(Exception):
    """Something the soak needs did not work (exit 2)."""


# --- gyred --------------------------------------------------------------------------------


class Gyred:
    """gyred started on free loopback ports (HTTP and metrics) with its own
    admin socket, logging to `log_path`."""

    def __init__(self, binary, workdir, admin_path, log_path, extra=()):
        self.admin_path = admin_path
        self.log_path = log_path
        if os.path.exists(admin_path):
            os.unlink(admin_path)
        argv = [binary, "--listen", "127.0.0.1:0", "--admin-socket", admin_path,
                "--set", "metrics_listen=127.0.0.1:0", *extra]
        self.argv = argv
        self.log = open(log_path, "w")
        try:
            self.proc = subprocess.Popen(argv, cwd=workdir, stdout=self.log,
                                         stderr=subprocess.STDOUT)
        except OSError as e:
            raise SetupError(f"cannot start {binary}: {e}") from e
        self.port = None
        self.summary = None
        self.exit_code = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self.read_log()
            m = re.search(r"listening on http://[^ ]*:(\d+)/", text)
            if m and os.path.exists(admin_path):
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                raise SetupError(f"gyred exited ({self.proc.returncode}) at start:\n{text}")
            time.sleep(0.05)
        self.proc.kill()
        raise SetupError(f"gyred did not start within 30 s:\n{self.read_log()}")

    @property
    def pid(self):
        return self.proc.pid

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def rss_kb(self):
        """VmRSS from /proc/PID/status, in KiB (None once gone)."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit code. Keeps the summary line."""
        if self.exit_code is not None:
            return self.exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.exit_code = self.proc.wait()
        self.log.close()
        m = re.search(r"summary: (.*)", self.read_log())
        self.summary = m.group(1).strip() if m else None
        return self.exit_code


# --- the admin socket ---------------------------------------------------------------------


class Admin:
    """One admin session: a command per line, one JSON answer per line
    (README "Admin socket and gyrectl"). Not thread-safe: one per thread."""

    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as e:
            raise SetupError(f"admin socket {path}: {e}") from e
        self.file = self.sock.makefile("rb")

    def __call__(self, line):
        """The command's result; SetupError on an error answer."""
        self.sock.sendall(line.encode() + b"\n")
        raw = self.file.readline()
        if not raw:
            raise SetupError(f"admin socket closed on '{line}'")
        answer = json.loads(raw)
        if not answer.get("ok"):
            raise SetupError(f"admin '{line}': {answer.get('error')}")
        return answer["result"]

    def close(self):
        self.file.close()
        self.sock.close()


def types_counts(rows):
    """objects.types' rows as {type: live count}."""
    return {r["type"]: r["count"] for r in rows}


# --- HTTP (the settle and the cache keys; the load is gyre-loadgen's) ---------------------


class Http:
    """A keep-alive HTTP/1.1 connection (http.client) that counts answers
    other than 2xx."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.errors = []

    def request(self, method, path, body=None):
        try:
            self.conn.request(method, path, body=body,
                              headers={"Content-Type": "application/octet-stream"} if body else {})
            r = self.conn.getresponse()
            r.read()
        except (OSError, http.client.HTTPException) as e:
            self.errors.append(f"{method} {path}: {e!r}")
            self.conn.close()
            return None
        if not 200 <= r.status < 300:
            self.errors.append(f"{method} {path}: {r.status}")
        return r.status

    def close(self):
        self.conn.close()


# --- the sampler --------------------------------------------------------------------------


class Sampler(threading.Thread):
    """Once a second, one row: Gyre's allocated bytes and live objects (each
    the mean of `reads_per_s` server.stats readings spread over that second,
    with their min and max: a single reading lands anywhere on the
    collector's sawtooth), collections and collected per generation, live
    objects per type, answered requests, open connections and RSS. Rows
    carry the phase set by `phase`."""

    def __init__(self, gyred, t0, reads_per_s=50):
        super().__init__(daemon=True)
        self.gyred = gyred
        self.t0 = t0
        self.period = 1.0 / reads_per_s
        self.admin = Admin(gyred.admin_path)
        self.rows = []
        self.types = set()
        self.phase = "start"
        self.error = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def set_phase(self, phase):
        with self._lock:
            self.phase = phase

    def stop(self):
        self._stopping.set()
        self.join(30)
        self.admin.close()

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by the caller (a setup failure)
            self.error = e

    def _run(self):
        nxt = time.monotonic()
        prev_answered = None
        while not self._stopping.is_set():
            nxt += 1.0
            heap, objs = [], []
            while True:
                st = self.admin("server.stats")
                heap.append(st["heap"]["bytes"])
                objs.append(st["heap"]["objects"])
                now = time.monotonic()
                if now >= nxt or self._stopping.is_set():
                    break
                time.sleep(max(0.0, min(self.period, nxt - now)))
            gc = self.admin("gc.get_stats")
            types = types_counts(self.admin("objects.types 1000"))
            rss = self.gyred.rss_kb()
            answered = st["requests"]["answered"]
            with self._lock:
                phase = self.phase
            row = {
                "t_s": round(time.monotonic() - self.t0, 3),
                "phase": phase,
                "heap_bytes": sum(heap) / len(heap),
                "heap_bytes_min": min(heap),
                "heap_bytes_max": max(heap),
                "heap_objects": sum(objs) / len(objs),
                "reads": len(heap),
                "rss_kb": rss,
                "gen0_collections": gc[0]["collections"],
                "gen1_collections": gc[1]["collections"],
                "gen2_collections": gc[2]["collections"],
                "collected": sum(g["collected"] for g in gc),
                "uncollectable": sum(g["uncollectable"] for g in gc),
                "answered": answered,
                "req_per_s": 0 if prev_answered is None else answered - prev_answered,
                "connections_open": st["connections"]["open"],
                "types": types,
            }
            prev_answered = answered
            with self._lock:
                self.rows.append(row)
                self.types.update(types)

    def snapshot_rows(self):
        with self._lock:
            return list(self.rows), sorted(self.types)


SAMPLE_COLUMNS = ["t_s", "phase", "heap_bytes", "heap_bytes_min", "heap_bytes_max",
                  "heap_objects", "reads", "rss_kb", "gen0_collections", "gen1_collections",
                  "gen2_collections", "collected", "uncollectable", "answered", "req_per_s",
                  "connections_open"]


def write_samples(path, rows, types):
    """samples.csv: SAMPLE_COLUMNS, then one `type:NAME` column per type
    ever seen (live objects; empty before the type first appeared)."""
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(SAMPLE_COLUMNS + [f"type:{t}" for t in types])
        for r in rows:
            w.writerow([round(r[c], 1) if isinstance(r[c], float) else r[c]
                        for c in SAMPLE_COLUMNS] + [r["types"].get(t, 0) for t in types])
    os.replace(tmp, path)


# --- statistics ---------------------------------------------------------------------------


def least_squares(xs, ys):
    """(slope, intercept, standard error of the slope) of y = a + b x."""
    n = len(xs)
    if n < 3:
        raise ValueError("at least 3 points")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    rss = sum((y - (a + b * x)) ** 2 for x, y in zip(xs, ys))
    return b, a, math.sqrt(rss / (n - 2) / sxx)


# --- the plot -----------------------------------------------------------------------------


def gnuplot_available():
    try:
        subprocess.run(["gnuplot", "--version"], check=True, capture_output=True)
        return True
    except (OSError, subprocess.CalledProcessError):
        return False


def plot(out_png, samples_csv, data_dir, phases, fit, target_rate, top_types, title):
    """soak.png: four panels over time (minutes), phases shaded: allocated
    bytes with the fitted line, RSS, live objects (all, and the largest
    types), request rate with the target. `phases` is [(name, t_start_s,
    t_end_s)]; `fit` is
    (slope, intercept, t_from_s, t_to_s) or None. Returns gnuplot's error
    text, or None."""
    data = os.path.join(data_dir, "soak.plot.dat")
    with open(samples_csv) as f:
        reader = csv.DictReader(f)
        with open(data, "w") as out:
            for r in reader:
                vals = [float(r["t_s"]) / 60, float(r["heap_bytes"]) / 1024,
                        float(r["rss_kb"] or 0) / 1024, float(r["heap_objects"]),
                        float(r["req_per_s"])]
                vals += [float(r.get(f"type:{t}") or 0) for t in top_types]
                out.write(" ".join(f"{v:.4f}" for v in vals) + "\n")
    colors = {"peak": "#ffe8cc", "warmup": "#fff9db", "soak": "#e7f5ff", "settle": "#ffc9c9"}
    marks, labels = [], []
    for i, (name, t1, t2) in enumerate(phases):
        marks.append(f"set object {i + 1} rect from {t1 / 60:.4f}, graph 0 to {t2 / 60:.4f}, "
                     f"graph 1 behind fillcolor rgb '{colors.get(name, '#eeeeee')}' "
                     "fillstyle solid 1.0 noborder")
        if name != "settle":  # a second or two: too narrow for a word
            labels.append(f"set label {i + 1} '{name}' at {(t1 + t2) / 120:.4f}, graph 0.95 "
                          "center font ',9' textcolor rgb '#555555'")
    fit_cmd = ""
    if fit:
        b, a, t1, t2 = fit
        fit_cmd = (f", [{t1 / 60:.4f}:{t2 / 60:.4f}] ({a:.6f} + {b:.9f} * x * 60) / 1024 "
                   "with lines lw 2 lc rgb '#d62728' title 'least-squares fit (soak)'")
    type_cols = "".join(
        f", '{data}' using 1:{6 + i} with lines lw 1 title '{t} (at the second)'"
        for i, t in enumerate(top_types))
    script = f"""
set terminal pngcairo size 1200,1500 font ',10' noenhanced
set output '{out_png}'
set datafile separator ' '
set multiplot layout 4,1 title '{title}' font ',12'
set grid
set xlabel 'minutes since gyred started'
set lmargin 12
set xrange [0:*]
set autoscale xfixmax
{chr(10).join(marks)}
{chr(10).join(labels)}
set key top right opaque font ',9'
set ylabel 'Gyre allocated KiB'
plot '{data}' using 1:2 with lines lc rgb '#1f77b4' title 'allocated (mean of the second)'{fit_cmd}
unset label
set ylabel 'RSS MiB'
plot '{data}' using 1:3 with lines lc rgb '#2ca02c' title 'gyred RSS'
set ylabel 'live objects (log)'
set logscale y
plot '{data}' using 1:4 with lines lc rgb '#9467bd' lw 2 title 'all (mean of the second)'{type_cols}
unset logscale y
set ylabel 'requests/s'
plot '{data}' using 1:5 with lines lc rgb '#ff7f0e' title 'answered per second', \\
     {target_rate:.1f} with lines dt 2 lc rgb 'black' title 'soak target'
unset multiplot
"""
    gp = os.path.join(data_dir, "soak.gp")
    with open(gp, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip() or f"gnuplot exit {r.returncode}")
