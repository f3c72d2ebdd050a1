#include "outputs/sink.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "sys/splice.h"

namespace logsplice::outputs {

const char* sinkStateName(SinkState s) {
  switch (s) {
    case SinkState::kConnecting:
      return "connecting";
    case SinkState::kConnected:
      return "connected";
    case SinkState::kBackoff:
      return "backoff";
    case SinkState::kPaused:
      return "paused";
    case SinkState::kStopped:
      return "stopped";
  }
  return "unknown";
}

uint64_t Sink::deliveredFileBytes(const Segment& seg, uint64_t stream_into) {
  if (stream_into >= seg.streamBytes()) return seg.length;
  uint64_t into = stream_into;
  if (seg.newline_first) into = into > 0 ? into - 1 : 0;
  into = std::min(into, seg.length);
  // The file bytes before a break count as delivered only with the '\n' the router added after
  // them; otherwise a resend starts at the line start and sends piece and newline again.
  if (seg.newline && into == seg.length && into > 0) into -= 1;
  return into;
}

bool Sink::acceptsData(uint64_t want) const {
  if (!canDeliver() || pipe_.readFd() < 0) return false;
  uint64_t in_pipe = stream_filled_ - stream_written_;
  return in_pipe + want <= pipe_.capacity();
}

uint64_t Sink::room() const {
  if (!canDeliver() || pipe_.readFd() < 0) return 0;
  uint64_t in_pipe = stream_filled_ - stream_written_;
  return in_pipe >= pipe_.capacity() ? 0 : pipe_.capacity() - in_pipe;
}

bool Sink::holdsFile(uint64_t file_id) const {
  return std::any_of(segments_.begin(), segments_.end(),
                     [&](const Segment& s) { return s.file_id == file_id; });
}

void Sink::appended(Segment seg) {
  stream_filled_ += seg.streamBytes();
  segments_.push_back(std::move(seg));
  if (!hold_drain_ || room() < hold_min_room_) drain();
}

void Sink::releaseDrain() {
  if (!hold_drain_) return;
  hold_drain_ = false;
  if (drainable() > 0) drain();
}

void Sink::deliveredUpTo(uint64_t stream_pos) {
  if (stream_pos <= stream_delivered_) return;
  stream_delivered_ = stream_pos;
  // Report each file once per call: the furthest offset reached.
  while (!segments_.empty()) {
    const Segment& seg = segments_.front();
    uint64_t seg_end = head_stream_pos_ + seg.streamBytes();
    if (stream_pos >= seg_end) {
      listener_.sinkDelivered(*this, seg.file_id, seg.generation, seg.offset + seg.length);
      head_stream_pos_ = seg_end;
      segments_.pop_front();
      continue;
    }
    uint64_t into = deliveredFileBytes(seg, stream_pos - head_stream_pos_);
    if (into > 0) listener_.sinkDelivered(*this, seg.file_id, seg.generation, seg.offset + into);
    break;
  }
}

std::vector<SinkListener::Rewind> Sink::streamRewindPoints() const {
  std::map<uint64_t, SinkListener::Rewind> earliest;
  uint64_t pos = head_stream_pos_;
  for (const Segment& seg : segments_) {
    uint64_t delivered_stream = stream_delivered_ > pos ? stream_delivered_ - pos : 0;
    bool owed = seg.newline_first && delivered_stream == 0;
    uint64_t into = deliveredFileBytes(seg, delivered_stream);
    if (!earliest.count(seg.file_id)) {
      earliest[seg.file_id] = {seg.file_id, seg.generation, seg.offset + into, owed};
    }
    pos += seg.streamBytes();
  }
  std::vector<SinkListener::Rewind> rewinds;
  for (auto& [id, r] : earliest) rewinds.push_back(r);
  return rewinds;
}

void Sink::rewindUnacknowledged() { dropInFlight(streamRewindPoints()); }

void Sink::dropInFlight(const std::vector<SinkListener::Rewind>& rewinds) {
  stats_.resent_bytes += stream_filled_ - stream_delivered_;
  segments_.clear();
  stream_filled_ = stream_written_ = stream_delivered_ = head_stream_pos_ = 0;
  ++epoch_;
  discardPipe();
  if (!rewinds.empty()) listener_.sinkRewound(*this, rewinds);
}

void Sink::collectMetrics(sys::MetricWriter& w) const {
  struct Family {
    const char* name;
    const char* help;
    uint64_t SinkStats::*field;
  };
  static const Family kCounters[] = {
      {"logsplice_sink_bytes_sent_total", "Bytes written to the socket or archive.",
       &SinkStats::bytes_sent},
      {"logsplice_sink_connects_total", "Connections made.", &SinkStats::connects},
      {"logsplice_sink_disconnects_total", "Connections lost.", &SinkStats::disconnects},
      {"logsplice_sink_resent_bytes_total", "Bytes sent again after a broken connection.",
       &SinkStats::resent_bytes},
      {"logsplice_sink_pauses_total", "Times the sink paused (disk full, permissions).",
       &SinkStats::pauses},
      {"logsplice_sink_missed_bytes_total", "Bytes released by retention before delivery.",
       &SinkStats::missed_bytes},
  };
  const sys::MetricLabels by_sink = {{"sink", name_}};
  for (const Family& f : kCounters) {
    w.counter(f.name, f.help, by_sink, static_cast<double>(stats_.*(f.field)));
  }
  SinkState s = state();
  w.gauge("logsplice_sink_up", "1 when the sink can deliver.", by_sink,
          s == SinkState::kConnected ? 1 : 0);
  w.gauge("logsplice_sink_state", "The sink's state (1 for the current one).",
          {{"sink", name_}, {"state", sinkStateName(s)}}, 1);
  w.counter("logsplice_bytes_copied_total",
            "Bytes the agent moved through its own memory on the way to this output (0 on the "
            "zero-copy path).",
            {{"output", name_}}, static_cast<double>(stats_.bytes_copied));
}

void Sink::discardPipe() {
  static int dev_null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (pipe_.readFd() < 0 || dev_null < 0) return;
  for (;;) {
    auto r = sys::splicePipeToFd(sys::SysCalls::real(), pipe_.readFd(), dev_null, nullptr, 1 << 20,
                                 false);
    if (!r.ok() || r.value() == 0) break;
  }
}

}  // namespace logsplice::outputs
