#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "agent/collect/collect_connection.h"
#include "agent/collect/collect_tls.h"
#include "agent/collect/mirror_store.h"
#include "config/collect_keys.h"
#include "sys/error.h"
#include "sys/metrics.h"
#include "sys/sys_calls.h"
#include "sys/unique_fd.h"
#include "sys/uv_handle.h"

namespace logsplice::agent::collect {

// What the collector counts per host (the session's authenticated host name).
struct HostStats {
  uint64_t bytes = 0;        // payload bytes written to mirrors
  uint64_t replayed = 0;     // payload bytes discarded as replays
  uint64_t acked = 0;        // durable bytes acknowledged
  uint64_t connections = 0;  // sessions accepted
  int64_t last_ack_unix = 0;
};

// `logsplice collect`: accepts agents' connections on the loop, bounds them (max_connections,
// idle_timeout), groups fdatasync of the mirrors (fsync interval or bytes, whichever first),
// writes the index and then acknowledges. Loop thread only.
class CollectServer {
 public:
  // `sys` moves the payload (splice): tests inject ENOSPC there.
  CollectServer(uv_loop_t* loop, config::CollectConfig cfg,
                sys::SysCalls& sys = sys::SysCalls::real());
  ~CollectServer();

  sys::Error start();
  // Stops listening and drops every connection (after a last sync).
  void stop();
  // The port listened on (when the config said 0).
  uint16_t port() const { return port_; }

  const config::CollectConfig& config() const { return cfg_; }
  MirrorStore& store() { return store_; }
  sys::SysCalls& sys() { return sys_; }
  size_t connections() const { return conns_.size(); }
  HostStats& hostStats(const std::string& host) { return hosts_[host]; }
  // The token configured for `host` (or for "*"); null when none.
  const std::string* tokenFor(const std::string& host) const;
  // collect.tls: the server context connections start their sessions from; null = plain TCP.
  SSL_CTX* tlsContext() const { return tls_ctx_.get(); }
  // Payload bytes that passed through the collector's memory (TLS terminated in userspace).
  void copied(uint64_t n) { copied_ += n; }
  uint64_t copiedBytes() const { return copied_; }
  // Bytes were written to a mirror: counts toward fsync_bytes and off the free space.
  void wrote(uint64_t n);
  // limits.min_free: how many more payload bytes may be written before the filesystem of
  // `dir` is down to min_free (0: pause); UINT64_MAX when min_free is 0. From an estimate: the
  // free space statvfs reported after the last sync (or refreshFree), less what was written.
  uint64_t writeRoom() const;
  uint64_t freeBytes() const { return free_bytes_; }
  // Measures the free space of `dir` again (statvfs: no I/O).
  void refreshFree();
  // A connection wants to go (its reason is logged already); dropped from the loop soon.
  void drop(CollectConnection* c);
  // `f` is being opened by `by`: any other connection holding it is dropped.
  void takeOver(MirrorFile* f, CollectConnection* by);
  void collectMetrics(sys::MetricWriter& w) const;

 private:
  void onAccept();
  struct SyncWork;
  void syncNow();
  void syncDone(SyncJob& job);
  void sweep();
  void reap();

  uv_loop_t* loop_;
  config::CollectConfig cfg_;
  sys::SysCalls& sys_;
  MirrorStore store_;
  uint16_t port_ = 0;
  uint64_t next_id_ = 1;
  uint64_t unsynced_bytes_ = 0;
  uint64_t refused_ = 0;
  uint64_t copied_ = 0;
  uint64_t free_bytes_ = UINT64_MAX;  // dir's free space, less writes since it was measured
  SslCtx tls_ctx_;
  SyncWork* sync_work_ = nullptr;  // owned by its libuv request until the callback
  bool accept_paused_ = false;
  bool sync_failing_ = false;
  std::map<uint64_t, std::unique_ptr<CollectConnection>> conns_;
  std::map<uint64_t, std::unique_ptr<CollectConnection>> dropped_;
  std::map<std::string, HostStats> hosts_;
  sys::UniqueFd listen_fd_;
  sys::UvHandle<uv_poll_t> listen_poll_;
  sys::UvHandle<uv_timer_t> sync_timer_;
  sys::UvHandle<uv_timer_t> sweep_timer_;
  sys::UvHandle<uv_idle_t> reaper_;
};

// `logsplice collect --config FILE`: runs until SIGTERM/SIGINT. Returns the exit code.
int runCollect(const std::string& config_path);

}  // namespace logsplice::agent::collect
