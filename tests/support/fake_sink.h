#pragma once

// A Sink for router tests: it drains its pipe into a string (the test's view of the stream), can
// be told it cannot deliver (a collector down, a full disk), and acknowledges either at once
// (auto_ack) or when the test says so (ackUpTo), like a TCP peer. breakConnection() plays a
// dropped connection: everything unacknowledged is rewound through the real Sink code.

#include <unistd.h>

#include <algorithm>
#include <string>

#include "outputs/sink.h"

namespace logsplice::testing {

class FakeSink : public outputs::Sink {
 public:
  FakeSink(std::string name, outputs::SinkListener& listener, size_t pipe_bytes = 256 * 1024)
      : Sink(std::move(name), listener), pipe_bytes_(pipe_bytes) {}

  std::string received;  // every byte drained from the pipe, in order (across rewinds)
  bool auto_ack = true;
  int starts = 0;
  int drains = 0;

  outputs::SinkState state() const override {
    return deliver_ ? outputs::SinkState::kConnected : outputs::SinkState::kPaused;
  }
  sys::Error start() override {
    ++starts;
    auto p = sys::Pipe::create(pipe_bytes_);
    if (!p.ok()) return p.error();
    pipe_ = std::move(p.value());
    return sys::Error::ok();
  }
  void stop() override {}
  void close(std::function<void()> on_closed) override {
    if (on_closed) on_closed();
  }

  void setCanDeliver(bool on) {
    deliver_ = on;
    if (on) {
      drain();
      listener_.sinkReady(*this);
    }
  }
  // Acknowledges the stream up to stream position `pos` (counted since the last rewind).
  void ackUpTo(uint64_t pos) { deliveredUpTo(pos); }
  void ackAll() { deliveredUpTo(stream_written_); }
  // The connection broke: rewinds everything unacknowledged.
  void breakConnection() { rewindUnacknowledged(); }
  uint64_t written() const { return stream_written_; }
  uint64_t filled() const { return stream_filled_; }
  uint64_t deliveredStream() const { return stream_delivered_; }

 protected:
  void drain() override {
    ++drains;
    if (!deliver_) return;
    char buf[65536];
    while (drainable() > 0) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(sizeof buf, drainable()));
      ssize_t n = ::read(pipe_.readFd(), buf, want);
      if (n <= 0) break;
      received.append(buf, static_cast<size_t>(n));
      stream_written_ += static_cast<uint64_t>(n);
    }
    if (auto_ack) deliveredUpTo(stream_written_);
  }
  bool canDeliver() const override { return deliver_; }

 private:
  size_t pipe_bytes_;
  bool deliver_ = true;
};

}  // namespace logsplice::testing
