#!/usr/bin/env bash
# Runs a real collector in the foreground, listening for newline-delimited lines over TCP on
# 127.0.0.1, and appends every line it receives verbatim (no timestamp, no host, no parsing) to
# one file. Everything it needs lives in --dir: its config, pid file, work/persist files, and
# `port` (the port it listens on, written before it starts). SIGTERM stops it cleanly.
#
#   scripts/collector.sh rsyslog|syslog-ng --dir DIR [--port N] [--out FILE] [--max-msg-size BYTES]
#                        [--syslog-parse] [--tls CERTDIR [--tls-auth anon|x509]] [--print-config]
#                        [--relp]
#
#   --port 0 (the default) picks a free port: rsyslog binds port 0 itself and reports it
#   (listenPortFileName); for syslog-ng a free port is chosen just before it starts.
#   --out defaults to DIR/received.log; --max-msg-size defaults to 4194304 (4 MiB).
#
# --tls CERTDIR: listens with TLS instead (rsyslog: the ossl stream driver, package
# rsyslog-openssl; syslog-ng: transport("tls")), with CERTDIR/server.pem, server.key and ca.pem.
# --tls-auth x509 requires a client certificate signed by ca.pem (mutual TLS); anon (the
# default) asks for none.
#
# --relp (rsyslog only): listens with imrelp (package rsyslog-relp) instead of imtcp; with --tls,
# RELP over TLS from the first byte (imrelp tls="on"; it asks the client for a certificate
# signed by ca.pem whatever --tls-auth says). The ruleset's queue is Direct, so imrelp
# answers `rsp 200` only after omfile has written the message: an acknowledged message survives
# a SIGKILL of the collector. A free port is chosen just before it starts (imrelp cannot report
# one it picked).
#
# --syslog-parse: the collector parses RFC 5424 messages instead (octet-counted framing, RFC
# 6587, or LF-delimited) and writes one JSON object per message to FILE, one per line, so that
# a multiline MSG stays one record:
#   rsyslog:   {"host":..,"app":..,"sd":"[raw STRUCTURED-DATA]","msg":..}
#   syslog-ng: {"host":..,"app":..,"sd":{"logsplice@32473":{"file":..,"offset":..,..}},"msg":..}
# (what each does with NUL, invalid UTF-8 and control bytes: tests/e2e/README.md).
#
# Limits (see tests/e2e/README.md): both drop empty lines; a line longer than --max-msg-size is
# split into pieces of that size (syslog-ng keeps every byte; rsyslog 8.2302 loses one byte at
# each split). The collector is exec'd, so this script's pid is the collector's pid.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

[[ $# -ge 1 ]] || die "usage: collector.sh rsyslog|syslog-ng --dir DIR [--port N] [--out FILE]"
kind="$1"; shift
dir="" port=0 out="" max_msg=4194304 print_config=0 parse=0 tls="" tls_auth=anon relp=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --max-msg-size) max_msg="$2"; shift 2 ;;
    --print-config) print_config=1; shift ;;
    --syslog-parse) parse=1; shift ;;
    --relp) relp=1; shift ;;
    --tls) tls="$2"; shift 2 ;;
    --tls-auth) tls_auth="$2"; shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ -n $dir ]] || die "--dir is required"
[[ $port =~ ^[0-9]+$ ]] || die "--port must be a number"
[[ $max_msg =~ ^[0-9]+$ ]] || die "--max-msg-size must be a number of bytes"
[[ $tls_auth == anon || $tls_auth == x509 ]] || die "--tls-auth must be anon or x509"
[[ $relp -eq 0 || $kind == rsyslog ]] || die "--relp: rsyslog only"
if [[ -n $tls ]]; then
  tls="$(cd "$tls" && pwd)"
  for f in server.pem server.key ca.pem; do
    [[ -r $tls/$f ]] || die "--tls: $tls/$f is missing"
  done
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
out="${out:-$dir/received.log}"
[[ $out == /* ]] || out="$PWD/$out"
rm -f "$dir/port" "$dir/pid"

# rsyslog with imrelp into "$out": writes its config to $1 (replacing the imtcp one).
relp_conf() {
  local conf="$1" tpl tls_params=""
  if [[ $port -eq 0 ]]; then
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  fi
  echo "$port" > "$dir/port"
  if [[ -n $tls ]]; then
    tls_params=" tls=\"on\" tls.caCert=\"$tls/ca.pem\" tls.myCert=\"$tls/server.pem\" tls.myPrivKey=\"$tls/server.key\""
    # With certificates of its own imrelp checks the client's fingerprint unless told
    # otherwise: certvalid accepts any client certificate signed by ca.pem.
    tls_params+=" tls.authMode=\"certvalid\""
  fi
  if [[ $parse -eq 0 ]]; then
    tpl='template(name="logsplice_out" type="string" string="%rawmsg%\n")'
  else
    tpl='template(name="logsplice_out" type="list" option.jsonf="on") {
  property(outname="host" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}'
  fi
  cat > "$conf" <<EOF
global(maxMessageSize="$max_msg" workDirectory="$dir/work"
       parser.escapeControlCharactersOnReceive="off" net.enableDNS="off")
module(load="imrelp")
$tpl
ruleset(name="logsplice_in" queue.type="Direct") {
  action(type="omfile" file="$out" template="logsplice_out" flushOnTXEnd="on")
}
input(type="imrelp" address="127.0.0.1" port="$port" ruleset="logsplice_in"
      maxDataSize="$max_msg"$tls_params)
EOF
}

case "$kind" in
  rsyslog)
    command -v rsyslogd >/dev/null || die "rsyslogd not found: run scripts/install-collectors.sh"
    mkdir -p "$dir/work"
    conf="$dir/rsyslog.conf"
    if [[ $port -eq 0 ]]; then
      port_params="port=\"0\" listenPortFileName=\"$dir/port\""
    else
      port_params="port=\"$port\""
      echo "$port" > "$dir/port"
    fi
    tls_global="" tls_module=""
    if [[ -n $tls ]]; then
      tls_global=" defaultNetstreamDriverCAFile=\"$tls/ca.pem\" defaultNetstreamDriverCertFile=\"$tls/server.pem\" defaultNetstreamDriverKeyFile=\"$tls/server.key\""
      mode="anon"; [[ $tls_auth == x509 ]] && mode="x509/certvalid"
      tls_module=" streamDriver.name=\"ossl\" streamDriver.mode=\"1\" streamDriver.authMode=\"$mode\""
    fi
    # maxMessageSize must come before any module is loaded. No parser module strips anything
    # from %rawmsg%; octet-counted framing is off so that a line starting with digits and a
    # space stays a line; control characters (tabs) are kept as they are.
    if [[ $parse -eq 0 ]]; then
      cat > "$conf" <<EOF
global(maxMessageSize="$max_msg" workDirectory="$dir/work"
       parser.escapeControlCharactersOnReceive="off" net.enableDNS="off"$tls_global)
module(load="imtcp" maxSessions="256"$tls_module)
template(name="logsplice_raw" type="string" string="%rawmsg%\n")
ruleset(name="logsplice_in") {
  action(type="omfile" file="$out" template="logsplice_raw" flushOnTXEnd="on")
}
input(type="imtcp" address="127.0.0.1" $port_params ruleset="logsplice_in"
      supportOctetCountedFraming="off")
EOF
    else
      # RFC 5424 parsing: the default parser chain (pmrfc5424, then pmrfc3164) reads
      # "<PRI>1 ...". Control characters are kept on receive (a multiline MSG keeps its
      # newlines) and escaped on output by the JSON template (format="jsonf"), so each message
      # is one line of FILE. imtcp takes octet-counted frames ("LEN SP MSG") and LF-delimited
      # ones on the same port (supportOctetCountedFraming, on by default; set here anyway).
      cat > "$conf" <<EOF
global(maxMessageSize="$max_msg" workDirectory="$dir/work"
       parser.escapeControlCharactersOnReceive="off" net.enableDNS="off"$tls_global)
module(load="imtcp" maxSessions="256"$tls_module)
template(name="logsplice_event" type="list" option.jsonf="on") {
  property(outname="host" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}
ruleset(name="logsplice_in") {
  action(type="omfile" file="$out" template="logsplice_event" flushOnTXEnd="on")
}
input(type="imtcp" address="127.0.0.1" $port_params ruleset="logsplice_in"
      supportOctetCountedFraming="on")
EOF
    fi
    [[ $relp -eq 1 ]] && relp_conf "$conf"
    [[ $print_config -eq 1 ]] && { cat "$conf"; exit 0; }
    exec rsyslogd -n -f "$conf" -i "$dir/pid"
    ;;

  syslog-ng)
    root="$(syslog_ng_root)"
    [[ -x $root/usr/sbin/syslog-ng ]] ||
      die "private syslog-ng not found under $root: run scripts/install-collectors.sh"
    version="$(cut -d. -f1,2 < "$LOGSPLICE_TEST_CACHE/syslog-ng/VERSION")"
    if [[ $port -eq 0 ]]; then
      port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    fi
    conf="$dir/syslog-ng.conf"
    transport='transport("tcp")'
    if [[ -n $tls ]]; then
      verify="optional-untrusted"; [[ $tls_auth == x509 ]] && verify="required-trusted"
      transport="transport(\"tls\") tls(key-file(\"$tls/server.key\") cert-file(\"$tls/server.pem\") ca-file(\"$tls/ca.pem\") peer-verify($verify))"
    fi
    # flags(no-parse): the whole line is ${MESSAGE}, untouched. flow-control: the source stops
    # reading rather than dropping when the file destination lags.
    if [[ $parse -eq 0 ]]; then
      src="network(ip(\"127.0.0.1\") port($port) $transport flags(no-parse)"
      tpl='template("${MESSAGE}\n") template-escape(no)'
    else
      # syslog(transport("tcp")): RFC 5424 with RFC 6587 octet-counted framing ("LEN SP MSG").
      # The SD params are name-value pairs .SDATA.<SD-ID>.<PARAM>; format-json writes them
      # nested under "sd" and escapes the MSG, so each message is one line of FILE.
      # keep-hostname: HOST is the message's HOSTNAME, not the peer's address.
      src="syslog(ip(\"127.0.0.1\") port($port) $transport keep-hostname(yes)"
      tpl='template("$(format-json --scope none host=${HOST} app=${PROGRAM} msg=${MESSAGE} --key .SDATA.* --rekey .SDATA.* --replace-prefix .SDATA.=sd.)\n")'
    fi
    cat > "$conf" <<EOF
@version: $version
options { log-msg-size($max_msg); flush-lines(0); stats-freq(0); use-dns(no); dns-cache(no);
          create-dirs(yes); log-fifo-size(100000); };
source s_logsplice { $src
                            log-msg-size($max_msg) max-connections(100) log-iw-size(100000)); };
destination d_logsplice { file("$out" $tpl); };
log { source(s_logsplice); destination(d_logsplice); flags(flow-control); };
EOF
    [[ $print_config -eq 1 ]] && { cat "$conf"; exit 0; }
    echo "$port" > "$dir/port"
    moddir="$(find "$root/usr/lib/syslog-ng" -mindepth 1 -maxdepth 1 -type d -name '3.*' | head -n1)"
    export LD_LIBRARY_PATH="$root/usr/lib/syslog-ng${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    exec "$root/usr/sbin/syslog-ng" -F --stderr --no-caps \
      --module-path="$moddir" \
      -f "$conf" -R "$dir/syslog-ng.persist" -p "$dir/pid" -c "$dir/syslog-ng.ctl"
    ;;

  *) die "unknown collector '$kind' (rsyslog or syslog-ng)" ;;
esac
