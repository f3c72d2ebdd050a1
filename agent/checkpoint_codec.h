#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "inputs/file_identity.h"
#include "sys/error.h"

namespace logsplice::agent {

// Sink name -> delivered offset, sorted by name, with the part of std::map's interface the
// agent uses. A flat vector: a file has one or a few outputs, and a tree node per output cost
// ~100 bytes a file, which counts with 100,000 files.
class SinkOffsets {
 public:
  using value_type = std::pair<std::string, uint64_t>;
  using iterator = std::vector<value_type>::iterator;
  using const_iterator = std::vector<value_type>::const_iterator;

  uint64_t& operator[](const std::string& name) {
    auto it = lowerBound(name);
    if (it == v_.end() || it->first != name) it = v_.insert(it, {name, 0});
    return it->second;
  }
  const uint64_t& at(const std::string& name) const {
    auto it = find(name);
    if (it == v_.end()) throw std::out_of_range("no offset for output '" + name + "'");
    return it->second;
  }
  const_iterator find(const std::string& name) const {
    auto it =
        std::lower_bound(v_.begin(), v_.end(), name,
                         [](const value_type& e, const std::string& n) { return e.first < n; });
    return it != v_.end() && it->first == name ? it : v_.end();
  }
  size_t count(const std::string& name) const { return find(name) == v_.end() ? 0 : 1; }
  const_iterator begin() const { return v_.begin(); }
  const_iterator end() const { return v_.end(); }
  size_t size() const { return v_.size(); }
  bool empty() const { return v_.empty(); }
  bool operator==(const SinkOffsets& other) const { return v_ == other.v_; }

 private:
  iterator lowerBound(const std::string& name) {
    return std::lower_bound(v_.begin(), v_.end(), name,
                            [](const value_type& e, const std::string& n) { return e.first < n; });
  }
  std::vector<value_type> v_;
};

// For one followed file: the offset each sink has delivered (written to its archive, or
// acknowledged by the collector's TCP stack), plus the path last seen to find the file again.
struct CheckpointEntry {
  inputs::FileIdentity identity;
  std::string input;
  std::string path;
  SinkOffsets offsets;  // sink name -> delivered offset
  int64_t updated_unix = 0;
};

// The on-disk encoding of the checkpoints (docs/checkpoint_format.md): the snapshot file
// (`checkpoints`, text, one checksum over the whole file) and the records of the change log
// (`checkpoints.log`, each framed with its length and CRC32C so a torn or damaged record is
// detected on its own). Pure functions, no I/O.
namespace ckpt {

using Key = std::pair<uint64_t, uint64_t>;  // (dev, ino)
using EntryMap = std::map<Key, CheckpointEntry>;

inline Key keyOf(const CheckpointEntry& e) {
  return {e.identity.dev, e.identity.ino};
}

// CRC32C (Castagnoli), as iSCSI and ext4 use it: crc32c("123456789") == 0xE3069283.
uint32_t crc32c(std::string_view data);

// Percent-encoding of names and paths: every byte outside printable ASCII, and space and '%',
// is written %XX; the empty string is a lone '%'.
void appendEncoded(std::string& out, std::string_view s);
bool decode(std::string_view s, std::string* out);

// ---- Snapshot ----

struct Snapshot {
  EntryMap entries;
  int version = 0;
  uint64_t generation = 0;  // version 1 files have none: 0
};
// Version 2: "logsplice-checkpoints 2 <generation>", f/s records, "end <count> <fnv1a64>".
std::string serializeSnapshot(const EntryMap& entries, uint64_t generation);
// The same, built piece by piece from entries held as put payloads (appendPutPayload).
void appendSnapshotHeader(std::string& out, uint64_t generation);
void appendSnapshotEntry(std::string& out, std::string_view put_payload);
void appendSnapshotTrailer(std::string& out, size_t count);
// Reads versions 1 and 2. Errors are kCorrupt and start with `name`.
sys::Result<Snapshot> parseSnapshot(const std::string& text, const std::string& name);
// The generation named by a snapshot's first line, even when the rest is damaged (0 if none).
uint64_t peekSnapshotGeneration(const std::string& text);

// ---- Log records ----

// One record: "<payload length> <crc32c of payload: 8 hex> <payload>\n". Payloads have no
// newline (every name is percent-encoded).
void appendRecord(std::string& out, std::string_view payload);
// The first record of a log: the snapshot generation it continues.
std::string logHeaderPayload(uint64_t generation);
// "p ...": an entry as it is now (replaces what was known). "d <dev> <ino>": forgotten.
void appendPutPayload(std::string& out, const CheckpointEntry& e);
void appendForgetPayload(std::string& out, const Key& key);

// Reads the record at `*pos` of `text`. kOk: *payload set, *pos moved past it. kEnd: *pos is
// at the end. kBad: a torn (incomplete) or damaged record starts at *pos.
enum class ReadStatus { kOk, kEnd, kBad };
ReadStatus readRecord(std::string_view text, size_t* pos, std::string_view* payload);
// The generation of a header payload; false if `payload` is not a log header.
bool parseLogHeader(std::string_view payload, uint64_t* generation);
// Decodes a "p ..." payload; false if it is not one.
bool parsePutPayload(std::string_view payload, CheckpointEntry* e);
// Applies a put or forget record; false if the payload is neither (nothing changed then).
bool applyRecord(std::string_view payload, EntryMap& entries);

}  // namespace ckpt
}  // namespace logsplice::agent
