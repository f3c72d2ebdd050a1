"""The Debian package: build it with CPack, inspect it, run what it ships, and lint it.

CTest sets LOGSPLICE_BIN (the build dir is its directory) and LOGSPLICE_SOURCE_DIR. The package
is built once per run into a temp dir (`cpack -G DEB -B TMP`), so the build dir stays clean.
lintian is installed with apt-get when missing; if that is impossible the lintian test is
skipped, except under CI=1 where it fails.
"""

import gzip
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE_DIR = os.environ.get("LOGSPLICE_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOGSPLICE_BIN = os.environ.get("LOGSPLICE_BIN") or os.path.join(SOURCE_DIR, "build", "logsplice")
BUILD_DIR = os.path.dirname(os.path.abspath(LOGSPLICE_BIN))

SHIPPED_FILES = {
    # path in the package: expected mode
    "./usr/bin/logsplice": 0o755,
    "./lib/systemd/system/logsplice.service": 0o644,
    "./etc/logsplice/logsplice.yaml": 0o644,
    "./usr/share/man/man1/logsplice.1.gz": 0o644,
    "./usr/share/doc/logsplice/copyright": 0o644,
    "./usr/share/doc/logsplice/changelog.Debian.gz": 0o644,
    "./usr/share/doc/logsplice/examples/logsplice.yaml": 0o644,
    "./usr/share/lintian/overrides/logsplice": 0o644,
}


def run(*args, timeout=300, check=True, **kwargs):
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError("%s exited %d:\n%s" % (" ".join(args), proc.returncode, proc.stdout))
    return proc


def project_version():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        m = re.search(r"project\(logsplice VERSION ([0-9.]+)", f.read())
    return m.group(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(0.05)


class Packaging(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="logsplice-pkg-")
        config = os.path.join(BUILD_DIR, "CPackConfig.cmake")
        if not os.path.exists(config):
            raise AssertionError("%s is missing: is include(CPack) in CMakeLists.txt?" % config)
        out_dir = os.path.join(cls.tmp, "out")
        run("cpack", "-G", "DEB", "--config", config, "-B", out_dir, timeout=900, cwd=BUILD_DIR)
        debs = [f for f in os.listdir(out_dir) if f.endswith(".deb")]
        if len(debs) != 1:
            raise AssertionError("expected one .deb in %s, found %s" % (out_dir, debs))
        cls.deb = os.path.join(out_dir, debs[0])
        cls.root = os.path.join(cls.tmp, "root")
        cls.control = os.path.join(cls.tmp, "control")
        run("dpkg-deb", "-x", cls.deb, cls.root)
        run("dpkg-deb", "-e", cls.deb, cls.control)

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("LOGSPLICE_KEEP_TMP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def field(self, name):
        return run("dpkg-deb", "-f", self.deb, name).stdout.strip()

    # --- the control file and the maintainer scripts ------------------------------------------

    def test_file_name_and_control_fields(self):
        version = project_version()
        self.assertRegex(os.path.basename(self.deb),
                         r"^logsplice_%s-\d+_\w+\.deb$" % re.escape(version))
        self.assertEqual(self.field("Package"), "logsplice")
        self.assertTrue(self.field("Version").startswith(version + "-"), self.field("Version"))
        arch = run("dpkg", "--print-architecture").stdout.strip()
        self.assertEqual(self.field("Architecture"), arch)
        self.assertRegex(self.field("Maintainer"), r"^[^<>]+ <[^@<>\s]+@[^@<>\s]+>$")
        self.assertEqual(self.field("Section"), "admin")
        self.assertEqual(self.field("Priority"), "optional")
        description = self.field("Description")
        self.assertTrue(description.startswith("zero-copy log shipper\n"), description)
        depends = [d.strip().split(" ")[0] for d in self.field("Depends").split(",")]
        for pkg in ("adduser", "libc6", "libuv1", "libyaml-cpp0.7", "libstdc++6", "libsystemd0"):
            self.assertIn(pkg, depends)
        self.assertTrue(any(d.startswith("libspdlog1.10") for d in depends), depends)

    def test_maintainer_scripts_and_conffiles(self):
        info = run("dpkg-deb", "-I", self.deb).stdout
        for member in ("control", "md5sums", "conffiles", "postinst", "prerm", "postrm"):
            self.assertRegex(info, r"\b%s\b" % member)
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(self.control, script)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o755, script)
            run("sh", "-n", path)
            with open(path) as f:
                text = f.read()
            self.assertTrue(text.startswith("#!/bin/sh\n"), script)
            self.assertIn("set -e", text)
        with open(os.path.join(self.control, "postinst")) as f:
            postinst = f.read()
        self.assertIn("adduser --system --group", postinst)
        self.assertIn("adduser --quiet logsplice adm", postinst)
        self.assertIn("deb-systemd-helper", postinst)
        with open(os.path.join(self.control, "postrm")) as f:
            self.assertIn("purge", f.read())
        with open(os.path.join(self.control, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/logsplice/logsplice.yaml"])

    # --- the data ------------------------------------------------------------------------------

    def test_contents_owners_and_modes(self):
        listing = run("dpkg-deb", "-c", self.deb).stdout.splitlines()
        entries = {}
        for line in listing:
            parts = line.split(None, 5)
            perms, owner, path = parts[0], parts[1], parts[5].split(" -> ")[0]
            entries[path] = (perms, owner)
            self.assertEqual(owner, "root/root", line)
            if perms.startswith("d"):
                self.assertEqual(perms, "drwxr-xr-x", line)
        for path, mode in SHIPPED_FILES.items():
            self.assertIn(path, entries)
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.root, path)).st_mode), mode,
                             path)
        files = {p for p, (perms, _) in entries.items() if not perms.startswith("d")}
        self.assertEqual(files, set(SHIPPED_FILES), "unexpected files in the package")

    def test_binary_is_stripped_and_runs(self):
        binary = os.path.join(self.root, "usr/bin/logsplice")
        sections = run("readelf", "-S", "-W", binary).stdout
        self.assertNotIn(".debug_info", sections)
        self.assertNotIn(".symtab", sections)
        out = run(binary, "--version").stdout
        self.assertIn(project_version(), out)

    def test_shipped_config_passes_check(self):
        binary = os.path.join(self.root, "usr/bin/logsplice")
        config = os.path.join(self.root, "etc/logsplice/logsplice.yaml")
        proc = run(binary, "check", "--config", config, check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        # The commented-out tcp output must be valid too once uncommented.
        with open(config) as f:
            lines = f.read().splitlines()
        uncommented = [l[:2] + l[4:] if re.match(r"^  # (- name: central|  )", l) else l
                       for l in lines]
        self.assertNotEqual(lines, uncommented)
        path = os.path.join(self.tmp, "with-tcp.yaml")
        with open(path, "w") as f:
            f.write("\n".join(uncommented) + "\n")
        proc = run(binary, "check", "--config", path, check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("2 outputs", proc.stdout)
        # The full example shipped as documentation is valid as well.
        example = os.path.join(self.root, "usr/share/doc/logsplice/examples/logsplice.yaml")
        proc = run(binary, "check", "--config", example, check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout)

    def test_systemd_unit(self):
        with open(os.path.join(self.root, "lib/systemd/system/logsplice.service")) as f:
            unit = f.read()
        for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30s",
                     "ExecStart=/usr/bin/logsplice run --config /etc/logsplice/logsplice.yaml",
                     "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
                     "User=logsplice", "Group=logsplice",
                     "AmbientCapabilities=CAP_DAC_READ_SEARCH",
                     "CapabilityBoundingSet=CAP_DAC_READ_SEARCH", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "ProtectHome=read-only", "PrivateTmp=yes",
                     "StateDirectory=logsplice",
                     "ReadWritePaths=/var/lib/logsplice /var/log/logsplice-archive",
                     "LimitNOFILE=65536", "WantedBy=multi-user.target"):
            self.assertIn("\n" + line + "\n", unit)
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            return
        # Point the unit at the extracted binary (verify checks that it exists) and man page.
        local = os.path.join(self.tmp, "logsplice.service")
        with open(local, "w") as f:
            f.write(unit.replace("/usr/bin/logsplice",
                                 os.path.join(self.root, "usr/bin/logsplice")))
        env = dict(os.environ, MANPATH=os.path.join(self.root, "usr/share/man"))
        proc = run(analyze, "verify", local, check=False, env=env)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(proc.stdout.strip(), "")

    def test_man_page_and_changelog(self):
        with gzip.open(os.path.join(self.root, "usr/share/man/man1/logsplice.1.gz"), "rt") as f:
            man = f.read()
        self.assertIn(".TH LOGSPLICE 1", man)
        self.assertIn("logsplice %s" % project_version(), man)
        # Every command of `logsplice --help` is in the SYNOPSIS, the collector's too.
        for command in ("run", "check", "status", "collect"):
            self.assertIn(".B logsplice %s\n" % command, man)
        with gzip.open(os.path.join(self.root, "usr/share/doc/logsplice/changelog.Debian.gz"),
                       "rt") as f:
            first = f.readline()
        self.assertEqual(first, "logsplice (%s) unstable; urgency=medium\n" % self.field("Version"))

    # --- what the package ships, working together ----------------------------------------------

    def test_packaged_agent_serves_status(self):
        """The shipped binary runs the shipped config (paths moved into a temp dir) and
        `logsplice status` reads its metrics."""
        binary = os.path.join(self.root, "usr/bin/logsplice")
        work = tempfile.mkdtemp(prefix="run-", dir=self.tmp)
        os.makedirs(os.path.join(work, "log"))
        port = free_port()
        with open(os.path.join(self.root, "etc/logsplice/logsplice.yaml")) as f:
            text = f.read()
        text = (text.replace("/var/lib/logsplice", os.path.join(work, "data"))
                .replace("/var/log/logsplice-archive", os.path.join(work, "archive"))
                .replace("127.0.0.1:9880", "127.0.0.1:%d" % port)
                .replace("      - /var/log/", "      - %s/log/" % work))
        config = os.path.join(work, "logsplice.yaml")
        with open(config, "w") as f:
            f.write(text)
        os.makedirs(os.path.join(work, "data"))
        os.makedirs(os.path.join(work, "archive"))
        stderr_path = os.path.join(work, "agent.stderr")
        with open(stderr_path, "w") as err:
            agent = subprocess.Popen([binary, "run", "--config", config], stdout=err, stderr=err)
        try:
            endpoint = "127.0.0.1:%d" % port

            def status():
                proc = run(binary, "status", "--endpoint", endpoint, check=False, timeout=30)
                return proc.stdout if proc.returncode == 0 else None

            wait_for(status, what="the agent's metrics endpoint")
            lines = ["<13>Nov 21 12:00:%02d host app: line %d" % (i, i) for i in range(20)]
            with open(os.path.join(work, "log", "syslog"), "a") as f:
                f.write("\n".join(lines) + "\n")

            def archived():
                data = ""
                for dirpath, _, names in os.walk(os.path.join(work, "archive")):
                    for name in names:
                        with open(os.path.join(dirpath, name)) as f:
                            data += f.read()
                return all(l in data for l in lines)

            wait_for(archived, what="the lines in the archive")
            out = wait_for(lambda: (lambda o: o if o and re.search(r"\nsyslog +1 ", o) else None)(
                status()), what="status showing one followed file")
            self.assertRegex(out, r"\narchive +connected ")
            self.assertIn("SINK", out)
            agent.send_signal(signal.SIGTERM)
            self.assertEqual(agent.wait(timeout=30), 0)
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
            with open(stderr_path) as f:
                sys.stderr.write("" if agent.returncode == 0 else f.read())

    def test_lintian_finds_no_errors(self):
        lintian = shutil.which("lintian") or self.install_lintian()
        proc = run(lintian, "--tag-display-limit", "0", "--display-info", "--display-experimental",
                   self.deb, check=False, timeout=600)
        print("\nlintian %s:\n%s" % (os.path.basename(self.deb), proc.stdout), file=sys.stderr)
        errors = [l for l in proc.stdout.splitlines() if l.startswith("E: ")]
        self.assertEqual(errors, [], "lintian reported errors")
        self.assertNotIn("lintian: error", proc.stdout.lower())

    def install_lintian(self):
        out = ""
        if os.geteuid() == 0 and shutil.which("apt-get"):
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            proc = run("apt-get", "install", "-y", "--no-install-recommends", "lintian",
                       check=False, timeout=900, env=env)
            out = proc.stdout
            if proc.returncode != 0:
                run("apt-get", "update", check=False, timeout=900, env=env)
                out = run("apt-get", "install", "-y", "--no-install-recommends", "lintian",
                          check=False, timeout=900, env=env).stdout
        lintian = shutil.which("lintian")
        if lintian:
            return lintian
        message = "lintian is not installed and could not be installed:\n" + out[-2000:]
        if os.environ.get("CI"):
            self.fail(message)
        self.skipTest(message)


if __name__ == "__main__":
    unittest.main(verbosity=2)
