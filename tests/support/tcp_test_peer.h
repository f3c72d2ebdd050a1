#pragma once

// The collector's side of the outputs' TCP tests, on loopback only: a socket bound to a free
// port (listening or not: a bound socket that does not listen refuses connections and keeps
// its port from being taken meanwhile), and one accepted connection that reads what arrived.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <string>

#include "outputs/sink.h"
#include "sys/unique_fd.h"

namespace logsplice::testing {

class TestSocket {
 public:
  // family AF_INET binds 127.0.0.1, AF_INET6 binds ::1 (v6 only); port 0 asks for a free one.
  explicit TestSocket(int rcvbuf = 0, int family = AF_INET, uint16_t port = 0) : family_(family) {
    fd_.reset(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    REQUIRE(fd_.valid());
    int one = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (rcvbuf > 0) {
      REQUIRE(::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
    }
    if (family == AF_INET6) {
      REQUIRE(::setsockopt(fd_.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0);
      sockaddr_in6 addr{};
      addr.sin6_family = AF_INET6;
      addr.sin6_addr = in6addr_loopback;
      addr.sin6_port = htons(port);
      REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
      socklen_t len = sizeof addr;
      REQUIRE(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
      port_ = ntohs(addr.sin6_port);
    } else {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(port);
      REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
      socklen_t len = sizeof addr;
      REQUIRE(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
      port_ = ntohs(addr.sin_port);
    }
  }
  void listen() { REQUIRE(::listen(fd_.get(), 16) == 0); }
  uint16_t port() const { return port_; }
  std::string address() const {
    return (family_ == AF_INET6 ? "[::1]:" : "127.0.0.1:") + std::to_string(port_);
  }
  // A connection accepted now, or an invalid fd.
  sys::UniqueFd accept() {
    return sys::UniqueFd(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  }

 private:
  int family_;
  sys::UniqueFd fd_;
  uint16_t port_ = 0;
};

// The collector's side of one connection: reads what is there, notices the end.
struct Peer {
  sys::UniqueFd fd;
  std::string data;
  bool eof = false;
  void read() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n > 0) {
        data.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) eof = true;
      break;
    }
  }
};

// Runs `loop` until `sink` is connected and `server` has accepted its connection.
template <class Loop>
Peer acceptConnected(Loop& loop, TestSocket& server, const outputs::Sink& sink) {
  Peer p;
  REQUIRE(loop.waitFor([&] {
    if (!p.fd.valid()) p.fd = server.accept();
    return p.fd.valid() && sink.state() == outputs::SinkState::kConnected;
  }));
  return p;
}

}  // namespace logsplice::testing
