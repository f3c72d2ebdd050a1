#include "outputs/mirror_sink.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "outputs/mirror_protocol.h"
#include "outputs/tcp_sink.h"
#include "outputs/tls_session.h"
#include "sys/splice.h"

namespace logsplice::outputs {
namespace {

// Bytes from the collector waiting to be parsed: a header and the largest control body.
constexpr size_t kMaxInbound = mirror::kHeaderBytes + mirror::kMaxControlBody;
// Streams kept open with nothing pending before the idle ones are closed.
constexpr size_t kIdleStreamsKept = 16;
// Userspace TLS: payload read out of the pipe per read(2) (four full records).
constexpr uint64_t kTlsReadBytes = 4 * ktls::kRecordPlain;
// The pipe asked at least: a DATA frame carries what the pipe holds of one file, so a larger
// pipe means fewer frames, and the collector handles each frame with its own header read and
// splice into the mirror. 1 MiB (pipe-max-size for unprivileged users) instead of the default
// 256 KiB cut the collector's CPU per GB by ~10% (4 agents catching up, bench `collect`). A
// kernel that grants less leaves the pipe smaller, as for any sink.
constexpr size_t kMinPipeBytes = 1 << 20;

std::string randomInstance() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) | rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

MirrorSink::MirrorSink(uv_loop_t* loop, std::string name, const config::LogspliceOutput& cfg,
                       std::string host, SinkListener& listener, size_t pipe_bytes,
                       sys::SysCalls& sys)
    : StreamSink(name, listener, sys),
      cfg_(cfg),
      host_(std::move(host)),
      instance_(randomInstance()),
      pipe_bytes_(std::max(pipe_bytes, kMinPipeBytes)),
      loop_(loop),
      conn_(loop, name, cfg.tcp, *this) {}

SinkState MirrorSink::state() const {
  SinkState s = sinkStateOf(conn_.state());
  return s == SinkState::kConnected && !session_up_ ? SinkState::kConnecting : s;
}

sys::Error MirrorSink::start() {
  auto pipe = sys::Pipe::create(pipe_bytes_);
  if (!pipe.ok()) return pipe.error();
  pipe_ = std::move(pipe.value());
  dev_null_.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (!dev_null_) return sys::Error::fromErrno(errno, "/dev/null");
  if (cfg_.tcp.tls) {
    plan_ = ktls::plan(cfg_.tcp.tls->ktls, true, kernelHasKtls());
    if (!plan_.refusal.empty()) {
      return sys::Error::invalidConfig("output '" + name() + "': " + plan_.refusal);
    }
    if (!tls_ctx_) {
      auto ctx = TlsContext::create(name(), *cfg_.tcp.tls);
      if (!ctx.ok()) return ctx.error();
      tls_ctx_ = std::move(ctx.value());
    }
  }
  return conn_.start();
}

void MirrorSink::stop() {
  conn_.stop();
  tls_.reset();
}

sys::Error MirrorSink::reloadTls() {
  if (!tls_ctx_) return sys::Error::ok();
  return tls_ctx_->reload();
}

void MirrorSink::collectMetrics(sys::MetricWriter& w) const {
  Sink::collectMetrics(w);
  if (!cfg_.tcp.tls) return;
  const sys::MetricLabels by_output = {{"output", name()}};
  w.counter("logsplice_tls_handshake_failures_total", "TLS handshakes that failed.", by_output,
            static_cast<double>(handshake_failures_));
  w.gauge("logsplice_tls_ktls", "1 when the kernel encrypts (kTLS), 0 for userspace TLS.",
          by_output, ktlsInUse() ? 1 : 0);
}

void MirrorSink::close(std::function<void()> on_closed) {
  stop();
  conn_.close(std::move(on_closed));
}

void MirrorSink::fail(const std::string& why) {
  failed_ = true;
  down_explained_ = true;
  conn_.fail(why, 0);
}

void MirrorSink::connectionUp() {
  ++stats_.connects;
  session_up_ = false;
  failed_ = false;
  streams_.clear();
  by_id_.clear();
  in_.clear();
  out_.clear();
  frame_left_ = 0;
  tls_.reset();
  tls_kernel_ = false;
  down_explained_ = false;
  if (!tls_ctx_) {
    sendHello();
    return;
  }
  SSL* ssl = SSL_new(tls_ctx_->get());
  if (ssl == nullptr) {
    fail(opensslError("SSL_new failed"));
    return;
  }
  const config::TlsConfig& t = *cfg_.tcp.tls;
  configureClientSsl(ssl, conn_.currentAddress().host, t.server_name, t.verify);
  if (plan_.try_kernel) ktls::request(ssl);
  // OpenSSL reads and writes the socket itself: only then can it hand the keys to the kernel.
  SSL_set_fd(ssl, conn_.fd());
  SSL_set_connect_state(ssl);
  tls_ = std::make_unique<SocketTls>(ssl);
  handshake_started_ms_ = uv_now(loop_);
  stepHandshake();
}

void MirrorSink::sendHello() {
  out_ = mirror::encodeHello({mirror::kVersion, host_, instance_, cfg_.token});
  stats_.bytes_copied += out_.size();
  failed_ = false;
  if (!flushOut() && !failed_) conn_.wantWritable(true);
}

void MirrorSink::tlsFailed(std::string why, bool handshake) {
  if (handshake) ++handshake_failures_;
  fail(why);  // logs the reason and backs off
}

void MirrorSink::stepHandshake() {
  switch (tls_->handshake()) {
    case SocketTls::Io::kWant:
      conn_.wantWritable(tls_->wantsWrite());
      return;
    case SocketTls::Io::kClosed:
    case SocketTls::Io::kFailed:
      tlsFailed(tls_->failure(), true);
      return;
    case SocketTls::Io::kOk:
      break;
  }
  const bool kernel = ktls::sendActive(tls_->ssl());
  const std::string what = tls_->negotiated();
  switch (ktls::afterHandshake(cfg_.tcp.tls->ktls, kernel)) {
    case ktls::Outcome::kRefuse:
      tlsFailed(ktls::refusalAfterHandshake(what), true);
      return;
    case ktls::Outcome::kKernel:
      tls_kernel_ = true;
      break;
    case ktls::Outcome::kUserspace:
      tls_kernel_ = false;
      break;
  }
  spdlog::info("output '{}': TLS established with {} ({}, {})", name_, conn_.currentPeer(), what,
               tls_kernel_        ? "kernel TLS: payload spliced into the socket"
               : plan_.try_kernel ? "userspace TLS: OpenSSL did not enable kTLS send"
                                  : "userspace TLS: " + plan_.why_userspace);
  // Under TLS 1.3 the collector checks our certificate after our handshake ends: a refusal
  // arrives as an alert instead of HELLO_OK, and nothing is delivered before HELLO_OK.
  sendHello();
}

bool MirrorSink::connectionReadable() {
  if (!tls_) return false;
  if (!tls_->established()) {
    stepHandshake();
    return true;
  }
  char buf[4096];
  // Bounded: the collector's messages are small, and OpenSSL buffers at most one record.
  for (int i = 0; i < 64 && tls_; ++i) {
    size_t n = 0;
    SocketTls::Io io = tls_->recv(buf, sizeof buf, &n);
    if (io == SocketTls::Io::kOk) {
      connectionData(buf, n);
      if (conn_.state() != TcpConnection::State::kConnected) return true;
      continue;
    }
    if (io == SocketTls::Io::kWant) {
      // A write that waited for a read (renegotiation, key update) can go on.
      if (tls_->wantsWrite() || !out_.empty() || frame_left_ > 0) drain();
      return true;
    }
    // Refused before HELLO_OK (TLS 1.3: our certificate, after our side of the handshake).
    tlsFailed(io == SocketTls::Io::kClosed ? "the collector closed the TLS session"
                                           : tls_->failure(),
              !session_up_);
    return true;
  }
  return true;
}

void MirrorSink::connectionDown(bool was_connected) {
  if (was_connected) ++stats_.disconnects;
  const bool was_up = session_up_;
  session_up_ = false;
  streams_.clear();
  by_id_.clear();
  out_.clear();
  in_.clear();
  frame_left_ = 0;
  if (tls_ && tls_->established() && !was_up && !down_explained_) {
    // Dropped (often a reset, before its alert could be read) between our side of the
    // handshake and HELLO_OK: under TLS 1.3 that is how a refused client certificate looks.
    ++handshake_failures_;
    spdlog::warn(
        "output '{}': the collector closed the connection right after the TLS handshake (did "
        "it refuse our client certificate?) ({})",
        name_, conn_.currentPeer());
  }
  tls_.reset();
  tls_kernel_ = false;
  rewindUnacknowledged();
}

void MirrorSink::connectionAckTick() {
  if (tls_ && !tls_->established() &&
      uv_now(loop_) - handshake_started_ms_ > static_cast<uint64_t>(cfg_.tcp.connect_timeout.count())) {
    tlsFailed("TLS handshake timed out", true);
    return;
  }
  if (!session_up_ || keepalive_ms_ == 0) return;
  if (uv_now(loop_) - last_send_ms_ < keepalive_ms_ || frame_left_ > 0 || !out_.empty()) return;
  out_ = mirror::encodeSimple(mirror::Type::kKeepalive, 0, 0);
  stats_.bytes_copied += out_.size();
  failed_ = false;
  if (!flushOut() && !failed_) conn_.wantWritable(true);
}

bool MirrorSink::flushOut() {
  if (tls_ && !tls_kernel_) {
    if (!tls_->established()) return out_.empty();
    const size_t before = out_.size();
    SocketTls::Io io = tls_->send(out_);
    if (out_.size() != before) last_send_ms_ = uv_now(loop_);
    if (io == SocketTls::Io::kOk) return true;
    if (io != SocketTls::Io::kWant) {
      failed_ = true;
      conn_.fail(tls_->failure(), 0);
    }
    return false;
  }
  // Plain TCP, or kernel TLS (the kernel encrypts what send() gives it).
  while (!out_.empty()) {
    ssize_t n = ::send(conn_.fd(), out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      out_.erase(0, static_cast<size_t>(n));
      last_send_ms_ = uv_now(loop_);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    failed_ = true;
    conn_.fail("send", n < 0 ? errno : EPIPE);
    return false;
  }
  return true;
}

bool MirrorSink::discard(uint64_t n) {
  while (n > 0) {
    auto r = sys::splicePipeToFd(sys_, pipe_.readFd(), dev_null_.get(), nullptr,
                                 static_cast<size_t>(std::min(n, drainable())), false);
    if (!r.ok() || r.value() == 0) return false;
    stream_written_ += r.value();
    n -= r.value();
  }
  return true;
}

MirrorSink::Stream* MirrorSink::streamFor(const Segment& seg) {
  Key key{seg.file_id, seg.generation};
  auto it = streams_.find(key);
  if (it != streams_.end()) return it->second.open ? &it->second : nullptr;
  if (streams_.size() >= max_streams_ && !freeStreamSlot(key)) return nullptr;
  Stream st;
  while (next_id_ == 0 || by_id_.count(next_id_)) ++next_id_;
  st.id = next_id_++;
  mirror::Open m;
  if (seg.source) {
    m.dev = seg.source->dev;
    m.ino = seg.source->ino;
    m.fingerprint = seg.source->fingerprint;
    m.fingerprint_len = seg.source->fingerprint_len;
    m.input = seg.source->input;
    m.path = seg.source->path;
  }
  m.generation = seg.generation;
  std::string msg = mirror::encodeOpen(st.id, m);
  stats_.bytes_copied += msg.size();
  out_ += msg;
  by_id_[st.id] = key;
  streams_[key] = st;
  return nullptr;
}

void MirrorSink::drain() {
  if (conn_.state() != TcpConnection::State::kConnected) return;
  if (tls_ && !tls_->established()) return;  // the handshake owns the poll
  failed_ = false;
  bool moved = false;
  bool waiting_open = false;
  for (;;) {
    if (!flushOut()) {
      if (failed_) return;
      break;
    }
    if (!session_up_) break;
    if (frame_left_ > 0 && tls_ && !tls_kernel_) {
      if (!readPayload()) break;
      moved = true;
      continue;
    }
    if (frame_left_ > 0) {
      auto r = spliceOut(conn_.fd(), nullptr, frame_left_);
      if (!r.ok()) {
        if (r.error().code() == sys::ErrorCode::kWouldBlock) break;
        failed_ = true;
        conn_.fail("send", r.error().sysErrno());
        return;
      }
      if (r.value() == 0) break;
      frame_left_ -= r.value();
      last_send_ms_ = uv_now(loop_);
      moved = true;
      continue;
    }
    uint64_t left = 0;
    const Segment* seg = unwrittenSegment(&left);
    if (!seg) break;
    uint64_t pos = seg->streamBytes() - left;
    uint64_t nf = seg->newline_first ? 1 : 0;
    if (pos < nf || pos - nf >= seg->length) {
      // A newline the router added: not the file's, not the mirror's.
      if (!discard(pos < nf ? 1 : left)) break;
      moved = true;
      continue;
    }
    Stream* st = streamFor(*seg);
    if (!st) {
      waiting_open = true;
      if (!flushOut() && failed_) return;
      break;
    }
    uint64_t fo = seg->offset + (pos - nf);
    uint64_t rem = seg->length - (pos - nf);
    if (fo < st->held) {
      // The collector holds these already (or they are on their way): never sent twice.
      if (!discard(std::min(rem, st->held - fo))) break;
      moved = true;
      continue;
    }
    if (fo > st->held) {
      // The collector holds less than where we stand (it lost data, or the file was started
      // past its beginning): resend from what it holds.
      spdlog::info("output '{}': collector holds {} bytes of {}, sending from there", name_,
                   st->held, seg->source ? seg->source->path : "?");
      auto points = streamRewindPoints();
      for (auto& p : points) {
        if (p.file_id == seg->file_id && p.generation == seg->generation) {
          p.offset = std::min(p.offset, st->held);
          p.newline_owed = false;
        }
      }
      dropInFlight(points);
      return;
    }
    uint64_t len = frameLength(seg, rem);
    out_.resize(out_.size() + mirror::kHeaderBytes);
    mirror::encodeHeader({mirror::Type::kData, st->id, fo, len},
                         out_.data() + out_.size() - mirror::kHeaderBytes);
    stats_.bytes_copied += mirror::kHeaderBytes;
    st->held = fo + len;
    frame_left_ = len;
  }
  conn_.wantWritable(!out_.empty() || (drainable() > 0 && !waiting_open && session_up_));
  updateDelivery();
  if (moved) listener_.sinkReady(*this);
}

bool MirrorSink::readPayload() {
  // out_ is empty here (flushOut sent it all): at most kTlsReadBytes of plaintext in memory.
  const uint64_t want = std::min({frame_left_, drainable(), kTlsReadBytes});
  if (want == 0) return false;
  const size_t old = out_.size();
  out_.resize(old + static_cast<size_t>(want));
  ssize_t n;
  do {
    n = ::read(pipe_.readFd(), out_.data() + old, static_cast<size_t>(want));
  } while (n < 0 && errno == EINTR);
  out_.resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
  if (n <= 0) return false;  // the fill is registered but its bytes are not in the pipe yet
  const auto got = static_cast<uint64_t>(n);
  stats_.bytes_copied += got;
  stats_.bytes_sent += got;
  stream_written_ += got;
  frame_left_ -= got;
  return true;
}

uint64_t MirrorSink::frameLength(const Segment* first, uint64_t rem) const {
  // Segments that continue the same file in the pipe leave as one frame: fewer headers, and
  // fewer, larger splices on the collector.
  uint64_t len = rem;
  const Segment* prev = first;
  bool after = false;
  for (const Segment& s : segments_) {
    if (!after) {
      after = &s == first;
      continue;
    }
    if (len >= max_frame_ || prev->newline || s.newline_first || s.file_id != first->file_id ||
        s.generation != first->generation || s.offset != prev->offset + prev->length) {
      break;
    }
    len += s.length;
    prev = &s;
  }
  return std::min(len, max_frame_);
}

void MirrorSink::updateDelivery() {
  uint64_t pos = head_stream_pos_;
  uint64_t target = stream_delivered_;
  for (const Segment& seg : segments_) {
    auto it = streams_.find(Key{seg.file_id, seg.generation});
    uint64_t acked = it == streams_.end() ? 0 : it->second.acked;
    uint64_t nf = seg.newline_first ? 1 : 0;
    if (acked >= seg.offset + seg.length) {
      pos += seg.streamBytes();
      target = pos;
      continue;
    }
    if (acked > seg.offset) target = pos + nf + (acked - seg.offset);
    break;
  }
  target = std::min(target, stream_written_);
  if (target > stream_delivered_) deliveredUpTo(target);
}

void MirrorSink::closeStream(std::map<Key, Stream>::iterator it) {
  std::string msg = mirror::encodeSimple(mirror::Type::kClose, it->second.id, it->second.held);
  stats_.bytes_copied += msg.size();
  out_ += msg;
  by_id_.erase(it->second.id);
  streams_.erase(it);
}

void MirrorSink::closeIdleStreams() {
  if (streams_.size() <= kIdleStreamsKept || frame_left_ > 0) return;
  for (auto it = streams_.begin(); it != streams_.end();) {
    const Stream& st = it->second;
    auto next = std::next(it);
    if (st.open && st.acked >= st.held && !holdsFile(it->first.first)) closeStream(it);
    it = next;
  }
}

bool MirrorSink::freeStreamSlot(const Key& keep) {
  // A stream whose bytes are all acknowledged can go even if more of its file waits in the
  // pipe behind the head: it is opened again when its turn comes. (Waiting until nothing of it
  // is queued could wait for ever: the pipe drains in order.)
  for (auto it = streams_.begin(); it != streams_.end(); ++it) {
    if (it->first != keep && it->second.open && it->second.acked >= it->second.held) {
      closeStream(it);
      return true;
    }
  }
  return false;
}

void MirrorSink::connectionData(const char* data, size_t len) {
  in_.append(data, len);
  size_t used = 0;
  while (in_.size() - used >= mirror::kHeaderBytes) {
    auto h = mirror::decodeHeader(in_.data() + used);
    if (!h || !mirror::lengthAllowed(*h, 0) || h->type == mirror::Type::kData) {
      fail("malformed message from the collector");
      return;
    }
    if (in_.size() - used < mirror::kHeaderBytes + h->length) break;
    if (!handleMessage(in_.data() + used, in_.data() + used + mirror::kHeaderBytes,
                       static_cast<size_t>(h->length))) {
      return;
    }
    used += mirror::kHeaderBytes + static_cast<size_t>(h->length);
  }
  in_.erase(0, used);
  if (in_.size() > kMaxInbound) {
    fail("collector sent an over-long message");
    return;
  }
  updateDelivery();
  closeIdleStreams();
  drain();
}

bool MirrorSink::handleMessage(const char* header, const char* body, size_t body_len) {
  mirror::Header h = *mirror::decodeHeader(header);
  std::string_view b(body, body_len);
  switch (h.type) {
    case mirror::Type::kHelloOk: {
      std::string why;
      auto ok = mirror::decodeHelloOk(b, &why);
      if (!ok || ok->max_frame == 0 || session_up_) {
        fail("bad HELLO_OK from the collector: " + (why.empty() ? "unexpected" : why));
        return false;
      }
      session_up_ = true;
      max_frame_ = std::min<uint64_t>(ok->max_frame, mirror::kMaxFrameHardCap);
      max_streams_ = std::max<uint32_t>(ok->max_streams, 1);
      keepalive_ms_ = std::max<uint64_t>(ok->idle_timeout_ms / 3, 50);
      spdlog::info("output '{}': session up with {} (host '{}', instance {})", name_,
                   conn_.currentPeer(), host_, instance_);
      listener_.sinkReady(*this);
      return conn_.state() == TcpConnection::State::kConnected;
    }
    case mirror::Type::kOpened:
    case mirror::Type::kAck: {
      auto id = by_id_.find(h.stream);
      if (id == by_id_.end()) {
        if (h.type == mirror::Type::kAck) return true;  // a stream we closed meanwhile
        fail("collector answered an unknown stream");
        return false;
      }
      Key key = id->second;
      Stream& st = streams_[key];
      st.acked = std::max(st.acked, h.offset);
      if (h.type == mirror::Type::kOpened) {
        st.open = true;
        st.held = std::max(st.held, h.offset);
        // The router need not read again what the collector holds (the sink would drop it).
        if (h.offset > 0) listener_.sinkHolds(*this, key.first, key.second, h.offset);
      }
      return true;
    }
    case mirror::Type::kKeepalive:
      return true;
    case mirror::Type::kError:
      fail("collector refused: " + std::string(b.substr(0, mirror::kMaxReasonBytes)) + " (code " +
           std::to_string(h.offset) + ")");
      return false;
    default:
      fail("unexpected message type " + std::to_string(static_cast<int>(h.type)) +
           " from the collector");
      return false;
  }
}

}  // namespace logsplice::outputs
