#!/usr/bin/env bash
# The one command that checks everything: installs the dependencies and the real collectors,
# builds build/ (RelWithDebInfo) and runs every test (unit + e2e), then builds build-asan/
# (AddressSanitizer + UBSan) and runs the unit tests there. Exits non-zero on any failure.
#
#   scripts/test.sh               # everything (what CI runs)
#   scripts/test.sh --no-install  # skip the install step
#   scripts/test.sh --no-asan     # skip the sanitizer tree
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
source "$here/lib.sh"

install=1 asan=1
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    --no-asan) asan=0 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done

jobs="$(nproc)"
step() { printf '\n==== %s\n' "$*"; }

cd "$repo"
if [[ $install -eq 1 ]]; then
  step "install dependencies and collectors"
  bash "$here/install-deps.sh" --collectors
fi

step "build (build/, RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOGSPLICE_TESTS=ON >/dev/null
cmake --build build -j "$jobs"

step "tests (build/: unit + e2e)"
ctest --test-dir build --output-on-failure --no-tests=error

if [[ $asan -eq 1 ]]; then
  step "build (build-asan/, Debug, -DLOGSPLICE_SANITIZE=ON)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLOGSPLICE_SANITIZE=ON -DLOGSPLICE_TESTS=ON \
    >/dev/null
  cmake --build build-asan -j "$jobs"

  step "unit tests under ASan/UBSan (build-asan/)"
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir build-asan --output-on-failure -L unit
fi

step "all tests passed"
