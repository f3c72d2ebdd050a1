#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "config/config.h"
#include "outputs/event_sink.h"
#include "outputs/tcp_connection.h"

namespace logsplice::outputs {

// Framed events to a collector over TCP (syslog octet counting, JSON lines, ...: the Framer
// decides). The connection is a TcpConnection, as for the stream TcpSink; an event is delivered
// once the peer's TCP stack acknowledged its last framed byte (written minus SIOCOUTQ, read
// only while ESTABLISHED, docs/design.md K6). A broken connection rewinds each file to the first
// line of its first unacknowledged event. Loop thread only; the loop and the listener must
// outlive it.
class TcpEventSink : public EventSink, private TcpConnection::Handler {
 public:
  TcpEventSink(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg,
               SinkListener& listener, size_t pipe_bytes, std::unique_ptr<Framer> framer,
               Limits limits = {}, sys::SysCalls& sys = sys::SysCalls::real());

  SinkState state() const override;
  void refreshDelivery() override { updateAcks(); }
  sys::Error start() override;
  void stop() override;
  void close(std::function<void()> on_closed) override;
  // Reads the acknowledged byte count now, reports delivery, and drains if that made room.
  void updateAcks();
  TcpConnection& connection() { return conn_; }

 protected:
  bool canDeliver() const override { return conn_.state() == TcpConnection::State::kConnected; }
  int outFd() const override { return conn_.fd(); }
  void waitWritable(bool on) override { conn_.wantWritable(on); }
  void writeFailed(int err) override { conn_.fail("send", err); }
  void pollAcknowledged() override;

 private:
  void connectionUp() override;
  void connectionWritable() override { drain(); }
  void connectionDown(bool was_connected) override;
  void connectionAckTick() override { updateAcks(); }

  size_t pipe_bytes_;
  TcpConnection conn_;
};

}  // namespace logsplice::outputs
