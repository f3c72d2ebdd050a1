#!/usr/bin/env bash
# Installs the real collectors the end-to-end tests ship to, then checks that each one receives
# lines over TCP on 127.0.0.1 and writes them verbatim (skip that with --no-verify).
#
# - rsyslog: installed normally from Debian. The install never starts the system service
#   (policy-rc.d), and the tests never use the system instance: scripts/collector.sh runs a
#   foreground rsyslogd with its own config, pid file and work dir.
# - syslog-ng: Debian's syslog-ng-core conflicts with rsyslog, so it is not installed: its .deb
#   is fetched with `apt-get download` and unpacked with `dpkg -x` into
#   $LOGSPLICE_TEST_CACHE/syslog-ng/root (default /var/cache/logsplice-test). The shared
#   libraries it links against are ordinary Debian library packages and are installed normally.
#
# Idempotent: when both are in place it runs no apt command. Runs as root, or through sudo.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

verify=1
for arg in "$@"; do
  case "$arg" in
    --no-verify) verify=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done

apt_install_missing python3 procps

# rsyslog, and the libraries syslog-ng-core 3.38 (bookworm) depends on (none conflicts).
if ! pkg_installed rsyslog && pkg_installed syslog-ng-core; then
  die "syslog-ng-core is installed system-wide and conflicts with rsyslog; remove it" \
      "(the tests use a private syslog-ng copy) or install rsyslog by hand"
fi
apt_install_missing rsyslog rsyslog-openssl rsyslog-kafka rsyslog-relp kcat libcap2 libglib2.0-0 libivykis0 libjson-c5 libnet1 libpcre3 libssl3 \
  libsystemd0 libwrap0

# --- syslog-ng (private copy) --------------------------------------------------------------

sng_dir="$LOGSPLICE_TEST_CACHE/syslog-ng"
sng_root="$(syslog_ng_root)"
sng_ok() {
  [[ -f $sng_dir/VERSION && -x $sng_root/usr/sbin/syslog-ng ]] &&
    LD_LIBRARY_PATH="$sng_root/usr/lib/syslog-ng" "$sng_root/usr/sbin/syslog-ng" --version \
      >/dev/null 2>&1
}
if ! sng_ok; then
  if [[ -z $(apt-cache policy syslog-ng-core 2>/dev/null | sed -n 's/ *Candidate: //p' \
             | grep -v '(none)') ]]; then
    apt_update_once
  fi
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  log "downloading syslog-ng-core into $sng_dir"
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root syslog-ng-core >/dev/null) ||
    die "apt-get download syslog-ng-core failed"
  deb="$(ls "$tmp"/syslog-ng-core_*.deb)"
  as_root rm -rf "$sng_dir"
  as_root mkdir -p "$sng_root"
  as_root dpkg -x "$deb" "$sng_root"
  as_root sh -c "dpkg-deb -f '$deb' Version > '$sng_dir/VERSION'"
  as_root chmod -R a+rX "$LOGSPLICE_TEST_CACHE"
  sng_ok || die "the unpacked syslog-ng does not run; try: LD_LIBRARY_PATH=$sng_root/usr/lib/syslog-ng $sng_root/usr/sbin/syslog-ng --version"
  missing_libs="$(LD_LIBRARY_PATH="$sng_root/usr/lib/syslog-ng" ldd "$sng_root"/usr/lib/syslog-ng/3.*/libafsocket.so "$sng_root"/usr/lib/syslog-ng/3.*/libaffile.so | grep 'not found' || true)"
  [[ -z $missing_libs ]] || die "syslog-ng modules miss libraries: $missing_libs"
fi

log "rsyslog $(dpkg-query -W -f='${Version}' rsyslog), syslog-ng $(cat "$sng_dir/VERSION") (private, $sng_root)"

# --- smoke test: one line through each collector -------------------------------------------
if [[ $verify -eq 1 ]]; then
  for kind in rsyslog syslog-ng; do
    python3 - "$here/collector.sh" "$kind" <<'EOF' || die "$kind smoke test failed"
import os, socket, subprocess, sys, tempfile, time
script, kind = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory(prefix="logsplice-smoke-") as d:
    out = os.path.join(d, "out.log")
    err = open(os.path.join(d, "stderr"), "wb")
    p = subprocess.Popen(["bash", script, kind, "--port", "0", "--dir", d, "--out", out],
                         stdout=err, stderr=err)
    try:
        port = None
        line = b"logsplice smoke \t <13> verbatim %s\n" % kind.encode()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and p.poll() is None:
            try:
                if port is None:
                    port = int(open(os.path.join(d, "port")).read())
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.sendall(line)
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        while time.monotonic() < deadline:
            if os.path.exists(out) and open(out, "rb").read() == line:
                print(f"[install-collectors] {kind}: ok (127.0.0.1:{port})", file=sys.stderr)
                sys.exit(0)
            time.sleep(0.05)
        print(f"[install-collectors] {kind}: line did not arrive", file=sys.stderr)
        err.flush()
        sys.stderr.write(open(os.path.join(d, "stderr")).read())
        sys.exit(1)
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
EOF
  done
fi
