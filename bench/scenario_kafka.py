"""The `kafka` benchmark scenario (bench.py imports it): a 1 GiB catch-up and a live tail of
LSB_KAFKA_LIVE_RATE lines/s (50,000) into librdkafka's mock cluster (3 brokers, its own process,
build/tests/kafka_mock_cluster), side by side:

  - librdkafka: bench/build/kafka_baseline, every line of the file produced as fast as
    librdkafka takes them (the denominator; catch-up only, it cannot follow a file), bare and
    with the same 4 headers logsplice sends by default ("librdkafka + 4 headers": the
    denominator of logsplice with headers, which then produces the same messages);
  - rsyslog: imfile -> omkafka (Debian rsyslog-kafka);
  - logsplice: a `type: kafka` output (key none, raw value), with its host/input/path/offset
    headers (the default, which the others do not send) and with `headers: false`.

A trial is done when the partitions' end offsets (kcat -Q) add up to the file's line count; a
fresh mock cluster per trial, so offsets start at 0, partition p led by broker p % 3 + 1. Reported per contender: messages/s, MB/s,
CPU seconds per GB, peak RSS. The mock keeps only the last 5 MB of each partition, so its own
memory stays small whatever the size.
"""
import abc
import os
import re
import subprocess
import time

MOCK_PARTITIONS = int(os.environ.get("LSB_KAFKA_PARTITIONS", "6"))
TOPIC = "bench"


class MockCluster:
    def __init__(self, root, d):
        binary = os.path.join(root, "build", "tests", "kafka_mock_cluster")
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"{binary} missing: cmake --build build --target kafka_mock_cluster")
        self.err = open(os.path.join(d, "mock.err"), "wb")
        self.p = subprocess.Popen([binary, "--brokers", "3", "--topic",
                                   f"{TOPIC}:{MOCK_PARTITIONS}:3"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.bootstrap = self.p.stdout.readline().strip()
        if not self.bootstrap:
            raise RuntimeError("kafka_mock_cluster printed no bootstrap address")
        # The mock picks partition leaders at random: two brokers led all six partitions in
        # one trial, three in the next (a variance between trials that is not the
        # contenders'). Spread them the same way in every trial.
        for part in range(MOCK_PARTITIONS):
            self.p.stdin.write(f"leader {TOPIC} {part} {part % 3 + 1}\n")
            self.p.stdin.flush()
            answer = self.p.stdout.readline().strip()
            if answer != "ok":
                raise RuntimeError(f"kafka_mock_cluster: leader of partition {part}: {answer}")

    def messages(self):
        """The sum of the partitions' end offsets: messages produced so far."""
        args = ["kcat", "-Q", "-b", self.bootstrap]
        for part in range(MOCK_PARTITIONS):
            args += ["-t", f"{TOPIC}:{part}:-1"]
        out = subprocess.run(args, capture_output=True, text=True, timeout=20).stdout
        return sum(int(m) for m in re.findall(r"offset (-?\d+)", out) if int(m) > 0)

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()


class KafkaContender(abc.ABC):
    kind = "peer"
    name = "?"
    live_capable = True

    @abc.abstractmethod
    def argv(self, d, in_dir, in_file, bootstrap):
        """The command line that produces the file in `in_dir` into the cluster at `bootstrap`."""


INPUT = "bench"  # the logsplice input's name: the value of its `input` header
BASE = "librdkafka"
BASE_HEADERS = "librdkafka + 4 headers"
BASE_BOUNDED = "librdkafka + 4 headers, 64 MiB queue"
BOUND = 64 << 20  # the logsplice kafka output's default max_in_flight_bytes


class LibrdkafkaBaseline(KafkaContender):
    kind = "baseline"
    live_capable = False

    def __init__(self, tool, headers=False, bounded=False):
        self.tool = tool
        self.headers = headers
        self.bounded = bounded
        self.name = BASE_BOUNDED if bounded else BASE_HEADERS if headers else BASE

    def argv(self, d, in_dir, in_file, bootstrap):
        # Headers: the allocator tuned as the logsplice output tunes it (mallopt M_MXFAST 0),
        # without which this baseline runs far slower, and a delivery report served for every
        # message on the producing thread, as logsplice does (faster than leaving the frees
        # to librdkafka's broker threads): the strongest producer of the same messages.
        # Bounded: librdkafka's queue limited as logsplice limits it for its default
        # max_in_flight_bytes (the same memory budget; unbounded it queues up to 1 GiB).
        hdrs = ["--no-fast-bins", "--dr", "--headers", INPUT] if self.headers else []
        bound = ["--bounded", str(BOUND)] if self.bounded else []
        return [self.tool("kafka_baseline")] + bound + hdrs + [in_file, bootstrap, TOPIC]


class RsyslogKafka(KafkaContender):
    name = "rsyslog omkafka"

    def argv(self, d, in_dir, in_file, bootstrap):
        work = os.path.join(d, "rsyslog-work")
        os.makedirs(work, exist_ok=True)
        brokers = ", ".join(f'"{b}"' for b in bootstrap.split(","))
        conf = os.path.join(d, "rsyslog.conf")
        open(conf, "w").write(f"""# generated by bench/scenario_kafka.py: imfile -> omkafka, the line as value
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="raw" type="string" string="%msg%")
input(type="imfile" file="{in_dir}/*.log" tag="bench" ruleset="k" addMetadata="off")
ruleset(name="k") {{
  action(type="omkafka" broker=[{brokers}] topic="{TOPIC}" template="raw"
         confParam=["acks=all", "enable.idempotence=true", "linger.ms=5",
                    "compression.codec=none"])
}}
""")
        return ["rsyslogd", "-n", "-f", conf, "-i", os.path.join(d, "rsyslog.pid")]


class LogspliceKafka(KafkaContender):
    kind = "agent"
    name = "logsplice"

    def __init__(self, agent_bin, headers=True):
        self.agent_bin = agent_bin
        self.headers = headers
        if not headers:
            self.name = "logsplice (headers: false)"

    def argv(self, d, in_dir, in_file, bootstrap):
        data = os.path.join(d, "agent-data")
        os.makedirs(data, exist_ok=True)
        brokers = ", ".join(f'"{b}"' for b in bootstrap.split(","))
        path = os.path.join(d, "logsplice.yaml")
        open(path, "w").write(f"""agent: {{ data_dir: {data}, log_level: warn }}
inputs:
  - {{ name: {INPUT}, paths: ["{in_dir}/*.log"], start_at: beginning }}
outputs:
  - {{ name: k, type: kafka, brokers: [{brokers}], topic: {TOPIC}, inputs: [{INPUT}],
      headers: {"true" if self.headers else "false"} }}
""")
        return [self.agent_bin, "run", "--config", path]


def _wait_messages(cluster, proc, want, timeout, daemon=True):
    end = time.monotonic() + timeout
    got = 0
    while time.monotonic() < end:
        got = cluster.messages()
        if got >= want:
            return got, time.monotonic()
        if daemon and not proc.alive():
            break
        if not daemon and not proc.alive() and got < want:
            got = cluster.messages()
            return got, time.monotonic()
        time.sleep(0.2)
    return got, time.monotonic()


def _trial(env, c, scenario, src=None, lines=0, rate=0, seconds=0):
    ws, Proc, cfg, log = env["ws"], env["Proc"], env["CFG"], env["log"]
    d = ws.trial_dir(f"{scenario}-{re.sub(r'[^A-Za-z0-9]+', '_', c.name)}")
    in_dir = os.path.join(d, "in")
    in_file = os.path.join(in_dir, "access.log")
    res = {"scenario": scenario, "contender": c.name, "kind": c.kind}
    cluster = MockCluster(env["ROOT"], d)
    try:
        if src:
            os.link(src, in_file)
            size = os.path.getsize(src)
        else:
            open(in_file, "w").close()
            lines = int(rate * seconds + 0.5)
        t0 = time.monotonic()
        proc = Proc(c.argv(d, in_dir, in_file, cluster.bootstrap), os.path.join(d, "contender.log"))
        s0 = proc.sample_now()
        gen_out = ""
        if not src:
            time.sleep(1.0)  # the follower has the file open
            t0 = time.monotonic()
            s0 = proc.sample_now()
            gen = subprocess.run([env["tool"]("loggen"), "append", in_file, str(rate), str(seconds),
                                  str(cfg["seed"])], stdout=subprocess.PIPE, check=True)
            gen_out = gen.stdout.decode().strip()
            size = os.path.getsize(in_file)
        got, t1 = _wait_messages(cluster, proc, lines, cfg["timeout"],
                                 daemon=c.kind != "baseline")
        s1 = proc.sample_now()
        proc.stop()
        elapsed = t1 - t0
        cpu = (s1[0] - s0[0]) if s0 and s1 else proc.cpu_total()
        res.update(ok=got == lines, lines=lines, messages=got, bytes=size, seconds=elapsed,
                   msgs_per_s=got / elapsed if elapsed > 0 else None,
                   mb_per_s=size / 1e6 / elapsed if elapsed > 0 else None,
                   cpu_s=cpu, cpu_s_per_gb=cpu / (size / 1e9) if cpu is not None and size else None,
                   maxrss_kib=proc.maxrss_kib(), gen=gen_out)
        if rate:
            res["rate"] = rate
        if not res["ok"]:
            log(f"  {c.name}: {scenario}: {got}/{lines} messages; see {d}")
            res["trial_dir"] = d
        log(f"  {c.name}: {got} msgs in {elapsed:.2f}s = {res['msgs_per_s'] or 0:,.0f} msg/s, "
            f"{res['mb_per_s'] or 0:.1f} MB/s, CPU {res['cpu_s_per_gb'] or 0:.2f} s/GB, "
            f"peak RSS {res['maxrss_kib']} KiB")
    finally:
        cluster.close()
    return res, d


def run(env):
    """env: ws, run_reps, use_agent, CFG, Proc, tool, log, ROOT, AGENT_BIN."""
    cfg = env["CFG"]
    reps = cfg["reps"]
    src, lines = env["ws"].source(cfg["size"])
    agents = ([LogspliceKafka(env["AGENT_BIN"]), LogspliceKafka(env["AGENT_BIN"], headers=False)]
              if env["use_agent"] else [])
    cs = [LibrdkafkaBaseline(env["tool"]), LibrdkafkaBaseline(env["tool"], headers=True),
          LibrdkafkaBaseline(env["tool"], headers=True, bounded=True), RsyslogKafka()] + agents
    env["run_reps"]("kafka-catchup", cs,
                    lambda c: _trial(env, c, "kafka-catchup", src=src, lines=lines), reps)
    rate = int(os.environ.get("LSB_KAFKA_LIVE_RATE", "50000"))
    live = [c for c in cs if c.live_capable]
    env["run_reps"](f"kafka-live-{rate}", live,
                    lambda c: _trial(env, c, f"kafka-live-{rate}", rate=rate,
                                     seconds=cfg["live_seconds"]),
                    cfg["live_reps"] or reps)


def _median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def _same_messages_base(name):
    """The baseline that produces the same messages as contender `name`: with the 4 headers for
    logsplice with its default headers, bare for everyone else (rsyslog sends none)."""
    return BASE_HEADERS if name in ("logsplice", BASE_HEADERS, BASE_BOUNDED) else BASE


def _per_rep_ratio(rs, name, base, key):
    """Median over repetitions of name's `key` / base's `key` inside the same repetition."""
    ratios = []
    for r in rs:
        if r["contender"] != name:
            continue
        b = [x[key] for x in rs if x["contender"] == base and x.get("rep") == r.get("rep")]
        if b and b[0] and r.get(key):
            ratios.append(r[key] / b[0])
    return _median(ratios)


def report(results):
    """Markdown lines for report.py: one table per kafka scenario, medians over repetitions."""
    out = []
    for scenario in sorted({r["scenario"] for r in results if r["scenario"].startswith("kafka-")}):
        rs = [r for r in results if r["scenario"] == scenario and r.get("ok")]
        if not rs:
            continue
        title = ("Kafka catch-up: the file into the mock cluster" if scenario == "kafka-catchup"
                 else f"Kafka live tail: {rs[0].get('rate', 0):,} lines/s")
        out += [f"## {title}", "",
                "Into librdkafka's mock cluster (3 brokers, own process, "
                f"{MOCK_PARTITIONS} partitions); done when the partitions' end offsets add up to the "
                "line count. librdkafka = bench/src/kafka_baseline.c (every line produced as fast as "
                "librdkafka takes it, same producer settings); `librdkafka + 4 headers` = the same "
                "with the host/input/path/offset headers logsplice sends by default. logsplice "
                "sends them unless `headers: false`. `× librdkafka`: against the bare baseline; "
                "`× same messages` (throughput) and `CPU × same messages` (CPU s per GB): against "
                "the baseline that produces the same messages (with headers for logsplice with "
                "headers, bare otherwise), each the median of the ratios inside a repetition. "
                f"`{BASE_BOUNDED}`: the headers baseline with librdkafka's queue bounded as "
                "logsplice bounds it for its default `max_in_flight_bytes` (queue.buffering.max.kbytes "
                "32 MiB, max.messages 65,536), the same memory budget; `× same msgs + budget`: "
                "logsplice (headers) against it.", "",
                "| contender | messages/s | MB/s | CPU s per GB | peak RSS MiB | × librdkafka "
                "| × same messages | CPU × same messages | × same msgs + budget | CPU × same msgs + budget |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        base = _median([r["msgs_per_s"] for r in rs if r["contender"] == BASE])
        for name in dict.fromkeys(r["contender"] for r in rs):
            mine = [r for r in rs if r["contender"] == name]
            mps = _median([r["msgs_per_s"] for r in mine])
            mbs = _median([r["mb_per_s"] for r in mine])
            cpu = _median([r["cpu_s_per_gb"] for r in mine])
            rss = _median([r["maxrss_kib"] for r in mine])
            ratio = f"{mps / base:.2f}" if base and mps else "—"
            same = _same_messages_base(name)
            same_mps = _per_rep_ratio(rs, name, same, "msgs_per_s")
            same_cpu = _per_rep_ratio(rs, name, same, "cpu_s_per_gb")
            budget = name in ("logsplice", BASE_BOUNDED)
            b_mps = _per_rep_ratio(rs, name, BASE_BOUNDED, "msgs_per_s") if budget else None
            b_cpu = _per_rep_ratio(rs, name, BASE_BOUNDED, "cpu_s_per_gb") if budget else None
            out.append(f"| {name} | {mps or 0:,.0f} | {mbs or 0:.1f} | {cpu or 0:.2f} | "
                       f"{(rss or 0) / 1024:.0f} | {ratio} | "
                       f"{f'{same_mps:.2f}' if same_mps else '—'} | "
                       f"{f'{same_cpu:.2f}' if same_cpu else '—'} | "
                       f"{f'{b_mps:.2f}' if b_mps else '—'} | {f'{b_cpu:.2f}' if b_cpu else '—'} |")
        out.append("")
    return out
