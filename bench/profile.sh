#!/usr/bin/env bash
# Profiles the agent under one benchmark load: what bench/run.sh measures, this explains.
#
#   bench/profile.sh live  [perf|strace|cpu]   # 50k lines/s appended to one file, 10 s
#   bench/profile.sh glob  [perf|strace|cpu]   # 1,000 files, 10 growing at 10k lines/s, 10 s
#   bench/profile.sh idle  [perf|strace|cpu]   # 10,000 files, nothing written, 20 s
#
# cpu (default) prints the agent's CPU % over the window; perf records `perf record -g` into
# $LSP_WORK/perf.data and prints the top symbols; strace prints `strace -c -f` (syscalls per
# event = calls / writer batches). Knobs: LSP_RATE, LSP_SECONDS, LSP_FILES, LSP_ACTIVE,
# LSP_WORK (/tmp/logsplice-profile), LSP_BATCH_DELAY (agent.batch_delay, 0ms), AGENT (build/logsplice). Needs bench/build (bench/run.sh
# builds it, or `make -C bench`). Receivers listen on 127.0.0.1 only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
mode="${1:-}"
how="${2:-cpu}"
B="$here/build"
AGENT="${AGENT:-$repo/build/logsplice}"
work="${LSP_WORK:-/tmp/logsplice-profile}"
case "$mode" in
  live) rate="${LSP_RATE:-50000}" seconds="${LSP_SECONDS:-10}" ;;
  glob) rate="${LSP_RATE:-10000}" seconds="${LSP_SECONDS:-10}" files="${LSP_FILES:-1000}" active="${LSP_ACTIVE:-10}" ;;
  idle) seconds="${LSP_SECONDS:-20}" files="${LSP_FILES:-10000}" ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
[[ -x "$B/receiver" && -x "$B/loggen" ]] || make -s -C "$here" >/dev/null
[[ -x "$AGENT" ]] || { echo "profile: no agent at $AGENT (build it first)" >&2; exit 2; }
case "$how" in
  cpu) ;;
  perf) command -v perf >/dev/null || { echo "profile: perf is not installed" >&2; exit 2; } ;;
  strace) command -v strace >/dev/null || { echo "profile: strace is not installed" >&2; exit 2; } ;;
  *) echo "profile: unknown mode '$how' (cpu, perf or strace)" >&2; exit 2 ;;
esac

rm -rf "$work" && mkdir -p "$work/in" "$work/data"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

if [[ "$mode" == live ]]; then
  : >"$work/in/access.log"
else
  "$B/loggen" mkfiles "$work/in" "$files" 1 >/dev/null
fi
port="$("$B/receiver" --free-port)"
"$B/receiver" --listen "127.0.0.1:$port" --mode read --latency --latency-skip "${files:-0}" \
  --idle $((seconds + 10)) --timeout $((seconds + 120)) >"$work/rx.json" &
rx=$!
pids+=("$rx")
cat >"$work/agent.yaml" <<EOF
agent:
  data_dir: $work/data
  log_level: warn
  batch_delay: ${LSP_BATCH_DELAY:-0ms}
inputs:
  - { name: bench, paths: ["$work/in/*.log"], start_at: beginning }
outputs:
  - { name: c1, type: tcp, addresses: ["127.0.0.1:$port"], inputs: [bench] }
EOF
"$AGENT" run --config "$work/agent.yaml" &
agent=$!
pids+=("$agent")
sleep 3 # start-up, and the first line of every file shipped

ticks() { awk '{print $14 + $15}' "/proc/$agent/stat"; }
t0=$(ticks)
tool=""
case "$how" in
  perf) perf record ${LSP_PERF_CG:--g} -o "$work/perf.data" -p "$agent" -- sleep "$seconds" >/dev/null 2>&1 & tool=$! ;;
  strace) strace -c -f -o "$work/strace.txt" -p "$agent" 2>/dev/null & tool=$! ;;
esac
case "$mode" in
  live) "$B/loggen" append "$work/in/access.log" "$rate" "$seconds" 1 ;;
  glob) "$B/loggen" multi "$work/in" "$files" "$active" "$rate" "$seconds" 1 ;;
  idle) sleep "$seconds" ;;
esac
t1=$(ticks)
if [[ -n "$tool" ]]; then
  kill -INT "$tool" 2>/dev/null || true
  wait "$tool" 2>/dev/null || true
fi
sleep 1 # the last lines in flight
kill -TERM "$rx" 2>/dev/null || true
wait "$rx" 2>/dev/null || true
hz=$(getconf CLK_TCK)
echo "agent CPU over ${seconds}s: $(awk -v t=$((t1 - t0)) -v hz="$hz" -v s="$seconds" \
  'BEGIN { printf "%.2f%% of a core", 100 * t / hz / s }'), RSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$agent/status")," \
  "latency $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("p50 %s ms, p99 %s ms, max %s ms (%s lines)" % (r.get("lat_p50_ms"), r.get("lat_p99_ms"), r.get("lat_max_ms"), r.get("lines")))' "$work/rx.json")"
case "$how" in
  perf) perf report -i "$work/perf.data" --no-children --sort dso,sym -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -25 ;;
  strace) head -20 "$work/strace.txt" ;;
esac
