#!/usr/bin/env bash
# One command for the logsplice benchmarks.
#
#   bench/run.sh [--quick] [catchup] [fanout] [archive] [live] [outage] [glob] [zerocopy] [events] [tls]
#                [kafka] [collect] [relp] [manyfiles]
#
# Installs what it needs (Debian packages: rsyslog, rsyslog-openssl, libssl-dev, strace,
# python3-matplotlib, and a private syslog-ng via bench/peers/install.sh), builds bench/build/,
# runs the scenarios (all by default) and writes docs/benchmarks/results.md plus PNG plots. The logsplice agent
# (build/logsplice) joins when it works; otherwise it is reported as n/a.
#
# Sizes and repetitions come from the environment (see bench/README.md): LSB_SIZE (1G),
# LSB_REPS (5), LSB_LIVE_SECONDS (30), LSB_LIVE_RATES (50000,200000), LSB_OUTAGE_BYTES (1G),
# LSB_GLOB_FILES (10000), LSB_GLOB_SECONDS (20), LSB_ZC_SIZE (64M), LSB_WORK (/tmp/logsplice-bench),
# LSB_OUT (bench/out), LSB_RESULTS (docs/benchmarks). --quick: 64 MiB, 2 reps, short runs (~2 min).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
args=()
for a in "$@"; do
  case "$a" in
    --quick)
      : "${LSB_SIZE:=64M}" "${LSB_REPS:=2}" "${LSB_LIVE_SECONDS:=4}" "${LSB_LIVE_RATES:=50000}"
      : "${LSB_OUTAGE_BYTES:=64M}" "${LSB_OUTAGE_HOLD:=1}" "${LSB_OUTAGE_REPS:=1}" "${LSB_GLOB_FILES:=1000}"
      : "${LSB_MANY_FILES:=10000}" "${LSB_MANY_IDLE_SECONDS:=5}" "${LSB_MANY_CKPT_SECONDS:=3}"
      : "${LSB_GLOB_SECONDS:=3}" "${LSB_GLOB_IDLE_SECONDS:=3}" "${LSB_GLOB_REPS:=1}" "${LSB_ZC_SIZE:=16M}" "${LSB_RESULTS:=$here/out/quick}" "${LSB_TIMEOUT:=120}"
      export LSB_SIZE LSB_REPS LSB_LIVE_SECONDS LSB_LIVE_RATES LSB_OUTAGE_BYTES LSB_OUTAGE_HOLD \
        LSB_OUTAGE_REPS LSB_GLOB_FILES LSB_GLOB_SECONDS LSB_GLOB_IDLE_SECONDS LSB_GLOB_REPS LSB_ZC_SIZE LSB_TIMEOUT \
        LSB_MANY_FILES LSB_MANY_IDLE_SECONDS LSB_MANY_CKPT_SECONDS ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) args+=("$a") ;;
  esac
done

log() { printf '[bench/run.sh] %s\n' "$*" >&2; }
pkg_ok() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }
need=()
for p in python3-matplotlib strace make gcc rsyslog-openssl libssl-dev; do pkg_ok "$p" || need+=("$p"); done
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
LSB_SYSLOG_NG_ROOT="$(bash "$here/peers/install.sh" | tail -n1)"
export LSB_SYSLOG_NG_ROOT

make -s -C "$here" >&2
export LSB_OUT="${LSB_OUT:-$here/out}"
results="${LSB_RESULTS:-$repo/docs/benchmarks}"
# Debian's python3 (matplotlib comes from python3-matplotlib), whatever python3 is first in PATH
/usr/bin/python3 "$here/bench.py" "${args[@]}"
/usr/bin/python3 "$here/report.py" "$LSB_OUT/raw.json" "$results"
