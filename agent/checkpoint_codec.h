#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "sys/error.h"
#include "inputs/file_identity.h"

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

// The on-disk encoding of the checkpoints (docs/checkpoint_format.md): the snapshot file
// (`checkpoints`, text, one checksum over the whole file) and the records of the change log
// (`checkpoints.log`, each framed with its length and CRC32C so a torn or damaged record is
// detected on its own). Pure functions, no I/O.
namespace ckpt {

using Key = std::pair<uint64_t, uint64_t>;  // (dev, ino)
using EntryMap = std::map<Key, CheckpointEntry>;

inline Key keyOf(const CheckpointEntry& e) { return {e.identity.dev, e.identity.ino}; }

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
// Applies a put or forget record; false if the payload is neither (nothing changed then).
bool applyRecord(std::string_view payload, EntryMap& entries);

}  // namespace ckpt
}  // namespace logsplice::agent
