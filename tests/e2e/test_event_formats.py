"""Event outputs (`format: syslog | json`) with the real binary: RFC 5424 with octet counting to
real rsyslog and syslog-ng (parsing it: collector.sh --syslog-parse), to a Python parser of the
exact bytes, and NDJSON to the fake collector. Every event arrives once, in order, with the
host name, app name, file, offset (the bytes at `offset` in the file start the message) and
input fields; Java stack traces arrive as one event each; binary lines arrive as each receiver
is specified to report them (support_events.expected_text); a collector restart loses nothing;
a raw output next to a syslog one still copies nothing; kill -9 of the agent during a multiline
stream loses no event and never delivers one cut in two.

These tests need the event sink, and fail (never skip) without it: when the binary refuses
`format: syslog`, every test fails saying so; when it accepts the key but ships raw lines, every
test fails at once because what arrives does not parse as events.
"""

import os
import re
import sys
import threading
import time
import urllib.request

from support import E2ETest, LOGSPLICE_BIN, main, run_cli, wait_for, write_config
from support_events import (TIMESTAMP_START, collector_events, compare_events,
                            duplicates, expected_text, json_events, parse_octet_frames,
                            parse_syslog_message, real_syslog_collector, source_events)

HOSTNAME = "e2e-host-1"
FIELDS = {"env": "e2e", "team": 'pay"ments] \\ x'}
TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
JSON_KEYS = ["timestamp", "host", "input", "file", "offset", "message"]

_sink_probe = {}


def event_sink_missing(tmpdir):
    """None when the binary accepts a tcp output with `format: syslog`; else why not."""
    if "result" not in _sink_probe:
        path = os.path.join(tmpdir, "probe.yaml")
        write_config({"agent": {"data_dir": os.path.join(tmpdir, "probe-data"),
                                "hostname": HOSTNAME},
                      "inputs": [{"name": "app", "paths": [os.path.join(tmpdir, "p.log")]}],
                      "outputs": [{"name": "s", "type": "tcp", "addresses": ["127.0.0.1:9"],
                                   "format": "syslog", "inputs": ["app"]}]}, path)
        r = run_cli("check", "--config", path)
        _sink_probe["result"] = None if r.returncode == 0 else (
            f"{LOGSPLICE_BIN} refuses `format: syslog` (check exit {r.returncode}):\n"
            f"{r.stdout}{r.stderr}\nThese tests need the event sink (format syslog/json): they"
            f" land with it.")
    return _sink_probe["result"]


# --- what the tests write --------------------------------------------------------------------

BINARY_LINES = [
    b"bin %06d nul \x00 inside, invalid \xff\xfe utf-8, a cut \xc3 sequence",
    b"bin %06d controls \x01\x1b\x7f tab\tcr\r end",
    b"bin %06d utf-8 \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 quotes \" \\ ] [x@1 a=\"b\"]",
]


class PlainWriter:
    """plain.log: numbered text lines, every 7th one with binary bytes."""

    def __init__(self, path):
        self.path, self.count = path, 0

    def line(self, seq):
        if seq % 7 == 3:
            return BINARY_LINES[(seq // 7) % len(BINARY_LINES)] % seq
        return b"plain %06d " % seq + b"abcdefghijklmnopqrstuvwxyz0123456789" * 2

    def write(self, n):
        with open(self.path, "ab") as f:
            f.write(b"".join(self.line(self.count + i) + b"\n" for i in range(n)))
        self.count += n


class JavaWriter:
    """java.log: log4j-like events starting with a timestamp; most carry a stack trace. With
    `split`, each event's lines go out in several writes (a trace arriving in pieces)."""

    def __init__(self, path, split=False):
        self.path, self.count, self.split = path, 0, split
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def event(self, seq):
        head = (f"2026-11-30 12:{seq // 60000 % 60:02d}:{seq // 1000 % 60:02d}.{seq % 1000:03d} "
                f"ERROR [worker-{seq % 8}] c.e.Svc - request {seq:06d} failed")
        depth = seq % 9  # 0: a one-line event
        lines = [head]
        if depth:
            lines.append(f"java.lang.IllegalStateException: boom {seq}")
            lines += [f"\tat com.example.Svc.step{i}(Svc.java:{100 + i})" for i in range(depth)]
            if depth > 4:
                lines += ["Caused by: java.io.IOException: disk full", "\t... 3 more"]
        return [line.encode() for line in lines]

    def write(self, n):
        with self._lock:
            with open(self.path, "ab") as f:
                for i in range(n):
                    lines = self.event(self.count + i)
                    if self.split and len(lines) > 2:
                        cut = len(lines) // 2
                        f.write(b"".join(x + b"\n" for x in lines[:cut]))
                        f.flush()
                        f.write(b"".join(x + b"\n" for x in lines[cut:]))
                    else:
                        f.write(b"".join(x + b"\n" for x in lines))
                    f.flush()
            self.count += n

    def start(self, per_second):
        def loop():
            while not self._stop.is_set():
                self.write(max(1, per_second // 50))
                time.sleep(0.02)
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self):
        if self._thread:
            self._stop.set()
            self._thread.join()
            self._thread = None


# --- metrics ---------------------------------------------------------------------------------

def metric_series(text, name):
    """{labels text: value} of every series of metric `name` in Prometheus text."""
    out = {}
    for line in text.splitlines():
        m = re.match(re.escape(name) + r"(\{[^}]*\})? (\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


def series_for(series, output):
    hits = {k: v for k, v in series.items()
            if re.search(r'(output|sink)="' + re.escape(output) + '"', k)}
    if len(hits) != 1:
        raise AssertionError(f"no single series for output {output!r} in {series}")
    return next(iter(hits.values()))


class EventFormats(E2ETest):
    def setUp(self):
        super().setUp()
        missing = event_sink_missing(self.tmp)
        if missing:
            self.fail(missing)

    # --- set-up ---
    def inputs(self, plain=True, java=True, split=False, ml_timeout="200ms"):
        self.plain = PlainWriter(self.path("in", "plain.log")) if plain else None
        self.java = JavaWriter(self.path("in", "java.log"), split=split) if java else None
        if self.java:
            self.addCleanup(self.java.stop)
        inputs = []
        if plain:
            inputs.append({"name": "plain", "paths": [self.plain.path], "start_at": "beginning",
                           "fields": dict(FIELDS)})
        if java:
            inputs.append({"name": "java", "paths": [self.java.path], "start_at": "beginning",
                           "multiline": {"start_pattern": TIMESTAMP_START, "timeout": ml_timeout}})
        return inputs

    def write(self, plain=0, java=0):
        if self.plain and plain:
            self.plain.write(plain)
        if self.java and java:
            self.java.write(java)

    def expected(self, kind):
        """{input: [(offset, text)]} of what was written, as receiver `kind` reports it."""
        out = {}
        if self.plain:
            out["plain"] = [(o, expected_text(kind, b))
                            for o, b in source_events(self.plain.path)]
        if self.java:
            out["java"] = [(o, expected_text(kind, b))
                           for o, b in source_events(self.java.path, multiline=True)]
        return out

    def agent_config(self, outputs, inputs, metrics=False):
        agent = {"hostname": HOSTNAME}
        if metrics:
            agent["metrics"] = {"listen": "127.0.0.1:0"}
        return self.config(inputs, outputs, agent=agent)

    def paths(self):
        return {"plain": self.plain.path if self.plain else None,
                "java": self.java.path if self.java else None}

    def check_sources(self, events):
        """Each event (input, file, offset, raw-ish text) points at its own bytes: the file at
        `offset` starts with the event's first line (for the receivers that keep bytes)."""
        paths = self.paths()
        data = {}
        for k, p in paths.items():
            if p:
                with open(p, "rb") as f:
                    data[k] = f.read()
        for inp, file, off, first in events:
            self.assertEqual(file, paths[inp])
            self.assertTrue(data[inp].startswith(first, off),
                            f"{inp}: the bytes at offset {off} are not the event's first line "
                            f"{first[:80]!r}")

    def wait_parsed(self, predicate, what, timeout=30):
        """wait_for(predicate), but what the receiver cannot parse (ValueError: not
        octet-counted, not RFC 5424 with our SD, not JSON) fails at once."""
        bad = []

        def check():
            try:
                return predicate()
            except ValueError as e:
                bad.append(e)
                return True
        wait_for(check, timeout=timeout, interval=0.1, what=what)
        if bad:
            self.fail(f"{what}: what arrived does not parse as events: {bad[0]}\n(an output "
                      f"with `format: syslog|json` that ships raw lines, i.e. no event sink, "
                      f"fails here)")

    def wait_complete(self, got_fn, what, timeout=60):
        """Waits until every expected (input, offset) arrived at least once."""
        def done():
            want = {(i, o) for i, evs in self.expected("syslog").items() for o, _ in evs}
            return want <= {(i, o) for i, o, _ in got_fn()}
        self.wait_parsed(done, what, timeout)

    def assertEvents(self, kind, got, allow_duplicates=False):
        """`got` = [(input, offset, text)] matches what was written, per input, in order."""
        for inp, exp in self.expected(kind).items():
            mine = [(o, t) for i, o, t in got if i == inp]
            report = compare_events(exp, mine, allow_duplicates)
            self.assertIsNone(report, f"{kind}, input {inp}: {report}")
            if allow_duplicates:
                sys.stderr.write(f"[{self.id()}] {kind} input {inp}: {len(exp)} events, "
                                 f"{duplicates(mine)} delivered again\n")
        self.assertEqual({i for i, _, _ in got}, set(self.expected(kind)))

    # --- syslog to the real collectors ---
    def collector_got(self, kind, col):
        if "Invalid frame header" in col.stderr_text():  # syslog-ng drops what is not framed
            raise ValueError(f"{kind} got a stream that is not octet-counted:\n"
                             f"{col.stderr_text()[-600:]}")
        return [(e["params"].get("input"), int(e["params"]["offset"]), e["text"])
                for e in collector_events(kind, col.data())]

    def check_collector_records(self, kind, col):
        paths = self.paths()
        for e in collector_events(kind, col.data()):
            p = dict(e["params"])
            inp = p.pop("input")
            self.assertEqual((e["host"], e["app"]), (HOSTNAME, inp))
            self.assertEqual(p.pop("file"), paths[inp])
            self.assertRegex(p.pop("offset"), r"^\d+$")
            self.assertEqual(p, dict(FIELDS) if inp == "plain" else {})

    def syslog_to(self, kind, restart=False):
        col = real_syslog_collector(self, kind)
        inputs = self.inputs()
        self.write(plain=600, java=200)
        cfg = self.agent_config([{"name": "syslog-out", "type": "tcp",
                                  "addresses": [col.address], "format": "syslog",
                                  "backoff": {"initial": "50ms", "max": "500ms"},
                                  "inputs": ["plain", "java"]}], inputs)
        agent = self.agent(cfg)
        self.write(plain=400, java=100)
        self.wait_complete(lambda: self.collector_got(kind, col), f"every event at {kind}")
        if restart:
            self.java.start(per_second=500)  # events keep coming across the restart
            n = len(self.collector_got(kind, col))
            self.wait_parsed(lambda: len(self.collector_got(kind, col)) > n + 100,
                             f"the stream to {kind} to be flowing")
            col.stop()  # a graceful restart: it keeps what it received
            self.write(plain=1000)  # while it is down: the file is the buffer
            col.start()
            self.write(plain=500)
            self.java.stop()
            self.wait_complete(lambda: self.collector_got(kind, col),
                               f"every event at {kind} after its restart")
        self.check_collector_records(kind, col)
        self.assertEvents(kind, self.collector_got(kind, col), allow_duplicates=restart)
        self.assertEqual(agent.stop(), 0)

    def test_syslog_to_rsyslog(self):
        self.syslog_to("rsyslog")

    def test_syslog_to_syslog_ng(self):
        self.syslog_to("syslog-ng")

    def test_rsyslog_restart_mid_stream_loses_nothing(self):
        self.syslog_to("rsyslog", restart=True)

    def test_syslog_ng_restart_mid_stream_loses_nothing(self):
        self.syslog_to("syslog-ng", restart=True)

    # --- syslog and json to the fake collector: the exact bytes ---
    def test_syslog_wire_format_is_exact(self):
        col = self.collector()
        inputs = self.inputs()
        self.write(plain=300, java=100)
        cfg = self.agent_config([{"name": "syslog-out", "type": "tcp", "format": "syslog",
                                  "addresses": [col.address], "inputs": ["plain", "java"]}],
                                inputs)
        agent = self.agent(cfg)
        self.write(plain=200, java=50)

        def got():
            frames, _ = parse_octet_frames(col.data())
            return [parse_syslog_message(f) for f in frames]
        self.wait_complete(lambda: [(m["params"]["input"], int(m["params"]["offset"]), m["msg"])
                                    for m in got()], "every event at the fake collector")
        frames, rest = parse_octet_frames(col.data())
        self.assertEqual(rest, b"", "the stream ends on a frame boundary")
        msgs = [parse_syslog_message(f) for f in frames]
        for m in msgs:
            inp = m["params"]["input"]
            self.assertEqual((m["pri"], m["host"], m["app"], m["procid"], m["msgid"]),
                             (14, HOSTNAME, inp, "-", "-"))
            self.assertRegex(m["timestamp"], TS_RE)
            self.assertEqual(list(m["params"]), ["file", "offset", "input"] +
                             (list(FIELDS) if inp == "plain" else []))
        self.check_sources([(m["params"]["input"], m["params"]["file"],
                             int(m["params"]["offset"]), m["msg"].split(b"\n")[0]) for m in msgs])
        self.assertEvents("syslog", [(m["params"]["input"], int(m["params"]["offset"]),
                                      m["msg"].decode("utf-8", "surrogateescape")) for m in msgs])
        self.assertEqual(agent.stop(), 0)

    def json_got(self, col):
        objs, _ = json_events(col.data())
        return [(o["input"], o["offset"], o["message"]) for o in objs]

    def test_json_to_fake_collector(self):
        col = self.collector()
        inputs = self.inputs()
        self.write(plain=300, java=100)
        cfg = self.agent_config([{"name": "json-out", "type": "tcp", "format": "json",
                                  "addresses": [col.address], "inputs": ["plain", "java"]}],
                                inputs)
        agent = self.agent(cfg)
        self.write(plain=200, java=50)
        self.wait_complete(lambda: self.json_got(col), "every JSON event")
        objs, rest = json_events(col.data())
        self.assertEqual(rest, b"", "the stream ends with a whole object")
        paths = self.paths()
        for o in objs:
            inp = o["input"]
            self.assertEqual(list(o), JSON_KEYS + (list(FIELDS) if inp == "plain" else []))
            self.assertRegex(o["timestamp"], TS_RE)
            self.assertEqual((o["host"], o["file"]), (HOSTNAME, paths[inp]))
            self.assertIsInstance(o["offset"], int)
            if inp == "plain":
                self.assertEqual({k: o[k] for k in FIELDS}, FIELDS)
            self.assertNotIn("partial", o)
        self.check_sources([(o["input"], o["file"], o["offset"],
                             o["message"].split("\n")[0].encode()) for o in objs
                            if "\ufffd" not in o["message"]])
        self.assertEvents("json", self.json_got(col))
        self.assertEqual(agent.stop(), 0)

    # --- a raw output next to a syslog one ---
    def test_raw_output_beside_a_syslog_output_copies_nothing(self):
        raw_col, sys_col = self.collector(), self.collector()
        inputs = self.inputs(java=False)
        self.write(plain=2000)
        cfg = self.agent_config(
            [{"name": "raw-out", "type": "tcp", "addresses": [raw_col.address],
              "inputs": ["plain"]},
             {"name": "syslog-out", "type": "tcp", "format": "syslog",
              "addresses": [sys_col.address], "inputs": ["plain"]}], inputs, metrics=True)
        agent = self.agent(cfg)
        port = wait_for(lambda: re.search(r"metrics listening on \S+ \(port (\d+)\)",
                                          agent.stderr_text()), what="metrics port")
        self.write(plain=2000)
        size = os.path.getsize(self.plain.path)
        wait_for(lambda: raw_col.byte_count() >= size, timeout=30, what="raw-out complete")
        with open(self.plain.path, "rb") as f:
            self.assertEqual(raw_col.data(), f.read())
        self.wait_complete(lambda: [(m["params"]["input"], int(m["params"]["offset"]), m["msg"])
                                    for m in map(parse_syslog_message,
                                                 parse_octet_frames(sys_col.data())[0])],
                           "every event at syslog-out")

        def scrape():
            with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/metrics",
                                        timeout=5) as r:
                return r.read().decode()
        text = scrape()
        copied = metric_series(text, "logsplice_bytes_copied_total")
        self.assertEqual(series_for(copied, "raw-out"), 0, copied)
        self.assertGreater(series_for(copied, "syslog-out"), 0, copied)
        sent = metric_series(text, "logsplice_sink_bytes_sent_total")
        self.assertEqual(series_for(sent, "raw-out"), size)
        self.assertGreater(series_for(sent, "syslog-out"), 0)
        self.assertEqual(agent.stop(), 0)

    # --- kill -9 during a multiline stream ---
    def test_kill9_during_multiline_stream_loses_and_cuts_nothing(self):
        col = self.collector()
        # A trace written in two pieces is one event only if the pieces come within the multiline
        # timeout: 1 s leaves room for a writer descheduled on a busy machine.
        inputs = self.inputs(plain=False, split=True, ml_timeout="1s")
        self.write(java=300)
        cfg = self.agent_config([{"name": "json-out", "type": "tcp", "format": "json",
                                  "addresses": [col.address], "inputs": ["java"]}], inputs)
        agent = self.agent(cfg)
        self.java.start(per_second=2000)
        self.wait_parsed(lambda: len(self.json_got(col)) > 1000, "1000 events")
        agent.kill9()
        self.java.write(200)  # while it is down
        self.agent(cfg)
        wait_for(lambda: self.java.count > 4000, timeout=30, what="the writer to go on")
        self.java.stop()
        self.wait_complete(lambda: self.json_got(col), "every event after the restart")
        start = re.compile(TIMESTAMP_START.encode())
        got, cut_objects = [], 0
        for conn in col.connections():  # a connection cut by kill -9 may end mid-object
            objs, rest = json_events(conn)
            cut_objects += bool(rest)
            got += [("java", o["offset"], o["message"]) for o in objs]
        for _, off, text in got:
            self.assertTrue(start.match(text.encode()), f"event at {off} does not start with "
                                                        f"the timestamp: {text[:80]!r}")
        sys.stderr.write(f"[kill9] {len(got)} events delivered, "
                         f"{duplicates([(o, t) for _, o, t in got])} again, "
                         f"{cut_objects} connection(s) ended mid-object\n")
        # A cut event would be one whose text differs from the whole event at its offset.
        self.assertEvents("json", got, allow_duplicates=True)


if __name__ == "__main__":
    main()
