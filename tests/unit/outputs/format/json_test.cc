#include "outputs/format/json.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/unit/outputs/format/json_checker.h"

namespace logsplice::outputs::format {
namespace {

using test::find;
using test::JsonObject;
using test::JsonReader;

// 2026-11-30T21:20:00.123456Z
constexpr int64_t kTime = 1796073600LL * 1000000 + 123456;

struct Fixture {
  std::vector<FieldPair> fields{{"env", "prod"}, {"team", "web \"core\""}};
  EventContext context{"web-1", "app", "nginx", 1, 6, fields};
  JsonFormatter formatter{context};

  std::string format(std::string_view message, size_t* replaced = nullptr, bool partial = false) {
    Event event{message, "/var/log/nginx/access.log", 4096, kTime, partial};
    std::string out;
    size_t n = formatter.append(event, out);
    if (replaced != nullptr) *replaced = n;
    return out;
  }

  JsonObject parse(const std::string& line) {
    INFO(line);
    std::optional<JsonObject> object = JsonReader(line).object();
    REQUIRE(object.has_value());
    return *object;
  }
};

TEST_CASE("a JSON event has every key, in order", "[format][json]") {
  Fixture f;
  std::string line = f.format("GET / 200");
  CHECK(line ==
        "{\"timestamp\":\"2026-11-30T21:20:00.123456Z\",\"host\":\"web-1\",\"input\":\"nginx\","
        "\"file\":\"/var/log/nginx/access.log\",\"offset\":4096,\"message\":\"GET / 200\","
        "\"env\":\"prod\",\"team\":\"web \\\"core\\\"\"}\n");
  JsonObject object = f.parse(line);
  REQUIRE(object.size() == 8);
  CHECK(object[0].first == "timestamp");
  CHECK(find(object, "offset")->kind == test::JsonValue::kNumber);
  CHECK(find(object, "team")->text == "web \"core\"");
  CHECK(find(object, "partial") == nullptr);
}

TEST_CASE("a partial JSON event says so", "[format][json]") {
  Fixture f;
  JsonObject object = f.parse(f.format("piece", nullptr, /*partial=*/true));
  REQUIRE(find(object, "partial") != nullptr);
  CHECK(find(object, "partial")->kind == test::JsonValue::kTrue);
  CHECK(object.back().first == "partial");
}

TEST_CASE("every control character, quote and backslash is escaped", "[format][json]") {
  std::string all;
  for (int c = 0; c < 0x20; ++c) all += static_cast<char>(c);
  all += "\"\\\x7f/";
  std::string out;
  CHECK(appendJsonString(all, out) == 0);
  CHECK(out ==
        "\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e"
        "\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a"
        "\\u001b\\u001c\\u001d\\u001e\\u001f\\\"\\\\\x7f/");
  // And it reads back as the same bytes.
  Fixture f;
  JsonObject object = f.parse(f.format(all));
  CHECK(find(object, "message")->text == all);
}

TEST_CASE("special bytes are found at every position of the 8-byte loop", "[format][json]") {
  Fixture f;
  for (size_t pos = 0; pos < 24; ++pos) {
    for (char special : {'\0', '\n', '"', '\\', '\x1f'}) {
      std::string message(24, 'x');
      message[pos] = special;
      INFO("position " << pos << " byte " << int(special));
      JsonObject object = f.parse(f.format(message));
      CHECK(find(object, "message")->text == message);
    }
  }
}

TEST_CASE("valid multi-byte UTF-8 passes through", "[format][json]") {
  Fixture f;
  std::string message = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF end";
  size_t replaced = 99;
  std::string line = f.format(message, &replaced);
  CHECK(replaced == 0);
  CHECK(line.find(message) != std::string::npos);
  CHECK(find(f.parse(line), "message")->text == message);
}

TEST_CASE("invalid UTF-8 becomes U+FFFD and is counted", "[format][json]") {
  Fixture f;
  const std::string r(utf8::kReplacement);
  struct Case {
    std::string in;
    std::string out;
    size_t count;
  };
  const Case cases[] = {
      {"a\xC0\xAF"
       "b",
       "a" + r + r + "b", 2},                         // overlong
      {"\xE0\x80\xAF", r + r + r, 3},                 // overlong 3-byte
      {"s \xED\xA0\x80", "s " + r + r + r, 3},        // surrogate
      {"\xF4\x90\x80\x80!", r + r + r + r + "!", 4},  // above U+10FFFF
      {"end \xE2\x82", "end " + r, 1},                // truncated
      {"\x80\x80", r + r, 2},                         // stray continuations
      {"\xFE\xFF", r + r, 2},
  };
  for (const Case& c : cases) {
    size_t replaced = 0;
    std::string line = f.format(c.in, &replaced);
    CHECK(replaced == c.count);
    CHECK(find(f.parse(line), "message")->text == c.out);
  }
}

TEST_CASE("an invalid file path is repaired and counted too", "[format][json]") {
  Fixture f;
  Event event{"m", "/var/log/\xFF.log", 0, kTime, false};
  std::string out;
  CHECK(f.formatter.append(event, out) == 1);
  CHECK(find(f.parse(out), "file")->text == "/var/log/" + std::string(utf8::kReplacement) + ".log");
}

TEST_CASE("JSON events append to the caller's buffer", "[format][json]") {
  Fixture f;
  std::string out = "previous\n";
  Event event{"one", "/f", 1, kTime, false};
  (void)f.formatter.append(event, out);
  event.message = "two";
  event.offset = 5;
  (void)f.formatter.append(event, out);
  CHECK(out.rfind("previous\n{", 0) == 0);
  size_t first_end = out.find('\n', 9);
  CHECK(f.parse(out.substr(9, first_end - 8)).size() == 8);
  CHECK(find(f.parse(out.substr(first_end + 1)), "offset")->text == "5");
}

TEST_CASE("empty context values and no fields", "[format][json]") {
  EventContext context{"", "", "", 1, 6, {}};
  JsonFormatter formatter(context);
  std::string out;
  (void)formatter.append(Event{"", "", 0, 0, false}, out);
  CHECK(out ==
        "{\"timestamp\":\"1970-01-01T00:00:00.000000Z\",\"host\":\"\",\"input\":\"\","
        "\"file\":\"\",\"offset\":0,\"message\":\"\"}\n");
}

}  // namespace
}  // namespace logsplice::outputs::format

namespace logsplice::outputs::format {
namespace {

TEST_CASE("random bytes always make a valid JSON line that reads back repaired", "[format][json]") {
  // Biased towards the bytes that matter: controls, quote, backslash, lead and continuation
  // bytes, and the bytes that make overlongs, surrogates and out-of-range sequences.
  const unsigned char alphabet[] = {0x00, 0x01, 0x0A, 0x1F, 0x20, '"',  '\\', 'a',  0x7F,
                                    0x80, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0,
                                    0xF4, 0xF5, 0xFF, 0xA0, 0x9F, 0x8F, 0x90};
  Fixture f;
  uint64_t state = 0x9E3779B97F4A7C15ULL;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int round = 0; round < 3000; ++round) {
    std::string message(next() % 40, '\0');
    for (char& c : message) c = static_cast<char>(alphabet[next() % sizeof(alphabet)]);
    std::string expected;
    size_t expected_count = utf8::appendRepaired(message, expected);
    size_t replaced = 0;
    std::string line = f.format(message, &replaced);
    INFO("round " << round);
    CHECK(replaced == expected_count);
    std::optional<JsonObject> object = JsonReader(line).object();
    REQUIRE(object.has_value());
    CHECK(find(*object, "message")->text == expected);
  }
}

TEST_CASE("formatting into a reused buffer does not allocate", "[format][json]") {
  Fixture f;
  std::string out;
  out.reserve(4096);
  const char* data = out.data();
  for (int i = 0; i < 100; ++i) {
    out.clear();
    (void)f.formatter.append(Event{"a message \"with\" escapes\n", "/f", 7, kTime, i % 2 == 0},
                             out);
  }
  CHECK(out.data() == data);
  CHECK(out.capacity() == 4096);
}

}  // namespace
}  // namespace logsplice::outputs::format
