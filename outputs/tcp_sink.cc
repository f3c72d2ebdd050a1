#include "outputs/tcp_sink.h"

namespace logsplice::outputs {

SinkState sinkStateOf(TcpConnection::State s) {
  switch (s) {
    case TcpConnection::State::kConnecting:
      return SinkState::kConnecting;
    case TcpConnection::State::kConnected:
      return SinkState::kConnected;
    case TcpConnection::State::kBackoff:
      return SinkState::kBackoff;
    case TcpConnection::State::kStopped:
      return SinkState::kStopped;
  }
  return SinkState::kStopped;
}

TcpSink::TcpSink(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg,
                 SinkListener& listener, size_t pipe_bytes, sys::SysCalls& sys)
    : StreamSink(name, listener, sys), pipe_bytes_(pipe_bytes), conn_(loop, name, cfg, *this) {}

sys::Error TcpSink::start() {
  auto pipe = sys::Pipe::create(pipe_bytes_);
  if (!pipe.ok()) return pipe.error();
  pipe_ = std::move(pipe.value());
  return conn_.start();
}

void TcpSink::connectionUp() {
  ++stats_.connects;
  drain();
  listener_.sinkReady(*this);
}

void TcpSink::connectionDown(bool was_connected) {
  if (was_connected) ++stats_.disconnects;
  rewindUnacknowledged();
}

void TcpSink::drain() {
  if (!canDeliver()) return;
  bool moved = false;
  if (auto err = spliceAll(conn_.fd(), &moved)) {
    conn_.fail("send", err.sysErrno());
    return;
  }
  conn_.wantWritable(drainable() > 0);
  // Acknowledgements are read by the ack tick (every 100 ms), not after each send: right after
  // a send the queue still holds it, and two syscalls per send were a tenth of live-tail CPU.
  if (moved) listener_.sinkReady(*this);
}

void TcpSink::updateAcks() {
  auto unacked = conn_.unacknowledged();
  if (!unacked || *unacked > stream_written_) return;
  deliveredUpTo(stream_written_ - *unacked);
}

void TcpSink::stop() {
  updateAcks();
  conn_.stop();
}

void TcpSink::close(std::function<void()> on_closed) {
  stop();
  conn_.close(std::move(on_closed));
}

}  // namespace logsplice::outputs
