"""The `tls` scenario: catching up a file (LSB_SIZE, 1 GiB by default) to one TLS collector.

Contenders, run round-robin like every scenario (bench.py's run_reps):
  * TLS baseline (C): build/tls_baseline reads the file in 16 KiB pieces and SSL_writes each
    (one full TLS record per call) over one connection: the practical userspace limit;
  * rsyslog: imfile -> omfwd with the ossl (OpenSSL) stream driver, certificate verified;
  * logsplice: a raw tcp output with `tls:` (userspace TLS here; kernel TLS where the kernel
    has the tls ULP: the gauge logsplice_tls_ktls says which, bytes_copied how much was copied);
  * logsplice without TLS (the plain receiver): what TLS costs the agent.
The TLS contenders send to build/tls_receiver (OpenSSL, counts and discards the plaintext),
which reports the protocol and cipher negotiated. Certificates (a CA and a server certificate
for 127.0.0.1) are made once with the openssl CLI in the bench work dir. Measured as bench.py's
transfer trials: MB/s from the contender's start to the last byte at the receiver, CPU s per
GB and peak RSS from wait4. Results go to raw.json (scenario "tls"); report.py renders them
with report_lines() below.
"""
import os
import subprocess
import time


def make_certs(d):
    """ca.pem and server.pem/server.key (IP:127.0.0.1) in `d`, made once."""
    if os.path.exists(os.path.join(d, "server.key")):
        return d
    os.makedirs(d, exist_ok=True)

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj",
            "/CN=logsplice bench CA", "-days", "30")
    openssl("req", *ec, "-keyout", "server.key.tmp", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "30", "-extfile", "server.ext")
    os.rename(os.path.join(d, "server.key.tmp"), os.path.join(d, "server.key"))
    return d


def run(b, ws, run_reps, use_agent):
    """Runs the scenario with bench.py's module `b` (its Receiver, Contender, Proc, ...)."""
    certs = make_certs(os.path.join(b.CFG["work"], "tls-certs"))
    ca = os.path.join(certs, "ca.pem")

    class TlsReceiver(b.Receiver):
        """build/tls_receiver, otherwise as bench.py's Receiver (port file, wait, kill)."""

        def __init__(self, d, expect_bytes):
            self.d = d
            self.port_file = os.path.join(d, "rx.port")
            self.progress = os.path.join(d, "rx.progress")
            argv = [b.tool("tls_receiver"), "--listen", "127.0.0.1:0", "--port-file", self.port_file,
                    "--progress", self.progress, "--timeout", str(b.CFG["timeout"]),
                    "--cert", os.path.join(certs, "server.pem"),
                    "--key", os.path.join(certs, "server.key"), "--expect-bytes", str(expect_bytes)]
            self.p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                      stderr=open(os.path.join(d, "rx.err"), "wb"))
            end = time.monotonic() + 10
            while not os.path.exists(self.port_file):
                if time.monotonic() > end or self.p.poll() is not None:
                    raise RuntimeError("tls_receiver did not start")
                time.sleep(0.005)
            self.port = int(open(self.port_file).read())
            self.addr = f"127.0.0.1:{self.port}"
            self.result = None

    class TlsBaseline(b.Contender):
        kind = "baseline"
        name = "TLS baseline (16 KiB SSL_write)"

        def argv(self, ctx):
            return [b.tool("tls_baseline"), ctx.in_file, ctx.addrs[0], ca]

    class RsyslogTls(b.Rsyslog):
        name = "rsyslog (omfwd, ossl)"

        def argv(self, ctx):
            argv = super().argv(ctx)
            conf = os.path.join(ctx.d, "rsyslog.conf")
            text = open(conf).read()
            text = text.replace('maxMessageSize="64k"',
                                f'maxMessageSize="64k" defaultNetstreamDriverCAFile="{ca}"', 1)
            text = text.replace('protocol="tcp" template="raw"',
                                'protocol="tcp" template="raw" StreamDriver="ossl" '
                                'StreamDriverMode="1" StreamDriverAuthMode="x509/certvalid"', 1)
            open(conf, "w").write(text)
            return argv

    class AgentTls(b.Agent):
        def __init__(self, tls):
            super().__init__(extra={"tcp": f', tls: {{ ca_file: "{ca}" }}'} if tls else None)
            self.tls = tls
            self.name = "logsplice raw over TLS" if tls else "logsplice raw, no TLS"

    def trial(c):
        size = os.path.getsize(src)
        d = ws.trial_dir(f"tls-{c.name.replace(' ', '_').replace('/', '_')}")
        in_file = os.path.join(d, "in", "access.log")
        os.link(src, in_file)
        tls = getattr(c, "tls", True)
        rx = TlsReceiver(d, size) if tls else b.Receiver(d, mode="splice", expect_bytes=size)
        ctx = b.Ctx(d, os.path.join(d, "in"), in_file, [rx.addr])
        if c.kind == "agent":
            ctx.metrics_port = b.free_port()
        proc = c.start(ctx)
        t0 = proc.t_start
        res = {"scenario": "tls", "contender": c.name, "kind": c.kind, "bytes": size, "tls": tls}
        r = b.wait_rx(rx, proc, b.CFG["timeout"], daemon=c.kind != "baseline")
        res["rx"] = r
        ok = r["status"] == "done" and r["bytes"] == size
        if c.kind == "agent":
            metrics = b.fetch_metrics(ctx.metrics_port)
            for line in metrics.splitlines():
                if line.startswith("logsplice_tls_ktls{"):
                    res["ktls"] = float(line.split()[-1])
                elif line.startswith("logsplice_bytes_copied_total{"):
                    res["bytes_copied"] = float(line.split()[-1])
        if c.kind == "baseline":
            proc.wait_exit(30)
        proc.stop()
        res.update(ok=ok, wall_s=r["t_last"] - t0, cpu_s=proc.cpu_total(),
                   maxrss_kib=proc.maxrss_kib(), exit=proc.exited,
                   protocol=r.get("protocol", ""), cipher=r.get("cipher", ""))
        if ok:
            res["mb_s"] = size / 1e6 / res["wall_s"]
            res["cpu_s_per_gb"] = res["cpu_s"] / (size / 1e9)
        else:
            b.log(f"  {c.name}: FAILED tls (rx={r.get('status')}, bytes={r.get('bytes')}/{size}); "
                  f"see {d}")
            res["trial_dir"] = d
        return res, d

    src, _ = ws.source(b.CFG["size"])
    cs = [TlsBaseline(), RsyslogTls()]
    if use_agent:
        cs += [AgentTls(True), AgentTls(False)]
    run_reps("tls", cs, trial, b.CFG["reps"])


def report_lines(rs, med):
    """Markdown for the scenario's results `rs` (report.py's `med` takes medians)."""
    if not rs:
        return []
    size = rs[0]["bytes"]
    L = [f"## TLS: catch-up of {size / 2**20:.0f} MiB to one TLS collector", "",
         "`build/tls_receiver` terminates TLS (OpenSSL) and discards; the no-TLS row goes to the "
         "plain receiver. Ratios are to the C baseline that SSL_writes 16 KiB records.", "",
         "| contender | MB/s | CPU s per GB | peak RSS MiB | × baseline MB/s | × baseline CPU/GB | "
         "negotiated | kTLS | bytes copied |",
         "|---|---|---|---|---|---|---|---|---|"]
    names = []
    for r in rs:
        if r["contender"] not in names:
            names.append(r["contender"])
    base = next((n for n in names if n.startswith("TLS baseline")), None)

    def m(name, key):
        return med([r[key] for r in rs if r["contender"] == name and r.get("ok") and r.get(key)])

    def ratio(name, key):
        if not base:
            return None
        bv = {r["rep"]: r.get(key) for r in rs if r["contender"] == base and r.get("ok")}
        return med([r[key] / bv[r["rep"]] for r in rs if r["contender"] == name and r.get("ok")
                    and r.get(key) and bv.get(r["rep"])])

    def fmt(v, spec):
        return format(v, spec) if v is not None else "n/a"

    for n in names:
        one = next((r for r in rs if r["contender"] == n and r.get("ok")), {})
        rss = m(n, "maxrss_kib")
        neg = f"{one.get('protocol', '')} {one.get('cipher', '')}".strip() if one.get("tls") else "—"
        ktls = {None: "", 0.0: "0 (userspace)", 1.0: "1 (kernel)"}.get(one.get("ktls"), "")
        copied = one.get("bytes_copied")
        L.append(f"| {n} | {fmt(m(n, 'mb_s'), ',.0f')} | {fmt(m(n, 'cpu_s_per_gb'), '.2f')} | "
                 f"{fmt(rss / 1024 if rss else None, '.1f')} | {fmt(ratio(n, 'mb_s'), '.2f')} | "
                 f"{fmt(ratio(n, 'cpu_s_per_gb'), '.2f')} | {neg or 'n/a'} | {ktls} | "
                 f"{fmt(copied, ',.0f') if copied is not None else ''} |")
    return L + [""]
