"""Self-test of the e2e harness and the real collectors; needs no logsplice binary.

Sends lines with a plain Python TCP client to the fake collector, to rsyslog and to syslog-ng
(started through scripts/collector.sh) and checks that they land verbatim and in order.
"""

import errno
import socket
import threading
import time

from support import (HOST, Collector, E2ETest, LineWriter, compare_lines, main, wait_for,
                     write_config)


def send(address, data, close=True):
    host, port = address.rsplit(":", 1)
    assert host == HOST
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(data)
    if close:
        s.close()
        return None
    return s


def numbered(tag, count, payload=60):
    return [f"{tag} {i:08d} " + "p" * payload for i in range(count)]


def encode(lines):
    return "".join(line + "\n" for line in lines).encode()


# Lines a collector must keep exactly as sent: spacing, tabs, syslog-looking prefixes, UTF-8,
# digits first (not octet-counted framing), a carriage return, and 1 MiB of one line.
TRICKY = [
    "plain line",
    "  leading and trailing spaces  ",
    "tab\tseparated\tfields",
    "<13>Jan  1 00:00:00 host prog[42]: looks like syslog",
    "<165>1 2003-10-11T22:14:15.003Z host app - ID47 [x@1 a=\"b\"] rfc5424-looking",
    "123 starts with digits and a space",
    "utf-8: \u00e9\u00e8 \u4e2d\u6587 \U0001f600",
    'quotes "double" and \'single\' and back\\slash and %percent% and ${dollar}',
    "carriage return inside\rthe line",
    "x" * (1024 * 1024),
    "last line",
]


class HarnessTest(E2ETest):
    def test_write_config_formats_yaml(self):
        text = write_config({
            "agent": {"data_dir": "/tmp/d", "lockstep": False, "metrics": {"listen": "127.0.0.1:0"}},
            "inputs": [{"name": "app", "paths": ["/tmp/a/*.log", 'q"uote'], "exclude": [],
                        "max_line_bytes": "1MiB"}],
            "outputs": [{"name": "c", "type": "tcp", "addresses": ["127.0.0.1:5140"],
                         "backoff": {"initial": "100ms", "max": "2s"}, "inputs": ["app"]}],
        })
        self.assertEqual(text, "\n".join([
            "agent:",
            '  data_dir: "/tmp/d"',
            "  lockstep: false",
            "  metrics:",
            '    listen: "127.0.0.1:0"',
            "inputs:",
            '  - name: "app"',
            '    paths: ["/tmp/a/*.log", "q\\"uote"]',
            "    exclude: []",
            '    max_line_bytes: "1MiB"',
            "outputs:",
            '  - name: "c"',
            '    type: "tcp"',
            '    addresses: ["127.0.0.1:5140"]',
            "    backoff:",
            '      initial: "100ms"',
            '      max: "2s"',
            '    inputs: ["app"]',
        ]) + "\n")

    def test_compare_lines_reports(self):
        self.assertIsNone(compare_lines(["a", "b"], ["a", "b"]))
        report = compare_lines(["a", "b", "c"], ["a", "c", "c"])
        self.assertIn("missing 1, duplicates 1, unexpected 0", report)
        self.assertIn("first difference at index 1: expected 'b', got 'c'", report)
        # at-least-once: a replayed suffix is fine, a gap or a reorder is not
        self.assertIsNone(compare_lines(list("abcd"), list("abcbcd"), allow_duplicates=True))
        self.assertIn("missing 1", compare_lines(list("abcd"), list("abd"), allow_duplicates=True))
        self.assertIsNotNone(compare_lines(list("abc"), list("acb"), allow_duplicates=True))

    def test_wait_for_names_what_it_waited_for(self):
        self.assertEqual(wait_for(lambda: 7, timeout=1, what="seven"), 7)
        with self.assertRaisesRegex(AssertionError, r"timed out after 0.1s waiting for the moon"):
            wait_for(lambda: False, timeout=0.1, what="the moon")
        with self.assertRaisesRegex(AssertionError, r"last error: FileNotFoundError"):
            wait_for(lambda: open(self.path("nope")), timeout=0.1, what="a file")

    def test_line_writer_appends_numbered_lines(self):
        w = LineWriter(self.path("app.log"), tag="app", payload_bytes=10)
        w.write(3)
        w.start(rate=200)
        wait_for(lambda: len(w.lines) >= 20, timeout=5, what="20 lines written")
        w.stop()
        with open(w.path) as f:
            self.assertEqual(f.read().splitlines(), w.lines)
        self.assertEqual(w.lines[0], "app 00000000 abcdefghij")
        self.assertEqual(w.lines[19][:12], "app 00000019")


class FakeCollectorTest(E2ETest):
    def test_receives_in_order_per_connection(self):
        col = self.collector()
        send(col.address, encode(["one", "two"]))
        send(col.address, encode(TRICKY))
        col.wait_lines(2 + len(TRICKY))
        self.assertEqual(col.connection_count(), 2)
        self.assertLines(["one", "two"] + TRICKY, col.lines())
        self.assertEqual(col.connections()[0], b"one\ntwo\n")

    def test_stall_then_resume(self):
        col = Collector(rcvbuf=16 * 1024).start()
        self.addCleanup(col.close)
        s = send(col.address, b"before\n", close=False)
        col.wait_lines(1)
        col.stall()
        s.setblocking(False)
        sent, blocked = 0, False
        chunk = b"y" * 1023 + b"\n"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # fill both socket buffers until the sender blocks
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                blocked = True
                break
        self.assertTrue(blocked, "a stalled collector must push back on the sender")
        received = col.byte_count()
        self.assertEqual(received, len(b"before\n"), "nothing is read while stalled")
        col.resume()
        s.setblocking(True)
        s.sendall(b"after\n")
        s.close()
        wait_for(lambda: col.data().endswith(b"after\n"), 10, "the data sent during the stall")
        self.assertEqual(col.byte_count(), len(b"before\n") + sent + len(b"after\n"))

    def test_refuse_then_reopen_same_port(self):
        col = self.collector()
        port = col.port
        held = send(col.address, b"first\n", close=False)
        col.wait_lines(1)
        col.refuse()
        with self.assertRaises(ConnectionRefusedError):
            send(col.address, b"refused\n")
        wait_for(lambda: held.recv(1) == b"", 5, "the open connection to be dropped")
        held.close()
        col.reopen()
        self.assertEqual(col.port, port)
        send(col.address, b"second\n")
        col.wait_lines(2)
        self.assertEqual(col.lines(), ["first", "second"])

    def test_kill_drops_connection_mid_stream(self):
        col = self.collector()
        s = send(col.address, b"complete\npartial li", close=False)
        wait_for(lambda: col.byte_count() == 19, 5, "19 bytes")
        col.kill()

        def send_fails():
            try:
                s.sendall(b"ne\n")
                return False
            except OSError as e:
                return e.errno in (errno.ECONNRESET, errno.EPIPE)
        wait_for(send_fails, 5, "the sender to see the connection reset")
        s.close()
        self.assertEqual(col.open_connections(), 0)
        self.assertEqual(col.lines(), ["complete"])  # the partial line stays incomplete
        send(col.address, b"ne\n")  # the listener still accepts: a resend completes the stream
        col.wait_lines(2)
        self.assertEqual(col.lines(), ["complete", "partial line"])


class RealCollectorTest(E2ETest):
    def check_collector(self, kind):
        col = self.real_collector(kind)
        lines = numbered(kind, 5000)
        # Two connections one after the other, the second from several writes, like a shipper.
        send(col.address, encode(lines[:2000]))
        col.wait_lines(2000)
        s = send(col.address, b"", close=False)
        data = encode(lines[2000:] + TRICKY)
        for i in range(0, len(data), 65536):
            s.sendall(data[i:i + 65536])
        s.close()
        expected = lines + TRICKY
        col.wait_lines(len(expected), timeout=30)
        self.assertLines(expected, col.lines())

        # Restart on the same port: later lines are appended to the same file.
        port = col.port
        self.assertEqual(col.stop(), 0, col.stderr_text())
        col.start()
        self.assertEqual(col.port, port)
        send(col.address, b"after restart\n")
        col.wait_lines(len(expected) + 1)
        self.assertEqual(col.lines()[-1], "after restart")

    def test_rsyslog(self):
        self.check_collector("rsyslog")

    def test_syslog_ng(self):
        self.check_collector("syslog-ng")

    def test_concurrent_connections_keep_each_stream_in_order(self):
        for kind in ("rsyslog", "syslog-ng"):
            with self.subTest(kind=kind):
                col = self.real_collector(kind)
                streams = {t: numbered(f"{kind}-{t}", 2000, payload=20) for t in ("a", "b", "c")}
                threads = [threading.Thread(target=send, args=(col.address, encode(v)))
                           for v in streams.values()]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                got = col.wait_lines(6000, timeout=30)
                for tag, lines in streams.items():
                    self.assertLines(lines, [g for g in got if g.startswith(f"{kind}-{tag} ")])

    def test_limits_documented(self):
        """Empty lines are dropped and over-long lines split (see tests/e2e/README.md)."""
        for kind in ("rsyslog", "syslog-ng"):
            with self.subTest(kind=kind):
                col = self.real_collector(kind)
                col.stop()
                col.max_msg_size = 1000
                col.start()
                send(col.address, b"a\n\nb\n" + b"z" * 2500 + b"\nend\n")
                got = col.wait_lines(5)
                wait_for(lambda: col.lines()[-1:] == ["end"], 10, f"{kind}: the last line")
                got = col.lines()
                self.assertEqual(got[:2], ["a", "b"], f"{kind} drops the empty line")
                pieces = got[2:-1]
                self.assertEqual([len(p) for p in pieces][:2], [1000, 1000])
                lost = 2500 - sum(len(p) for p in pieces)
                self.assertEqual(lost, 2 if kind == "rsyslog" else 0,
                                 f"{kind} lost {lost} bytes splitting: {[len(p) for p in pieces]}")


if __name__ == "__main__":
    main()
