"""Rotation, truncation, deletion, long and binary lines against the real binary (issue 3).

Every test compares each line the collector received with what was written. Lines carry the
file generation ("g00003 000001234 ...") so that order can be checked per file: a rotated file
is drained from its open fd while the new one is already followed, so only the order inside one
file is a guarantee, not the order across files.

copytruncate (logrotate's or by hand) loses the lines written between the copy and the
truncate: that is inherent to the mode, not to the agent. Those tests therefore write in bursts
and truncate only once the collector has everything, and then check that nothing was lost.
"""
import os
import shutil
import subprocess
import threading
import time
import unittest

from support import E2ETest, compare_lines, main, wait_for

PAYLOAD = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"  # 40 bytes


def tcp(name, col, inputs=("app",)):
    return {"name": name, "type": "tcp", "addresses": [col.address], "inputs": list(inputs),
            "backoff": {"initial": "50ms", "max": "300ms"}}


class GenWriter:
    """Appends "g<gen> <seq> <payload>" lines with O_APPEND, a batch per write(2).

    `gen` counts the files the writer opened (0 = the first); `written` holds every line
    written, as (gen, text). `reopen()` closes the fd and opens the path again, as an
    application does after rotation (creating the file if it is missing).
    """

    def __init__(self, path):
        self.path = path
        self.gen = -1
        self.seq = 0
        self.written = []
        self.bytes = 0
        self.fd = None
        self._lock = threading.Lock()
        self.reopen()

    def reopen(self):
        with self._lock:
            if self.fd is not None:
                os.close(self.fd)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                              0o644)
            self.gen += 1

    def close(self):
        with self._lock:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None

    def batch(self, n):
        with self._lock:
            lines = [f"g{self.gen:05d} {self.seq + i:09d} {PAYLOAD}" for i in range(n)]
            data = ("\n".join(lines) + "\n").encode()
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
            self.seq += n
            self.bytes += len(data)
            self.written.extend((self.gen, line) for line in lines)
            return lines

    def lines(self):
        with self._lock:
            return [line for _, line in self.written]


def per_file_report(written, got):
    """None when `got` holds every written line exactly once, in order within each generation;
    else a report. `written` is [(gen, line)]."""
    by_gen = {}
    for gen, line in written:
        by_gen.setdefault(gen, []).append(line)
    got_by_gen = {}
    unexpected = []
    for line in got:
        gen = int(line[1:6]) if line.startswith("g") and line[1:6].isdigit() else None
        if gen in by_gen:
            got_by_gen.setdefault(gen, []).append(line)
        else:
            unexpected.append(line)
    problems = []
    for gen, lines in sorted(by_gen.items()):
        report = compare_lines(lines, got_by_gen.get(gen, []))
        if report:
            problems.append(f"file generation {gen}: {report}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected lines, first {unexpected[0][:120]!r}")
    if not problems:
        return None
    head = (f"{len(written)} lines written in {len(by_gen)} files, {len(got)} received;"
            f" {len(problems)} problem(s):")
    return "\n".join([head] + problems[:8])


def logrotate_bin():
    for candidate in (shutil.which("logrotate"), "/usr/sbin/logrotate"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class RotationBase(E2ETest):
    def start_agent(self, col, paths, **input_extra):
        inp = {"name": "app", "paths": list(paths), "start_at": "beginning"}
        inp.update(input_extra)
        agent = self.agent(self.config([inp], [tcp("c", col)]))
        wait_for(lambda: "following" in agent.stderr_text(), what="the agent to follow app.log")
        return agent

    def finish(self, agent, col, expected_bytes, timeout=60.0, check_exit=True):
        """Waits until the collector has `expected_bytes` (or `timeout`), then stops the agent
        (SIGTERM drains) and waits until the collector read the connection to its end, so
        col.lines() is everything the agent will ever send. Returns a timeout note or ''.
        With check_exit=False the exit code is left in self.exit_code for the test to check
        after the content (a crash then does not hide what arrived)."""
        note = ""
        try:
            wait_for(lambda: col.byte_count() >= expected_bytes or not agent.running(), timeout,
                     f"{expected_bytes} bytes at the collector")
            if not agent.running():
                note = (f"the agent died (exit code {agent.proc.returncode}) with"
                        f" {col.byte_count()} of {expected_bytes} bytes delivered; ")
        except AssertionError as e:
            note = f"{e} (have {col.byte_count()}); "
        died = not agent.running()
        self.exit_code = agent.stop()
        if check_exit:
            self.assertEqual(self.exit_code, 0, "exit code after SIGTERM"
                             + (" (the agent had died before SIGTERM)" if died else ""))
        wait_for(lambda: col.open_connections() == 0, 10, "the collector to read to EOF")
        return note

    def assertPerFile(self, written, got, note=""):
        report = per_file_report(written, got)
        if report:
            self.fail(note + report)


class RenameCreate(RotationBase):
    """rename app.log -> app.log.N, create a new app.log, the writer reopens: sustained writing
    at 20,000 lines/s (200 lines per write every 10 ms) with a rotation every 150 ms."""

    def sustained(self, paths, duration=10.0, rotate_every=0.15, batch_lines=200,
                  batch_every=0.010, **input_extra):
        col = self.collector()
        log = self.path("logs", "app.log")
        w = GenWriter(log)
        agent = self.start_agent(col, paths, **input_extra)
        rotations = [0]
        stop = threading.Event()
        errors = []

        def write_loop():
            try:
                start = next_at = last_rot = time.monotonic()
                while not stop.is_set() and time.monotonic() - start < duration:
                    w.batch(batch_lines)
                    now = time.monotonic()
                    if now - last_rot >= rotate_every:
                        rotations[0] += 1
                        os.rename(log, f"{log}.{rotations[0]}")
                        w.batch(batch_lines)  # the app still writes to the renamed inode...
                        w.reopen()            # ...until it reopens (creating a new app.log)
                        last_rot = now
                    next_at += batch_every
                    stop.wait(max(0.0, next_at - time.monotonic()))
            except Exception as e:  # reported by the main thread
                errors.append(e)

        t0 = time.monotonic()
        thread = threading.Thread(target=write_loop, daemon=True, name="rotating-writer")
        thread.start()
        self.addCleanup(stop.set)
        thread.join(duration + 30)
        elapsed = time.monotonic() - t0
        self.assertFalse(errors, f"writer failed: {errors}")
        w.close()
        written = len(w.written)
        note = self.finish(agent, col, w.bytes, timeout=90)
        got = col.lines()
        rate = written / elapsed
        # How often a line of an older file arrived after a line of a newer one. Here the writer
        # finishes with the renamed file before it creates the next one, so DESIGN.md's "in
        # order, across rotation" holds for the whole stream (0 in every run so far, also with
        # two of these files running at once on 2 cores); asserted after the per-file check.
        inversions, newest = 0, -1
        for line in got:
            gen = int(line[1:6]) if line[1:6].isdigit() else -1
            inversions += gen < newest
            newest = max(newest, gen)
        print(f"\n  {self.id()}: {written} lines ({w.bytes} bytes) in {elapsed:.1f}s"
              f" = {rate:.0f} lines/s, {rotations[0]} rotations; received {len(got)} lines"
              f" ({col.byte_count()} bytes); {inversions} lines arrived after a newer"
              f" file's", flush=True)
        self.assertPerFile(w.written, got, note)
        self.assertEqual(inversions, 0, "lines of a rotated file arrived after the new file's")
        self.assertGreaterEqual(rotations[0], 50, "rotations")
        self.assertGreaterEqual(rate, 20000 * 0.9, "the writer fell behind 20,000 lines/s")
        return agent

    def test_rename_create_sustained_glob_excludes_rotated(self):
        self.sustained([self.path("logs", "app.log")])

    def test_rename_create_sustained_glob_matches_rotated(self):
        # app.log* matches app.log.N too: the renamed file is the same inode, never shipped twice.
        self.sustained([self.path("logs", "app.log*")])

    def test_rename_create_sustained_polling(self):
        # Stat polling every 100 ms: a rotation every 200 ms so each generation is seen under
        # its name at least once (polling cannot find a file that was only ever app.log.N
        # with the app.log-only glob).
        agent = self.sustained([self.path("logs", "app.log")], duration=12.0, rotate_every=0.2,
                               poll=True, poll_interval="100ms")
        self.assertIn("stat polling", agent.stderr_text())

    def test_rename_create_sustained_polling_glob_matches_rotated(self):
        self.sustained([self.path("logs", "app.log*")], duration=12.0, rotate_every=0.2,
                       poll=True, poll_interval="100ms")


class Logrotate(RotationBase):
    """Debian's logrotate with a private state file (`logrotate -s STATE -f CONF`)."""

    def setUp(self):
        super().setUp()
        self.logrotate = logrotate_bin()
        if self.logrotate is None:
            subprocess.run(["apt-get", "install", "-y", "logrotate"], capture_output=True,
                           timeout=300)
            self.logrotate = logrotate_bin()
        if self.logrotate is None:
            if os.environ.get("CI"):
                self.fail("logrotate is not installed; scripts/install-deps.sh installs it")
            self.skipTest("logrotate not installed (apt-get install logrotate)")
        self.log = self.path("logs", "app.log")

    def rotate(self, mode):
        conf = self.path("logrotate.conf")
        with open(conf, "w") as f:
            f.write(f"{self.log} {{\n    rotate 500\n    {mode}\n    nocompress\n"
                    f"    missingok\n    ifempty\n}}\n")
        r = subprocess.run([self.logrotate, "-s", self.path("logrotate.state"), "-f", conf],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, f"logrotate failed: {r.stdout}{r.stderr}")

    def test_logrotate_create_while_writing(self):
        col = self.collector()
        w = GenWriter(self.log)
        agent = self.start_agent(col, [self.log])
        reopen = threading.Event()
        stop = threading.Event()
        errors = []

        def write_loop():  # 10,000 lines/s; reopens (like after postrotate) when asked
            try:
                next_at = time.monotonic()
                while not stop.is_set():
                    w.batch(100)
                    if reopen.is_set():
                        reopen.clear()
                        w.reopen()
                    next_at += 0.010
                    stop.wait(max(0.0, next_at - time.monotonic()))
            except Exception as e:
                errors.append(e)

        thread = threading.Thread(target=write_loop, daemon=True, name="writer")
        thread.start()
        self.addCleanup(stop.set)
        rotations = 12
        for i in range(rotations):
            seq = w.seq
            wait_for(lambda: w.seq >= seq + 2000, what="the writer to write 2000 lines")
            self.rotate("create")  # app.log -> app.log.1 (older ones shifted), new app.log
            reopen.set()
            wait_for(lambda: w.gen == i + 1, what="the writer to reopen app.log")
        seq = w.seq
        wait_for(lambda: w.seq >= seq + 2000, what="the writer to write 2000 lines")
        stop.set()
        thread.join(10)
        self.assertFalse(errors, f"writer failed: {errors}")
        w.close()
        self.assertTrue(os.path.exists(f"{self.log}.{rotations}"), "logrotate kept every file")
        note = self.finish(agent, col, w.bytes)
        got = col.lines()
        print(f"\n  logrotate create: {len(w.written)} lines written, {rotations} rotations,"
              f" {len(got)} received", flush=True)
        self.assertPerFile(w.written, got, note)

    def test_logrotate_copytruncate_in_bursts(self):
        col = self.collector()
        w = GenWriter(self.log)
        agent = self.start_agent(col, [self.log])
        rotations = 10
        for i in range(rotations + 1):
            # Three bursts per file: the first burst after a truncation is shorter than the
            # file was, so the agent sees it shrink even if it looks only after that burst.
            for _ in range(3):
                for _ in range(10):
                    w.batch(100)
                wait_for(lambda: col.byte_count() >= w.bytes, 20,
                         f"the collector to catch up ({w.bytes} bytes)")
            if i < rotations:
                self.rotate("copytruncate")  # the writer keeps its O_APPEND fd
                self.assertEqual(os.path.getsize(self.log), 0)
        w.close()
        note = self.finish(agent, col, w.bytes)
        got = col.lines()
        print(f"\n  logrotate copytruncate: {len(w.written)} lines written, {rotations}"
              f" rotations, {len(got)} received", flush=True)
        if note:
            self.fail(note + (compare_lines(w.lines(), got) or ""))
        self.assertLines(w.lines(), got)
        self.assertIn("truncated", agent.stderr_text())


class TruncateDelete(RotationBase):
    def test_copytruncate_by_hand_restarts_at_zero(self):
        col = self.collector()
        log = self.path("logs", "app.log")
        w = GenWriter(log)
        agent = self.start_agent(col, [log])
        for cycle in range(8):
            for _ in range(3):
                w.batch(500)
                wait_for(lambda: col.byte_count() >= w.bytes, 20, "the collector to catch up")
            shutil.copyfile(log, f"{log}.{cycle + 1}")
            subprocess.run(["truncate", "-s", "0", log], check=True)
            # The O_APPEND writer goes on at offset 0 at once: 200 lines < the 1500 before.
            w.batch(200)
        w.close()
        note = self.finish(agent, col, w.bytes)
        got = col.lines()
        self.assertEqual(agent.stderr_text().count("truncated"), 8, "truncations logged")
        if note:
            self.fail(note + (compare_lines(w.lines(), got) or ""))
        self.assertLines(w.lines(), got)

    def test_delete_while_writer_has_it_open_is_drained(self):
        col = self.collector()
        log = self.path("logs", "app.log")
        w = GenWriter(log)
        agent = self.start_agent(col, [log])
        w.batch(1000)
        wait_for(lambda: col.byte_count() >= w.bytes, 20, "the first 1000 lines")
        os.unlink(log)
        w.batch(500)  # to the deleted file, still open
        wait_for(lambda: "deleted" in agent.stderr_text(), what="the deletion to be noticed")
        w.batch(500)
        wait_for(lambda: col.byte_count() >= w.bytes, 20, "the lines written after unlink")
        w.reopen()  # delete + recreate: a new file with the same name
        w.batch(1000)
        note = self.finish(agent, col, w.bytes)
        self.assertPerFile(w.written, col.lines(), note)

    def test_delete_and_recreate_while_old_is_still_written(self):
        col = self.collector()
        log = self.path("logs", "app.log")
        old = GenWriter(log)
        agent = self.start_agent(col, [log])
        old.batch(1000)
        wait_for(lambda: col.byte_count() >= old.bytes, 20, "the first 1000 lines")
        os.unlink(log)
        new = GenWriter(log)
        new.gen = 1  # its lines say g00001
        for _ in range(5):
            old.batch(200)
            new.batch(200)
        old.close()
        new.batch(1000)
        new.close()
        note = self.finish(agent, col, old.bytes + new.bytes)
        self.assertPerFile(old.written + new.written, col.lines(), note)

    def test_rotated_while_collector_down_is_caught_up_later(self):
        # The file is the buffer: rotated files the sink has not read yet stay open (within
        # rotated_retention) until the collector is back, however long they have been idle.
        col = self.collector()
        col.refuse()
        log = self.path("logs", "app.log")
        w = GenWriter(log)
        agent = self.start_agent(col, [log], rotate_wait="200ms")
        wait_for(lambda: "retrying" in agent.stderr_text(), what="a connect failure logged")
        for i in range(30):
            w.batch(200)
            os.rename(log, f"{log}.{i + 1}")
            w.reopen()
            # Each file is followed (as app.log, or as app.log.N when it was created and
            # renamed between two inotify batches) before the collector comes back.
            wait_for(lambda: agent.stderr_text().count("input 'app': following") >= i + 2, 10,
                     f"file {i + 2} to be followed")
        w.batch(2000)
        # Scenario time, not synchronisation: the rotated files stay idle past rotate_wait.
        time.sleep(1.0)
        col.reopen()
        note = self.finish(agent, col, w.bytes, check_exit=False)
        self.assertPerFile(w.written, col.lines(), note)
        self.assertEqual(self.exit_code, 0, "exit code after SIGTERM")


def long_line(size):
    """`size` bytes without a newline, each 16-byte cell naming its own offset."""
    cells = (f"<{i:013d}>,".encode() for i in range(0, size, 16))
    return b"".join(cells)[:size]


class LongAndPartialLines(RotationBase):
    MAX = 64 * 1024

    def check_pieces(self, line, got):
        sizes = [len(p) for p in got]
        print(f"\n  {len(line)}-byte line arrived as pieces of {sizes} bytes", flush=True)
        self.assertTrue(all(s <= self.MAX for s in sizes), f"a piece is over 64 KiB: {sizes}")
        self.assertEqual(b"".join(got), line, "the pieces do not add up to the line")

    def test_long_line_written_in_pieces_is_cut_at_max_line_bytes(self):
        col = self.collector()
        log = self.path("logs", "app.log")
        open(log, "w").close()
        agent = self.start_agent(col, [log], max_line_bytes="64KiB", partial_line_timeout="1h")
        line = long_line(300 * 1024)
        with open(log, "ab", buffering=0) as f:
            f.write(b"before\n")
            col.wait_lines(1)
            written = 0
            for start in range(0, len(line), 40 * 1024):
                piece = line[start:start + 40 * 1024]
                f.write(piece)
                written += len(piece)
                cuts = (written - 1) // self.MAX  # the tail is cut once it is longer than max
                # The agent saw the unterminated tail and cut it: 64 KiB + "\n" per cut.
                wait_for(lambda: col.byte_count() >= 7 + cuts * (self.MAX + 1), 10,
                         f"{cuts} cut(s) of the unterminated line")
            f.write(b"\nafter\n")
        wait_for(lambda: col.data().endswith(b"\nafter\n"), 20, "the line after the long one")
        self.finish(agent, col, 0)
        data = col.data()
        self.assertTrue(data.startswith(b"before\n"))
        pieces = data[len(b"before\n"):-len(b"after\n")].split(b"\n")
        self.assertEqual(pieces[-1], b"")
        self.check_pieces(line, pieces[:-1])

    def test_long_line_written_at_once_is_delivered_whole(self):
        # A complete line inside one appended batch is not cut, even when longer than
        # max_line_bytes (inputs/follower.h: finding it would mean scanning every byte; only an
        # unterminated tail is cut). DESIGN.md says "longer lines are split, never dropped":
        # what is checked here is "never dropped, bytes intact", and the sizes are printed.
        col = self.collector()
        log = self.path("logs", "app.log")
        open(log, "w").close()
        agent = self.start_agent(col, [log], max_line_bytes="64KiB")
        line = long_line(300 * 1024 + 5)
        with open(log, "ab") as f:
            f.write(b"before\n" + line + b"\nafter\n")
        wait_for(lambda: col.data().endswith(b"\nafter\n"), 20, "the line after the long one")
        self.finish(agent, col, 0)
        data = col.data()
        self.assertTrue(data.startswith(b"before\n"))
        pieces = data[len(b"before\n"):-len(b"after\n")].split(b"\n")[:-1]
        print(f"\n  {len(line)}-byte line written at once arrived as pieces of"
              f" {[len(p) for p in pieces]} bytes", flush=True)
        self.assertEqual(b"".join(pieces), line, "the line's bytes changed")

    def test_final_line_without_newline_is_shipped_after_partial_line_timeout(self):
        col = self.collector()
        log = self.path("logs", "app.log")
        open(log, "w").close()
        agent = self.start_agent(col, [log], partial_line_timeout="300ms")
        t0 = time.monotonic()
        with open(log, "ab") as f:
            f.write(b"complete line\nno newline at the end")
        wait_for(lambda: b"no newline at the end\n" in col.data(), 5,
                 "the final line without newline (a newline added)")
        delay = time.monotonic() - t0
        print(f"\n  partial line shipped {delay * 1000:.0f} ms after it was written"
              f" (partial_line_timeout 300ms)", flush=True)
        self.assertGreaterEqual(delay, 0.29, "shipped before partial_line_timeout")
        with open(log, "ab") as f:
            f.write(b"next line\n")
        col.wait_lines(3)
        self.finish(agent, col, 0)
        self.assertEqual(col.lines(), ["complete line", "no newline at the end", "next line"])

    def test_final_line_without_newline_is_shipped_when_rotated_away(self):
        col = self.collector()
        log = self.path("logs", "app.log")
        open(log, "w").close()
        agent = self.start_agent(col, [log], partial_line_timeout="1h", rotate_wait="300ms")
        with open(log, "ab") as f:
            f.write(b"g00000 first\ng00000 second\ng00000 last, without newline")
        col.wait_lines(2)
        os.rename(log, log + ".1")
        with open(log, "ab") as f:
            f.write(b"g00001 new file\n")
        wait_for(lambda: b"g00000 last, without newline\n" in col.data(), 10,
                 "the rotated file's unterminated last line")
        col.wait_lines(4)
        # The rotated file is closed once drained and idle for rotate_wait: wait for that.
        wait_for(lambda: "closing rotated" in agent.stderr_text() or not agent.running(), 10,
                 "the rotated file to be closed")
        with open(log, "ab") as f:
            f.write(b"g00001 still shipping\n")
        wait_for(lambda: b"still shipping" in col.data() or not agent.running(), 10,
                 "a line written after the rotated file was closed")
        self.finish(agent, col, 0, check_exit=False)
        got = col.lines()
        self.assertEqual([x for x in got if x.startswith("g00000")],
                         ["g00000 first", "g00000 second", "g00000 last, without newline"])
        self.assertEqual([x for x in got if x.startswith("g00001")],
                         ["g00001 new file", "g00001 still shipping"],
                         f"agent exit code {self.exit_code}")
        self.assertEqual(len(got), 5, got)
        self.assertEqual(self.exit_code, 0, "exit code after SIGTERM (-11: SIGSEGV)")


class BinaryLines(RotationBase):
    def test_binary_lines_pass_untouched_across_rotation(self):
        col = self.collector()
        log = self.path("logs", "app.log")
        open(log, "w").close()
        agent = self.start_agent(col, [log])
        specials = [b"\x00", b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                    b"\r", b"\x1b[31m", b"\x00" * 100, bytes(range(1, 10)),
                    bytes(range(11, 256))]
        first = b"".join(b"bin %d " % i + s + b" end\n" for i, s in enumerate(specials)) * 200
        with open(log, "ab") as f:
            f.write(first)
        wait_for(lambda: col.byte_count() >= len(first), 20, "the first file's bytes")
        os.rename(log, log + ".1")
        second = b"".join(b"new %d " % i + s[::-1] + b"\n" for i, s in enumerate(specials)) * 200
        with open(log, "ab") as f:
            f.write(second)
        note = self.finish(agent, col, len(first) + len(second))
        data = col.data()
        self.assertEqual(len(data), len(first) + len(second), note)
        self.assertTrue(data == first + second, "bytes changed on the way"
                        f" (first difference at {next((i for i, (a, b) in enumerate(zip(data, first + second)) if a != b), None)})")


if __name__ == "__main__":
    main()
