#include "outputs/tcp_event_sink.h"

#include "outputs/tcp_sink.h"

namespace logsplice::outputs {

TcpEventSink::TcpEventSink(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg,
                           SinkListener& listener, size_t pipe_bytes,
                           std::unique_ptr<Framer> framer, Limits limits, sys::SysCalls& sys)
    : EventSink(name, listener, std::move(framer), limits, sys),
      pipe_bytes_(pipe_bytes),
      conn_(loop, name, cfg, *this) {}

SinkState TcpEventSink::state() const {
  return sinkStateOf(conn_.state());
}

sys::Error TcpEventSink::start() {
  auto pipe = sys::Pipe::create(pipe_bytes_);
  if (!pipe.ok()) return pipe.error();
  pipe_ = std::move(pipe.value());
  return conn_.start();
}

void TcpEventSink::connectionUp() {
  ++stats_.connects;
  drain();
  listener_.sinkReady(*this);
}

void TcpEventSink::connectionDown(bool was_connected) {
  if (was_connected) ++stats_.disconnects;
  rewindEvents();
}

void TcpEventSink::pollAcknowledged() {
  auto unacked = conn_.unacknowledged();
  if (!unacked || *unacked > wireWritten()) return;
  acknowledgedWire(wireWritten() - *unacked);
}

void TcpEventSink::updateAcks() {
  size_t before = eventsInFlight();
  pollAcknowledged();
  // The queue of unacknowledged events may have been what held the sink back.
  if (eventsInFlight() < before) drain();
}

void TcpEventSink::stop() {
  pollAcknowledged();
  stopEvents();  // a pending multiline event is not sent: it is read again after a restart
  conn_.stop();
}

void TcpEventSink::close(std::function<void()> on_closed) {
  stop();
  // Both close asynchronously (and may outlive this object): call back after the last one.
  auto pending = std::make_shared<int>(2);
  auto done = [pending, cb = std::move(on_closed)] {
    if (--*pending == 0 && cb) cb();
  };
  closeEvents(done);
  conn_.close(done);
}

}  // namespace logsplice::outputs
