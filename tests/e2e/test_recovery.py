"""Recovery after a collector outage: with the default reconnect backoff, the first byte reaches
a collector soon after it listens again, and everything written during the outage arrives."""
import time

from support import E2ETest, main, wait_for

OUTAGE_S = 5.0


class Recovery(E2ETest):
    def test_first_byte_soon_after_the_collector_comes_back(self):
        col = self.collector()
        path = self.path("in", "app.log")
        with open(path, "w") as f:
            f.write("line-0000 before the outage\n")
        cfg = self.config([{"name": "app", "paths": [path], "start_at": "beginning"}],
                          [{"name": "c", "type": "tcp", "addresses": [col.address],
                            "inputs": ["app"]}],  # the default backoff
                          agent={"log_level": "info"})
        agent = self.agent(cfg)
        col.wait_lines(1)
        col.refuse()
        before = col.byte_count()
        expected = 1
        deadline = time.monotonic() + OUTAGE_S
        with open(path, "a") as f:
            while time.monotonic() < deadline:  # lines keep coming while it is down
                f.write(f"line-{expected:04d} during the outage\n")
                f.flush()
                expected += 1
                time.sleep(0.1)
        col.reopen()
        back = time.monotonic()
        wait_for(lambda: col.byte_count() > before, timeout=40, interval=0.005,
                 what="the first byte after the collector came back")
        recovery = time.monotonic() - back
        print(f"\ncollector refused for {OUTAGE_S:g}s: first byte {recovery * 1000:.0f} ms after "
              f"it listened again", flush=True)
        wait_for(lambda: len(set(col.lines())) >= expected, timeout=20,
                 what="every line written during the outage")
        got = set(col.lines())
        self.assertEqual({f"line-{i:04d} during the outage" for i in range(1, expected)} - got,
                         set())
        # Generous for a loaded 2-core machine; the default cap (500 ms) bounds the wait.
        self.assertLess(recovery, 1.5, "the first byte came too late after the outage")
        self.assertEqual(agent.stop(), 0)


if __name__ == "__main__":
    main()
