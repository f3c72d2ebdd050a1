"""Collectors for the e2e tests: a scriptable fake (`Collector`) and real rsyslog / syslog-ng
(`RealCollector`). Everything listens on 127.0.0.1 only. Imported through `support`."""

import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

HOST = "127.0.0.1"
_HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCE_DIR = os.environ.get("LOGSPLICE_SOURCE_DIR") or os.path.dirname(os.path.dirname(_HERE))
COLLECTOR_SCRIPT = os.path.join(_SOURCE_DIR, "scripts", "collector.sh")
TEST_CACHE = os.environ.get("LOGSPLICE_TEST_CACHE", "/var/cache/logsplice-test")


def free_port():
    """A port that was free on 127.0.0.1 a moment ago (for tools that cannot bind port 0)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _poll(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


def _read_text(path):
    with open(path, errors="replace") as f:
        return f.read()


def _split_lines(data):
    """Complete lines of `data` as str (undecodable bytes kept via surrogateescape)."""
    return data.decode("utf-8", "surrogateescape").split("\n")[:-1]


class Collector:
    """A fake TCP collector on 127.0.0.1 (port 0 unless given), served by one thread.

    Keeps every byte received, per connection, in accept order. Failure modes:
      stall() / resume()   accept connections but stop / restart reading them
      refuse() / reopen()  close the listener (connects are refused), later listen on the same port
      kill()               drop the open connections mid-stream (RST)
    `rcvbuf` sets SO_RCVBUF on accepted sockets, so a stall pushes back on the sender sooner.

    Every socket is touched by the serving thread only: the methods above hand it a command and
    wait until it ran, so when one returns its effect is complete (no read after stall(), the
    port refuses after refuse()). The received bytes may be read from any thread.
    """

    def __init__(self, port=0, rcvbuf=None):
        self.port = port
        self.rcvbuf = rcvbuf
        self._lock = threading.Lock()  # guards _data
        self._data = []                # bytearray per connection, in accept order
        self._socks = {}               # open connection socket -> index into _data
        self._listener = None
        self._stalled = False
        self._commands = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = None
        self._running = False

    @property
    def address(self):
        return f"{HOST}:{self.port}"

    def start(self):
        self._listen()
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name=f"collector-{self.port}")
        self._thread.start()
        return self

    # --- the serving thread ---
    def _serve(self):
        while self._running:
            rlist = [self._wake_r]
            if self._listener:
                rlist.append(self._listener)
            if not self._stalled:
                rlist += list(self._socks)
            ready, _, _ = select.select(rlist, [], [], 1.0)
            for s in ready:
                if s is self._wake_r:
                    self._run_commands()
                elif s is self._listener:
                    self._accept()
                elif s in self._socks and not self._stalled:
                    self._read(s)

    def _run_commands(self):
        self._wake_r.recv(4096)
        with self._lock:
            commands, self._commands = self._commands, []
        for fn, done, result in commands:
            try:
                result.append(fn())
            except Exception as e:  # handed back to the caller
                result.append(e)
            done.set()

    def _call(self, fn):
        if not self._running or threading.current_thread() is self._thread:
            return fn()
        done, result = threading.Event(), []
        with self._lock:
            self._commands.append((fn, done, result))
        self._wake_w.send(b"x")
        if not done.wait(10):
            raise AssertionError("fake collector thread did not answer")
        if isinstance(result[0], Exception):
            raise result[0]
        return result[0]

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.bind((HOST, self.port))
        s.listen(64)
        s.setblocking(False)
        self.port = s.getsockname()[1]
        self._listener = s

    def _accept(self):
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        conn.setblocking(False)
        with self._lock:
            self._data.append(bytearray())
            self._socks[conn] = len(self._data) - 1

    def _read(self, s, drain=False):
        """Reads what is available (everything, with `drain`); False once the peer closed."""
        while True:
            try:
                chunk = s.recv(1 << 18)
            except BlockingIOError:
                return True
            except OSError:
                chunk = b""
            if not chunk:
                self._drop(s)
                return False
            with self._lock:
                self._data[self._socks[s]] += chunk
            if not drain:
                return True

    def _drop(self, s, reset=False):
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        with self._lock:
            del self._socks[s]

    # --- failure modes ---
    def stall(self):
        self._call(lambda: setattr(self, "_stalled", True))

    def resume(self):
        self._call(lambda: setattr(self, "_stalled", False))

    def refuse(self, drop_connections=True):
        """Stops listening (new connects get ECONNREFUSED); by default also kills open ones."""
        def close_listener():
            if self._listener:
                self._listener.close()
                self._listener = None
        self._call(close_listener)
        if drop_connections:
            self.kill()

    def reopen(self):
        """Listens again on the same port (retries briefly while the port is in TIME_WAIT)."""
        deadline = time.monotonic() + 5
        while True:
            try:
                if self._listener is None:
                    self._call(self._listen)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self, drain=True):
        """Resets every open connection. With `drain`, first keeps what the kernel had already
        received (a dropped connection, not a collector that lost acknowledged data)."""
        def reset_all():
            for s in list(self._socks):
                if not drain or self._read(s, drain=True):
                    self._drop(s, reset=True)
        self._call(reset_all)

    def close(self):
        if self._thread:
            self.refuse(drop_connections=True)
            self._running = False
            self._wake_w.send(b"x")
            self._thread.join()
            self._thread = None
        self._wake_r.close()
        self._wake_w.close()

    # --- what arrived ---
    def connections(self):
        """Bytes received on each connection, in accept order."""
        with self._lock:
            return [bytes(d) for d in self._data]

    def connection_count(self):
        with self._lock:
            return len(self._data)

    def open_connections(self):
        with self._lock:
            return len(self._socks)

    def data(self):
        """All bytes received, connections concatenated in accept order (a stream resent from
        the last unacknowledged byte on a new connection reads back as one stream)."""
        return b"".join(self.connections())

    def byte_count(self):
        with self._lock:
            return sum(len(d) for d in self._data)

    def lines(self):
        """Complete lines of data(), as str, without newlines."""
        return _split_lines(self.data())

    def wait_lines(self, count, timeout=10.0):
        _poll(lambda: len(self.lines()) >= count, timeout,
              f"{count} lines at fake collector {self.address} (have {len(self.lines())})")
        return self.lines()

    def wait_connections(self, count=1, timeout=10.0):
        _poll(lambda: self.connection_count() >= count, timeout,
              f"{count} connection(s) to fake collector {self.address}")


def _listening_inodes(port):
    inodes = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for row in f:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                inodes.add(inode)
    return inodes


def _pid_listens_on(pid, port):
    """True when process `pid` holds a socket listening on TCP `port`."""
    inodes = _listening_inodes(port)
    if not inodes:
        return False
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


class RealCollector:
    """rsyslog or syslog-ng run by scripts/collector.sh: it listens on 127.0.0.1:`port` and
    writes each received line verbatim to `out_path`. Lives in `workdir` (config, pid, persist).

        c = RealCollector("syslog-ng", "/tmp/x").start()
        ... ship to c.address ...
        c.wait_lines(1000); c.lines(); c.stop()      # start() again reuses the same port

    Known limits (both): empty lines are dropped; lines over max_msg_size (default 4 MiB) are
    split (rsyslog loses one byte per split).
    """

    KINDS = ("rsyslog", "syslog-ng")

    def __init__(self, kind, workdir, port=0, max_msg_size=None, syslog_parse=False):
        # syslog_parse: parse RFC 5424 (octet-counted) and write one JSON object per message
        # (collector.sh --syslog-parse; read back with support_events.collector_events).
        self.syslog_parse = syslog_parse
        if kind not in self.KINDS:
            raise ValueError(f"unknown collector {kind!r}")
        self.kind = kind
        self.workdir = workdir
        self.port = port
        self.max_msg_size = max_msg_size
        self.out_path = os.path.join(workdir, "received.log")
        self.proc = None
        os.makedirs(workdir, exist_ok=True)

    @staticmethod
    def available(kind):
        """(True, version) when `kind` is installed, else (False, reason)."""
        if kind == "rsyslog":
            if shutil.which("rsyslogd") or os.path.exists("/usr/sbin/rsyslogd"):
                return True, "rsyslog"
            return False, "rsyslogd not found"
        version_file = os.path.join(TEST_CACHE, "syslog-ng", "VERSION")
        if os.path.exists(version_file):
            return True, "syslog-ng " + _read_text(version_file).strip()
        return False, f"no private syslog-ng under {TEST_CACHE}"

    @property
    def address(self):
        return f"{HOST}:{self.port}"

    def start(self, timeout=20.0):
        cmd = ["bash", COLLECTOR_SCRIPT, self.kind, "--dir", self.workdir, "--port", str(self.port),
               "--out", self.out_path]
        if self.max_msg_size:
            cmd += ["--max-msg-size", str(self.max_msg_size)]
        if self.syslog_parse:
            cmd.append("--syslog-parse")
        self._stderr_path = os.path.join(self.workdir, "collector.stderr")
        with open(self._stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        port_file = os.path.join(self.workdir, "port")
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.kind} exited with {self.proc.returncode}:\n"
                                     f"{self.stderr_text()}")
            try:
                port = int(_read_text(port_file).strip() or 0)
                if port and _pid_listens_on(self.proc.pid, port):
                    self.port = port
                    return self
            except (OSError, ValueError):
                pass
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError(f"{self.kind} did not listen within {timeout:g}s:\n"
                                     f"{self.stderr_text()}")
            time.sleep(0.02)

    def stderr_text(self):
        try:
            return _read_text(self._stderr_path)
        except (OSError, AttributeError):
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM and wait (SIGKILL after `timeout`); returns the exit code."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self):
        if self.proc is None:
            return None
        if self.running():
            self.proc.kill()
        return self.proc.wait()

    close = stop

    def data(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def lines(self):
        """Complete lines written by the collector so far, as str, without newlines."""
        return _split_lines(self.data())

    def wait_lines(self, count, timeout=20.0):
        _poll(lambda: len(self.lines()) >= count, timeout,
              f"{count} lines in {self.kind}'s file {self.out_path} (have {len(self.lines())})")
        return self.lines()
