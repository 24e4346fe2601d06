#!/usr/bin/env bash
# tools/lib/deps.sh PROFILE...: install the Debian packages a command needs,
# only those missing. `deps.sh --packages PKG...` installs named ones (the
# benchmarks' anchors). Used by tools/dev and tools/bench; one list per profile.
#   build  compile the libraries and binaries
#   test   build + the test suite (clang sanitizers, cmocka, python3, ...)
#   run    build + what the server needs at run time
#   bench  build + the benchmarks' anchors and tools
#   soak   build + python3 and gnuplot (./tools/soak)
#   fuzz   build + clang's fuzzer runtime (./tools/fuzz)
set -euo pipefail

gy_profile_packages() {
  local build=(gcc make cmake ninja-build pkg-config git libjemalloc-dev libck-dev
               libuv1-dev node-llhttp libjansson-dev libedit-dev)
  case "$1" in
    build) echo "${build[@]}" ;;
    # clang's sanitizer and fuzzer runtimes are only "recommended" by clang:
    # libclang-rt-14-dev must be named.
    test) echo "${build[@]}" clang libclang-rt-14-dev libcmocka-dev python3 clang-format binutils prometheus spin ;;
    run) echo "${build[@]}" ;;
    bench) echo "${build[@]}" python3 wrk nginx-light ;;
    soak) echo "${build[@]}" python3 gnuplot-nox ;;
    fuzz) echo "${build[@]}" clang libclang-rt-14-dev libcmocka-dev python3 ;;
    *) echo "deps.sh: unknown profile '$1' (build, test, run, bench, soak, fuzz)" >&2; return 64 ;;
  esac
}

gy_missing_packages() {
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      echo "$p"
    fi
  done
}

gy_install_profiles() {
  local want=() p
  for p in "$@"; do
    # shellcheck disable=SC2207
    want+=($(gy_profile_packages "$p"))
  done
  gy_install_packages "${want[@]}"
}

# gy_install_packages PKG...: install the named packages that are missing.
gy_install_packages() {
  local missing
  mapfile -t missing < <(gy_missing_packages "$@" | sort -u)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "install them as root: apt-get install ${missing[*]}" >&2
    return 1
  fi
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  [[ $# -gt 0 ]] || { echo "usage: deps.sh PROFILE... | deps.sh --packages PKG..." >&2; exit 64; }
  if [[ "$1" == "--packages" ]]; then
    shift
    gy_install_packages "$@"
  else
    gy_install_profiles "$@"
  fi
fi
