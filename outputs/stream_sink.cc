#include "outputs/stream_sink.h"

#include <algorithm>

#include "sys/splice.h"

namespace logsplice::outputs {

sys::Result<size_t> StreamSink::spliceOut(int fd, uint64_t* offset, uint64_t max) {
  uint64_t want = std::min(max, drainable());
  if (want == 0) return size_t{0};
  auto r = sys::splicePipeToFd(sys_, pipe_.readFd(), fd, offset, static_cast<size_t>(want), false);
  if (!r.ok()) return r;
  stream_written_ += r.value();
  stats_.bytes_sent += r.value();
  return r;
}

sys::Error StreamSink::spliceAll(int fd, bool* moved) {
  *moved = false;
  while (drainable() > 0) {
    auto r = spliceOut(fd, nullptr, drainable());
    if (!r.ok()) {
      if (r.error().code() == sys::ErrorCode::kWouldBlock) break;
      return r.error();
    }
    if (r.value() == 0) break;
    *moved = true;
  }
  return sys::Error::ok();
}

const Segment* StreamSink::unwrittenSegment(uint64_t* left) const {
  uint64_t pos = head_stream_pos_;
  for (const Segment& s : segments_) {
    uint64_t end = pos + s.streamBytes();
    if (stream_written_ < end) {
      *left = end - stream_written_;
      return &s;
    }
    pos = end;
  }
  return nullptr;
}

}  // namespace logsplice::outputs
