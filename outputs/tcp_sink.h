#pragma once

#include <uv.h>

#include <string>

#include "config/config.h"
#include "outputs/stream_sink.h"
#include "outputs/tcp_connection.h"

namespace logsplice::outputs {

// Maps a connection's state to the sink state the router and the metrics see.
SinkState sinkStateOf(TcpConnection::State s);

// Newline-delimited lines to a collector over TCP: the pipe is spliced into the socket as it is.
// The connection (resolution, failover, backoff, keepalive) is a TcpConnection. Bytes are
// delivered when the peer's TCP stack acknowledged them (bytes written minus SIOCOUTQ, read
// only while the connection is ESTABLISHED, docs/design.md K6). When a connection breaks,
// everything unacknowledged is rewound and sent again on the next. Loop thread only; the loop
// and the listener must outlive it.
class TcpSink : public StreamSink, private TcpConnection::Handler {
 public:
  TcpSink(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg, SinkListener& listener,
          size_t pipe_bytes, sys::SysCalls& sys = sys::SysCalls::real());

  SinkState state() const override { return sinkStateOf(conn_.state()); }
  void refreshDelivery() override { updateAcks(); }
  sys::Error start() override;
  void stop() override;
  void close(std::function<void()> on_closed) override;
  // Reads the acknowledged byte count now and reports delivery.
  void updateAcks();
  const sys::HostPort& currentAddress() const { return conn_.currentAddress(); }
  TcpConnection& connection() { return conn_; }

 protected:
  void drain() override;
  bool canDeliver() const override { return conn_.state() == TcpConnection::State::kConnected; }

 private:
  void connectionUp() override;
  void connectionWritable() override { drain(); }
  void connectionDown(bool was_connected) override;
  void connectionAckTick() override { updateAcks(); }

  size_t pipe_bytes_;
  TcpConnection conn_;
};

}  // namespace logsplice::outputs
