#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <string>

#include "config/config.h"

namespace logsplice::outputs::ktls {

// Kernel TLS (kTLS) for raw outputs: OpenSSL does the handshake on the socket itself and then
// hands the send keys to the kernel (the `tls` TCP ULP), so the pipe keeps being spliced into
// the socket and the kernel encrypts: no copy through userspace. This file holds the decisions
// and the delivery arithmetic, apart from any socket, so they are unit-tested alone; the sink
// that uses them is outputs/tls_stream_sink.h. docs/design.md section 1.4 has the whole path.

// Before connecting: which path an output with `tls:` takes.
struct Plan {
  bool try_kernel = false;    // handshake on the socket with SSL_OP_ENABLE_KTLS (TlsStreamSink)
  std::string refusal;        // not empty: the output must not start (`ktls: require`), and why
  std::string why_userspace;  // when not trying the kernel: the reason, for the log
};
Plan plan(config::KtlsMode mode, bool raw_format, bool ulp_available);

// After the handshake: what OpenSSL's BIO reports decides. OpenSSL falls back to userspace
// silently (a cipher the kernel cannot do, the module not loadable, a kernel without kTLS), so
// the sink asks, and does not assume.
enum class Outcome { kKernel, kUserspace, kRefuse };
Outcome afterHandshake(config::KtlsMode mode, bool bio_ktls_send);
// The message for a connection refused under `require` (the BIO said no).
std::string refusalAfterHandshake(const std::string& negotiated);

// Asks OpenSSL to move the record layer into the kernel once keys are agreed.
void request(SSL* ssl);
// Whether OpenSSL did move the send side into the kernel (BIO_get_ktls_send on the write BIO).
bool sendActive(SSL* ssl);

// Plaintext bytes per TLS record at most (RFC 8446 5.1); the kernel closes a record there too.
inline constexpr uint64_t kRecordPlain = 16 * 1024;
// Bytes per splice into a kTLS socket at most: bounds what one send call may leave encrypted
// but not yet in TCP's queue (see AckBound).
inline constexpr uint64_t kMaxSplice = 64 * 1024;
// The slack subtracted while bytes are in flight: one partly acknowledged record plus the
// records of up to two send calls the kernel may still hold above TCP.
inline constexpr uint64_t kInFlightSlack = kRecordPlain + 2 * kMaxSplice;

// A safe lower bound of the plaintext the peer's TCP stack acknowledged in whole records, from
// the plaintext spliced and SIOCOUTQ. Under kTLS the socket's queue counts record bytes
// (header, tag), and the kernel, not us, decides where records end, so acknowledged wire bytes
// cannot be mapped exactly back to plaintext. What holds:
//  - Every splice is sent without SPLICE_F_MORE, so each splice call closes its last record:
//    no plaintext we counted as sent waits in an open record for more.
//  - A record's wire size exceeds its plaintext, so the plaintext of the records still wholly
//    in TCP's queue is at most SIOCOUTQ.
//  - At most one record is partly acknowledged; its plaintext is unusable to the collector
//    until its last byte (the tag) arrives, and that is at most kRecordPlain beyond SIOCOUTQ.
//  - A send call that fills TCP's buffer leaves its last records encrypted above TCP (the
//    kernel pushes them when room appears); they are in neither SIOCOUTQ nor acknowledged.
//    Each splice moves at most kMaxSplice, and a call that finds TCP full takes nothing, so
//    two calls' worth covers them.
// So while anything is in flight, acknowledged >= sent - SIOCOUTQ - kInFlightSlack. When the
// queue was empty at two polls in a row with nothing spliced between, the kernel had a poll
// interval to push what it held and TCP has none of it: everything sent is acknowledged. The
// bound never goes back (acknowledgements do not un-happen). One per connection.
class AckBound {
 public:
  // A splice moved `plain` bytes into the socket.
  void sent(uint64_t plain) {
    sent_ += plain;
    if (plain > 0) sent_since_poll_ = true;
  }
  // One poll with SIOCOUTQ = `outq`; returns the plaintext known acknowledged (monotonic).
  uint64_t poll(uint64_t outq);
  uint64_t plainSent() const { return sent_; }
  uint64_t acknowledged() const { return acked_; }

 private:
  uint64_t sent_ = 0;
  uint64_t acked_ = 0;
  bool sent_since_poll_ = false;
  bool empty_at_last_poll_ = false;
};

}  // namespace logsplice::outputs::ktls
