// RELP without I/O: the parser of what a server sends (frames, hostile bytes), the rsp data,
// the offers, and the window of unanswered frames (consecutive numbers that wrap after
// 999,999,999 to 1, acknowledgement of the answered prefix only, out-of-order answers held).

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "outputs/relp_protocol.h"
#include "outputs/relp_window.h"
#include "tests/support/fake_clock.h"

using namespace logsplice;
using namespace logsplice::outputs;

namespace {

relp::Parser::Result nextOf(relp::Parser& p, relp::Frame& f) {
  return p.next(f);
}

}  // namespace

TEST_CASE("relp parser: frames in pieces, empty data, several in one read") {
  relp::Parser p;
  relp::Frame f;
  std::string wire = "1 rsp 6 200 OK\n0 serverclose 0\n17 rsp 5 200 x\n";
  // Byte by byte: a frame only once its trailer arrived.
  int frames = 0;
  for (char c : wire) {
    p.feed(&c, 1);
    while (nextOf(p, f) == relp::Parser::Result::kFrame) {
      ++frames;
      if (frames == 1) {
        CHECK(f.txnr == 1);
        CHECK(f.command == "rsp");
        CHECK(f.data == "200 OK");
      } else if (frames == 2) {
        CHECK(f.txnr == 0);
        CHECK(f.command == "serverclose");
        CHECK(f.data.empty());
      } else {
        CHECK(f.txnr == 17);
        CHECK(f.data == "200 x");
      }
    }
  }
  CHECK(frames == 3);
  relp::Parser all;
  all.feed(wire.data(), wire.size());
  for (int i = 0; i < 3; ++i) CHECK(all.next(f) == relp::Parser::Result::kFrame);
  CHECK(all.next(f) == relp::Parser::Result::kNeedMore);
  // Data may hold newlines (the offers of an open answer).
  relp::Parser offers;
  std::string data = "200 OK\nrelp_version=0\ncommands=syslog";
  std::string o = "1 rsp " + std::to_string(data.size()) + " " + data + "\n";
  offers.feed(o.data(), o.size());
  REQUIRE(offers.next(f) == relp::Parser::Result::kFrame);
  CHECK(f.data == "200 OK\nrelp_version=0\ncommands=syslog");
}

TEST_CASE("relp parser: hostile bytes are errors and the parser stays failed") {
  const char* bad[] = {
      "x rsp 6 200 OK\n",                              // txnr not digits
      "1234567890 rsp 6 200 OK\n",                     // txnr over 9 digits
      "1 r$p 6 200 OK\n",                              // command not letters
      "1 rsp 1234567890 a\n",                          // datalen over 9 digits
      "1 rsp 65537 ",                                  // datalen over the answer bound
      "1 rsp 6 200 OKX",                               // no LF trailer
      "1 rsp 6\n",                                     // no data after a length
      "1  rsp 6 200 OK\n",                             // two spaces
      "1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0\n",  // command over 32 letters
  };
  for (const char* text : bad) {
    CAPTURE(text);
    relp::Parser p;
    relp::Frame f;
    p.feed(text, std::strlen(text));
    CHECK(p.next(f) == relp::Parser::Result::kError);
    CHECK_FALSE(p.error().empty());
    std::string good = "1 rsp 6 200 OK\n";
    p.feed(good.data(), good.size());
    CHECK(p.next(f) == relp::Parser::Result::kError);
    p.reset();
    p.feed(good.data(), good.size());
    CHECK(p.next(f) == relp::Parser::Result::kFrame);
  }
}

TEST_CASE("relp rsp data, offers and frames") {
  relp::Rsp r;
  REQUIRE(relp::parseRsp("200 OK", r));
  CHECK(r.code == 200);
  CHECK(r.text == "OK");
  REQUIRE(relp::parseRsp("500 queue full\nmore", r));
  CHECK(r.code == 500);
  CHECK(r.text == "queue full");
  CHECK(r.data == "more");
  REQUIRE(relp::parseRsp("200", r));
  CHECK(r.code == 200);
  CHECK_FALSE(relp::parseRsp("20", r));
  CHECK_FALSE(relp::parseRsp("2x0 OK", r));
  CHECK_FALSE(relp::parseRsp("200OK", r));

  CHECK(relp::offersCommand("relp_version=0\ncommands=syslog", "syslog"));
  CHECK(relp::offersCommand("commands=eventlog,syslog\nx=y", "syslog"));
  CHECK_FALSE(relp::offersCommand("relp_version=0\ncommands=eventlog", "syslog"));
  CHECK_FALSE(relp::offersCommand("relp_version=0\nsyslog", "syslog"));
  CHECK_FALSE(relp::offersCommand("", "syslog"));

  std::string out;
  relp::appendFrame(1, "open", "relp_version=0", out);
  relp::appendFrame(5, "close", "", out);
  CHECK(out == "1 open 14 relp_version=0\n5 close 0\n");
  std::string offers = relp::openOffers();
  CHECK(offers.rfind("relp_version=0\nrelp_software=logsplice,", 0) == 0);
  CHECK(relp::offersCommand(offers, "syslog"));
  CHECK(relp::printable(std::string("a\x01\xff"
                                    "b")) == "a??b");
  CHECK(relp::nextTxnr(5) == 6);
  CHECK(relp::nextTxnr(999'999'999) == 1);
}

TEST_CASE("relp window: answered prefix, held out-of-order answers, unknown numbers") {
  testing::FakeClock clock;
  RelpWindow w(clock);
  w.reset(2);
  for (int i = 0; i < 4; ++i) {
    CHECK(w.nextTxnr() == static_cast<uint32_t>(2 + i));
    w.framed(10);
  }
  CHECK(w.unanswered() == 4);
  CHECK(w.wireFramed() == 40);
  CHECK(w.wireEndOf(3) == 20);
  CHECK(w.wireEndOf(6) == 0);
  CHECK(w.acknowledge(3) == RelpWindow::Ack::kHeld);
  CHECK(w.ackedWire() == 0);
  CHECK(w.acknowledge(3) == RelpWindow::Ack::kUnknown);  // answered twice
  CHECK(w.acknowledge(2) == RelpWindow::Ack::kAdvanced);
  CHECK(w.ackedWire() == 20);  // 2 and the held 3
  CHECK(w.unanswered() == 2);
  CHECK(w.acknowledge(2) == RelpWindow::Ack::kUnknown);  // left the window
  CHECK(w.acknowledge(9) == RelpWindow::Ack::kUnknown);  // never sent
  CHECK(w.acknowledge(0) == RelpWindow::Ack::kUnknown);
  CHECK(w.oldestTxnr() == 4);
  clock.advanceMs(250);
  CHECK(w.oldestAgeMs() == 250);
  CHECK(w.acknowledge(4) == RelpWindow::Ack::kAdvanced);
  CHECK(w.acknowledge(5) == RelpWindow::Ack::kAdvanced);
  CHECK(w.ackedWire() == 40);
  CHECK(w.unanswered() == 0);
  CHECK(w.oldestAgeMs() == 0);
}

TEST_CASE("relp window: transaction numbers wrap after 999,999,999 to 1") {
  testing::FakeClock clock;
  RelpWindow w(clock);
  w.reset(999'999'998);
  w.framed(1);
  CHECK(w.nextTxnr() == 999'999'999);
  w.framed(1);
  CHECK(w.nextTxnr() == 1);
  w.framed(1);
  CHECK(w.nextTxnr() == 2);
  CHECK(w.wireEndOf(1) == 3);
  CHECK(w.acknowledge(1) == RelpWindow::Ack::kHeld);
  CHECK(w.acknowledge(999'999'998) == RelpWindow::Ack::kAdvanced);
  CHECK(w.ackedWire() == 1);
  CHECK(w.acknowledge(999'999'999) == RelpWindow::Ack::kAdvanced);
  CHECK(w.ackedWire() == 3);
  CHECK(w.unanswered() == 0);
  w.framed(5);
  CHECK(w.oldestTxnr() == 2);
  CHECK(w.acknowledge(2) == RelpWindow::Ack::kAdvanced);
  CHECK(w.ackedWire() == 8);
}
