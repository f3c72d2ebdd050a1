#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "outputs/backoff.h"
#include "sys/host_port.h"
#include "sys/unique_fd.h"
#include "sys/uv_handle.h"

namespace logsplice::outputs {

// One outgoing TCP connection to a collector, kept up for a sink: resolves each configured
// address without blocking (uv_getaddrinfo), tries every address a name resolves to (IPv4 and
// IPv6) with a non-blocking connect and a timeout, then the next configured address, and backs
// off (jittered, exponential) after a whole round failed; the backoff starts again from its
// initial delay only after a connection that stayed up for a while. Sets keepalive and
// TCP_USER_TIMEOUT so a silent peer cannot pin our pages for ever. What the sink writes is its
// own business: it gets the descriptor, asks for writability, and learns how much of what it
// wrote the peer's TCP stack has acknowledged (docs/design.md K6). Loop thread only; the loop
// and the handler must outlive it.
class TcpConnection {
 public:
  enum class State { kStopped, kConnecting, kConnected, kBackoff };

  class Handler {
   public:
    virtual ~Handler() = default;
    // Connected: the descriptor is writable.
    virtual void connectionUp() = 0;
    // The descriptor became writable (only while asked with wantWritable(true)).
    virtual void connectionWritable() = 0;
    // A connection attempt failed or the connection broke; the descriptor is already closed
    // and a reconnect is scheduled. `was_connected` tells a lost connection from a failed try.
    virtual void connectionDown(bool was_connected) = 0;
    // Every ack poll (100 ms) while connected: a good time to read unacknowledged().
    virtual void connectionAckTick() = 0;
    // Bytes the peer sent. Collectors of newline-delimited lines send nothing: the default
    // drops them (reading only to notice a close or reset early).
    virtual void connectionData(const char* /*data*/, size_t /*len*/) {}
    // The descriptor is readable (or the peer hung up). A handler whose TLS library reads the
    // socket itself (OpenSSL on the descriptor, kernel TLS) reads here and returns true; false
    // (the default) lets the connection read and pass the bytes to connectionData.
    virtual bool connectionReadable() { return false; }
  };

  // Resolves a configured address into the socket addresses to try, in order; calls `done`
  // (later, from the loop, or at once) with 0 and the list, or a libuv error. The default uses
  // uv_getaddrinfo; tests inject names that resolve to several families.
  using Resolved = std::function<void(int status, std::vector<sockaddr_storage> addrs)>;
  using Resolver = std::function<void(const sys::HostPort&, Resolved done)>;

  TcpConnection(uv_loop_t* loop, std::string name, const config::TcpOutput& cfg,
                Handler& handler);
  ~TcpConnection();
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  void setResolverForTesting(Resolver r) { resolver_ = std::move(r); }

  State state() const { return state_; }
  int fd() const { return sock_.get(); }
  // The configured address tried now (or last), and the socket address connected to.
  const sys::HostPort& currentAddress() const;
  std::string currentPeer() const;

  // Initialises the timers and starts connecting.
  sys::Error start();
  // Closes the socket and stops retrying (start() connects again).
  void stop();
  // stop(), then closes every handle; on_closed runs after the last close callback.
  void close(std::function<void()> on_closed);
  // Poll for writability while the sink has bytes waiting.
  void wantWritable(bool on);
  // The owner failed writing (err is the errno): the connection is dropped and retried.
  void fail(const std::string& why, int err);
  // Bytes written on this connection that the peer's TCP stack has not acknowledged yet
  // (SIOCOUTQ), or nothing when that cannot be known now: the queue is read only while the
  // connection is ESTABLISHED, because a reset purges it and an empty queue after a reset must
  // not pass for an acknowledgement.
  std::optional<uint64_t> unacknowledged() const;

 private:
  void resolveCurrent();
  void onResolved(int status, std::vector<sockaddr_storage> addrs);
  void tryNextCandidate();
  void onPoll(int status, int events);
  void onConnected();
  void closeSocket();
  // The current configured address is exhausted: move on, backing off after a whole round.
  void nextAddress();
  void updatePoll();

  uv_loop_t* loop_;
  std::string name_;
  config::TcpOutput cfg_;
  Handler& handler_;
  Resolver resolver_;
  Backoff backoff_;
  size_t addr_index_ = 0;
  std::vector<sockaddr_storage> candidates_;  // what the current address resolved to
  size_t candidate_ = 0;                      // the next one to try
  std::string peer_;                          // the socket address being tried / connected
  State state_ = State::kStopped;
  uint64_t connected_at_ = 0;  // uv_now() when the current connection came up
  bool outage_logged_ = false;
  bool want_writable_ = false;
  int poll_events_ = 0;
  uint64_t resolve_seq_ = 0;  // bumped by stop(): a resolution finishing later is dropped
  uv_getaddrinfo_t* resolving_ = nullptr;  // owned by the request until its callback runs
  sys::UniqueFd sock_;
  // Declared after sock_: destroyed first, so the poll stops before the descriptor closes.
  sys::UvHandle<uv_poll_t> poll_;
  sys::UvHandle<uv_timer_t> timer_;      // connect timeout and backoff
  sys::UvHandle<uv_timer_t> ack_timer_;  // connectionAckTick
};

}  // namespace logsplice::outputs
