// The event outputs as the agent builds them (makeSink with `format: syslog | json`): a
// TcpEventSink with the EventFramer and, for inputs with `multiline`, a MultilineStage, against
// a real listener on 127.0.0.1. The test plays the router (EventFeeder). Checked: syslog frames
// parse back (octet count, header, structured data with file, offset, input and fields); JSON
// objects parse; pieces of a line the router cut are marked partial; multiline events are put
// together per file, delivered only up to the end of the last acknowledged event, flushed by
// their timeout, resent from their first line after a broken connection; bytes_copied is exact.

#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "outputs/event_framer.h"
#include "outputs/multiline_stage.h"
#include "outputs/sink_factory.h"
#include "outputs/tcp_event_sink.h"
#include "outputs/tcp_sink.h"
#include "tests/support/event_feeder.h"
#include "tests/support/length_framer.h"
#include "tests/support/recording_listener.h"
#include "tests/support/recording_metric_writer.h"
#include "tests/support/tcp_test_peer.h"
#include "tests/support/test_env.h"
#include "tests/unit/outputs/format/json_checker.h"

using namespace logsplice;
using namespace logsplice::outputs;
using logsplice::outputs::format::test::JsonObject;
using logsplice::outputs::format::test::JsonReader;
using logsplice::testing::EventFeeder;
using logsplice::testing::parseFrames;
using logsplice::testing::Peer;
using logsplice::testing::RecordingListener;
using logsplice::testing::TestSocket;

namespace {

struct Fixture {
  testing::Loop loop;  // first: destroyed last
  RecordingListener listener;
  config::AgentConfig agent;
  config::OutputConfig out;
  std::vector<config::InputConfig> inputs;
  std::unique_ptr<Sink> sink;
  TcpEventSink* events = nullptr;
  EventFeeder feeder;

  explicit Fixture(config::EventFormat format) {
    agent.hostname = "web1";
    out.name = "events";
    config::TcpOutput tcp;
    tcp.format = format;
    tcp.backoff.initial = std::chrono::milliseconds(20);
    tcp.backoff.max = std::chrono::milliseconds(200);
    tcp.connect_timeout = std::chrono::milliseconds(2000);
    out.kind = tcp;
    config::InputConfig app;
    app.name = "app";
    app.fields = {{"env", "prod"}, {"team", "a b"}};
    inputs.push_back(app);
    config::InputConfig sys;
    sys.name = "sys";
    inputs.push_back(sys);
    out.inputs = {"app", "sys"};
  }
  ~Fixture() {
    if (sink) sink->close(nullptr);
    sink.reset();
    loop.runUntilIdle();
  }
  config::TcpOutput& tcp() { return std::get<config::TcpOutput>(out.kind); }
  // Lines of input `name` are put together: a line starting with a date begins an event.
  void multiline(const std::string& name, std::chrono::milliseconds timeout) {
    for (auto& in : inputs) {
      if (in.name != name) continue;
      config::MultilineConfig m;
      m.start_pattern = R"(^\d{4}-\d\d-\d\d )";
      m.timeout = timeout;
      in.multiline = m;
    }
  }
  void start(const std::string& address) {
    auto hp = sys::parseHostPort(address);
    REQUIRE(hp.ok());
    tcp().addresses = {hp.value()};
    sink = makeSink(loop.get(), out, listener, agent, inputs);
    events = dynamic_cast<TcpEventSink*>(sink.get());
    REQUIRE(events != nullptr);
    REQUIRE(sink->start().isOk());
  }
  void feed(uint64_t file_id, const std::string& input, uint64_t offset, const std::string& bytes,
            uint32_t newline = 0, bool newline_first = false) {
    feeder.feed(*sink, file_id, input, offset, bytes, newline, newline_first);
  }
  Peer acceptFrom(TestSocket& server) { return acceptConnected(loop, server, *sink); }
};

// The JSON objects in `wire` (one per line); a line that does not parse fails the test.
std::vector<JsonObject> jsonObjects(const std::string& wire) {
  std::vector<JsonObject> out;
  size_t pos = 0;
  while (pos < wire.size()) {
    size_t nl = wire.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string line = wire.substr(pos, nl + 1 - pos);
    auto obj = JsonReader(line).object();
    CAPTURE(line);
    REQUIRE(obj.has_value());
    out.push_back(*obj);
    pos = nl + 1;
  }
  return out;
}

std::string get(const JsonObject& o, const std::string& key) {
  for (const auto& [k, v] : o) {
    if (k == key) return v.kind == format::test::JsonValue::kTrue ? "true" : v.text;
  }
  return "<absent>";
}

// A syslog message cut into its parts (RFC 5424 with one SD-ELEMENT).
struct SyslogMsg {
  std::string pri_version, timestamp, host, app, procid, msgid, sd, msg;
};

SyslogMsg parseSyslog(const std::string& m) {
  SyslogMsg s;
  size_t pos = 0;
  auto token = [&] {
    size_t sp = m.find(' ', pos);
    REQUIRE(sp != std::string::npos);
    std::string t = m.substr(pos, sp - pos);
    pos = sp + 1;
    return t;
  };
  s.pri_version = token();
  s.timestamp = token();
  s.host = token();
  s.app = token();
  s.procid = token();
  s.msgid = token();
  REQUIRE(m.compare(pos, 1, "[") == 0);
  // The SD ends at the first ']' not escaped by a backslash.
  size_t end = pos;
  for (;;) {
    end = m.find(']', end);
    REQUIRE(end != std::string::npos);
    if (m[end - 1] != '\\') break;
    ++end;
  }
  s.sd = m.substr(pos, end + 1 - pos);
  if (end + 1 < m.size()) {
    REQUIRE(m[end + 1] == ' ');
    s.msg = m.substr(end + 2);
  }
  return s;
}

std::string appSd(uint64_t file_id, uint64_t offset, bool partial = false) {
  return "[logsplice@32473 file=\"" + EventFeeder::pathOf(file_id, "app") + "\" offset=\"" +
         std::to_string(offset) + "\" input=\"app\" env=\"prod\" team=\"a b\"" +
         (partial ? " partial=\"true\"" : "") + "]";
}

double metric(const Sink& sink, const std::string& family) {
  testing::RecordingMetricWriter w;
  sink.collectMetrics(w);
  auto s = w.find(family, {{"output", sink.name()}});
  REQUIRE(s.has_value());
  return s->value;
}

}  // namespace

TEST_CASE("makeSink: raw tcp stays the zero-copy TcpSink, syslog and json are event sinks") {
  testing::Loop loop;
  RecordingListener listener;
  config::AgentConfig agent;
  config::OutputConfig out;
  out.name = "o";
  config::TcpOutput tcp;
  out.kind = tcp;
  auto raw = makeSink(loop.get(), out, listener, agent, {});
  CHECK(dynamic_cast<TcpSink*>(raw.get()) != nullptr);
  for (auto f : {config::EventFormat::kSyslog, config::EventFormat::kJson}) {
    tcp.format = f;
    out.kind = tcp;
    auto ev = makeSink(loop.get(), out, listener, agent, {});
    CHECK(dynamic_cast<TcpEventSink*>(ev.get()) != nullptr);
    ev->close(nullptr);
  }
  raw->close(nullptr);
  loop.runUntilIdle();
}

TEST_CASE("Event output, syslog: octet-counted RFC 5424 frames with host, app and file data") {
  Fixture fx(config::EventFormat::kSyslog);
  TestSocket server;
  server.listen();
  fx.start(server.address());
  Peer peer = fx.acceptFrom(server);
  std::string a = "first line\nsecond ] \"quoted\"\n\xff bad utf8 in msg\n";
  std::string b = "kernel: hello\n";
  fx.feed(1, "app", 100, a);
  fx.feed(2, "sys", 0, b);
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return parseFrames(peer.data).size() >= 4;
  }));
  size_t rest = 1;
  std::vector<std::string> frames = parseFrames(peer.data, &rest);
  CHECK(rest == 0);  // every length prefix is the exact byte count of its message
  REQUIRE(frames.size() == 4);
  const std::vector<std::string> msgs = {"first line", "second ] \"quoted\"",
                                         "\xff bad utf8 in msg", "kernel: hello"};
  const std::vector<uint64_t> offsets = {100, 111, 129, 0};
  for (size_t i = 0; i < frames.size(); ++i) {
    CAPTURE(i, frames[i]);
    SyslogMsg m = parseSyslog(frames[i]);
    CHECK(m.pri_version == "<14>1");
    CHECK(m.timestamp.size() == 27);
    CHECK(m.timestamp.back() == 'Z');
    CHECK(m.host == "web1");
    CHECK(m.procid == "-");
    CHECK(m.msgid == "-");
    CHECK(m.msg == msgs[i]);  // MSG is the line's bytes as they are
    if (i < 3) {
      CHECK(m.app == "app");
      CHECK(m.sd == appSd(1, offsets[i]));
    } else {
      CHECK(m.app == "sys");
      CHECK(m.sd == "[logsplice@32473 file=\"" + EventFeeder::pathOf(2, "sys") +
                        "\" offset=\"0\" input=\"sys\"]");
    }
  }
  REQUIRE(fx.loop.waitFor([&] {
    return fx.listener.deliveredOf(1) == 100 + a.size() && fx.listener.deliveredOf(2) == b.size();
  }));
  CHECK(fx.sink->stats().bytes_copied == fx.feeder.fed);
  CHECK(fx.sink->stats().bytes_sent == peer.data.size());
  CHECK(metric(*fx.sink, "logsplice_events_sent_total") == 4);
  CHECK(metric(*fx.sink, "logsplice_bytes_copied_total") == static_cast<double>(fx.feeder.fed));
  // The MSG is never changed: nothing was replaced (the path and values are valid).
  CHECK(metric(*fx.sink, "logsplice_event_invalid_utf8_total") == 0);
}

TEST_CASE("Event output, json: one object per line with host, input, file, offset and fields") {
  Fixture fx(config::EventFormat::kJson);
  TestSocket server;
  server.listen();
  fx.start(server.address());
  Peer peer = fx.acceptFrom(server);
  std::string a = "plain\nwith \"quotes\" and \\ and \t tab\nbad \xc3\x28 utf8\n";
  fx.feed(1, "app", 0, a);
  fx.feed(2, "sys", 7, "sys line\n");
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return std::count(peer.data.begin(), peer.data.end(), '\n') >= 4;
  }));
  std::vector<JsonObject> objs = jsonObjects(peer.data);
  REQUIRE(objs.size() == 4);
  const std::vector<std::string> msgs = {"plain", "with \"quotes\" and \\ and \t tab",
                                         "bad \xef\xbf\xbd( utf8", "sys line"};
  const std::vector<std::string> offsets = {"0", "6", "36", "7"};
  for (size_t i = 0; i < objs.size(); ++i) {
    CAPTURE(i);
    const JsonObject& o = objs[i];
    CHECK(get(o, "host") == "web1");
    CHECK(get(o, "message") == msgs[i]);
    CHECK(get(o, "offset") == offsets[i]);
    CHECK(get(o, "partial") == "<absent>");
    CHECK(get(o, "timestamp").size() == 27);
    if (i < 3) {
      CHECK(get(o, "input") == "app");
      CHECK(get(o, "file") == EventFeeder::pathOf(1, "app"));
      CHECK(get(o, "env") == "prod");
      CHECK(get(o, "team") == "a b");
    } else {
      CHECK(get(o, "input") == "sys");
      CHECK(get(o, "file") == EventFeeder::pathOf(2, "sys"));
      CHECK(get(o, "env") == "<absent>");
    }
  }
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(2) == 7 + 9; }));
  CHECK(fx.listener.deliveredOf(1) == a.size());
  CHECK(fx.sink->stats().bytes_copied == fx.feeder.fed);
  CHECK(metric(*fx.sink, "logsplice_events_sent_total") == 4);
  CHECK(metric(*fx.sink, "logsplice_event_invalid_utf8_total") == 1);
}

TEST_CASE("Event output: pieces of a line the router cut are partial, in both formats") {
  auto format = GENERATE(config::EventFormat::kJson, config::EventFormat::kSyslog);
  Fixture fx(format);
  TestSocket server;
  server.listen();
  fx.start(server.address());
  Peer peer = fx.acceptFrom(server);
  // File 1: a 25-byte line cut at 10 and 20 (max_line_bytes 10), then a whole line.
  fx.feed(1, "app", 0, "0123456789", /*newline=*/1);
  fx.feed(2, "app", 0, "other\n");  // another file between the pieces
  fx.feed(1, "app", 10, "abcdefghij", /*newline=*/1);
  fx.feed(1, "app", 20, "tail\nwhole\n");
  // File 3: the '\n' of the break owed, written before the next bytes.
  fx.feed(3, "app", 0, "xyz");
  fx.feed(3, "app", 3, "pq\nnext\n", 0, /*newline_first=*/true);
  struct Want {
    uint64_t file, offset;
    std::string msg;
    bool partial;
  };
  const std::vector<Want> want = {{1, 0, "0123456789", true},  {2, 0, "other", false},
                                  {1, 10, "abcdefghij", true}, {1, 20, "tail", true},
                                  {1, 25, "whole", false},     {3, 0, "xyz", true},
                                  {3, 3, "pq", true},          {3, 6, "next", false}};
  std::vector<std::string> msgs;
  std::vector<bool> partial;
  std::vector<std::string> offsets;
  if (format == config::EventFormat::kJson) {
    REQUIRE(fx.loop.waitFor([&] {
      peer.read();
      return std::count(peer.data.begin(), peer.data.end(), '\n') >= 8;
    }));
    for (const JsonObject& o : jsonObjects(peer.data)) {
      msgs.push_back(get(o, "message"));
      partial.push_back(get(o, "partial") == "true");
      offsets.push_back(get(o, "offset"));
      CHECK((get(o, "partial") == "true" || get(o, "partial") == "<absent>"));
    }
  } else {
    REQUIRE(fx.loop.waitFor([&] {
      peer.read();
      return parseFrames(peer.data).size() >= 8;
    }));
    for (const std::string& f : parseFrames(peer.data)) {
      SyslogMsg m = parseSyslog(f);
      msgs.push_back(m.msg);
      bool p = m.sd.find(" partial=\"true\"]") != std::string::npos;
      partial.push_back(p);
      size_t at = m.sd.find("offset=\"") + 8;
      offsets.push_back(m.sd.substr(at, m.sd.find('"', at) - at));
    }
  }
  REQUIRE(msgs.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(msgs[i] == want[i].msg);
    CHECK(partial[i] == want[i].partial);
    CHECK(offsets[i] == std::to_string(want[i].offset));
  }
  // Each piece is delivered at its break (the router's line start).
  REQUIRE(fx.loop.waitFor(
      [&] { return fx.listener.deliveredOf(1) == 31 && fx.listener.deliveredOf(3) == 11; }));
  CHECK(fx.sink->stats().bytes_copied == fx.feeder.fed);
}

TEST_CASE("Event output, multiline: a stack trace is one event; the pending one is not delivered") {
  Fixture fx(config::EventFormat::kJson);
  fx.multiline("app", std::chrono::milliseconds(60000));  // no flush by time in this test
  TestSocket server;
  server.listen();
  fx.start(server.address());
  Peer peer = fx.acceptFrom(server);
  std::string trace =
      "2026-11-30 12:00:00 ERROR request failed\n"
      "java.lang.IllegalStateException: boom\n"
      "\tat com.example.Foo.bar(Foo.java:42)\n"
      "\tat com.example.Main.main(Main.java:7)\n"
      "Caused by: java.io.IOException: disk\n"
      "\t... 2 more\n";
  std::string next = "2026-11-30 12:00:01 INFO recovered\n";
  std::string more = "\tcontinuation of the pending event\n";
  // In two segments, the first ending mid-line.
  fx.feed(1, "app", 0, trace.substr(0, 50));
  fx.feed(1, "app", 50, trace.substr(50) + next);
  fx.feed(2, "sys", 0, "not multiline\n");
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return std::count(peer.data.begin(), peer.data.end(), '\n') >= 2;
  }));
  std::vector<JsonObject> objs = jsonObjects(peer.data);
  REQUIRE(objs.size() == 2);
  CHECK(get(objs[0], "message") == trace.substr(0, trace.size() - 1));
  CHECK(get(objs[0], "offset") == "0");
  CHECK(get(objs[0], "partial") == "<absent>");
  CHECK(get(objs[1], "message") == "not multiline");  // its input has no multiline
  // The second event is pending: file 1 is delivered up to the end of the trace, not further.
  REQUIRE(fx.loop.waitFor([&] {
    return fx.listener.deliveredOf(1) == trace.size() && fx.listener.deliveredOf(2) == 14;
  }));
  fx.feed(1, "app", trace.size() + next.size(), more);
  fx.loop.runFor(200);
  CHECK(fx.events->multilinePending());
  CHECK(fx.listener.deliveredOf(1) == trace.size());
  for (const auto& d : fx.listener.deliveries) {
    if (d.file_id == 1) CHECK(d.offset_end <= trace.size());
  }
  peer.read();
  CHECK(jsonObjects(peer.data).size() == 2);
  // Every byte was read out of the pipe (the pending lines too).
  CHECK(fx.sink->stats().bytes_copied == fx.feeder.fed);
  CHECK(fx.sink->pendingBytes() == 0);  // a pending event does not hold a shutdown back
  // The next start line sends it.
  uint64_t at = trace.size() + next.size() + more.size();
  fx.feed(1, "app", at, "2026-11-30 12:00:02 INFO third\n");
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return std::count(peer.data.begin(), peer.data.end(), '\n') >= 3;
  }));
  objs = jsonObjects(peer.data);
  REQUIRE(objs.size() == 3);
  CHECK(get(objs[2], "message") == next + more.substr(0, more.size() - 1));
  CHECK(get(objs[2], "offset") == std::to_string(trace.size()));
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(1) == at; }));
  CHECK(metric(*fx.sink, "logsplice_events_sent_total") == 3);
}

TEST_CASE("Event output, multiline: the timeout sends a pending event (syslog)") {
  Fixture fx(config::EventFormat::kSyslog);
  fx.multiline("app", std::chrono::milliseconds(150));
  TestSocket server;
  server.listen();
  fx.start(server.address());
  Peer peer = fx.acceptFrom(server);
  std::string ev = "2026-11-30 12:00:00 WARN slow\n  detail one\n  detail two\n";
  fx.feed(1, "app", 0, ev);
  REQUIRE(fx.events->multilinePending());
  CHECK(fx.listener.deliveredOf(1) == 0);
  REQUIRE(fx.loop.waitFor(
      [&] {
        peer.read();
        return parseFrames(peer.data).size() >= 1;
      },
      3000));
  std::vector<std::string> frames = parseFrames(peer.data);
  REQUIRE(frames.size() == 1);
  SyslogMsg m = parseSyslog(frames[0]);
  CHECK(m.msg == ev.substr(0, ev.size() - 1));  // octet counting carries the newlines
  CHECK(m.sd == appSd(1, 0));
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(1) == ev.size(); }));
  CHECK_FALSE(fx.events->multilinePending());
  CHECK(fx.sink->stats().bytes_copied == fx.feeder.fed);
}

TEST_CASE("Event output, multiline: interleaved files keep separate pending events") {
  Fixture fx(config::EventFormat::kJson);
  fx.multiline("app", std::chrono::milliseconds(60000));
  TestSocket server;
  server.listen();
  fx.start(server.address());
  Peer peer = fx.acceptFrom(server);
  std::string a1 = "2026-11-30 10:00:00 A first\n", a2 = "  a cont 1\n", a3 = "  a cont 2\n";
  std::string b1 = "2026-11-30 10:00:01 B first\n", b2 = "  b cont\n";
  std::string b3 = "2026-11-30 10:00:02 B second\n";
  std::string a4 = "2026-11-30 10:00:03 A second\n";
  fx.feed(1, "app", 0, a1 + a2);
  fx.feed(2, "app", 0, b1);
  fx.feed(1, "app", a1.size() + a2.size(), a3);
  fx.feed(2, "app", b1.size(), b2 + b3);  // ends file 2's first event only
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return std::count(peer.data.begin(), peer.data.end(), '\n') >= 1;
  }));
  fx.loop.runFor(50);
  peer.read();
  std::vector<JsonObject> objs = jsonObjects(peer.data);
  REQUIRE(objs.size() == 1);
  CHECK(get(objs[0], "message") == b1 + b2.substr(0, b2.size() - 1));
  CHECK(get(objs[0], "file") == EventFeeder::pathOf(2, "app"));
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(2) == b1.size() + b2.size(); }));
  CHECK(fx.listener.deliveredOf(1) == 0);
  fx.feed(1, "app", a1.size() + a2.size() + a3.size(), a4);
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return std::count(peer.data.begin(), peer.data.end(), '\n') >= 2;
  }));
  objs = jsonObjects(peer.data);
  REQUIRE(objs.size() == 2);
  CHECK(get(objs[1], "message") == a1 + a2 + a3.substr(0, a3.size() - 1));
  CHECK(get(objs[1], "offset") == "0");
  REQUIRE(fx.loop.waitFor(
      [&] { return fx.listener.deliveredOf(1) == a1.size() + a2.size() + a3.size(); }));
  CHECK(fx.sink->stats().bytes_copied == fx.feeder.fed);
}

TEST_CASE("Event output, multiline: a broken connection resends from the pending event's start") {
  Fixture fx(config::EventFormat::kJson);
  fx.multiline("app", std::chrono::milliseconds(60000));
  TestSocket server;
  server.listen();
  std::vector<SinkListener::Rewind> rewound;
  fx.listener.on_rewind = [&](const std::vector<SinkListener::Rewind>& r) { rewound = r; };
  fx.start(server.address());
  Peer first = fx.acceptFrom(server);
  std::string e1 = "2026-11-30 10:00:00 one\n  one more\n";
  std::string e2 = "2026-11-30 10:00:01 two\n  two more\n";
  fx.feed(1, "app", 0, e1 + e2);
  fx.feed(2, "sys", 0, "plain\n");
  REQUIRE(fx.loop.waitFor(
      [&] { return fx.listener.deliveredOf(1) == e1.size() && fx.listener.deliveredOf(2) == 6; }));
  REQUIRE(fx.events->multilinePending());
  // The collector goes away mid-event: the sink reconnects and asks for file 1 from e2's start.
  REQUIRE(::shutdown(first.fd.get(), SHUT_WR) == 0);
  Peer second = fx.acceptFrom(server);
  // File 1 from e2's first line; file 2 (all delivered) from its end, if named at all.
  std::map<uint64_t, SinkListener::Rewind> by_file;
  for (const auto& r : rewound) by_file.emplace(r.file_id, r);
  REQUIRE(by_file.count(1) == 1);
  CHECK(by_file.at(1).offset == e1.size());
  CHECK_FALSE(by_file.at(1).newline_owed);
  if (by_file.count(2)) CHECK(by_file.at(2).offset == 6);
  CHECK_FALSE(fx.events->multilinePending());  // the assembler started over
  first.read();
  CHECK(jsonObjects(first.data).size() == 2);  // e1 and the plain line; e2 never went out
  // The router's resend, then the next start line.
  std::string e3 = "2026-11-30 10:00:02 three\n";
  fx.feed(1, "app", e1.size(), e2 + e3);
  REQUIRE(fx.loop.waitFor([&] {
    second.read();
    return std::count(second.data.begin(), second.data.end(), '\n') >= 1;
  }));
  std::vector<JsonObject> objs = jsonObjects(second.data);
  REQUIRE(objs.size() == 1);
  CHECK(get(objs[0], "message") == e2.substr(0, e2.size() - 1));  // whole, from its first line
  CHECK(get(objs[0], "offset") == std::to_string(e1.size()));
  REQUIRE(fx.loop.waitFor([&] { return fx.listener.deliveredOf(1) == e1.size() + e2.size(); }));
}

TEST_CASE("Event output, multiline: unacknowledged events rewind to the first one's first line") {
  Fixture fx(config::EventFormat::kJson);
  fx.multiline("app", std::chrono::milliseconds(60000));
  TestSocket server(/*rcvbuf=*/4096);  // a small window: most events stay unacknowledged
  server.listen();
  std::vector<SinkListener::Rewind> rewound;
  fx.listener.on_rewind = [&](const std::vector<SinkListener::Rewind>& r) { rewound = r; };
  fx.start(server.address());
  Peer first = fx.acceptFrom(server);
  std::string content;
  std::vector<uint64_t> starts;
  for (int i = 0; i < 3000; ++i) {
    starts.push_back(content.size());
    content += "2026-11-30 10:00:00 event " + std::to_string(i) + "\n  detail line of event\n";
  }
  size_t fed = 0;
  while (fed < content.size()) {  // as much as the pipe takes, in line-aligned pieces
    size_t n = std::min<size_t>(8192, content.size() - fed);
    size_t cut = content.rfind('\n', fed + n - 1);
    n = cut + 1 - fed;
    if (fx.sink->room() < n) break;
    fx.feed(1, "app", fed, content.substr(fed, n));
    fed += n;
  }
  fx.loop.runFor(300);  // the peer does not read: its window closes
  uint64_t acked = fx.listener.deliveredOf(1);
  CHECK(acked < fed);
  CHECK(std::count(starts.begin(), starts.end(), acked) == 1);  // whole events only
  REQUIRE(::shutdown(first.fd.get(), SHUT_WR) == 0);
  Peer second = fx.acceptFrom(server);
  REQUIRE(rewound.size() == 1);
  CAPTURE(acked, rewound[0].offset);
  CHECK(rewound[0].offset >= acked);
  CHECK(std::count(starts.begin(), starts.end(), rewound[0].offset) == 1);
  // No gap: every event before the rewind point reached the first connection whole.
  first.read();
  size_t whole = 0;
  for (size_t i = 0; i < starts.size() && starts[i] < rewound[0].offset; ++i) ++whole;
  std::vector<JsonObject> got;
  {
    size_t end = first.data.rfind('\n');
    got = jsonObjects(end == std::string::npos ? "" : first.data.substr(0, end + 1));
  }
  REQUIRE(got.size() >= whole);
  for (size_t i = 0; i < whole; ++i) {
    CHECK(get(got[i], "offset") == std::to_string(starts[i]));
  }
}

TEST_CASE(
    "Event output, multiline: lines longer than the read buffer join whole, delivered at line "
    "ends") {
  testing::Loop loop;
  RecordingListener listener;
  config::AgentConfig agent;
  agent.hostname = "h";
  config::TcpOutput tcp;
  tcp.format = config::EventFormat::kJson;
  tcp.backoff.initial = std::chrono::milliseconds(20);
  config::InputConfig app;
  app.name = "app";
  config::MultilineConfig m;
  m.start_pattern = "^START";
  m.timeout = std::chrono::milliseconds(60000);
  app.multiline = m;
  TestSocket server;
  server.listen();
  auto hp = sys::parseHostPort(server.address());
  REQUIRE(hp.ok());
  tcp.addresses = {hp.value()};
  EventSink::Limits limits;
  limits.read_buffer_bytes = 1024;
  auto sink = std::make_unique<TcpEventSink>(
      loop.get(), "events", tcp, listener, 512 * 1024,
      std::make_unique<EventFramer>(agent, tcp, std::vector<config::InputConfig>{app}), limits);
  auto stage = MultilineStage::create({app});
  REQUIRE(stage.ok());
  REQUIRE(stage.value() != nullptr);
  REQUIRE(sink->setMultiline(loop.get(), std::move(stage.value())).isOk());
  REQUIRE(sink->start().isOk());
  Peer peer;
  REQUIRE(loop.waitFor([&] {
    if (!peer.fd.valid()) peer.fd = server.accept();
    return peer.fd.valid() && sink->state() == SinkState::kConnected;
  }));
  EventFeeder feeder;
  std::string big(3000, 'x');
  std::string e1 = "START one\n" + big + "\n  tail\n";
  std::string e2 = "START two " + big + "\n";
  std::string e3 = "START three\n";
  feeder.feed(*sink, 1, "app", 0, e1 + e2 + e3);
  REQUIRE(loop.waitFor([&] {
    peer.read();
    return std::count(peer.data.begin(), peer.data.end(), '\n') >= 2;
  }));
  std::vector<JsonObject> objs = jsonObjects(peer.data);
  REQUIRE(objs.size() == 2);
  CHECK(get(objs[0], "message") == e1.substr(0, e1.size() - 1));
  CHECK(get(objs[1], "message") == e2.substr(0, e2.size() - 1));
  CHECK(get(objs[0], "partial") == "<absent>");
  CHECK(get(objs[1], "partial") == "<absent>");
  CHECK(get(objs[1], "offset") == std::to_string(e1.size()));
  REQUIRE(loop.waitFor([&] { return listener.deliveredOf(1) == e1.size() + e2.size(); }));
  for (const auto& d : listener.deliveries) {
    CAPTURE(d.offset_end);
    CHECK((d.offset_end == e1.size() || d.offset_end == e1.size() + e2.size()));
  }
  CHECK(sink->stats().bytes_copied == feeder.fed);
  sink->close(nullptr);
  sink.reset();
  loop.runUntilIdle();
}
