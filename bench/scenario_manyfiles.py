#!/usr/bin/python3
"""Scenario `manyfiles`: the agent alone with LSB_MANY_FILES (100,000) files under one `**` glob.

Files of LSB_MANY_LINES (3) lines each, LSB_MANY_PER_DIR (1,000) per directory, are created
before the agent starts (`start_at: beginning`, default `max_open_files`). Measured:

* ship_s: agent start until every line of every file reached the receiver (so every first line)
* idle_cpu_pct over LSB_MANY_IDLE_SECONDS (20) once all is shipped and nothing is written,
  idle_rss_kib at its end, open_fds (/proc/PID/fd) and the files_open metric
* checkpoint write: for LSB_MANY_CKPT_SECONDS (10), LSB_MANY_CKPT_ACTIVE (100) files get a line
  every second; each new checkpoint write's logsplice_checkpoint_last_write_seconds is kept
  (median and max in ms), with the compactions seen

Run from bench.py (`bench/run.sh manyfiles`), or alone for one run:
`LSB_MANY_FILES=10000 /usr/bin/python3 bench/scenario_manyfiles.py` (prints the result as JSON).
"""
import json
import os
import statistics
import time

MANY = {
    "files": int(os.environ.get("LSB_MANY_FILES", "100000")),
    "lines": int(os.environ.get("LSB_MANY_LINES", "3")),
    "per_dir": int(os.environ.get("LSB_MANY_PER_DIR", "1000")),
    "idle_seconds": float(os.environ.get("LSB_MANY_IDLE_SECONDS", "20")),
    "ckpt_seconds": int(os.environ.get("LSB_MANY_CKPT_SECONDS", "10")),
    "ckpt_active": int(os.environ.get("LSB_MANY_CKPT_ACTIVE", "100")),
}


def make_files(in_dir, nfiles, lines, per_dir):
    paths = []
    for i in range(nfiles):
        sub = os.path.join(in_dir, f"d{i // per_dir:04d}")
        if i % per_dir == 0:
            os.makedirs(sub, exist_ok=True)
        p = os.path.join(sub, f"f{i:06d}.log")
        with open(p, "w") as f:
            f.write("".join(f"file {i:06d} line {k} of a many-files bench\n" for k in range(lines)))
        paths.append(p)
    return paths


def metric(text, name):
    for ln in text.splitlines():
        if ln.startswith(name + " ") or ln.startswith(name + "{"):
            try:
                return float(ln.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


class ManyAgent:
    """The bench Agent contender with a `**` glob and metrics on."""

    def __init__(self, bench):
        self.b = bench
        self.kind = "agent"
        self.name = "logsplice"

    def start(self, d, in_dir, addr, port):
        data = os.path.join(d, "agent-data")
        os.makedirs(data, exist_ok=True)
        cfg = "\n".join([
            "agent:",
            f"  data_dir: {data}",
            "  log_level: warn",
            f"  metrics: {{ listen: \"127.0.0.1:{port}\" }}",
            "inputs:",
            f"  - {{ name: many, paths: [\"{in_dir}/**/*.log\"], start_at: beginning }}",
            "outputs:",
            f"  - {{ name: c1, type: tcp, addresses: [\"{addr}\"], inputs: [many] }}",
        ]) + "\n"
        path = os.path.join(d, "logsplice.yaml")
        open(path, "w").write(cfg)
        return self.b.Proc([self.b.AGENT_BIN, "run", "--config", path], os.path.join(d, "agent.log"))


def manyfiles_trial(b, ws, cfg=None):
    """One run; `b` is the bench module (Proc, Receiver, helpers)."""
    cfg = cfg or MANY
    n, k = cfg["files"], cfg["lines"]
    d = ws.trial_dir("manyfiles-logsplice")
    in_dir = os.path.join(d, "in")
    t = time.monotonic()
    paths = make_files(in_dir, n, k, cfg["per_dir"])
    b.log(f"  {n} files created in {time.monotonic() - t:.1f} s")
    active = paths[:: max(1, n // cfg["ckpt_active"])][: cfg["ckpt_active"]]
    initial = n * k
    total = initial + len(active) * cfg["ckpt_seconds"]
    rx = b.Receiver(d, expect_lines=total, timeout=b.CFG["timeout"])
    port = b.free_port()
    proc = ManyAgent(b).start(d, in_dir, rx.addr, port)
    res = {"scenario": "manyfiles", "contender": "logsplice", "kind": "agent", "files": n,
           "lines_per_file": k}
    end = time.monotonic() + min(b.CFG["timeout"], 600)
    while rx.lines_so_far() < initial and time.monotonic() < end and proc.alive() and rx.p.poll() is None:
        time.sleep(0.05)
    res["ship_s"] = time.monotonic() - proc.t_start
    res["initial_lines"] = rx.lines_so_far()
    s = proc.sample_now()
    res["ship_cpu_s"] = s[0] if s else None
    # Idle: everything shipped, nothing written.
    time.sleep(2.0)
    si0, ti0 = proc.sample_now(), time.monotonic()
    time.sleep(cfg["idle_seconds"])
    si1, ti1 = proc.sample_now(), time.monotonic()
    if si0 and si1:
        res["idle_cpu_pct"] = 100 * (si1[0] - si0[0]) / (ti1 - ti0)
        res["idle_rss_kib"] = si1[1]
        res["hwm_kib"] = si1[2]
    try:
        res["open_fds"] = len(os.listdir(f"/proc/{proc.pid}/fd"))
    except OSError:
        res["open_fds"] = None
    m = b.fetch_metrics(port)
    res["files_open_metric"] = metric(m, "logsplice_input_files_open")
    res["checkpoint_entries"] = metric(m, "logsplice_checkpoint_entries")
    # Checkpoints while a few files change: one line per active file per second.
    writes = metric(m, "logsplice_checkpoint_writes_total") or 0
    comp0 = metric(m, "logsplice_checkpoint_compactions_total")
    write_ms = []
    for sec in range(cfg["ckpt_seconds"]):
        t0 = time.monotonic()
        for i, p in enumerate(active):
            with open(p, "a") as f:
                f.write(f"file active {i} appended line {sec} of a many-files bench\n")
        while time.monotonic() < t0 + 1.0:
            m = b.fetch_metrics(port)
            w = metric(m, "logsplice_checkpoint_writes_total") or 0
            if w > writes:
                writes = w
                v = metric(m, "logsplice_checkpoint_last_write_seconds")
                if v is not None:
                    write_ms.append(1000 * v)
            time.sleep(0.25)  # /metrics has a line per file: polled gently
    comp1 = metric(b.fetch_metrics(port), "logsplice_checkpoint_compactions_total")
    if write_ms:
        res["ckpt_write_ms_median"] = statistics.median(write_ms)
        res["ckpt_write_ms_max"] = max(write_ms)
        res["ckpt_writes"] = len(write_ms)
    if comp0 is not None and comp1 is not None:
        res["ckpt_compactions"] = comp1 - comp0
    r = b.wait_rx(rx, proc, 60)
    proc.stop()
    res.update(rx=r, ok=r["status"] == "done" and r["lines"] == total, maxrss_kib=proc.maxrss_kib())
    if not res["ok"]:
        b.log(f"  manyfiles incomplete: {r.get('status')} lines {r.get('lines')}/{total}; see {d}")
        res["trial_dir"] = d
    return res, d


if __name__ == "__main__":
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench as b  # noqa: E402
    b.raise_nofile()
    res, d = manyfiles_trial(b, b.Workspace())
    print(json.dumps(res, indent=1))
    if res.get("ok") and os.environ.get("LSB_KEEP") != "1":
        import shutil
        shutil.rmtree(d, ignore_errors=True)
