#!/usr/bin/env bash
# repo.format: every tracked C source and header is formatted per .clang-format.
set -euo pipefail
root=$1
clang_format=$2
cd "$root"
mapfile -t files < <(git ls-files '*.c' '*.h' '*.h.in' 2>/dev/null | grep -v '^third_party/' || true)
if [[ ${#files[@]} -eq 0 ]]; then
  mapfile -t files < <(find core collector server config tests tools -name '*.c' -o -name '*.h' | sort)
fi
echo "checking ${#files[@]} files with $("$clang_format" --version)"
"$clang_format" --dry-run -Werror --style=file "${files[@]}"
