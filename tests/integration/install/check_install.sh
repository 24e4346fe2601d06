#!/usr/bin/env bash
# build.install: install the build tree into a scratch prefix and build and
# run a consumer against it with pkg-config.
set -euo pipefail
build=$1 consumer=$2 cc=$3 extra=${4:-}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name gyre.pc | head -n1)
[[ -n "$pc" ]] || { echo "gyre.pc not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
pkg-config --exists gyre
for h in gyre.h error.h log.h failpoint.h version.h common.h; do
  [[ -f "$prefix/include/gyre/$h" ]] || { echo "not installed: include/gyre/$h"; exit 1; }
done
# shellcheck disable=SC2046,SC2086
"$cc" -std=c11 -Wall -Werror $extra -o "$prefix/consumer" "$consumer" \
  $(pkg-config --cflags --libs gyre) -Wl,-rpath,"$(pkg-config --variable=libdir gyre)"
out=$("$prefix/consumer")
echo "$out"
[[ "$out" == "gyre $(pkg-config --modversion gyre) ENOMEM" ]]
