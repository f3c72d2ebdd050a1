"""SIGHUP reload (issue 5): unchanged inputs and outputs keep their state and connections,
added ones start, removed ones stop, a changed one resumes from what it had delivered, and a
broken config is rejected with check's messages while the running one stays."""
import signal

from support import E2ETest, LineWriter, main, wait_for, write_config


def tcp(name, col, inputs=("app",)):
    return {"name": name, "type": "tcp", "addresses": [col.address], "inputs": list(inputs),
            "backoff": {"initial": "50ms", "max": "300ms"}}


class Reload(E2ETest):
    def setUp(self):
        super().setUp()
        self.app = LineWriter(self.path("in", "app.log"), tag="app")
        self.other = LineWriter(self.path("in", "other.log"), tag="other")
        open(self.app.path, "w").close()
        open(self.other.path, "w").close()
        self.inputs = [{"name": "app", "paths": [self.app.path], "start_at": "beginning"},
                       {"name": "other", "paths": [self.other.path], "start_at": "beginning"}]

    def rewrite(self, cfg, inputs, outputs):
        write_config({"agent": {"data_dir": self.path("data"), "log_level": "debug"},
                      "inputs": inputs, "outputs": outputs}, cfg)

    def reload(self, agent, count):
        agent.signal(signal.SIGHUP)
        wait_for(lambda: agent.stderr_text().count("SIGHUP: reloading") >= count,
                 what="the reload to start")
        wait_for(lambda: agent.stderr_text().count("reload done") >= count
                 or "keeping the running configuration" in agent.stderr_text(),
                 what="the reload to finish")

    def test_add_output_remove_input_change_address(self):
        keep, moved_from, moved_to, added = (self.collector() for _ in range(4))
        other_col = self.collector()
        outputs = [tcp("keep", keep), tcp("moving", moved_from), tcp("o", other_col, ["other"])]
        cfg = self.config(self.inputs, outputs)
        agent = self.agent(cfg)
        self.app.write(1000)
        self.other.write(100)
        keep.wait_lines(1000)
        other_col.wait_lines(100)
        moved_from.wait_lines(1000)

        # Add an output, remove the 'other' input, point 'moving' at another collector.
        self.rewrite(cfg, self.inputs[:1],
                     [tcp("keep", keep, ["app"]), tcp("moving", moved_to), tcp("added", added)])
        self.reload(agent, 1)
        connects_before = keep.connection_count()
        self.app.write(1000)
        self.other.write(100)  # no longer followed
        keep.wait_lines(2000)
        added.wait_lines(1000)
        # It resends from what it had delivered: wait for the last line, not a count.
        wait_for(lambda: self.app.lines[-1] in moved_to.lines(), what="the moved output")

        # The output that stayed: every line exactly once, same connection.
        self.assertLines(self.app.lines, keep.lines())
        self.assertEqual(keep.connection_count(), connects_before)
        # The removed input's output is gone, and its lines written after it with it.
        self.assertEqual(other_col.lines(), self.other.lines[:100])
        # The added output gets the lines written after it was added.
        self.assertLines(self.app.lines[1000:], added.lines())
        # The moved output resumes where it had delivered: nothing lost across both collectors.
        self.assertLines(self.app.lines, moved_from.lines() + moved_to.lines(),
                         allow_duplicates=True)
        self.assertEqual(agent.stop(), 0)

    def test_broken_config_is_rejected_and_the_running_one_stays(self):
        col = self.collector()
        cfg = self.config(self.inputs[:1], [tcp("c", col)])
        agent = self.agent(cfg)
        self.app.write(100)
        col.wait_lines(100)
        with open(cfg, "w") as f:
            f.write("inputs:\n  - name: app\n    pahts: [x]\noutputs: []\n")
        agent.signal(signal.SIGHUP)
        wait_for(lambda: "keeping the running configuration" in agent.stderr_text(),
                 what="the reload to be rejected")
        self.assertIn(f"{cfg}:3:5", agent.stderr_text())  # the same file:line:col as check
        self.app.write(100)
        col.wait_lines(200)
        self.assertLines(self.app.lines, col.lines())
        self.assertTrue(agent.running())

    def test_removed_input_comes_back_where_it_stopped(self):
        col = self.collector()
        cfg = self.config(self.inputs, [tcp("c", col, ["app", "other"])])
        agent = self.agent(cfg)
        self.other.write(100)
        col.wait_lines(100)
        self.rewrite(cfg, self.inputs[:1], [tcp("c", col, ["app"])])
        self.reload(agent, 1)
        self.other.write(50)  # written while the input is gone
        self.app.write(10)
        col.wait_lines(110)
        self.rewrite(cfg, self.inputs, [tcp("c", col, ["app", "other"])])
        self.reload(agent, 2)
        col.wait_lines(160)
        got = col.lines()
        self.assertLines(self.other.lines, [line for line in got if line.startswith("other")])
        self.assertLines(self.app.lines, [line for line in got if line.startswith("app")])


if __name__ == "__main__":
    main()
