#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sys/error.h"
#include "sys/metrics.h"
#include "inputs/file_identity.h"
#include "inputs/input_tailer.h"

namespace logsplice::agent {

// For one followed file: the offset each sink has delivered (written to its archive, or
// acknowledged by the collector's TCP stack), plus the path last seen to find the file again.
struct CheckpointEntry {
  inputs::FileIdentity identity;
  std::string input;
  std::string path;
  std::map<std::string, uint64_t> offsets;  // sink name -> delivered offset
  int64_t updated_unix = 0;
};

// The checkpoint file `<data_dir>/checkpoints`: entries keyed by file identity (device, inode;
// the fingerprint guards against inode reuse), never by path. Written atomically (temp file,
// fsync, rename, fsync of the directory). Format: docs/checkpoint_format.md. Loop thread only.
class CheckpointStore {
 public:
  explicit CheckpointStore(std::string data_dir);

  // Checks that data_dir exists (creating it) and is writable, with a clear error otherwise.
  sys::Error prepare();
  // Reads the file. A missing file is an empty store; an unreadable, corrupt or truncated one
  // is an error naming it (the store is then empty, and the caller starts from start_at).
  sys::Error load();

  const CheckpointEntry* find(uint64_t dev, uint64_t ino) const;
  // Replaces what is known of a file.
  void put(CheckpointEntry entry);
  void forget(uint64_t dev, uint64_t ino);
  // Files of `input` the store knows, for InputTailer::start.
  std::vector<inputs::KnownFile> knownFiles(const std::string& input) const;
  // Drops entries not updated since older_than_unix (files gone for good).
  size_t expire(int64_t older_than_unix);

  // Writes the file if anything changed since the last write.
  sys::Error flush();
  bool dirty() const { return dirty_; }
  uint64_t writes() const { return writes_; }
  // How long the last write took (serialise, write, fsync, rename, fsync of the directory).
  double lastWriteSeconds() const { return last_write_seconds_; }
  size_t size() const { return entries_.size(); }
  const std::string& path() const { return path_; }
  // logsplice_checkpoint_writes_total, logsplice_checkpoint_last_write_seconds and
  // logsplice_checkpoint_entries.
  void collectMetrics(sys::MetricWriter& out) const;

  // The serialised form (exposed for tests).
  std::string serialize() const;
  static sys::Result<std::map<std::pair<uint64_t, uint64_t>, CheckpointEntry>> parse(
      const std::string& text, const std::string& name);

 private:
  std::string dir_;
  std::string path_;
  std::map<std::pair<uint64_t, uint64_t>, CheckpointEntry> entries_;
  bool dirty_ = false;
  uint64_t writes_ = 0;
  double last_write_seconds_ = 0;
};

}  // namespace logsplice::agent
