"""Smoke test of the event outputs with the real binary: a tcp output with `format: json` and
one with `format: syslog` (octet counting) read the same file, with the Python fake collector
on the other end. Every line arrives exactly once, as one event, with the offset it has in the
file, the configured host name, the input's name and fields; a multiline input's stack trace
arrives as one event. (The full suite against rsyslog and syslog-ng is test_event_formats.py.)"""

import json
import re
import signal
import urllib.request

from support import E2ETest, LineWriter, main, wait_for


def offsets_of(lines, start=0):
    """The file offset of each line of `lines` written one after the other from `start`."""
    out, at = [], start
    for line in lines:
        out.append(at)
        at += len(line.encode()) + 1
    return out


def json_events(data):
    """The objects of NDJSON `data` (complete lines only)."""
    return [json.loads(line) for line in data.decode("utf-8").split("\n")[:-1]]


def octet_frames(data):
    """The messages of RFC 6587 octet-counted `data`; raises on a malformed frame."""
    frames, pos = [], 0
    while pos < len(data):
        sp = data.index(b" ", pos)
        length = int(data[pos:sp])
        if sp + 1 + length > len(data):
            break  # a frame still arriving
        frames.append(data[sp + 1:sp + 1 + length])
        pos = sp + 1 + length
    return frames


SYSLOG = re.compile(
    rb'^<14>1 (\S+) (\S+) (\S+) - - \[logsplice@32473 file="([^"]*)" offset="(\d+)" '
    rb'input="([^"]*)"((?: [A-Za-z_]+="[^"]*")*)\] (.*)$', re.S)


def metric(endpoint, name, labels):
    with urllib.request.urlopen(f"http://{endpoint}/metrics", timeout=5) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(name + labels + " "):
            return float(line.split()[-1])
    raise AssertionError(f"metric {name}{labels} not found")


class EventOutputSmoke(E2ETest):
    def test_json_and_syslog_each_line_once_with_its_offset(self):
        cj, cs = self.collector(), self.collector()
        log = LineWriter(self.path("in", "app.log"), tag="ev", payload_bytes=80)
        log.write(2000)
        cfg = self.config(
            [{"name": "app", "paths": [log.path], "start_at": "beginning",
              "fields": {"env": "prod", "dc": "eu1"}}],
            [{"name": "js", "type": "tcp", "addresses": [cj.address], "format": "json",
              "inputs": ["app"]},
             {"name": "sl", "type": "tcp", "addresses": [cs.address], "format": "syslog",
              "inputs": ["app"]}],
            agent={"hostname": "smokehost", "metrics": {"listen": "127.0.0.1:0"}})
        agent = self.agent(cfg)
        port = wait_for(lambda: re.search(r"metrics listening on \S+ \(port (\d+)\)",
                                          agent.stderr_text()), what="metrics port")
        endpoint = f"127.0.0.1:{port.group(1)}"
        log.write(3000)  # more, while it runs
        want = list(zip(log.lines, offsets_of(log.lines)))

        wait_for(lambda: cj.data().count(b"\n") >= len(want), timeout=30, what="json events")
        got = [(e["message"], e["offset"]) for e in json_events(cj.data())]
        self.assertEqual(got, want)
        for e in json_events(cj.data())[:3]:
            self.assertEqual(e["host"], "smokehost")
            self.assertEqual(e["input"], "app")
            self.assertEqual(e["file"], log.path)
            self.assertEqual((e["env"], e["dc"]), ("prod", "eu1"))
            self.assertNotIn("partial", e)

        wait_for(lambda: len(octet_frames(cs.data())) >= len(want), timeout=30,
                 what="syslog frames")
        got = []
        for frame in octet_frames(cs.data()):
            m = SYSLOG.match(frame)
            self.assertIsNotNone(m, frame[:200])
            ts, host, app, path, offset, inp, fields, msg = m.groups()
            self.assertEqual((host, app, inp, path), (b"smokehost", b"app", b"app",
                                                      log.path.encode()))
            self.assertEqual(fields, b' env="prod" dc="eu1"')
            got.append((msg.decode(), int(offset)))
        self.assertEqual(got, want)

        # The copy path is measured: each event output read every file byte once.
        size = want[-1][1] + len(want[-1][0]) + 1
        for out in ("js", "sl"):
            labels = f'{{output="{out}"}}'
            self.assertEqual(metric(endpoint, "logsplice_bytes_copied_total", labels), size)
            self.assertEqual(metric(endpoint, "logsplice_events_sent_total", labels), len(want))
            self.assertEqual(metric(endpoint, "logsplice_event_invalid_utf8_total", labels), 0)


    def test_multiline_stack_trace_is_one_event(self):
        c = self.collector()
        path = self.path("in", "java.log")
        events = []
        for i in range(50):
            events.append(f"2026-11-30 12:00:{i % 60:02d} ERROR request {i} failed\n"
                          f"java.lang.IllegalStateException: boom {i}\n"
                          f"\tat com.example.Foo.bar(Foo.java:{i})\n"
                          f"\tat com.example.Main.main(Main.java:7)\n")
        with open(path, "w") as f:
            f.write("".join(events))
        cfg = self.config(
            [{"name": "java", "paths": [path], "start_at": "beginning",
              "multiline": {"start_pattern": r"^\d{4}-\d\d-\d\d ", "timeout": "300ms"}}],
            [{"name": "js", "type": "tcp", "addresses": [c.address], "format": "json",
              "inputs": ["java"]}])
        self.agent(cfg)
        # The last event is sent by the timeout, the others by the next start line.
        wait_for(lambda: c.data().count(b"\n") >= len(events), timeout=20, what="events")
        got = json_events(c.data())
        self.assertEqual([e["message"] for e in got], [e[:-1] for e in events])
        self.assertEqual([e["offset"] for e in got], offsets_of([e[:-1] for e in events]))

    def test_pending_event_at_stop_is_sent_after_restart(self):
        c = self.collector()
        path = self.path("in", "java.log")
        first = "2026-11-30 12:00:00 ERROR one\n\tat a.B.c(B.java:1)\n"
        second = "2026-11-30 12:00:01 ERROR two\n\tat a.B.d(B.java:2)\n"
        third = "2026-11-30 12:00:02 INFO three\n"
        with open(path, "w") as f:
            f.write(first + second)
        cfg = self.config(
            [{"name": "java", "paths": [path], "start_at": "beginning",
              "multiline": {"start_pattern": r"^\d{4}-\d\d-\d\d ", "timeout": "1h"}}],
            [{"name": "js", "type": "tcp", "addresses": [c.address], "format": "json",
              "inputs": ["java"]}])
        agent = self.agent(cfg)
        wait_for(lambda: c.data().count(b"\n") >= 1, timeout=20, what="the first event")
        # The second event is pending (no start line follows, no timeout): a stop does not send
        # it, and its file's checkpoint stays before it.
        self.assertEqual(agent.stop(), 0)
        self.assertEqual([e["message"] for e in json_events(c.data())], [first[:-1]])
        with open(path, "a") as f:
            f.write(third)
        self.agent(cfg)
        wait_for(lambda: c.data().count(b"\n") >= 2, timeout=20, what="the second event")
        got = json_events(c.data())
        self.assertEqual([e["message"] for e in got], [first[:-1], second[:-1]])
        self.assertEqual(got[1]["offset"], len(first))

    def test_reload_to_json_and_new_fields_rebuild_the_output(self):
        c = self.collector()
        log = LineWriter(self.path("in", "app.log"), tag="rl", payload_bytes=30)
        log.write(100)

        def write(fmt, fields):
            return self.config(
                [{"name": "app", "paths": [log.path], "start_at": "beginning",
                  "fields": fields}],
                [{"name": "out", "type": "tcp", "addresses": [c.address], "format": fmt,
                  "inputs": ["app"]}])

        agent = self.agent(write("raw", {"k": "1"}))
        wait_for(lambda: c.data().count(b"\n") >= 100, what="raw lines")
        self.assertEqual(c.data().decode().split("\n")[:-1], log.lines)
        for n, (fmt, fields) in enumerate([("json", {"k": "1"}), ("json", {"k": "2"})], 1):
            write(fmt, fields)
            agent.signal(signal.SIGHUP)
            wait_for(lambda: agent.stderr_text().count("reload done") >= n, what="reload")
            self.assertIn("1 changed", agent.stderr_text().split("reload done")[n])
            new = log.write(10)
            first = len(log.lines) - 10
            wait_for(lambda: c.data().count(b"\n") >= first + 10 * 1, what="events")
            tail = c.data().split(b"\n")[first:-1]
            events = [json.loads(line) for line in tail]
            self.assertEqual([e["message"] for e in events], new)
            self.assertEqual({e["k"] for e in events}, {fields["k"]})

    def test_pieces_of_a_line_longer_than_max_line_bytes_are_partial(self):
        c = self.collector()
        path = self.path("in", "long.log")
        # A line still being written is cut at max_line_bytes (a complete line that arrives in
        # one batch is not: finding it would mean scanning every byte).
        with open(path, "w") as f:
            f.write("short\n" + "L" * 250)
        cfg = self.config(
            [{"name": "app", "paths": [path], "start_at": "beginning", "max_line_bytes": 100}],
            [{"name": "js", "type": "tcp", "addresses": [c.address], "format": "json",
              "inputs": ["app"]}])
        self.agent(cfg)
        wait_for(lambda: c.data().count(b"\n") >= 3, timeout=20, what="the first pieces")
        with open(path, "a") as f:
            f.write("\nafter\n")
        wait_for(lambda: c.data().count(b"\n") >= 5, timeout=20, what="events")
        got = [(e["message"], e["offset"], e.get("partial", False))
               for e in json_events(c.data())]
        self.assertEqual(got, [("short", 0, False), ("L" * 100, 6, True), ("L" * 100, 106, True),
                               ("L" * 50, 206, True), ("after", 257, False)])


if __name__ == "__main__":
    main()
