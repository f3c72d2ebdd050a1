"""systemd's notify protocol without systemd: a unix datagram socket stands in for it
(NOTIFY_SOCKET), and the real binary must say READY=1 only once it is started (inputs following,
outputs created, signals handled, metrics port listening), ping WATCHDOG=1 from its loop every
half WATCHDOG_USEC, say RELOADING=1 then READY=1 around a SIGHUP, and STOPPING=1 on SIGTERM.
Without NOTIFY_SOCKET nothing changes."""
import os
import re
import signal
import socket
import subprocess
import time

from support import Agent, E2ETest, LineWriter, main, wait_for

WATCHDOG_USEC = 200000  # pings every 100 ms


class NotifySocket:
    """What systemd listens on: each datagram is one notification ("KEY=VALUE\\n...")."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []  # (monotonic time of arrival, text)

    def receive(self, timeout):
        """The next notification, or None after `timeout` seconds without one."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        text = data.decode()
        self.messages.append((time.monotonic(), text))
        return text

    def wait(self, predicate, timeout=10.0, what="notification", skip_watchdog=True):
        """Receives until a notification satisfies `predicate` and returns it (WATCHDOG=1 pings
        are recorded but skipped unless `skip_watchdog` is false)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout:g}s; got {self.texts()}")
            text = self.receive(left)
            if text is None:
                continue
            if skip_watchdog and text == "WATCHDOG=1":
                continue
            if predicate(text):
                return text

    def drain(self, seconds):
        """Everything that arrives within `seconds` (a window for counting or for absence)."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            text = self.receive(left)
            if text is not None:
                got.append(text)
        return got

    def texts(self):
        return [t for _, t in self.messages]

    def close(self):
        self.sock.close()


class NotifiedAgent(Agent):
    """An agent started the way systemd starts it: NOTIFY_SOCKET and WATCHDOG_USEC set, and
    WATCHDOG_PID its own pid (a shell sets it to $$, then execs the agent in its place)."""

    def __init__(self, config_path, stderr_path, env, watchdog_pid="$$"):
        super().__init__(config_path, stderr_path)
        self.env = env
        self.watchdog_pid = watchdog_pid

    def start(self):
        script = f'WATCHDOG_PID={self.watchdog_pid}; export WATCHDOG_PID; exec "$0" "$@"'
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                ["/bin/sh", "-c", script, self.binary, "run", "--config", self.config_path],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=self.env)
        return self


class SystemdNotify(E2ETest):
    def setUp(self):
        super().setUp()
        self.notify = NotifySocket(self.path("notify.sock"))
        self.addCleanup(self.notify.close)
        self.log = LineWriter(self.path("in", "app.log"), tag="app")
        open(self.log.path, "w").close()

    def env(self, notify=True):
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        if notify:
            env["NOTIFY_SOCKET"] = self.notify.path
        env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
        return env

    def make_config(self, col, metrics_listen="127.0.0.1:0"):
        return self.config(
            [{"name": "app", "paths": [self.log.path], "start_at": "beginning"}],
            [{"name": "c", "type": "tcp", "addresses": [col.address], "inputs": ["app"]}],
            agent={"metrics": {"listen": metrics_listen}})

    def start_agent(self, cfg, notify=True, watchdog_pid="$$"):
        a = NotifiedAgent(cfg, self.path(f"agent-{len(self._agents)}.stderr"), self.env(notify),
                          watchdog_pid)
        self._agents.append(a)
        self.addCleanup(a.close)
        return a.start()

    def test_ready_watchdog_reload_stop(self):
        col = self.collector()
        self.log.write(5)  # before the start: the input must be following when READY=1 comes
        cfg = self.make_config(col)
        agent = self.start_agent(cfg)

        ready = self.notify.wait(lambda t: t.startswith("READY=1"), what="READY=1")
        # READY=1 is the first notification, and the agent was started when it was sent: the
        # metrics port was already listening (its log line came before) and accepts at once.
        self.assertTrue(self.notify.texts()[0].startswith("READY=1"), self.notify.texts())
        self.assertIn("STATUS=shipping: 1 inputs, 1 outputs", ready)
        stderr = agent.stderr_text()
        self.assertIn("logsplice started", stderr)
        port = re.search(r"metrics listening on \S+ \(port (\d+)\)", stderr)
        self.assertIsNotNone(port, stderr)
        socket.create_connection(("127.0.0.1", int(port.group(1))), timeout=2).close()
        col.wait_lines(5)
        self.assertLines(self.log.lines, col.lines())

        # The watchdog: every 100 ms from the loop, so at least 3 in a second (and the loop
        # is turning: a line written now still ships).
        pings = [t for t in self.notify.drain(1.0) if t == "WATCHDOG=1"]
        self.assertGreaterEqual(len(pings), 3, self.notify.texts())
        self.assertLessEqual(len(pings), 15, "pings far more often than every 100 ms")
        self.log.write(1)
        col.wait_lines(6)

        # A reload: RELOADING=1, then READY=1 again; a rejected config too (the running one
        # stays, so the agent is ready again).
        for broken in (False, True):
            if broken:
                with open(cfg, "w") as f:
                    f.write("inputs:\n  - name: app\n    pahts: [x]\noutputs: []\n")
            before = len(self.notify.texts())
            agent.signal(signal.SIGHUP)
            reloading = self.notify.wait(lambda t: t.startswith("RELOADING=1"),
                                         what="RELOADING=1")
            self.assertIn("MONOTONIC_USEC=", reloading)
            self.notify.wait(lambda t: t.startswith("READY=1"), what="READY=1 after the reload")
            after = [t for t in self.notify.texts()[before:] if t != "WATCHDOG=1"]
            self.assertEqual([t.split("\n")[0] for t in after], ["RELOADING=1", "READY=1"])
        self.assertIn("keeping the running configuration", agent.stderr_text())
        self.log.write(1)
        col.wait_lines(7)

        agent.signal(signal.SIGTERM)
        self.notify.wait(lambda t: t.startswith("STOPPING=1"), what="STOPPING=1")
        self.assertEqual(agent.wait_exit(), 0)
        self.assertLines(self.log.lines, col.lines())

    def test_failed_start_is_never_ready(self):
        col = self.collector()
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cfg = self.make_config(col, metrics_listen=f"127.0.0.1:{taken.getsockname()[1]}")
        agent = self.start_agent(cfg)
        self.assertEqual(agent.wait_exit(), 3, agent.stderr_tail())
        got = self.notify.drain(0.3)  # anything sent before the exit is queued on the socket
        self.assertFalse([t for t in got if t.startswith("READY=1")], got)

    def test_watchdog_of_another_process_is_not_pinged(self):
        col = self.collector()
        agent = self.start_agent(self.make_config(col), watchdog_pid="1")
        self.notify.wait(lambda t: t.startswith("READY=1"), what="READY=1")
        got = self.notify.drain(0.5)  # five ping periods
        self.assertNotIn("WATCHDOG=1", self.notify.texts(), got)
        self.assertEqual(agent.stop(), 0)

    def test_without_notify_socket_nothing_changes(self):
        col = self.collector()
        self.log.write(5)
        cfg = self.make_config(col)
        agent = self.start_agent(cfg, notify=False)  # WATCHDOG_USEC set, no socket to ping
        col.wait_lines(5)
        agent.signal(signal.SIGHUP)
        wait_for(lambda: "reload done" in agent.stderr_text(), what="the reload")
        self.log.write(5)
        col.wait_lines(10)
        self.assertEqual(agent.stop(), 0)
        self.assertLines(self.log.lines, col.lines())
        self.assertEqual(self.notify.drain(0.2), [])
        self.assertNotIn("sd_notify", agent.stderr_text())


if __name__ == "__main__":
    main()
