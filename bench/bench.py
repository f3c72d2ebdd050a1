#!/usr/bin/python3
"""logsplice benchmark harness (run it through bench/run.sh).

Runs each scenario's contenders (baselines, rsyslog, syslog-ng, and the logsplice
agent when build/logsplice works) REPS times, interleaved round-robin inside each
repetition, against bench/build/receiver on 127.0.0.1, and writes raw results to
$LSB_OUT/raw.json. report.py turns them into docs/benchmarks/.

Every process is measured the same way: the harness starts it, the receiver says
when the expected bytes or lines have arrived, the harness stops the process and
takes user+sys CPU and peak RSS from wait4()'s rusage; it also samples
/proc/PID/{stat,status} every 100 ms for CPU and RSS over time windows.
"""
import abc
import json
import re
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BUILD = os.path.join(BENCH, "build")
AGENT_BIN = os.path.join(ROOT, "build", "logsplice")
HZ = os.sysconf("SC_CLK_TCK")


def env_size(name, default):
    v = os.environ.get(name, default)
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    if v[-1].lower() in mult:
        return int(float(v[:-1]) * mult[v[-1].lower()])
    return int(v)


CFG = {
    "size": env_size("LSB_SIZE", "1G"),               # catch-up / fan-out / archive file size
    "reps": int(os.environ.get("LSB_REPS", "5")),
    # Peers (rsyslog, syslog-ng) move 20-100 MB/s: they process this much of the catch-up,
    # fan-out, archive and events files (MB/s and CPU per GB are per byte, so the rows compare);
    # 1 GiB each would be most of the run's 45 minutes.
    "peer_size": env_size("LSB_PEER_SIZE", "256M"),
    "live_seconds": float(os.environ.get("LSB_LIVE_SECONDS", "15")),
    "live_rates": [int(x) for x in os.environ.get("LSB_LIVE_RATES", "50000,200000").split(",")],
    "live_reps": int(os.environ.get("LSB_LIVE_REPS", "0")) or None,  # default: reps
    "outage_bytes": env_size("LSB_OUTAGE_BYTES", "512M"),
    "outage_hold": float(os.environ.get("LSB_OUTAGE_HOLD", "3")),
    "glob_files": int(os.environ.get("LSB_GLOB_FILES", "10000")),
    "glob_active_pct": float(os.environ.get("LSB_GLOB_ACTIVE_PCT", "1")),
    "glob_rate": int(os.environ.get("LSB_GLOB_RATE", "10000")),
    "glob_seconds": float(os.environ.get("LSB_GLOB_SECONDS", "15")),
    "glob_idle_seconds": float(os.environ.get("LSB_GLOB_IDLE_SECONDS", "10")),
    # How long a contender may take to ship the first line of every file. rsyslog never gets
    # there with 10,000 files (imfile); it is given up after this, and skipped in later reps.
    "glob_scan_timeout": float(os.environ.get("LSB_GLOB_SCAN_TIMEOUT", "120")),
    "zc_size": env_size("LSB_ZC_SIZE", "64M"),
    "fanout_sinks": int(os.environ.get("LSB_FANOUT_SINKS", "4")),
    "events_live_rate": int(os.environ.get("LSB_EVENTS_LIVE_RATE", "50000")),
    "work": os.environ.get("LSB_WORK", "/tmp/logsplice-bench"),
    "seed": int(os.environ.get("LSB_SEED", "1")),
    "timeout": float(os.environ.get("LSB_TIMEOUT", "600")),
}
# scenarios that repeat less often because one run is long
SLOW_REPS = {"outage": int(os.environ.get("LSB_OUTAGE_REPS", "0")) or None,
             "glob": int(os.environ.get("LSB_GLOB_REPS", "0")) or None,
             "zerocopy": int(os.environ.get("LSB_ZC_REPS", "1"))}

SYSLOG_NG_ROOT = os.environ.get("LSB_SYSLOG_NG_ROOT", "")


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def tool(name):
    return os.path.join(BUILD, name)


# ---------------------------------------------------------------------------
# process measurement


def proc_sample(pid):
    """(cpu seconds user+sys, rss KiB, hwm KiB) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        fields = st[st.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / HZ
        rss = hwm = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        return cpu, rss, hwm
    except (OSError, ValueError, IndexError):
        return None


def raise_nofile():
    """10,000 followed files need more than the usual 1024 descriptors (inherited by contenders)"""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Proc:
    """A contender process, started through build/runproc (which reports wait4 rusage of the
    contender alone), sampled every 100 ms from /proc, stopped with SIGTERM."""

    def __init__(self, argv, logpath, env=None):
        self.argv = argv
        self.logf = open(logpath, "wb")
        self.ru_path = logpath + ".rusage"
        for f in (self.ru_path, self.ru_path + ".pid"):
            if os.path.exists(f):
                os.unlink(f)
        self.t_start = time.monotonic()
        self.p = subprocess.Popen([tool("runproc"), self.ru_path, "--"] + argv, stdout=self.logf,
                                  stderr=subprocess.STDOUT, env=env, start_new_session=True)
        end = time.monotonic() + 10
        # runproc creates the file, then writes the pid: wait for the number, not the file
        while not (os.path.exists(self.ru_path + ".pid") and open(self.ru_path + ".pid").read().strip()):
            if time.monotonic() > end or self.p.poll() is not None:
                raise RuntimeError(f"cannot start {argv[0]}")
            time.sleep(0.001)
        self.pid = int(open(self.ru_path + ".pid").read())  # the contender itself
        self.samples = []  # (t, cpu_s, rss_kib)
        self.exited = None
        self.ru = None
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._sample, daemon=True)
        self._th.start()

    def _sample(self):
        while not self._stop.is_set():
            s = proc_sample(self.pid)
            if s:
                self.samples.append((time.monotonic(), s[0], s[1]))
            self._stop.wait(0.1)

    def sample_now(self):
        return proc_sample(self.pid)

    def alive(self):
        if self.exited is not None:
            return False
        if self.p.poll() is None:
            return True
        self._stop.set()
        try:
            u, sy, rss, code = open(self.ru_path).read().split()
            self.ru = (float(u), float(sy), int(rss))
            self.exited = int(code)
        except (OSError, ValueError):
            self.exited = self.p.returncode
        return False

    def wait_exit(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive():
                return True
            time.sleep(0.01)
        return False

    def stop(self, sig=signal.SIGTERM, grace=20):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            if not self.wait_exit(grace):
                log(f"{self.argv[0]}: no exit {grace}s after {sig!s}; SIGKILL")
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait_exit(10)
        try:  # anything left in its session
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._stop.set()
        self.logf.close()

    def cpu_total(self):
        return self.ru[0] + self.ru[1] if self.ru else None

    def maxrss_kib(self):
        return self.ru[2] if self.ru else None

    def window(self, t0, t1):
        """cpu seconds used and max RSS within [t0, t1], from the samples"""
        inside = [s for s in self.samples if t0 - 0.15 <= s[0] <= t1 + 0.15]
        if len(inside) < 2:
            return None, None
        return inside[-1][1] - inside[0][1], max(s[2] for s in inside)


class Receiver:
    def __init__(self, d, *, port=0, mode=None, expect_bytes=0, expect_lines=0, latency=False,
                 timeout=None, idle=0, latency_skip=0):
        self.d = d
        self.port_file = os.path.join(d, "rx.port")
        self.progress = os.path.join(d, "rx.progress")
        for f in (self.port_file, self.progress):
            if os.path.exists(f):
                os.unlink(f)
        argv = [tool("receiver"), "--listen", f"127.0.0.1:{port}", "--port-file", self.port_file,
                "--progress", self.progress, "--timeout", str(timeout or CFG["timeout"])]
        if mode:
            argv += ["--mode", mode]
        if expect_bytes:
            argv += ["--expect-bytes", str(expect_bytes)]
        if expect_lines:
            argv += ["--expect-lines", str(expect_lines)]
        if latency:
            argv.append("--latency")
        if latency_skip:
            argv += ["--latency-skip", str(latency_skip)]
        if idle:
            argv += ["--idle", str(idle)]
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(os.path.join(d, "rx.err"), "wb"))
        end = time.monotonic() + 10
        while not os.path.exists(self.port_file):
            if time.monotonic() > end or self.p.poll() is not None:
                raise RuntimeError("receiver did not start")
            time.sleep(0.005)
        self.port = int(open(self.port_file).read())
        self.addr = f"127.0.0.1:{self.port}"
        self.result = None

    def lines_so_far(self):
        try:
            return int(open(self.progress).read().split()[1])
        except (OSError, IndexError, ValueError):
            return 0

    def wait(self, timeout=None):
        try:
            out, _ = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.terminate()
            out, _ = self.p.communicate()
        try:
            self.result = json.loads(out.decode().strip().splitlines()[-1])
        except (IndexError, ValueError):
            self.result = {"status": "crashed", "bytes": 0, "lines": 0, "t_last": 0}
        return self.result

    def kill(self):
        if self.p.poll() is None:
            self.p.terminate()
        return self.wait()


def wait_rx(rx, proc, timeout, daemon=True):
    """Wait for the receiver; give up early when a daemon contender has died (bad config, crash)."""
    end = time.monotonic() + timeout
    dead_since = None
    while rx.p.poll() is None and time.monotonic() < end:
        if not proc.alive():
            dead_since = dead_since or time.monotonic()
            if time.monotonic() - dead_since > (2 if daemon else 30):
                log(f"  contender exited ({proc.exited}) before the receiver got everything")
                break
        time.sleep(0.02)
    return rx.kill() if rx.p.poll() is None else rx.wait()


def free_port():
    return int(subprocess.check_output([tool("receiver"), "--free-port"]).decode())


# ---------------------------------------------------------------------------
# contenders


class Ctx:
    """What one trial hands to a contender: where the input is, where to send."""

    def __init__(self, d, in_dir, in_file, addrs, archive_dir=None, max_files=100):
        self.d = d
        self.in_dir = in_dir
        self.in_file = in_file          # the single file (baselines need it)
        self.addrs = addrs              # "127.0.0.1:PORT" per TCP sink
        self.archive_dir = archive_dir  # None = no archive sink
        self.max_files = max_files
        self.metrics_port = None


class Contender(abc.ABC):
    """One program under test; each kind says how it is started."""
    kind = "baseline"
    name = "?"
    live_capable = False  # can follow a growing file

    @abc.abstractmethod
    def argv(self, ctx):
        """The command line that starts this contender for trial context `ctx`."""

    def env(self):
        return None

    def start(self, ctx):
        return Proc(self.argv(ctx), os.path.join(ctx.d, "contender.log"), env=self.env())


class Baseline(Contender):
    def __init__(self, mode, label=None):
        self.mode = mode
        self.name = label or mode
        self.live_capable = mode == "follow"

    def argv(self, ctx):
        arch = os.path.join(ctx.archive_dir, "baseline.log") if ctx.archive_dir else "-"
        return [tool("baseline"), self.mode, ctx.in_file, arch] + ctx.addrs


class Rsyslog(Contender):
    kind = "peer"
    name = "rsyslog"
    live_capable = True

    def argv(self, ctx):
        work = os.path.join(ctx.d, "rsyslog-work")
        os.makedirs(work, exist_ok=True)
        conf = os.path.join(ctx.d, "rsyslog.conf")
        acts = []
        for a in ctx.addrs:
            host, port = a.rsplit(":", 1)
            acts.append(f'  action(type="omfwd" target="{host}" port="{port}" protocol="tcp" template="raw"\n'
                        f'         action.resumeRetryCount="-1" action.resumeInterval="1")')
        if ctx.archive_dir:
            acts.append(f'  action(type="omfile" file="{ctx.archive_dir}/rsyslog.log" template="raw")')
        text = f"""# generated by bench/bench.py: imfile -> omfwd (raw line, no syslog header)
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile" mode="inotify")
template(name="raw" type="string" string="%msg%\\n")
input(type="imfile" file="{ctx.in_dir}/*.log" tag="bench" ruleset="fwd" addMetadata="off")
ruleset(name="fwd") {{
{chr(10).join(acts)}
}}
"""
        open(conf, "w").write(text)
        return ["rsyslogd", "-n", "-f", conf, "-i", os.path.join(ctx.d, "rsyslog.pid")]


class SyslogNg(Contender):
    kind = "peer"
    name = "syslog-ng"
    live_capable = True

    def env(self):
        e = dict(os.environ)
        e["LD_LIBRARY_PATH"] = os.path.join(SYSLOG_NG_ROOT, "usr/lib/syslog-ng")
        return e

    def argv(self, ctx):
        conf = os.path.join(ctx.d, "syslog-ng.conf")
        dests, names = [], []
        for i, a in enumerate(ctx.addrs):
            host, port = a.rsplit(":", 1)
            dests.append(f'destination d_c{i} {{ network("{host}" port({port}) transport("tcp") '
                         f'template("${{MESSAGE}}\\n") time-reopen(1) persist-name("d_c{i}")); }};')
            names.append(f"destination(d_c{i});")
        if ctx.archive_dir:
            dests.append(f'destination d_arch {{ file("{ctx.archive_dir}/syslog-ng.log" template("${{MESSAGE}}\\n")); }};')
            names.append("destination(d_arch);")
        mf = max(ctx.max_files, 100)
        iw = max(100000, mf * 100)  # syslog-ng divides log-iw-size among max-files readers
        text = f"""@version: 3.38
# generated by bench/bench.py: file source, no parsing -> raw line over TCP.
# Throughput tuning (syslog-ng's documented knobs; defaults ran 1.5-15x slower here):
# a large flow-control window, a bigger fetch batch, and a destination queue to match.
options {{ stats-freq(0); log-fifo-size({iw}); }};
source s_in {{ wildcard-file(base-dir("{ctx.in_dir}") filename-pattern("*.log") flags(no-parse)
                 max-files({mf}) log-iw-size({iw}) log-fetch-limit(1000)); }};
{chr(10).join(dests)}
log {{ source(s_in); {' '.join(names)} flags(flow-control); }};
"""
        open(conf, "w").write(text)
        moddir = os.path.join(SYSLOG_NG_ROOT, "usr/lib/syslog-ng")
        sub = sorted(x for x in os.listdir(moddir) if x.startswith("3."))
        return [os.path.join(SYSLOG_NG_ROOT, "usr/sbin/syslog-ng"), "-F", "--stderr", "--no-caps",
                f"--module-path={os.path.join(moddir, sub[0])}", "-f", conf,
                "-R", os.path.join(ctx.d, "syslog-ng.persist"), "-p", os.path.join(ctx.d, "syslog-ng.pid"),
                "-c", os.path.join(ctx.d, "syslog-ng.ctl")]


class Agent(Contender):
    kind = "agent"
    live_capable = True

    def __init__(self, lockstep=True, extra=None):
        self.lockstep = lockstep
        self.extra = extra or {}
        self.name = "logsplice" + ("" if lockstep else " (lockstep=false)")

    def config(self, ctx):
        data = os.path.join(ctx.d, "agent-data")
        os.makedirs(data, exist_ok=True)
        lines = [f"agent:",
                 f"  data_dir: {data}",
                 f"  log_level: warn",
                 f"  lockstep: {'true' if self.lockstep else 'false'}"]
        if ctx.metrics_port:
            lines.append(f"  metrics: {{ listen: \"127.0.0.1:{ctx.metrics_port}\" }}")
        lines += ["inputs:",
                  f"  - {{ name: bench, paths: [\"{ctx.in_dir}/*.log\"], start_at: beginning }}",
                  "outputs:"]
        for i, a in enumerate(ctx.addrs):
            extra = self.extra.get("tcp", "")
            lines.append(f"  - {{ name: c{i + 1}, type: tcp, addresses: [\"{a}\"], inputs: [bench]{extra} }}")
        if ctx.archive_dir:
            lines.append(f"  - {{ name: arch, type: archive, dir: {ctx.archive_dir}, inputs: [bench] }}")
        path = os.path.join(ctx.d, "logsplice.yaml")
        open(path, "w").write("\n".join(lines) + "\n")
        return path

    def argv(self, ctx):
        return [AGENT_BIN, "run", "--config", self.config(ctx)]


class FrameBaseline(Contender):
    """bench/src/frame_baseline: read + frame (syslog octet-counted or NDJSON) + write; the
    denominator of the `events` scenario. It cannot follow a growing file."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.name = f"frame baseline ({fmt})"

    def argv(self, ctx):
        host, port = ctx.addrs[0].rsplit(":", 1)
        return [tool("frame_baseline")] + (["--json"] if self.fmt == "json" else []) + \
            [ctx.in_file, host, port]


class EventAgent(Agent):
    """logsplice with a `format: syslog` (octet counting) or `format: json` tcp output."""

    def __init__(self, fmt):
        super().__init__(extra={"tcp": f", format: {fmt}"})
        self.fmt = fmt
        self.name = f"logsplice ({fmt})"

    def config(self, ctx):
        path = super().config(ctx)
        text = open(path).read().replace("agent:\n", "agent:\n  hostname: bench\n", 1)
        open(path, "w").write(text)
        return path


class RsyslogEvents(Rsyslog):
    """rsyslog imfile -> omfwd as RFC 5424 (RSYSLOG_SyslogProtocol23Format, octet-counted
    framing) or as one JSON object per line (a jsonf list template, LF framing)."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.name = f"rsyslog ({fmt})"

    def argv(self, ctx):
        work = os.path.join(ctx.d, "rsyslog-work")
        os.makedirs(work, exist_ok=True)
        conf = os.path.join(ctx.d, "rsyslog.conf")
        host, port = ctx.addrs[0].rsplit(":", 1)
        if self.fmt == "syslog":
            tpl, framing = "RSYSLOG_SyslogProtocol23Format", 'TCP_Framing="octet-counted"'
            extra_tpl = ""
        else:
            tpl, framing = "bench_json", ""
            extra_tpl = """template(name="bench_json" type="list" option.jsonf="on") {
  property(outname="timestamp" name="timegenerated" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="input" name="app-name" format="jsonf")
  property(outname="file" name="$!metadata!filename" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}
"""
        text = f"""# generated by bench/bench.py: imfile -> omfwd, {self.fmt} events
global(workDirectory="{work}" maxMessageSize="64k" localHostname="bench")
module(load="imfile" mode="inotify")
{extra_tpl}input(type="imfile" file="{ctx.in_dir}/*.log" tag="bench" ruleset="fwd"
      addMetadata="{'on' if self.fmt == 'json' else 'off'}")
ruleset(name="fwd") {{
  action(type="omfwd" target="{host}" port="{port}" protocol="tcp" template="{tpl}" {framing}
         action.resumeRetryCount="-1" action.resumeInterval="1")
}}
"""
        open(conf, "w").write(text)
        return ["rsyslogd", "-n", "-f", conf, "-i", os.path.join(ctx.d, "rsyslog.pid")]


class SyslogNgEvents(SyslogNg):
    """syslog-ng wildcard-file -> syslog() destination (RFC 5424, octet-counted framing) or
    network() with $(format-json) (one object per line)."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.name = f"syslog-ng ({fmt})"

    def argv(self, ctx):
        argv = super().argv(ctx)
        conf = os.path.join(ctx.d, "syslog-ng.conf")
        host, port = ctx.addrs[0].rsplit(":", 1)
        if self.fmt == "syslog":
            dest = (f'destination d_c0 {{ syslog("{host}" port({port}) transport("tcp") '
                    f'time-reopen(1) persist-name("d_c0")); }};')
        else:
            dest = (f'destination d_c0 {{ network("{host}" port({port}) transport("tcp") '
                    'template("$(format-json --scope none timestamp=${ISODATE} host=${HOST} '
                    'input=bench file=${FILE_NAME} message=${MESSAGE})\\n") '
                    'time-reopen(1) persist-name("d_c0")); };')
        text = open(conf).read()
        text = re.sub(r"^destination d_c0 .*$", lambda m: dest, text, count=1, flags=re.M)
        text = text.replace("options {", 'options { use-dns(no); keep-hostname(no); '
                            'custom-domain(""); ', 1).replace("flags(no-parse)",
                                                             'flags(no-parse) program-override("bench")', 1)
        open(conf, "w").write(text)
        return argv


# ---------------------------------------------------------------------------
# trials


class Workspace:
    def __init__(self):
        self.root = CFG["work"]
        os.makedirs(self.root, exist_ok=True)
        self.data = os.path.join(self.root, "data")
        os.makedirs(self.data, exist_ok=True)
        self.n = 0

    def trial_dir(self, tag):
        self.n += 1
        d = os.path.join(self.root, "t", f"{self.n:04d}-{tag}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "in"))
        return d

    def source(self, size):
        """a generated log file of `size` bytes, created once, kept warm in the page cache"""
        path = os.path.join(self.data, f"src-{size}-{CFG['seed']}.log")
        meta = path + ".meta"
        if not (os.path.exists(path) and os.path.exists(meta) and os.path.getsize(path) == size):
            log(f"generating {size} bytes -> {path}")
            out = subprocess.check_output([tool("loggen"), "file", path, str(size), str(CFG["seed"])]).decode()
            open(meta, "w").write(out)
        warm(path)
        kv = dict(x.split("=") for x in open(meta).read().split())
        return path, int(kv["lines"])

    def clean_trials(self):
        shutil.rmtree(os.path.join(self.root, "t"), ignore_errors=True)


def warm(path):
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def dir_bytes(d):
    total = 0
    for root, _, files in os.walk(d):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def wait_open(proc, path, timeout=15):
    """until the process holds `path` open (it has found the file), or timeout"""
    end = time.monotonic() + timeout
    real = os.path.realpath(path)
    while time.monotonic() < end and proc.alive():
        try:
            for fd in os.listdir(f"/proc/{proc.pid}/fd"):
                try:
                    if os.readlink(f"/proc/{proc.pid}/fd/{fd}") == real:
                        return True
                except OSError:
                    pass
        except OSError:
            pass
        time.sleep(0.05)
    return False


def transfer_trial(ws, c, scenario, src, nsinks, archive):
    """A file present from the start -> nsinks TCP sinks (+ archive). Throughput, CPU, RSS."""
    size = os.path.getsize(src)
    d = ws.trial_dir(f"{scenario}-{c.name.replace(' ', '_')}")
    in_file = os.path.join(d, "in", "access.log")
    os.link(src, in_file)
    arch_dir = None
    if archive:
        arch_dir = os.path.join(d, "archive")
        os.makedirs(arch_dir)
    rx = None
    if nsinks:
        rx = Receiver(d, mode="splice", expect_bytes=size * nsinks)
    ctx = Ctx(d, os.path.join(d, "in"), in_file, [rx.addr] * nsinks if rx else [], arch_dir)
    proc = c.start(ctx)
    t0 = proc.t_start
    deadline = t0 + CFG["timeout"]
    res = {"scenario": scenario, "contender": c.name, "kind": c.kind, "bytes": size, "sinks": nsinks,
           "archive": archive}
    ok = True
    t_done = t0
    if rx:
        r = wait_rx(rx, proc, CFG["timeout"], daemon=c.kind != "baseline")
        res["rx"] = r
        ok = r["status"] == "done" and r["bytes"] == size * nsinks
        t_done = max(t_done, r["t_last"])
    if arch_dir:
        while time.monotonic() < deadline:
            if dir_bytes(arch_dir) >= size:
                break
            if not proc.alive() and dir_bytes(arch_dir) < size:
                break
            time.sleep(0.01)
        got = dir_bytes(arch_dir)
        res["archive_bytes"] = got
        ok = ok and got == size
        t_done = max(t_done, time.monotonic() if got >= size else t_done)
    if c.kind == "baseline":
        proc.wait_exit(30)
    at_done = proc.sample_now()
    proc.stop()
    res.update(ok=ok, wall_s=t_done - t0, cpu_s=proc.cpu_total(), maxrss_kib=proc.maxrss_kib(),
               cpu_at_done_s=at_done[0] if at_done else None, exit=proc.exited)
    if ok:
        res["mb_s"] = size / 1e6 / res["wall_s"]
        res["cpu_s_per_gb"] = res["cpu_s"] / (size / 1e9)
    else:
        log(f"  {c.name}: FAILED {scenario} (rx={res.get('rx', {}).get('status')}, "
            f"bytes={res.get('rx', {}).get('bytes')}, archive={res.get('archive_bytes')}); see {d}")
        res["trial_dir"] = d
    return res, d


def events_trial(ws, c, src, lines, fmt):
    """A file present from the start -> 1 receiver as events (syslog: octet-counted frames,
    json: one object per line), counted as frames/lines since the framed size differs per
    contender. MB/s and CPU s per GB are per byte of the source file."""
    size = os.path.getsize(src)
    d = ws.trial_dir(f"events-{fmt}-{re.sub(r'[^A-Za-z0-9]+', '_', c.name)}")
    in_file = os.path.join(d, "in", "access.log")
    os.link(src, in_file)
    rx = Receiver(d, mode="octet" if fmt == "syslog" else "read", expect_lines=lines)
    ctx = Ctx(d, os.path.join(d, "in"), in_file, [rx.addr])
    proc = c.start(ctx)
    t0 = proc.t_start
    res = {"scenario": f"events-{fmt}", "contender": c.name, "kind": c.kind, "bytes": size,
           "lines": lines, "format": fmt}
    r = wait_rx(rx, proc, CFG["timeout"], daemon=c.kind != "baseline")
    res["rx"] = r
    ok = r["status"] == "done" and r["lines"] == lines and not r.get("bad_frames")
    if c.kind == "baseline":
        proc.wait_exit(30)
    proc.stop()
    res.update(ok=ok, wall_s=r["t_last"] - t0, cpu_s=proc.cpu_total(), maxrss_kib=proc.maxrss_kib(),
               out_bytes=r.get("bytes"), exit=proc.exited)
    if ok:
        res["mb_s"] = size / 1e6 / res["wall_s"]
        res["cpu_s_per_gb"] = res["cpu_s"] / (size / 1e9)
    else:
        log(f"  {c.name}: FAILED events-{fmt} (rx={r.get('status')}, lines={r.get('lines')}/{lines},"
            f" bad_frames={r.get('bad_frames')}); see {d}")
        res["trial_dir"] = d
    return res, d


def live_trial(ws, c, rate, seconds, rx_mode=None, scenario="live"):
    d = ws.trial_dir(f"{scenario}{rate}-{re.sub(r'[^A-Za-z0-9]+', '_', c.name)}")
    in_file = os.path.join(d, "in", "access.log")
    open(in_file, "w").close()
    lines = int(rate * seconds + 0.5)
    rx = Receiver(d, mode=rx_mode, expect_lines=lines, latency=True, timeout=seconds + 120)
    ctx = Ctx(d, os.path.join(d, "in"), in_file, [rx.addr])
    proc = c.start(ctx)
    res = {"scenario": f"{scenario}-{rate}", "contender": c.name, "kind": c.kind, "rate": rate, "seconds": seconds}
    if not wait_open(proc, in_file):
        log(f"  {c.name}: never opened {in_file}")
    time.sleep(0.5)
    s0 = proc.sample_now()
    t0 = time.monotonic()
    gen = subprocess.Popen([tool("loggen"), "append", in_file, str(rate), str(seconds), str(CFG["seed"])],
                           stdout=subprocess.PIPE)
    gen_out = gen.communicate()[0].decode()
    r = wait_rx(rx, proc, seconds + 120)
    t1 = time.monotonic()
    s1 = proc.sample_now()
    proc.stop()
    res["rx"] = r
    res["gen"] = gen_out.strip()
    res["ok"] = r["status"] == "done" and r["lines"] == lines
    if s0 and s1:
        res["cpu_s"] = s1[0] - s0[0]
        res["cpu_pct"] = 100 * res["cpu_s"] / (t1 - t0)
        _, res["rss_max_kib"] = proc.window(t0, t1)
    res["maxrss_kib"] = proc.maxrss_kib()
    res["lat_p50_ms"] = r.get("lat_p50_ms")
    res["lat_p99_ms"] = r.get("lat_p99_ms")
    res["lat_max_ms"] = r.get("lat_max_ms")
    if not res["ok"]:
        log(f"  {c.name}: live {rate}/s incomplete: {r.get('status')} lines {r.get('lines')}/{lines}; see {d}")
        res["trial_dir"] = d
    return res, d


def outage_trial(ws, c, nbytes, hold):
    d = ws.trial_dir(f"outage-{c.name.replace(' ', '_')}")
    in_file = os.path.join(d, "in", "access.log")
    open(in_file, "w").close()
    port = free_port()
    ctx = Ctx(d, os.path.join(d, "in"), in_file, [f"127.0.0.1:{port}"])
    proc = c.start(ctx)
    res = {"scenario": "outage", "contender": c.name, "kind": c.kind, "bytes_appended": nbytes}
    wait_open(proc, in_file)
    time.sleep(0.5)
    t_app = time.monotonic()
    gen = subprocess.run([tool("loggen"), "append", in_file, "0", f"bytes:{nbytes}", str(CFG["seed"])],
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    t_app_end = time.monotonic()
    time.sleep(hold)
    size = os.path.getsize(in_file)
    s_before = proc.sample_now()
    t_back = time.monotonic()
    rx = Receiver(d, port=port, mode="splice", expect_bytes=size)
    r = wait_rx(rx, proc, CFG["timeout"])
    s_after = proc.sample_now()
    proc.stop()
    base = [s for s in proc.samples if s[0] < t_app]
    res.update(gen=gen.strip(), rx=r, ok=r["status"] == "done" and r["bytes"] == size,
               append_s=t_app_end - t_app,
               rss_before_kib=base[-1][2] if base else None,
               rss_outage_max_kib=max([s[2] for s in proc.samples if t_app <= s[0] <= t_back] or [0]),
               rss_catchup_max_kib=max([s[2] for s in proc.samples if s[0] >= t_back] or [0]),
               maxrss_kib=proc.maxrss_kib(),
               catchup_s=(r["t_last"] - t_back) if r.get("t_last") else None,
               first_byte_after_s=(r["t_first"] - t_back) if r.get("t_first") else None,
               cpu_outage_s=(s_before[0] - proc.samples[0][1]) if s_before and proc.samples else None,
               cpu_catchup_s=(s_after[0] - s_before[0]) if s_before and s_after else None,
               timeline=[(round(s[0] - t_app, 2), s[2]) for s in proc.samples],
               t_back_rel=t_back - t_app)
    if not res["ok"]:
        log(f"  {c.name}: outage catch-up incomplete: {r.get('status')} {r.get('bytes')}/{size}; see {d}")
        res["trial_dir"] = d
    return res, d


def glob_trial(ws, c, nfiles, active, rate, seconds):
    d = ws.trial_dir(f"glob-{c.name.replace(' ', '_')}")
    in_dir = os.path.join(d, "in")
    subprocess.run([tool("loggen"), "mkfiles", in_dir, str(nfiles), str(CFG["seed"])], check=True,
                   stdout=subprocess.DEVNULL)
    total = nfiles + int(rate * seconds + 0.5)
    # Latency only for the lines appended while files grow: the first line of each file is
    # stamped by mkfiles, not at its write.
    rx = Receiver(d, expect_lines=total, timeout=CFG["timeout"], latency=True, latency_skip=nfiles)
    ctx = Ctx(d, in_dir, None, [rx.addr], max_files=nfiles * 2)
    proc = c.start(ctx)
    res = {"scenario": "glob", "contender": c.name, "kind": c.kind, "files": nfiles, "active": active,
           "rate": rate, "seconds": seconds}
    end = time.monotonic() + min(CFG["timeout"], CFG["glob_scan_timeout"])
    while rx.lines_so_far() < nfiles and time.monotonic() < end and proc.alive() and rx.p.poll() is None:
        time.sleep(0.05)
    t_scan = time.monotonic()
    res["initial_lines"] = rx.lines_so_far()
    res["scan_s"] = t_scan - proc.t_start
    s_scan = proc.sample_now()
    res["scan_cpu_s"] = s_scan[0] if s_scan else None
    res["rss_after_scan_kib"] = s_scan[1] if s_scan else None
    # Idle: every file shipped, nothing written. What following N files costs by itself.
    time.sleep(1.0)
    si0 = proc.sample_now()
    ti0 = time.monotonic()
    time.sleep(CFG["glob_idle_seconds"])
    si1 = proc.sample_now()
    if si0 and si1:
        res["idle_cpu_pct"] = 100 * (si1[0] - si0[0]) / (time.monotonic() - ti0)
        res["idle_rss_kib"] = si1[1]
    s0 = proc.sample_now()
    t0 = time.monotonic()
    gen = subprocess.run([tool("loggen"), "multi", in_dir, str(nfiles), str(active), str(rate), str(seconds),
                          str(CFG["seed"])], stdout=subprocess.PIPE, check=True).stdout.decode()
    r = wait_rx(rx, proc, 60 + seconds)
    t1 = time.monotonic()
    s1 = proc.sample_now()
    proc.stop()
    res.update(gen=gen.strip(), rx=r, ok=r["status"] == "done" and r["lines"] == total,
               maxrss_kib=proc.maxrss_kib(), lat_p50_ms=r.get("lat_p50_ms"), lat_p99_ms=r.get("lat_p99_ms"),
               lat_max_ms=r.get("lat_max_ms"))
    if s0 and s1:
        res["cpu_s"] = s1[0] - s0[0]
        res["cpu_pct"] = 100 * res["cpu_s"] / (t1 - t0)
        res["rss_kib"] = s1[1]
    if not res["ok"]:
        log(f"  {c.name}: glob incomplete: {r.get('status')} lines {r.get('lines')}/{total}; see {d}")
        res["trial_dir"] = d
    return res, d


IO_SYSCALLS = ["read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2",
               "pwritev2", "send", "sendto", "sendmsg", "sendmmsg", "recv", "recvfrom", "recvmsg", "recvmmsg"]
ZC_SYSCALLS = ["splice", "tee", "sendfile", "copy_file_range", "vmsplice"]


def parse_strace(path):
    """{syscall: [calls, bytes returned]} from an `strace -f -o` log"""
    import re
    done = re.compile(r"^(?:\d+\s+)?(\w+)\(.*\)\s+=\s+(-?\d+)")
    resumed = re.compile(r"^(?:\d+\s+)?<\.\.\. (\w+) resumed>.*\)\s+=\s+(-?\d+)")
    out = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = done.match(line) or resumed.match(line)
            if not m:
                continue
            name, ret = m.group(1), int(m.group(2))
            e = out.setdefault(name, [0, 0])
            e[0] += 1
            if ret > 0:
                e[1] += ret
    return out


def fetch_metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
            return r.read().decode(errors="replace")
    except Exception as e:  # noqa: BLE001 - the endpoint may simply not exist yet
        return f"# unavailable: {e}"


def zerocopy_trial(ws, c, src):
    size = os.path.getsize(src)
    d = ws.trial_dir(f"zc-{c.name.replace(' ', '_')}")
    in_file = os.path.join(d, "in", "access.log")
    os.link(src, in_file)
    rx = Receiver(d, mode="splice", expect_bytes=size)
    ctx = Ctx(d, os.path.join(d, "in"), in_file, [rx.addr])
    if c.kind == "agent":
        ctx.metrics_port = free_port()
    trace = os.path.join(d, "strace.log")
    inner = c.argv(ctx)
    argv = ["strace", "-f", "-qq", "-s", "0", "-e", "signal=none",
            "-e", "trace=" + ",".join(IO_SYSCALLS + ZC_SYSCALLS), "-o", trace] + inner
    proc = Proc(argv, os.path.join(d, "contender.log"), env=c.env())
    r = wait_rx(rx, proc, CFG["timeout"], daemon=c.kind != "baseline")
    metrics = fetch_metrics(ctx.metrics_port) if ctx.metrics_port else None
    # stop the traced program itself (strace's child), then strace
    try:
        kids = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
        for k in kids:
            os.kill(int(k), signal.SIGTERM)
    except OSError:
        pass
    proc.wait_exit(20)
    proc.stop()
    sc = parse_strace(trace) if os.path.exists(trace) else {}
    copied = sum(v[1] for k, v in sc.items() if k in IO_SYSCALLS)
    zc = sum(v[1] for k, v in sc.items() if k in ZC_SYSCALLS)
    res = {"scenario": "zerocopy", "contender": c.name, "kind": c.kind, "bytes": size, "rx": r,
           "ok": r["status"] == "done" and r["bytes"] == size, "syscalls": sc,
           "copy_bytes": copied, "copy_ratio": copied / size, "zc_bytes": zc, "zc_ratio": zc / size}
    if metrics is not None:
        res["metrics_bytes_copied"] = [ln for ln in metrics.splitlines()
                                       if "bytes_copied" in ln and not ln.startswith("#")] or metrics[:200]
    if not res["ok"]:
        res["trial_dir"] = d
        log(f"  {c.name}: zero-copy run incomplete ({r.get('status')}, {r.get('bytes')}/{size}); see {d}")
    os.unlink(trace) if res["ok"] and os.path.exists(trace) else None
    return res, d


# ---------------------------------------------------------------------------
# agent detection


def agent_status():
    """'ok', or why the agent is left out ('n/a: ...')"""
    if not os.access(AGENT_BIN, os.X_OK):
        return "n/a: build/logsplice not built"
    ws = Workspace()
    d = ws.trial_dir("agent-probe")
    in_file = os.path.join(d, "in", "access.log")
    out = subprocess.check_output([tool("loggen"), "file", in_file, "65536", "7"]).decode()
    rx = Receiver(d, mode="splice", expect_bytes=65536, timeout=15)
    ctx = Ctx(d, os.path.join(d, "in"), in_file, [rx.addr])
    try:
        proc = Agent().start(ctx)
    except OSError as e:
        rx.kill()
        return f"n/a: cannot start: {e}"
    r = wait_rx(rx, proc, 20)
    proc.stop()
    tail = open(os.path.join(d, "contender.log"), errors="replace").read()[-300:].strip()
    shutil.rmtree(d, ignore_errors=True)
    if r["status"] == "done" and r["bytes"] == 65536:
        return "ok"
    return f"n/a: probe shipped {r['bytes']} of 65536 bytes ({out.strip()}); agent said: {tail!r}"


# Free page reporting (virtio-balloon): a guest that hands its free pages back to the host pays a
# host page fault when it touches them again. With the reporting delay at 0 (seen on this VM) the
# pages of one trial's deleted files are back with the host when the next trial's receiver fills
# its page cache: writing 1 GiB of new page cache took 1.1-1.3 s of system time there, 0.15 s
# with a 60 s delay, the same copy. That lands on whichever contender allocates, at random, so
# LSB_PAGE_REPORTING_MIN_FREE_MS sets the delay for the run and puts the old value back at exit.
PAGE_REPORTING = "/sys/module/page_reporting/parameters"


def _page_reporting(name):
    try:
        return int(open(os.path.join(PAGE_REPORTING, name)).read().strip())
    except (OSError, ValueError):
        return None


def hold_freed_pages():
    """Applies LSB_PAGE_REPORTING_MIN_FREE_MS; returns a function that restores the old value."""
    want = os.environ.get("LSB_PAGE_REPORTING_MIN_FREE_MS")
    old = _page_reporting("min_free_ms")
    if not want or old is None:
        return lambda: None
    path = os.path.join(PAGE_REPORTING, "min_free_ms")
    try:
        with open(path, "w") as f:
            f.write(want)
    except OSError as e:  # the module caps it (300000 was taken here, 600000 refused)
        sys.exit(f"LSB_PAGE_REPORTING_MIN_FREE_MS={want}: {path} refused it ({e.strerror})")
    log(f"free page reporting: min_free_ms {old} -> {want} for this run")

    def restore():
        with open(path, "w") as f:
            f.write(str(old))
    return restore


def tool_versions():
    v = {}
    try:
        v["rsyslog"] = subprocess.check_output(["dpkg-query", "-W", "-f=${Version}", "rsyslog"]).decode()
    except (OSError, subprocess.CalledProcessError):
        v["rsyslog"] = "missing"
    vf = os.path.join(os.path.dirname(SYSLOG_NG_ROOT), "VERSION")
    v["syslog-ng"] = open(vf).read().strip() if os.path.exists(vf) else "missing"
    v["kernel"] = os.uname().release
    # Loopback throughput depends on it: BBR paces even on lo, and the agents then spend more CPU.
    try:
        v["tcp_cc"] = open("/proc/sys/net/ipv4/tcp_congestion_control").read().strip()
    except OSError:
        v["tcp_cc"] = "unknown"
    try:
        v["logsplice"] = subprocess.run([AGENT_BIN, "--version"], capture_output=True, timeout=5).stdout.decode().strip()
    except (OSError, subprocess.TimeoutExpired):
        v["logsplice"] = "missing"
    v["cpus"] = os.cpu_count()
    v["page_reporting_min_free_ms"] = _page_reporting("min_free_ms")  # None: no such module
    return v


# ---------------------------------------------------------------------------


def rotate(seq, k):
    k %= len(seq)
    return seq[k:] + seq[:k]


def main():
    restore = hold_freed_pages()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # restores on the way out too
    try:
        run_all()
    finally:
        restore()


def run_all():
    raise_nofile()
    scenarios = sys.argv[1:] or ["catchup", "fanout", "archive", "live", "outage", "glob", "zerocopy",
                                 "events", "tls", "manyfiles"]
    out_dir = os.environ.get("LSB_OUT", os.path.join(BENCH, "out"))
    os.makedirs(out_dir, exist_ok=True)
    ws = Workspace()
    agent = agent_status()
    log(f"agent: {agent}")
    use_agent = agent == "ok"
    peers = [Rsyslog(), SyslogNg()]
    results = []
    raw_path = os.path.join(out_dir, "raw.json")

    def save():
        meta = {"config": CFG, "versions": tool_versions(), "agent": agent, "scenarios": scenarios,
                "time": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        with open(raw_path + ".tmp", "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
        os.replace(raw_path + ".tmp", raw_path)

    def run_reps(name, contenders, fn, reps):
        for rep in range(reps):
            for c in rotate(contenders, rep):
                log(f"{name} rep {rep + 1}/{reps}: {c.name}")
                reported = _page_reporting("reported_kib")
                try:
                    res, d = fn(c)
                except Exception as e:  # noqa: BLE001 - one broken trial must not end the run
                    log(f"  {c.name}: error {e!r}")
                    res, d = {"scenario": name, "contender": c.name, "kind": c.kind, "ok": False,
                              "error": repr(e)}, None
                res["rep"] = rep
                if reported is not None:  # memory handed back to the host during the trial
                    res["reported_to_host_kib"] = _page_reporting("reported_kib") - reported
                results.append(res)
                if d and res.get("ok"):
                    shutil.rmtree(d, ignore_errors=True)
                save()

    reps = CFG["reps"]
    agents = [Agent()] if use_agent else []

    def src_for(c, size=None):
        """the source file contender c processes: peers get the smaller peer_size one"""
        size = size or CFG["size"]
        return ws.source(min(size, CFG["peer_size"]) if c.kind == "peer" else size)
    if "catchup" in scenarios:
        cs = [Baseline("splice"), Baseline("sendfile"), Baseline("rw", "read/write")] + peers + agents
        run_reps("catchup", cs, lambda c: transfer_trial(ws, c, "catchup", src_for(c)[0], 1, False), reps)
    if "fanout" in scenarios:
        cs = [Baseline("fanout-tee", "tee+splice"), Baseline("fanout-rw", "read once, write N")] + peers
        if use_agent:
            cs += [Agent(True), Agent(False)]
        n = CFG["fanout_sinks"]
        run_reps("fanout", cs, lambda c: transfer_trial(ws, c, "fanout", src_for(c)[0], n, True), reps)
    if "archive" in scenarios:
        cs = [Baseline("archive-splice", "splice"), Baseline("archive-rw", "read/write")] + peers + agents
        run_reps("archive", cs, lambda c: transfer_trial(ws, c, "archive", src_for(c)[0], 0, True), reps)
    if "live" in scenarios:
        cs = [Baseline("follow", "inotify+splice")] + peers + agents
        for rate in CFG["live_rates"]:
            run_reps(f"live-{rate}", cs, lambda c, rate=rate: live_trial(ws, c, rate, CFG["live_seconds"]),
                     CFG["live_reps"] or reps)
    if "outage" in scenarios:
        cs = peers + agents
        run_reps("outage", cs, lambda c: outage_trial(ws, c, CFG["outage_bytes"], CFG["outage_hold"]),
                 SLOW_REPS["outage"] or reps)
    if "glob" in scenarios:
        cs = peers + agents
        n = CFG["glob_files"]
        active = max(1, int(n * CFG["glob_active_pct"] / 100))
        gave_up = set()

        def glob_once(c):
            if c.name in gave_up:  # it could not ship the first lines in time: once is enough
                return {"scenario": "glob", "contender": c.name, "kind": c.kind, "ok": False,
                        "skipped": "incomplete in an earlier rep"}, None
            res, d = glob_trial(ws, c, n, active, CFG["glob_rate"], CFG["glob_seconds"])
            if res.get("initial_lines", 0) < n:
                gave_up.add(c.name)
            return res, d
        run_reps("glob", cs, glob_once, SLOW_REPS["glob"] or reps)
    if "zerocopy" in scenarios:
        src, _ = ws.source(CFG["zc_size"])
        cs = [Baseline("splice"), Baseline("sendfile"), Baseline("rw", "read/write")] + peers + agents
        run_reps("zerocopy", cs, lambda c: zerocopy_trial(ws, c, src), SLOW_REPS["zerocopy"])
    if "events" in scenarios:
        for fmt in ("syslog", "json"):
            cs = [FrameBaseline(fmt), RsyslogEvents(fmt), SyslogNgEvents(fmt)]
            if use_agent:
                cs.append(EventAgent(fmt))
            run_reps(f"events-{fmt}", cs,
                     lambda c, fmt=fmt: events_trial(ws, c, *src_for(c), fmt), reps)
        # live tail as syslog: no baseline (frame_baseline does not follow a file)
        cs = [RsyslogEvents("syslog"), SyslogNgEvents("syslog")] + \
            ([EventAgent("syslog")] if use_agent else [])
        rate = CFG["events_live_rate"]
        run_reps(f"events-live-{rate}", cs,
                 lambda c: live_trial(ws, c, rate, CFG["live_seconds"], rx_mode="octet",
                                      scenario="events-live"), CFG["live_reps"] or reps)
    if "tls" in scenarios:
        import scenario_tls  # bench/scenario_tls.py
        scenario_tls.run(sys.modules[__name__], ws, run_reps, use_agent)
    if "kafka" in scenarios:
        import scenario_kafka
        scenario_kafka.run({"ws": ws, "run_reps": run_reps, "use_agent": use_agent, "CFG": CFG,
                            "Proc": Proc, "tool": tool, "log": log, "ROOT": ROOT,
                            "AGENT_BIN": AGENT_BIN})
    if "collect" in scenarios:
        import scenario_collect
        scenario_collect.run(sys.modules[__name__], ws, run_reps, reps)
    if "relp" in scenarios:
        import scenario_relp  # bench/scenario_relp.py: relp output vs rsyslog omrelp
        scenario_relp.run(sys.modules[__name__], ws, run_reps, reps, use_agent)
    if "manyfiles" in scenarios and use_agent:  # the agent alone: bench/scenario_manyfiles.py
        import scenario_manyfiles
        this = sys.modules[__name__]
        run_reps("manyfiles", [scenario_manyfiles.ManyAgent(this)],
                 lambda c: scenario_manyfiles.manyfiles_trial(this, ws),
                 int(os.environ.get("LSB_MANY_REPS", "1")))
    save()
    if os.environ.get("LSB_KEEP") != "1":
        ws.clean_trials()
    log(f"raw results: {raw_path}")


if __name__ == "__main__":
    main()
