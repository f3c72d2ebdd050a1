#pragma once

#include <uv.h>

#include <memory>

#include "config/config.h"
#include "outputs/sink.h"

namespace logsplice::outputs {

// Builds the sink an `outputs:` entry describes (not started). The one place that knows every
// kind of output: a new output adds a case here.
std::unique_ptr<Sink> makeSink(uv_loop_t* loop, const config::OutputConfig& out,
                               SinkListener& listener, const config::AgentConfig& agent);

}  // namespace logsplice::outputs
