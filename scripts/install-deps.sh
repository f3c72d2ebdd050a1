#!/usr/bin/env bash
# Installs what building and testing logsplice needs from Debian 12, and only what is missing:
# when everything is there it runs no apt command at all. Runs as root, or through sudo.
#
#   scripts/install-deps.sh                # build + test dependencies
#   scripts/install-deps.sh --collectors   # also the real collectors (install-collectors.sh)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

with_collectors=0
for arg in "$@"; do
  case "$arg" in
    --collectors) with_collectors=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done

build_deps=(
  build-essential cmake pkg-config
  libuv1-dev libyaml-cpp-dev libspdlog-dev libfmt-dev catch2 libpcre2-dev libssl-dev openssl
  libsystemd-dev
  librdkafka-dev kcat
  python3 clang-format logrotate netcat-openbsd procps strace
)
apt_install_missing "${build_deps[@]}"

if [[ $with_collectors -eq 1 ]]; then
  bash "$here/install-collectors.sh"
fi
