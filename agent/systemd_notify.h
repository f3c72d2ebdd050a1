#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

#include "sys/uv_handle.h"

namespace logsplice::agent {

// How often to send WATCHDOG=1 for a watchdog of `watchdog_usec` (0: no watchdog, returns 0):
// every half period, as systemd advises, and at least every millisecond.
uint64_t watchdogPingMs(uint64_t watchdog_usec);

// The agent's side of systemd's notify protocol (Type=notify): READY=1 once everything is
// started, RELOADING=1 / READY=1 around a reload, STOPPING=1 when shutdown begins, and
// WATCHDOG=1 from a timer on the agent's loop. The pings come from the loop thread itself, so a
// loop that stops turning stops them and systemd restarts the agent. Without NOTIFY_SOCKET in
// the environment every call is a no-op. Loop thread only.
class SystemdNotifier {
 public:
  explicit SystemdNotifier(uv_loop_t* loop) : loop_(loop) {}

  // Starts the watchdog pings if systemd asked for them (WATCHDOG_USEC, and WATCHDOG_PID unset
  // or this process). Leaves the environment alone: a reload notifies through it again.
  void startWatchdog();
  // READY=1 with a one-line STATUS= for `systemctl status`.
  void ready(const std::string& status);
  void reloading();
  void stopping();
  // Stops the pings (closes the timer) so the loop can end.
  void close();

 private:
  uv_loop_t* loop_;
  sys::UvHandle<uv_timer_t> watchdog_timer_;
};

}  // namespace logsplice::agent
