#include "agent/systemd_notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstring>

#include "sys/assert.h"

namespace logsplice::agent {
namespace {

// sd_notify returns < 0 on a failed send, 0 without NOTIFY_SOCKET, > 0 once sent. A failed
// send is worth a line in the log but never stops the agent.
void send(const std::string& message) {
  int rc = sd_notify(0, message.c_str());
  if (rc < 0) spdlog::warn("sd_notify: {}", std::strerror(-rc));
}

}  // namespace

uint64_t watchdogPingMs(uint64_t watchdog_usec) {
  if (watchdog_usec == 0) return 0;
  uint64_t ms = watchdog_usec / 2 / 1000;
  return ms == 0 ? 1 : ms;
}

void SystemdNotifier::startWatchdog() {
  uint64_t usec = 0;
  // > 0: a watchdog is set for this process (WATCHDOG_PID unset or ours); 0: none; < 0: bad
  // WATCHDOG_USEC/WATCHDOG_PID values.
  int rc = sd_watchdog_enabled(0, &usec);
  if (rc < 0) spdlog::warn("systemd watchdog settings unreadable: {}", std::strerror(-rc));
  uint64_t every = rc > 0 ? watchdogPingMs(usec) : 0;
  if (every == 0) return;
  LS_CHECK_UV(watchdog_timer_.init(uv_timer_init, loop_, this));
  uv_timer_start(
      watchdog_timer_.get(), [](uv_timer_t*) { send("WATCHDOG=1"); }, every, every);
  spdlog::info("systemd watchdog: {} us, pinging every {} ms", usec, every);
}

void SystemdNotifier::ready(const std::string& status) {
  send("READY=1\nSTATUS=" + status);
}

void SystemdNotifier::reloading() {
  // MONOTONIC_USEC lets systemd (253+) match this reload with the one it asked for.
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t now_usec =
      static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  send("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=" + std::to_string(now_usec));
}

void SystemdNotifier::stopping() {
  send("STOPPING=1\nSTATUS=stopping: draining outputs");
}

void SystemdNotifier::close() {
  watchdog_timer_.close();
}

}  // namespace logsplice::agent
