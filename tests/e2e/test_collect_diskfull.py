"""Collector mode on a really full filesystem (issue 16): the mirrors live on a 4 MiB tmpfs that
a filler file has almost filled, leaving 1.5 MiB for a 3 MiB source.

- With `limits.min_free` (1 MiB here), the collector stops writing when the filesystem is down
  to it: the connection pauses with a logged reason, everything written is synced and
  acknowledged (the index still has room), and the agent keeps the rest in its own file.
- With `min_free: 0` the writes themselves hit ENOSPC: the collector pauses the same way, and
  acknowledges nothing it has not recorded in its index (which a full filesystem may refuse).

Either way the collector keeps answering /metrics, writes again by itself once the filler is
deleted, and every mirror ends equal to its source. Mounting the tmpfs needs root, as the rest
of the suite does (scripts/test.sh)."""
import os
import re
import subprocess

import test_collect as tc
from support import E2ETest, LineWriter, free_port, main, wait_for

FS_BYTES = 4 << 20
FREE_BYTES = 1536 << 10  # left free next to the filler: less than the source
MIN_FREE = 1 << 20
SOURCE_LINES = 30000     # ~3 MiB of 100-byte lines


class CollectDiskFull(E2ETest):
    # The collector tests' agent config and byte-for-byte mirror check, reused as they are.
    agent_for = tc.Collect.agent_for
    assert_mirrors = tc.Collect.assert_mirrors

    def mount_small_fs(self, where):
        self.assertEqual(os.geteuid(), 0, "mounting the tmpfs needs root (run as the suite runs)")
        os.makedirs(where, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES},mode=0755", "tmpfs", where],
                       check=True)
        # Registered before the collector's cleanup, so it runs after the collector is killed.
        self.addCleanup(subprocess.run, ["umount", "-l", where], check=False)

    def free_bytes(self, where):
        st = os.statvfs(where)
        return st.f_bavail * st.f_frsize

    def index_or_empty(self, col):
        try:
            return col.index()
        except FileNotFoundError:  # a full filesystem refused even the first index
            return {}

    def fill_then_free(self, min_free, expect_reason):
        port = free_port()
        mirror_dir = self.path("mirror")
        self.mount_small_fs(mirror_dir)
        filler = os.path.join(mirror_dir, ".filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (self.free_bytes(mirror_dir) - FREE_BYTES))
        col = tc.CollectorProc(self, port, limits={"min_free": str(min_free)}).start()

        d = os.path.dirname(self.path("src", "app.log"))
        w = LineWriter(os.path.join(d, "app.log"), tag="full", payload_bytes=86)
        w.write(SOURCE_LINES)
        size = os.path.getsize(w.path)
        self.assertGreater(size, FREE_BYTES + (1 << 20))
        agent = self.agent_for(0, port, d)

        wait_for(lambda: "pausing this connection" in col.stderr(), timeout=30,
                 what="the collector pausing for space")
        self.assertRegex(col.stderr(), expect_reason + r"; pausing this connection")

        # Paused: nothing more lands, and what the index calls durable the mirror holds.
        last = [None]

        def stable():
            idx = self.index_or_empty(col)
            now = (idx, [os.path.getsize(p) for p, _ in idx.values()])
            same = now == last[0]
            last[0] = now
            return same
        wait_for(stable, timeout=15, interval=1.0, what="the paused mirror and index unchanged")
        idx = self.index_or_empty(col)
        durable, held = 0, 0
        if idx:
            (path, durable), = idx.values()
            held = os.path.getsize(path)
            self.assertLessEqual(durable, held)
            with open(w.path, "rb") as src, open(path, "rb") as mir:
                self.assertEqual(src.read(durable), mir.read(durable))
        else:  # no index: nothing is durable; the mirror holds what the writes managed
            held = sum(os.path.getsize(os.path.join(r, n))
                       for r, _, names in os.walk(os.path.join(mirror_dir, "host0")) for n in names)
        self.assertLess(durable, size)
        # The agent is still there (its file is the buffer), and the collector still answers.
        self.assertIsNone(agent.proc.poll())
        scrape = col.scrape()
        self.assertRegex(scrape, r"logsplice_collect_paused_connections 1\b")
        acked = re.search(r'logsplice_collect_acked_bytes_total\{host="host0"\} (\d+)', scrape)
        self.assertEqual(int(acked.group(1)) if acked else 0, durable)

        # Space comes back: the collector retries by itself (every second) and catches up, and
        # lines written meanwhile follow.
        os.unlink(filler)
        wait_for(lambda: "writing again" in col.stderr(), timeout=15,
                 what="the collector writing again")
        w.write(1000)
        self.assert_mirrors(col, [("host0", d)], timeout=30)
        self.assertRegex(col.scrape(), r"logsplice_collect_paused_connections 0\b")
        print(f"disk full (min_free {min_free}): {size} source bytes, paused with {durable} "
              f"durable ({held} written) on a {FS_BYTES >> 20} MiB tmpfs with "
              f"{FREE_BYTES >> 10} KiB free; after the filler went, {os.path.getsize(w.path)} "
              f"bytes mirrored, cmp equal", flush=True)
        return durable, held

    def test_min_free_pauses_with_everything_written_acknowledged(self):
        durable, held = self.fill_then_free(
            MIN_FREE, r"\d+ bytes free in \S+, limits\.min_free is 1048576")
        # Stopped short of the limit: the index had room, so all that was written is durable.
        self.assertGreater(durable, 0)
        self.assertEqual(durable, held)
        self.assertLessEqual(held, FREE_BYTES - MIN_FREE)

    def test_enospc_pauses_and_acknowledges_only_what_the_index_holds(self):
        self.fill_then_free(0, r"No space left on device")


if __name__ == "__main__":
    main()
