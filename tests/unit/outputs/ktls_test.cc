// Kernel TLS decisions and delivery arithmetic (outputs/ktls.h), apart from any socket: which
// path an output takes (the tls ULP present or absent, raw or framed, auto/require/off), what
// the BIO's answer after the handshake decides, and that the acknowledged-plaintext bound never
// runs ahead of what the peer's TCP stack acknowledged in whole records, whatever records the
// kernel made.

#include "outputs/ktls.h"

#include <catch2/catch.hpp>
#include <random>
#include <vector>

using namespace logsplice;
using namespace logsplice::outputs;
using config::KtlsMode;

TEST_CASE("ktls plan: the ULP, the format and the mode decide the path", "[ktls]") {
  struct Case {
    KtlsMode mode;
    bool raw;
    bool ulp;
    bool try_kernel;
    const char* refusal;  // "" = none
  };
  const Case cases[] = {
      {KtlsMode::kAuto, true, true, true, ""},
      {KtlsMode::kAuto, true, false, false, ""},
      {KtlsMode::kAuto, false, true, false, ""},
      {KtlsMode::kRequire, true, true, true, ""},
      {KtlsMode::kRequire, true, false, false, "tcp_available_ulp"},
      {KtlsMode::kRequire, false, true, false, "format: raw only"},
      {KtlsMode::kOff, true, true, false, ""},
      {KtlsMode::kOff, true, false, false, ""},
  };
  for (const Case& c : cases) {
    CAPTURE(static_cast<int>(c.mode), c.raw, c.ulp);
    ktls::Plan p = ktls::plan(c.mode, c.raw, c.ulp);
    CHECK(p.try_kernel == c.try_kernel);
    if (*c.refusal) {
      CHECK_THAT(p.refusal, Catch::Contains(c.refusal) && Catch::Contains("require"));
    } else {
      CHECK(p.refusal.empty());
    }
    // Whoever stays in userspace is told why (it is logged).
    if (!p.try_kernel) CHECK_FALSE(p.why_userspace.empty());
  }
  CHECK_THAT(ktls::plan(KtlsMode::kAuto, true, false).why_userspace, Catch::Contains("no kTLS"));
}

TEST_CASE("ktls after the handshake: the BIO's answer decides, not the request", "[ktls]") {
  CHECK(ktls::afterHandshake(KtlsMode::kAuto, true) == ktls::Outcome::kKernel);
  CHECK(ktls::afterHandshake(KtlsMode::kRequire, true) == ktls::Outcome::kKernel);
  CHECK(ktls::afterHandshake(KtlsMode::kAuto, false) == ktls::Outcome::kUserspace);
  CHECK(ktls::afterHandshake(KtlsMode::kRequire, false) == ktls::Outcome::kRefuse);
  CHECK_THAT(ktls::refusalAfterHandshake("TLSv1.2 ECDHE-ECDSA-AES128-SHA256"),
             Catch::Contains("TLSv1.2 ECDHE-ECDSA-AES128-SHA256") && Catch::Contains("userspace") &&
                 Catch::Contains("ktls: auto"));
  // A session that never asked (or an SSL without a socket BIO) reports no kernel send side.
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  ktls::request(ssl);
  CHECK((SSL_get_options(ssl) & SSL_OP_ENABLE_KTLS) != 0);
  CHECK_FALSE(ktls::sendActive(ssl));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
}

TEST_CASE("ktls ack bound: sent minus SIOCOUTQ minus the slack while in flight", "[ktls]") {
  ktls::AckBound b;
  CHECK(b.poll(0) == 0);
  b.sent(1 << 20);
  CHECK(b.plainSent() == (1 << 20));
  CHECK(b.poll(100000) == (1 << 20) - 100000 - ktls::kInFlightSlack);
  // Acknowledgements do not un-happen: a larger queue later does not move it back.
  CHECK(b.poll(500000) == (1 << 20) - 100000 - ktls::kInFlightSlack);
  // Less sent than the slack: nothing is known yet.
  ktls::AckBound small;
  small.sent(4000);
  CHECK(small.poll(100) == 0);
}

TEST_CASE("ktls ack bound: everything once the queue stayed empty over a poll with no send",
          "[ktls]") {
  ktls::AckBound b;
  b.sent(10000);
  CHECK(b.poll(0) == 0);      // just sent: the kernel may still hold records above TCP
  CHECK(b.poll(0) == 10000);  // empty twice, nothing sent between: all acknowledged
  b.sent(500);
  CHECK(b.poll(0) == 10000);  // a send between the empty polls: not yet
  b.sent(0);                  // a splice that moved nothing does not count as a send
  CHECK(b.poll(0) == 10500);
  CHECK(b.acknowledged() == 10500);
  // A non-empty queue between two empty polls: the next empty one is the first again.
  b.sent(300);
  CHECK(b.poll(200) == 10500);
  CHECK(b.poll(0) == 10500);
  CHECK(b.poll(0) == 10800);
}

// A model of what the kernel may do with our splices: each splice of at most kMaxSplice bytes
// becomes records of at most 16 KiB (closed early at random, as a full scatterlist does, and
// always at the end of the splice: no MORE flag), each with a TLS 1.2 or 1.3 overhead; the
// records of the last one or two splices may still sit above TCP; the peer acknowledged any
// prefix of what TCP has. The bound must never exceed the plaintext of the whole records
// acknowledged.
TEST_CASE("ktls ack bound: never ahead of the whole records acknowledged (random model)",
          "[ktls]") {
  std::mt19937_64 rng(20261130);
  auto uniform = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  struct Record {
    uint64_t plain;
    uint64_t wire;
    size_t splice;
  };
  int tight = 0;
  for (int round = 0; round < 3000; ++round) {
    const uint64_t overhead = uniform(0, 1) ? 22 : 29;
    std::vector<Record> records;
    std::vector<uint64_t> splices;
    const size_t n_splices = uniform(1, 40);
    ktls::AckBound bound;
    for (size_t s = 0; s < n_splices; ++s) {
      uint64_t len = uniform(0, 3) == 0 ? uniform(1, 200) : uniform(1, ktls::kMaxSplice);
      splices.push_back(len);
      bound.sent(len);
      while (len > 0) {
        uint64_t cap = uniform(0, 4) == 0 ? uniform(1, ktls::kRecordPlain) : ktls::kRecordPlain;
        uint64_t p = std::min(len, cap);
        records.push_back({p, p + overhead, s});
        len -= p;
      }
    }
    // Held above TCP: the records of the last splice, or of the last two, or none (a suffix).
    size_t held_from_splice = n_splices - std::min<size_t>(n_splices, uniform(0, 2));
    size_t first_held = records.size();
    for (size_t i = 0; i < records.size(); ++i) {
      if (records[i].splice >= held_from_splice) {
        first_held = std::min(first_held, i);
      }
    }
    // A record may be partly pushed into TCP when the kernel kept its tail.
    uint64_t in_tcp = 0;
    for (size_t i = 0; i < first_held; ++i) in_tcp += records[i].wire;
    if (first_held < records.size()) in_tcp += uniform(0, records[first_held].wire - 1);
    const uint64_t acked_wire = uniform(0, in_tcp);
    const uint64_t outq = in_tcp - acked_wire;
    uint64_t truly = 0, wire = 0;
    for (const Record& r : records) {
      wire += r.wire;
      if (wire > acked_wire) break;
      truly += r.plain;
    }
    CAPTURE(round, n_splices, acked_wire, outq, truly, bound.plainSent());
    const uint64_t got = bound.poll(outq);
    REQUIRE(got <= truly);
    if (got > 0) ++tight;
  }
  CHECK(tight > 300);  // and it is not vacuous: it often reports progress
}
