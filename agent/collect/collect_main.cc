#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <cstdio>

#include "agent/agent.h"
#include "agent/collect/collect_server.h"
#include "agent/status/prom_metric_writer.h"
#include "agent/status/status_server.h"
#include "config/collect_keys.h"

namespace logsplice::agent::collect {

int runCollect(const std::string& config_path) {
  ::signal(SIGPIPE, SIG_IGN);
  // Three descriptors per connection (socket, pipe) plus one per open stream: take what the
  // hard limit allows.
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  auto parsed = config::parseCollectConfigFile(config_path);
  if (!parsed.ok()) {
    for (const auto& e : parsed.errors) std::fprintf(stderr, "%s\n", e.toString().c_str());
    return kExitConfig;
  }
  config::CollectConfig cfg = std::move(*parsed.config);
  if (auto err = setupLogging(cfg.log_level, cfg.log_file)) {
    std::fprintf(stderr, "logsplice: %s\n", err.toString().c_str());
    return kExitStartup;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  int code = kExitOk;
  {
    CollectServer server(&loop, cfg);
    std::unique_ptr<StatusServer> status;
    sys::UvHandle<uv_signal_t> sigterm, sigint;
    if (auto err = server.start()) {
      spdlog::critical("collect: cannot start: {}", err.toString());
      code = kExitStartup;
    } else {
      if (cfg.metrics_listen) {
        status = std::make_unique<StatusServer>(
            &loop, *cfg.metrics_listen,
            [&server] {
              PromMetricWriter w;
              server.collectMetrics(w);
              return w.text();
            },
            [] { return StatusServer::Health{}; });
        if (auto err = status->start()) {
          spdlog::critical("collect: metrics: {}", err.toString());
          code = kExitStartup;
        } else {
          spdlog::info("collect: metrics on {}:{}", cfg.metrics_listen->host, status->port());
        }
      }
      auto on_signal = [](uv_signal_t* s, int signum) {
        spdlog::info("collect: signal {}, stopping", signum);
        uv_stop(s->loop);
      };
      if (code == kExitOk && sigterm.init(uv_signal_init, &loop, nullptr) == 0 &&
          sigint.init(uv_signal_init, &loop, nullptr) == 0) {
        uv_signal_start(sigterm.get(), on_signal, SIGTERM);
        uv_signal_start(sigint.get(), on_signal, SIGINT);
        uv_run(&loop, UV_RUN_DEFAULT);
      }
    }
    server.stop();
    sigterm.close();
    sigint.close();
    if (status) status->close([] {});
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return code;
}

}  // namespace logsplice::agent::collect
