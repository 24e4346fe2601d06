"""Test support for the integration tests of gyred: start the real binary on
a free loopback port, talk to it with a real client (raw sockets, so that
malformed and pipelined requests go out byte for byte), stop it with a
signal and check how it ended.

Every wait is a generous liveness bound (seconds, for sanitizer builds on
two noisy cores), never a speed check.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

GYRED = os.environ.get("GYRED", "")
LIVENESS = float(os.environ.get("GY_LIVENESS_S", "20"))

SANITIZER_REPORT = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|runtime error:")


class Gyred:
    """A running gyred. Use as a context manager: the process is stopped with
    SIGTERM at the end and must exit 0 with no sanitizer report."""

    def __init__(self, *args, threads=2, listen="127.0.0.1:0", expect_start=True, cwd=None,
                 admin_socket=True):
        if not GYRED:
            raise RuntimeError("GYRED is not set (the path of the gyred binary)")
        argv = [GYRED]
        # Each server its own admin socket (tests run in parallel).
        self.tmp = tempfile.TemporaryDirectory(prefix="gyred-")
        self.admin_path = os.path.join(self.tmp.name, "gyre.sock")
        # ...and its own metrics port.
        if not any(a.startswith("metrics_listen=") for a in args):
            argv += ["--set", "metrics_listen=127.0.0.1:0"]
        if admin_socket is True:
            argv += ["--admin-socket", self.admin_path]
        elif admin_socket:
            self.admin_path = admin_socket
            argv += ["--admin-socket", admin_socket]
        if listen is not None:
            argv += ["--listen", listen]
        if threads is not None:
            argv += ["--threads", str(threads)]
        argv += list(args)
        self.argv = argv
        self.lines = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=cwd)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = None
        self.stopped = False
        if expect_start:
            line = self.wait_log(r"listening on http://[^ ]*:(\d+)/")
            self.port = int(re.search(r":(\d+)/", line).group(1))
            line = self.wait_log(r"metrics on http://[^ ]*:(\d+)/metrics")
            self.metrics_port = int(re.search(r":(\d+)/metrics", line).group(1))

    def _read(self):
        for raw in self.proc.stderr:
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def log(self):
        with self.lock:
            return "\n".join(self.lines)

    def wait_log(self, pattern, timeout=LIVENESS, start=0):
        """The first log line (from index `start`) matching pattern."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for line in self.lines[start:]:
                    if rx.search(line):
                        return line
            if self.proc.poll() is not None:
                self.reader.join(2)
                with self.lock:
                    for line in self.lines[start:]:
                        if rx.search(line):
                            return line
                raise AssertionError(
                    f"gyred exited ({self.proc.returncode}) before logging /{pattern}/:\n"
                    + self.log())
            time.sleep(0.02)
        raise AssertionError(f"gyred did not log /{pattern}/ within {timeout} s:\n" + self.log())

    def nlines(self):
        with self.lock:
            return len(self.lines)

    def connect(self, timeout=LIVENESS, rcvbuf=None):
        s = socket.socket()
        if rcvbuf is not None:  # before connecting, so the window stays small
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(("127.0.0.1", self.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Conn(s)

    def metrics_get(self, path="/metrics"):
        """(status, body text) from the metrics listener."""
        with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=LIVENESS) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode()

    def admin_connect(self, timeout=LIVENESS):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.admin_path)
        return AdminConn(s)

    def admin(self, line):
        """One admin command on a new connection: the decoded answer."""
        with self.admin_connect() as a:
            return a.command(line)

    def get(self, path, headers=None, method="GET", body=b""):
        """One request on a new connection; returns the Response."""
        with self.connect() as c:
            c.send(request(method, path, headers, body))
            return c.response(head=(method == "HEAD"))

    def raise_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=LIVENESS, expect_code=0):
        """Stop with `sig` (None: wait for the exit); assert the exit code
        and a clean log."""
        if self.stopped:
            return self.log()
        self.stopped = True
        if self.proc.poll() is None and sig is not None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"gyred did not exit within {timeout} s of signal {sig}:\n"
                                 + self.log())
        self.reader.join(5)
        log = self.log()
        if SANITIZER_REPORT.search(log):
            raise AssertionError("sanitizer report in gyred's output:\n" + log)
        if expect_code is not None and self.proc.returncode != expect_code:
            raise AssertionError(f"gyred exited {self.proc.returncode}, expected {expect_code}:\n"
                                 + log)
        return log

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            self.stop()
        elif not self.stopped:
            self.stopped = True
            code = self.proc.poll()
            self.proc.kill()
            self.proc.wait()
            self.reader.join(2)
            # The test failed: show how the server was doing.
            print(f"--- gyred log (exit status before kill: {code}):\n{self.log()}",
                  file=sys.stderr)


def request(method, path, headers=None, body=b"", version="HTTP/1.1"):
    """Bytes of one request; Host and Content-Length added unless given."""
    headers = dict(headers or {})
    lines = [f"{method} {path} {version}"]
    if "Host" not in headers and version == "HTTP/1.1":
        headers["Host"] = "localhost"
    if body and "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        headers["Content-Length"] = str(len(body))
    for k, v in headers.items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-case name, value)
        self.body = body
        self.version = version

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<{self.status} {self.reason} {self.headers} {self.body[:80]!r}>"


class CutBody(EOFError):
    """The connection closed within an answer's body (after its head):
    a cut streamed answer. `status` is the answer's."""

    def __init__(self, status):
        super().__init__(f"connection closed by gyred within a {status} answer's body")
        self.status = status


class Conn:
    """A client connection with a buffered response reader."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            raise EOFError("connection closed by gyred")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def response(self, head=False):
        """The next response (skipping none: a 100 Continue is returned too)."""
        status_line = self._line()
        m = re.match(r"(HTTP/1\.[01]) (\d{3}) ?(.*)", status_line)
        if not m:
            raise AssertionError(f"bad status line {status_line!r}")
        headers = []
        while True:
            line = self._line()
            if line == "":
                break
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
        status = int(m.group(2))
        resp = Response(status, m.group(3), headers, b"", m.group(1))
        n = resp.header("content-length")
        if status >= 200 and n is not None and not head:
            n = int(n)
            try:
                while len(self.buf) < n:
                    self._fill()
            except EOFError:
                raise CutBody(status) from None
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        return resp

    def closed(self, timeout=LIVENESS):
        """True when gyred closes the connection (EOF or reset) within timeout,
        with no more bytes arriving first."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
                return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class AdminConn(Conn):
    """An admin socket session: one command per line, one JSON line back."""

    def answer(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def command(self, line):
        self.send(line.encode() + b"\n")
        return self.answer()

    def command_bytes(self, line):
        self.send(line + b"\n")
        return self.answer()
