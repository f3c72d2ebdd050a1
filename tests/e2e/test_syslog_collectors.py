"""Self-test of the event-format harness; needs no logsplice binary.

A Python sender writes RFC 5424 messages with octet-counted framing (as the agent's `format:
syslog` does) to rsyslog and syslog-ng run by `scripts/collector.sh --syslog-parse`, and checks
each record they write: host, app name, the logsplice@32473 params (values with '"', '\\' and
']'), and the MSG (multiline, NUL, invalid UTF-8, control bytes) as `expected_text` says each
collector reports it. Also checks the parsers and comparisons test_event_formats.py relies on.
"""

import os
import random
import socket

from support import HOST, E2ETest, main, wait_for
from support_events import (SD_ID, collector_events, compare_events, expected_text, json_events,
                            octet_frame, parse_octet_frames, parse_sd, parse_syslog_message,
                            real_syslog_collector, source_events, syslog_message)

TRICKY_MSGS = [
    b"hello world",
    b"2026-11-30 12:00:00.001 ERROR boom\njava.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)"
    b"\n\tat a.B.main(B.java:9)",
    b"  two leading spaces and a trailing one ",
    b"nul \x00 inside",
    b"invalid utf-8 \xff\xfe and a cut \xc3",
    b"controls \x01\x1b\x7f tab\tcr\r end",
    b"utf-8 \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80",
    b"quotes \" back\\slash ] bracket [x@1 a=\"b\"] looks like SD",
    b"123 starts with digits",
    b"x" * 100000,
]
TRICKY_FILE = '/var/log/app "q" \\ ]/a.log'
FIELDS = [("env", "prod"), ("team", 'pay"ments]\\')]


def send_frames(address, msgs, chunk=7001):
    """Sends the octet-counted frames in pieces of `chunk` bytes (frames straddle writes)."""
    host, port = address.rsplit(":", 1)
    data = b"".join(octet_frame(m) for m in msgs)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        for i in range(0, len(data), chunk):
            s.sendall(data[i:i + chunk])


class Parsers(E2ETest):
    def test_syslog_message_round_trip(self):
        raw = syslog_message("e2e-host-1", "app", TRICKY_FILE, 1234, "app", b"a ] b\nc",
                             fields=FIELDS, partial=True)
        self.assertTrue(raw.startswith(b"<14>1 2026-11-30T21:20:00.123456Z e2e-host-1 app - - ["
                                       b"logsplice@32473 file=\"/var/log/app \\\"q\\\" \\\\ \\]"))
        m = parse_syslog_message(raw)
        self.assertEqual((m["host"], m["app"], m["procid"], m["msgid"], m["pri"]),
                         ("e2e-host-1", "app", "-", "-", 14))
        self.assertEqual(m["params"], {"file": TRICKY_FILE, "offset": "1234", "input": "app",
                                       "env": "prod", "team": 'pay"ments]\\', "partial": "true"})
        self.assertEqual(m["msg"], b"a ] b\nc")
        self.assertEqual(parse_syslog_message(syslog_message("h", "a", "/f", 0, "a", b""))["msg"],
                         b"")

    def test_octet_frames(self):
        data = b"".join(octet_frame(m) for m in TRICKY_MSGS)
        self.assertEqual(parse_octet_frames(data), (TRICKY_MSGS, b""))
        frames, rest = parse_octet_frames(data[:-10])
        self.assertEqual(frames, TRICKY_MSGS[:-1])
        self.assertEqual(len(rest), len(octet_frame(TRICKY_MSGS[-1])) - 10)
        self.assertEqual(parse_octet_frames(b"11 hello world1"), ([b"hello world"], b"1"))
        with self.assertRaises(ValueError):
            parse_octet_frames(b"hello world\n")

    def test_sd_parse(self):
        self.assertEqual(parse_sd('[a@1 x="1" y="q\\"\\\\\\]"][b@2]'),
                         {"a@1": {"x": "1", "y": 'q"\\]'}, "b@2": {}})

    def test_source_events_and_compare(self):
        path = self.path("app.log")
        with open(path, "wb") as f:
            f.write(b"2026-01-01 a\n\tat x\n\tat y\n2026-01-02 b\n2026-01-03 c\ncont\npartial")
        self.assertEqual(source_events(path, multiline=True),
                         [(0, b"2026-01-01 a\n\tat x\n\tat y"), (25, b"2026-01-02 b"),
                          (38, b"2026-01-03 c\ncont")])
        self.assertEqual(source_events(path)[:2], [(0, b"2026-01-01 a"), (13, b"\tat x")])
        exp = [(0, "a"), (5, "b"), (9, "c")]
        self.assertIsNone(compare_events(exp, exp))
        self.assertIsNone(compare_events(exp, exp[:2] + exp[1:], allow_duplicates=True))
        self.assertIn("delivered again", compare_events(exp, exp[:2] + exp[1:]))
        self.assertIn("missing 1", compare_events(exp, [exp[0], exp[2]]))
        self.assertIn("out of order", compare_events(exp, [exp[0], exp[2], exp[1]]))
        self.assertIn("changed 1", compare_events(exp, [exp[0], (5, "B"), exp[2]]))
        # An event cut in two: its first part has the right offset, a wrong text.
        self.assertIn("lengths 1/0", compare_events(exp, [(0, "")] + exp[1:]))

    def test_json_events(self):
        objs, rest = json_events(b'{"message":"a\\u0000\\n"}\n{"message":"b"}\n{"mess')
        self.assertEqual([o["message"] for o in objs], ["a\x00\n", "b"])
        self.assertEqual(rest, b'{"mess')
        self.assertEqual(expected_text("json", b"a\xffb\xc3\xa9"), "a\ufffdb\u00e9")


class SyslogCollectors(E2ETest):
    def check(self, kind):
        col = real_syslog_collector(self, kind)
        rng = random.Random(int(os.environ.get("LOGSPLICE_SEED", "7")))
        msgs = TRICKY_MSGS + [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
                              for _ in range(200)]
        sent = [(i * 100, syslog_message("e2e-host-1", "app-1", TRICKY_FILE, i * 100, "app-1", m,
                                         fields=FIELDS)) for i, m in enumerate(msgs)]
        send_frames(col.address, [s for _, s in sent])
        wait_for(lambda: len(collector_events(kind, col.data())) >= len(sent), timeout=30,
                 what=f"{len(sent)} records from {kind}")
        got = collector_events(kind, col.data())
        for ev in got:
            self.assertEqual((ev["host"], ev["app"]), ("e2e-host-1", "app-1"))
            p = dict(ev["params"])
            self.assertEqual({k: p.pop(k) for k in ("file", "input", "env", "team")},
                             {"file": TRICKY_FILE, "input": "app-1", "env": "prod",
                              "team": 'pay"ments]\\'})
            self.assertEqual(list(p), ["offset"])
        expected = [(i * 100, expected_text(kind, m)) for i, m in enumerate(msgs)]
        report = compare_events(expected, [(int(e["params"]["offset"]), e["text"]) for e in got])
        self.assertIsNone(report, f"{kind}: {report}")
        # A multiline MSG is one record with its newlines.
        self.assertEqual(got[1]["text"].count("\n"), 3)

    def test_rsyslog(self):
        self.check("rsyslog")

    def test_syslog_ng(self):
        self.check("syslog-ng")

    def test_restart_keeps_appending(self):
        for kind in ("rsyslog", "syslog-ng"):
            with self.subTest(kind=kind):
                col = real_syslog_collector(self, kind)
                one = syslog_message("h", "a", "/f", 0, "a", b"one")
                send_frames(col.address, [one])
                wait_for(lambda: len(collector_events(kind, col.data())) == 1, 10, "one record")
                self.assertEqual(col.stop(), 0, col.stderr_text())
                col.start()
                send_frames(col.address, [syslog_message("h", "a", "/f", 4, "a", b"two")])
                wait_for(lambda: len(collector_events(kind, col.data())) == 2, 10, "two records")
                self.assertEqual([e["text"] for e in collector_events(kind, col.data())],
                                 ["one", "two"])
                self.assertEqual(col.address.split(":")[0], HOST)
                self.assertIn(SD_ID, col.data().decode("utf-8", "replace"))


if __name__ == "__main__":
    main()
