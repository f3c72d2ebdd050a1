#include "outputs/format/multiline.h"

namespace logsplice::outputs::format {

MultilineAssembler::MultilineAssembler(Regex& start, MultilineOptions options)
    : start_(start), options_(options) {}

void MultilineAssembler::start(std::string_view line, uint64_t begin, uint64_t end,
                               bool continued) {
  buffer_.assign(line);
  has_pending_ = true;
  continued_ = continued;
  begin_ = begin;
  end_ = end;
}

void MultilineAssembler::push(std::string_view line, uint64_t begin, uint64_t end,
                              Clock::time_point now, EmitRef emit, bool piece) {
  last_push_ = now;
  bool starts = !piece && start_.matches(line);
  size_t joined = buffer_.size() + (piece ? 0 : 1) + line.size();
  bool fits = has_pending_ && !starts && joined <= options_.max_bytes;
  if (fits) {
    if (!piece) buffer_ += '\n';
    buffer_ += line;
    end_ = end;
    return;
  }
  // The pending event is complete: a start line follows, or the line would not fit.
  bool cut = has_pending_ && !starts;
  if (has_pending_) {
    emit(MultilineEvent{buffer_, begin_, end_, cut, continued_});
    has_pending_ = false;
    buffer_.clear();
  }
  bool continued = !starts;
  if (line.size() > options_.max_bytes) {
    emit(MultilineEvent{line, begin, end, false, continued});
    return;
  }
  start(line, begin, end, continued);
}

bool MultilineAssembler::flushIdle(Clock::time_point now, EmitRef emit) {
  if (!has_pending_ || now - last_push_ < options_.timeout) return false;
  flush(emit);
  return true;
}

void MultilineAssembler::flush(EmitRef emit) {
  if (!has_pending_) return;
  emit(MultilineEvent{buffer_, begin_, end_, false, continued_});
  has_pending_ = false;
  buffer_.clear();
}

}  // namespace logsplice::outputs::format
