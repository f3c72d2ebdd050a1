"""Fan-out: one file to several collectors and an archive, each at its own pace (issue 4)."""
import glob
import os
import time

from support import E2ETest, LineWriter, main, rss_kib, wait_for


def tcp(name, col, inputs=("app",)):
    return {"name": name, "type": "tcp", "addresses": [col.address], "inputs": list(inputs),
            "backoff": {"initial": "50ms", "max": "300ms"}}


def archive_bytes(root):
    files = sorted(f for f in glob.glob(os.path.join(root, "**", "*.log"), recursive=True)
                   if os.path.isfile(f))
    data = b""
    for f in files:
        with open(f, "rb") as fh:
            data += fh.read()
    return data


class FanOut(E2ETest):
    def setUp(self):
        super().setUp()
        self.log = LineWriter(self.path("in", "app.log"), tag="app", payload_bytes=120)
        open(self.log.path, "w").close()

    def start(self, cols, lockstep=True, extra_outputs=()):
        outputs = [tcp(f"c{i}", c) for i, c in enumerate(cols)] + list(extra_outputs)
        cfg = self.config([{"name": "app", "paths": [self.log.path], "start_at": "beginning"}],
                          outputs, agent={"lockstep": lockstep})
        return self.agent(cfg)

    def check_identical(self, lockstep):
        cols = [self.collector() for _ in range(3)]
        arch = self.path("archive")
        agent = self.start(cols, lockstep,
                           [{"name": "arch", "type": "archive", "dir": arch, "inputs": ["app"]}])
        self.log.write(30000)
        for c in cols:
            c.wait_lines(30000, timeout=30)
        expected = open(self.log.path, "rb").read()
        for c in cols:
            self.assertEqual(c.data(), expected)
        wait_for(lambda: archive_bytes(arch) == expected, what="the archive to hold every byte")
        self.assertEqual(agent.stop(), 0)

    def test_three_collectors_and_an_archive_get_identical_bytes(self):
        self.check_identical(lockstep=True)

    def test_identical_without_lockstep(self):
        self.check_identical(lockstep=False)

    def test_stalled_collector_does_not_slow_the_others(self):
        fast = [self.collector(), self.collector()]
        slow = self.collector()
        slow.stall()
        agent = self.start(fast + [slow])
        # Far more than the stalled path can buffer (socket buffers + pipe: a few MiB).
        for _ in range(10):
            self.log.write(20000)
        total = len(self.log.lines)
        for c in fast:
            c.wait_lines(total, timeout=60)
            self.assertLines(self.log.lines, c.lines())
        self.assertLess(slow.byte_count(), os.path.getsize(self.log.path))
        rss = rss_kib(agent.pid)
        slow.resume()
        slow.wait_lines(total, timeout=60)
        self.assertLines(self.log.lines, slow.lines())
        self.assertLess(rss, 64 * 1024, "agent RSS while one collector stalls")

    def test_outage_then_recovery_loses_nothing(self):
        col = self.collector()
        other = self.collector()
        agent = self.start([col, other])
        self.log.write(1000)
        col.wait_lines(1000)
        col.refuse()  # drops the connection and refuses new ones
        self.log.write(20000)
        other.wait_lines(21000, timeout=30)
        wait_for(lambda: "retrying" in agent.stderr_text(), what="the outage to be logged")
        col.reopen()
        last = self.log.lines[-1]
        wait_for(lambda: last in col.lines(), timeout=30, interval=0.1, what="the last line")
        # A dropped connection may resend what was not acknowledged: at least once, in order.
        self.assertLines(self.log.lines, col.lines(), allow_duplicates=True)
        self.assertLines(self.log.lines, other.lines())

    def test_collector_closing_mid_stream_gets_the_rest_on_reconnect(self):
        col = self.collector()
        self.start([col])
        self.log.write(5000)
        col.wait_lines(5000)
        for round_ in range(3):
            col.kill()  # reset while the agent may be idle or sending
            self.log.write(5000)
            # Resent lines count too, so wait for the last line, not for a number of lines.
            last = self.log.lines[-1]
            wait_for(lambda: last in col.lines(), timeout=30, interval=0.1,
                     what="the last line after the reset")
        self.assertLines(self.log.lines, col.lines(), allow_duplicates=True)

    def test_failover_to_the_second_address(self):
        dead = self.collector()
        dead.refuse()
        live = self.collector()
        cfg = self.config([{"name": "app", "paths": [self.log.path], "start_at": "beginning"}],
                          [{"name": "c", "type": "tcp", "addresses": [dead.address, live.address],
                            "inputs": ["app"], "backoff": {"initial": "50ms", "max": "200ms"}}])
        self.agent(cfg)
        self.log.write(500)
        live.wait_lines(500)
        self.assertLines(self.log.lines, live.lines())


if __name__ == "__main__":
    main()
