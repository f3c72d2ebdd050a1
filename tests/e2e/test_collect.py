"""Collector mode (issue 16): agents ship their files with `type: logsplice` to `logsplice
collect`, which keeps a byte-identical mirror of each (docs/protocol.md). kill -9 on either side
ends with every mirror equal to its source; hostile bytes on the collector's port are refused
with a logged reason while a good agent keeps delivering; payload never passes through the
collector's memory nor the agent's (strace byte sums of both) and the agent copies only
headers."""
import filecmp
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request

from support import (LOGSPLICE_BIN, E2ETest, LineWriter, free_port, main, run_cli, wait_for,
                     write_config)

TOKEN = "e2e-secret-token"
HEADER = struct.Struct("<B3xIQQ")  # type, stream, offset, length: 24 bytes, little-endian


def msg(mtype, stream=0, offset=0, body=b"", length=None):
    return HEADER.pack(mtype, stream, offset, len(body) if length is None else length) + body


def s16(b):
    return struct.pack("<H", len(b)) + b


def hello(host=b"evil", token=TOKEN.encode(), version=1):
    return msg(1, body=b"LSPL" + struct.pack("<H", version) + s16(host) + s16(b"i") + s16(token))


def open_msg(stream, path, ino=1, input_name=b"in"):
    body = struct.pack("<QQQIQ", 1, ino, 0, 0, 0) + s16(input_name) + s16(path)
    return msg(3, stream=stream, body=body)


def read_msgs(sock, timeout=3.0):
    """Reads until the peer closes (or the timeout): every message as (type, stream, offset,
    body)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    out = []
    while len(data) >= HEADER.size:
        t, s, o, n = HEADER.unpack_from(data)
        out.append((t, s, o, data[HEADER.size:HEADER.size + n]))
        data = data[HEADER.size + n:]
    return out


READS = "read,readv,recvfrom,recvmsg,pread64,preadv,preadv2"


def read_bytes(trace_path):
    """The sum of what every read-family call in an strace -f log returned."""
    total = 0
    with open(trace_path) as f:
        for line in f:
            m = re.search(r"^\d+\s+(?:read|readv|recvfrom|recvmsg|pread64|preadv2?)\(.*\)\s+=\s+"
                          r"(\d+)", line)
            if m:
                total += int(m.group(1))
    return total


def metric_value(text, name, labels=""):
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + labels) and not line.startswith("#"):
            total += float(line.split()[-1])
            found = True
    if not found:
        raise AssertionError(f"metric {name}{labels} not found")
    return total


class CollectorProc:
    """`logsplice collect --config F`, restartable on the same port."""

    def __init__(self, test, port, limits=None, prefix=()):
        self.test = test
        self.port = port
        self.dir = test.path("mirror")
        self.err_path = test.path("collect.stderr")
        self.cfg = test.path("collect.yaml")
        self.prefix = list(prefix)
        collect = {"listen": f"127.0.0.1:{port}", "dir": self.dir, "tokens": {h: TOKEN for h in ("host0", "host1", "host2", "evil")},
                   "fsync": {"interval": "50ms"}, "log_level": "debug",
                   "metrics": {"listen": "127.0.0.1:0"}}
        if limits:
            collect["limits"] = limits
        write_config({"collect": collect}, self.cfg)
        self.proc = None
        test.addCleanup(self.kill9)

    def start(self):
        mark = len(self.stderr())
        with open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(self.prefix + [LOGSPLICE_BIN, "collect", "--config",
                                                        self.cfg],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        m = wait_for(lambda: re.search(r"collect: metrics on \S+:(\d+)", self.stderr()[mark:]),
                     what="collector up")
        self.metrics_port = int(m.group(1))
        return self

    def stderr(self):
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def scrape(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as r:
            return r.read().decode()

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            pid = self.proc.pid
            if self.prefix:  # under strace: stop the traced collector, strace then exits
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    pid = int(f.read().split()[0])
            os.kill(pid, signal.SIGTERM)
            self.proc.wait(15)

    def index(self):
        """(host, dev, ino, generation) -> mirror path, from the collector's index."""
        out = {}
        with open(os.path.join(self.dir, ".index")) as f:
            lines = f.read().splitlines()
        assert lines[0] == "logsplice-collect-index 1", lines[0]
        for line in lines[1:]:
            host, _inp, dev, ino, gen, _fp, _fpl, durable, rel = line.split("\t")
            out[(host, int(dev), int(ino), int(gen))] = (os.path.join(self.dir, rel),
                                                         int(durable))
        return out


class RotatingWriter(LineWriter):
    """A LineWriter whose file is renamed away (app.log -> app.log.N) every `every` lines."""

    def __init__(self, path, tag, every):
        super().__init__(path, tag=tag, payload_bytes=60)
        self.every = every
        self.rotations = 0

    def write(self, count=1):
        new = super().write(count)
        if len(self.lines) % self.every < count:
            with self._lock:
                self.rotations += 1
                os.rename(self.path, f"{self.path}.{self.rotations}")
        return new

    def start_batches(self, lines_per_s, batch=100):
        def loop():
            next_at = time.monotonic()
            while not self._stop.is_set():
                self.write(batch)
                next_at += batch / lines_per_s
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        self._stop.clear()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()


class Collect(E2ETest):
    def agent_for(self, i, port, writer_dir, extra_agent=None, start=True):
        agent_cfg = {"data_dir": self.path(f"data{i}"), "hostname": f"host{i}",
                     "checkpoint_interval": "100ms"}
        agent_cfg.update(extra_agent or {})
        cfg = self.config(
            inputs=[{"name": "app", "paths": [os.path.join(writer_dir, "app.log*")],
                     "start_at": "beginning", "rotate_wait": "1s"}],
            outputs=[{"name": "mirror", "type": "logsplice", "addresses": [f"127.0.0.1:{port}"],
                      "token": TOKEN, "backoff": {"initial": "50ms", "max": "200ms"},
                      "inputs": ["app"]}],
            agent=agent_cfg, name=f"agent{i}.yaml")
        return self.agent(cfg, start=start)

    def assert_mirrors(self, col, hosts_dirs, timeout=30):
        """Every source file of every host equals its mirror byte for byte (cmp)."""
        def sources():
            out = []
            for host, d in hosts_dirs:
                for name in sorted(os.listdir(d)):
                    p = os.path.join(d, name)
                    st = os.stat(p)
                    out.append((host, p, st.st_dev, st.st_ino, st.st_size))
            return out

        def all_equal():
            idx = col.index()
            for host, p, dev, ino, size in sources():
                entry = idx.get((host, dev, ino, 0))
                if not entry or entry[1] != size:
                    return False
                if not filecmp.cmp(p, entry[0], shallow=False):
                    return False
            return True
        try:
            wait_for(all_equal, timeout=timeout, interval=0.2, what="every mirror equal")
        except AssertionError:
            idx = col.index()
            for host, p, dev, ino, size in sources():
                entry = idx.get((host, dev, ino, 0))
                print(f"{host} {p} size {size}: mirror {entry}")
            raise
        for host, p, dev, ino, _ in sources():
            mirror = col.index()[(host, dev, ino, 0)][0]
            subprocess.run(["cmp", p, mirror], check=True)
        return sources()

    def test_kill9_everything_mirrors_are_exact(self):
        port = free_port()
        col = CollectorProc(self, port).start()
        writers, agents, dirs = [], [], []
        for i in range(3):
            d = os.path.dirname(self.path(f"src{i}", "app.log"))
            w = RotatingWriter(os.path.join(d, "app.log"), f"h{i}", every=20000)
            w.write(2000)
            writers.append(w)
            dirs.append((f"host{i}", d))
            agents.append(self.agent_for(i, port, d))
        for w in writers:
            w.start_batches(20000, batch=500)
        kills = 0
        seed = int(os.environ.get("LOGSPLICE_SEED", time.time()))
        rng = random.Random(seed)
        print(f"kill moments: seed {seed}", flush=True)
        wait_for(lambda: col.index(), what="first index")
        for step in range(3):
            time.sleep(rng.uniform(0.3, 1.5))
            col.kill9()
            kills += 1
            time.sleep(rng.uniform(0.05, 0.5))
            col.start()
            time.sleep(rng.uniform(0.3, 1.5))
            victim = agents[rng.randrange(3)]
            victim.kill9()
            kills += 1
            time.sleep(rng.uniform(0.05, 0.5))
            victim.start()
        time.sleep(1.0)
        for w in writers:
            w.stop()
        srcs = self.assert_mirrors(col, dirs, timeout=40)
        lines = sum(len(w.lines) for w in writers)
        rotations = sum(w.rotations for w in writers)
        total = sum(s[4] for s in srcs)
        print(f"mirror test: {lines} lines, {total} bytes in {len(srcs)} files, {rotations} "
              f"rotations, {kills} kill -9, cmp equal for every file", flush=True)
        self.assertGreaterEqual(rotations, 3)

    def test_hostile_input_is_refused_and_a_good_agent_keeps_delivering(self):
        port = free_port()
        col = CollectorProc(self, port, limits={"max_frame": "1MiB", "idle_timeout": "1s",
                                                "max_connections": 40}).start()
        d = os.path.dirname(self.path("src", "app.log"))
        w = RotatingWriter(os.path.join(d, "app.log"), "good", every=10**9)
        w.write(500)
        self.agent_for(0, port, d)
        w.start_batches(2000)

        def conn():
            return socket.create_connection(("127.0.0.1", port), timeout=3)

        def expect_closed(sock, code, log_part):
            msgs = read_msgs(sock)
            errors = [m for m in msgs if m[0] == 9]
            self.assertTrue(errors, f"no ERROR in {msgs}")
            self.assertEqual(errors[-1][2], code, errors[-1][3])
            wait_for(lambda: log_part in col.stderr(), what=f"log '{log_part}'")
            sock.close()

        # Garbage bytes (an HTTP request) instead of a HELLO.
        s = conn()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        expect_closed(s, 1, "malformed header")
        # A bad magic / bad version / wrong token.
        s = conn()
        s.sendall(msg(1, body=b"XXXX" + b"\0" * 10))
        expect_closed(s, 1, "bad magic")
        s = conn()
        s.sendall(hello(version=9))
        expect_closed(s, 2, "unsupported protocol version 9")
        s = conn()
        s.sendall(hello(token=b"wrong-token-123"))
        expect_closed(s, 3, "wrong token for host 'evil'")
        # A hostile host name is refused before any path is built from it.
        s = conn()
        s.sendall(hello(host=b"../../etc"))
        expect_closed(s, 1, "bad host name")
        # A frame claiming 1 TiB.
        s = conn()
        s.sendall(hello() + open_msg(1, b"/var/log/x") + msg(5, 1, 0, length=1 << 40))
        expect_closed(s, 4, "with 1099511627776 bytes (limit 1048576)")
        # A NUL in the path is refused; `..` components are sanitised and stay inside the dir.
        s = conn()
        s.sendall(hello() + open_msg(1, b"/var/\0/x"))
        expect_closed(s, 1, "bad source path")
        s = conn()
        s.sendall(hello() + open_msg(1, b"/../../../../tmp/escape", ino=77) +
                  msg(5, 1, 0, body=b"inside\n") + msg(8))
        got = read_msgs(s, timeout=1.5)
        self.assertIn(4, [m[0] for m in got])  # OPENED
        s.close()
        escaped = os.path.join(col.dir, "evil", "in", "__", "__", "__", "__", "tmp", "escape")
        wait_for(lambda: os.path.exists(escaped), what="sanitised mirror inside the dir")
        self.assertFalse(os.path.exists(os.path.join(os.path.dirname(col.dir), "tmp", "escape")))
        # A gap: data past what the mirror holds.
        s = conn()
        s.sendall(hello() + open_msg(1, b"/var/log/gap", ino=78) + msg(5, 1, 100, body=b"x"))
        expect_closed(s, 5, "gap: a frame at offset 100")
        # A client that stalls in the middle of a frame is timed out.
        s = conn()
        s.sendall(hello() + open_msg(1, b"/var/log/stall", ino=79) + msg(5, 1, 0, length=100) +
                  b"only ten b")
        t0 = time.monotonic()
        expect_closed(s, 7, "stalled in the middle of a message")
        self.assertLess(time.monotonic() - t0, 3.5)
        # Many idle connections: over the limit they are refused at once, the rest time out.
        idle = [conn() for _ in range(80)]
        wait_for(lambda: "refused, already" in col.stderr(), what="refused over max_connections")
        wait_for(lambda: col.stderr().count("sent no HELLO") >= 30, timeout=10,
                 what="idle connections timed out")
        for s in idle:
            s.close()
        # The good agent was never disturbed: its mirror keeps up and is exact.
        before = len(w.lines)
        wait_for(lambda: len(w.lines) > before + 2000, what="writer progress")
        w.stop()
        self.assert_mirrors(col, [("host0", d)])
        self.assertNotIn("collect: 127.0.0.1", "\n".join(
            l for l in col.stderr().splitlines() if "host 'host0'" in l and "closing" in l))

    def test_check_validates_a_collector_config(self):
        good = self.path("collect.yaml")
        write_config({"collect": {"listen": "127.0.0.1:0", "dir": self.path("m"),
                                  "tokens": {"web-1": TOKEN}}}, good)
        r = run_cli("check", "--config", good)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok (collector", r.stdout)
        bad = self.path("bad.yaml")
        with open(bad, "w") as f:
            f.write("collect:\n  listen: 127.0.0.1:0\n  dir: /tmp/x\n"
                    "  tokens: { web-1: short }\n  limits: { max_frame: 1TiB }\n")
        r = run_cli("check", "--config", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{bad}:4:20: the token of host 'web-1' must have 8 to 512", r.stderr)
        self.assertIn(f"{bad}:5:24: 'limits.max_frame' must be at most 64MiB", r.stderr)
        r = run_cli("collect", "--config", bad)
        self.assertEqual(r.returncode, 1)

    def test_zero_copy_both_ends(self):
        if not shutil.which("strace"):
            self.fail("strace is not installed (scripts/install-deps.sh)")
        port = free_port()
        trace = self.path("collect.strace")
        col = CollectorProc(self, port, prefix=[
            "strace", "-f", "-qq", "-e", "trace=" + READS, "-e", "signal=none", "-o",
            trace]).start()
        d = os.path.dirname(self.path("src", "app.log"))
        w = LineWriter(os.path.join(d, "app.log"), tag="zc", payload_bytes=150)
        w.write(40000)  # ~6.5 MB caught up in large frames
        agent = self.agent_for(0, port, d, extra_agent={"metrics": {"listen": "127.0.0.1:0"}},
                               start=False)
        atrace = self.path("agent.strace")
        with open(agent.stderr_path, "ab") as err:  # `strace ... logsplice run --config F`
            agent.proc = subprocess.Popen(
                ["strace", "-f", "-qq", "-e", "trace=" + READS, "-e", "signal=none", "-o", atrace,
                 LOGSPLICE_BIN, "run", "--config", agent.config_path],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        self.assert_mirrors(col, [("host0", d)])
        size = os.path.getsize(w.path)
        mport = wait_for(lambda: re.search(r"metrics listening on \S+ \(port (\d+)\)",
                                           agent.stderr_text()), what="agent metrics").group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
            text = r.read().decode()
        copied = metric_value(text, "logsplice_bytes_copied_total", '{output="mirror"}')
        sent = metric_value(text, "logsplice_sink_bytes_sent_total", '{sink="mirror"}')
        self.assertEqual(sent, size)
        # Only headers and control messages: well under 0.1% of the bytes.
        self.assertGreater(copied, 0)
        self.assertLess(copied, size * 0.001, f"agent copied {copied} of {size}")
        ctext = col.scrape()
        self.assertEqual(metric_value(ctext, "logsplice_collect_bytes_total"), size)
        self.assertEqual(metric_value(ctext, "logsplice_collect_acked_bytes_total",
                                      '{host="host0"}'), size)
        self.assertGreater(metric_value(ctext, "logsplice_collect_last_ack_timestamp_seconds",
                                        '{host="host0"}'), 0)
        self.assertEqual(metric_value(ctext, "logsplice_collect_open_streams", '{host="host0"}'), 1)
        self.assertEqual(metric_value(ctext, "logsplice_collect_unsynced_bytes", '{host="host0"}'), 0)
        self.assertGreater(metric_value(ctext, "logsplice_collect_free_bytes"), 0)
        self.assertEqual(metric_value(ctext, "logsplice_collect_bytes_copied_total"), 0)
        r = run_cli("status", "--endpoint", f"127.0.0.1:{col.metrics_port}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"host0 +6\.2 MiB")
        self.assertIn("1 connections", r.stdout)
        # Stop the traced agent's own process (strace then exits), then the collector.
        with open(f"/proc/{agent.pid}/task/{agent.pid}/children") as f:
            os.kill(int(f.read().split()[0]), signal.SIGTERM)
        agent.wait_exit(15)
        col.stop()
        # Every byte each side read into its memory, by strace: headers, control bodies, config,
        # checkpoints and index; payload would be megabytes.
        col_read, agent_read = read_bytes(trace), read_bytes(atrace)
        print(f"zero copy: {size} payload bytes; agent copied {copied:.0f} (headers), read "
              f"{agent_read} bytes into memory; collector read {col_read} (config, index, "
              f"headers)", flush=True)
        self.assertLess(col_read, size * 0.01)
        self.assertLess(agent_read, size * 0.01)


if __name__ == "__main__":
    main()
