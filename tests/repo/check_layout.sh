#!/usr/bin/env bash
# repo.layout: the top level holds exactly the agreed entries, and the
# dependency direction core <- collector <- server <- tools holds in the
# sources: core includes no libuv, HTTP, config or collector/server header;
# inside server, the HTTP core (server/src) knows nothing of the operator's
# plane (server/ops: admin socket, metrics), which uses the core.
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
# server/src must not reach into server/ops: no include of an ops header,
# no name of an ops function, type or macro (the core calls ops only
# through the plane registry, gy__plane in server/src/srv.h).
if [[ ! -d server/ops ]]; then
  echo "missing: server/ops (the admin socket and metrics, apart from the HTTP core)"
  fail=1
fi
ops_headers=()
[[ -d server/ops ]] && mapfile -t ops_headers < <(cd server/ops && ls -- *.h 2>/dev/null)
for h in "${ops_headers[@]}" ops/; do
  if grep -rnE "#\s*include\s*[<\"]([^\">]*/)?${h//./\\.}" server/src; then
    echo "server/src includes a header of server/ops ($h; see the lines above)"
    fail=1
  fi
done
# The names: the ops modules' prefixes, and every gy__/GY__ name the ops
# headers declare that no server/src header declares too.
names='gy__(admin|metrics|ops)[A-Za-z0-9_]*'
if [[ ${#ops_headers[@]} -gt 0 ]]; then
  declared=$(cd server/ops && grep -ohE '\b(gy__|GY__)[A-Za-z0-9_]+' -- "${ops_headers[@]}" | sort -u)
  core=$(grep -ohE '\b(gy__|GY__)[A-Za-z0-9_]+' server/src/*.h | sort -u)
  extra=$(comm -23 <(echo "$declared") <(echo "$core") | paste -sd'|')
  [[ -n "$extra" ]] && names="$names|$extra"
fi
if grep -rnwE "($names)" server/src; then
  echo "server/src names an admin/metrics symbol of server/ops (see the lines above);" \
    "reach ops through gy__plane hooks instead"
  fail=1
fi
exit $fail
