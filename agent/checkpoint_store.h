#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/checkpoint_codec.h"
#include "inputs/file_identity.h"
#include "inputs/input_tailer.h"
#include "sys/error.h"
#include "sys/metrics.h"
#include "sys/unique_fd.h"

namespace logsplice::agent {

// When the change log is folded into a new snapshot.
struct CompactionPolicy {
  // The log is compacted once it would grow beyond max(min_log_bytes, the snapshot's size), so
  // compaction costs O(entries) at most once per O(entries) bytes of changes.
  uint64_t min_log_bytes = 256 * 1024;
  bool follow_snapshot_size = true;
  // For tests that want frequent compactions: LOGSPLICE_CHECKPOINT_COMPACT_BYTES=<n> compacts
  // whenever the log would exceed n bytes, whatever the snapshot's size. Unset: the default.
  static CompactionPolicy fromEnv();
};

// The checkpoints in `<data_dir>`: entries keyed by file identity (device, inode; the
// fingerprint guards against inode reuse), never by path. On disk, a snapshot
// (`checkpoints`, written atomically: temp file, fsync, rename, fsync of the directory) and a
// log of the entries changed since (`checkpoints.log`, one checksummed record per change,
// appended and fdatasync'ed), both tagged with a generation so that a crash between writing a
// snapshot and starting its log is unambiguous. A flush costs what changed; the log is folded
// into a new snapshot now and then (CompactionPolicy). Format and recovery rules:
// docs/checkpoint_format.md. Loop thread only.
class CheckpointStore {
 public:
  explicit CheckpointStore(std::string data_dir,
                           CompactionPolicy policy = CompactionPolicy::fromEnv());

  // Checks that data_dir exists (creating it) and is writable, with a clear error otherwise.
  sys::Error prepare();
  // Reads the snapshot and replays the valid records of its log (a torn or damaged record ends
  // the replay). A missing snapshot is an empty store; an unreadable, corrupt or truncated one
  // is an error naming it (the store is then empty, and the caller starts from start_at).
  // Version 1 files (a snapshot without log) are read as they are.
  sys::Error load();

  // The entry of a file, decoded; the pointer is valid until the next find() or change.
  const CheckpointEntry* find(uint64_t dev, uint64_t ino) const;
  // Replaces what is known of a file.
  void put(CheckpointEntry entry);
  void forget(uint64_t dev, uint64_t ino);
  // Files of `input` the store knows, for InputTailer::start.
  std::vector<inputs::KnownFile> knownFiles(const std::string& input) const;
  // Drops entries not updated since older_than_unix (files gone for good).
  size_t expire(int64_t older_than_unix);

  // Persists what changed since the last flush: appends it to the log, or compacts.
  sys::Error flush();
  // Writes a new snapshot and starts an empty log now, whatever changed.
  sys::Error compact();
  bool dirty() const { return dirty_; }
  uint64_t writes() const { return writes_; }
  uint64_t compactions() const { return compactions_; }
  uint64_t generation() const { return generation_; }
  // How long the last flush took (serialise, write, fsync(s), rename(s)).
  double lastWriteSeconds() const { return last_write_seconds_; }
  size_t size() const { return entries_.size(); }
  const std::string& path() const { return path_; }
  const std::string& logPath() const { return log_path_; }
  // logsplice_checkpoint_writes_total, logsplice_checkpoint_last_write_seconds,
  // logsplice_checkpoint_entries and logsplice_checkpoint_compactions_total.
  void collectMetrics(sys::MetricWriter& out) const;

  // The snapshot form of the current entries (exposed for tests).
  std::string serialize() const;
  static sys::Result<std::map<std::pair<uint64_t, uint64_t>, CheckpointEntry>> parse(
      const std::string& text, const std::string& name);

  // Test seam: called at each step of a compaction; returning true stops it right there, as a
  // kill -9 would (the store must then be dropped; load a new one to see what a restart sees).
  enum class CompactStep { kSnapshotTempWritten, kSnapshotRenamed, kLogTempWritten };
  void setCrashHookForTest(std::function<bool(CompactStep)> hook) { crash_hook_ = std::move(hook); }

 private:
  sys::Error appendChanges();
  // Applies the records of a log to the snapshot's entries if the log continues generation
  // `gen`; `pos` is where the records start (after the header).
  void replayLog(const std::string& log_text, bool log_headed, uint64_t log_gen, uint64_t gen,
                 size_t pos, ckpt::EntryMap& loaded);
  sys::Error writeSnapshot(uint64_t generation, size_t* bytes);
  sys::Error startLog(uint64_t generation);
  bool crashAt(CompactStep step) const { return crash_hook_ && crash_hook_(step); }
  uint64_t compactThreshold() const;
  void noteChanged(const ckpt::Key& key);

  std::string dir_;
  std::string path_;
  std::string log_path_;
  CompactionPolicy policy_;
  // Each entry is held as its log record's payload (what appendPutPayload writes): one string
  // per file instead of a decoded entry with its strings and offsets, ~100 bytes less a file.
  struct Stored {
    int64_t updated_unix = 0;
    std::string payload;
  };
  std::string snapshotText(uint64_t generation) const;
  std::map<ckpt::Key, Stored> entries_;
  mutable CheckpointEntry found_;  // what find() returned last
  std::set<ckpt::Key> changed_;    // put or forgotten since the last flush
  sys::UniqueFd log_fd_;           // open once a compaction started the log; closed = compact next
  uint64_t generation_ = 0;        // of the snapshot on disk (or the highest seen)
  uint64_t log_bytes_ = 0;
  uint64_t snapshot_bytes_ = 0;
  int64_t oldest_updated_ = INT64_MIN;  // a lower bound of every entry's updated_unix
  bool dirty_ = false;
  uint64_t writes_ = 0;
  uint64_t compactions_ = 0;
  double last_write_seconds_ = 0;
  std::function<bool(CompactStep)> crash_hook_;
};

}  // namespace logsplice::agent
