#include "outputs/format/multiline.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace logsplice::outputs::format {
namespace {

using Clock = MultilineAssembler::Clock;
using std::chrono::milliseconds;

struct Emitted {
  std::string text;
  uint64_t begin;
  uint64_t end;
  bool cut;
  bool continued;
};

// Feeds the lines of a file's text to an assembler, with their file offsets, and records the
// events it emits (copied: the views are valid during the call only).
struct Harness {
  Regex regex;
  MultilineAssembler assembler;
  std::vector<Emitted> events;
  uint64_t offset = 0;
  Clock::time_point now{};

  Harness(std::string_view pattern, MultilineOptions options)
      : regex(compile(pattern)), assembler(regex, options) {}

  static Regex compile(std::string_view pattern) {
    sys::Result<Regex> r = Regex::compile(pattern);
    REQUIRE(r.ok());
    return std::move(r).value();
  }

  void record(const MultilineEvent& e) {
    events.push_back({std::string(e.text), e.begin, e.end, e.cut, e.continued});
  }

  // Every line of `text` must end with '\n'.
  void feed(std::string_view text) {
    while (!text.empty()) {
      size_t nl = text.find('\n');
      REQUIRE(nl != std::string_view::npos);
      assembler.push(text.substr(0, nl), offset, offset + nl + 1, now,
                     [&](const MultilineEvent& e) { record(e); });
      offset += nl + 1;
      text.remove_prefix(nl + 1);
    }
  }

  void flush() {
    assembler.flush([&](const MultilineEvent& e) { record(e); });
  }
};

constexpr std::string_view kTimestamped = R"(^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})";

TEST_CASE("a Java stack trace is one event between timestamped lines", "[format][multiline]") {
  Harness h(kTimestamped, {});
  const std::string first = "2026-11-30 21:20:00,001 INFO started\n";
  const std::string trace =
      "2026-11-30 21:20:01,002 ERROR request failed\n"
      "java.lang.IllegalStateException: bad state\n"
      "\tat com.example.Foo.bar(Foo.java:10)\n"
      "\tat com.example.Main.main(Main.java:3)\n"
      "Caused by: java.io.IOException: disk full\n"
      "\t... 2 more\n";
  const std::string last = "2026-11-30 21:20:02,003 INFO next\n";
  h.feed(first + trace + last);
  REQUIRE(h.events.size() == 2);
  CHECK(h.events[0].text == "2026-11-30 21:20:00,001 INFO started");
  CHECK(h.events[0].begin == 0);
  CHECK(h.events[0].end == first.size());
  CHECK(h.events[1].text == trace.substr(0, trace.size() - 1));  // joined with '\n', no final one
  CHECK(h.events[1].begin == first.size());
  CHECK(h.events[1].end == first.size() + trace.size());
  CHECK_FALSE(h.events[1].cut);
  CHECK_FALSE(h.events[1].continued);
  // The last event waits for the next start line, the timeout or a flush.
  CHECK(h.assembler.pending());
  CHECK(h.assembler.pendingBegin() == first.size() + trace.size());
  h.flush();
  REQUIRE(h.events.size() == 3);
  CHECK(h.events[2].text == "2026-11-30 21:20:02,003 INFO next");
  CHECK(h.events[2].end == first.size() + trace.size() + last.size());
  CHECK_FALSE(h.assembler.pending());
}

TEST_CASE("an event that would pass max_bytes is cut and continued", "[format][multiline]") {
  Harness h("^START", {milliseconds(1000), 20});
  h.feed("START 1\n");     // 7 bytes   [0, 8)
  h.feed("continue a\n");  // +11 = 18  [8, 19)
  h.feed("continue b\n");  // +11 = 29 > 20: cut   [19, 30)
  h.feed("c\n");           // [30, 32)
  h.feed("START 2\n");     // [32, 40)
  REQUIRE(h.events.size() == 2);
  CHECK(h.events[0].text == "START 1\ncontinue a");
  CHECK(h.events[0].begin == 0);
  CHECK(h.events[0].end == 19);
  CHECK(h.events[0].cut);
  CHECK_FALSE(h.events[0].continued);
  CHECK(h.events[1].text == "continue b\nc");
  CHECK(h.events[1].begin == 19);
  CHECK(h.events[1].end == 32);
  CHECK_FALSE(h.events[1].cut);
  CHECK(h.events[1].continued);
  CHECK(h.assembler.pendingBegin() == 32);
}

TEST_CASE("cut and continued events are partial", "[format][multiline]") {
  CHECK(MultilineEvent{"", 0, 0, true, false}.partial());
  CHECK(MultilineEvent{"", 0, 0, false, true}.partial());
  CHECK(MultilineEvent{"", 0, 0, true, true}.partial());
  CHECK_FALSE(MultilineEvent{"", 0, 0, false, false}.partial());
}

TEST_CASE("an event of exactly max_bytes is not cut", "[format][multiline]") {
  Harness h("^S", {milliseconds(1000), 7});
  h.feed("S 1\nabc\nS 2\n");  // "S 1\nabc" is 7 bytes
  REQUIRE(h.events.size() == 1);
  CHECK(h.events[0].text == "S 1\nabc");
  CHECK_FALSE(h.events[0].cut);
}

TEST_CASE("a single line longer than max_bytes is emitted alone and whole", "[format][multiline]") {
  Harness h("^S", {milliseconds(1000), 8});
  h.feed("S 1\n");
  h.feed("a line much longer than eight bytes\n");
  // The pending event, then the long line straight from the caller's buffer.
  REQUIRE(h.events.size() == 2);
  CHECK(h.events[0].text == "S 1");
  CHECK(h.events[0].cut);
  CHECK(h.events[1].text == "a line much longer than eight bytes");
  CHECK(h.events[1].begin == 4);
  CHECK(h.events[1].end == 40);
  CHECK(h.events[1].continued);
  CHECK_FALSE(h.assembler.pending());
  h.feed("S long start line too\n");
  REQUIRE(h.events.size() == 3);
  CHECK_FALSE(h.events[2].continued);
}

TEST_CASE("the pending event is emitted after the idle timeout", "[format][multiline]") {
  Harness h(kTimestamped, {milliseconds(1000), 1024});
  h.feed("2026-11-30 21:20:00 one\n  more\n");
  auto emit = [&](const MultilineEvent& e) { h.record(e); };
  CHECK(h.assembler.deadline() == h.now + milliseconds(1000));
  CHECK_FALSE(h.assembler.flushIdle(h.now + milliseconds(999), emit));
  CHECK(h.events.empty());
  // A new line restarts the idle time.
  h.now += milliseconds(600);
  h.feed("  and more\n");
  CHECK_FALSE(h.assembler.flushIdle(h.now + milliseconds(999), emit));
  CHECK(h.assembler.flushIdle(h.now + milliseconds(1000), emit));
  REQUIRE(h.events.size() == 1);
  CHECK(h.events[0].text == "2026-11-30 21:20:00 one\n  more\n  and more");
  CHECK(h.events[0].begin == 0);
  CHECK(h.events[0].end == h.offset);
  CHECK_FALSE(h.assembler.pending());
  CHECK_FALSE(h.assembler.flushIdle(h.now + milliseconds(5000), emit));
  // A late continuation line after a flush is an event of its own, marked continued.
  h.feed("  late\n");
  h.flush();
  REQUIRE(h.events.size() == 2);
  CHECK(h.events[1].text == "  late");
  CHECK(h.events[1].continued);
}

TEST_CASE("a pattern that matches nothing joins every line up to max_bytes",
          "[format][multiline]") {
  Harness h("^NEVER-MATCHES$", {milliseconds(1000), 16});
  h.feed("aaaa\nbbbb\ncccc\ndddd\n");  // 4 + 5 + 5 = 14, + 5 = 19 > 16
  REQUIRE(h.events.size() == 1);
  CHECK(h.events[0].text == "aaaa\nbbbb\ncccc");
  CHECK(h.events[0].cut);
  CHECK(h.events[0].continued);  // it never began with a start line
  CHECK(h.events[0].end == 15);
  h.flush();
  REQUIRE(h.events.size() == 2);
  CHECK(h.events[1].text == "dddd");
  CHECK(h.events[1].begin == 15);
}

TEST_CASE("empty lines join the current event", "[format][multiline]") {
  Harness h("^S", {});
  h.feed("S one\n\n\nafter blanks\nS two\n");
  REQUIRE(h.events.size() == 1);
  CHECK(h.events[0].text == "S one\n\n\nafter blanks");
  CHECK(h.events[0].end == 21);
  // An empty line first is an event of its own (empty text), not a lost line.
  Harness g("^S", {});
  g.feed("\nS x\n");
  REQUIRE(g.events.size() == 1);
  CHECK(g.events[0].text.empty());
  CHECK(g.events[0].begin == 0);
  CHECK(g.events[0].end == 1);
  CHECK(g.events[0].continued);
}

TEST_CASE("consecutive start lines are one event each", "[format][multiline]") {
  Harness h("^S", {});
  h.feed("S 1\nS 2\nS 3\n");
  h.flush();
  REQUIRE(h.events.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(h.events[i].text == "S " + std::to_string(i + 1));
    CHECK(h.events[i].begin == 4 * i);
    CHECK(h.events[i].end == 4 * i + 4);
    CHECK_FALSE(h.events[i].continued);
  }
}

TEST_CASE("pieces of a split line never start an event and join without newline",
          "[format][multiline]") {
  Harness h("^S", {});
  auto emit = [&](const MultilineEvent& e) { h.record(e); };
  h.assembler.push("S long li", 0, 9, h.now, emit);
  h.assembler.push("S ne rest", 9, 19, h.now, emit, /*piece=*/true);
  h.assembler.push("S next", 19, 26, h.now, emit);
  REQUIRE(h.events.size() == 1);
  CHECK(h.events[0].text == "S long liS ne rest");
  CHECK(h.events[0].end == 19);
}

TEST_CASE("a bad pattern does not compile and says where", "[format][multiline]") {
  sys::Result<Regex> r = Regex::compile("^(abc");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().context().find("offset 5") != std::string::npos);
}

TEST_CASE("the regex matches anywhere unless anchored", "[format][multiline]") {
  sys::Result<Regex> r = Regex::compile("ERROR");
  REQUIRE(r.ok());
  CHECK(r->matches("2026 ERROR x"));
  CHECK_FALSE(r->matches("2026 INFO x"));
  CHECK_FALSE(r->matches(std::string_view()));
  sys::Result<Regex> empty = Regex::compile("^$");
  REQUIRE(empty.ok());
  CHECK(empty->matches(std::string_view()));
  CHECK(empty->matches(""));
}

}  // namespace
}  // namespace logsplice::outputs::format

namespace logsplice::outputs::format {
namespace {

TEST_CASE("the buffer never grows past max_bytes and is released after a large event",
          "[format][multiline]") {
  const uint64_t max_bytes = 300 * 1024;
  Harness h("^START", {std::chrono::milliseconds(1000), max_bytes});
  const std::string line(1000, 'x');
  h.feed("START\n");
  for (int i = 0; i < 400; ++i) {  // ~400 KB of continuation lines: cut at most every 300 KiB
    h.feed(line + "\n");
    REQUIRE(h.assembler.bufferCapacity() <= max_bytes);
  }
  REQUIRE_FALSE(h.events.empty());
  CHECK(h.events[0].cut);
  CHECK(h.events[0].text.size() <= max_bytes);
  CHECK(h.events[0].text.size() > max_bytes - 1001);
  h.flush();
  CHECK(h.assembler.bufferCapacity() <= 64 * 1024);
  // Every byte of the file is in exactly one event, in order.
  uint64_t expected_begin = 0;
  for (const Emitted& e : h.events) {
    CHECK(e.begin == expected_begin);
    expected_begin = e.end;
  }
  CHECK(expected_begin == h.offset);
}

}  // namespace
}  // namespace logsplice::outputs::format
