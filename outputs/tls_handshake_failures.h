#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>

#include "sys/metrics.h"

namespace logsplice::outputs {

// The handshake failures of one TLS output: each connection counted at most once, the last
// reason kept (for `status` and tests), each distinct reason logged once in a row. Shared by
// the TLS sinks so that a refused certificate reads and counts the same on every output type.
class TlsHandshakeFailures {
 public:
  // A new connection starts: it has not been counted yet.
  void newConnection() { counted_ = false; }
  // The handshake succeeded: the next failure is news again, whatever it is.
  void established() { last_logged_.clear(); }
  // The handshake failed for `why` (the caller, or the connection it fails, logs it).
  void count(const std::string& why) {
    ++total_;
    last_ = why;
    counted_ = true;
  }
  // Whether `why` should be logged: not when it is the reason logged last.
  bool firstOf(const std::string& why) {
    if (why == last_logged_) return false;
    last_logged_ = why;
    return true;
  }
  // The collector closed (or reset, the alert unread) before showing that it took the session:
  // under TLS 1.3 that is how a refused client certificate looks. Counted and logged unless
  // this connection's failure was counted already.
  void closedAfterHandshake(const std::string& output, const std::string& peer) {
    if (counted_) return;
    count(
        "the collector closed the connection right after the TLS handshake (did it refuse our "
        "client certificate?)");
    if (firstOf(last_)) spdlog::warn("output '{}': {} ({})", output, last_, peer);
  }

  uint64_t total() const { return total_; }
  const std::string& last() const { return last_; }

 private:
  uint64_t total_ = 0;
  std::string last_;         // the last failure's reason
  std::string last_logged_;  // the last reason logged here
  bool counted_ = false;     // this connection's failure is counted
};

// The TLS families every TLS output reports: its handshake failures, and whether the kernel
// encrypts (kTLS) or userspace does.
inline void collectTlsMetrics(sys::MetricWriter& w, const std::string& output,
                              const TlsHandshakeFailures& failures, bool ktls) {
  const sys::MetricLabels by_output = {{"output", output}};
  w.counter("logsplice_tls_handshake_failures_total", "TLS handshakes that failed.", by_output,
            static_cast<double>(failures.total()));
  w.gauge("logsplice_tls_ktls", "1 when the kernel encrypts (kTLS), 0 for userspace TLS.",
          by_output, ktls ? 1 : 0);
}

}  // namespace logsplice::outputs
