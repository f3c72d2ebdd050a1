#include "agent/collect/collect_connection.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "agent/collect/collect_server.h"
#include "agent/collect/collect_tls.h"
#include "outputs/tls_context.h"
#include "sys/sys_calls.h"

namespace logsplice::agent::collect {
namespace {

namespace mp = outputs::mirror;

// Bounds the work done for one connection per poll callback, so that one busy agent cannot
// starve the others on the loop: reads under TLS (64 KiB at most), pipe fills on plain TCP
// (the pipe's capacity at most, 1 MiB).
constexpr int kMaxReadsPerWakeup = 64;
constexpr int kMaxFillsPerWakeup = 16;
// ACKs and errors an agent does not read pile up to this, then it is dropped.
constexpr size_t kMaxOutbox = 1 << 20;
constexpr uint64_t kDiskFullRetryMs = 1000;
// TLS: decrypted payload per read into memory, then into the pipe.
constexpr size_t kTlsPayloadChunk = 64 * 1024;

int devNull() {
  static int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  return fd;
}

// Token comparison whose time does not depend on where the first difference is.
bool sameSecret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

}  // namespace

CollectConnection::CollectConnection(CollectServer& server, uv_loop_t* loop, sys::UniqueFd sock,
                                     std::string peer, uint64_t id)
    : server_(server), loop_(loop), peer_(std::move(peer)), id_(id), sock_(std::move(sock)) {
  last_activity_ms_ = uv_now(loop_);
}

CollectConnection::~CollectConnection() {
  releaseAll();
}

sys::Error CollectConnection::start() {
  auto pipe = sys::Pipe::create(1 << 20);
  if (!pipe.ok()) return pipe.error();
  pipe_ = std::move(pipe.value());
  if (int rc = poll_.init(uv_poll_init_socket, loop_, this, sock_.get()); rc != 0) {
    return sys::Error::io(std::string("uv_poll_init_socket: ") + uv_strerror(rc));
  }
  if (int rc = retry_.init(uv_timer_init, loop_, this); rc != 0) {
    return sys::Error::io(std::string("uv_timer_init: ") + uv_strerror(rc));
  }
  if (SSL_CTX* ctx = server_.tlsContext()) {
    if (int rc = more_.init(uv_timer_init, loop_, this); rc != 0) {
      return sys::Error::io(std::string("uv_timer_init: ") + uv_strerror(rc));
    }
    SSL* ssl = SSL_new(ctx);
    if (ssl == nullptr) return sys::Error::io(outputs::opensslError("SSL_new failed"));
    SSL_set_fd(ssl, sock_.get());
    SSL_set_accept_state(ssl);
    tls_ = std::make_unique<outputs::SocketTls>(ssl);
    tls_buf_.resize(kTlsPayloadChunk);
  }
  updatePoll();
  return sys::Error::ok();
}

void CollectConnection::updatePoll() {
  if (!poll_) return;
  int want = 0;
  if (phase_ != Phase::kClosing) {
    if (!paused_) want |= UV_READABLE;
    if (!out_.empty() || tls_wants_write_) want |= UV_WRITABLE;
  }
  if (want == poll_events_) return;
  poll_events_ = want;
  if (want == 0) {
    uv_poll_stop(poll_.get());
    return;
  }
  uv_poll_start(poll_.get(), want, [](uv_poll_t* p, int status, int events) {
    if (p->data) static_cast<CollectConnection*>(p->data)->onPoll(status, events);
  });
}

void CollectConnection::onPoll(int status, int events) {
  if (phase_ == Phase::kClosing) return;
  if (status < 0) {
    spdlog::info("collect: {} ({}): connection error: {}", peer_, host_, uv_strerror(status));
    server_.drop(this);
    return;
  }
  if (tls_ && tls_wants_write_ && (events & UV_WRITABLE)) {
    tls_wants_write_ = false;
    events |= UV_READABLE;  // the read (or handshake) that waited for it goes on
  }
  if (tls_ && !tls_->established()) {
    stepHandshake();
    if (phase_ == Phase::kClosing || !tls_->established()) return;
  }
  if (events & UV_WRITABLE) flushOut();
  if (phase_ != Phase::kClosing && (events & UV_READABLE)) readLoop();
}

void CollectConnection::abort(mp::ErrorCode code, const std::string& reason) {
  if (phase_ == Phase::kClosing) return;
  spdlog::warn("collect: {} (host '{}'): {}; closing the connection", peer_, host_, reason);
  out_ += mp::encodeError(code, reason);
  flushOut();
  server_.drop(this);
}

void CollectConnection::send(const std::string& msg) {
  if (phase_ == Phase::kClosing) return;
  out_ += msg;
  if (out_.size() > kMaxOutbox) {
    out_.clear();
    abort(mp::ErrorCode::kLimit, "the agent does not read its acknowledgements");
    return;
  }
  flushOut();
}

void CollectConnection::flushOut() {
  if (tls_) {
    if (!tls_->established()) return;  // nothing is queued before HELLO, which follows it
    outputs::SocketTls::Io io = tls_->send(out_);
    if (io == outputs::SocketTls::Io::kWant) {
      tls_wants_write_ = tls_->wantsWrite();
    } else if (io != outputs::SocketTls::Io::kOk) {
      out_.clear();
      if (phase_ != Phase::kClosing) {
        spdlog::info("collect: {} (host '{}'): send: {}", peer_, host_, tls_->failure());
        server_.drop(this);
      }
      return;
    }
    updatePoll();
    return;
  }
  while (!out_.empty()) {
    ssize_t n = ::send(sock_.get(), out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      out_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    out_.clear();
    if (phase_ != Phase::kClosing) {
      spdlog::info("collect: {} (host '{}'): send: {}", peer_, host_, std::strerror(errno));
      server_.drop(this);
    }
    return;
  }
  updatePoll();
}

void CollectConnection::readLoop() {
  sys::SysCalls& sys = server_.sys();
  // Plain TCP: each step fills the empty pipe with up to its capacity from the socket, across
  // frame boundaries. Few large socket reads are what makes receiving cheap: each read also
  // sends the agent a window update, and on loopback processes its reply in our time.
  const int budget = tls_ ? kMaxReadsPerWakeup : kMaxFillsPerWakeup;
  for (int step = 0; step < budget; ++step) {
    if (phase_ == Phase::kClosing || paused_) return;
    if (in_pipe_ > 0 && !consumePipe()) return;
    ssize_t n = 0;
    char tmp[mp::kMaxControlBody];
    char* dst = nullptr;
    if (!tls_) {
      sys::SysResult r = sys.splice(sock_.get(), nullptr, pipe_.writeFd(), nullptr,
                                    pipe_.capacity(), SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      n = r.failed() ? -1 : r.value;
      if (r.failed()) errno = r.err;
    } else if (data_left_ > 0) {
      n = readPayloadTls();
    } else {
      // TLS: a header or control body, read out of OpenSSL where it was decrypted.
      dst = body_need_ > 0 ? tmp : header_ + have_;
      n = readSome(dst, body_need_ > 0 ? body_need_ - body_.size() : mp::kHeaderBytes - have_);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      spdlog::info("collect: {} (host '{}'): receive: {}", peer_, host_, readError());
      server_.drop(this);
      return;
    }
    if (n == 0) {
      // The pipe is empty here: everything the agent sent before closing was handled.
      if (midMessage()) {
        spdlog::warn("collect: {} (host '{}'): closed in the middle of a message", peer_, host_);
      } else {
        spdlog::info("collect: {} (host '{}'): closed by the agent", peer_, host_);
      }
      server_.drop(this);
      return;
    }
    last_activity_ms_ = uv_now(loop_);
    if (!tls_) in_pipe_ += static_cast<uint64_t>(n);
    if (dst) takeControl(dst, static_cast<size_t>(n));
  }
  // Out of budget: what is in the pipe goes to the mirror now, not when the socket next has
  // something (the agent may be waiting for the ack of exactly these bytes).
  if (in_pipe_ > 0 && phase_ != Phase::kClosing && !paused_) consumePipe();
  // Under TLS the rest may already be decrypted in OpenSSL, where the poll cannot see it.
  if (tls_ && tls_->pending() > 0 && phase_ != Phase::kClosing && !paused_) {
    uv_timer_start(
        more_.get(),
        [](uv_timer_t* t) {
          auto* c = static_cast<CollectConnection*>(t->data);
          if (c->phase_ != Phase::kClosing && !c->paused_) c->readLoop();
        },
        0, 0);
  }
}

void CollectConnection::takeControl(const char* src, size_t n) {
  if (body_need_ > 0) {
    body_.append(src, n);
    if (body_.size() == body_need_) {
      body_need_ = 0;
      handleMessage();
    }
    return;
  }
  have_ += n;  // read in place into header_
  if (have_ == mp::kHeaderBytes) handleHeader();
}

bool CollectConnection::consumePipe() {
  while (in_pipe_ > 0 && phase_ != Phase::kClosing) {
    if (data_left_ > 0) {
      if (!writePayload()) return false;
      continue;
    }
    // Plain TCP: a header or a control body, read out of the pipe (never payload: a frame's
    // payload leaves the pipe by splice only). Under TLS the pipe holds payload only.
    char tmp[mp::kMaxControlBody];
    char* dst = body_need_ > 0 ? tmp : header_ + have_;
    size_t want = body_need_ > 0 ? body_need_ - body_.size() : mp::kHeaderBytes - have_;
    ssize_t n =
        ::read(pipe_.readFd(), dst, static_cast<size_t>(std::min<uint64_t>(want, in_pipe_)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      abort(mp::ErrorCode::kStorage,
            "cannot read our pipe: " + std::string(std::strerror(n < 0 ? errno : EIO)));
      return false;
    }
    in_pipe_ -= static_cast<uint64_t>(n);
    takeControl(dst, static_cast<size_t>(n));
  }
  return phase_ != Phase::kClosing;
}

void CollectConnection::pauseForSpace(int err) {
  // Disk full: the bytes stay in our pipe, the agent's in its files. No more reading (TCP
  // pushes back) and no acks for this connection until a write succeeds again.
  if (!paused_) {  // logged once per pause, not on every retry
    std::string why =
        err != 0 ? std::strerror(err)
                 : fmt::format("{} bytes free in {}, limits.min_free is {}", server_.freeBytes(),
                               server_.config().dir, server_.config().min_free);
    spdlog::warn("collect: {} (host '{}'): {}: {}; pausing this connection, retrying every {} ms",
                 peer_, host_, data_file_->rel, why, kDiskFullRetryMs);
  }
  paused_ = true;
  updatePoll();
  uv_timer_start(
      retry_.get(),
      [](uv_timer_t* t) {
        auto* c = static_cast<CollectConnection*>(t->data);
        if (c->phase_ == Phase::kClosing) return;
        // Paused by us, not stalled by the agent: the idle timeout does not run meanwhile.
        c->last_activity_ms_ = uv_now(c->loop_);
        c->server_.refreshFree();
        if (!c->consumePipe()) return;  // still full (paused again), or given up
        c->paused_ = false;
        spdlog::info("collect: {} (host '{}'): writing again", c->peer_, c->host_);
        c->updatePoll();
        c->readLoop();
      },
      kDiskFullRetryMs, 0);
}

bool CollectConnection::writePayload() {
  sys::SysCalls& sys = server_.sys();
  const uint64_t here = std::min(data_left_, in_pipe_);  // this frame's bytes in the pipe
  if (skip_left_ > 0) {
    // A replay: the mirror has these bytes already. Out of the pipe, never written.
    size_t n = static_cast<size_t>(std::min(skip_left_, here));
    sys::SysResult r = sys.splice(pipe_.readFd(), nullptr, devNull(), nullptr, n, 0);
    if (r.failed() || r.value == 0) {
      abort(mp::ErrorCode::kStorage,
            "cannot discard a replay: " + std::string(std::strerror(r.failed() ? r.err : EIO)));
      return false;
    }
    const auto got = static_cast<uint64_t>(r.value);
    skip_left_ -= got;
    data_left_ -= got;
    in_pipe_ -= got;
    server_.hostStats(host_).replayed += got;
    return true;
  }
  // limits.min_free: the collector stops short of filling the filesystem, so that the index
  // (rewritten on every sync) and the host keep room; below it, a pause as on ENOSPC.
  const uint64_t room = server_.writeRoom();
  if (room == 0) {
    pauseForSpace(0);
    return false;
  }
  loff_t off = static_cast<loff_t>(write_off_);
  sys::SysResult r = sys.splice(pipe_.readFd(), nullptr, data_file_->fd.get(), &off,
                                static_cast<size_t>(std::min(here, room)), SPLICE_F_MOVE);
  if (r.failed() && r.err == EINTR) return true;
  if (r.failed() && (r.err == ENOSPC || r.err == EDQUOT)) {
    pauseForSpace(r.err);
    return false;
  }
  if (r.failed() || r.value == 0) {
    abort(mp::ErrorCode::kStorage,
          "cannot write " + data_file_->rel + ": " + std::strerror(r.failed() ? r.err : EIO));
    return false;
  }
  const auto n = static_cast<uint64_t>(r.value);
  write_off_ += n;
  data_left_ -= n;
  in_pipe_ -= n;
  data_file_->written = std::max(data_file_->written, write_off_);
  server_.hostStats(host_).bytes += n;
  server_.wrote(n);
  return true;
}

void CollectConnection::handleHeader() {
  have_ = 0;
  auto h = mp::decodeHeader(header_);
  if (!h) {
    abort(mp::ErrorCode::kProtocol, "malformed header (unknown type or reserved bytes set)");
    return;
  }
  cur_ = *h;
  if (phase_ == Phase::kHello && cur_.type != mp::Type::kHello) {
    abort(mp::ErrorCode::kProtocol, "expected HELLO first");
    return;
  }
  uint64_t max_frame = server_.config().max_frame;
  if (!mp::lengthAllowed(cur_, max_frame)) {
    abort(mp::ErrorCode::kLimit,
          "message of type " + std::to_string(int(cur_.type)) + " with " +
              std::to_string(cur_.length) + " bytes (limit " +
              std::to_string(cur_.type == mp::Type::kData ? max_frame : mp::kMaxControlBody) + ")");
    return;
  }
  if (cur_.type == mp::Type::kData) {
    handleData();
    return;
  }
  body_.clear();
  body_need_ = static_cast<size_t>(cur_.length);
  if (body_need_ == 0) handleMessage();
}

void CollectConnection::handleMessage() {
  switch (cur_.type) {
    case mp::Type::kHello:
      if (phase_ != Phase::kHello) {
        abort(mp::ErrorCode::kProtocol, "second HELLO");
        return;
      }
      handleHello();
      return;
    case mp::Type::kOpen:
      handleOpen();
      return;
    case mp::Type::kClose: {
      auto it = streams_.find(cur_.stream);
      if (it == streams_.end()) {
        abort(mp::ErrorCode::kBadStream, "CLOSE of unknown stream " + std::to_string(cur_.stream));
        return;
      }
      if (it->second.file->owner == this) server_.store().release(it->second.file);
      streams_.erase(it);
      return;
    }
    case mp::Type::kKeepalive:
      return;
    case mp::Type::kError:
      spdlog::warn("collect: {} (host '{}'): the agent reported an error: {}", peer_, host_,
                   body_.substr(0, mp::kMaxReasonBytes));
      server_.drop(this);
      return;
    default:
      abort(mp::ErrorCode::kProtocol,
            "unexpected message type " + std::to_string(int(cur_.type)) + " from an agent");
      return;
  }
}

void CollectConnection::handleHello() {
  std::string why;
  auto m = mp::decodeHello(body_, &why);
  if (!m) {
    abort(mp::ErrorCode::kProtocol, "bad HELLO: " + why);
    return;
  }
  if (m->version != mp::kVersion) {
    abort(mp::ErrorCode::kVersion, "unsupported protocol version " + std::to_string(m->version));
    return;
  }
  if (!mp::validName(m->host, mp::kMaxHostBytes)) {
    abort(mp::ErrorCode::kProtocol, "bad host name in HELLO");
    return;
  }
  // A host with a token proves it by the token; a host without one, when a CA verifies
  // client certificates, by a certificate naming it (CN or a DNS SAN equal to the host name).
  const std::string* token = server_.tokenFor(m->host);
  const bool by_certificate =
      !token && tls_ && server_.config().tls && !server_.config().tls->ca_file.empty();
  if (by_certificate) {
    if (!certificateNamesHost(tls_->ssl(), m->host)) {
      abort(mp::ErrorCode::kAuth, "the client certificate does not name host '" + m->host +
                                      "' (neither its CN nor a DNS SAN)");
      return;
    }
  } else if (!token || !sameSecret(*token, m->token)) {
    abort(mp::ErrorCode::kAuth, "wrong token for host '" + m->host + "'");
    return;
  }
  host_ = m->host;
  instance_ = m->instance;
  phase_ = Phase::kReady;
  ++server_.hostStats(host_).connections;
  spdlog::info("collect: {}: host '{}' (instance {}) connected", peer_, host_, instance_);
  const auto& cfg = server_.config();
  send(mp::encodeHelloOk({mp::kVersion, static_cast<uint32_t>(cfg.idle_timeout.count()),
                          cfg.max_frame,
                          static_cast<uint32_t>(std::min<uint64_t>(cfg.max_streams, UINT32_MAX))}));
}

void CollectConnection::handleOpen() {
  std::string why;
  auto m = mp::decodeOpen(body_, &why);
  if (!m) {
    abort(mp::ErrorCode::kProtocol, "bad OPEN: " + why);
    return;
  }
  if (cur_.stream == 0 || streams_.count(cur_.stream)) {
    abort(mp::ErrorCode::kBadStream,
          "OPEN of stream id " + std::to_string(cur_.stream) + " (zero or in use)");
    return;
  }
  if (!mp::validName(m->input, mp::kMaxInputBytes)) {
    abort(mp::ErrorCode::kProtocol, "bad input name in OPEN");
    return;
  }
  if (!mp::validSourcePath(m->path)) {
    abort(mp::ErrorCode::kProtocol, "bad source path in OPEN (not absolute, empty or NUL)");
    return;
  }
  if (streams_.size() >= server_.config().max_streams) {
    abort(mp::ErrorCode::kLimit,
          "more than " + std::to_string(server_.config().max_streams) + " open streams");
    return;
  }
  StreamKey key{host_, m->input, m->dev, m->ino, m->generation};
  auto f = server_.store().open(key, m->fingerprint, m->fingerprint_len, m->path);
  if (!f.ok()) {
    abort(mp::ErrorCode::kStorage, "cannot open the mirror: " + f.error().toString());
    return;
  }
  MirrorFile* file = f.value();
  if (file->owner == this) {
    abort(mp::ErrorCode::kBadStream, "stream opened twice");
    return;
  }
  if (file->owner) {
    // The same host's newer session (the old one is half-dead): it takes the stream over.
    server_.takeOver(file, this);
    f = server_.store().open(key, m->fingerprint, m->fingerprint_len, m->path);
    if (!f.ok()) {
      abort(mp::ErrorCode::kStorage, "cannot open the mirror: " + f.error().toString());
      return;
    }
    file = f.value();
  }
  file->owner = this;
  streams_[cur_.stream] = StreamRef{file, file->durable};
  send(mp::encodeSimple(mp::Type::kOpened, cur_.stream, file->durable));
}

void CollectConnection::handleData() {
  auto it = streams_.find(cur_.stream);
  if (it == streams_.end()) {
    abort(mp::ErrorCode::kBadStream, "DATA for unknown stream " + std::to_string(cur_.stream));
    return;
  }
  MirrorFile* f = it->second.file;
  if (cur_.offset > f->written) {
    abort(mp::ErrorCode::kGap, "gap: a frame at offset " + std::to_string(cur_.offset) +
                                   " but the mirror " + f->rel + " ends at " +
                                   std::to_string(f->written));
    return;
  }
  data_file_ = f;
  data_left_ = cur_.length;
  skip_left_ = std::min(cur_.length, f->written - cur_.offset);
  write_off_ = cur_.offset + skip_left_;
}

void CollectConnection::synced(const MirrorFile& f) {
  for (auto& [id, s] : streams_) {
    if (s.file != &f || f.durable <= s.acked) continue;
    HostStats& hs = server_.hostStats(host_);
    hs.acked += f.durable - s.acked;
    hs.last_ack_unix = static_cast<int64_t>(::time(nullptr));
    s.acked = f.durable;
    send(mp::encodeSimple(mp::Type::kAck, id, f.durable));
  }
}

void CollectConnection::shutdown() {
  if (phase_ == Phase::kClosing) return;
  phase_ = Phase::kClosing;
  releaseAll();
  updatePoll();
  if (retry_) uv_timer_stop(retry_.get());
  if (more_) uv_timer_stop(more_.get());
}

void CollectConnection::releaseAll() {
  for (auto& [id, s] : streams_) {
    if (s.file->owner == this) server_.store().release(s.file);
  }
  streams_.clear();
}

}  // namespace logsplice::agent::collect
