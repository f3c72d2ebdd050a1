# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it; it defines functions only.

# Where test tools installed outside Debian's package database live (the private syslog-ng).
LOGSPLICE_TEST_CACHE="${LOGSPLICE_TEST_CACHE:-/var/cache/logsplice-test}"

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo --preserve-env=DEBIAN_FRONTEND "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# True when a Debian package is installed (not merely known or half-configured).
pkg_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# Prints the packages among the arguments that are not installed.
missing_pkgs() {
  local p
  for p in "$@"; do pkg_installed "$p" || printf '%s\n' "$p"; done
}

_apt_updated=0
apt_update_once() {
  if [[ $_apt_updated -eq 0 ]]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    _apt_updated=1
  fi
}

# Installs the given packages that are missing; does nothing (no apt call) when all are there.
# Services are never started by the install: a temporary policy-rc.d answers "not now" when the
# machine has none (Debian's documented way; containers usually ship one already).
apt_install_missing() {
  local -a missing
  mapfile -t missing < <(missing_pkgs "$@")
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing: ${missing[*]}"
  apt_update_once
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    added_policy=1
  fi
  local rc=0 out
  out="$(mktemp)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Use-Pty=0 "${missing[@]}" >"$out" 2>&1 || rc=$?
  [[ $added_policy -eq 1 ]] && as_root rm -f "$policy"
  if [[ $rc -ne 0 ]]; then
    cat "$out" >&2
    rm -f "$out"
    die "apt-get install failed for: ${missing[*]}"
  fi
  rm -f "$out"
}

# The private syslog-ng tree (see install-collectors.sh).
syslog_ng_root() { printf '%s\n' "$LOGSPLICE_TEST_CACHE/syslog-ng/root"; }
