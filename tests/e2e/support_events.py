"""Event outputs (`format: syslog | json`) for the e2e tests: a reference RFC 5424 formatter for
Python senders, parsers for what arrives (octet-counted frames, NDJSON, the records that
`scripts/collector.sh --syslog-parse` writes), and the expected events of a source file.

An event is compared as (file, offset, message text). What a collector makes of the message's
bytes differs (tests/e2e/README.md, "Event formats"): `expected_text(kind, raw)` says what it is
for each receiver, from the bytes in the source file.
"""

import json
import os
import re

from support_net import RealCollector, free_port

SD_ID = "logsplice@32473"
FIXED_PARAMS = ("file", "offset", "input")
# The multiline start pattern the tests use, as the agent's PCRE2 and as a Python regex.
TIMESTAMP_START = r"^\d{4}-\d\d-\d\d"
_TIMESTAMP_RE = re.compile(rb"\d{4}-\d\d-\d\d")


# --- what the agent sends (a reference for Python senders) ---------------------------------

def sd_escape(value):
    """An SD PARAM-VALUE: '"', '\\' and ']' escaped with a backslash (RFC 5424 6.3.3)."""
    return re.sub(r'(["\\\]])', r"\\\1", value)


def syslog_message(host, app, file, offset, input_name, msg, fields=(), pri=14,
                   timestamp="2026-11-30T21:20:00.123456Z", partial=False):
    """One RFC 5424 message as the agent writes it (bytes; MSG as given, no BOM)."""
    params = [("file", file), ("offset", str(offset)), ("input", input_name), *fields]
    if partial:
        params.append(("partial", "true"))
    sd = "[" + SD_ID + "".join(f' {k}="{sd_escape(v)}"' for k, v in params) + "]"
    head = f"<{pri}>1 {timestamp} {host} {app} - - {sd}".encode()
    return head + (b" " + msg if msg else b"")


def octet_frame(msg):
    """RFC 6587 octet counting: "LEN SP MSG", LEN in bytes."""
    return str(len(msg)).encode() + b" " + msg


def parse_octet_frames(data):
    """(frames, rest): the complete "LEN SP MSG" frames of `data` and the bytes after them (a
    frame cut by a dropped connection). Raises ValueError on a stream that is not framed."""
    frames, i = [], 0
    while i < len(data):
        sp = data.find(b" ", i, i + 12)
        if sp < 0 or not data[i:sp].isdigit():
            if len(data) - i < 12 and data[i:].isdigit():
                break  # a cut length
            raise ValueError(f"no octet count at byte {i}: {data[i:i + 40]!r}")
        n = int(data[i:sp])
        if sp + 1 + n > len(data):
            break
        frames.append(data[sp + 1:sp + 1 + n])
        i = sp + 1 + n
    return frames, data[i:]


_SD_PARAM = re.compile(r'\s*([^=\s\]"]+)="((?:[^"\\]|\\.)*)"', re.S)


def parse_sd(text):
    """{SD-ID: {PARAM: value}} of an RFC 5424 STRUCTURED-DATA string ("[id k="v" ...]...")."""
    out, i = {}, 0
    while i < len(text) and text[i] == "[":
        j = i + 1
        while j < len(text) and text[j] not in " ]":
            j += 1
        params = out.setdefault(text[i + 1:j], {})
        while True:
            m = _SD_PARAM.match(text, j)
            if not m:
                break
            params[m.group(1)] = re.sub(r"\\(.)", r"\1", m.group(2), flags=re.S)
            j = m.end()
        if j >= len(text) or text[j] != "]":
            raise ValueError(f"bad STRUCTURED-DATA at {j}: {text!r}")
        i = j + 1
    return out


def parse_syslog_message(msg):
    """A dict (pri, version, timestamp, host, app, procid, msgid, params, msg: bytes) of one
    RFC 5424 message as the agent writes it (one SD element; SD values without ']' inside)."""
    m = re.match(rb"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ", msg)
    if not m:
        raise ValueError(f"not RFC 5424: {msg[:80]!r}")
    rest = msg[m.end():]
    # The SD ends at the first ']' not escaped by a backslash.
    i = 1
    while True:
        j = rest.index(b"]", i)
        k = j - 1
        slashes = 0
        while rest[k] == 0x5C:
            slashes += 1
            k -= 1
        if slashes % 2 == 0:
            break
        i = j + 1
    sd = parse_sd(rest[:j + 1].decode("utf-8"))
    body = rest[j + 1:]
    if body and not body.startswith(b" "):
        raise ValueError(f"no SP between SD and MSG: {msg[:120]!r}")
    return {"pri": int(m.group(1)), "timestamp": m.group(2).decode(), "host": m.group(3).decode(),
            "app": m.group(4).decode(), "procid": m.group(5).decode(),
            "msgid": m.group(6).decode(), "params": sd.get(SD_ID, {}), "msg": body[1:]}


# --- what arrives ----------------------------------------------------------------------------

def _json_lines(data):
    """Each complete line of `data` as a JSON object (undecodable bytes kept by surrogateescape:
    rsyslog writes invalid UTF-8 of a MSG through as it is)."""
    lines = data.decode("utf-8", "surrogateescape").split("\n")[:-1]
    return [json.loads(line) for line in lines if line]


def collector_events(kind, data):
    """Events written by `collector.sh KIND --syslog-parse`, normalised to dicts with host, app,
    params ({PARAM: value} of logsplice@32473) and text (the MSG as the collector wrote it).
    A record without that SD (a raw line parsed as RFC 3164) raises ValueError."""
    out = []
    for rec in _json_lines(data):
        if kind == "rsyslog":
            params = parse_sd(rec["sd"]).get(SD_ID, {})
        else:
            params = rec.get("sd", {}).get(SD_ID, {})
        if not params:
            raise ValueError(f"{kind} wrote a record without {SD_ID} structured data: {rec}")
        out.append({"host": rec["host"], "app": rec["app"], "params": params,
                    "text": rec["msg"]})
    return out


def json_events(data):
    """Complete NDJSON objects of `data` (str values; invalid UTF-8 must not occur: json.loads
    of the strict decoding fails on it) and the bytes of a last, incomplete line."""
    head, _, rest = data.rpartition(b"\n")
    objs = [json.loads(line) for line in head.decode("utf-8").split("\n") if line] if head else []
    return objs, rest


def expected_text(kind, raw):
    """The MSG text each receiver reports for the raw event bytes `raw`:
    - "json": the agent's NDJSON: valid UTF-8 as is, each ill-formed sequence U+FFFD;
    - "syslog": the bytes exactly (a Python parser of octet-counted frames);
    - "rsyslog": the bytes as they are (invalid UTF-8 too), but its sanitizing on receive
      changes a message with a NUL: a last NUL is dropped; then, from the byte before the first
      remaining NUL on, each NUL is written as "#000" and every other byte below 0x20 (LF, TAB
      included) is dropped; what comes before is untouched;
    - "syslog-ng": valid UTF-8 as is; NUL and each byte of an ill-formed sequence become the
      text "\\xHH" (lowercase hex); NULs and LFs at the end are dropped.
    Returned as str; undecodable bytes as surrogateescape code points where they pass through."""
    if kind == "json":
        return raw.decode("utf-8", "replace")
    if kind == "syslog":
        return raw.decode("utf-8", "surrogateescape")
    if kind == "rsyslog":
        if raw.endswith(b"\x00"):
            raw = raw[:-1]
        nul = raw.find(b"\x00")
        if nul >= 0:
            start = max(nul - 1, 0)
            tail = bytes(b for b in raw[start:] if b >= 0x20 or b == 0)
            raw = raw[:start] + tail.replace(b"\x00", b"#000")
        return raw.decode("utf-8", "surrogateescape")
    if kind == "syslog-ng":
        raw = raw.rstrip(b"\n\x00")
        out = []
        for ch in raw.decode("utf-8", "surrogateescape"):
            cp = ord(ch)
            if cp == 0:
                out.append("\\x00")
            elif 0xDC80 <= cp <= 0xDCFF:
                out.append(f"\\x{cp - 0xDC00:02x}")
            else:
                out.append(ch)
        return "".join(out)
    raise ValueError(kind)


# --- what was written ------------------------------------------------------------------------

def source_events(path, multiline=False):
    """[(offset, raw bytes)] of the events of a file as the agent cuts them: each complete line,
    or with `multiline` a line matching TIMESTAMP_START and the lines after it up to the next
    one, joined by "\\n" (no trailing newline). A last line without newline is left out."""
    with open(path, "rb") as f:
        data = f.read()
    events, pos = [], 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        line = data[pos:nl]
        if multiline and events and not _TIMESTAMP_RE.match(line):
            off, body = events[-1]
            events[-1] = (off, body + b"\n" + line)
        else:
            events.append((pos, line))
        pos = nl + 1
    return events


def _text_diff(expected, got):
    i = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b),
             min(len(expected), len(got)))
    lo = max(i - 30, 0)
    return (f"lengths {len(expected)}/{len(got)}, first difference at {i}: expected "
            f"{expected[lo:i + 50]!r}, got {got[lo:i + 50]!r}")


def compare_events(expected, got, allow_duplicates=False):
    """None when `got` ([(offset, text)]) is `expected` ([(offset, text)]) in order; with
    `allow_duplicates`, a replayed run of earlier events may appear again (at-least-once).
    Otherwise a report: first difference, missing / duplicate / unexpected / changed counts."""
    exp = dict(expected)
    order = [o for o, _ in expected]
    seen, dups, unexpected, changed, first_bad = set(), 0, 0, 0, None
    last_index = -1
    index = {o: i for i, o in enumerate(order)}
    for n, (off, text) in enumerate(got):
        if off not in exp:
            unexpected += 1
            first_bad = first_bad or f"event {n}: unexpected offset {off}: {text[:120]!r}"
            continue
        if text != exp[off]:
            changed += 1
            first_bad = first_bad or f"event {n} at offset {off}: {_text_diff(exp[off], text)}"
        if off in seen:
            dups += 1
            if not allow_duplicates:
                first_bad = first_bad or f"event {n}: offset {off} delivered again"
            continue
        if index[off] != last_index + 1:
            first_bad = first_bad or (f"event {n}: offset {off} out of order (after event at "
                                      f"index {last_index} of {len(order)})")
        seen.add(off)
        last_index = index[off]
    missing = len(order) - len(seen)
    if first_bad is None and missing == 0:
        return None
    return (f"{first_bad or 'no difference in what arrived'}; expected {len(order)}, got "
            f"{len(got)}: missing {missing}, duplicates {dups}, unexpected {unexpected}, "
            f"changed {changed}")


def duplicates(got):
    """How many events of `got` ([(offset, ...)]) repeat an earlier offset."""
    offsets = [o for o, *_ in got]
    return len(offsets) - len(set(offsets))


def real_syslog_collector(test, kind):
    """A started rsyslog / syslog-ng parsing RFC 5424 (collector.sh --syslog-parse) for an
    E2ETest, stopped at its end; missing collectors are handled as E2ETest.real_collector."""
    ok, why = RealCollector.available(kind)
    if not ok:
        if os.environ.get("CI"):
            test.fail(f"{kind} is not installed ({why}); .ci/run must install it")
        test.skipTest(f"{kind} not installed ({why}): run scripts/install-collectors.sh")
    c = RealCollector(kind, test.path(f"{kind}-syslog-{free_port()}"), syslog_parse=True).start()
    test.addCleanup(c.close)
    return c
