"""/metrics keeps its families: every component reports its own samples now, and the page must
still carry the same families with the same HELP, TYPE and labels (dashboards depend on them),
one HELP/TYPE block each, their samples right under it."""
import re
import urllib.request

from support import E2ETest, LineWriter, main, wait_for

# (name, type, help) of every family the agent exported before the metrics moved into the
# components, plus the families added since (at the end). A change here breaks dashboards: it
# needs a note in the changelog.
GOLDEN = [
    # Since round 2 counted per output (label `output`); the sum over outputs is the old total.
    ("logsplice_bytes_copied_total", "counter",
     "Bytes the agent moved through its own memory on the way to this output (0 on the "
     "zero-copy path)."),
    ("logsplice_open_fds", "gauge", "Open file descriptors."),
    ("logsplice_checkpoint_writes_total", "counter", "Checkpoint files written."),
    ("logsplice_checkpoint_last_write_seconds", "gauge",
     "Time the last checkpoint write took, fsyncs included."),
    ("logsplice_checkpoint_entries", "gauge", "Files the checkpoint file knows."),
    ("logsplice_router_fills_total", "counter", "Fill jobs run by the I/O thread."),
    ("logsplice_router_lockstep_fills_total", "counter", "Fills that fed several sinks by tee."),
    ("logsplice_router_demotions_total", "counter", "Sinks that came up short in a lockstep fill."),
    ("logsplice_router_inline_fills_total", "counter",
     "Fills run on the loop thread because their pages were in the page cache."),
    ("logsplice_router_copy_fallbacks_total", "counter", "Files switched to read/write."),
    ("logsplice_router_yields_total", "counter",
     "Scheduling passes cut short after 4 MiB so that the loop serves other events."),
    ("logsplice_input_files_followed", "gauge", "Files followed now."),
    ("logsplice_input_discovered_total", "counter", "Files discovered."),
    ("logsplice_input_rotations_total", "counter", "Rotations seen."),
    ("logsplice_input_truncations_total", "counter", "Truncations seen."),
    ("logsplice_input_deletions_total", "counter", "Deletions seen."),
    ("logsplice_input_long_line_splits_total", "counter", "Long lines split."),
    ("logsplice_input_partial_line_flushes_total", "counter",
     "Final lines without newline shipped."),
    ("logsplice_input_inotify_overflows_total", "counter", "inotify queue overflows."),
    ("logsplice_input_rescans_total", "counter", "Rescans of the globs."),
    ("logsplice_input_open_errors_total", "counter", "Files that could not be opened."),
    ("logsplice_input_retention_releases_total", "counter",
     "Rotated files released by retention before every sink had them."),
    ("logsplice_input_files_open", "gauge", "Followed files holding an fd now."),
    ("logsplice_input_files_suspended", "gauge",
     "Followed files idle and delivered, fd closed until they grow (max_open_files)."),
    ("logsplice_input_files_waiting_for_fd", "gauge",
     "Files waiting for a descriptor (budget spent, nothing idle)."),
    ("logsplice_input_suspensions_total", "counter",
     "Idle delivered files closed to stay under max_open_files."),
    ("logsplice_input_reopens_total", "counter", "Suspended files reopened when they grew."),
    ("logsplice_input_fd_exhaustions_total", "counter",
     "EMFILE/ENFILE met while opening (files then wait for a descriptor)."),
    ("logsplice_input_skipped_symlinks_total", "counter",
     "Dangling symlinks and symlink loops matching the globs."),
    ("logsplice_input_polling", "gauge", "1 when stat polling serves the input."),
    ("logsplice_sink_bytes_sent_total", "counter", "Bytes written to the socket or archive."),
    ("logsplice_sink_connects_total", "counter", "Connections made."),
    ("logsplice_sink_disconnects_total", "counter", "Connections lost."),
    ("logsplice_sink_resent_bytes_total", "counter", "Bytes sent again after a broken connection."),
    ("logsplice_sink_pauses_total", "counter", "Times the sink paused (disk full, permissions)."),
    ("logsplice_sink_missed_bytes_total", "counter", "Bytes released by retention before delivery."),
    ("logsplice_sink_up", "gauge", "1 when the sink can deliver."),
    ("logsplice_sink_state", "gauge", "The sink's state (1 for the current one)."),
    ("logsplice_file_delivered_bytes", "gauge", "Offset delivered per file and sink."),
    ("logsplice_file_lag_bytes", "gauge", "Bytes behind the file's complete end."),
    # Added since:
    ("logsplice_input_dirs_unreadable", "gauge",
     "Directories of the globs that exist but cannot be listed (EACCES...)."),
    ("logsplice_input_dir_errors_total", "counter",
     "Directories of the globs found unlistable (once per episode)."),
    ("logsplice_status_rejected_connections_total", "counter",
     "Status connections refused with 503 over max_connections."),
    ("logsplice_checkpoint_compactions_total", "counter",
     "Checkpoint snapshots written (the change log folded into a new snapshot)."),
]

# The families a kafka output adds (checked by test_kafka.py, which runs one against the mock
# cluster; this file's agent has none).
KAFKA_GOLDEN = [
    ("logsplice_kafka_messages_delivered_total", "counter",
     "Messages the brokers acknowledged for this kafka output."),
    ("logsplice_kafka_messages_failed_total", "counter",
     "Messages of this kafka output that failed (reason transient: resent; permanent: logged "
     "and passed over)."),
    ("logsplice_kafka_rewinds_total", "counter",
     "Times this kafka output resent from the first undelivered event."),
    ("logsplice_kafka_split_events_total", "counter",
     "Events too large for one message, sent as several."),
    ("logsplice_kafka_in_flight_bytes", "gauge",
     "Framed bytes handed to librdkafka and not yet acknowledged."),
    ("logsplice_kafka_brokers_up", "gauge", "Brokers this kafka output is connected to."),
]

# The families a `relp` output adds (present only when one is configured; checked by
# test_relp_output_families).
GOLDEN_RELP = [
    ("logsplice_relp_rsp_errors_total", "counter",
     "RELP answers other than 200 (the collector refused a frame; the session is resent)."),
    ("logsplice_relp_protocol_errors_total", "counter",
     "RELP sessions dropped for bytes from the collector that break the protocol."),
    ("logsplice_relp_timeouts_total", "counter",
     "RELP sessions dropped because a frame stayed unanswered past the timeout."),
    ("logsplice_relp_sessions_total", "counter", "RELP sessions opened."),
    ("logsplice_relp_window_used", "gauge", "RELP syslog frames sent and not yet answered."),
    ("logsplice_relp_window_size", "gauge", "The most RELP frames this output leaves unanswered."),
]


def label_keys(family):
    if family == "logsplice_bytes_copied_total":
        return ["output"]
    if family == "logsplice_sink_state":
        return ["sink", "state"]
    if family.startswith("logsplice_sink_"):
        return ["sink"]
    if family.startswith("logsplice_input_"):
        return ["input"]
    if family.startswith("logsplice_file_"):
        return ["sink", "input", "path"]
    return []


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')


def parse(text):
    """[(name, type, help, [(labels, value)])] in page order; fails on a sample outside its block."""
    families = []
    helps = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP "):].partition(" ")
            helps[name] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE "):].partition(" ")
            families.append((name, kind, helps.get(name), []))
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            assert families and families[-1][0] == m.group(1), \
                f"sample {line!r} is not under its family's HELP/TYPE block"
            labels = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or "")
            families[-1][3].append((labels, float(m.group(3))))
    return families


class Metrics(E2ETest):
    def test_families_help_type_and_labels_are_unchanged(self):
        col = self.collector()
        web = LineWriter(self.path("in", "web.log"), tag="web")
        app = LineWriter(self.path("in", "app.log"), tag="app")
        web.write(100)
        app.write(50)
        cfg = self.config(
            [{"name": "web", "paths": [web.path], "start_at": "beginning"},
             {"name": "app", "paths": [app.path], "start_at": "beginning"}],
            [{"name": "central", "type": "tcp", "addresses": [col.address],
              "inputs": ["web", "app"]},
             {"name": "arch", "type": "archive", "dir": self.path("archive"), "inputs": ["app"]}],
            agent={"metrics": {"listen": "127.0.0.1:0"}})
        agent = self.agent(cfg)
        port = wait_for(lambda: re.search(r"metrics listening on \S+ \(port (\d+)\)",
                                          agent.stderr_text()), what="metrics port")
        col.wait_lines(150, timeout=20)

        def scrape():
            url = f"http://127.0.0.1:{port.group(1)}/metrics"
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()

        # Both sinks have everything: three (file, sink) pairs, none behind.
        def settled():
            fams = {f[0]: f for f in parse(scrape())}
            lag = fams.get("logsplice_file_lag_bytes")
            return lag is not None and len(lag[3]) == 3 and all(v == 0 for _, v in lag[3])
        wait_for(settled, timeout=20, what="every file delivered to every sink")

        families = parse(scrape())
        names = [f[0] for f in families]
        self.assertEqual(len(names), len(set(names)), "a family has more than one HELP/TYPE block")
        got = {f[0]: (f[1], f[2]) for f in families}
        want = {n: (t, h) for n, t, h in GOLDEN}
        self.assertEqual(sorted(set(want) - set(got)), [], "families gone from /metrics")
        self.assertEqual(sorted(set(got) - set(want)), [], "families not in GOLDEN")
        for name, (kind, help_text) in want.items():
            self.assertEqual(got[name], (kind, help_text), name)

        by_name = {f[0]: f[3] for f in families}
        for name, samples in by_name.items():
            self.assertTrue(samples, f"{name} has no sample")
            for labels, _ in samples:
                self.assertEqual([k for k, _ in labels], label_keys(name), name)
            if name.startswith("logsplice_input_"):
                # One sample per input, in the config's order.
                self.assertEqual([dict(l)["input"] for l, _ in samples], ["web", "app"], name)
            elif name.startswith("logsplice_sink_"):
                sinks = [dict(l)["sink"] for l, _ in samples]
                self.assertEqual(sorted(sinks), ["arch", "central"], name)
        self.assertEqual(by_name["logsplice_sink_up"], [([("sink", s)], 1.0) for s in
                         [dict(l)["sink"] for l, _ in by_name["logsplice_sink_up"]]])
        self.assertEqual(by_name["logsplice_input_files_followed"],
                         [([("input", "web")], 1.0), ([("input", "app")], 1.0)])
        self.assertEqual(agent.stop(), 0)

    def test_relp_output_families(self):
        from test_relp import FakeRelp
        fake = FakeRelp("none")
        self.addCleanup(fake.close)
        app = LineWriter(self.path("in", "app.log"), tag="app")
        app.write(50)
        cfg = self.config(
            [{"name": "app", "paths": [app.path], "start_at": "beginning"}],
            [{"name": "rl", "type": "relp", "addresses": [f"127.0.0.1:{fake.port}"],
              "inputs": ["app"], "window": 64}],
            agent={"metrics": {"listen": "127.0.0.1:0"}})
        agent = self.agent(cfg)
        port = wait_for(lambda: re.search(r"metrics listening on \S+ \(port (\d+)\)",
                                          agent.stderr_text()), what="metrics port")
        wait_for(lambda: len(fake.messages) >= 50, timeout=20, what="50 events")

        def relp_families():
            url = f"http://127.0.0.1:{port.group(1)}/metrics"
            with urllib.request.urlopen(url, timeout=5) as r:
                return {f[0]: f for f in parse(r.read().decode()) if f[0].startswith("logsplice_relp_")}
        fams = wait_for(lambda: (lambda f: f if f.get("logsplice_relp_window_used") and
                                 f["logsplice_relp_window_used"][3][0][1] == 0 else None)(
                                     relp_families()), timeout=10, what="every frame answered")
        self.assertEqual(sorted(fams), sorted(n for n, _, _ in GOLDEN_RELP))
        for name, kind, help_text in GOLDEN_RELP:
            self.assertEqual((fams[name][1], fams[name][2]), (kind, help_text), name)
            self.assertEqual(fams[name][3], [([("output", "rl")], fams[name][3][0][1])], name)
        self.assertEqual(fams["logsplice_relp_sessions_total"][3][0][1], 1.0)
        self.assertEqual(fams["logsplice_relp_window_size"][3][0][1], 64.0)
        self.assertEqual(fams["logsplice_relp_rsp_errors_total"][3][0][1], 0.0)
        self.assertEqual(agent.stop(), 0)


if __name__ == "__main__":
    main()
