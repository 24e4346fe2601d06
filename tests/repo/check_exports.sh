#!/usr/bin/env bash
# repo.exports: a shared library exports gy_ symbols only (plus the symbols
# the toolchain and sanitizers add, which start with _ or are sanitizer hooks).
set -euo pipefail
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '{print $3}')
bad=$(printf '%s\n' "$syms" | grep -vE '^(gy_|gy__|_|__)' | grep -vE '^(asan|ubsan|tsan|__sanitizer)' || true)
count=$(printf '%s\n' "$syms" | grep -cE '^gy_' || true)
echo "$lib exports $count gy_ symbols"
if [[ -n "$bad" ]]; then
  echo "symbols exported without the gy_ prefix:"
  printf '%s\n' "$bad"
  exit 1
fi
[[ $count -gt 0 ]] || { echo "no gy_ symbols exported"; exit 1; }
# gy_version must be among them.
printf '%s\n' "$syms" | grep -qx gy_version || { echo "gy_version not exported"; exit 1; }
