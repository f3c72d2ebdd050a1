#include "outputs/event_sink.h"

#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace logsplice::outputs {
namespace {

// Framed bytes are kept in chunks of about this size, written with one writev.
constexpr size_t kOutChunkBytes = 64 * 1024;
constexpr int kMaxIov = 64;
// Breaks remembered for the line that continues after them; more means files that stopped
// after a break (a final line without newline): the oldest are forgotten (a continuation then
// is not marked as a piece, nothing else changes).
constexpr size_t kMaxBreakMarks = 1024;
// How often the multiline timer looks for idle events, at most.
constexpr uint64_t kFlushTickMs = 100;

}  // namespace

EventSink::EventSink(std::string name, SinkListener& listener, std::unique_ptr<Framer> framer,
                     Limits limits, sys::SysCalls& sys)
    : Sink(std::move(name), listener),
      framer_(std::move(framer)),
      limits_{std::max<size_t>(limits.read_buffer_bytes, 1),
              std::max<size_t>(limits.max_unwritten_bytes, 1),
              std::max<size_t>(limits.max_events_in_flight, 1)},
      sys_(sys),
      buf_(limits_.read_buffer_bytes) {}

size_t EventSink::memoryBytes() const {
  size_t out = 0;
  for (const std::string& c : out_) out += c.capacity();
  return buf_.size() + out + in_flight_.size() * sizeof(InFlight);
}

size_t EventSink::memoryLimit() const {
  // The unwritten limit is checked before each line, so it can be passed by one framed line
  // (at most a read buffer plus the framer's envelope) and the chunk being filled.
  size_t framed = limits_.max_unwritten_bytes + 2 * buf_.size() + 2 * kOutChunkBytes;
  return buf_.size() + framed + limits_.max_events_in_flight * sizeof(InFlight);
}

bool EventSink::atLimit() const {
  return unwritten_ >= limits_.max_unwritten_bytes ||
         in_flight_.size() >= limits_.max_events_in_flight;
}

std::string& EventSink::outTail() {
  if (out_.empty() || out_.back().size() >= kOutChunkBytes) {
    out_.emplace_back();
    out_.back().reserve(kOutChunkBytes);
  }
  return out_.back();
}

void EventSink::noteBreak(uint64_t file_id, uint64_t generation, uint64_t offset) {
  if (breaks_.size() >= kMaxBreakMarks) breaks_.erase(breaks_.begin());
  breaks_.push_back({file_id, generation, offset});
}

bool EventSink::takeBreak(uint64_t file_id, uint64_t generation, uint64_t offset) {
  for (auto it = breaks_.begin(); it != breaks_.end(); ++it) {
    if (it->file_id == file_id && it->generation == generation && it->offset == offset) {
      breaks_.erase(it);
      return true;
    }
  }
  return false;
}

void EventSink::startLine(const Segment& seg, uint64_t file_offset) {
  line_.after_break = !breaks_.empty() && takeBreak(seg.file_id, seg.generation, file_offset);
  line_.active = true;
  line_.file_id = seg.file_id;
  line_.generation = seg.generation;
  line_.start = line_.next_offset = file_offset;
  line_.source = seg.source;
  line_begin_ = scan_;
}

void EventSink::emitLine(size_t end, size_t consumed, uint64_t offset_end, bool partial,
                         bool broken) {
  const size_t len = end - line_begin_;
  const bool continues = line_.after_break || line_.next_offset != line_.start;
  LineView v;
  v.bytes = std::string_view(buf_.data() + line_begin_, len);
  v.file_id = line_.file_id;
  v.generation = line_.generation;
  v.offset = line_.next_offset;
  v.source = line_.source.get();
  v.partial = partial;
  v.piece = partial || broken || continues;
  emit_stream_end_ = buf_stream_pos_ + consumed;
  MultilineStage::Rule* rule = stage_ ? stage_->ruleFor(v.source) : nullptr;
  if (rule != nullptr) {
    const uint64_t piece_end = partial ? line_.next_offset + len : offset_end;
    stage_->push(*rule, v, line_.source, piece_end, continues, !partial, stage_output_);
    accountStream(emit_stream_end_);
  } else {
    frameEvent(v, line_.start, offset_end, !partial, line_.after_break);
  }
  if (broken) noteBreak(line_.file_id, line_.generation, offset_end);
  line_.next_offset += len;
  line_begin_ = consumed;
  if (!partial) line_.active = false;
}

void EventSink::frameEvent(const LineView& v, uint64_t begin, uint64_t end, bool complete,
                           bool continues) {
  std::string& tail = outTail();
  size_t before = tail.size();
  framer_->frame(v, tail);
  size_t framed = tail.size() - before;
  unwritten_ += framed;
  wire_framed_ += framed;
  ++events_framed_;
  in_flight_.push_back({wire_framed_, emit_stream_end_, v.file_id, v.generation, begin, end,
                        complete, false, continues});
}

void EventSink::accountStream(uint64_t pos) {
  if (in_flight_.empty()) {
    stream_delivered_ = std::max(stream_delivered_, pos);
  } else {
    in_flight_.back().stream_end = std::max(in_flight_.back().stream_end, pos);
  }
}

void EventSink::skipByte() {
  ++scan_;
  line_begin_ = scan_;
  in_flight_.push_back({wire_framed_, buf_stream_pos_ + scan_, 0, 0, 0, 0, false, true, false});
}

bool EventSink::cutLines() {
  const size_t scan_before = scan_, events_before = in_flight_.size();
  if (scan_ < buf_len_ || bufferFullOfOneLine()) {
    framer_->beginBatch();
    if (stage_) stage_->beginBatch();
  }
  while (scan_ < buf_len_ && !atLimit()) {
    if (segments_.empty()) break;  // cannot happen: every byte read was registered
    const Segment& seg = segments_.front();
    const uint64_t nf = seg.newline_first ? 1 : 0;
    const uint64_t rel = buf_stream_pos_ + scan_ - head_stream_pos_;
    if (rel >= seg.streamBytes()) {
      head_stream_pos_ += seg.streamBytes();
      segments_.pop_front();
      continue;
    }
    if (nf && rel == 0) {
      // The '\n' owed for a break: it ends the line an earlier segment of this file began.
      if (!line_.active) {
        skipByte();
        continue;
      }
      emitLine(scan_, scan_ + 1, seg.offset, false, true);
      scan_ += 1;
      continue;
    }
    const uint64_t file_end_rel = nf + seg.length;
    if (rel == file_end_rel) {
      // The '\n' the router added after the segment's bytes (a split long line, a final line
      // without newline): a line end.
      if (!line_.active) {
        skipByte();
        continue;
      }
      emitLine(scan_, scan_ + 1, seg.offset + seg.length, false, true);
      scan_ += 1;
      continue;
    }
    const uint64_t file_offset = seg.offset + (rel - nf);
    if (!line_.active) startLine(seg, file_offset);
    size_t avail = static_cast<size_t>(std::min<uint64_t>(file_end_rel - rel, buf_len_ - scan_));
    const char* p = static_cast<const char*>(std::memchr(buf_.data() + scan_, '\n', avail));
    if (p == nullptr) {
      scan_ += avail;
      continue;
    }
    size_t nl = static_cast<size_t>(p - buf_.data());
    emitLine(nl, nl + 1, file_offset + (nl - scan_) + 1, false, false);
    scan_ = nl + 1;
  }
  // A line that fills the whole buffer: frame what there is as a piece.
  if (bufferFullOfOneLine() && !atLimit()) emitLine(buf_len_, buf_len_, 0, true, false);
  return scan_ != scan_before || in_flight_.size() != events_before;
}

bool EventSink::bufferFullOfOneLine() const {
  return scan_ == buf_len_ && buf_len_ == buf_.size() && line_.active && line_begin_ == 0;
}

bool EventSink::writeOut() {
  while (unwritten_ > 0) {
    iovec iov[kMaxIov];
    int n = 0;
    for (size_t i = 0; i < out_.size() && n < kMaxIov; ++i) {
      size_t skip = i == 0 ? out_head_off_ : 0;
      if (out_[i].size() == skip) continue;
      iov[n].iov_base = out_[i].data() + skip;
      iov[n].iov_len = out_[i].size() - skip;
      ++n;
    }
    sys::SysResult r = sendFramed(iov, n);
    if (r.failed()) {
      if (r.err == EINTR) continue;
      if (r.err == EAGAIN || r.err == EWOULDBLOCK) return true;
      writeFailed(r.err);
      return false;
    }
    size_t done = static_cast<size_t>(r.value);
    unwritten_ -= done;
    wire_written_ += done;
    stats_.bytes_sent += done;
    while (done > 0) {
      size_t left = out_.front().size() - out_head_off_;
      if (done < left) {
        out_head_off_ += done;
        break;
      }
      done -= left;
      out_head_off_ = 0;
      out_.pop_front();
    }
    if (unwritten_ == 0) {
      out_.clear();
      out_head_off_ = 0;
    }
  }
  return true;
}

size_t EventSink::readPipe() {
  if (line_begin_ > 0) {
    // Keep only the open line's bytes: move them to the front.
    std::memmove(buf_.data(), buf_.data() + line_begin_, buf_len_ - line_begin_);
    buf_len_ -= line_begin_;
    scan_ -= line_begin_;
    buf_stream_pos_ += line_begin_;
    line_begin_ = 0;
  }
  size_t room = std::min<uint64_t>(buf_.size() - buf_len_, drainable());
  if (room == 0) return 0;
  ssize_t n = ::read(pipe_.readFd(), buf_.data() + buf_len_, room);
  if (n <= 0) return 0;
  buf_len_ += static_cast<size_t>(n);
  stream_written_ += static_cast<uint64_t>(n);
  stats_.bytes_copied += static_cast<uint64_t>(n);
  sys::CopyCounter::add(static_cast<uint64_t>(n));
  return static_cast<size_t>(n);
}

void EventSink::drain() {
  bool read_any = false;
  while (canDeliver()) {
    const uint64_t written_before = wire_written_;
    const bool cut = cutLines();
    if (!writeOut()) return;
    if (unwritten_ > 0) break;  // the descriptor is full: wait until it is writable
    if (in_flight_.size() >= limits_.max_events_in_flight) {
      pollAcknowledged();
      if (in_flight_.size() >= limits_.max_events_in_flight) break;  // wait for acks
    }
    if (scan_ < buf_len_ || bufferFullOfOneLine()) {
      if (cut || wire_written_ != written_before) continue;
      break;  // no progress possible (a segment missing): never spin
    }
    if (readPipe() == 0) break;
    read_any = true;
  }
  if (canDeliver()) waitWritable(unwritten_ > 0);
  armFlushTimer();
  if (read_any) listener_.sinkReady(*this);
}

sys::Error EventSink::setMultiline(uv_loop_t* loop, std::unique_ptr<MultilineStage> stage) {
  stage_ = std::move(stage);
  if (!stage_) return sys::Error::ok();
  if (int rc = flush_timer_.init(uv_timer_init, loop, this); rc != 0) {
    stage_.reset();
    return sys::Error::io(std::string("uv_timer_init: ") + uv_strerror(rc));
  }
  return sys::Error::ok();
}

void EventSink::armFlushTimer() {
  if (!flush_timer_ || flush_armed_ || !stage_ || !stage_->pending()) return;
  uint64_t every =
      std::min<uint64_t>(kFlushTickMs, std::max<int64_t>(1, stage_->shortestTimeout().count()));
  flush_armed_ = true;
  uv_timer_start(
      flush_timer_.get(), [](uv_timer_t* t) { static_cast<EventSink*>(t->data)->onFlushTimer(); },
      every, every);
}

void EventSink::onFlushTimer() {
  if (!stage_ || !stage_->pending()) {
    uv_timer_stop(flush_timer_.get());
    flush_armed_ = false;
    return;
  }
  if (!canDeliver()) return;
  framer_->beginBatch();
  stage_->beginBatch();
  // The lines of an event emitted now were read out of the pipe earlier (the open line, if
  // any, is not part of it).
  emit_stream_end_ = buf_stream_pos_ + line_begin_;
  if (!in_flight_.empty()) {
    emit_stream_end_ = std::max(emit_stream_end_, in_flight_.back().stream_end);
  }
  emit_stream_end_ = std::max(emit_stream_end_, stream_delivered_);
  stage_->flushIdle(stage_output_);
  drain();  // writes what was framed
}

void EventSink::stopEvents() {
  if (flush_timer_) uv_timer_stop(flush_timer_.get());
  flush_armed_ = false;
}

void EventSink::closeEvents(std::function<void()> then) {
  flush_armed_ = false;
  flush_timer_.close(std::move(then));
}

void EventSink::collectMetrics(sys::MetricWriter& w) const {
  Sink::collectMetrics(w);
  const sys::MetricLabels by_output = {{"output", name_}};
  w.counter("logsplice_events_sent_total", "Events framed for this output.", by_output,
            static_cast<double>(events_framed_));
  w.counter("logsplice_event_invalid_utf8_total",
            "Ill-formed UTF-8 sequences replaced by U+FFFD in this output's events.", by_output,
            static_cast<double>(framer_->invalidUtf8()));
}

bool EventSink::acknowledgedWire(uint64_t wire_pos) {
  wire_pos = std::min(wire_pos, wire_written_);
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> reached;  // file -> (generation, offset)
  bool popped = false;
  while (!in_flight_.empty() && in_flight_.front().wire_end <= wire_pos) {
    const InFlight& e = in_flight_.front();
    if (e.complete) reached[e.file_id] = {e.generation, e.offset_end};
    stream_delivered_ = std::max(stream_delivered_, e.stream_end);
    in_flight_.pop_front();
    popped = true;
  }
  for (const auto& [file_id, at] : reached) {
    listener_.sinkDelivered(*this, file_id, at.first, at.second);
  }
  return popped;
}

void EventSink::rewindEvents() {
  std::map<uint64_t, SinkListener::Rewind> earliest;
  std::map<uint64_t, bool> at_break;  // the rewind point follows a break
  auto note = [&](uint64_t file_id, uint64_t generation, uint64_t offset, bool after_break) {
    auto [it, added] =
        earliest.try_emplace(file_id, SinkListener::Rewind{file_id, generation, offset, false});
    if (added || offset < it->second.offset) {
      it->second.offset = offset;
      at_break[file_id] = after_break;
    }
  };
  in_flight_.forEach([&](const InFlight& e) {
    if (!e.stray) note(e.file_id, e.generation, e.line_start, e.continues);
  });
  if (line_.active) note(line_.file_id, line_.generation, line_.start, line_.after_break);
  if (stage_) {
    stage_->forEachPending([&](uint64_t file_id, uint64_t generation, uint64_t begin) {
      note(file_id, generation, begin, false);
    });
    stage_->reset();
  }
  uint64_t pos = head_stream_pos_;
  const uint64_t scanned = buf_stream_pos_ + scan_;
  for (const Segment& seg : segments_) {
    uint64_t nf = seg.newline_first ? 1 : 0;
    uint64_t into = scanned > pos ? scanned - pos : 0;
    uint64_t file_into = std::min(into > nf ? into - nf : 0, seg.length);
    note(seg.file_id, seg.generation, seg.offset + file_into, false);
    pos += seg.streamBytes();
  }
  std::vector<SinkListener::Rewind> rewinds;
  for (auto& [id, r] : earliest) {
    rewinds.push_back(r);
    // The resend starts with the bytes after a break: they are still a piece.
    if (at_break[id]) noteBreak(r.file_id, r.generation, r.offset);
  }

  buf_len_ = scan_ = line_begin_ = 0;
  buf_stream_pos_ = 0;
  line_ = OpenLine{};
  out_.clear();
  out_head_off_ = 0;
  unwritten_ = 0;
  wire_framed_ = wire_written_ = 0;
  in_flight_.clear();
  emit_stream_end_ = 0;
  dropInFlight(rewinds);
}

}  // namespace logsplice::outputs
