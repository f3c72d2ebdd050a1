#include "outputs/sink_factory.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "outputs/archive_sink.h"
#include "outputs/event_framer.h"
#include "outputs/kafka_framer.h"
#include "outputs/kafka_sink.h"
#include "outputs/mirror_sink.h"
#include "outputs/multiline_stage.h"
#include "outputs/relp_event_sink.h"
#include "outputs/tcp_event_sink.h"
#include "outputs/tcp_sink.h"
#include "outputs/tls_event_sink.h"
#include "outputs/tls_stream_sink.h"

namespace logsplice::outputs {
namespace {

std::vector<config::InputConfig> routedInputs(const config::OutputConfig& out,
                                              const std::vector<config::InputConfig>& inputs) {
  std::vector<config::InputConfig> routed;
  for (const config::InputConfig& in : inputs) {
    if (std::find(out.inputs.begin(), out.inputs.end(), in.name) != out.inputs.end()) {
      routed.push_back(in);
    }
  }
  return routed;
}

// config/ compiled every pattern already: an error here is a bug, reported, and the lines of
// that output then go out one event each rather than not at all.
void attachMultiline(uv_loop_t* loop, const std::string& name, EventSink& sink,
                     const std::vector<config::InputConfig>& routed) {
  auto stage = MultilineStage::create(routed);
  if (!stage.ok()) {
    spdlog::error("output '{}': {}", name, stage.error().toString());
  } else if (auto err = sink.setMultiline(loop, std::move(stage.value()))) {
    spdlog::error("output '{}': {}", name, err.toString());
  }
}

}  // namespace

std::unique_ptr<Sink> makeSink(uv_loop_t* loop, const config::OutputConfig& out,
                               SinkListener& listener, const config::AgentConfig& agent,
                               const std::vector<config::InputConfig>& inputs) {
  if (const auto* relp = std::get_if<config::RelpOutput>(&out.kind)) {
    std::vector<config::InputConfig> routed = routedInputs(out, inputs);
    auto sink = std::make_unique<RelpEventSink>(
        loop, out.name, *relp, listener, agent.pipe_bytes,
        std::make_unique<EventFramer>(agent, relp->tcp, routed));
    attachMultiline(loop, out.name, *sink, routed);
    return sink;
  }
  if (const auto* tcp = std::get_if<config::TcpOutput>(&out.kind)) {
    if (tcp->tls && tcp->format == config::EventFormat::kRaw) {
      // Kernel TLS where the kernel has it (the pipe keeps being spliced), else userspace TLS
      // in full records (outputs/tls_stream_sink.h).
      return std::make_unique<TlsStreamSink>(loop, out.name, *tcp, listener, agent.pipe_bytes);
    }
    if (tcp->format == config::EventFormat::kRaw) {
      return std::make_unique<TcpSink>(loop, out.name, *tcp, listener, agent.pipe_bytes);
    }
    std::vector<config::InputConfig> routed = routedInputs(out, inputs);
    auto framer = std::make_unique<EventFramer>(agent, *tcp, routed);
    std::unique_ptr<EventSink> sink;
    if (tcp->tls) {
      sink = std::make_unique<TlsEventSink>(loop, out.name, *tcp, listener, agent.pipe_bytes,
                                            std::move(framer));
    } else {
      sink = std::make_unique<TcpEventSink>(loop, out.name, *tcp, listener, agent.pipe_bytes,
                                            std::move(framer));
    }
    attachMultiline(loop, out.name, *sink, routed);
    return sink;
  }
  if (const auto* kafka = std::get_if<config::KafkaOutput>(&out.kind)) {
    std::vector<config::InputConfig> routed = routedInputs(out, inputs);
    auto sink = std::make_unique<KafkaSink>(loop, out.name, *kafka, agent.hostname, listener,
                                            agent.pipe_bytes,
                                            std::make_unique<KafkaFramer>(agent, *kafka, routed));
    attachMultiline(loop, out.name, *sink, routed);
    return sink;
  }
  if (const auto* ls = std::get_if<config::LogspliceOutput>(&out.kind)) {
    return std::make_unique<MirrorSink>(loop, out.name, *ls, agent.hostname, listener,
                                        agent.pipe_bytes);
  }
  return std::make_unique<ArchiveSink>(loop, out.name, std::get<config::ArchiveOutput>(out.kind),
                                       listener, agent.pipe_bytes);
}

sys::Error reloadTlsOf(Sink& sink) {
  if (auto* tls = dynamic_cast<TlsEventSink*>(&sink)) return tls->reloadTls();
  if (auto* tls = dynamic_cast<TlsStreamSink*>(&sink)) return tls->reloadTls();
  if (auto* relp = dynamic_cast<RelpEventSink*>(&sink)) return relp->reloadTls();
  if (auto* mirror = dynamic_cast<MirrorSink*>(&sink)) return mirror->reloadTls();
  return sys::Error::ok();
}

}  // namespace logsplice::outputs
