"""Harness for logsplice's end-to-end tests (Python standard library only).

Every e2e test is a `unittest` script that imports this module and runs the real binary against
collectors on 127.0.0.1:

    from support import E2ETest, Agent, Collector, LineWriter, main, wait_for, write_config

    class Rotation(E2ETest):
        def test_lines_arrive(self):
            col = self.collector()                       # fake TCP collector on 127.0.0.1:0
            log = LineWriter(self.path("app.log"), tag="app")
            cfg = self.config(inputs=[{"name": "app", "paths": [log.path],
                                       "start_at": "beginning"}],
                              outputs=[{"name": "c", "type": "tcp",
                                        "addresses": [col.address], "inputs": ["app"]}])
            agent = self.agent(cfg)
            log.write(100)
            col.wait_lines(100)
            self.assertLines(log.lines, col.lines())

    if __name__ == "__main__":
        main()

Environment: LOGSPLICE_BIN (set by CTest; default <repo>/build/logsplice), LOGSPLICE_SOURCE_DIR,
LOGSPLICE_KEEP_TMP=1 keeps each test's temp dir, CI (a missing real collector fails, never skips).
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SOURCE_DIR = os.environ.get("LOGSPLICE_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOGSPLICE_BIN = os.environ.get("LOGSPLICE_BIN") or os.path.join(SOURCE_DIR, "build", "logsplice")

# Re-exported: the fake and real collectors (127.0.0.1 only).
from support_net import HOST, Collector, RealCollector, free_port  # noqa: E402,F401


# --- waiting ------------------------------------------------------------------------------

def rss_kib(pid):
    """Resident set size of a process now, in KiB (0 if /proc has no VmRSS line)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_for(predicate, timeout=10.0, what="condition", interval=0.02):
    """Polls `predicate` until it returns something truthy and returns that value.

    Raises AssertionError naming `what` (and the last exception the predicate raised, if any)
    after `timeout` seconds. Use it instead of sleeps for every synchronisation.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_error = None
        except Exception as e:  # a predicate may fail until the thing it reads exists
            last_error = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{detail}")
        time.sleep(interval)


# --- config -------------------------------------------------------------------------------

def _yaml_scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace(
        "\t", "\\t")
    return f'"{escaped}"'


def _yaml_lines(value, indent):
    pad = " " * indent
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                if isinstance(item, list) and all(not isinstance(i, (dict, list)) for i in item):
                    out.append(f"{pad}{key}: [{', '.join(_yaml_scalar(i) for i in item)}]")
                else:
                    out.append(f"{pad}{key}:")
                    out.extend(_yaml_lines(item, indent + 2))
            elif isinstance(item, (dict, list)):
                out.append(f"{pad}{key}: {'{}' if isinstance(item, dict) else '[]'}")
            else:
                out.append(f"{pad}{key}: {_yaml_scalar(item)}")
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                inner = _yaml_lines(item, indent + 2)
                out.append(f"{pad}- {inner[0].lstrip()}")
                out.extend(inner[1:])
            else:
                out.append(f"{pad}- {_yaml_scalar(item)}")
        return out
    return [pad + _yaml_scalar(value)]


def write_config(config, path=None):
    """Formats a dict of dicts/lists/scalars as YAML text (strings double-quoted; lists of
    scalars in flow style) and writes it to `path` when given. Returns the text."""
    text = "\n".join(_yaml_lines(config, 0)) + "\n"
    if path:
        with open(path, "w") as f:
            f.write(text)
    return text


# --- the agent ----------------------------------------------------------------------------

class Agent:
    """One `logsplice run --config PATH` process; its stderr goes to `stderr_path`."""

    def __init__(self, config_path, stderr_path, binary=None, args=()):
        self.config_path = config_path
        self.stderr_path = stderr_path
        self.binary = binary or LOGSPLICE_BIN
        self.args = list(args)
        self.proc = None

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise AssertionError(f"logsplice binary not found at {self.binary} (build it first)")
        with open(self.stderr_path, "ab") as err:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [self.binary, "run", "--config", self.config_path, *self.args],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout=15.0):
        """Waits for the process to exit and returns its exit code (negative: killed by signal)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"logsplice (pid {self.pid}) still running after {timeout:g}s;"
                                 f" stderr:\n{self.stderr_tail()}") from None

    def stop(self, timeout=15.0):
        """SIGTERM, then waits; returns the exit code. A hang is killed and reported."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.wait_exit(timeout)
        except AssertionError:
            self.kill9()
            raise

    def kill9(self):
        """SIGKILL and reap; returns the exit code."""
        if self.proc is None:
            return None
        self.signal(signal.SIGKILL)
        return self.proc.wait()

    def stderr_text(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stderr_tail(self, lines=40):
        return "\n".join(self.stderr_text().splitlines()[-lines:])

    def close(self):
        if self.running():
            self.kill9()


def run_cli(*args, timeout=30.0, binary=None):
    """Runs `logsplice ARGS...` to completion; returns the CompletedProcess (text output)."""
    return subprocess.run([binary or LOGSPLICE_BIN, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


# --- log lines ----------------------------------------------------------------------------

class LineWriter:
    """Appends numbered lines "<tag> <seq> <payload>\\n" to a file, each with one write(2).

    `lines` holds every line written so far (without the newline), in order. `start(rate)`
    writes `rate` lines per second from a thread until `stop()`.
    """

    def __init__(self, path, tag="line", payload_bytes=40):
        self.path = path
        self.tag = tag
        self.payload_bytes = payload_bytes
        self.lines = []
        self._lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()

    def line(self, seq):
        head = f"{self.tag} {seq:08d} "
        fill = "abcdefghijklmnopqrstuvwxyz0123456789"
        payload = (fill * (self.payload_bytes // len(fill) + 1))[:self.payload_bytes]
        return head + payload

    def write(self, count=1):
        """Appends `count` lines now; returns the new lines."""
        with self._lock:
            new = [self.line(len(self.lines) + i) for i in range(count)]
            with open(self.path, "ab") as f:
                for text in new:
                    f.write((text + "\n").encode())
            self.lines.extend(new)
            return new

    def write_raw(self, data):
        """Appends raw bytes (a partial line, binary data); not recorded in `lines`."""
        with self._lock, open(self.path, "ab") as f:
            f.write(data)

    def start(self, rate=100.0):
        def loop():
            next_at = time.monotonic()
            while not self._stop.is_set():
                self.write(1)
                next_at += 1.0 / rate
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        self._stop.clear()
        self._thread = threading.Thread(target=loop, daemon=True, name=f"writer-{self.tag}")
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None


# --- comparing ----------------------------------------------------------------------------

def compare_lines(expected, got, allow_duplicates=False):
    """Returns None when `got` matches `expected`, else a readable report.

    Exact mode: same lines, same order. With allow_duplicates (at-least-once, e.g. after a
    kill -9), lines may repeat, but every expected line must arrive, nothing unexpected may, and
    first arrivals must be in order. The report names the first difference and counts missing,
    duplicate and unexpected lines.
    """
    from collections import Counter
    exp_count, got_count = Counter(expected), Counter(got)
    missing = sum((exp_count - got_count).values())
    duplicates = sum(max(0, got_count[k] - exp_count[k]) for k in got_count if k in exp_count)
    unexpected = sum(n for k, n in got_count.items() if k not in exp_count)
    if allow_duplicates:
        seen, firsts = set(), []
        for line in got:
            if line not in seen:
                seen.add(line)
                firsts.append(line)
        seq, ok = firsts, missing == 0 and unexpected == 0
    else:
        seq, ok = list(got), True
    first_diff = next((i for i, (a, b) in enumerate(zip(expected, seq)) if a != b), None)
    if first_diff is None and len(expected) != len(seq):
        first_diff = min(len(expected), len(seq))
    if ok and first_diff is None:
        return None

    def show(lines, i):
        return repr(_clip(lines[i])) if i < len(lines) else "<end>"
    report = [f"lines differ: expected {len(expected)}, got {len(got)}; missing {missing},"
              f" duplicates {duplicates}, unexpected {unexpected}"]
    if first_diff is not None:
        which = "first arrivals" if allow_duplicates else "got"
        report.append(f"first difference at index {first_diff}: expected {show(expected, first_diff)},"
                      f" {which} {show(seq, first_diff)}")
    return "\n".join(report)


def _clip(line, limit=120):
    return line if len(line) <= limit else line[:limit] + f"...(+{len(line) - limit} chars)"


# --- the test case base -------------------------------------------------------------------

class E2ETest(unittest.TestCase):
    """A test case with a fresh temp dir (`self.tmp`) and helpers whose objects are all stopped
    and removed when the test ends. On failure the agent's stderr is printed."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=f"logsplice-e2e-{self._testMethodName}-")
        self._agents = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        failed = result is not None and any(
            test is self for test, _ in result.failures + result.errors)
        for agent in self._agents:  # already killed by their own cleanups
            if failed and agent.stderr_text():
                sys.stderr.write(f"--- logsplice stderr ({agent.stderr_path}):\n"
                                 f"{agent.stderr_tail(80)}\n")
        if os.environ.get("LOGSPLICE_KEEP_TMP") == "1":
            sys.stderr.write(f"kept {self.tmp}\n")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *parts):
        """A path under this test's temp dir (parent dirs are created)."""
        p = os.path.join(self.tmp, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def config(self, inputs, outputs, agent=None, name="logsplice.yaml"):
        """Writes a config (agent.data_dir defaults to <tmp>/data) and returns its path."""
        agent_cfg = {"data_dir": self.path("data"), "log_level": "debug"}
        agent_cfg.update(agent or {})
        path = self.path(name)
        write_config({"agent": agent_cfg, "inputs": inputs, "outputs": outputs}, path)
        return path

    def agent(self, config_path, start=True, args=()):
        a = Agent(config_path, self.path(f"agent-{len(self._agents)}.stderr"), args=args)
        self._agents.append(a)
        self.addCleanup(a.close)
        return a.start() if start else a

    def collector(self):
        c = Collector().start()
        self.addCleanup(c.close)
        return c

    def real_collector(self, kind):
        """A started rsyslog or syslog-ng (see RealCollector); skipped only outside CI when the
        collector is not installed."""
        ok, why = RealCollector.available(kind)
        if not ok:
            if os.environ.get("CI"):
                self.fail(f"{kind} is not installed ({why}); .ci/run must install it")
            self.skipTest(f"{kind} not installed ({why}): run scripts/install-collectors.sh")
        c = RealCollector(kind, self.path(f"{kind}-{free_port()}")).start()
        self.addCleanup(c.close)
        return c

    def assertLines(self, expected, got, allow_duplicates=False):
        report = compare_lines(expected, got, allow_duplicates)
        if report:
            self.fail(report)


def main():
    """Runs the calling script's tests verbosely; prints 'N passed, N failed, N skipped'."""
    program = unittest.main(module="__main__", exit=False, verbosity=2)
    result = program.result
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    name = os.path.basename(sys.argv[0])
    print(f"{name}: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    sys.exit(1 if failed or result.testsRun == 0 else 0)
