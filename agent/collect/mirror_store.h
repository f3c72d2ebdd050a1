#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sys/error.h"
#include "sys/unique_fd.h"

namespace logsplice::agent::collect {

// Who a stream is: the session's host, then what OPEN said (docs/protocol.md).
struct StreamKey {
  std::string host;
  std::string input;
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t generation = 0;
  auto operator<=>(const StreamKey&) const = default;
};

// One mirror file: where it is, what of it is durable, and its descriptor while in use.
struct MirrorFile {
  StreamKey key;
  uint64_t fingerprint = 0;
  uint32_t fingerprint_len = 0;
  std::string rel;       // relative to the store's dir
  uint64_t durable = 0;  // fdatasync'ed and recorded in the index
  uint64_t written = 0;  // bytes in the file (valid while fd is open)
  // Disk blocks reserved up to here (fallocate KEEP_SIZE past the end; valid while fd is
  // open): released by cutting the file to `written` when it closes.
  uint64_t allocated = 0;
  sys::UniqueFd fd;
  void* owner = nullptr;  // the connection that has the stream open (one at a time)
};

// One group of syncs, run off the loop (uv_queue_work): fdatasync of each mirror with unsynced
// bytes, the disk blocks of the mirrors that are close to the end of their reservation reserved
// further, then the index (with their new lengths) written to a temp file, synced and renamed
// into place, and the directory synced. Only plain descriptors and text: the store is not
// touched from the worker thread.
struct SyncJob {
  // Disk blocks to reserve past a mirror's end once it is synced (fallocate KEEP_SIZE of
  // [from, to)); `result` is 0 or the errno, read back by finishSync.
  struct Reservation {
    int fd = -1;
    StreamKey key;
    uint64_t from = 0;
    uint64_t to = 0;
    int result = 0;
  };
  std::vector<int> fds;
  std::vector<std::pair<StreamKey, uint64_t>> ends;  // in the store's key order
  std::vector<Reservation> reserve;
  std::string index_text;
  std::string dir;
  sys::Error err;
  void run();
};

// Writes an index file atomically (temp file, fdatasync, rename, directory fsync).
sys::Error writeIndex(const std::string& dir, const std::string& text);

// The collector's mirrors and their index (DIR/.index, rewritten whole by atomic rename, see
// docs/protocol.md "Layout"): maps each stream identity to its mirror file and durable length.
// Loop thread only.
class MirrorStore {
 public:
  static constexpr const char* kIndexName = ".index";
  static constexpr const char* kIndexHeader = "logsplice-collect-index 1";

  explicit MirrorStore(std::string dir) : dir_(std::move(dir)) {}

  // Creates the dir and reads the index (a missing index is an empty one; a bad line is
  // skipped with a warning; a bad header is an error).
  sys::Error load();
  const std::string& dir() const { return dir_; }

  // The mirror of a stream, created (named, its directories made) when new, its descriptor
  // opened when not open. A file opened afresh is cut back to its durable length: bytes past
  // it were never acknowledged and will be sent again.
  sys::Result<MirrorFile*> open(const StreamKey& key, uint64_t fingerprint,
                                uint32_t fingerprint_len, std::string_view path);
  // The stream is no longer used by a connection: its descriptor closes once synced.
  void release(MirrorFile* f);
  // Disk blocks are reserved ahead of the writes (fallocate KEEP_SIZE, the size unchanged), so
  // that the page-cache writes land in allocated extents and ext4 skips its per-page
  // delayed-allocation work (docs/design.md 2.1 "Preallocation"). The reserving is part of the
  // sync job, off the loop: fallocate waits for the journal while a commit runs (tens of ms
  // seen), and on the loop that stalled every connection. A sync job reserves, for each mirror
  // it syncs whose reservation ends less than kPreallocateBytes past what is written, up to
  // 2 x kPreallocateBytes past it. Writes past the reservation are ordinary delayed-allocation
  // writes. Where the filesystem cannot, nothing is reserved any more; a full disk reserves
  // nothing and the write itself decides.
  static constexpr uint64_t kPreallocateBytes = 16 << 20;
  // A sync of every file with unsynced bytes and of the index, to run off the loop; null when
  // there is nothing to do. Descriptors stay open until finishSync (a file with unsynced bytes
  // is never closed). `reserve` false: no blocks reserved ahead (the disk is nearly full).
  std::unique_ptr<SyncJob> prepareSync(bool reserve = true);
  // After job.run(): the durable lengths grow and `synced` is called for each file whose
  // length grew. On failure nothing more counts as durable (the error is returned).
  sys::Error finishSync(SyncJob& job, const std::function<void(MirrorFile&)>& synced);
  bool syncInFlight() const { return sync_in_flight_; }
  // prepareSync, run and finishSync on this thread.
  sys::Error syncAll(const std::function<void(MirrorFile&)>& synced);
  bool dirty() const;
  size_t size() const { return files_.size(); }
  void forEach(const std::function<void(const MirrorFile&)>& fn) const;

  // Writes the index now (atomic rename); exposed for tests.
  sys::Error saveIndex();

 private:
  std::string uniqueRel(const StreamKey& key, std::string_view path);
  bool taken(const std::string& rel) const;
  // Makes the directories of a mirror and opens it for writing (created if missing).
  sys::Result<sys::UniqueFd> openMirror(const std::string& rel) const;
  // Whether an OPEN's fingerprint fits the mirror that has the key (not an inode reused).
  bool sameFile(const MirrorFile& f, uint64_t fingerprint, uint32_t fingerprint_len) const;
  // Closes a mirror's descriptor, first giving back the blocks reserved past its end.
  void closeFile(MirrorFile& f);

  std::string dir_;
  std::map<StreamKey, std::unique_ptr<MirrorFile>> files_;
  std::set<std::string> rels_;
  bool index_dirty_ = false;
  bool sync_in_flight_ = false;
  bool preallocate_ = true;  // off once the filesystem said it cannot
};

}  // namespace logsplice::agent::collect
