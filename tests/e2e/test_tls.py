"""TLS to real collectors: rsyslog with its OpenSSL stream driver (ossl, package
rsyslog-openssl) and syslog-ng's transport("tls"), both started by scripts/collector.sh --tls.

Certificates are made by the test with the openssl CLI: a CA, a server certificate for
127.0.0.1 and a client certificate (mutual TLS). Checked: every line arrives in order over TLS
(raw format), with and without a client certificate required, across a collector restart;
`logsplice check` refuses bad TLS files naming them, and `ktls: require` where the kernel has no
kTLS (the kTLS delivery test runs only where it has it, and says why it is skipped).
"""

import os
import re
import signal
import subprocess
import urllib.request

from support import E2ETest, LineWriter, RealCollector, free_port, main, run_cli, wait_for
from support_events import collector_events
from support_net import COLLECTOR_SCRIPT


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    """ca.pem, server.pem/.key (127.0.0.1, localhost), client.pem/.key, in `d`."""
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj",
            "/CN=logsplice e2e CA", "-days", "2", cwd=d)
    for name, san in (("server", "IP:127.0.0.1,DNS:localhost"), ("client", "DNS:logsplice")):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN={name}", cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                f"{name}.ext", cwd=d)
    return d


class TlsCollector(RealCollector):
    """A RealCollector started with --tls CERTDIR [--tls-auth x509]."""

    def __init__(self, kind, workdir, certs, auth="anon", syslog_parse=False):
        super().__init__(kind, workdir, syslog_parse=syslog_parse)
        self.certs = certs
        self.auth = auth

    def start(self, timeout=20.0):
        # RealCollector.start builds its command from these; add the TLS options to it.
        original = subprocess.Popen

        def popen(cmd, *a, **kw):
            if cmd and cmd[0] == "bash" and COLLECTOR_SCRIPT in cmd:
                cmd = [*cmd, "--tls", self.certs, "--tls-auth", self.auth]
            return original(cmd, *a, **kw)
        subprocess.Popen = popen
        try:
            return super().start(timeout)
        finally:
            subprocess.Popen = original


class Tls(E2ETest):
    def tls_collector(self, kind, auth="anon", syslog_parse=False):
        ok, why = RealCollector.available(kind)
        if not ok:
            if os.environ.get("CI"):
                self.fail(f"{kind} is not installed ({why})")
            self.skipTest(f"{kind} not installed ({why}): run scripts/install-collectors.sh")
        c = TlsCollector(kind, self.path(f"{kind}-{free_port()}"), self.certs, auth,
                         syslog_parse).start()
        self.addCleanup(c.close)
        return c

    def setUp(self):
        super().setUp()
        self.certs = make_certs(self.path("certs"))

    def ship(self, col, tls, count=3000, restart=False):
        log = LineWriter(self.path("in", "app.log"), tag="tls", payload_bytes=120)
        log.write(count)
        cfg = self.config([{"name": "app", "paths": [log.path], "start_at": "beginning"}],
                          [{"name": "central", "type": "tcp", "addresses": [col.address],
                            "inputs": ["app"], "backoff": {"initial": "50ms", "max": "500ms"},
                            "tls": tls}])
        agent = self.agent(cfg)
        col.wait_lines(count, timeout=30)
        if restart:
            col.stop()
            log.write(count)  # while it is down: the file is the buffer
            col.start()
            log.write(count)
            wait_for(lambda: log.lines[-1] in col.lines(), timeout=60, interval=0.2,
                     what="the last line after the restart")
            self.assertLines(log.lines, col.lines(), allow_duplicates=True)
        else:
            self.assertLines(log.lines, col.lines())
        err = agent.stderr_text()
        self.assertIn("TLS established", err)
        self.assertRegex(err, r"TLSv1\.[23]")
        self.assertTrue(agent.running(), agent.stderr_tail())
        return agent

    def test_rsyslog_tls_every_line_in_order(self):
        col = self.tls_collector("rsyslog")
        self.ship(col, {"ca_file": os.path.join(self.certs, "ca.pem")})

    def test_rsyslog_mutual_tls(self):
        col = self.tls_collector("rsyslog", auth="x509")
        self.ship(col, {"ca_file": os.path.join(self.certs, "ca.pem"),
                        "cert_file": os.path.join(self.certs, "client.pem"),
                        "key_file": os.path.join(self.certs, "client.key")})

    def test_rsyslog_restart_mid_stream_loses_nothing(self):
        col = self.tls_collector("rsyslog")
        self.ship(col, {"ca_file": os.path.join(self.certs, "ca.pem")}, count=2000, restart=True)

    def test_syslog_ng_tls_every_line_in_order(self):
        col = self.tls_collector("syslog-ng")
        self.ship(col, {"ca_file": os.path.join(self.certs, "ca.pem"),
                        "server_name": "localhost"})

    def test_syslog_format_over_tls(self):
        for kind in ("rsyslog", "syslog-ng"):
            with self.subTest(kind=kind):
                col = self.tls_collector(kind, syslog_parse=True)
                log = LineWriter(self.path(kind, "app.log"), tag="ev", payload_bytes=60)
                log.write(500)
                cfg = self.config([{"name": "app", "paths": [log.path], "start_at": "beginning"}],
                                  [{"name": "central", "type": "tcp", "format": "syslog",
                                    "addresses": [col.address], "inputs": ["app"],
                                    "tls": {"ca_file": os.path.join(self.certs, "ca.pem")}}],
                                  name=f"{kind}.yaml")
                agent = self.agent(cfg)
                wait_for(lambda: len(collector_events(kind, col.data())) >= 500, timeout=30,
                         what=f"500 events at {kind}")
                events = collector_events(kind, col.data())
                self.assertEqual([e["text"] for e in events], log.lines)
                self.assertIn("TLS established", agent.stderr_text())
                agent.stop()

    def test_wrong_ca_refused_then_sighup_with_the_good_ca_delivers_everything(self):
        col = self.tls_collector("rsyslog")
        other = make_certs(self.path("other-certs"))  # another CA, same names
        ca = self.path("trusted-ca.pem")
        with open(os.path.join(other, "ca.pem")) as src, open(ca, "w") as dst:
            dst.write(src.read())
        log = LineWriter(self.path("in", "app.log"), tag="ca", payload_bytes=80)
        log.write(1000)
        cfg = self.config([{"name": "app", "paths": [log.path], "start_at": "beginning"}],
                          [{"name": "central", "type": "tcp", "addresses": [col.address],
                            "inputs": ["app"], "backoff": {"initial": "50ms", "max": "300ms"},
                            "tls": {"ca_file": ca}}],
                          agent={"metrics": {"listen": "127.0.0.1:0"}})
        agent = self.agent(cfg)
        wait_for(lambda: "certificate verify failed" in agent.stderr_text(), timeout=20,
                 what="the handshake failure and its reason in the agent's log")
        self.assertEqual(col.lines(), [])
        port = wait_for(lambda: re.search(r"metrics listening on \S+ \(port (\d+)\)",
                                          agent.stderr_text()), what="metrics port").group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            page = r.read().decode()
        failures = re.search(r'^logsplice_tls_handshake_failures_total\{output="central"\} (\S+)$',
                             page, re.M)
        self.assertIsNotNone(failures, page)
        self.assertGreaterEqual(float(failures.group(1)), 1)
        self.assertRegex(page, r'(?m)^logsplice_tls_ktls\{output="central"\} 0$')
        with open(os.path.join(self.certs, "ca.pem")) as src, open(ca, "w") as dst:
            dst.write(src.read())
        agent.signal(signal.SIGHUP)
        col.wait_lines(1000, timeout=30)
        self.assertLines(log.lines, col.lines())
        self.assertIn("TLS certificates reloaded", agent.stderr_text())

    def test_check_refuses_bad_tls_files(self):
        bad = [
            ({"ca_file": self.path("missing.pem")}, "cannot read"),
            ({"ca_file": os.path.join(self.certs, "ca.pem"),
              "cert_file": os.path.join(self.certs, "client.pem"),
              "key_file": os.path.join(self.certs, "server.key")}, "does not match"),
        ]
        for tls, says in bad:
            cfg = self.config([{"name": "app", "paths": [self.path("in", "x.log")]}],
                              [{"name": "central", "type": "tcp",
                                "addresses": ["127.0.0.1:6514"], "inputs": ["app"],
                                "tls": tls}])
            r = run_cli("check", "--config", cfg)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(says, r.stderr)
            self.assertIn(f"{cfg}:", r.stderr)  # file:line:col

    def test_check_refuses_ktls_require_where_the_kernel_has_no_ktls(self):
        if kernel_has_ktls():
            self.skipTest("this kernel offers kTLS ('tls' in tcp_available_ulp): ktls: require is "
                          "valid here (test_raw_over_kernel_tls covers it)")
        # Relative file names are taken from the config file's directory.
        cfg = self.config([{"name": "app", "paths": [self.path("in", "x.log")]}],
                          [{"name": "central", "type": "tcp", "addresses": ["127.0.0.1:6514"],
                            "inputs": ["app"],
                            "tls": {"ca_file": "certs/ca.pem", "ktls": "require"}}])
        r = run_cli("check", "--config", cfg)
        self.assertEqual(r.returncode, 1, r.stderr)
        m = re.search(rf"{re.escape(cfg)}:(\d+):(\d+): .*'require' but this kernel offers no kTLS",
                      r.stderr)
        self.assertIsNotNone(m, r.stderr)
        self.assertIn("tcp_available_ulp", r.stderr)
        line, col = int(m.group(1)), int(m.group(2))
        with open(cfg) as f:
            self.assertTrue(f.read().splitlines()[line - 1][col - 1:].startswith("ktls"))
        # The one error: the relative CA file was found next to the config.
        self.assertEqual(len(re.findall(rf"{re.escape(cfg)}:\d+:\d+:", r.stderr)), 1, r.stderr)
        # auto is fine (userspace TLS on this kernel).
        ok = self.config([{"name": "app", "paths": [self.path("in", "x.log")]}],
                         [{"name": "central", "type": "tcp", "addresses": ["127.0.0.1:6514"],
                           "inputs": ["app"], "tls": {"ca_file": "certs/ca.pem", "ktls": "auto"}}],
                         name="auto.yaml")
        self.assertEqual(run_cli("check", "--config", ok).returncode, 0)

    def test_raw_over_kernel_tls(self):
        if not kernel_has_ktls():
            self.skipTest("SKIPPED: this kernel has no kTLS ('tls' is not in "
                          "/proc/sys/net/ipv4/tcp_available_ulp; built without CONFIG_TLS)")
        col = self.tls_collector("rsyslog")
        log = LineWriter(self.path("in", "app.log"), tag="ktls", payload_bytes=120)
        log.write(3000)
        cfg = self.config([{"name": "app", "paths": [log.path], "start_at": "beginning"}],
                          [{"name": "central", "type": "tcp", "addresses": [col.address],
                            "inputs": ["app"],
                            "tls": {"ca_file": os.path.join(self.certs, "ca.pem"),
                                    "ciphersuites": "TLS_AES_128_GCM_SHA256",
                                    "ktls": "require"}}],
                          agent={"metrics": {"listen": "127.0.0.1:0"}})
        agent = self.agent(cfg)
        col.wait_lines(3000, timeout=30)
        self.assertLines(log.lines, col.lines())
        self.assertIn("kernel TLS: the pipe is spliced into the socket", agent.stderr_text())
        port = wait_for(lambda: re.search(r"metrics listening on \S+ \(port (\d+)\)",
                                          agent.stderr_text()), what="metrics port").group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            page = r.read().decode()
        self.assertRegex(page, r'(?m)^logsplice_tls_ktls\{output="central"\} 1$')
        self.assertRegex(page, r'(?m)^logsplice_bytes_copied_total\{output="central"\} 0$')


def kernel_has_ktls():
    try:
        with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
            return "tls" in f.read().split()
    except OSError:
        return False


if __name__ == "__main__":
    main()
