"""Zero-copy is a measured fact: the agent's bytes_copied_total stays 0 on the normal path and is
exact on the copy path (issue 4), read from the real /metrics endpoint."""
import re
import urllib.request

from support import E2ETest, LineWriter, main, run_cli, wait_for


def metric_sum(text, name):
    """The sum of every sample of a family (e.g. bytes copied over all outputs)."""
    values = [float(line.split()[-1]) for line in text.splitlines()
              if line.startswith(name + "{") or line.startswith(name + " ")]
    if not values:
        raise AssertionError(f"metric {name} not found")
    return sum(values)


def metric(text, name, labels=""):
    for line in text.splitlines():
        if line.startswith(name + labels + " "):
            return float(line.split()[-1])
    raise AssertionError(f"metric {name}{labels} not found")


class ZeroCopy(E2ETest):
    def start(self, copy=False, lines=20000):
        self.cols = [self.collector(), self.collector()]
        self.log = LineWriter(self.path("in", "app.log"), tag="zc", payload_bytes=150)
        self.log.write(lines)
        outputs = [{"name": f"c{i}", "type": "tcp", "addresses": [c.address], "inputs": ["app"]}
                   for i, c in enumerate(self.cols)]
        outputs.append({"name": "arch", "type": "archive", "dir": self.path("archive"),
                        "inputs": ["app"]})
        cfg = self.config([{"name": "app", "paths": [self.log.path], "start_at": "beginning",
                            "copy": copy}], outputs,
                          agent={"metrics": {"listen": "127.0.0.1:0"}})
        self.agent_proc = self.agent(cfg)
        port = wait_for(lambda: re.search(r"metrics listening on \S+ \(port (\d+)\)",
                                          self.agent_proc.stderr_text()), what="metrics port")
        self.endpoint = f"127.0.0.1:{port.group(1)}"
        for c in self.cols:
            c.wait_lines(lines, timeout=30)
            self.assertLines(self.log.lines, c.lines())

    def scrape(self, path="/metrics"):
        with urllib.request.urlopen(f"http://{self.endpoint}{path}", timeout=5) as r:
            return r.status, r.read().decode()

    def test_normal_path_copies_nothing(self):
        self.start()
        # All three sinks are now level at the end of the file: new bytes go to them in lockstep
        # (one splice, two tees), which is how sinks that caught up separately rejoin the group.
        for _ in range(5):
            self.log.write(2000)
        for c in self.cols:
            c.wait_lines(len(self.log.lines), timeout=30)
            self.assertLines(self.log.lines, c.lines())
        size = len(open(self.log.path, "rb").read())
        _, text = self.scrape()
        wait_for(lambda: metric(self.scrape()[1], "logsplice_sink_bytes_sent_total",
                                '{sink="arch"}') == size, what="archive to be written")
        _, text = self.scrape()
        for sink in ("c0", "c1", "arch"):
            self.assertEqual(metric(text, "logsplice_bytes_copied_total", f'{{output="{sink}"}}'),
                             0, sink)
        self.assertEqual(metric_sum(text, "logsplice_bytes_copied_total"), 0)
        self.assertEqual(metric(text, "logsplice_sink_bytes_sent_total", '{sink="c0"}'), size)
        self.assertGreater(metric(text, "logsplice_router_lockstep_fills_total"), 0)
        status, body = self.scrape("/health")
        self.assertEqual(status, 200, body)
        r = run_cli("status", "--endpoint", self.endpoint, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        for sink in ("c0", "c1", "arch"):
            self.assertIn(sink, r.stdout)

    def test_copy_path_counts_every_byte(self):
        self.start(copy=True)
        size = len(open(self.log.path, "rb").read())
        wait_for(lambda: metric(self.scrape()[1], "logsplice_sink_bytes_sent_total",
                                '{sink="arch"}') == size, what="archive to be written")
        _, text = self.scrape()
        # Three sinks, each given its own copy of every byte, counted per output.
        for sink in ("c0", "c1", "arch"):
            self.assertEqual(metric(text, "logsplice_bytes_copied_total", f'{{output="{sink}"}}'),
                             size, sink)
        self.assertEqual(metric_sum(text, "logsplice_bytes_copied_total"), 3 * size)

    def test_health_is_503_while_a_collector_is_down(self):
        self.start(lines=10)
        self.cols[0].refuse()
        def down():
            try:
                self.scrape("/health")
                return False
            except urllib.error.HTTPError as e:
                return e.code == 503 and "c0" in e.read().decode()
        wait_for(down, what="/health to report c0 down")


if __name__ == "__main__":
    main()
