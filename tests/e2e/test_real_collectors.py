"""Real collectors from Debian (issue 4): rsyslog (imtcp) and syslog-ng (network()), each run in
the foreground with its own config by scripts/collector.sh, writing every line it receives
verbatim to a file that is compared with what was written."""
import glob
import os

from support import E2ETest, LineWriter, main, wait_for


def archived_bytes(root):
    return sum(os.path.getsize(f)
               for f in glob.glob(os.path.join(root, "**", "*.log"), recursive=True)
               if os.path.isfile(f))


class RealCollectors(E2ETest):
    def ship_to(self, kinds, restart_mid_stream=False):
        cols = {k: self.real_collector(k) for k in kinds}
        log = LineWriter(self.path("in", "app.log"), tag="real", payload_bytes=150)
        log.write(2000)
        arch = self.path("archive")
        outputs = [{"name": k.replace("-", "_"), "type": "tcp", "addresses": [c.address],
                    "inputs": ["app"], "backoff": {"initial": "50ms", "max": "500ms"}}
                   for k, c in cols.items()]
        outputs.append({"name": "arch", "type": "archive", "dir": arch, "inputs": ["app"]})
        cfg = self.config([{"name": "app", "paths": [log.path], "start_at": "beginning"}],
                          outputs)
        agent = self.agent(cfg)
        for c in cols.values():
            c.wait_lines(2000, timeout=30)
        if restart_mid_stream:
            for c in cols.values():
                c.stop()  # a graceful collector restart: it stores what it had received
            log.write(3000)  # while they are down: the file is the buffer
            for c in cols.values():
                c.start()
        log.write(5000)
        total = len(log.lines)
        for kind, c in cols.items():
            # Resent lines count towards a line count: wait for the last line itself.
            wait_for(lambda: log.lines[-1] in c.lines(), timeout=60, interval=0.2,
                     what=f"the last line at {kind}")
            # A restart may resend what was not acknowledged: at least once, in order.
            self.assertLines(log.lines, c.lines(), allow_duplicates=restart_mid_stream)
        wait_for(lambda: archived_bytes(arch) == os.path.getsize(log.path),
                 what="the archive to be complete")
        self.assertEqual(agent.stop(), 0)

    def test_rsyslog(self):
        self.ship_to(["rsyslog"])

    def test_syslog_ng(self):
        self.ship_to(["syslog-ng"])

    def test_both_and_an_archive_with_collector_restarts(self):
        self.ship_to(["rsyslog", "syslog-ng"], restart_mid_stream=True)


if __name__ == "__main__":
    main()
