#!/usr/bin/env bash
# Installs the peers the benchmark compares against: rsyslog (Debian package) and a private
# syslog-ng (apt-get download + dpkg -x, because syslog-ng-core conflicts with rsyslog).
# Reuses scripts/install-collectors.sh (the test suite's installer) when it exists; otherwise
# does the same here. Prints the private syslog-ng root on stdout. Never starts a service.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${LOGSPLICE_TEST_CACHE:-/var/cache/logsplice-test}"
sng_root="$cache/syslog-ng/root"

if [[ -x $repo/scripts/install-collectors.sh ]] || [[ -f $repo/scripts/install-collectors.sh ]]; then
  bash "$repo/scripts/install-collectors.sh" --no-verify >&2
else
  pkgs=(rsyslog libcap2 libglib2.0-0 libivykis0 libjson-c5 libnet1 libpcre3 libssl3 libsystemd0 libwrap0)
  missing=()
  for p in "${pkgs[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
  done
  if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  if [[ ! -x $sng_root/usr/sbin/syslog-ng ]]; then
    tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT; chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root syslog-ng-core) >&2 ||
      { apt-get update -qq && (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root syslog-ng-core) >&2; }
    deb="$(ls "$tmp"/syslog-ng-core_*.deb)"
    rm -rf "$cache/syslog-ng"; mkdir -p "$sng_root"
    dpkg -x "$deb" "$sng_root"
    dpkg-deb -f "$deb" Version > "$cache/syslog-ng/VERSION"
  fi
fi
LD_LIBRARY_PATH="$sng_root/usr/lib/syslog-ng" "$sng_root/usr/sbin/syslog-ng" --version >/dev/null
echo "$sng_root"
