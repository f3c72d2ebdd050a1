#pragma once

#include <uv.h>

#include <string>

#include "sys/unique_fd.h"
#include "sys/uv_handle.h"
#include "config/config.h"
#include "outputs/backoff.h"
#include "outputs/sink.h"

namespace logsplice::outputs {


// Newline-delimited lines to a collector over TCP. Connects without blocking (name resolution
// through uv_getaddrinfo, non-blocking connect with a timeout), fails over to the next address
// and backs off (jittered, exponential) between rounds. Bytes are delivered when the peer's TCP
// stack acknowledged them (bytes written minus SIOCOUTQ, read only while the connection is
// ESTABLISHED: a reset purges the send queue, which must not look like an acknowledgement).
// When a connection breaks, everything unacknowledged is rewound and sent again on the next.
// Loop thread only; the loop and the listener must outlive it.
class TcpSink : public Sink {
 public:
  TcpSink(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg, SinkListener& listener,
          size_t pipe_bytes);
  ~TcpSink() override;

  SinkState state() const override { return state_; }
  void refreshDelivery() override { updateAcks(); }
  sys::Error start() override;
  void stop() override;
  void close(std::function<void()> on_closed) override;
  // Reads the acknowledged byte count now and reports delivery.
  void updateAcks();
  const sys::HostPort& currentAddress() const;

 protected:
  void drain() override;
  bool canDeliver() const override { return state_ == SinkState::kConnected; }

 private:
  void resolveNext();
  void onResolved(int status, struct addrinfo* res);
  void onPoll(int status, int events);
  void onConnected();
  void fail(const std::string& why, int err);
  void closeConnection();
  void scheduleReconnect();
  void updatePollEvents();

  uv_loop_t* loop_;
  config::TcpOutput cfg_;
  size_t pipe_bytes_;
  Backoff backoff_;
  size_t addr_index_ = 0;
  SinkState state_ = SinkState::kStopped;
  bool stopping_ = false;
  bool outage_logged_ = false;
  int poll_events_ = 0;
  uv_getaddrinfo_t* resolving_ = nullptr;  // owned by the request until its callback runs
  sys::UvHandle<uv_poll_t> poll_;          // declared before sock_: stops before the fd closes
  sys::UniqueFd sock_;
  sys::UvHandle<uv_timer_t> timer_;  // connect timeout and backoff
  sys::UvHandle<uv_timer_t> ack_timer_;
};

}  // namespace logsplice::outputs
