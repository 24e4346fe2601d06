#!/usr/bin/env bash
# repo.layout: the top level holds exactly the agreed entries, and the
# dependency direction core <- collector <- server <- tools holds in the
# sources: core includes no libuv, HTTP, config or collector/server header.
set -euo pipefail
root=$1
cd "$root"
fail=0

allowed=" CMakeLists.txt core server collector tests config tools README.md LICENSE .ci "
while IFS= read -r entry; do
  case "$entry" in
    .*) [[ "$entry" == ".ci" ]] || continue ;; # dotfiles are allowed
  esac
  if [[ "$allowed" != *" $entry "* ]]; then
    echo "unexpected top-level entry: $entry"
    fail=1
  fi
done < <(git ls-files 2>/dev/null | cut -d/ -f1 | sort -u)

for need in CMakeLists.txt core server collector tests config tools README.md LICENSE .ci/run; do
  [[ -e "$need" ]] || { echo "missing: $need"; fail=1; }
done

# core must not reach up the dependency chain.
if grep -rnE '#\s*include\s*[<"](uv\.h|uv/|llhttp|jansson|ini\.h|gyre/(gc|server|config|admin)\.h)' core; then
  echo "core includes a header of a module above it (see the lines above)"
  fail=1
fi
# collector must not include server or config.
if [[ -d collector ]] && grep -rnE '#\s*include\s*[<"](uv\.h|llhttp|gyre/(server|config|admin)\.h)' collector; then
  echo "collector includes a server/config header (see the lines above)"
  fail=1
fi
exit $fail
