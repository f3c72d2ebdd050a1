// logsplice: the command line. `run` is the daemon, `check` validates a config, `status` reads
// a running agent's metrics endpoint.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/collect/collect_server.h"
#include "agent/status/status_client.h"
#include "sys/version.h"
#include "config/collect_keys.h"
#include "config/parse.h"

namespace {

using logsplice::agent::kExitConfig;
using logsplice::agent::kExitOk;
using logsplice::agent::kExitStartup;
using logsplice::agent::kExitUsage;

constexpr const char* kUsage = R"(logsplice - a zero-copy log shipper

Usage:
  logsplice run    --config FILE [--pid-file FILE]   run the agent in the foreground
  logsplice check  --config FILE                     validate a config (agent or collector);
                                                     print every error
  logsplice status [--endpoint HOST:PORT] [--watch]  per sink: state, rate, lag (needs
                                                     agent.metrics.listen)
  logsplice collect --config FILE                    receive `type: logsplice` outputs into
                                                     mirrors of the agents' files
                                                     (docs/protocol.md; `collect:` config)
  logsplice --version | --help

Signals (run): SIGTERM/SIGINT drain outputs for at most agent.shutdown_timeout, write the
checkpoint and exit 0 (a second signal stops at once); SIGUSR1 reopens agent.log_file.

Exit codes: 0 ok; 1 config errors; 2 bad command line; 3 could not start (data_dir not
writable, metrics address taken, ...).

Config (YAML; unknown keys and bad values are errors with file:line:column):
  agent:
    data_dir: /var/lib/logsplice    checkpoints (delivered offset per file and output)
    log_level: info                 trace|debug|info|warn|error|critical|off
    log_file: PATH                  default stderr; SIGUSR1 reopens it
    metrics: { listen: 127.0.0.1:9880 }   Prometheus /metrics and /health; absent = off
    checkpoint_interval: 1s         how often delivered offsets are written
    shutdown_timeout: 10s           drain bound on SIGTERM
    lockstep: true                  feed in-step outputs with one splice + tee
    chunk_bytes: 64KiB              bytes per splice
    pipe_bytes: 256KiB              pipe capacity asked per output
    max_open_files: 1024            open-file budget for followed files
    hostname: NAME                  host name in syslog/json events; default gethostname()
  inputs:
  - name: NAME                      [A-Za-z0-9_.-]+, unique
    paths: [GLOB, ...]              absolute; * ? [..] and ** (any depth)
    exclude: [GLOB, ...]            matched against the full path and the base name
    start_at: end                   end|beginning, for files found at start-up only
    max_line_bytes: 1MiB            an unterminated line longer than this is split
    poll: false                     force stat polling instead of inotify
    poll_interval: 250ms            stat polling period
    rescan_interval: 10s            safety-net rescan of the globs
    partial_line_timeout: 5s        ship a final line without newline after this idle time
    rotate_wait: 5s                 keep reading a rotated file this long after it goes idle
    copy: false                     read/write instead of splice (files rewritten in place)
    rotated_retention: { max_bytes: 1GiB, max_age: 1h }   bound on holding rotated files for
                                    lagging outputs: max_age for renamed and deleted files,
                                    max_bytes for deleted ones (their disk space is pinned)
    fields: { KEY: VALUE, ... }     added to each syslog/json event (SD params, JSON keys);
                                    KEY: 1-32 printable ASCII, not = ] " or space, not a
                                    fixed key (timestamp host input file offset message partial)
    multiline:                      lines -> events, for syslog/json outputs only
      start_pattern: REGEX          PCRE2; a matching line begins a new event, others join
      timeout: 1s                   send the pending event after the file is idle this long
      max_bytes: 1MiB               cut (partial) an event at this size
  outputs:
  - name: NAME
    type: tcp
    addresses: [HOST:PORT, ...]     tried in order (failover)
    backoff: { initial: 100ms, max: 500ms } jittered exponential reconnect backoff
    connect_timeout: 5s
    keepalive: 30s                  TCP keepalive idle; TCP_USER_TIMEOUT is twice this
    format: raw                     raw (lines as they are, zero-copy) | syslog (RFC 5424,
                                    SD-ID logsplice@32473) | json (one object per line)
    framing: octet-counting         syslog only: octet-counting (RFC 6587) | lf (not with
                                    multiline inputs)
    facility: user                  syslog only: kern..local7 or 0-23
    severity: info                  syslog only: emerg..debug or 0-7
    app_name: INPUT                 syslog only: APP-NAME; default the input's name
    inputs: [NAME, ...]             routing: which inputs feed this output
  - name: NAME
    type: relp                      RELP (rsyslog imrelp): RFC 5424 events, each delivered once
                                    the collector answered it (docs/relp.md)
    addresses, backoff, connect_timeout, keepalive, facility, severity, app_name, tls: as tcp
    window: 4096                    syslog frames sent and not yet answered, at most
    timeout: 10s                    an unanswered frame older than this breaks the session
    inputs: [NAME, ...]
  - name: NAME
    type: archive
    dir: PATH                       files go to DIR/INPUT/SOURCE/YYYY-MM-DD/HHMMSS_NNN.log (UTC)
    rotate: { max_bytes: 1GiB, max_age: 1h }
    fsync: never                    never|rotate|interval
    fsync_interval: 1s
    inputs: [NAME, ...]
  - name: NAME
    type: kafka                     one message per event, at least once (docs/kafka.md)
    brokers: [HOST:PORT, ...]       bootstrap list
    topic: NAME                     fixed, or with ${input} / ${host}
    key: none                       none|host|file|host_file (host:path)
    compression: none               none|lz4|zstd|snappy|gzip
    acks: all                       all|1|0 (1 and 0 need idempotence: false)
    idempotence: true               the idempotent producer (no duplicates from retries)
    max_in_flight_bytes: 64MiB      past it the output stops reading until deliveries return
    format: raw                     raw (the event as it is) | json (the JSON event object)
    headers: true                   host, input, path, offset headers (false: ~2x cheaper)
    librdkafka: { PROP: VALUE }     passed through (SASL, SSL, batching); checked by librdkafka
    inputs: [NAME, ...]
    type: logsplice                 mirror whole files to `logsplice collect`
    addresses: [HOST:PORT, ...]     backoff, connect_timeout, keepalive: as tcp
    token: SECRET                   the collector's token for agent.hostname (optional
                                    with a tls client certificate naming agent.hostname)
    tls: { ... }                    as tcp: ca_file, cert_file, key_file, min_version, ...
    inputs: [NAME, ...]
Collector config (logsplice collect; a file of its own):
  collect:
    listen: 0.0.0.0:7514
    dir: PATH                       DIR/HOST/INPUT/SOURCE-PATH[.GENERATION] and DIR/.index
    tokens: { HOST: SECRET, ... }   "*" = any host not listed (optional with tls.ca_file)
    tls: { cert_file: F, key_file: F, ca_file: F, min_version: "1.2" }
                                    TLS; ca_file: client certificates required and verified,
                                    a host without a token needs one whose CN/SAN is its name
    fsync: { interval: 100ms, bytes: 4MiB }   acknowledgements follow fdatasync
    limits: { max_frame: 1MiB, max_connections: 1024, max_streams: 1024, idle_timeout: 60s,
              min_free: 64MiB }     below min_free free on DIR's filesystem: pause, no acks
    metrics: { listen: 127.0.0.1:9881 }
    log_level: info
Sizes: 512, 64KiB, 1MiB, 1GiB (KB/MB/GB are powers of 1000). Durations: 250ms, 5s, 1m, 1h, 1d.
)";

int usageError(const std::string& msg) {
  std::fprintf(stderr, "logsplice: %s\n(see logsplice --help)\n", msg.c_str());
  return kExitUsage;
}

struct Args {
  std::string command;
  std::string config;
  std::string pid_file;
  std::string endpoint = "127.0.0.1:9880";
  bool watch = false;
};

int parseArgs(int argc, char** argv, Args* args) {
  std::vector<std::string> v(argv + 1, argv + argc);
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string& a = v[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= v.size()) return false;
      *out = v[++i];
      return true;
    };
    if (a == "--config" || a == "-c") {
      if (!value(&args->config)) return usageError("--config needs a file");
    } else if (a.rfind("--config=", 0) == 0) {
      args->config = a.substr(9);
    } else if (a == "--pid-file") {
      if (!value(&args->pid_file)) return usageError("--pid-file needs a file");
    } else if (a == "--endpoint") {
      if (!value(&args->endpoint)) return usageError("--endpoint needs HOST:PORT");
    } else if (a == "--watch") {
      args->watch = true;
    } else if (args->command.empty() && a[0] != '-') {
      args->command = a;
    } else {
      return usageError("unknown argument '" + a + "'");
    }
  }
  return -1;
}

int checkCollect(const std::string& path) {
  auto parsed = logsplice::config::parseCollectConfigFile(path);
  for (const auto& e : parsed.errors) std::fprintf(stderr, "%s\n", e.toString().c_str());
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s: %zu error%s\n", path.c_str(), parsed.errors.size(),
                 parsed.errors.size() == 1 ? "" : "s");
    return kExitConfig;
  }
  std::printf("%s: ok (collector, %zu hosts with a token)\n", path.c_str(),
              parsed.config->tokens.size());
  return kExitOk;
}

int check(const std::string& path) {
  if (logsplice::config::isCollectConfigFile(path)) return checkCollect(path);
  auto parsed = logsplice::config::parseConfigFile(path);
  for (const auto& e : parsed.errors) std::fprintf(stderr, "%s\n", e.toString().c_str());
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s: %zu error%s\n", path.c_str(), parsed.errors.size(),
                 parsed.errors.size() == 1 ? "" : "s");
    return kExitConfig;
  }
  std::printf("%s: ok (%zu inputs, %zu outputs)\n", path.c_str(), parsed.config->inputs.size(),
              parsed.config->outputs.size());
  return kExitOk;
}

int run(const Args& args) {
  // splice has no MSG_NOSIGNAL: a closed peer must give EPIPE, not kill us. Before any thread.
  ::signal(SIGPIPE, SIG_IGN);
  auto parsed = logsplice::config::parseConfigFile(args.config);
  if (!parsed.ok()) {
    for (const auto& e : parsed.errors) std::fprintf(stderr, "%s\n", e.toString().c_str());
    return kExitConfig;
  }
  const auto& agent_cfg = parsed.config->agent;
  if (auto err = logsplice::agent::setupLogging(agent_cfg.log_level, agent_cfg.log_file)) {
    std::fprintf(stderr, "logsplice: %s\n", err.toString().c_str());
    return kExitStartup;
  }
  if (!args.pid_file.empty()) {
    std::ofstream pid(args.pid_file, std::ios::trunc);
    if (!(pid << ::getpid() << '\n')) {
      spdlog::critical("cannot write pid file {}: {}", args.pid_file, std::strerror(errno));
      return kExitStartup;
    }
  }
  int code = kExitStartup;
  {
    logsplice::agent::Agent agent(std::move(*parsed.config));
    if (auto err = agent.start()) {
      spdlog::critical("cannot start: {}", err.toString());
    } else {
      code = agent.run();
    }
  }
  if (!args.pid_file.empty()) ::unlink(args.pid_file.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--version") || !std::strcmp(argv[i], "-V")) {
      std::printf("logsplice %s\n", logsplice::sys::kVersion);
      return kExitOk;
    }
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kUsage, stdout);
      return kExitOk;
    }
  }
  Args args;
  if (int rc = parseArgs(argc, argv, &args); rc >= 0) return rc;
  if (args.command.empty()) return usageError("no command given");
  if (args.command == "run" || args.command == "check") {
    if (args.config.empty()) return usageError(args.command + " needs --config FILE");
    return args.command == "run" ? run(args) : check(args.config);
  }
  if (args.command == "collect") {
    if (args.config.empty()) return usageError("collect needs --config FILE");
    return logsplice::agent::collect::runCollect(args.config);
  }
  if (args.command == "status") {
    return logsplice::agent::runStatus(args.endpoint, args.watch, std::cout);
  }
  return usageError("unknown command '" + args.command + "'");
}
