// The event-sink path proven with the smallest framing: a TcpEventSink whose framer writes each
// line as "<length> <bytes>" (RFC 6587 octet counting), against a real listener on 127.0.0.1.
// The test plays the router: it writes each segment's bytes into the sink's pipe and calls
// appended(). Checked: lines of interleaved files arrive framed and in order; delivery is
// reported per file and only for whole acknowledged events; a broken connection rewinds each
// file to the first line of its first unacknowledged event; bytes_copied counts exactly what was
// read out of the pipe; a stalled peer does not grow memory; added '\n's end lines.

#include "outputs/tcp_event_sink.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/support/length_framer.h"
#include "tests/support/recording_listener.h"
#include "tests/support/tcp_test_peer.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::outputs;
using logsplice::testing::LengthFramer;
using logsplice::testing::parseFrames;
using logsplice::testing::Peer;
using logsplice::testing::RecordingListener;
using logsplice::testing::TestSocket;

namespace {

// `count` lines "f<file>-<n> xxx...\n" of `width` bytes, numbered from `first`.
std::string lines(int file, int first, int count, size_t width = 100) {
  std::string out;
  for (int i = first; i < first + count; ++i) {
    std::string line = "f" + std::to_string(file) + "-" + std::to_string(i) + " ";
    line.resize(width - 1, static_cast<char>('a' + i % 26));
    out += line + '\n';
  }
  return out;
}

// The lines of `text` without their '\n'.
std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// Offsets where a line starts (0 and after each '\n'), and where one ends (after each '\n').
std::set<uint64_t> lineStarts(const std::string& text) {
  std::set<uint64_t> out{0};
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') out.insert(i + 1);
  }
  return out;
}

struct Fixture {
  testing::Loop loop;  // first: destroyed last
  RecordingListener listener;
  config::TcpOutput cfg;
  std::vector<LengthFramer::Seen> seen;
  std::unique_ptr<TcpEventSink> sink;
  std::map<uint64_t, std::shared_ptr<const SourceInfo>> sources;
  uint64_t fed = 0;  // stream bytes put into the pipe

  Fixture() {
    cfg.backoff.initial = std::chrono::milliseconds(20);
    cfg.backoff.max = std::chrono::milliseconds(200);
    cfg.connect_timeout = std::chrono::milliseconds(2000);
  }
  ~Fixture() {
    if (sink) sink->close(nullptr);
    sink.reset();
    loop.runUntilIdle();
  }
  void start(const std::string& address, EventSink::Limits limits = {},
             size_t pipe_bytes = 512 * 1024) {
    auto hp = sys::parseHostPort(address);
    REQUIRE(hp.ok());
    cfg.addresses = {hp.value()};
    auto framer = std::make_unique<LengthFramer>();
    framer->seen = &seen;
    sink = std::make_unique<TcpEventSink>(loop.get(), "events", cfg, listener, pipe_bytes,
                                          std::move(framer), limits);
    REQUIRE(sink->start().isOk());
  }
  // One segment: its bytes (with an owed '\n' before and an added '\n' after, when asked) into
  // the pipe, then appended(), as the router does.
  void feed(uint64_t file_id, uint64_t offset, const std::string& bytes, uint32_t newline = 0,
            bool newline_first = false) {
    std::string stream = (newline_first ? "\n" : "") + bytes + (newline ? "\n" : "");
    size_t done = 0;
    while (done < stream.size()) {
      ssize_t n = ::write(sink->pipe().writeFd(), stream.data() + done, stream.size() - done);
      REQUIRE(n > 0);
      done += static_cast<size_t>(n);
    }
    fed += stream.size();
    auto& src = sources[file_id];
    if (!src) {
      std::string name = "file" + std::to_string(file_id) + ".log";
      src = std::make_shared<const SourceInfo>(SourceInfo{"in" + std::to_string(file_id),
                                                          "/var/log/" + name, name});
    }
    Segment seg;
    seg.file_id = file_id;
    seg.offset = offset;
    seg.length = bytes.size();
    seg.newline = newline;
    seg.newline_first = newline_first;
    seg.ends_line = newline || (!bytes.empty() && bytes.back() == '\n');
    seg.source = src;
    sink->appended(seg);
  }
  // As much of `bytes` as the pipe takes now, registered as one segment; returns the count.
  size_t feedSome(uint64_t file_id, uint64_t offset, const std::string& bytes) {
    ssize_t n = ::write(sink->pipe().writeFd(), bytes.data(), bytes.size());
    if (n <= 0) return 0;
    fed += static_cast<uint64_t>(n);
    Segment seg;
    seg.file_id = file_id;
    seg.offset = offset;
    seg.length = static_cast<uint64_t>(n);
    seg.ends_line = bytes[static_cast<size_t>(n) - 1] == '\n';
    seg.source = std::make_shared<const SourceInfo>(SourceInfo{"in", "/var/log/x", "x"});
    sink->appended(seg);
    return static_cast<size_t>(n);
  }
  Peer acceptFrom(TestSocket& server) { return acceptConnected(loop, server, *sink); }
};

}  // namespace

TEST_CASE("TcpEventSink frames the lines of interleaved files in order, delivering per file") {
  Fixture fx;
  TestSocket server;
  server.listen();
  fx.start(server.address());
  Peer peer = fx.acceptFrom(server);
  uint64_t copies = sys::CopyCounter::total();

  std::string a = lines(1, 0, 30), b = lines(2, 0, 20), c = lines(1, 30, 10);
  fx.feed(1, 0, a.substr(0, 1234));  // a segment that ends mid-line...
  fx.feed(1, 1234, a.substr(1234));  // ...continued by the next of the same file
  fx.feed(2, 500, b);
  fx.feed(1, a.size(), c);
  std::vector<std::string> want = split(a);
  for (const auto& l : split(b)) want.push_back(l);
  for (const auto& l : split(c)) want.push_back(l);

  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return parseFrames(peer.data).size() >= want.size();
  }));
  size_t rest = 1;
  CHECK(parseFrames(peer.data, &rest) == want);
  CHECK(rest == 0);
  REQUIRE(fx.loop.waitFor([&] {
    return fx.listener.deliveredOf(1) == a.size() + c.size() &&
           fx.listener.deliveredOf(2) == 500 + b.size();
  }));
  CHECK(fx.sink->pendingBytes() == 0);
  CHECK(fx.sink->eventsInFlight() == 0);
  // Every delivery is the end of a whole line of its file.
  std::set<uint64_t> ends1 = lineStarts(a + c), ends2;
  for (uint64_t e : lineStarts(b)) ends2.insert(500 + e);
  for (const auto& d : fx.listener.deliveries) {
    CAPTURE(d.file_id, d.offset_end);
    CHECK((d.file_id == 1 ? ends1 : ends2).count(d.offset_end) == 1);
  }
  // What the framer was handed: file, offset and source of every line.
  REQUIRE(fx.seen.size() == want.size());
  CHECK(fx.seen[0].file_id == 1);
  CHECK(fx.seen[0].offset == 0);
  CHECK(fx.seen[0].input == "in1");
  CHECK(fx.seen[12].offset == 1200);  // the line the segment boundary cut is one line
  CHECK(fx.seen[12].bytes == want[12]);
  CHECK(fx.seen[30].file_id == 2);
  CHECK(fx.seen[30].offset == 500);
  CHECK(fx.seen[30].input == "in2");
  CHECK(fx.seen[50].offset == a.size());
  for (const auto& s : fx.seen) CHECK_FALSE(s.partial);
  // Every byte was read out of the pipe, and counted as copied exactly once.
  CHECK(fx.sink->stats().bytes_copied == fx.fed);
  CHECK(sys::CopyCounter::total() - copies == fx.fed);
  CHECK(fx.sink->stats().bytes_sent == peer.data.size());
}

TEST_CASE("TcpEventSink delivers only acknowledged whole events and resends from line starts") {
  Fixture fx;
  TestSocket server(/*rcvbuf=*/4096);  // a small window: most bytes stay unacknowledged
  server.listen();
  std::vector<SinkListener::Rewind> rewound;
  fx.listener.on_rewind = [&](const std::vector<SinkListener::Rewind>& r) { rewound = r; };
  fx.start(server.address());
  Peer first = fx.acceptFrom(server);
  // Two files, interleaved in runs of whole lines; file 1's runs end mid-line inside a run.
  std::map<uint64_t, std::string> content;
  for (int round = 0; round < 15; ++round) {
    for (uint64_t file = 1; file <= 2; ++file) {
      std::string run = lines(static_cast<int>(file), round * 100, 100);  // 10 KB
      std::string& c = content[file];
      if (file == 1) {
        fx.feed(file, c.size(), run.substr(0, 5050));
        fx.feed(file, c.size() + 5050, run.substr(5050));
      } else {
        fx.feed(file, c.size(), run);
      }
      c += run;
    }
  }
  // The peer does not read: its window closes, the rest waits in our queues and the pipe.
  fx.loop.runFor(400);
  std::map<uint64_t, uint64_t> acked;
  for (uint64_t file = 1; file <= 2; ++file) {
    acked[file] = fx.listener.deliveredOf(file);
    CAPTURE(file, acked[file]);
    CHECK(acked[file] < content[file].size());
    CHECK(lineStarts(content[file]).count(acked[file]) == 1);  // whole events only
  }
  CHECK(fx.sink->stats().bytes_copied == fx.fed - fx.sink->inPipe());

  // The collector closes its side: the sink reconnects and asks for a resend of each file.
  REQUIRE(::shutdown(first.fd.get(), SHUT_WR) == 0);
  Peer second = fx.acceptFrom(server);
  REQUIRE(rewound.size() == 2);
  CHECK(fx.sink->stats().disconnects == 1);
  CHECK(fx.sink->stats().connects == 2);
  REQUIRE(fx.loop.waitFor([&] {
    first.read();
    return first.eof;
  }));
  size_t first_rest = 0;
  std::vector<std::string> first_frames = parseFrames(first.data, &first_rest);
  std::map<uint64_t, std::vector<std::string>> got;  // per file: lines received whole
  for (const auto& f : first_frames) got[f[1] == '1' ? 1 : 2].push_back(f);
  for (const SinkListener::Rewind& r : rewound) {
    const std::string& c = content[r.file_id];
    CAPTURE(r.file_id, r.offset);
    CHECK_FALSE(r.newline_owed);
    CHECK(lineStarts(c).count(r.offset) == 1);  // never a fragment
    CHECK(r.offset >= acked[r.file_id]);
    CHECK(r.offset < c.size());
    // No gap: every line before the rewind point reached the first connection whole.
    std::vector<std::string> before = split(c.substr(0, r.offset));
    REQUIRE(got[r.file_id].size() >= before.size());
    CHECK(std::vector<std::string>(got[r.file_id].begin(),
                                   got[r.file_id].begin() + before.size()) == before);
    fx.feed(r.file_id, r.offset, c.substr(r.offset));  // the router's resend
  }
  std::vector<std::string> want;
  for (const SinkListener::Rewind& r : rewound) {
    for (const auto& l : split(content[r.file_id].substr(r.offset))) want.push_back(l);
  }
  REQUIRE(fx.loop.waitFor(
      [&] {
        second.read();
        return parseFrames(second.data).size() >= want.size();
      },
      10000));
  size_t rest = 1;
  CHECK(parseFrames(second.data, &rest) == want);
  CHECK(rest == 0);
  REQUIRE(fx.loop.waitFor([&] {
    return fx.listener.deliveredOf(1) == content[1].size() &&
           fx.listener.deliveredOf(2) == content[2].size();
  }));
}

TEST_CASE("TcpEventSink: a stalled peer does not grow its memory") {
  Fixture fx;
  TestSocket server(/*rcvbuf=*/4096);
  server.listen();
  fx.start(server.address());
  Peer peer = fx.acceptFrom(server);  // accepted, never read
  std::string content = lines(1, 0, 400000);  // 40 MB: far more than the sink may hold
  uint64_t offset = 0;
  int idle_rounds = 0;
  size_t peak = 0;
  while (offset < content.size() && idle_rounds < 10) {
    bool fed_any = false;
    while (fx.sink->room() >= 10000) {
      size_t n = fx.feedSome(1, offset, content.substr(offset, 10000));
      if (n == 0) break;  // the pipe is full in slots before bytes (docs/design.md K3)
      offset += n;
      fed_any = true;
    }
    idle_rounds = fed_any ? 0 : idle_rounds + 1;
    fx.loop.runFor(30);
    peak = std::max(peak, fx.sink->memoryBytes());
  }
  CAPTURE(offset, peak, fx.sink->memoryLimit());
  CHECK(idle_rounds == 10);              // the sink stopped taking bytes: the file holds the rest
  CHECK(offset < content.size());
  CHECK(peak <= fx.sink->memoryLimit());
  CHECK(fx.sink->memoryLimit() <= 4u * 1024 * 1024);  // a few MiB whatever the backlog
  CHECK(fx.sink->eventsInFlight() <= fx.sink->limits().max_events_in_flight);
  CHECK(fx.sink->stats().bytes_copied == fx.fed - fx.sink->inPipe());
  CHECK(fx.listener.deliveredOf(1) < offset);
}

TEST_CASE("TcpEventSink: newlines the router added end lines") {
  Fixture fx;
  TestSocket server;
  server.listen();
  fx.start(server.address());
  Peer peer = fx.acceptFrom(server);
  fx.feed(1, 0, "0123456789", /*newline=*/1);  // a long line split at 10
  fx.feed(1, 10, "abc\n");
  fx.feed(2, 0, "xyz");                              // a piece whose break '\n' is owed...
  fx.feed(2, 3, "pq\n", 0, /*newline_first=*/true);  // ...and written before the next bytes
  std::vector<std::string> want = {"0123456789", "abc", "xyz", "pq"};
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return parseFrames(peer.data).size() >= want.size();
  }));
  CHECK(parseFrames(peer.data) == want);
  REQUIRE(fx.loop.waitFor(
      [&] { return fx.listener.deliveredOf(1) == 14 && fx.listener.deliveredOf(2) == 6; }));
  REQUIRE(fx.seen.size() == 4);
  CHECK(fx.seen[1].offset == 10);
  CHECK(fx.seen[2].offset == 0);
  CHECK(fx.seen[3].offset == 3);
  CHECK(fx.sink->pendingBytes() == 0);
  CHECK(fx.sink->stats().bytes_copied == fx.fed);
}

TEST_CASE("TcpEventSink frames a line longer than its buffer in pieces, delivered whole") {
  Fixture fx;
  TestSocket server;
  server.listen();
  EventSink::Limits limits;
  limits.read_buffer_bytes = 1024;
  bool tight = GENERATE(false, true);
  CAPTURE(tight);
  if (tight) {  // one event in flight at a time, nothing framed ahead
    limits.max_unwritten_bytes = 1;
    limits.max_events_in_flight = 1;
  }
  fx.start(server.address(), limits);
  Peer peer = fx.acceptFrom(server);
  std::string longline(5000, 'L');
  fx.feed(1, 0, "short\n" + longline + "\nafter\n");
  REQUIRE(fx.loop.waitFor([&] {
    peer.read();
    return fx.listener.deliveredOf(1) == 6 + 5001 + 6;
  }));
  CHECK(fx.sink->stats().bytes_copied == fx.fed);
  std::vector<std::string> frames = parseFrames(peer.data);
  REQUIRE(frames.size() >= 4);
  CHECK(frames.front() == "short");
  CHECK(frames.back() == "after");
  std::string joined;
  for (size_t i = 1; i + 1 < frames.size(); ++i) joined += frames[i];
  CHECK(joined == longline);
  // Pieces are flagged partial, all but the last; their offsets follow each other.
  uint64_t next = 6;
  for (size_t i = 1; i + 1 < fx.seen.size(); ++i) {
    CHECK(fx.seen[i].offset == next);
    CHECK(fx.seen[i].partial == (i + 2 < fx.seen.size()));
    next += fx.seen[i].bytes.size();
  }
  // Delivery never stopped inside the long line.
  for (const auto& d : fx.listener.deliveries) {
    CAPTURE(d.offset_end);
    CHECK((d.offset_end == 6 || d.offset_end == 6 + 5001 || d.offset_end == 6 + 5001 + 6));
  }
  CHECK(fx.sink->memoryBytes() <= fx.sink->memoryLimit());
}
