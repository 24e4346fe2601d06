#!/usr/bin/env bash
# repo.failpoints: every failpoint the sources check, gy_failpoint("NAME"),
# is declared in core/include/gyre/failpoint_names.h, and every declared
# name is listed in README.md (issue 14, defect 6: the docs named one that
# no code checked). Race windows pass their name through race_window("NAME")
# in core/src/refcount.c: those count too.
set -euo pipefail
cd "$1"
fail=0
declared=$(grep -oE '^ *X\("[a-z0-9_.]+"' core/include/gyre/failpoint_names.h | sed -E 's/.*"(.*)"/\1/' | sort -u)
[[ -n "$declared" ]] || { echo "no failpoint declared in failpoint_names.h"; exit 1; }
used=$(grep -rhoE '(gy_failpoint|race_window)\("[a-z][a-z0-9_.]*"\)' core collector server config \
       | sed -E 's/.*\("(.*)"\)/\1/' | sort -u)
for name in $used; do
  if ! grep -qx -- "$name" <<<"$declared"; then
    echo "gy_failpoint(\"$name\") is checked in the sources but not declared in failpoint_names.h"
    fail=1
  fi
done
for name in $declared; do
  if ! grep -q -- "\`$name\`" README.md; then
    echo "failpoint '$name' is declared but README.md does not list it"
    fail=1
  fi
done
exit $fail
