#include "config/parse.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/unit/config/config_test_helpers.h"
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace logsplice::config {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// The smallest valid config; tests append to or replace parts of it.
constexpr const char* kMinimal = R"(inputs:
  - name: nginx
    paths: ["/var/log/nginx/*.log"]
outputs:
  - name: central
    type: tcp
    addresses: ["127.0.0.1:5140"]
    inputs: [nginx]
)";

// The one error whose message contains `needle`; fails the test when there is not exactly one.
ConfigError errorWith(const ParseResult& result, const std::string& needle) {
  INFO("looking for '" << needle << "' in:\n" << allErrors(result));
  CHECK_FALSE(result.ok());
  CHECK_FALSE(result.config.has_value());
  std::vector<ConfigError> found;
  for (const ConfigError& e : result.errors) {
    if (e.message.find(needle) != std::string::npos) found.push_back(e);
  }
  REQUIRE(found.size() == 1);
  CHECK(found[0].file == "test.yaml");
  return found[0];
}

// Parses `text` and expects exactly one error, whose message is `message`.
ConfigError onlyError(const std::string& text, const std::string& message) {
  ParseResult result = parse(text);
  INFO("errors:\n" << allErrors(result));
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].message == message);
  CHECK_FALSE(result.config.has_value());
  return result.errors[0];
}

void checkMark(const ConfigError& e, int line, int column) {
  INFO(e.toString());
  CHECK(e.mark.line == line);
  CHECK(e.mark.column == column);
}

TEST_CASE("a full config fills every field", "[config][parse]") {
  Config c = parseOk(R"(agent:
  data_dir: /srv/logsplice
  log_level: debug
  log_file: /var/log/logsplice.log
  metrics: { listen: "127.0.0.1:9880" }
  checkpoint_interval: 2s
  shutdown_timeout: 1m
  lockstep: false
  chunk_bytes: 128KiB
  pipe_bytes: 1MiB
  max_open_files: 4096
inputs:
  - name: nginx
    paths: ["/var/log/nginx/*.log", "/var/log/nginx/**/*.log"]
    exclude: ["*.gz", "*.1"]
    start_at: beginning
    max_line_bytes: 2MiB
    poll: true
    poll_interval: 500ms
    rescan_interval: 30s
    partial_line_timeout: 3s
    rotate_wait: 7s
    copy: true
    rotated_retention: { max_bytes: 512MiB, max_age: 2h }
  - name: app.v2_x-y
    paths: [/var/log/app.log]
outputs:
  - name: central
    type: tcp
    addresses: ["127.0.0.5:5140", "[::1]:5141", "collector.example.com:5142"]
    backoff: { initial: 200ms, max: 1m }
    connect_timeout: 3s
    keepalive: 45s
    inputs: [nginx, app.v2_x-y]
  - name: local
    type: archive
    dir: /var/log/archive
    rotate: { max_bytes: 100MB, max_age: 1h30m }
    fsync: interval
    fsync_interval: 10s
    inputs: [nginx]
)");
  CHECK(c.source_path == "test.yaml");
  CHECK(c.agent.data_dir == "/srv/logsplice");
  CHECK(c.agent.log_level == "debug");
  CHECK(c.agent.log_file == "/var/log/logsplice.log");
  REQUIRE(c.agent.metrics_listen.has_value());
  CHECK(c.agent.metrics_listen->toString() == "127.0.0.1:9880");
  CHECK(c.agent.checkpoint_interval == seconds(2));
  CHECK(c.agent.shutdown_timeout == minutes(1));
  CHECK(c.agent.lockstep == false);
  CHECK(c.agent.chunk_bytes == 128 * 1024);
  CHECK(c.agent.pipe_bytes == 1024 * 1024);
  CHECK(c.agent.max_open_files == 4096);

  REQUIRE(c.inputs.size() == 2);
  const InputConfig& in = c.inputs[0];
  CHECK(in.name == "nginx");
  CHECK(in.mark.line == 13);
  CHECK(in.mark.column == 5);
  CHECK(in.paths == std::vector<std::string>{"/var/log/nginx/*.log", "/var/log/nginx/**/*.log"});
  CHECK(in.exclude == std::vector<std::string>{"*.gz", "*.1"});
  CHECK(in.start_at == StartAt::kBeginning);
  CHECK(in.max_line_bytes == 2 * 1024 * 1024);
  CHECK(in.poll == true);
  CHECK(in.poll_interval == Millis(500));
  CHECK(in.rescan_interval == seconds(30));
  CHECK(in.partial_line_timeout == seconds(3));
  CHECK(in.rotate_wait == seconds(7));
  CHECK(in.copy == true);
  CHECK(in.rotated_retention.max_bytes == 512ULL * 1024 * 1024);
  CHECK(in.rotated_retention.max_age == hours(2));
  CHECK(c.inputs[1].name == "app.v2_x-y");
  CHECK(c.inputs[1].mark.line == 25);
  CHECK(c.inputs[1].paths == std::vector<std::string>{"/var/log/app.log"});

  REQUIRE(c.outputs.size() == 2);
  const OutputConfig& central = c.outputs[0];
  CHECK(central.name == "central");
  CHECK(central.mark.line == 28);
  CHECK(central.mark.column == 5);
  CHECK(central.inputs == std::vector<std::string>{"nginx", "app.v2_x-y"});
  REQUIRE(std::holds_alternative<TcpOutput>(central.kind));
  const TcpOutput& tcp = std::get<TcpOutput>(central.kind);
  CHECK(tcp.addresses == std::vector<sys::HostPort>{{"127.0.0.5", 5140},
                                                    {"::1", 5141},
                                                    {"collector.example.com", 5142}});
  CHECK(tcp.backoff.initial == Millis(200));
  CHECK(tcp.backoff.max == minutes(1));
  CHECK(tcp.connect_timeout == seconds(3));
  CHECK(tcp.keepalive == seconds(45));

  const OutputConfig& local = c.outputs[1];
  CHECK(local.name == "local");
  CHECK(local.mark.line == 35);
  CHECK(local.inputs == std::vector<std::string>{"nginx"});
  REQUIRE(std::holds_alternative<ArchiveOutput>(local.kind));
  const ArchiveOutput& archive = std::get<ArchiveOutput>(local.kind);
  CHECK(archive.dir == "/var/log/archive");
  CHECK(archive.rotate_max_bytes == 100'000'000);
  CHECK(archive.rotate_max_age == minutes(90));
  CHECK(archive.fsync == FsyncPolicy::kInterval);
  CHECK(archive.fsync_interval == seconds(10));
}

TEST_CASE("absent keys keep their defaults", "[config][parse]") {
  Config c = parseOk(std::string(kMinimal) + R"(  - name: local
    type: archive
    dir: /var/log/archive
    inputs: [nginx]
)");
  const AgentConfig defaults_agent;
  CHECK(c.agent.data_dir == "/var/lib/logsplice");
  CHECK(c.agent.log_level == "info");
  CHECK(c.agent.log_file.empty());
  CHECK_FALSE(c.agent.metrics_listen.has_value());
  CHECK(c.agent.checkpoint_interval == seconds(1));
  CHECK(c.agent.shutdown_timeout == seconds(10));
  CHECK(c.agent.lockstep == true);
  CHECK(c.agent.chunk_bytes == 64 * 1024);
  CHECK(c.agent.pipe_bytes == 256 * 1024);
  CHECK(c.agent.max_open_files == defaults_agent.max_open_files);

  REQUIRE(c.inputs.size() == 1);
  const InputConfig& in = c.inputs[0];
  CHECK(in.exclude.empty());
  CHECK(in.start_at == StartAt::kEnd);
  CHECK(in.max_line_bytes == 1024 * 1024);
  CHECK(in.poll == false);
  CHECK(in.poll_interval == Millis(250));
  CHECK(in.rescan_interval == seconds(10));
  CHECK(in.partial_line_timeout == seconds(5));
  CHECK(in.rotate_wait == seconds(5));
  CHECK(in.copy == false);
  CHECK(in.rotated_retention.max_bytes == 1ULL << 30);
  CHECK(in.rotated_retention.max_age == hours(1));

  REQUIRE(c.outputs.size() == 2);
  const TcpOutput& tcp = std::get<TcpOutput>(c.outputs[0].kind);
  CHECK(tcp.backoff.initial == Millis(100));
  CHECK(tcp.backoff.max == Millis(500));
  CHECK(tcp.connect_timeout == seconds(5));
  CHECK(tcp.keepalive == seconds(30));
  const ArchiveOutput& archive = std::get<ArchiveOutput>(c.outputs[1].kind);
  CHECK(archive.rotate_max_bytes == 1ULL << 30);
  CHECK(archive.rotate_max_age == hours(1));
  CHECK(archive.fsync == FsyncPolicy::kNever);
  CHECK(archive.fsync_interval == seconds(1));
}

TEST_CASE("partial nested maps keep the defaults of the keys they omit", "[config][parse]") {
  Config c = parseOk(R"(inputs:
  - name: a
    paths: [/x]
    rotated_retention: { max_age: 5m }
outputs:
  - name: o
    type: tcp
    addresses: [h:1]
    backoff: { max: 2m }
    inputs: [a]
)");
  CHECK(c.inputs[0].rotated_retention.max_bytes == 1ULL << 30);
  CHECK(c.inputs[0].rotated_retention.max_age == minutes(5));
  CHECK(std::get<TcpOutput>(c.outputs[0].kind).backoff.initial == Millis(100));
  CHECK(std::get<TcpOutput>(c.outputs[0].kind).backoff.max == minutes(2));
}

TEST_CASE("an empty agent section means all defaults", "[config][parse]") {
  Config c = parseOk("agent:\n  # data_dir: /x\n" + std::string(kMinimal));
  CHECK(c.agent.data_dir == "/var/lib/logsplice");
}

TEST_CASE("every log level is accepted", "[config][parse]") {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    Config c = parseOk("agent: { log_level: " + std::string(level) + " }\n" + kMinimal);
    CHECK(c.agent.log_level == level);
  }
}

TEST_CASE("unknown keys are reported at every level", "[config][parse]") {
  SECTION("top level") {
    ConfigError e = onlyError("inptus: []\n" + std::string(kMinimal),
                              "unknown key 'inptus' at the top level (did you mean 'inputs'?)");
    checkMark(e, 1, 1);
  }
  SECTION("agent") {
    ConfigError e = onlyError("agent:\n  data_dri: /x\n" + std::string(kMinimal),
                              "unknown key 'data_dri' in 'agent' (did you mean 'data_dir'?)");
    checkMark(e, 2, 3);
  }
  SECTION("agent.metrics") {
    onlyError("agent:\n  metrics: { listen: '0.0.0.0:1', path: /m }\n" + std::string(kMinimal),
              "unknown key 'path' in 'agent.metrics'");
  }
  SECTION("input") {
    ConfigError e = onlyError(R"(inputs:
  - name: nginx
    paths: ["/a"]
    colour: blue
outputs:
  - { name: o, type: tcp, addresses: ["h:1"], inputs: [nginx] }
)",
                              "unknown key 'colour' in input 'nginx'");
    checkMark(e, 4, 5);
  }
  SECTION("input rotated_retention") {
    onlyError(R"(inputs:
  - name: nginx
    paths: ["/a"]
    rotated_retention: { max_byte: 1 }
outputs:
  - { name: o, type: tcp, addresses: ["h:1"], inputs: [nginx] }
)",
              "unknown key 'max_byte' in 'rotated_retention' of input 'nginx' (did you mean "
              "'max_bytes'?)");
  }
  SECTION("output, with a suggestion") {
    ConfigError e = onlyError(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - name: central
    type: tcp
    addresses: ["h:1"]
    adresses: ["h:2"]
    inputs: [nginx]
)",
                              "unknown key 'adresses' in output 'central' (did you mean "
                              "'addresses'?)");
    checkMark(e, 7, 5);
  }
  SECTION("output backoff") {
    onlyError(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - name: central
    type: tcp
    addresses: ["h:1"]
    backoff: { inital: 1s }
    inputs: [nginx]
)",
              "unknown key 'inital' in 'backoff' of output 'central' (did you mean 'initial'?)");
  }
  SECTION("output rotate") {
    onlyError(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - name: local
    type: archive
    dir: /d
    rotate: { every: 1h }
    inputs: [nginx]
)",
              "unknown key 'every' in 'rotate' of output 'local'");
  }
}

TEST_CASE("keys of the other output type are unknown", "[config][parse]") {
  SECTION("tcp keys on an archive output") {
    ParseResult r = parse(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - name: local
    type: archive
    dir: /d
    addresses: ["h:1"]
    keepalive: 5s
    inputs: [nginx]
)");
    REQUIRE(r.errors.size() == 2);
    CHECK(r.errors[0].message ==
          "unknown key 'addresses' in output 'local' (only tcp outputs take it)");
    checkMark(r.errors[0], 7, 5);
    CHECK(r.errors[1].message ==
          "unknown key 'keepalive' in output 'local' (only tcp outputs take it)");
  }
  SECTION("archive keys on a tcp output") {
    onlyError(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - name: central
    type: tcp
    addresses: ["h:1"]
    fsync: never
    inputs: [nginx]
)",
              "unknown key 'fsync' in output 'central' (only archive outputs take it)");
  }
}

TEST_CASE("repeated keys are reported", "[config][parse]") {
  ConfigError e = onlyError("agent:\n  lockstep: true\n  lockstep: false\n" + std::string(kMinimal),
                            "duplicate key 'lockstep' in 'agent' (first at 2:3)");
  checkMark(e, 3, 3);
}

TEST_CASE("wrong types are reported", "[config][parse]") {
  SECTION("paths as a string") {
    ConfigError e = onlyError(R"(inputs:
  - name: nginx
    paths: /var/log/*.log
outputs:
  - { name: o, type: tcp, addresses: ["h:1"], inputs: [nginx] }
)",
                              "'paths' must be a list of strings");
    checkMark(e, 3, 12);
  }
  SECTION("a list holding a map") {
    ConfigError e = onlyError(R"(inputs:
  - name: nginx
    paths: ["/a", {x: 1}]
outputs:
  - { name: o, type: tcp, addresses: ["h:1"], inputs: [nginx] }
)",
                              "'paths' must be a list of strings");
    checkMark(e, 3, 19);
  }
  SECTION("a bool that is not one") {
    onlyError("agent: { lockstep: maybe }\n" + std::string(kMinimal),
              "'lockstep' must be true or false, not 'maybe'");
  }
  SECTION("a string given a list") {
    onlyError("agent: { data_dir: [a, b] }\n" + std::string(kMinimal),
              "'data_dir' must be a string");
  }
  SECTION("agent as a list") {
    onlyError("agent: [1]\n" + std::string(kMinimal), "'agent' must be a map");
  }
  SECTION("a nested map given a scalar") {
    onlyError("agent: { metrics: on }\n" + std::string(kMinimal), "'metrics' must be a map");
  }
  SECTION("max_open_files not a number") {
    onlyError("agent: { max_open_files: lots }\n" + std::string(kMinimal),
              "'max_open_files' must be a whole number, not 'lots'");
  }
  SECTION("inputs as a map") {
    ParseResult r = parse(R"(inputs: { name: a }
outputs:
  - { name: o, type: tcp, addresses: ["h:1"], inputs: [a] }
)");
    checkMark(errorWith(r, "'inputs' must be a list of inputs"), 1, 9);
  }
  SECTION("an entry that is not a map") {
    ParseResult r = parse(R"(inputs:
  - nginx
outputs:
  - { name: o, type: tcp, addresses: ["h:1"], inputs: [nginx] }
)");
    checkMark(errorWith(r, "input #1 must be a map"), 2, 5);
  }
  SECTION("the whole file is a list") {
    ConfigError e = onlyError("- a\n- b\n",
                              "the config must be a map with the keys 'agent', 'inputs' and "
                              "'outputs'");
    checkMark(e, 1, 1);
  }
}

TEST_CASE("missing required keys are reported", "[config][parse]") {
  SECTION("paths") {
    ConfigError e = onlyError(R"(inputs:
  - name: nginx
outputs:
  - { name: o, type: tcp, addresses: ["h:1"], inputs: [nginx] }
)",
                              "missing required key 'paths' in input 'nginx'");
    checkMark(e, 2, 5);
  }
  SECTION("name, type, inputs of an output") {
    ParseResult r = parse(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - addresses: ["h:1"]
)");
    CHECK(r.errors.size() == 3);
    checkMark(errorWith(r, "missing required key 'name' in output #1"), 4, 5);
    errorWith(r, "missing required key 'type' in output #1");
    errorWith(r, "missing required key 'inputs' in output #1");
  }
  SECTION("addresses of a tcp output and dir of an archive output") {
    ParseResult r = parse(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - { name: a, type: tcp, inputs: [nginx] }
  - { name: b, type: archive, inputs: [nginx] }
)");
    CHECK(r.errors.size() == 2);
    errorWith(r, "missing required key 'addresses' in output 'a'");
    errorWith(r, "missing required key 'dir' in output 'b'");
  }
  SECTION("metrics without listen") {
    onlyError("agent: { metrics: {} }\n" + std::string(kMinimal),
              "missing required key 'listen' in 'agent.metrics'");
  }
  SECTION("no inputs and no outputs") {
    ParseResult r = parse("agent: { lockstep: true }\n");
    REQUIRE(r.errors.size() == 2);
    errorWith(r, "missing required key 'inputs' at the top level");
    errorWith(r, "missing required key 'outputs' at the top level");
  }
  SECTION("empty file") {
    onlyError("", "the config is empty (it needs 'inputs' and 'outputs')");
    onlyError("# nothing here\n", "the config is empty (it needs 'inputs' and 'outputs')");
  }
}

TEST_CASE("empty lists are reported where entries are required", "[config][parse]") {
  SECTION("inputs and outputs") {
    ParseResult r = parse("inputs: []\noutputs: []\n");
    REQUIRE(r.errors.size() == 2);
    checkMark(errorWith(r, "'inputs' must list at least one input"), 1, 9);
    checkMark(errorWith(r, "'outputs' must list at least one output"), 2, 10);
  }
  SECTION("paths, addresses and routed inputs") {
    ParseResult r = parse(R"(inputs:
  - { name: nginx, paths: [] }
outputs:
  - { name: o, type: tcp, addresses: [], inputs: [] }
)");
    CHECK(r.errors.size() == 3);
    errorWith(r, "'paths' must list at least one path");
    errorWith(r, "'addresses' must list at least one host:port");
    errorWith(r, "'inputs' must list at least one input in output 'o'");
  }
}

TEST_CASE("bad sizes are reported with the key", "[config][parse]") {
  ConfigError e = onlyError(R"(inputs:
  - name: nginx
    paths: ["/a"]
    max_line_bytes: 1XB
outputs:
  - { name: o, type: tcp, addresses: ["h:1"], inputs: [nginx] }
)",
                            "'max_line_bytes': invalid size '1XB' (use a number with B, KiB, "
                            "MiB, GiB, KB, MB, GB)");
  checkMark(e, 4, 21);
  onlyError("agent: { chunk_bytes: -4KiB }\n" + std::string(kMinimal),
            "'chunk_bytes': size '-4KiB' must not be negative");
  onlyError("agent: { pipe_bytes: 0 }\n" + std::string(kMinimal),
            "'pipe_bytes' must be at least 1 byte");
  onlyError("agent: { pipe_bytes: '' }\n" + std::string(kMinimal),
            "'pipe_bytes': empty size (use e.g. 64KiB or 1MiB)");
}

TEST_CASE("bad durations are reported with the key", "[config][parse]") {
  ConfigError e = onlyError("agent:\n  checkpoint_interval: 5x\n" + std::string(kMinimal),
                            "'checkpoint_interval': invalid duration '5x' (use a number with ms, "
                            "s, m, h or d, e.g. 250ms, 5s, 1h30m)");
  checkMark(e, 2, 24);
  onlyError("agent: { shutdown_timeout: 10 }\n" + std::string(kMinimal),
            "'shutdown_timeout': duration '10' needs a unit (ms, s, m, h or d), e.g. '10s'");
  onlyError("agent: { checkpoint_interval: 0s }\n" + std::string(kMinimal),
            "'checkpoint_interval' must be greater than zero");
  ParseResult r = parse(R"(inputs:
  - name: a
    paths: [/a]
    rotated_retention: { max_age: soon }
outputs:
  - name: o
    type: tcp
    addresses: ["h:1"]
    keepalive: 500ms
    backoff: { initial: 1q }
    inputs: [a]
)");
  CHECK(r.errors.size() == 3);
  errorWith(r, "'rotated_retention.max_age': invalid duration 'soon'");
  errorWith(r, "'keepalive' must be at least 1s");
  checkMark(errorWith(r, "'backoff.initial': invalid duration '1q'"), 10, 25);
}

TEST_CASE("batch_delay: agent default, per-input override, bounds", "[config][parse]") {
  ParseResult dflt = parse(kMinimal);
  REQUIRE(dflt.ok());
  CHECK(dflt.config->agent.batch_delay == kDefaultBatchDelay);
  // Inputs without their own take the agent's, wherever the agent section is in the file.
  CHECK(dflt.config->inputs[0].batch_delay == kDefaultBatchDelay);

  ParseResult r = parse(R"(inputs:
  - name: a
    paths: [/a]
  - name: b
    paths: [/b]
    batch_delay: 0ms
outputs:
  - name: o
    type: tcp
    addresses: ["h:1"]
    inputs: [a, b]
agent:
  batch_delay: 50ms
)");
  INFO(allErrors(r));
  REQUIRE(r.ok());
  CHECK(r.config->agent.batch_delay == std::chrono::milliseconds(50));
  CHECK(r.config->inputs[0].batch_delay == std::chrono::milliseconds(50));
  CHECK(r.config->inputs[1].batch_delay == std::chrono::milliseconds(0));

  ConfigError e = onlyError("agent:\n  batch_delay: 2s\n" + std::string(kMinimal),
                            "'batch_delay' must be at most 1000ms (it is added to every line's "
                            "latency)");
  checkMark(e, 2, 16);
  onlyError("agent: { batch_delay: fast }\n" + std::string(kMinimal),
            "'batch_delay': invalid duration 'fast' (use a number with ms, s, m, h or d, e.g. "
            "250ms, 5s, 1h30m)");
  ParseResult bad_input = parse(R"(inputs:
  - name: a
    paths: [/a]
    batch_delay: 5m
outputs:
  - name: o
    type: tcp
    addresses: ["h:1"]
    inputs: [a]
)");
  checkMark(errorWith(bad_input, "'batch_delay' must be at most 1000ms"), 4, 18);
}

TEST_CASE("bad enum values are reported", "[config][parse]") {
  onlyError("agent: { log_level: verbose }\n" + std::string(kMinimal),
            "'log_level': invalid value 'verbose' (expected trace, debug, info, warn, error, "
            "critical or off)");
  ParseResult r = parse(R"(inputs:
  - { name: a, paths: [/a], start_at: middle }
outputs:
  - { name: o, type: archive, dir: /d, fsync: always, inputs: [a] }
)");
  CHECK(r.errors.size() == 2);
  errorWith(r, "'start_at': invalid value 'middle' (expected end or beginning)");
  errorWith(r, "'fsync': invalid value 'always' (expected never, rotate or interval)");
}

TEST_CASE("an unknown output type is reported", "[config][parse]") {
  ConfigError e = onlyError(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - name: central
    type: pigeon
    inputs: [nginx]
)",
                            "unknown output type 'pigeon' (expected tcp, relp, archive, kafka or logsplice)");
  checkMark(e, 5, 11);
}

TEST_CASE("an output of unknown type still has its routes checked", "[config][parse]") {
  ParseResult r = parse(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - { name: central, type: pigeon, inputs: [ngnix] }
)");
  CHECK(r.errors.size() == 2);
  errorWith(r, "unknown output type 'pigeon'");
  errorWith(r, "output 'central' routes from unknown input 'ngnix'");
}

TEST_CASE("bad addresses and ports are reported", "[config][parse]") {
  ParseResult r = parse(R"(agent:
  metrics: { listen: "localhost" }
inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - name: central
    type: tcp
    addresses: ["127.0.0.11:5140", "127.0.0.12:70000", "h:0", "::1:80"]
    inputs: [nginx]
)");
  CHECK(r.errors.size() == 4);
  checkMark(errorWith(r, "port 70000 is out of range (1..65535)"), 8, 36);  // the second list item
  errorWith(r, "'addresses': address 'h:0': port 0 is out of range (1..65535)");
  errorWith(r, "IPv6 addresses need brackets");
  checkMark(errorWith(r, "'metrics.listen': address 'localhost' has no port"), 2, 22);
}

TEST_CASE("a metrics listen address may use port 0", "[config][parse]") {
  Config c = parseOk("agent: { metrics: { listen: '[::]:0' } }\n" + std::string(kMinimal));
  CHECK(c.agent.metrics_listen == sys::HostPort{"::", 0});
}

TEST_CASE("relative input paths and bad names are reported", "[config][parse]") {
  ParseResult r = parse(R"(inputs:
  - { name: "ng inx", paths: ["var/log/*.log"] }
outputs:
  - { name: "a/b", type: tcp, addresses: ["h:1"], inputs: ["ng inx"] }
)");
  CHECK(r.errors.size() == 3);
  errorWith(r, "'paths': path 'var/log/*.log' must be absolute");
  errorWith(r, "input name 'ng inx' may only contain letters, digits, '_', '.' and '-'");
  errorWith(r, "output name 'a/b' may only contain");
}

TEST_CASE("duplicate input names are reported with the first place", "[config][parse]") {
  ConfigError e = onlyError(R"(inputs:
  - name: nginx
    paths: ["/a"]
  - name: nginx
    paths: ["/b"]
outputs:
  - { name: o, type: tcp, addresses: ["h:1"], inputs: [nginx] }
)",
                            "duplicate input name 'nginx' (first defined at 2:5)");
  checkMark(e, 4, 5);
}

TEST_CASE("duplicate output names are reported", "[config][parse]") {
  ConfigError e = onlyError(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - { name: o, type: tcp, addresses: ["h:1"], inputs: [nginx] }
  - { name: o, type: archive, dir: /d, inputs: [nginx] }
)",
                            "duplicate output name 'o' (first defined at 4:5)");
  checkMark(e, 5, 5);
}

TEST_CASE("routes from unknown inputs are reported", "[config][parse]") {
  ConfigError e = onlyError(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - name: central
    type: tcp
    addresses: ["h:1"]
    inputs: [nginx, ngnix]
)",
                            "output 'central' routes from unknown input 'ngnix'");
  checkMark(e, 7, 21);  // at the unknown name, not at the output
}

TEST_CASE("a bad route is reported at its list item", "[config][parse]") {
  // The output begins at 11:5; the unknown name is on line 14.
  ParseResult r = parse(R"(agent:
  data_dir: /tmp/x
inputs:
  - name: app
    paths: ["/var/log/app/*.log"]
  - name: web
    paths: ["/var/log/web/*.log"]
outputs:
  - name: c
    type: tcp
  - name: o
    type: tcp
    addresses: ["127.0.0.1:5140"]
    inputs: [nope]
  - name: twice
    type: archive
    dir: /var/log/archive
    inputs:
      - web
      - app
      - web
)");
  INFO(allErrors(r));
  ConfigError unknown = errorWith(r, "output 'o' routes from unknown input 'nope'");
  CHECK(unknown.toString() == "test.yaml:14:14: output 'o' routes from unknown input 'nope'");
  checkMark(errorWith(r, "output 'twice' lists input 'web' more than once"), 21, 9);
}

TEST_CASE("two archive outputs may not share a dir", "[config][parse]") {
  onlyError(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - { name: one, type: archive, dir: /var/log/archive, inputs: [nginx] }
  - { name: two, type: archive, dir: /var/log/archive/, inputs: [nginx] }
)",
            "output 'two' writes to archive dir '/var/log/archive/', already used by output "
            "'one' (at 4:5)");
}

TEST_CASE("backoff.initial may not exceed backoff.max", "[config][parse]") {
  onlyError(R"(inputs:
  - { name: nginx, paths: ["/a"] }
outputs:
  - { name: o, type: tcp, addresses: ["h:1"], backoff: { initial: 1m, max: 10s }, inputs: [nginx] }
)",
            "'backoff.initial' (60s) is greater than 'backoff.max' (10s) in output 'o'");
}

TEST_CASE("syntax errors give the line and column", "[config][parse]") {
  SECTION("unclosed flow sequence") {
    ParseResult r = parse("inputs:\n  - name: a\n    paths: [\"/a\"\n    poll: true\n");
    REQUIRE(r.errors.size() == 1);
    CHECK_FALSE(r.config.has_value());
    CHECK_THAT(r.errors[0].message, Catch::StartsWith("syntax error: "));
    CHECK(r.errors[0].mark.line >= 3);
    CHECK(r.errors[0].mark.column >= 1);
  }
  SECTION("tab indentation") {
    ParseResult r = parse("agent:\n  lockstep: true\n\tdata_dir: /x\n");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].message == "syntax error: illegal tab when looking for indentation");
    checkMark(r.errors[0], 3, 1);
    CHECK(r.errors[0].toString() ==
          "test.yaml:3:1: syntax error: illegal tab when looking for indentation");
  }
  SECTION("a bad mapping") {
    ParseResult r = parse("agent:\n  data_dir: /x\n  : y\n lockstep: [\n");
    REQUIRE(r.errors.size() == 1);
    CHECK_THAT(r.errors[0].message, Catch::StartsWith("syntax error: "));
    CHECK(r.errors[0].mark.line > 0);
  }
}

TEST_CASE("deeply nested input is an error, not a crash", "[config][parse]") {
  ParseResult r = parse("agent: " + std::string(100000, '[') + "\n");
  REQUIRE(r.errors.size() == 1);
  CHECK_FALSE(r.config.has_value());
  CHECK_THAT(r.errors[0].message, Catch::StartsWith("syntax error: "));
}

TEST_CASE("only true and false are booleans", "[config][parse]") {
  Config c = parseOk("agent: { lockstep: False }\n" + std::string(kMinimal));
  CHECK(c.agent.lockstep == false);
  onlyError("agent: { lockstep: yes }\n" + std::string(kMinimal),
            "'lockstep' must be true or false, not 'yes'");
}

TEST_CASE("more than one YAML document is an error", "[config][parse]") {
  ParseResult r = parse(std::string(kMinimal) + "---\nagent: {}\n");
  errorWith(r, "the config must be a single YAML document (found 2)");
}

TEST_CASE("every error in a file is reported, in file order", "[config][parse]") {
  ParseResult r = parse(R"(agent:
  log_level: loud
  chunk_bytes: 12XB
  bogus: 1
inputs:
  - name: nginx
    paths: ["/var/log/nginx/*.log"]
    poll_interval: 5x
  - name: nginx
    paths: ["/b"]
outputs:
  - name: central
    type: tcp
    adresses: ["h:1"]
    inputs: [ngnix]
  - name: local
    type: pigeon
    inputs: [nginx]
)");
  INFO(allErrors(r));
  REQUIRE(r.errors.size() == 9);
  CHECK_FALSE(r.config.has_value());
  const std::vector<std::pair<int, std::string>> expected = {
      {2, "'log_level': invalid value 'loud'"},
      {3, "'chunk_bytes': invalid size '12XB'"},
      {4, "unknown key 'bogus' in 'agent'"},
      {8, "'poll_interval': invalid duration '5x'"},
      {9, "duplicate input name 'nginx' (first defined at 6:5)"},
      {12, "missing required key 'addresses' in output 'central'"},
      {14, "unknown key 'adresses' in output 'central' (did you mean 'addresses'?)"},
      {15, "output 'central' routes from unknown input 'ngnix'"},
      {17, "unknown output type 'pigeon' (expected tcp, relp, archive, kafka or logsplice)"},
  };
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("error " << i << ": " << r.errors[i].toString());
    CHECK(r.errors[i].mark.line == expected[i].first);
    CHECK_THAT(r.errors[i].message, Catch::StartsWith(expected[i].second));
  }
}

TEST_CASE("parseConfigFile reads a file", "[config][parse]") {
  char dir_template[] = "/tmp/logsplice_config_test_XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  std::string dir = dir_template;
  std::string path = dir + "/logsplice.yaml";
  {
    std::ofstream out(path);
    out << kMinimal;
  }
  ParseResult r = parseConfigFile(path);
  INFO(allErrors(r));
  REQUIRE(r.ok());
  CHECK(r.config->source_path == path);
  CHECK(r.config->inputs.at(0).name == "nginx");

  SECTION("errors name the file") {
    {
      std::ofstream out(path);
      out << "agent: { lockstep: 3 }\n" << kMinimal;
    }
    ParseResult bad = parseConfigFile(path);
    REQUIRE(bad.errors.size() == 1);
    CHECK(bad.errors[0].toString() == path + ":1:20: 'lockstep' must be true or false, not '3'");
  }
  SECTION("a missing file is one error naming the path and the reason") {
    ParseResult missing = parseConfigFile(dir + "/nope.yaml");
    REQUIRE(missing.errors.size() == 1);
    CHECK_FALSE(missing.config.has_value());
    CHECK(missing.errors[0].file == dir + "/nope.yaml");
    CHECK(missing.errors[0].mark.line == 0);
    CHECK(missing.errors[0].toString() ==
          dir + "/nope.yaml: cannot read config file: No such file or directory");
  }
  SECTION("a directory is one error") {
    ParseResult isdir = parseConfigFile(dir);
    REQUIRE(isdir.errors.size() == 1);
    CHECK(isdir.errors[0].message == "cannot read config file: Is a directory");
  }
  SECTION("an unreadable file is one error") {
    REQUIRE(chmod(path.c_str(), 0) == 0);
    ParseResult denied = parseConfigFile(path);
    REQUIRE(chmod(path.c_str(), 0644) == 0);
    if (geteuid() != 0) {  // root reads it anyway
      REQUIRE(denied.errors.size() == 1);
      CHECK(denied.errors[0].message == "cannot read config file: Permission denied");
    }
  }
  unlink(path.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace logsplice::config
