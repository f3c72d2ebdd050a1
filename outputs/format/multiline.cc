#include "outputs/format/multiline.h"

#include <algorithm>

namespace logsplice::outputs::format {
namespace {

// A buffer that grew past this for a large event is released once the event is out, so that
// thousands of followed files do not each keep up to max_bytes after one large event.
constexpr size_t kKeepCapacity = 64 * 1024;

}  // namespace

MultilineAssembler::MultilineAssembler(Regex& start, MultilineOptions options)
    : start_(start), options_(options) {}

void MultilineAssembler::reserveFor(size_t size) {
  if (size <= buffer_.capacity()) return;
  // Grow geometrically, but never past max_bytes: the bound on what one file may hold.
  // (std::string::reserve itself may double past the request, so grow a fresh string.)
  size_t want = std::max(size, std::min<size_t>(2 * buffer_.capacity(), options_.max_bytes));
  std::string bigger;
  bigger.reserve(want);
  bigger.append(buffer_);
  buffer_.swap(bigger);
}

void MultilineAssembler::release() {
  has_pending_ = false;
  if (buffer_.capacity() > kKeepCapacity) {
    std::string().swap(buffer_);
  } else {
    buffer_.clear();
  }
}

void MultilineAssembler::start(std::string_view line, uint64_t begin, uint64_t end,
                               bool continued) {
  reserveFor(line.size());
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
    reserveFor(joined);
    if (!piece) buffer_ += '\n';
    buffer_ += line;
    end_ = end;
    return;
  }
  // The pending event is complete: a start line follows, or the line would not fit.
  bool cut = has_pending_ && !starts;
  if (has_pending_) {
    emit(MultilineEvent{buffer_, begin_, end_, cut, continued_});
    release();
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
  release();
}

}  // namespace logsplice::outputs::format
