"""The relp output against real rsyslog with imrelp (scripts/collector.sh --relp, package
rsyslog-relp) and against Python fake RELP servers.

Checked: every line arrives, in order, as RFC 5424 messages; RELP over TLS (imrelp tls="on");
the proof: 20,000 lines/s for 30 s while rsyslog is SIGKILLed every few seconds and restarted on
the same port: every line arrives (duplicates counted and printed), beside the same scenario
with a plain `tcp` output to rsyslog's imtcp, whose loss is printed (not asserted); rsyslog down
for a minute while lines keep coming: the agent's RSS stays flat and everything arrives after;
fake servers that answer `rsp 500`, answer a transaction never sent, or stop answering: the
session is reset and resent, nothing lost. The scenarios that take time run side by side.
"""

import json
import os
import re
import socket
import subprocess
import threading
import time

from support import E2ETest, RealCollector, free_port, main, rss_kib, wait_for
from support_net import COLLECTOR_SCRIPT

LINE_RE = re.compile(rb"([a-z0-9]+) (\d{8}) [a-z0-9]+")


class RelpCollector(RealCollector):
    """rsyslog started with --relp (and --tls CERTDIR), writing one JSON record per message."""

    def __init__(self, workdir, certs=None):
        super().__init__("rsyslog", workdir, syslog_parse=True)
        self.certs = certs

    def start(self, timeout=20.0):
        original = subprocess.Popen

        def popen(cmd, *a, **kw):
            if cmd and cmd[0] == "bash" and COLLECTOR_SCRIPT in cmd:
                cmd = [*cmd, "--relp"] + (["--tls", self.certs] if self.certs else [])
            return original(cmd, *a, **kw)
        subprocess.Popen = popen
        try:
            return super().start(timeout)
        finally:
            subprocess.Popen = original


def received_seqs(col, tag):
    """Sequence numbers of `tag`'s lines in the collector's JSON records, in arrival order."""
    seqs = []
    for raw in col.data().split(b"\n"):
        if not raw:
            continue
        try:
            msg = json.loads(raw)["msg"].encode()
        except (ValueError, KeyError):
            continue
        m = LINE_RE.search(msg)
        if m and m.group(1) == tag.encode():
            seqs.append(int(m.group(2)))
    return seqs


class FastWriter:
    """Appends numbered lines "<tag> <seq:08d> <payload>" at `rate` lines/s, in batches of one
    write(2) every 10 ms (a Python thread cannot open the file 20,000 times a second)."""

    def __init__(self, path, tag):
        self.path, self.tag, self.count = path, tag, 0
        self._stop = threading.Event()
        self._thread = None

    def write(self, n):
        with open(self.path, "ab") as f:
            f.write(b"".join(b"%s %08d abcdefghijklmnopqrstuvwxyz0123456789\n"
                             % (self.tag.encode(), self.count + i) for i in range(n)))
        self.count += n

    def start(self, rate, seconds):
        def run():
            t0 = time.monotonic()
            while not self._stop.is_set():
                elapsed = time.monotonic() - t0
                if elapsed >= seconds:
                    break
                due = min(int(elapsed * rate), int(seconds * rate)) - self.count
                if due > 0:
                    self.write(due)
                self._stop.wait(0.01)
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def join(self):
        if self._thread:
            self._thread.join()

    def stop(self):
        self._stop.set()
        self.join()


class FakeRelp:
    """A RELP server on 127.0.0.1 answering `open` with commands=syslog and each syslog frame
    with 200, except in its first session, where `mode` decides after `after` frames:
    "rsp500" answers one frame with 500, "unknown" answers a number never sent, "silent" stops
    answering. Records every syslog message (all sessions)."""

    def __init__(self, mode, after=50):
        self.mode, self.after = mode, after
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.messages = []
        self.sessions = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.sessions += 1
            try:
                self._session(conn, self.sessions == 1)
            except OSError:
                pass
            conn.close()

    def _session(self, conn, first):
        conn.settimeout(0.2)
        buf, seen, silent = b"", 0, False
        while not self._stop:
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return
            buf += data
            while True:
                m = re.match(rb"(\d+) ([a-z]+) (\d+)[ \n]", buf)
                if not m:
                    break
                txnr, cmd, n = int(m.group(1)), m.group(2), int(m.group(3))
                start = m.end() if n else m.end() - 1
                if len(buf) < start + n + 1:
                    break
                payload, buf = buf[start:start + n], buf[start + n + 1:]
                answer = b"200 OK"
                if cmd == b"open":
                    answer = b"200 OK\nrelp_version=0\nrelp_software=fake\ncommands=syslog"
                elif cmd == b"syslog":
                    self.messages.append(payload)
                    seen += 1
                    if first and seen > self.after:
                        if self.mode == "silent" or silent:
                            silent = True
                            continue
                        if self.mode == "rsp500":
                            answer = b"500 the fake refuses"
                        elif self.mode == "unknown":
                            txnr += 100000
                        first = False  # one fault per session
                self._send(conn, b"%d rsp %d %s\n" % (txnr, len(answer), answer))

    @staticmethod
    def _send(conn, data):
        conn.settimeout(None)
        conn.sendall(data)
        conn.settimeout(0.2)

    def seqs(self, tag):
        out = []
        for msg in self.messages:
            m = LINE_RE.search(msg)
            if m and m.group(1) == tag.encode():
                out.append(int(m.group(2)))
        return out

    def close(self):
        self._stop = True
        self._thread.join()
        self.sock.close()


def loss_report(name, sent, seqs):
    got = set(seqs)
    lost = [s for s in range(sent) if s not in got]
    dups = len(seqs) - len(got)
    return lost, dups, f"{name}: sent {sent}, lost {len(lost)}, duplicates {dups}"


class Relp(E2ETest):
    def setUp(self):
        super().setUp()
        ok, why = RealCollector.available("rsyslog")
        if not ok or not os.path.exists("/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so"):
            if os.environ.get("CI"):
                self.fail("rsyslog with imrelp is not installed")
            self.skipTest("rsyslog-relp not installed: run scripts/install-collectors.sh")

    def relp_collector(self, certs=None):
        c = RelpCollector(self.path(f"rsyslog-{free_port()}"), certs).start()
        self.addCleanup(c.close)
        return c

    def output(self, address, kind="relp", **extra):
        out = {"name": "central", "type": kind, "addresses": [address], "inputs": ["app"],
               "backoff": {"initial": "20ms", "max": "200ms"}}
        if kind == "tcp":
            out["format"] = "syslog"
        out.update(extra)
        return out

    def start_agent(self, log_path, out, name):
        cfg = self.config([{"name": "app", "paths": [log_path], "start_at": "beginning"}], [out],
                          agent={"log_level": "info", "data_dir": self.path(name, "data")},
                          name=f"{name}.yaml")
        return self.agent(cfg)

    def test_every_line_in_order_then_tls(self):
        col = self.relp_collector()
        log = FastWriter(self.path("in", "app.log"), "plain")
        log.write(5000)
        agent = self.start_agent(log.path, self.output(col.address), "plain")
        wait_for(lambda: len(received_seqs(col, "plain")) >= 5000, timeout=30,
                 what="5000 lines through imrelp")
        self.assertEqual(received_seqs(col, "plain"), list(range(5000)))
        self.assertIn("RELP session open", agent.stderr_text())
        self.assertEqual(agent.stop(), 0)

        from test_tls import make_certs
        certs = make_certs(self.path("certs"))
        tcol = self.relp_collector(certs)
        tlog = FastWriter(self.path("in", "tls.log"), "tls")
        tlog.write(3000)
        tagent = self.start_agent(
            tlog.path, self.output(tcol.address, tls={
                # imrelp (librelp over GnuTLS) asks for a client certificate signed by its CA.
                "ca_file": os.path.join(certs, "ca.pem"),
                "cert_file": os.path.join(certs, "client.pem"),
                "key_file": os.path.join(certs, "client.key")}),
            "tls")
        wait_for(lambda: len(received_seqs(tcol, "tls")) >= 3000, timeout=30,
                 what="3000 lines over RELP/TLS")
        self.assertEqual(received_seqs(tcol, "tls"), list(range(3000)))
        err = tagent.stderr_text()
        self.assertRegex(err, r"TLS established .*TLSv1\.[23]")
        self.assertIn("RELP session open", err)
        self.assertEqual(tagent.stop(), 0)

    def crash_scenario(self, kind, results, rate=20000, seconds=30, every=3.0):
        """`kind` relp or tcp: rsyslog SIGKILLed every `every` s and restarted on its port."""
        tag = kind
        if kind == "relp":
            col = self.relp_collector()
        else:
            col = RealCollector("rsyslog", self.path(f"imtcp-{free_port()}"), syslog_parse=True)
            col.start()
            self.addCleanup(col.close)
        log = FastWriter(self.path("in", f"{kind}.log"), tag)
        self.start_agent(log.path, self.output(col.address, kind), kind)
        log.start(rate, seconds)
        t0, kills = time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            time.sleep(every)
            col.kill()
            kills += 1
            col.start()
        log.join()
        sent = log.count
        if kind == "relp":
            try:
                wait_for(lambda: len(set(received_seqs(col, tag))) >= sent, timeout=60,
                         interval=0.5, what="every RELP line")
            except AssertionError:
                pass  # reported with the loss figures below
        else:
            last, since = -1, time.monotonic()
            while time.monotonic() - since < 3 and time.monotonic() - t0 < seconds + 40:
                n = len(col.data())
                if n != last:
                    last, since = n, time.monotonic()
                time.sleep(0.5)
        results[kind] = loss_report(kind.upper(), sent, received_seqs(col, tag)) + (kills,)

    def outage_scenario(self, results, rate=2000, down=60):
        col = self.relp_collector()
        log = FastWriter(self.path("in", "outage.log"), "outage")
        log.write(1000)
        agent = self.start_agent(log.path, self.output(col.address), "outage")
        wait_for(lambda: len(received_seqs(col, "outage")) >= 1000, timeout=30,
                 what="the first lines")
        col.kill()
        log.start(rate, down)
        time.sleep(5)
        rss_early = rss_kib(agent.pid)
        samples = []
        while log._thread.is_alive():
            samples.append(rss_kib(agent.pid))
            time.sleep(1)
        rss_late = rss_kib(agent.pid)
        col.start()
        sent = log.count
        try:
            wait_for(lambda: len(set(received_seqs(col, "outage"))) >= sent, timeout=60,
                     interval=0.5, what="every line after the outage")
        except AssertionError:
            pass
        lost, dups, _ = loss_report("OUTAGE", sent, received_seqs(col, "outage"))
        results["outage"] = (sent, lost, dups, rss_early, rss_late, max(samples or [0]))

    def test_collector_killed_every_few_seconds_and_down_for_a_minute(self):
        results, errors = {}, []

        def run(fn, *args):
            try:
                fn(*args)
            except BaseException as e:  # reported in the main thread
                errors.append(e)
        threads = [threading.Thread(target=run, args=(self.crash_scenario, "relp", results)),
                   threading.Thread(target=run, args=(self.crash_scenario, "tcp", results)),
                   threading.Thread(target=run, args=(self.outage_scenario, results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        relp_lost, relp_dups, relp_text, relp_kills = results["relp"]
        _, _, tcp_text, tcp_kills = results["tcp"]
        print(f"\n  kill test ({relp_kills} SIGKILLs of rsyslog in 30 s, 20,000 lines/s):"
              f"\n  {relp_text}\n  {tcp_text} (tcp output to imtcp, {tcp_kills} SIGKILLs)",
              flush=True)
        sent, lost, dups, rss_early, rss_late, rss_max = results["outage"]
        print(f"  outage: sent {sent} during 60 s down, lost {len(lost)}, duplicates {dups}; "
              f"agent RSS {rss_early} KiB after 5 s, {rss_late} KiB at the end, max {rss_max} KiB",
              flush=True)
        self.assertEqual(relp_lost[:20], [], relp_text)
        self.assertEqual(lost[:20], [], "lines lost across the outage")
        # Flat: the backlog stays in the file; what the agent holds is bounded per output.
        self.assertLess(rss_max - rss_early, 8 * 1024, "RSS grew during the outage")
        self.assertLess(rss_max, 96 * 1024)

    def fake_scenario(self, mode, expect_log, extra=None):
        fake = FakeRelp(mode)
        self.addCleanup(fake.close)
        log = FastWriter(self.path("in", f"{mode}.log"), mode)
        log.write(400)
        agent = self.start_agent(log.path, self.output(f"127.0.0.1:{fake.port}", **(extra or {})),
                                 mode)
        # The fault is in the first session; the lines it did not answer come again in the next.
        wait_for(lambda: fake.sessions >= 2 and set(fake.seqs(mode)) >= set(range(400)) and
                 len(fake.messages) > 400, timeout=30,
                 what=f"every line through the fake, some of them resent ({mode})")
        wait_for(lambda: re.search(expect_log, agent.stderr_text()), timeout=5,
                 what=f"the warning /{expect_log}/")
        self.assertEqual(agent.stop(), 0)

    def test_fake_server_rsp_500(self):
        self.fake_scenario("rsp500", r"refused transaction \d+: 500 the fake refuses")

    def test_fake_server_rsp_for_a_transaction_never_sent(self):
        self.fake_scenario("unknown", r"RELP protocol error: rsp for transaction \d+, never sent")

    def test_fake_server_stops_answering(self):
        self.fake_scenario("silent", r"no answer to RELP transaction \d+ within 1000 ms",
                           {"timeout": "1s"})


if __name__ == "__main__":
    main()
