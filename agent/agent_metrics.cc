// Agent::metricsText(): the /metrics body, gathered from each component's own metrics.
#include <dirent.h>

#include "agent/agent.h"
#include "agent/status/prom_metric_writer.h"
#include "sys/sys_calls.h"
#include "sys/metrics.h"

namespace logsplice::agent {
namespace {

size_t countOpenFds() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
    n = n >= 3 ? n - 3 : 0;  // ".", ".." and the directory's own fd
  }
  return n;
}


}  // namespace

void Agent::collectMetrics(sys::MetricWriter& w) const {
  w.gauge("logsplice_open_fds", "Open file descriptors.", {},
          static_cast<double>(countOpenFds()));
}

std::string Agent::metricsText() const {
  // Each component reports its own metrics; the page lists families in the order they are
  // first collected (the order means nothing to Prometheus). Copies are counted per output
  // (logsplice_bytes_copied_total{output}): every byte the agent copies is on the way to one.
  PromMetricWriter w;
  collectMetrics(w);
  store_->collectMetrics(w);
  router_->collectMetrics(w);
  for (const auto& t : tailers_) t->collectMetrics(w);
  for (const outputs::Sink* s : router_->sinks()) s->collectMetrics(w);
  if (status_) status_->collectMetrics(w);
  return w.text();
}

}  // namespace logsplice::agent
