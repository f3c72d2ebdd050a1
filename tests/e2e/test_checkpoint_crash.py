"""Checkpoint crash safety (issue 17): the agent is killed with SIGKILL again and again while many
files grow, with a checkpoint every 100 ms and the change log compacted every few checkpoints
(LOGSPLICE_CHECKPOINT_COMPACT_BYTES, docs/checkpoint_format.md), so kills land in appends and
in compactions. After the last restart every line written must reach the collector; duplicates
(lines re-sent after a kill) are allowed and counted."""
import os
import random
import re
import threading
import time

from support import E2ETest, main, wait_for

FILES = 600
KILLS = 14


def received(col):
    lines = []
    for data in col.connections():
        parts = data.decode("utf-8", "surrogateescape").split("\n")
        lines.extend(parts[:-1])  # a cut connection's last fragment is not a line
    return lines


class ManyWriters:
    """Appends "f<file> <seq> payload" lines to random files of `paths`, `per_tick` lines every
    10 ms. `written[i]` lists file i's lines in order."""

    def __init__(self, paths, rng, per_tick=20):
        self.paths, self.rng, self.per_tick = paths, rng, per_tick
        self.written = [[] for _ in paths]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            for _ in range(self.per_tick):
                i = self.rng.randrange(len(self.paths))
                line = f"f{i:04d} {len(self.written[i]):06d} {'y' * 40}"
                with open(self.paths[i], "a") as f:
                    f.write(line + "\n")
                self.written[i].append(line)
            self._stop.wait(0.01)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()

    def total(self):
        return sum(len(w) for w in self.written)


class CheckpointCrash(E2ETest):
    def setUp(self):
        super().setUp()
        # A test knob: compact whenever the log would pass 16 KiB (every few checkpoints here).
        old = os.environ.get("LOGSPLICE_CHECKPOINT_COMPACT_BYTES")
        os.environ["LOGSPLICE_CHECKPOINT_COMPACT_BYTES"] = "16384"
        self.addCleanup(lambda: os.environ.__setitem__("LOGSPLICE_CHECKPOINT_COMPACT_BYTES", old)
                        if old is not None else os.environ.pop("LOGSPLICE_CHECKPOINT_COMPACT_BYTES"))

    def test_kill9_during_appends_and_compactions_loses_nothing(self):
        col = self.collector()
        paths = []
        for i in range(FILES):
            p = self.path("in", f"d{i % 6}", f"s{i % 4}", f"f{i:04d}.log")
            with open(p, "w") as f:
                f.write(f"f{i:04d} {0:06d} {'y' * 40}\n")
            paths.append(p)
        cfg = self.config(
            [{"name": "many", "paths": [self.path("in") + "/**/*.log"], "start_at": "beginning"}],
            [{"name": "c", "type": "tcp", "addresses": [col.address], "inputs": ["many"],
              "backoff": {"initial": "20ms", "max": "200ms"}}],
            agent={"checkpoint_interval": "100ms", "log_level": "info"})
        rng = random.Random(int(os.environ.get("SEED", "0")) or time.time_ns())
        writers = ManyWriters(paths, random.Random(rng.random()))
        for i in range(FILES):
            writers.written[i].append(f"f{i:04d} {0:06d} {'y' * 40}")
        writers.start()
        data = os.path.dirname(self.path("data", "x"))
        generations = []
        try:
            for _ in range(KILLS):
                agent = self.agent(cfg)
                time.sleep(rng.uniform(0.3, 1.0))  # a random moment, not a synchronisation
                agent.kill9()
                generations.append(snapshot_generation(data))
        finally:
            writers.stop()
        agent = self.agent(cfg)
        # Up (its signal handlers too) before it is judged: the lines may all be there already.
        wait_for(lambda: "logsplice started" in agent.stderr_text(), timeout=20,
                 what="the last agent started")
        expected = {line for w in writers.written for line in w}
        wait_for(lambda: expected <= set(received(col)), timeout=20, interval=0.25,
                 what=f"all {len(expected)} distinct lines")
        lines = received(col)
        got = set(lines)
        lost = len(expected - got)
        dups = len(lines) - len(got)
        final_gen = snapshot_generation(data)
        print(f"\n{KILLS} kills of an agent following {FILES} files: written {len(expected)}, "
              f"received {len(lines)}, lost {lost}, duplicated {dups}, snapshot generations "
              f"{generations} -> {final_gen}", flush=True)
        self.assertEqual(lost, 0)
        self.assertEqual(got - expected, set(), "lines nobody wrote")
        # Per file, first arrivals keep the file's order.
        firsts, seen = {}, set()
        for line in lines:
            if line not in seen:
                seen.add(line)
                firsts.setdefault(line[:5], []).append(line)
        for i, w in enumerate(writers.written):
            self.assertEqual(firsts.get(f"f{i:04d}"), w, f"file {i}: out of order")
        # Compactions happened besides the one each start does: the log was really folded.
        self.assertGreater(final_gen, KILLS + 2, "too few compactions to test them")
        self.assertTrue(os.path.exists(os.path.join(data, "checkpoints.log")))
        self.assertIsNone(re.search(r" error checkpoint: .*", agent.stderr_text()),
                          "a checkpoint write failed")
        self.assertEqual(agent.stop(), 0)


def snapshot_generation(data_dir):
    """The generation in the snapshot's first line (0 if there is none yet)."""
    try:
        with open(os.path.join(data_dir, "checkpoints"), "rb") as f:
            m = re.match(rb"logsplice-checkpoints 2 (\d+)\n", f.readline())
            return int(m.group(1)) if m else 0
    except FileNotFoundError:
        return 0


if __name__ == "__main__":
    main()
