"""The kafka output against librdkafka's mock cluster (tests/support/kafka_mock, 3 brokers on
127.0.0.1, its own process), consumed with kcat: every line arrives once per partition in file
order with its key and headers; injected request errors, a broker down and up and a leadership
move lose nothing; an unreachable cluster costs no memory and everything arrives afterwards; a
kill -9 under load loses nothing (duplicates are counted, allowed: at-least-once); bad
`librdkafka:` properties and an unknown compression are config errors with line and column."""

import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections import defaultdict

from support import (LOGSPLICE_BIN, E2ETest, LineWriter, main, rss_kib, run_cli, wait_for)
from test_metrics import KAFKA_GOLDEN, parse

MOCK_BIN = os.environ.get("LOGSPLICE_KAFKA_MOCK") or os.path.join(
    os.path.dirname(LOGSPLICE_BIN), "tests", "kafka_mock_cluster")


class MockCluster:
    """kafka_mock_cluster: `bootstrap`, `command(text)` (error injection, answered "ok")."""

    def __init__(self, topics, brokers=3):
        if not os.access(MOCK_BIN, os.X_OK):
            raise AssertionError(f"{MOCK_BIN} not built (cmake --build build --target "
                                 "kafka_mock_cluster)")
        args = [MOCK_BIN, "--brokers", str(brokers)]
        for t in topics:
            args += ["--topic", t]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.bootstrap = self.proc.stdout.readline().strip()
        assert self.bootstrap.startswith("127.0.0.1:"), self.bootstrap

    def command(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer == "ok", f"{text}: {answer}"

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


def consume(bootstrap, topic):
    """Every message of `topic`: [(partition, offset, key, headers dict, value)]."""
    if shutil.which("kcat") is None:
        raise AssertionError("kcat is not installed (scripts/install-deps.sh)")
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-q",
                        "-f", "%p\t%o\t%k\t%h\t%s\n"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = []
    for line in r.stdout.splitlines():
        p, o, k, h, v = line.split("\t", 4)
        headers = dict(kv.split("=", 1) for kv in h.split(",")) if h else {}
        out.append((int(p), int(o), k, headers, v))
    return out


class KafkaTest(E2ETest):
    def cluster(self, *topics):
        c = MockCluster(topics)
        self.addCleanup(c.close)
        return c

    def kafka_config(self, cluster, inputs, topic="logs", extra=None, agent=None):
        out = {"name": "k", "type": "kafka", "brokers": cluster.bootstrap.split(","),
               "topic": topic, "key": "host_file", "inputs": [i["name"] for i in inputs]}
        out.update(extra or {})
        agent_cfg = {"metrics": {"listen": "127.0.0.1:0"}, "log_level": "info"}
        agent_cfg.update(agent or {})
        return self.config(inputs, [out], agent=agent_cfg)

    def port(self, agent):
        return wait_for(lambda: re.search(r"metrics listening on \S+ \(port (\d+)\)",
                                          agent.stderr_text()), what="metrics port").group(1)

    def scrape(self, agent):
        port = self.port(agent)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()

    def wait_delivered(self, agent, writers, timeout=30):
        """Until the output's checkpointed offset of every file is the file's size."""
        sizes = {w.path: os.path.getsize(w.path) for w in writers}

        def done():
            got = {}
            for name, _, _, samples in parse(self.scrape(agent)):
                if name == "logsplice_file_delivered_bytes":
                    for labels, v in samples:
                        got[dict(labels)["path"]] = v
            return all(got.get(p) == s for p, s in sizes.items())
        wait_for(done, timeout=timeout, interval=0.2, what="every line delivered to kafka")

    def metric(self, agent, family, **labels):
        for name, _, _, samples in parse(self.scrape(agent)):
            if name == family:
                for l, v in samples:
                    if all(dict(l).get(k) == x for k, x in labels.items()):
                        return v
        return None

    def check_messages(self, messages, writers, host, allow_duplicates=False, keyed=True):
        """Each writer's lines once (or at least once), in file order within each partition,
        keyed host:path (when `keyed`: one file, one partition), with host/input/path/offset
        headers; returns the duplicate count. The mock keeps the last ~5 MB of a partition
        only: a partition whose first offset is not 0 lost its head there, not here."""
        firsts = {}
        for p, o, *_ in sorted(messages, key=lambda m: (m[0], m[1])):
            firsts.setdefault(p, o)
        self.assertEqual(set(firsts.values()), {0}, "the mock truncated a partition")
        dups = 0
        for w in writers:
            index, offsets, pos = {}, {}, 0
            for i, line in enumerate(w.lines):
                index[line], offsets[line] = i, pos
                pos += len(line) + 1
            got = [m for m in messages if m[3].get("path") == w.path]
            self.assertTrue(got, f"nothing from {w.path}")
            if keyed:
                self.assertEqual(len({m[0] for m in got}), 1, "one file, one partition (key)")
            seen = set()
            for part in sorted({m[0] for m in got}):
                last = -1
                for _, _, key, headers, value in sorted((m for m in got if m[0] == part),
                                                        key=lambda m: m[1]):
                    self.assertIn(value, index, "a message that is no line of the file")
                    if value in seen:
                        self.assertTrue(allow_duplicates, f"duplicate {value!r}")
                        dups += 1
                        continue
                    seen.add(value)
                    self.assertGreater(index[value], last, f"partition {part}: out of order")
                    last = index[value]
                    if keyed:
                        self.assertEqual(key, f"{host}:{w.path}")
                    self.assertEqual(headers["host"], host)
                    self.assertEqual(headers["offset"], str(offsets[value]))
                    self.assertIn(headers["input"], ("app", "web"))
            missing = [line for line in w.lines if line not in seen]
            if missing:
                for part in sorted({m[0] for m in got}):
                    offs = sorted(m[1] for m in messages if m[0] == part)
                    gaps = [(a, b) for a, b in zip(offs, offs[1:]) if b != a + 1]
                    print(f"partition {part}: {len(offs)} messages, offsets {offs[0]}..{offs[-1]}"
                          f", gaps {gaps[:10]}")
            self.assertEqual(missing, [], f"{w.path}: {len(missing)} lines missing")
        return dups

    def test_every_line_once_in_partition_order_with_key_and_headers(self):
        cluster = self.cluster("k-app:3:3", "k-web:3:3")
        app = LineWriter(self.path("in", "app.log"), tag="app")
        web = LineWriter(self.path("in", "web.log"), tag="web")
        app.write(3000)
        web.write(2000)
        cfg = self.kafka_config(cluster, [
            {"name": "app", "paths": [app.path], "start_at": "beginning"},
            {"name": "web", "paths": [web.path], "start_at": "beginning"}], topic="k-${input}")
        agent = self.agent(cfg)
        self.wait_delivered(agent, [app, web])
        host = os.uname().nodename
        app_msgs, web_msgs = consume(cluster.bootstrap, "k-app"), consume(cluster.bootstrap,
                                                                          "k-web")
        self.check_messages(app_msgs, [app], host)
        self.check_messages(web_msgs, [web], host)
        p, o, k, h, v = app_msgs[0]
        print(f"\n  sample: partition {p} offset {o} key {k!r} headers {h} value {v!r}")

        # /metrics: the kafka families, with their help and type.
        families = {f[0]: f for f in parse(self.scrape(agent))}
        for name, kind, help_text in KAFKA_GOLDEN:
            self.assertIn(name, families)
            self.assertEqual(families[name][1:3], (kind, help_text), name)
        self.assertEqual(self.metric(agent, "logsplice_kafka_messages_delivered_total",
                                     output="k"), 5000)
        self.assertGreater(self.metric(agent, "logsplice_kafka_brokers_up", output="k"), 0)
        copied = self.metric(agent, "logsplice_bytes_copied_total", output="k")
        self.assertGreaterEqual(copied, os.path.getsize(app.path) + os.path.getsize(web.path))
        status = run_cli("status", "--endpoint", f"127.0.0.1:{self.port(agent)}")
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertRegex(status.stdout, r"\bk\b.*connected")
        self.assertEqual(agent.stop(), 0)

    def test_request_errors_broker_bounce_and_leader_move_lose_nothing(self):
        cluster = self.cluster("logs:4:3")
        app = LineWriter(self.path("in", "app.log"), tag="app")
        web = LineWriter(self.path("in", "web.log"), tag="web")
        # One request in flight per broker: the mock does not check the idempotent producer's
        # sequence numbers, so with several it would accept a batch behind one it failed on
        # purpose, and librdkafka (rightly, for a real broker) would count the failed one as
        # persisted. A real broker refuses such a batch (OUT_OF_ORDER_SEQUENCE_NUMBER).
        cfg = self.kafka_config(cluster, [
            {"name": "app", "paths": [app.path], "start_at": "beginning"},
            {"name": "web", "paths": [web.path], "start_at": "beginning"}],
            extra={"librdkafka": {"max.in.flight.requests.per.connection": 1}})
        agent = self.agent(cfg)
        app.start(rate=400)
        web.start(rate=400)
        wait_for(lambda: self.metric(agent, "logsplice_kafka_messages_delivered_total",
                                     output="k"), timeout=15, what="first deliveries")
        # Produce requests fail: NOT_LEADER_FOR_PARTITION (6), REQUEST_TIMED_OUT (7).
        cluster.command("push-errors 0 4 6")
        cluster.command("push-errors 0 4 7")
        time.sleep(1)
        for broker in (1, 2):
            cluster.command(f"broker-down {broker}")
            time.sleep(1.5)
            cluster.command(f"broker-up {broker}")
        for part in range(4):
            cluster.command(f"leader logs {part} {3 - part % 3}")
        time.sleep(1)
        app.stop()
        web.stop()
        self.wait_delivered(agent, [app, web], timeout=40)
        msgs = consume(cluster.bootstrap, "logs")
        dups = self.check_messages(msgs, [app, web], os.uname().nodename, allow_duplicates=True)
        print(f"\n  {len(app.lines) + len(web.lines)} lines, {len(msgs)} messages, "
              f"{dups} duplicates")
        self.assertEqual(agent.stop(), 0)

    def test_cluster_unreachable_rss_flat_then_everything_delivered(self):
        # 12 partitions: the mock keeps 5 MB of each, and the check reads them all back.
        cluster = self.cluster("logs:12:3")
        app = LineWriter(self.path("in", "app.log"), tag="app", payload_bytes=200)
        cfg = self.kafka_config(cluster, [
            {"name": "app", "paths": [app.path], "start_at": "beginning"}],
            extra={"key": "none", "max_in_flight_bytes": "1MiB",
                   "librdkafka": {"reconnect.backoff.max.ms": 500}})
        agent = self.agent(cfg)
        app.write(2000)
        self.wait_delivered(agent, [app])
        before = rss_kib(agent.pid)
        cluster.command("broker-down -1")
        # 15 s without a cluster while lines keep coming: ~10 MB, 10x max_in_flight_bytes.
        app.start(rate=3000)
        t0, peak = time.monotonic(), 0
        while time.monotonic() - t0 < 15:
            peak = max(peak, rss_kib(agent.pid))
            time.sleep(0.1)
        app.stop()
        during = rss_kib(agent.pid)
        self.assertEqual(self.metric(agent, "logsplice_kafka_brokers_up", output="k"), 0)
        backlog = os.path.getsize(app.path) - self.metric(
            agent, "logsplice_file_delivered_bytes", sink="k")
        cluster.command("broker-up -1")
        self.wait_delivered(agent, [app], timeout=40)
        after = rss_kib(agent.pid)
        msgs = consume(cluster.bootstrap, "logs")
        self.check_messages(msgs, [app], os.uname().nodename, keyed=False)
        print(f"\n  RSS before {before} KiB, peak during {peak} KiB, end of outage {during} KiB,"
              f" after {after} KiB; backlog at the end of the outage {backlog / 1e6:.1f} MB;"
              f" {len(app.lines)} lines written, {len(msgs)} delivered")
        # Bounded by max_in_flight_bytes (1 MiB) plus room, not by the backlog.
        self.assertGreater(backlog, 5e6)
        self.assertLess(peak - before, 1024 + 16 * 1024)
        self.assertEqual(agent.stop(), 0)

    def test_kill9_under_load_loses_nothing(self):
        cluster = self.cluster("logs:3:3")
        app = LineWriter(self.path("in", "app.log"), tag="app")
        cfg = self.kafka_config(cluster, [
            {"name": "app", "paths": [app.path], "start_at": "beginning"}],
            agent={"checkpoint_interval": "200ms"})
        agent = self.agent(cfg)
        app.start(rate=3000)
        wait_for(lambda: (self.metric(agent, "logsplice_kafka_messages_delivered_total",
                                      output="k") or 0) > 3000, timeout=15, what="load")
        agent.kill9()
        again = self.agent(cfg)
        time.sleep(1)
        app.stop()
        self.wait_delivered(again, [app])
        msgs = consume(cluster.bootstrap, "logs")
        dups = self.check_messages(msgs, [app], os.uname().nodename, allow_duplicates=True)
        print(f"\n  {len(app.lines)} lines, {len(msgs)} messages, {dups} duplicates after kill -9")
        self.assertEqual(again.stop(), 0)

    def test_bad_librdkafka_property_and_compression_are_config_errors(self):
        path = self.path("bad.yaml")
        with open(path, "w") as f:
            f.write("inputs:\n"
                    "  - { name: app, paths: [/tmp/app.log] }\n"
                    "outputs:\n"
                    "  - name: k\n"
                    "    type: kafka\n"
                    "    brokers: [\"127.0.0.1:9092\"]\n"
                    "    topic: logs\n"
                    "    compression: brotli\n"
                    "    inputs: [app]\n"
                    "    librdkafka:\n"
                    "      linger.mss: 5\n"
                    "      batch.num.messages: lots\n")
        r = run_cli("check", "--config", path)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(f"{path}:8:18: 'compression': invalid value 'brotli'", r.stderr)
        self.assertRegex(r.stderr, re.escape(f"{path}:11:7: librdkafka: ") +
                         r".*linger\.mss")
        self.assertRegex(r.stderr, re.escape(f"{path}:12:27: librdkafka: ") +
                         r".*batch\.num\.messages")


if __name__ == "__main__":
    main()
