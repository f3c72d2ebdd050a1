"""Collector mode over TLS (issue 16): an agent's `type: logsplice` output with `tls:` and a
collector with `collect.tls`. Certificates are made by the test with the openssl CLI (as
test_tls.py): a CA, the collector's certificate for 127.0.0.1, client certificates naming the
agents' host names, and a second CA. Checked: a host without a token authenticates by a client
certificate naming it and its mirror equals its source (cmp), the collector counting the
decrypted payload as copied; a client without a certificate is refused with a logged reason,
loses nothing, and delivers everything once its config gains the certificate and is reloaded
with SIGHUP; a certificate from another CA, and one naming another host, are refused."""
import os
import shutil
import signal

from support import E2ETest, LineWriter, free_port, main, wait_for, write_config
import test_collect as tc
from test_tls import make_certs, openssl


def client_cert(d, name, ca="ca"):
    """`name`.pem/.key signed by `ca`: CN and DNS SAN equal to `name`."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
            cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d)


class CollectTls(E2ETest):
    def setUp(self):
        super().setUp()
        self.certs = make_certs(self.path("certs"))
        c = self.certs
        client_cert(c, "host0")
        client_cert(c, "host1")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", "other.key", "-out", "other.pem", "-subj",
                "/CN=another CA", "-days", "2", cwd=c)
        client_cert(c, "rogue", ca="other")

    def cert(self, name):
        return os.path.join(self.certs, name)

    def collector(self, port):
        col = tc.CollectorProc(self, port)
        write_config({"collect": {
            "listen": f"127.0.0.1:{port}", "dir": col.dir, "fsync": {"interval": "50ms"},
            "log_level": "debug", "metrics": {"listen": "127.0.0.1:0"},
            "tls": {"cert_file": self.cert("server.pem"), "key_file": self.cert("server.key"),
                    "ca_file": self.cert("ca.pem")}}}, col.cfg)
        return col.start()

    def agent_cfg(self, host, port, src_dir, tls, name):
        out = {"name": "mirror", "type": "logsplice", "addresses": [f"127.0.0.1:{port}"],
               "backoff": {"initial": "50ms", "max": "200ms"}, "inputs": ["app"], "tls": tls}
        if "cert_file" not in tls:
            out["token"] = "no-token-for-this-host"
        return self.config(
            inputs=[{"name": "app", "paths": [os.path.join(src_dir, "app.log")],
                     "start_at": "beginning"}],
            outputs=[out],
            agent={"data_dir": self.path(f"data-{name}"), "hostname": host,
                   "checkpoint_interval": "100ms"},
            name=f"{name}.yaml")

    def mutual(self, name):
        return {"ca_file": self.cert("ca.pem"), "cert_file": self.cert(f"{name}.pem"),
                "key_file": self.cert(f"{name}.key")}

    def source(self, name, lines=3000):
        d = os.path.dirname(self.path(name, "app.log"))
        w = LineWriter(os.path.join(d, "app.log"), tag=name, payload_bytes=80)
        w.write(lines)
        return w, d

    def test_certificate_authenticates_the_host_and_the_mirror_is_exact(self):
        port = free_port()
        col = self.collector(port)
        w, d = self.source("src0", 20000)
        agent = self.agent(self.agent_cfg("host0", port, d, self.mutual("host0"), "a0"))
        w.start(rate=2000)
        wait_for(lambda: "session up" in agent.stderr_text(), what="session up")
        self.assertRegex(agent.stderr_text(), r"TLS established with \S+ \(TLSv1\.3 ")
        w.stop()
        srcs = tc.Collect.assert_mirrors(self, col, [("host0", d)])
        size = sum(s[4] for s in srcs)
        # TLS terminates in the collector's userspace: every payload byte was copied once.
        copied = tc.metric_value(col.scrape(), "logsplice_collect_bytes_copied_total")
        self.assertEqual(copied, size)
        self.assertIn("host 'host0'", col.stderr())

    def test_no_client_certificate_refused_then_sighup_with_it_delivers_everything(self):
        port = free_port()
        col = self.collector(port)
        w, d = self.source("src1")
        cfg = self.agent_cfg("host1", port, d, {"ca_file": self.cert("ca.pem")}, "a1")
        agent = self.agent(cfg)
        wait_for(lambda: "certificate" in col.stderr() and "closing the connection" in
                 col.stderr(), what="the collector refuses a client without a certificate")
        wait_for(lambda: "mirror" in agent.stderr_text() and
                 ("alert" in agent.stderr_text() or "TLS" in agent.stderr_text()),
                 what="the agent logs the refusal")
        self.assertFalse(os.path.exists(os.path.join(col.dir, "host1")))
        w.write(2000)  # more while refused: kept in the file, the agent's buffer
        # Fixed config (the certificate instead of a token), reloaded with SIGHUP.
        fixed = self.agent_cfg("host1", port, d, self.mutual("host1"), "a1-fixed")
        shutil.copyfile(fixed, cfg)
        agent.signal(signal.SIGHUP)
        tc.Collect.assert_mirrors(self, col, [("host1", d)])
        w.write(500)
        tc.Collect.assert_mirrors(self, col, [("host1", d)])

    def test_wrong_ca_and_wrong_host_refused(self):
        port = free_port()
        col = self.collector(port)
        w, d = self.source("src2", 100)
        rogue = {"ca_file": self.cert("ca.pem"), "cert_file": self.cert("rogue.pem"),
                 "key_file": self.cert("rogue.key")}
        self.agent(self.agent_cfg("rogue", port, d, rogue, "rogue"))
        wait_for(lambda: "certificate verify failed" in col.stderr(),
                 what="a client certificate from another CA refused")
        # A good certificate, but for another host than the one HELLO names.
        self.agent(self.agent_cfg("host1", port, d, self.mutual("host0"), "liar"))
        wait_for(lambda: "does not name host 'host1'" in col.stderr(),
                 what="a certificate naming another host refused")
        # The agent checks the collector too: a CA that did not sign it fails the handshake.
        wrong = {"ca_file": self.cert("other.pem"), "cert_file": self.cert("host0.pem"),
                 "key_file": self.cert("host0.key")}
        a = self.agent(self.agent_cfg("host0", port, d, wrong, "wrongca"))
        wait_for(lambda: "certificate verify failed" in a.stderr_text(),
                 what="the agent refuses a collector its CA did not sign")
        self.assertFalse(os.path.exists(os.path.join(col.dir, "rogue")))
        self.assertFalse(os.path.exists(os.path.join(col.dir, "host1")))
        self.assertFalse(os.path.exists(os.path.join(col.dir, "host0")))


if __name__ == "__main__":
    main()
