#pragma once

#include <uv.h>

#include <memory>
#include <vector>

#include "config/config.h"
#include "outputs/sink.h"

namespace logsplice::outputs {

// Builds the sink an `outputs:` entry describes (not started). The one place that knows every
// kind of output: a new output adds a case here. `inputs` are the config's inputs (the sink
// keeps copies of those routed to it: event outputs frame with their names, fields and
// multiline rules).
std::unique_ptr<Sink> makeSink(uv_loop_t* loop, const config::OutputConfig& out,
                               SinkListener& listener, const config::AgentConfig& agent,
                               const std::vector<config::InputConfig>& inputs);

// SIGHUP for an output whose config did not change: a TLS output re-reads its certificate, key
// and CA files (a bad new one keeps the running context, logged); other sinks: nothing.
sys::Error reloadTlsOf(Sink& sink);

}  // namespace logsplice::outputs
