#include "outputs/sink_factory.h"

#include "outputs/archive_sink.h"
#include "outputs/tcp_sink.h"
#include "outputs/tls_event_sink.h"

namespace logsplice::outputs {

std::unique_ptr<Sink> makeSink(uv_loop_t* loop, const config::OutputConfig& out,
                               SinkListener& listener, const config::AgentConfig& agent) {
  if (const auto* tcp = std::get_if<config::TcpOutput>(&out.kind)) {
    if (tcp->tls) {
      // Userspace TLS reads the pipe anyway, so a raw output goes through the event sink with
      // the identity framer (exact per-line delivery). The event formats' framers plug in here
      // the same way once the format wiring lands.
      return std::make_unique<TlsEventSink>(loop, out.name, *tcp, listener, agent.pipe_bytes,
                                            std::make_unique<RawLineFramer>());
    }
    return std::make_unique<TcpSink>(loop, out.name, *tcp, listener, agent.pipe_bytes);
  }
  return std::make_unique<ArchiveSink>(loop, out.name, std::get<config::ArchiveOutput>(out.kind),
                                       listener, agent.pipe_bytes);
}

sys::Error reloadTlsOf(Sink& sink) {
  if (auto* tls = dynamic_cast<TlsEventSink*>(&sink)) return tls->reloadTls();
  return sys::Error::ok();
}

}  // namespace logsplice::outputs
