#pragma once

// The collector's side of a RELP session in the outputs tests, on loopback: one accepted
// connection whose client frames ("TXNR COMMAND DATALEN[ DATA]\n") are cut out of what arrived
// (with LengthFramer as the inner framer, a syslog frame's DATA is the line itself),
// and answers written back by hand (rsp 200, rsp 500, an rsp for a number never sent, garbage)
// or automatically (answer every syslog frame with 200 as it arrives).

#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/tcp_test_peer.h"

namespace logsplice::testing {

struct RelpFrame {
  uint32_t txnr = 0;
  std::string command;
  std::string data;
};

class RelpTestPeer {
 public:
  Peer peer;
  std::vector<RelpFrame> frames;  // every frame received, in order
  size_t parsed = 0;              // bytes of peer.data cut into frames
  bool auto_ack = false;          // answer each syslog frame with 200 as it arrives
  bool answer_open = true;        // answer `open` with 200 and commands=syslog
  std::string open_offers = "relp_version=0\nrelp_software=test\ncommands=syslog";
  size_t answered = 0;  // frames looked at by the auto answers

  // Reads what arrived and cuts it into frames; answers as configured.
  void pump() {
    peer.read();
    for (;;) {
      size_t p = parsed;
      size_t sp1 = peer.data.find(' ', p);
      if (sp1 == std::string::npos) break;
      size_t sp2 = peer.data.find(' ', sp1 + 1);
      if (sp2 == std::string::npos) break;
      size_t end_len = peer.data.find_first_of(" \n", sp2 + 1);
      if (end_len == std::string::npos) break;
      RelpFrame f;
      f.txnr = static_cast<uint32_t>(std::stoul(peer.data.substr(p, sp1 - p)));
      f.command = peer.data.substr(sp1 + 1, sp2 - sp1 - 1);
      size_t len = std::stoul(peer.data.substr(sp2 + 1, end_len - sp2 - 1));
      size_t data_at = len > 0 ? end_len + 1 : end_len;
      if (peer.data.size() < data_at + len + 1) break;
      f.data = peer.data.substr(data_at, len);
      REQUIRE(peer.data[data_at + len] == '\n');
      parsed = data_at + len + 1;
      frames.push_back(std::move(f));
    }
    for (; answered < frames.size(); ++answered) {
      const RelpFrame& f = frames[answered];
      if (f.command == "open" && answer_open) {
        rsp(f.txnr, "200 OK\n" + open_offers);
      } else if (f.command == "syslog" && auto_ack) {
        rsp(f.txnr, "200 OK");
      } else if (f.command == "close") {
        rsp(f.txnr, "200 OK");
      }
    }
  }
  // The syslog frames received, in order.
  std::vector<RelpFrame> syslogFrames() const {
    std::vector<RelpFrame> out;
    for (const auto& f : frames) {
      if (f.command == "syslog") out.push_back(f);
    }
    return out;
  }
  void rsp(uint32_t txnr, const std::string& data) {
    send(std::to_string(txnr) + " rsp " + std::to_string(data.size()) + " " + data + "\n");
  }
  void send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(peer.fd.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;  // the client went away: the test looks at what it does then
      done += static_cast<size_t>(n);
    }
  }
};

}  // namespace logsplice::testing
