#include "agent/collect/collect_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "sys/host_port.h"

namespace logsplice::agent::collect {
namespace {

namespace mp = outputs::mirror;

constexpr uint64_t kHelloTimeoutMs = 10000;

}  // namespace

CollectServer::CollectServer(uv_loop_t* loop, config::CollectConfig cfg, sys::SysCalls& sys)
    : loop_(loop), cfg_(std::move(cfg)), sys_(sys), store_(cfg_.dir) {}

CollectServer::~CollectServer() {
  stop();
}

const std::string* CollectServer::tokenFor(const std::string& host) const {
  auto it = cfg_.tokens.find(host);
  if (it == cfg_.tokens.end()) it = cfg_.tokens.find("*");
  return it == cfg_.tokens.end() ? nullptr : &it->second;
}

sys::Error CollectServer::start() {
  if (cfg_.tls) {
    auto ctx = buildCollectTlsContext(*cfg_.tls);
    if (!ctx.ok()) return ctx.error();
    tls_ctx_ = std::move(ctx.value());
  }
  if (auto err = store_.load()) return err;
  refreshFree();
  if (cfg_.min_free > 0 && free_bytes_ <= cfg_.min_free) {
    spdlog::warn(
        "collect: {}: {} bytes free, limits.min_free is {}: no mirror is written until "
        "there is more",
        cfg_.dir, free_bytes_, cfg_.min_free);
  }
  auto addr = sys::numericAddress(cfg_.listen);
  if (!addr.ok()) return addr.error();
  const sockaddr_storage& ss = addr.value();
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return sys::Error::fromErrno(errno, "socket");
  listen_fd_.reset(fd);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len = ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0 || ::listen(fd, 1024) != 0) {
    return sys::Error::fromErrno(errno, "listen on " + cfg_.listen.toString());
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (int rc = listen_poll_.init(uv_poll_init_socket, loop_, this, fd); rc != 0) {
    return sys::Error::io(std::string("uv_poll_init_socket: ") + uv_strerror(rc));
  }
  uv_poll_start(listen_poll_.get(), UV_READABLE, [](uv_poll_t* p, int status, int) {
    if (p->data && status == 0) static_cast<CollectServer*>(p->data)->onAccept();
  });
  auto ms = static_cast<uint64_t>(cfg_.fsync_interval.count());
  if (sync_timer_.init(uv_timer_init, loop_, this) != 0 ||
      sweep_timer_.init(uv_timer_init, loop_, this) != 0 ||
      reaper_.init(uv_idle_init, loop_, this) != 0) {
    return sys::Error::io("collect: cannot create timers");
  }
  uv_timer_start(
      sync_timer_.get(), [](uv_timer_t* t) { static_cast<CollectServer*>(t->data)->syncNow(); }, ms,
      ms);
  uint64_t sweep_ms = std::max<uint64_t>(50, static_cast<uint64_t>(cfg_.idle_timeout.count()) / 4);
  uv_timer_start(
      sweep_timer_.get(), [](uv_timer_t* t) { static_cast<CollectServer*>(t->data)->sweep(); },
      sweep_ms, sweep_ms);
  spdlog::info("collect: listening on {} (port {}), mirrors in {}", cfg_.listen.toString(), port_,
               cfg_.dir);
  return sys::Error::ok();
}

void CollectServer::stop() {
  if (!listen_fd_) return;
  if (!sync_work_) {
    // A last sync on this thread; with one in flight, its completion acks nobody any more.
    auto job = store_.prepareSync();
    if (job) {
      job->run();
      syncDone(*job);
    }
  }
  for (auto& [id, c] : conns_) c->shutdown();
  conns_.clear();
  dropped_.clear();
  listen_poll_.close();
  listen_fd_.reset();
  sync_timer_.close();
  sweep_timer_.close();
  reaper_.close();
}

void CollectServer::onAccept() {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: stop accepting until the next sweep instead of spinning.
        spdlog::warn("collect: accept: {}; pausing accepts", std::strerror(errno));
        uv_poll_stop(listen_poll_.get());
        accept_paused_ = true;
      }
      return;
    }
    sys::UniqueFd sock(fd);
    std::string peer = sys::socketAddressText(ss);
    if (conns_.size() >= cfg_.max_connections) {
      ++refused_;
      spdlog::warn("collect: {}: refused, already {} connections (limits.max_connections)", peer,
                   conns_.size());
      std::string err = mp::encodeError(mp::ErrorCode::kLimit, "too many connections");
      (void)!::send(fd, err.data(), err.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      continue;
    }
    uint64_t id = next_id_++;
    auto c = std::make_unique<CollectConnection>(*this, loop_, std::move(sock), peer, id);
    if (auto err = c->start()) {
      spdlog::warn("collect: {}: {}", peer, err.toString());
      continue;
    }
    conns_[id] = std::move(c);
  }
}

uint64_t CollectServer::writeRoom() const {
  if (cfg_.min_free == 0) return UINT64_MAX;
  return free_bytes_ > cfg_.min_free ? free_bytes_ - cfg_.min_free : 0;
}

void CollectServer::refreshFree() {
  struct statvfs st {};
  if (::statvfs(cfg_.dir.c_str(), &st) != 0) return;  // keep the estimate; writes still report
  free_bytes_ = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

void CollectServer::wrote(uint64_t n) {
  free_bytes_ = free_bytes_ > n ? free_bytes_ - n : 0;
  unsynced_bytes_ += n;
  if (unsynced_bytes_ >= cfg_.fsync_bytes) {
    unsynced_bytes_ = 0;
    // Not from inside the connection's read loop: the acks go out from the timer.
    auto ms = static_cast<uint64_t>(cfg_.fsync_interval.count());
    uv_timer_start(
        sync_timer_.get(), [](uv_timer_t* t) { static_cast<CollectServer*>(t->data)->syncNow(); },
        0, ms);
  }
}

// The sync in flight on libuv's thread pool; `server` is cleared when the server goes first.
struct CollectServer::SyncWork {
  uv_work_t req;
  std::unique_ptr<SyncJob> job;
  CollectServer* server;
};

void CollectServer::syncNow() {
  unsynced_bytes_ = 0;
  if (sync_work_ || !store_.dirty()) return;  // one at a time: the next tick takes the rest
  // Near min_free, no blocks are reserved ahead of the writes: the room is kept for the data.
  auto job = store_.prepareSync(writeRoom() > 4 * MirrorStore::kPreallocateBytes);
  if (!job) return;
  auto* work = new SyncWork{uv_work_t{}, std::move(job), this};
  work->req.data = work;
  // fdatasync can take long on a busy disk: off the loop, so that no agent waits for it.
  int rc = uv_queue_work(
      loop_, &work->req, [](uv_work_t* req) { static_cast<SyncWork*>(req->data)->job->run(); },
      [](uv_work_t* req, int) {
        std::unique_ptr<SyncWork> w(static_cast<SyncWork*>(req->data));
        if (w->server) w->server->syncDone(*w->job);
      });
  if (rc != 0) {
    work->job->err = sys::Error::io(std::string("uv_queue_work: ") + uv_strerror(rc));
    syncDone(*work->job);
    delete work;
    return;
  }
  sync_work_ = work;
}

void CollectServer::syncDone(SyncJob& job) {
  sync_work_ = nullptr;
  refreshFree();
  auto err = store_.finishSync(job, [&](MirrorFile& f) {
    if (f.owner) static_cast<CollectConnection*>(f.owner)->synced(f);
  });
  if (err) {
    if (!sync_failing_) spdlog::warn("collect: sync: {}; not acknowledging", err.toString());
    sync_failing_ = true;
  } else if (sync_failing_) {
    spdlog::info("collect: sync works again");
    sync_failing_ = false;
  }
}

void CollectServer::drop(CollectConnection* c) {
  auto it = conns_.find(c->id());
  if (it == conns_.end()) return;
  c->shutdown();
  dropped_[c->id()] = std::move(it->second);
  conns_.erase(it);
  // Freed on the next loop iteration: the connection may be on the stack now.
  uv_idle_start(reaper_.get(), [](uv_idle_t* h) { static_cast<CollectServer*>(h->data)->reap(); });
}

void CollectServer::reap() {
  dropped_.clear();
  uv_idle_stop(reaper_.get());
}

void CollectServer::takeOver(MirrorFile* f, CollectConnection* by) {
  if (!f->owner || f->owner == by) return;
  auto* old = static_cast<CollectConnection*>(f->owner);
  old->abort(mp::ErrorCode::kBadStream,
             "stream " + f->rel + " opened again by a newer connection (" + by->peer() + ")");
  // A connection that could not be dropped still must not write it any more.
  f->owner = nullptr;
}

void CollectServer::sweep() {
  if (accept_paused_) {
    accept_paused_ = false;
    uv_poll_start(listen_poll_.get(), UV_READABLE, [](uv_poll_t* p, int status, int) {
      if (p->data && status == 0) static_cast<CollectServer*>(p->data)->onAccept();
    });
  }
  uint64_t now = uv_now(loop_);
  auto limit = static_cast<uint64_t>(cfg_.idle_timeout.count());
  std::vector<CollectConnection*> stale;
  // A connection that has not said who it is gets at most 10 s: a flood of silent connections
  // must not hold the max_connections slots for a whole idle_timeout.
  uint64_t hello_limit = std::min<uint64_t>(limit, kHelloTimeoutMs);
  for (auto& [id, c] : conns_) {
    uint64_t l = c->authenticated() ? limit : hello_limit;
    if (!c->paused() && now - c->lastActivityMs() >= l) stale.push_back(c.get());
  }
  for (CollectConnection* c : stale) {
    std::string what = c->midMessage()       ? "stalled in the middle of a message"
                       : !c->authenticated() ? "sent no HELLO"
                                             : "idle";
    c->abort(mp::ErrorCode::kTimeout,
             what + " for " + std::to_string(now - c->lastActivityMs()) + " ms (idle_timeout)");
  }
}

void CollectServer::collectMetrics(sys::MetricWriter& w) const {
  w.gauge("logsplice_collect_connections", "Agent connections open.", {},
          static_cast<double>(conns_.size()));
  w.counter("logsplice_collect_refused_connections_total",
            "Connections refused over limits.max_connections.", {}, static_cast<double>(refused_));
  w.gauge("logsplice_collect_streams", "Streams in the index.", {},
          static_cast<double>(store_.size()));
  std::map<std::string, size_t> open_streams;
  for (const auto& [id, c] : conns_) {
    if (c->authenticated()) open_streams[c->host()] += c->streams();
  }
  // The ack lag: bytes written to a host's mirrors that the next sync makes durable.
  std::map<std::string, uint64_t> unsynced;
  store_.forEach([&](const MirrorFile& f) {
    if (f.fd && f.written > f.durable) unsynced[f.key.host] += f.written - f.durable;
  });
  for (const auto& [host, s] : hosts_) {
    sys::MetricLabels l = {{"host", host}};
    w.gauge("logsplice_collect_unsynced_bytes",
            "Bytes written to the host's mirrors, not yet durable nor acknowledged.", l,
            static_cast<double>(unsynced[host]));
    w.gauge("logsplice_collect_open_streams", "Streams open on the host's connections.", l,
            static_cast<double>(open_streams[host]));
    w.counter("logsplice_collect_bytes_total", "Payload bytes written to mirrors.", l,
              static_cast<double>(s.bytes));
    w.counter("logsplice_collect_replayed_bytes_total",
              "Payload bytes discarded as replays (already held).", l,
              static_cast<double>(s.replayed));
    w.counter("logsplice_collect_acked_bytes_total", "Durable bytes acknowledged.", l,
              static_cast<double>(s.acked));
    w.counter("logsplice_collect_sessions_total", "Sessions accepted.", l,
              static_cast<double>(s.connections));
    w.gauge("logsplice_collect_last_ack_timestamp_seconds", "Unix time of the last ack.", l,
            static_cast<double>(s.last_ack_unix));
  }
  w.gauge("logsplice_collect_free_bytes",
          "Free space of the mirrors' filesystem (statvfs after the last sync, less writes since).",
          {}, static_cast<double>(free_bytes_ == UINT64_MAX ? 0 : free_bytes_));
  size_t paused = 0;
  for (const auto& [id, c] : conns_) paused += c->paused() ? 1 : 0;
  w.gauge("logsplice_collect_paused_connections",
          "Connections paused for space (ENOSPC, EDQUOT or under limits.min_free).", {},
          static_cast<double>(paused));
  // Without TLS the collector never reads payload into its memory (headers and control bodies
  // only); with collect.tls the payload is decrypted in userspace and counted here.
  w.counter("logsplice_collect_bytes_copied_total",
            "Payload bytes the collector moved through its own memory (0: splice only).", {},
            static_cast<double>(copied_));
}

}  // namespace logsplice::agent::collect
