"""The first data path: one file, the real binary, a TCP collector on 127.0.0.1 (issue 2)."""
import os
import signal

from support import E2ETest, LineWriter, main, run_cli, wait_for


def tcp(name, col, inputs=("app",), **extra):
    out = {"name": name, "type": "tcp", "addresses": [col.address], "inputs": list(inputs),
           "backoff": {"initial": "50ms", "max": "500ms"}}
    out.update(extra)
    return out


class DataPath(E2ETest):
    def test_appended_lines_arrive_in_order(self):
        col = self.collector()
        log = LineWriter(self.path("in", "app.log"), tag="app")
        log.write(1)
        cfg = self.config([{"name": "app", "paths": [log.path], "start_at": "end"}],
                          [tcp("c", col)])
        agent = self.agent(cfg)
        wait_for(lambda: "following" in agent.stderr_text(), what="the agent to follow the file")
        new = log.write(5000)
        col.wait_lines(5000, timeout=20)
        # start_at: end skips what was there at start-up.
        self.assertLines(new, col.lines())
        self.assertEqual(agent.stop(), 0)

    def test_start_at_beginning_sends_what_was_there(self):
        col = self.collector()
        log = LineWriter(self.path("in", "app.log"), tag="app")
        log.write(20000)
        cfg = self.config([{"name": "app", "paths": [log.path], "start_at": "beginning"}],
                          [tcp("c", col)])
        self.agent(cfg)
        log.write(100)
        col.wait_lines(20100, timeout=30)
        self.assertLines(log.lines, col.lines())

    def test_only_complete_lines_are_sent(self):
        col = self.collector()
        log = LineWriter(self.path("in", "app.log"), tag="app")
        cfg = self.config([{"name": "app", "paths": [log.path], "start_at": "beginning",
                            "partial_line_timeout": "1h"}], [tcp("c", col)])
        open(log.path, "w").close()
        self.agent(cfg)
        log.write(3)
        log.write_raw(b"half a li")
        col.wait_lines(3)
        wait_for(lambda: col.byte_count() >= len("\n".join(log.lines)) + 1, what="3 lines")
        self.assertFalse(b"half" in col.data(), "a partial line was sent")
        log.write_raw(b"ne\n")
        wait_for(lambda: b"half a line\n" in col.data(), what="the completed line")
        self.assertEqual(col.lines()[-1], "half a line")

    def test_missing_file_at_start_is_waited_for(self):
        col = self.collector()
        path = self.path("in", "later.log")
        cfg = self.config([{"name": "app", "paths": [path], "start_at": "end"}], [tcp("c", col)])
        agent = self.agent(cfg)
        wait_for(lambda: "started" in agent.stderr_text(), what="agent start")
        self.assertTrue(agent.running(), "a missing input file must not be fatal")
        log = LineWriter(path, tag="late")
        log.write(100)  # a file created while running is read from offset 0
        col.wait_lines(100)
        self.assertLines(log.lines, col.lines())

    def test_collector_refusing_at_start_loses_nothing(self):
        col = self.collector()
        col.refuse()
        log = LineWriter(self.path("in", "app.log"), tag="app")
        open(log.path, "w").close()
        cfg = self.config([{"name": "app", "paths": [log.path], "start_at": "beginning"}],
                          [tcp("c", col)])
        agent = self.agent(cfg)
        log.write(2000)  # the file is the buffer while the collector is down
        wait_for(lambda: "retrying" in agent.stderr_text(), what="a connect failure logged")
        col.reopen()
        col.wait_lines(2000, timeout=20)
        log.write(10)
        col.wait_lines(2010)
        self.assertLines(log.lines, col.lines())

    def test_binary_bytes_pass_untouched(self):
        col = self.collector()
        path = self.path("in", "bin.log")
        payload = bytes(range(256)).replace(b"\n", b"") + b"\n" + b"\x00\xff\xfe caf\xc3\xa9\n"
        with open(path, "wb") as f:
            f.write(payload * 50)
        cfg = self.config([{"name": "app", "paths": [path], "start_at": "beginning"}],
                          [tcp("c", col)])
        self.agent(cfg)
        wait_for(lambda: col.byte_count() >= len(payload) * 50, what="all bytes")
        self.assertEqual(col.data(), payload * 50)

    def test_sigterm_exits_zero_and_writes_a_checkpoint(self):
        col = self.collector()
        log = LineWriter(self.path("in", "app.log"), tag="app")
        log.write(100)
        cfg = self.config([{"name": "app", "paths": [log.path], "start_at": "beginning"}],
                          [tcp("c", col)])
        agent = self.agent(cfg)
        col.wait_lines(100)
        agent.signal(signal.SIGTERM)
        self.assertEqual(agent.wait_exit(15), 0)
        with open(self.path("data", "checkpoints")) as f:
            text = f.read()
        self.assertIn(f"s c {os.path.getsize(log.path)}", text)


class Cli(E2ETest):
    def test_version_and_help(self):
        r = run_cli("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^logsplice \d+\.\d+\.\d+")
        r = run_cli("--help")
        self.assertEqual(r.returncode, 0)
        for key in ("data_dir", "max_line_bytes", "addresses", "rotate", "fsync", "lockstep",
                    "collect:", "min_free"):
            self.assertIn(key, r.stdout)

    def test_check_reports_every_error_with_line_and_column(self):
        path = self.path("bad.yaml")
        with open(path, "w") as f:
            f.write("agent:\n  data_dir: /tmp/x\n  bogus: 1\n"
                    "inputs:\n  - name: a\n    paths: [\"/tmp/*.log\"]\n    max_line_bytes: 1XB\n"
                    "outputs:\n  - name: o\n    type: pigeon\n    inputs: [nope]\n")
        r = run_cli("check", "--config", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:3:3", r.stderr)  # unknown key 'bogus'
        self.assertIn("1XB", r.stderr)
        self.assertIn("pigeon", r.stderr)
        # A route from an unknown input points at the name in the list, not at the output.
        self.assertIn(f"{path}:11:14: output 'o' routes from unknown input 'nope'", r.stderr)
        self.assertGreaterEqual(r.stderr.count(path + ":"), 3)

    def test_check_accepts_a_valid_config(self):
        cfg = self.config([{"name": "app", "paths": ["/tmp/none/*.log"]}],
                          [{"name": "c", "type": "tcp", "addresses": ["127.0.0.1:9"],
                            "inputs": ["app"]}])
        r = run_cli("check", "--config", cfg)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_run_with_missing_or_bad_config_fails_clearly(self):
        r = run_cli("run", "--config", self.path("absent.yaml"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("absent.yaml", r.stderr)
        r = run_cli("run")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--config", r.stderr)
        r = run_cli("frobnicate")
        self.assertEqual(r.returncode, 2)

    def test_unwritable_data_dir_is_a_clear_startup_error(self):
        blocker = self.path("file")
        open(blocker, "w").close()
        cfg = self.config([{"name": "app", "paths": ["/tmp/none/*.log"]}],
                          [{"name": "c", "type": "tcp", "addresses": ["127.0.0.1:9"],
                            "inputs": ["app"]}], agent={"data_dir": blocker + "/sub"})
        r = run_cli("run", "--config", cfg, timeout=20)
        self.assertEqual(r.returncode, 3)
        self.assertIn("data_dir", r.stderr)


if __name__ == "__main__":
    main()
