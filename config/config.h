#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sys/host_port.h"

namespace logsplice::config {

using Millis = std::chrono::milliseconds;

// Where an item was written in the config file, for error messages ("file:line:col").
struct Mark {
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
};

// `agent:` — process-wide settings.
// The default of agent.batch_delay (see there).
inline constexpr Millis kDefaultBatchDelay{20};
// Its upper bound: the kernel queues inotify events meanwhile (16,384 by default before it
// overflows and forces a rescan), and the delay is added to every line's latency.
inline constexpr Millis kMaxBatchDelay{1000};

struct AgentConfig {
  std::string data_dir = "/var/lib/logsplice";  // checkpoints live here
  std::string log_level = "info";               // trace|debug|info|warn|error|critical|off
  std::string log_file;                         // empty = stderr; SIGUSR1 reopens it
  // agent.metrics.listen, "host:port" ([v6]:port for IPv6); port 0 = any free port.
  std::optional<sys::HostPort> metrics_listen;  // agent.metrics.listen "127.0.0.1:9880"; absent = off
  Millis checkpoint_interval{1000};             // agent.checkpoint_interval
  Millis shutdown_timeout{10000};               // agent.shutdown_timeout: drain bound on SIGTERM
  bool lockstep = true;                         // agent.lockstep: tee group for in-step sinks
  uint64_t chunk_bytes = 64 * 1024;             // agent.chunk_bytes: bytes per splice
  uint64_t pipe_bytes = 256 * 1024;             // agent.pipe_bytes: capacity asked per sink pipe
  uint64_t max_open_files = 1024;               // agent.max_open_files
  // agent.batch_delay: while appends are spread over several files, wait this long after
  // inotify reports a change before reading the events, so that they are handled in one pass:
  // one wakeup, one refresh per file, one send per output. The latency it adds is at most this;
  // appends to a single file are read at once. 0 turns it off. Inputs may override it.
  // Measured choice of the default: docs/design.md 1.1.
  Millis batch_delay{kDefaultBatchDelay};
  // agent.hostname: the HOSTNAME of syslog events and "host" of JSON events. The parser sets
  // the machine's host name (gethostname) when the key is absent.
  std::string hostname;
};

enum class StartAt { kEnd, kBeginning };

// Bounds on how long and how much a rotated/deleted file is held open for lagging sinks. Past
// either, the file is closed and the lagging sinks miss the rest (counted, logged).
struct RetentionConfig {
  // rotated_retention.max_bytes: applies to deleted files only (st_nlink 0), whose disk space
  // only our open fd keeps; a renamed file pins nothing extra, so its size never releases it.
  uint64_t max_bytes = 1ULL << 30;
  Millis max_age{std::chrono::hours(1)};  // rotated_retention.max_age: rotated and deleted files
};

// `multiline:` of an input: lines are put together into events for the event outputs (format
// syslog or json) it feeds; raw outputs still ship the lines as they are.
struct MultilineConfig {
  std::string start_pattern;         // PCRE2; a line it matches begins a new event
  Mark start_pattern_mark;           // where the pattern was written (regex errors point there)
  Millis timeout{1000};              // emit a pending event after the file was idle this long
  uint64_t max_bytes = 1024 * 1024;  // an event is cut (emitted early) past this size
};

// One `inputs:` entry.
struct InputConfig {
  std::string name;  // required, unique; only letters, digits, '_', '.' and '-'
  Mark mark;
  std::vector<std::string> paths;    // globs: * ? [..] and ** (any depth)
  std::vector<std::string> exclude;  // globs matched against the full path and the basename
  StartAt start_at = StartAt::kEnd;  // for files first seen at start-up only
  uint64_t max_line_bytes = 1024 * 1024;  // longer lines are split, never dropped
  bool poll = false;                 // force stat polling instead of inotify
  Millis poll_interval{250};         // stat polling period
  Millis rescan_interval{10000};     // safety-net rescan of the globs
  // batch_delay of this input (inotify only); absent in the file: agent.batch_delay.
  std::optional<Millis> batch_delay;
  Millis partial_line_timeout{5000}; // ship a final line without newline after this idle time
  Millis rotate_wait{5000};          // keep reading a rotated file this long after it goes idle
  bool copy = false;                 // send through the read/write copy path (files rewritten in place)
  RetentionConfig rotated_retention;
  // `fields:` static key/values added to every event of the event outputs, in file order. Keys
  // are valid RFC 5424 PARAM-NAMEs and never one of the fixed keys (see config/event_keys.h).
  std::vector<std::pair<std::string, std::string>> fields;
  std::optional<MultilineConfig> multiline;
};

// Reconnect backoff of a tcp output. The cap is what bounds recovery: a collector that is down
// for longer than a few attempts is retried every max/2..max, so after it comes back the first
// byte leaves within `max` (on average ~0.4 x max). 500 ms keeps that under half a second; the
// price is 2..4 connect attempts a second per address while it is down, each answered by the
// collector host's kernel (a RST, no process woken): 1,000 agents cost it ~3,000 SYN/RST pairs,
// ~400 KB/s, a second. A host that does not answer at all costs one attempt per connect_timeout.
// A collector that accepts and drops connections is not hammered either: the delay starts again
// from `initial` only after a connection that lived (outputs/tcp_connection.cc).
struct Backoff {
  Millis initial{100};
  Millis max{500};
};

// What a tcp output sends: the raw lines (zero-copy), or one formatted event per line.
enum class EventFormat { kRaw, kSyslog, kJson };
// How syslog messages are delimited (RFC 6587); JSON is always one object per line.
enum class Framing { kOctetCounting, kLf };

// kTLS: let the kernel encrypt (raw outputs keep splicing) when it can (auto), or refuse to
// start when it cannot (require), or never (off).
enum class KtlsMode { kAuto, kRequire, kOff };

// `tls:` of a tcp output (config/tls_keys.cc). Files are checked at parse time (readable, a
// key that matches its certificate, not expired) so `check` reports them.
struct TlsConfig {
  Mark mark;                // where `tls:` was written
  std::string ca_file;      // empty = the system store
  std::string cert_file;    // client certificate (mutual TLS), with key_file
  std::string key_file;
  std::string server_name;  // SNI and the name verified; empty = the host of the address
  bool verify = true;       // false only explicitly (a warning at every start)
  int min_version = 0x0303; // TLS1_2_VERSION or TLS1_3_VERSION
  std::string ciphers;      // TLS 1.2 cipher list (OpenSSL syntax); empty = the default
  std::string ciphersuites; // TLS 1.3 suites; empty = the default
  KtlsMode ktls = KtlsMode::kAuto;
};

// `type: tcp` output.
struct TcpOutput {
  std::vector<sys::HostPort> addresses;  // tried in order (failover)
  Backoff backoff;                     // reconnect backoff (jittered, exponential)
  Millis connect_timeout{5000};
  Millis keepalive{30000};             // TCP keepalive idle time; also TCP_USER_TIMEOUT
  EventFormat format = EventFormat::kRaw;
  Framing framing = Framing::kOctetCounting;  // format: syslog only
  Mark framing_mark;                          // where `framing` was written; line 0 when absent
  int facility = 1;                           // syslog facility 0..23 (1 = user)
  int severity = 6;                           // syslog severity 0..7 (6 = info)
  std::string app_name;                       // syslog APP-NAME; empty = the input's name
  std::optional<TlsConfig> tls;               // absent = plain TCP
};

// `type: relp` output (config/relp_keys.cc): events over RELP, each acknowledged by the
// collector. `tcp` holds the keys it shares with a tcp output (addresses, backoff,
// connect_timeout, keepalive, facility, severity, app_name, tls); its format is always syslog
// with octet counting, which is RELP's own frame ("DATALEN SP DATA").
struct RelpOutput {
  TcpOutput tcp;
  uint64_t window = 4096;  // syslog frames sent and not yet answered, at most (docs/relp.md)
  Millis timeout{10000};  // an unanswered frame older than this breaks the session
};

enum class FsyncPolicy { kNever, kRotate, kInterval };

// `type: archive` output.
struct ArchiveOutput {
  std::string dir;
  uint64_t rotate_max_bytes = 1ULL << 30;  // rotate.max_bytes
  Millis rotate_max_age{std::chrono::hours(1)};  // rotate.max_age
  FsyncPolicy fsync = FsyncPolicy::kNever;
  Millis fsync_interval{1000};
};

// `type: kafka` output (config/kafka_keys.h): one message per event, keyed and with headers.
enum class KafkaKey { kNone, kHost, kFile, kHostFile };
struct KafkaOutput {
  std::vector<std::string> brokers;  // bootstrap "host:port" list
  std::string topic;                 // fixed, or with ${input} / ${host}
  KafkaKey key = KafkaKey::kNone;
  std::string compression = "none";  // none | lz4 | zstd | snappy | gzip
  std::string acks = "all";          // all | 1 | 0
  bool idempotence = true;           // enable.idempotence
  uint64_t max_in_flight_bytes = 64ULL << 20;
  EventFormat format = EventFormat::kRaw;  // raw (the event as is) or json
  bool headers = true;  // host, input, path and offset headers on every message
  // `librdkafka:` properties passed through (after ours, so they win), with where each was.
  std::vector<std::pair<std::string, std::string>> librdkafka;
  std::vector<Mark> librdkafka_marks;
};

// `type: logsplice` output: a collector running `logsplice collect` (docs/protocol.md). The
// connection keys are those of tcp (addresses, backoff, connect_timeout, keepalive).
struct LogspliceOutput {
  TcpOutput tcp;
  std::string token;  // the shared token the collector holds for agent.hostname
};

// One `outputs:` entry. `inputs` is the routing: which inputs feed this sink.
struct OutputConfig {
  std::string name;  // required, unique; only letters, digits, '_', '.' and '-'
  Mark mark;
  std::vector<std::string> inputs;
  // Where each of `inputs` was written (same size as `inputs` when parsed, possibly empty when
  // built in code), so that a bad route is reported at its name.
  std::vector<Mark> input_marks;
  std::variant<TcpOutput, ArchiveOutput, KafkaOutput, LogspliceOutput, RelpOutput> kind;
};

struct Config {
  std::string source_path;  // the file it was read from
  AgentConfig agent;
  std::vector<InputConfig> inputs;
  std::vector<OutputConfig> outputs;
};

// One problem found in a config file; `check` prints every one of them.
struct ConfigError {
  std::string file;
  Mark mark;
  std::string message;
  std::string toString() const;  // "file:line:col: message"
};

}  // namespace logsplice::config
