#!/usr/bin/env bash
# A newcomer's first command: installs the build dependencies, builds logsplice, and runs it in
# the foreground on a small live setup in a temp dir:
#
#   writer     appends realistic log lines to demo/app.log, a few per second
#   collector  a tiny TCP server on 127.0.0.1 that prints every line it receives as "[collector] ..."
#   archive/   where the archive output writes its files
#   logsplice  `logsplice run --config demo.yaml` (from config/examples/demo.yaml), start_at: beginning
#
# Ctrl-C stops everything and prints a summary.
#
#   scripts/demo.sh                  # run until Ctrl-C
#   scripts/demo.sh --duration 10    # stop by itself after 10 seconds
#   scripts/demo.sh --keep           # keep the temp dir afterwards
#   scripts/demo.sh --no-build       # use build/logsplice as it is
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
source "$here/lib.sh"

duration=0 keep=0 build=1 rate=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-build) build=0; shift ;;
    --rate) rate="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done

bin="${LOGSPLICE_BIN:-$repo/build/logsplice}"
if [[ $build -eq 1 ]]; then
  bash "$here/install-deps.sh"
  log "building $bin"
  cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$repo/build" -j "$(nproc)" --target logsplice >/dev/null ||
    die "build failed: run 'cmake --build build --target logsplice' to see why"
fi
[[ -x $bin ]] || die "no logsplice binary at $bin"

demo_dir="$(mktemp -d /tmp/logsplice-demo.XXXXXX)"
mkdir -p "$demo_dir/demo" "$demo_dir/archive" "$demo_dir/data"
pids=()

cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo
  log "summary:"
  log "  lines written to demo/app.log: $(wc -l < "$demo_dir/demo/app.log" 2>/dev/null || echo 0)"
  log "  lines received by the collector: $(wc -l < "$demo_dir/collector.out" 2>/dev/null || echo 0)"
  log "  (a line written after the agent began stopping is shipped at its next start)"
  log "  archive files: $(find "$demo_dir/archive" -type f | wc -l)," \
      "$(find "$demo_dir/archive" -type f -exec cat {} + 2>/dev/null | wc -l) lines"
  if [[ $keep -eq 1 ]]; then
    log "kept $demo_dir (config: $demo_dir/demo.yaml)"
  else
    rm -rf "$demo_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The collector: prints each received line with a prefix, and keeps a copy for the summary.
# It ignores SIGINT so that it keeps receiving while logsplice drains after Ctrl-C.
python3 - "$demo_dir" <<'EOF' &
import signal, socketserver, sys, threading
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
demo = sys.argv[1]
out = open(f"{demo}/collector.out", "ab", buffering=0)
lock = threading.Lock()
class Lines(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            with lock:
                out.write(line)
                sys.stdout.write("[collector] " + line.decode("utf-8", "replace"))
                sys.stdout.flush()
socketserver.ThreadingTCPServer.daemon_threads = True
server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Lines)
with open(f"{demo}/collector.port.tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os; os.rename(f"{demo}/collector.port.tmp", f"{demo}/collector.port")
server.serve_forever()
EOF
pids+=($!)

# The writer: web-server and application lines, a few per second.
python3 - "$demo_dir/demo/app.log" "$rate" <<'EOF' &
import datetime, random, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
path, rate = sys.argv[1], float(sys.argv[2])
paths = ["/", "/login", "/api/v1/orders", "/api/v1/orders/42", "/static/app.js", "/health"]
users = ["alice", "bob", "carol", "dave"]
seq = 0
while True:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    seq += 1
    if random.random() < 0.7:
        status = random.choices([200, 201, 304, 404, 500], [70, 5, 10, 10, 5])[0]
        line = (f'{now} level=info msg="http request" seq={seq} method=GET '
                f'path={random.choice(paths)} status={status} '
                f'duration_ms={random.randint(1, 900)} user={random.choice(users)}')
    else:
        level = random.choices(["debug", "warn", "error"], [6, 3, 1])[0]
        line = f'{now} level={level} msg="order pipeline step" seq={seq} order_id={random.randint(1000, 9999)}'
    with open(path, "a") as f:
        f.write(line + "\n")
    time.sleep(1.0 / rate)
EOF
writer=$!
pids+=("$writer")

for _ in $(seq 100); do [[ -s $demo_dir/collector.port ]] && break; sleep 0.05; done
[[ -s $demo_dir/collector.port ]] || die "the demo collector did not start"
port="$(cat "$demo_dir/collector.port")"
sed -e "s#@DEMO_DIR@#$demo_dir#g" -e "s#@COLLECTOR_PORT@#$port#g" \
  "$repo/config/examples/demo.yaml" > "$demo_dir/demo.yaml"

log "demo dir:   $demo_dir"
log "log file:   $demo_dir/demo/app.log (${rate} lines/s)"
log "collector:  127.0.0.1:$port"
log "archive:    $demo_dir/archive/"
log "running:    $bin run --config $demo_dir/demo.yaml"
log "press Ctrl-C to stop"
echo

if [[ $duration -gt 0 ]]; then
  "$bin" run --config "$demo_dir/demo.yaml" &
  agent=$!
  pids=("$agent" "${pids[@]}")
  for _ in $(seq "$((duration * 10))"); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
  # Stop the writer first, so the agent can ship its last lines before it stops.
  kill "$writer" 2>/dev/null || true
  wait "$writer" 2>/dev/null || true
  sleep 0.5
  kill -TERM "$agent" 2>/dev/null || true
  rc=0; wait "$agent" || rc=$?
else
  rc=0; "$bin" run --config "$demo_dir/demo.yaml" || rc=$?
fi
log "logsplice exited with code $rc"
exit "$rc"
