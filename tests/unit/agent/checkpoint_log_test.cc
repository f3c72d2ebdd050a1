// CheckpointStore's snapshot + change log: appends cost what changed, torn and damaged records
// are ignored, a crash at any step of a compaction loses nothing that was flushed, and the
// version 1 file still loads.

#include <catch2/catch.hpp>
#include <cinttypes>
#include <cstdio>
#include <string>

#include "agent/checkpoint_codec.h"
#include "agent/checkpoint_store.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::agent;
using logsplice::testing::exists;
using logsplice::testing::readFile;
using logsplice::testing::TempDir;
using logsplice::testing::writeFile;

namespace {

// Never compacts by itself: the tests choose when.
const CompactionPolicy kNoAutoCompaction{uint64_t{1} << 40, false};

CheckpointEntry entry(uint64_t ino, uint64_t offset, int64_t updated = 100) {
  CheckpointEntry e;
  e.identity.dev = 2049;
  e.identity.ino = ino;
  e.identity.fingerprint = 0x0123456789abcdefULL ^ ino;
  e.identity.fingerprint_len = 64;
  e.input = "web";
  e.path = "/var/log/web/" + std::to_string(ino) + " .log";
  e.offsets["central"] = offset;
  e.offsets["local archive"] = offset / 2;
  e.updated_unix = updated;
  return e;
}

// What a restarted agent would see.
ckpt::EntryMap reload(const std::string& dir) {
  CheckpointStore store(dir, kNoAutoCompaction);
  sys::Error err = store.load();
  INFO(err.toString());
  REQUIRE(err.isOk());
  ckpt::EntryMap out;
  for (const auto& k : store.knownFiles("web")) {
    out[{k.identity.dev, k.identity.ino}] = *store.find(k.identity.dev, k.identity.ino);
  }
  REQUIRE(out.size() == store.size());
  return out;
}

void checkSameMap(const ckpt::EntryMap& got, const ckpt::EntryMap& want) {
  REQUIRE(got.size() == want.size());
  for (const auto& [key, e] : want) {
    auto it = got.find(key);
    REQUIRE(it != got.end());
    CHECK(it->second.offsets == e.offsets);
    CHECK(it->second.path == e.path);
    CHECK(it->second.updated_unix == e.updated_unix);
    CHECK(it->second.identity.fingerprint == e.identity.fingerprint);
  }
}

ckpt::EntryMap stateOf(const CheckpointStore& store, uint64_t max_ino) {
  ckpt::EntryMap out;
  for (uint64_t ino = 0; ino <= max_ino; ++ino) {
    if (const CheckpointEntry* e = store.find(2049, ino)) out[{2049, ino}] = *e;
  }
  return out;
}

}  // namespace

TEST_CASE("crc32c matches the Castagnoli check value") {
  CHECK(ckpt::crc32c("123456789") == 0xE3069283u);
  CHECK(ckpt::crc32c("") == 0);
}

TEST_CASE("CheckpointStore: a flush appends what changed; the snapshot is not rewritten") {
  TempDir dir;
  CheckpointStore store(dir.path(), kNoAutoCompaction);
  for (uint64_t ino = 1; ino <= 200; ++ino) store.put(entry(ino, ino * 10));
  REQUIRE(store.flush().isOk());  // the first flush writes a snapshot and starts the log
  CHECK(store.compactions() == 1);
  CHECK(store.generation() == 1);
  const std::string snapshot = readFile(store.path());
  const size_t log_start = readFile(store.logPath()).size();

  store.put(entry(7, 7777));
  store.forget(2049, 8);
  REQUIRE(store.flush().isOk());
  CHECK(store.writes() == 2);
  CHECK(store.compactions() == 1);
  CHECK(readFile(store.path()) == snapshot);
  std::string log = readFile(store.logPath());
  CHECK(log.size() > log_start);
  CHECK(log.size() - log_start < 400);  // two records, not 200 entries

  auto seen = reload(dir.path());
  CHECK(seen.size() == 199);
  CHECK(seen.count({2049, 8}) == 0);
  CHECK(seen.at({2049, 7}).offsets.at("central") == 7777);
  CHECK(seen.at({2049, 9}).offsets.at("central") == 90);
}

TEST_CASE("CheckpointStore: a log cut at every byte of its last record loses only that record") {
  TempDir dir;
  ckpt::EntryMap before, after;
  size_t good_end = 0;
  {
    CheckpointStore store(dir.path(), kNoAutoCompaction);
    for (uint64_t ino = 1; ino <= 5; ++ino) store.put(entry(ino, 100));
    REQUIRE(store.flush().isOk());
    store.put(entry(2, 200));
    REQUIRE(store.flush().isOk());
    before = stateOf(store, 10);
    good_end = readFile(store.logPath()).size();
    store.put(entry(3, 300));  // the last record
    REQUIRE(store.flush().isOk());
    after = stateOf(store, 10);
  }
  const std::string full = readFile(dir / "checkpoints.log");
  REQUIRE(full.size() > good_end + 20);
  for (size_t cut = good_end; cut < full.size(); ++cut) {
    CAPTURE(cut);
    writeFile(dir / "checkpoints.log", full.substr(0, cut));
    checkSameMap(reload(dir.path()), before);
  }
  writeFile(dir / "checkpoints.log", full);
  checkSameMap(reload(dir.path()), after);

  // After a torn tail the store never appends behind the garbage: it compacts first.
  writeFile(dir / "checkpoints.log", full.substr(0, full.size() - 3));
  {
    CheckpointStore store(dir.path(), kNoAutoCompaction);
    REQUIRE(store.load().isOk());
    store.put(entry(4, 400));
    REQUIRE(store.flush().isOk());
    CHECK(store.compactions() == 1);
    CHECK(store.generation() == 2);
    store.put(entry(5, 500));
    REQUIRE(store.flush().isOk());
  }
  auto seen = reload(dir.path());
  CHECK(seen.at({2049, 2}).offsets.at("central") == 200);
  CHECK(seen.at({2049, 3}).offsets.at("central") == 100);  // the torn record stayed lost
  CHECK(seen.at({2049, 4}).offsets.at("central") == 400);
  CHECK(seen.at({2049, 5}).offsets.at("central") == 500);
}

TEST_CASE("CheckpointStore: a damaged record ends the replay; what came before stands") {
  TempDir dir;
  ckpt::EntryMap before;
  size_t second_record = 0;
  {
    CheckpointStore store(dir.path(), kNoAutoCompaction);
    store.put(entry(1, 10));
    REQUIRE(store.flush().isOk());
    store.put(entry(1, 20));
    REQUIRE(store.flush().isOk());
    before = stateOf(store, 10);
    second_record = readFile(store.logPath()).size();
    store.put(entry(1, 30));
    REQUIRE(store.flush().isOk());
    store.put(entry(2, 40));
    REQUIRE(store.flush().isOk());
  }
  const std::string full = readFile(dir / "checkpoints.log");
  const size_t payload = full.find(" p ", second_record) + 1;
  struct Case {
    const char* what;
    size_t at;
    char with;
  };
  Case cases[] = {
      {"payload byte", payload + 10, 'X'},
      {"length digit", second_record, '9'},
      {"crc digit", full.find(' ', second_record) + 1, 'z'},
      {"newline", full.find('\n', second_record), ' '},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    std::string damaged = full;
    REQUIRE(damaged[c.at] != c.with);
    damaged[c.at] = c.with;
    writeFile(dir / "checkpoints.log", damaged);
    // Offset 20 of ino 1 stands; the damaged 30 and the later ino 2 are not believed.
    checkSameMap(reload(dir.path()), before);
  }
  // A damaged header: the whole log is ignored, the snapshot stands.
  std::string bad_header = full;
  bad_header[5] ^= 1;
  writeFile(dir / "checkpoints.log", bad_header);
  auto seen = reload(dir.path());
  CHECK(seen.at({2049, 1}).offsets.at("central") == 10);
  CHECK(seen.count({2049, 2}) == 0);
}

TEST_CASE("CheckpointStore: a crash at any step of a compaction loses nothing flushed") {
  using Step = CheckpointStore::CompactStep;
  auto step = GENERATE(Step::kSnapshotTempWritten, Step::kSnapshotRenamed, Step::kLogTempWritten);
  CAPTURE(static_cast<int>(step));
  TempDir dir;
  ckpt::EntryMap flushed, compacted;
  {
    CheckpointStore store(dir.path(), kNoAutoCompaction);
    for (uint64_t ino = 1; ino <= 20; ++ino) store.put(entry(ino, ino));
    REQUIRE(store.flush().isOk());
    for (uint64_t ino = 1; ino <= 20; ino += 2) store.put(entry(ino, ino * 100));
    store.forget(2049, 20);
    REQUIRE(store.flush().isOk());  // appended to the log of generation 1
    flushed = stateOf(store, 30);
    store.put(entry(21, 2100));
    compacted = stateOf(store, 30);
    store.setCrashHookForTest([step](Step s) { return s == step; });
    CHECK_FALSE(store.compact().isOk());  // "killed" at `step`
  }
  // Before the rename the old snapshot and its log are the truth; from the rename on, the new
  // snapshot is, and the old log (an older generation) is ignored rather than replayed onto it.
  auto seen = reload(dir.path());
  checkSameMap(seen, step == Step::kSnapshotTempWritten ? flushed : compacted);

  // The restarted store goes on from there, with a generation above any on disk.
  {
    CheckpointStore store(dir.path(), kNoAutoCompaction);
    REQUIRE(store.load().isOk());
    store.put(entry(22, 2200));
    REQUIRE(store.flush().isOk());
    CHECK(store.generation() >= 2);
    store.put(entry(1, 1));
    REQUIRE(store.flush().isOk());
  }
  seen = reload(dir.path());
  CHECK(seen.at({2049, 22}).offsets.at("central") == 2200);
  CHECK(seen.at({2049, 1}).offsets.at("central") == 1);
  CHECK(seen.at({2049, 3}).offsets.at("central") == 300);
  CHECK(seen.count({2049, 20}) == 0);
  CHECK_FALSE(exists(dir / "checkpoints.log.tmp"));
}

TEST_CASE("CheckpointStore: the log is compacted once it outgrows the snapshot") {
  TempDir dir;
  CheckpointStore store(dir.path(), CompactionPolicy{4096, true});
  for (uint64_t ino = 1; ino <= 100; ++ino) store.put(entry(ino, 0));
  REQUIRE(store.flush().isOk());
  const size_t snapshot = readFile(store.path()).size();
  REQUIRE(snapshot > 4096);
  uint64_t appends_before_compaction = 0;
  for (uint64_t round = 1; store.compactions() == 1; ++round) {
    REQUIRE(round < 1000);
    store.put(entry(round % 100 + 1, round));
    REQUIRE(store.flush().isOk());
    ++appends_before_compaction;
    CHECK(readFile(store.logPath()).size() <= snapshot + 200);
  }
  CHECK(appends_before_compaction > 10);
  CHECK(store.generation() == 2);
  auto seen = reload(dir.path());
  checkSameMap(seen, stateOf(store, 200));
}

TEST_CASE("CheckpointStore: LOGSPLICE_CHECKPOINT_COMPACT_BYTES sets a fixed log size") {
  ::setenv("LOGSPLICE_CHECKPOINT_COMPACT_BYTES", "1000", 1);
  CompactionPolicy p = CompactionPolicy::fromEnv();
  ::unsetenv("LOGSPLICE_CHECKPOINT_COMPACT_BYTES");
  CHECK(p.min_log_bytes == 1000);
  CHECK_FALSE(p.follow_snapshot_size);
  CompactionPolicy d = CompactionPolicy::fromEnv();
  CHECK(d.follow_snapshot_size);
  CHECK(d.min_log_bytes == CompactionPolicy{}.min_log_bytes);
}

TEST_CASE("CheckpointStore reads a version 1 file and moves on to snapshot + log") {
  TempDir dir;
  // Written by the previous release: one text file, no generation, no log.
  std::string body =
      "logsplice-checkpoints 1\n"
      "f 2049 7 0123456789abcde8 64 100 web /var/log/web/7%20.log\n"
      "s central 700\n"
      "s local%20archive 350\n";
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char trailer[64];
  std::snprintf(trailer, sizeof trailer, "end 1 %016" PRIx64 "\n", h);
  writeFile(dir / "checkpoints", body + trailer);

  auto seen = reload(dir.path());
  checkSameMap(seen, {{{2049, 7}, entry(7, 700)}});
  {
    CheckpointStore store(dir.path(), kNoAutoCompaction);
    REQUIRE(store.load().isOk());
    CHECK(store.generation() == 0);
    store.put(entry(8, 800));
    REQUIRE(store.flush().isOk());
    CHECK(store.generation() == 1);
  }
  CHECK(readFile(dir / "checkpoints").rfind("logsplice-checkpoints 2 1\n", 0) == 0);
  CHECK(exists(dir / "checkpoints.log"));
  seen = reload(dir.path());
  checkSameMap(seen, {{{2049, 7}, entry(7, 700)}, {{2049, 8}, entry(8, 800)}});
}
