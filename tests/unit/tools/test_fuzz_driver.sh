#!/usr/bin/env bash
# tools.fuzz_driver: ./tools/fuzz's command line, without building or
# running a campaign: bad usage exits 64 before anything is installed,
# configured or built (a cmake on PATH that records its calls must not be
# called), --help exits 0 and documents the targets and the exit codes.
#   bash tests/unit/tools/test_fuzz_driver.sh SOURCE_DIR
set -uo pipefail
fuzz=$1/tools/fuzz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\necho "$@" >>"%s/calls"\nexit 1\n' "$tmp" >"$tmp/cmake"
chmod +x "$tmp/cmake"
fail=0

expect() {
  local want=$1 rc=0
  shift
  PATH="$tmp:$PATH" "$fuzz" "$@" >"$tmp/out" 2>&1 || rc=$?
  if [[ $rc -ne $want ]]; then
    echo "FAIL: tools/fuzz $* exited $rc, want $want:"
    cat "$tmp/out"
    fail=1
  else
    echo "ok: tools/fuzz $* -> $rc"
  fi
}

expect 64
expect 64 http
expect 64 nope 5
expect 64 HTTP 5
expect 64 http abc
expect 64 http 0
expect 64 http -5
expect 64 http 1.5
expect 64 http 5 extra
expect 64 config 5 -max_len=10
expect 0 --help
expect 0 -h
if [[ -e "$tmp/calls" ]]; then
  echo "FAIL: bad usage reached cmake: $(cat "$tmp/calls")"
  fail=1
fi

help=$("$fuzz" --help)
for word in http admin config SECONDS build/fuzz corpus/TARGET artifacts/TARGET \
  'cov:' 'ft:' 'exec' '64 bad usage' '1 a crash' '2 the packages or the build failed'; do
  if ! grep -qF -- "$word" <<<"$help"; then
    echo "FAIL: --help does not mention '$word'"
    fail=1
  fi
done
exit $fail
