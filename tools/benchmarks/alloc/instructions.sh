#!/usr/bin/env bash
# instructions.sh BINARY PART KEY: instructions per step of one part of the
# alloc benchmark ("owner": alloc_owner_1t's loop; "incref": the owner's
# incref+decref pair) under callgrind, deterministic where time is too
# noisy for a 3% bound: the difference between a 20k-step and a 120k-step
# run divided by 100k, so start-up and shutdown cancel out. The collector's
# mode comes from GYRE_GC_MODE in the environment (the registry runs this
# once per mode). Prints "@bench KEY N instr".
set -euo pipefail
bin=$1 part=$2 key=$3
count() {
  BENCH_OWNER_STEPS=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$part" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
small=$(count 20000)
large=$(count 120000)
awk -v s="$small" -v l="$large" -v k="$key" 'BEGIN { printf "@bench %s %.2f instr\n", k, (l - s) / 100000 }'
