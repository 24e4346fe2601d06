#!/usr/bin/env bash
# tools.soak_args: ./tools/soak and gyre-loadgen refuse bad usage with 64
# before doing anything (no packages, no build, no server), and --help exits 0.
# Usage: test_soak_args.sh PYTHON SOAK LOADGEN
set -uo pipefail
python=$1 soak=$2 loadgen=$3
fail=0
expect() {
  local want=$1; shift
  "$@" >/tmp/soak_args.$$ 2>&1
  local got=$?
  if [[ $got -ne $want ]]; then
    echo "FAIL: exit $got, expected $want: $*"; sed 's/^/  | /' /tmp/soak_args.$$; fail=1
  else
    echo "ok: exit $got: $*"
  fi
}
expect 64 "$python" "$soak"
expect 64 "$python" "$soak" --minutes
expect 64 "$python" "$soak" --minutes x
expect 64 "$python" "$soak" --minutes 0
expect 64 "$python" "$soak" --minutes -1
expect 64 "$python" "$soak" --minutes 1 --fraction 0.4
expect 64 "$python" "$soak" --minutes 1 --fraction 1.5
expect 64 "$python" "$soak" --minutes 1 --connections 0
expect 64 "$python" "$soak" --minutes 1 --bogus
expect 64 "$python" "$soak" --minutes 1 --gyred /bin/true
expect 64 "$python" "$soak" --minutes 1 --mix /nonexistent.mix
expect 0 "$python" "$soak" --help
grep -q 'Exit: 0 PASS, 1 a check failed, 2 setup failure' /tmp/soak_args.$$ || {
  echo "FAIL: --help does not document the exit codes"; fail=1; }
expect 64 "$loadgen"
expect 64 "$loadgen" --url http://127.0.0.1:1 --rate fast
expect 64 "$loadgen" --url ftp://127.0.0.1:1
expect 64 "$loadgen" --url http://example.com:80
expect 64 "$loadgen" --url http://127.0.0.1:1 --warmup 5 --duration 2
expect 64 "$loadgen" --url http://127.0.0.1:1 --mix /nonexistent.mix
printf '1 GET /\nbogus\n' >/tmp/soak_args_mix.$$
expect 64 "$loadgen" --url http://127.0.0.1:1 --mix /tmp/soak_args_mix.$$
printf '1 GET / expect=9\n' >/tmp/soak_args_mix.$$
expect 64 "$loadgen" --url http://127.0.0.1:1 --mix /tmp/soak_args_mix.$$
expect 0 "$loadgen" --help
rm -f /tmp/soak_args.$$ /tmp/soak_args_mix.$$
exit $fail
