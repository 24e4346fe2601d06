#!/usr/bin/env bash
# server.example: install the build tree into a scratch prefix, build
# tools/example/example.c against the *installed* headers, library and
# gyre-server.pc, run it on a free port and talk to it.
set -euo pipefail
build=$1 src=$2 cc=$3 extra=${4:-}
prefix=$(mktemp -d)
pid=
trap '[[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name gyre-server.pc | head -n1)
[[ -n "$pc" ]] || { echo "gyre-server.pc not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
for h in server.h config.h gyre.h object.h; do
  [[ -f "$prefix/include/gyre/$h" ]] || { echo "not installed: include/gyre/$h"; exit 1; }
done
[[ -x "$prefix/bin/gyred" ]] || { echo "gyred not installed"; exit 1; }
# shellcheck disable=SC2046,SC2086
"$cc" -std=c11 -Wall -Wextra -Werror $extra -o "$prefix/example" "$src" \
  $(pkg-config --cflags --libs gyre-server) -Wl,-rpath,"$(pkg-config --variable=libdir gyre-server)"
# Nothing from the build tree may be used: the binary resolves the installed libs.
if ldd "$prefix/example" | grep -q "$build"; then
  echo "example links the build tree:"; ldd "$prefix/example"; exit 1
fi
log=$prefix/example.log
"$prefix/example" --listen 127.0.0.1:0 --threads 1 --admin-socket "$prefix/gyre.sock" \
  --set metrics_listen=127.0.0.1:0 2>"$log" &
pid=$!
for _ in $(seq 200); do
  grep -q "listening on" "$log" && break
  sleep 0.05
done
port=$(grep -o 'http://127.0.0.1:[0-9]*/' "$log" | grep -o '[0-9]*' | tail -n1 || true)
[[ -n "$port" ]] || { echo "example did not start:"; cat "$log"; exit 1; }
python3 - "$port" <<'PY'
import sys, urllib.request
port = sys.argv[1]
def get(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as r:
        return r.status, r.read()
assert get("/hello") == (200, b"hello from example\n"), get("/hello")
assert get("/later?ms=150") == (200, b"answered after 150 ms\n")
want = b"".join(b"piece%02d\n" % i for i in range(30))
assert get("/stream?n=30") == (200, want), get("/stream?n=30")
assert get("/stream?n=0") == (200, b"")
# Pipelined on one connection: the streamed answer holds back the next one.
import socket
s = socket.create_connection(("127.0.0.1", int(port)), timeout=20)
s.sendall(b"GET /stream?n=5 HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n"
          b"Connection: close\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
assert data.count(b"HTTP/1.1 200 OK") == 2, data
assert data.index(b"piece04\n") < data.index(b"hello from example"), data
try:
    get("/nope")
    raise SystemExit("expected 404")
except urllib.error.HTTPError as e:
    assert e.code == 404, e.code
print("example answered")
PY
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
cat "$log"
[[ $rc -eq 0 ]] || { echo "example exited $rc"; exit 1; }
grep -q "summary:" "$log"
! grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:|ThreadSanitizer" "$log"
