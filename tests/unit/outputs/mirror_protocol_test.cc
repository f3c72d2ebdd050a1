#include "outputs/mirror_protocol.h"

#include <catch2/catch.hpp>
#include <string>

namespace mp = logsplice::outputs::mirror;

namespace {

std::string bodyOf(const std::string& msg) {
  return msg.substr(mp::kHeaderBytes);
}

mp::Header headerOf(const std::string& msg) {
  auto h = mp::decodeHeader(msg.data());
  REQUIRE(h);
  return *h;
}

}  // namespace

TEST_CASE("mirror protocol: hello round trip, little-endian fixed header", "[mirror]") {
  std::string msg = mp::encodeHello({mp::kVersion, "web-1", "abc", "secret-token"});
  REQUIRE(msg.size() > mp::kHeaderBytes);
  CHECK(msg[0] == 1);  // type HELLO
  mp::Header h = headerOf(msg);
  CHECK(h.type == mp::Type::kHello);
  CHECK(h.length == msg.size() - mp::kHeaderBytes);
  CHECK(static_cast<unsigned char>(msg[16]) == (h.length & 0xff));  // length, low byte first
  std::string why;
  auto m = mp::decodeHello(bodyOf(msg), &why);
  REQUIRE(m);
  CHECK(m->version == mp::kVersion);
  CHECK(m->host == "web-1");
  CHECK(m->instance == "abc");
  CHECK(m->token == "secret-token");
}

TEST_CASE("mirror protocol: open and hello-ok round trip", "[mirror]") {
  mp::Open o;
  o.dev = 0x0102030405060708ull;
  o.ino = 42;
  o.fingerprint = ~0ull;
  o.fingerprint_len = 1024;
  o.generation = 3;
  o.input = "app";
  o.path = "/var/log/app.log";
  std::string msg = mp::encodeOpen(7, o);
  mp::Header h = headerOf(msg);
  CHECK(h.type == mp::Type::kOpen);
  CHECK(h.stream == 7);
  std::string why;
  auto back = mp::decodeOpen(bodyOf(msg), &why);
  REQUIRE(back);
  CHECK(back->dev == o.dev);
  CHECK(back->ino == 42);
  CHECK(back->fingerprint == ~0ull);
  CHECK(back->fingerprint_len == 1024);
  CHECK(back->generation == 3);
  CHECK(back->input == "app");
  CHECK(back->path == "/var/log/app.log");

  auto ok = mp::decodeHelloOk(bodyOf(mp::encodeHelloOk({1, 60000, 1 << 20, 77})), &why);
  REQUIRE(ok);
  CHECK(ok->idle_timeout_ms == 60000);
  CHECK(ok->max_frame == (1u << 20));
  CHECK(ok->max_streams == 77);
}

TEST_CASE("mirror protocol: data header carries stream, offset, length", "[mirror]") {
  char buf[mp::kHeaderBytes];
  mp::encodeHeader({mp::Type::kData, 9, 1ull << 40, 65536}, buf);
  auto h = mp::decodeHeader(buf);
  REQUIRE(h);
  CHECK(h->type == mp::Type::kData);
  CHECK(h->stream == 9);
  CHECK(h->offset == (1ull << 40));
  CHECK(h->length == 65536);
}

TEST_CASE("mirror protocol: hostile headers are refused", "[mirror]") {
  char buf[mp::kHeaderBytes];
  mp::encodeHeader({mp::Type::kData, 1, 0, 10}, buf);
  SECTION("unknown type") {
    buf[0] = 0;
    CHECK_FALSE(mp::decodeHeader(buf));
    buf[0] = 10;
    CHECK_FALSE(mp::decodeHeader(buf));
    buf[0] = static_cast<char>(0xff);
    CHECK_FALSE(mp::decodeHeader(buf));
  }
  SECTION("reserved bytes set") {
    buf[2] = 1;
    CHECK_FALSE(mp::decodeHeader(buf));
  }
  SECTION("a frame claiming 1 TiB is over any limit") {
    mp::Header h{mp::Type::kData, 1, 0, 1ull << 40};
    CHECK_FALSE(mp::lengthAllowed(h, mp::kMaxFrameHardCap));
    h.length = 1 << 20;
    CHECK(mp::lengthAllowed(h, 1 << 20));
    CHECK_FALSE(mp::lengthAllowed(h, (1 << 20) - 1));
    h.length = 0;
    CHECK_FALSE(mp::lengthAllowed(h, 1 << 20));  // an empty frame is not a frame
  }
  SECTION("control bodies are bounded") {
    mp::Header h{mp::Type::kOpen, 1, 0, mp::kMaxControlBody + 1};
    CHECK_FALSE(mp::lengthAllowed(h, 1 << 20));
    h.length = mp::kMaxControlBody;
    CHECK(mp::lengthAllowed(h, 1 << 20));
    mp::Header ka{mp::Type::kKeepalive, 0, 0, 1};
    CHECK_FALSE(mp::lengthAllowed(ka, 1 << 20));
  }
}

TEST_CASE("mirror protocol: hostile bodies are refused", "[mirror]") {
  std::string why;
  std::string hello = bodyOf(mp::encodeHello({mp::kVersion, "h", "i", "token-123"}));
  SECTION("truncated at every length") {
    for (size_t n = 0; n < hello.size(); ++n) {
      CHECK_FALSE(mp::decodeHello(hello.substr(0, n), &why));
    }
    std::string open = bodyOf(mp::encodeOpen(1, mp::Open{1, 2, 3, 4, 5, "in", "/p"}));
    for (size_t n = 0; n < open.size(); ++n) CHECK_FALSE(mp::decodeOpen(open.substr(0, n), &why));
  }
  SECTION("trailing bytes") {
    CHECK_FALSE(mp::decodeHello(hello + "x", &why));
    CHECK(why.find("trailing") != std::string::npos);
  }
  SECTION("bad magic: not a logsplice agent") {
    std::string bad = hello;
    bad[0] = 'G';
    CHECK_FALSE(mp::decodeHello(bad, &why));
    CHECK(why.find("magic") != std::string::npos);
  }
  SECTION("over-long strings") {
    std::string long_host(mp::kMaxHostBytes + 1, 'a');
    CHECK_FALSE(mp::decodeHello(bodyOf(mp::encodeHello({1, long_host, "i", "t"})), &why));
    CHECK(why.find("host") != std::string::npos);
    std::string long_path = "/" + std::string(mp::kMaxPathBytes, 'p');
    CHECK_FALSE(
        mp::decodeOpen(bodyOf(mp::encodeOpen(1, mp::Open{1, 2, 3, 4, 5, "in", long_path})), &why));
  }
  SECTION("a version other than ours still decodes (the collector answers ERROR version)") {
    auto m = mp::decodeHello(bodyOf(mp::encodeHello({2, "h", "i", "t"})), &why);
    REQUIRE(m);
    CHECK(m->version == 2);
  }
}

TEST_CASE("mirror protocol: names and paths from the wire", "[mirror]") {
  CHECK(mp::validName("web-1.example_com", mp::kMaxHostBytes));
  CHECK_FALSE(mp::validName("", mp::kMaxHostBytes));
  CHECK_FALSE(mp::validName(".", mp::kMaxHostBytes));
  CHECK_FALSE(mp::validName("..", mp::kMaxHostBytes));
  CHECK_FALSE(mp::validName(".hidden", mp::kMaxHostBytes));
  CHECK_FALSE(mp::validName("a/b", mp::kMaxHostBytes));
  CHECK_FALSE(mp::validName(std::string("a\0b", 3), mp::kMaxHostBytes));
  CHECK_FALSE(mp::validName(std::string(mp::kMaxHostBytes + 1, 'a'), mp::kMaxHostBytes));
  CHECK(mp::validSourcePath("/var/log/x.log"));
  CHECK_FALSE(mp::validSourcePath("var/log/x.log"));
  CHECK_FALSE(mp::validSourcePath(""));
  CHECK_FALSE(mp::validSourcePath(std::string("/a\0b", 4)));
  CHECK_FALSE(mp::validSourcePath("/" + std::string(mp::kMaxPathBytes, 'a')));
}
