#include "outputs/sink_factory.h"

#include "outputs/archive_sink.h"
#include "outputs/tcp_sink.h"

namespace logsplice::outputs {

std::unique_ptr<Sink> makeSink(uv_loop_t* loop, const config::OutputConfig& out,
                               SinkListener& listener, const config::AgentConfig& agent) {
  if (const auto* tcp = std::get_if<config::TcpOutput>(&out.kind)) {
    return std::make_unique<TcpSink>(loop, out.name, *tcp, listener, agent.pipe_bytes);
  }
  return std::make_unique<ArchiveSink>(loop, out.name, std::get<config::ArchiveOutput>(out.kind),
                                       listener, agent.pipe_bytes);
}

}  // namespace logsplice::outputs
