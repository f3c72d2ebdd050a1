#include "agent/delivery_book.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "inputs/line_end.h"

namespace logsplice::agent {
namespace {

constexpr int64_t kRefreshEntrySeconds = 3600;
constexpr int64_t kExpireEntrySeconds = 24 * 3600;
// How often every file is looked at (for the hourly refresh, and as a safety net for a file
// marked dirty without markDirty).
constexpr int64_t kWalkSeconds = 60;

}  // namespace

uint64_t DeliveryBook::openingOffset(const FileRoute& fs, const CheckpointEntry* saved,
                                     bool resume, const std::string& name,
                                     uint64_t default_start) const {
  if (!resume) return default_start;
  auto off = saved->offsets.find(name);
  if (off == saved->offsets.end()) return 0;  // a sink added since the checkpoint: whole file
  // Past the end means the file was truncated while we were away: start over.
  return off->second <= fs.follower->size() ? lineStartAtOrBefore(fs, off->second) : 0;
}

uint64_t DeliveryBook::liveAddOffset(const FileRoute& fs, const std::string& name) const {
  const inputs::FileIdentity& id = fs.follower->identity();
  const CheckpointEntry* saved = store_.find(id.dev, id.ino);
  if (saved) {
    auto off = saved->offsets.find(name);
    if (off != saved->offsets.end() && off->second <= fs.follower->size()) {
      return lineStartAtOrBefore(fs, off->second);
    }
  }
  return fs.follower->completeEnd();
}

uint64_t DeliveryBook::lineStartAtOrBefore(const FileRoute& fs, uint64_t offset) const {
  if (offset == 0 || !fs.follower || fs.follower->fd() < 0) return offset;
  // The start of the line holding `offset`: just past the last '\n' before it.
  auto r = inputs::findLastLineEnd(sys_, fs.follower->fd(), 0, offset);
  if (!r.ok()) return offset;
  // A forced break is a line start too (the router added the '\n' there).
  const auto& breaks = fs.follower->breaks();
  auto it = breaks.upper_bound(offset);
  uint64_t start = r.value();
  if (it != breaks.begin()) start = std::max(start, *std::prev(it));
  return start;
}

bool DeliveryBook::delivered(FileRoute& fs, uint32_t sink_id, uint64_t generation,
                             uint64_t offset_end) {
  if (fs.generation != generation) return false;
  Cursor* c = fs.cursor(sink_id);
  if (!c || offset_end <= c->delivered) return false;
  c->delivered = offset_end;
  markDirty(fs);
  return true;
}

bool DeliveryBook::rewind(FileRoute& fs, uint32_t sink_id, uint64_t generation, uint64_t offset,
                          bool newline_owed) const {
  if (fs.generation != generation) return false;
  Cursor* c = fs.cursor(sink_id);
  if (!c) return false;
  uint64_t start = lineStartAtOrBefore(fs, offset);
  if (start < c->cursor) {
    c->cursor = start;
    c->newline_owed = newline_owed;
  }
  c->delivered = std::min(c->delivered, c->cursor);
  return true;
}

bool DeliveryBook::skipTo(FileRoute& fs, uint32_t sink_id, uint64_t generation,
                          uint64_t offset) const {
  if (fs.generation != generation || !fs.follower) return false;
  Cursor* c = fs.cursor(sink_id);
  if (!c || offset <= c->cursor || offset > fs.follower->completeEnd()) return false;
  uint64_t start = lineStartAtOrBefore(fs, offset);
  if (start <= c->cursor) return false;
  c->cursor = start;
  c->newline_owed = false;
  return true;
}

bool DeliveryBook::drained(const FileRoute& fs, const inputs::Follower& f) const {
  if (fs.fills_in_flight > 0) return false;
  bool all = true;
  fs.forEachCursor([&](uint32_t, const Cursor& c) {
    if (c.newline_owed || c.cursor < f.completeEnd() || c.delivered < f.completeEnd()) {
      all = false;
    }
  });
  return all;
}

void DeliveryBook::pruneBreaks(FileRoute& fs) const {
  if (!fs.follower || fs.follower->breaks().empty()) return;
  uint64_t low = UINT64_MAX;
  fs.forEachCursor([&](uint32_t, const Cursor& c) { low = std::min(low, c.delivered); });
  // A break below every delivered offset is never needed again (a rewind never goes below what
  // was delivered, it only looks for the line start at or before it).
  if (low != UINT64_MAX && low > 0) fs.follower->pruneBreaksBelow(low - 1);
}

void DeliveryBook::release(FileRoute& fs, const inputs::Follower& f, bool keep) {
  if (!keep) {
    uint64_t end = std::max(f.size(), f.completeEnd());
    fs.forEachCursor([&](uint32_t sink_id, const Cursor& c) {
      SinkSlot* slot = table_.slot(sink_id);
      if (!slot || c.delivered >= end) return;
      uint64_t missed = end - c.delivered;
      slot->sink->mutableStats().missed_bytes += missed;
      spdlog::warn("output '{}': {} released before it was delivered: {} bytes missed",
                   slot->sink->name(), f.path(), missed);
    });
    store_.forget(f.identity().dev, f.identity().ino);
  } else if (fs.dirty) {
    // Keep what was delivered up to now: the input comes back (reload) or the agent restarts.
    store_.put(entryFor(fs, f, clock_.unixSeconds()));
  }
}

CheckpointEntry DeliveryBook::entryFor(const FileRoute& fs, const inputs::Follower& f,
                                       int64_t now) const {
  CheckpointEntry e;
  e.identity = f.identity();
  e.input = fs.input();
  e.path = f.path();
  e.updated_unix = now;
  // Offsets of sinks removed by a reload stay (a later reload may bring them back).
  if (const CheckpointEntry* old = store_.find(e.identity.dev, e.identity.ino)) {
    e.offsets = old->offsets;
  }
  fs.forEachCursor([&](uint32_t sink_id, const Cursor& c) {
    if (const SinkSlot* slot = table_.slot(sink_id)) e.offsets[slot->sink->name()] = c.delivered;
  });
  return e;
}

void DeliveryBook::markDirty(FileRoute& fs) {
  fs.dirty = true;
  if (!fs.queued) {
    fs.queued = true;
    dirty_files_.push_back(fs.id);
  }
}

void DeliveryBook::checkpoint() {
  int64_t now = clock_.unixSeconds();
  auto put = [&](FileRoute& fs) {
    fs.last_put_unix = now;
    store_.put(entryFor(fs, *fs.follower, now));
    fs.dirty = false;
  };
  for (uint64_t id : dirty_files_) {
    FileRoute* fs = table_.file(id);
    if (fs == nullptr) continue;
    fs->queued = false;
    if (fs->follower && fs->dirty) put(*fs);
  }
  dirty_files_.clear();
  if (!last_walk_unix_ || now - *last_walk_unix_ >= kWalkSeconds) {
    last_walk_unix_ = now;
    for (auto& [id, fs] : table_.allFiles()) {
      // Unchanged entries are rewritten once an hour, so that their age tells followed files
      // from files gone for good (CheckpointStore::expire).
      if (!fs.follower || (!fs.dirty && now - fs.last_put_unix < kRefreshEntrySeconds)) continue;
      put(fs);
    }
  }
  // Entries of files not followed for a day (deleted, or no longer matched) go.
  size_t expired = store_.expire(now - kExpireEntrySeconds);
  if (expired) spdlog::info("checkpoint: {} entries of files gone for a day expired", expired);
}

}  // namespace logsplice::agent
