"""The log file is the buffer (issue 4): while a collector is down for 1 GiB of appends the
agent's memory stays flat, and everything arrives once it is back. Also the daemon habits of
issue 5 that need a live process: SIGUSR1 reopens the agent's log, --pid-file."""
import os
import signal
import threading
import time

from support import E2ETest, main, rss_kib, wait_for


class Outage(E2ETest):
    def test_rss_stays_flat_while_a_collector_is_down_for_1gib(self):
        col = self.collector()
        path = self.path("in", "big.log")
        open(path, "w").close()
        cfg = self.config([{"name": "app", "paths": [path], "start_at": "beginning"}],
                          [{"name": "c", "type": "tcp", "addresses": [col.address],
                            "inputs": ["app"], "backoff": {"initial": "50ms", "max": "1s"}}],
                          agent={"log_level": "info"})
        agent = self.agent(cfg)
        line = b"x" * 199 + b"\n"
        block = line * 5000  # 1,000,000 bytes
        with open(path, "ab") as f:
            f.write(block)
        wait_for(lambda: col.byte_count() == len(block), what="the first block")
        base = rss_kib(agent.pid)
        col.refuse()
        peak = [base]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(agent.pid))
                done.wait(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        total = len(block)
        with open(path, "ab") as f:
            while total < (1 << 30) + len(block):
                f.write(block)
                total += len(block)
        time.sleep(1.0)  # the agent keeps retrying meanwhile; RSS is sampled throughout
        col.reopen()
        wait_for(lambda: col.byte_count() >= total, timeout=120, interval=0.2,
                 what="the 1 GiB written during the outage")
        done.set()
        sampler.join()
        print(f"\noutage of {total >> 20} MiB: RSS before {base} KiB, peak {peak[0]} KiB "
              f"(+{peak[0] - base} KiB)", flush=True)
        self.assertLessEqual(peak[0] - base, 1024, "RSS grew by more than 1 MiB")
        # Everything arrived. The refused connection resends what was not acknowledged (at
        # least once), so more may arrive: whole lines only, every line intact.
        # A reset can cut a connection mid-line; the resend starts at that line's start.
        complete = 0
        for data in col.connections():
            *lines, tail = data.split(b"\n")
            self.assertTrue(all(x == line[:-1] for x in lines), "a corrupted line arrived")
            self.assertTrue(line.startswith(tail), "a connection ended in a foreign fragment")
            complete += len(lines)
        self.assertGreaterEqual(complete, total // len(line))
        self.assertEqual(agent.stop(), 0)


class DaemonHabits(E2ETest):
    def test_sigusr1_reopens_the_log_file_and_pid_file_is_written(self):
        col = self.collector()
        path = self.path("in", "app.log")
        with open(path, "w") as f:
            f.write("one\n")
        log = self.path("agent.log")
        pid_file = self.path("run", "logsplice.pid")
        cfg = self.config([{"name": "app", "paths": [path], "start_at": "beginning"}],
                          [{"name": "c", "type": "tcp", "addresses": [col.address],
                            "inputs": ["app"]}],
                          agent={"log_file": log, "log_level": "info"})
        agent = self.agent(cfg, args=("--pid-file", pid_file))
        wait_for(lambda: os.path.exists(pid_file) and open(pid_file).read().strip(),
                 what="the pid file")
        self.assertEqual(int(open(pid_file).read()), agent.pid)
        col.wait_lines(1)
        wait_for(lambda: "started" in open(log).read(), what="the agent's log")
        os.rename(log, log + ".1")  # logrotate moves the agent's own log...
        agent.signal(signal.SIGUSR1)  # ...and asks it to reopen
        wait_for(lambda: os.path.exists(log) and "log reopened" in open(log).read(),
                 what="a new log file")
        self.assertEqual(agent.stop(), 0)
        self.assertFalse(os.path.exists(pid_file), "the pid file is removed at exit")


if __name__ == "__main__":
    main()
