#!/usr/bin/env bash
# instructions.sh BINARY MODE KEY: instructions per allocation step of the
# tracing benchmark under callgrind (deterministic, unlike time on a noisy
# machine): the difference between a 20k-step and a 120k-step run, divided
# by 100k, so start-up and shutdown cancel out. Prints "@bench KEY N instr".
set -euo pipefail
bin=$1 mode=$2 key=$3
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$mode" "$1" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
small=$(count 20000)
large=$(count 120000)
awk -v s="$small" -v l="$large" -v k="$key" 'BEGIN { printf "@bench %s %.2f instr\n", k, (l - s) / 100000 }'
