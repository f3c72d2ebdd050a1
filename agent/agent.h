#pragma once

#include <uv.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/checkpoint_store.h"
#include "agent/router.h"
#include "agent/systemd_notify.h"
#include "agent/status/status_server.h"
#include "sys/metrics.h"
#include "sys/uv_handle.h"
#include "config/config.h"
#include "inputs/input_tailer.h"
#include "outputs/sink.h"

namespace logsplice::agent {

// Process exit codes (documented in --help and the README).
enum ExitCode : int {
  kExitOk = 0,
  kExitConfig = 1,   // the config has errors (each printed with file:line:col)
  kExitUsage = 2,    // bad command line
  kExitStartup = 3,  // could not start: data_dir unwritable, no pipes, metrics port taken...
};

// The daemon: builds the router, sinks and inputs from a config, runs the libuv loop, and
// handles signals (SIGTERM/SIGINT drain and stop within shutdown_timeout, a second one stops at
// once; SIGHUP reloads; SIGUSR1 reopens the agent's log). Owns the loop; one per process.
class Agent {
 public:
  explicit Agent(config::Config cfg);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Builds and starts everything; an error here is fatal (exit kExitStartup).
  sys::Error start();
  // Runs until stopped by a signal; returns the exit code.
  int run();

  // Prometheus text for /metrics: the agent's own metrics, then each component's (defined in
  // agent_metrics.cc).
  std::string metricsText() const;
  // The agent's own samples (open fds).
  void collectMetrics(sys::MetricWriter& w) const;
  // /health: every output able to deliver.
  StatusServer::Health health() const;

 private:
  void onSignal(int signum);
  void beginShutdown();
  void onShutdownTick();
  void finish();
  void writeCheckpoint();
  void reload();
  // The sink of `out` as `cfg` (the running config, or the one a reload moves to) describes it.
  std::unique_ptr<outputs::Sink> makeSink(const config::OutputConfig& out,
                                          const config::Config& cfg);
  void startTailer(const config::InputConfig& in);
  void closeTailer(size_t index);
  void closeAll();
  // STATUS= text for systemd: what runs now.
  std::string statusText() const;

  uv_loop_t loop_{};
  config::Config cfg_;
  std::unique_ptr<CheckpointStore> store_;
  std::unique_ptr<Router> router_;
  std::vector<std::unique_ptr<inputs::InputTailer>> tailers_;
  std::unique_ptr<StatusServer> status_;
  std::vector<sys::UvHandle<uv_signal_t>> signals_;
  sys::UvHandle<uv_timer_t> checkpoint_timer_;
  sys::UvHandle<uv_timer_t> shutdown_timer_;
  sys::UvHandle<uv_timer_t> soon_timer_;  // a prompt checkpoint after new files appear
  SystemdNotifier systemd_{&loop_};
  std::chrono::steady_clock::time_point shutdown_started_;
  bool shutting_down_ = false;
  bool finished_ = false;
  int exit_code_ = kExitOk;
};

// Sets up spdlog: stderr, or `log_file` (reopened on SIGUSR1), at `level`.
sys::Error setupLogging(const std::string& level, const std::string& log_file);

}  // namespace logsplice::agent
