// CheckpointStore: the versioned, checksummed checkpoint file, written atomically.

#include "agent/checkpoint_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cinttypes>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "tests/support/recording_metric_writer.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::agent;
using logsplice::testing::exists;
using logsplice::testing::readFile;
using logsplice::testing::TempDir;
using logsplice::testing::writeFile;

namespace {

CheckpointEntry entry(uint64_t dev, uint64_t ino, std::string input, std::string path,
                      int64_t updated) {
  CheckpointEntry e;
  e.identity.dev = dev;
  e.identity.ino = ino;
  e.identity.fingerprint = 0xfedcba9876543210ULL ^ ino;
  e.identity.fingerprint_len = static_cast<uint32_t>(ino % 1025);
  e.input = std::move(input);
  e.path = std::move(path);
  e.updated_unix = updated;
  return e;
}

void checkSame(const CheckpointEntry& a, const CheckpointEntry& b) {
  CHECK(a.identity.dev == b.identity.dev);
  CHECK(a.identity.ino == b.identity.ino);
  CHECK(a.identity.fingerprint == b.identity.fingerprint);
  CHECK(a.identity.fingerprint_len == b.identity.fingerprint_len);
  CHECK(a.input == b.input);
  CHECK(a.path == b.path);
  CHECK(a.offsets == b.offsets);
  CHECK(a.updated_unix == b.updated_unix);
}

// The checksum the format uses (64-bit FNV-1a over everything before the end record), so the
// tests can write files that are well formed except for one thing.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string withTrailer(const std::string& body, size_t count) {
  char trailer[64];
  std::snprintf(trailer, sizeof trailer, "end %zu %016" PRIx64 "\n", count, fnv1a(body));
  return body + trailer;
}

}  // namespace

TEST_CASE("CheckpointStore round-trips awkward paths, names and large values") {
  TempDir dir;
  std::string data = dir / "data";
  std::vector<CheckpointEntry> entries;
  {
    CheckpointStore store(data);
    REQUIRE(store.prepare().isOk());
    auto a = entry(2049, 7, "nginx", "/var/log/with space/a b.log", 1700000000);
    a.offsets["central"] = 12345;
    a.offsets["local archive"] = UINT64_MAX - 1;
    auto b = entry(UINT64_MAX, UINT64_MAX - 3, "in%put", "/tmp/100%/%41%zz%", -5);
    b.offsets["%"] = 0;
    auto c = entry(1, 2, "", "/tmp/new\nline\r\tand\x01ctl", 0);
    c.offsets[""] = 1;
    auto d = entry(3, 4, "ünïcødé", "/var/log/日本語/файл.log", 42);
    d.offsets["sink ☃"] = 99;
    auto e = entry(5, 6, "x", "end 1 0000000000000000", 7);  // looks like the end record
    e.offsets["end"] = 8;
    entries = {a, b, c, d, e};
    for (const auto& x : entries) store.put(x);
    CHECK(store.dirty());
    REQUIRE(store.flush().isOk());
    CHECK_FALSE(store.dirty());
    CHECK(store.writes() == 1);
    // Nothing changed: no second write.
    REQUIRE(store.flush().isOk());
    CHECK(store.writes() == 1);
  }
  CheckpointStore again(data);
  REQUIRE(again.load().isOk());
  REQUIRE(again.size() == entries.size());
  for (const auto& x : entries) {
    CAPTURE(x.path);
    const CheckpointEntry* got = again.find(x.identity.dev, x.identity.ino);
    REQUIRE(got != nullptr);
    checkSame(*got, x);
  }
  CHECK(again.find(9, 9) == nullptr);
}

TEST_CASE("CheckpointStore serialize/parse agree, and the text is line oriented") {
  CheckpointStore store("/nonexistent");
  auto a = entry(1, 2, "in put", "/a\nb", 3);
  a.offsets["s\n1"] = 10;
  store.put(a);
  std::string text = store.serialize();
  // Newlines inside values are encoded: 1 header + 1 file + 1 sink + 1 end record.
  CHECK(std::count(text.begin(), text.end(), '\n') == 4);
  auto parsed = CheckpointStore::parse(text, "mem");
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size() == 1);
  checkSame(parsed->begin()->second, a);
}

TEST_CASE("CheckpointStore flush is atomic: temp files renamed away, old content until then") {
  TempDir dir;
  CheckpointStore store(dir.path());
  REQUIRE(store.prepare().isOk());
  auto a = entry(1, 2, "in", "/p", 3);
  a.offsets["s"] = 10;
  store.put(a);
  REQUIRE(store.flush().isOk());
  CHECK(exists(store.path()));
  CHECK_FALSE(exists(store.path() + ".tmp"));
  CHECK_FALSE(exists(store.logPath() + ".tmp"));
  // What is on disk: the snapshot and the log of the changes since.
  auto on_disk = [&] { return readFile(store.path()) + readFile(store.logPath()); };
  std::string first = on_disk();

  a.offsets["s"] = 20;
  store.put(a);
  REQUIRE(store.flush().isOk());
  CHECK_FALSE(exists(store.path() + ".tmp"));
  CHECK(on_disk() != first);
  CheckpointStore again(dir.path());
  REQUIRE(again.load().isOk());
  CHECK(again.find(1, 2)->offsets.at("s") == 20);

  // A stale temp file from a crash mid-write is ignored by load and replaced by the next flush.
  writeFile(store.path() + ".tmp", "garbage from a crash");
  CheckpointStore after_crash(dir.path());
  REQUIRE(after_crash.load().isOk());
  CHECK(after_crash.find(1, 2)->offsets.at("s") == 20);
  after_crash.put(entry(3, 4, "in", "/q", 5));
  REQUIRE(after_crash.flush().isOk());
  CHECK_FALSE(exists(store.path() + ".tmp"));
}

TEST_CASE("CheckpointStore: a missing file is an empty store") {
  TempDir dir;
  CheckpointStore store(dir.path());
  REQUIRE(store.load().isOk());
  CHECK(store.size() == 0);
  CHECK(store.knownFiles("any").empty());
}

TEST_CASE("CheckpointStore: a bad file is a kCorrupt error naming it, and the store is empty") {
  TempDir dir;
  CheckpointStore good(dir.path());
  auto a = entry(1, 2, "in", "/var/log/a.log", 3);
  a.offsets["s"] = 10;
  good.put(a);
  good.put(entry(4, 5, "in", "/var/log/b.log", 6));
  const std::string text = good.serialize();
  const std::string body = text.substr(0, text.rfind("end "));

  struct Case {
    const char* what;
    std::string content;
    const char* reason;  // expected in the message
  };
  std::string flipped = text;
  flipped[text.find("a.log")] = 'A';  // same length, different bytes
  std::string wrong_version = body;
  wrong_version.replace(0, body.find('\n'), "logsplice-checkpoints 3");
  std::string bad_record = body + "x what is this\n";
  std::string bad_number = body + "s sink notanumber\n";
  std::string not_ours = "hello world\n";
  Case cases[] = {
      {"empty", "", "truncated"},
      {"garbage", "\x01\x02\x03 not a checkpoint", "truncated"},
      {"truncated in the middle", text.substr(0, text.size() / 2), ""},
      {"truncated inside the end record", text.substr(0, text.size() - 6), "checksum"},
      {"no end record", body, "truncated"},
      {"bad checksum", flipped, "checksum"},
      {"wrong version", withTrailer(wrong_version, 2), "version 3"},
      {"unknown record", withTrailer(bad_record, 2), "unknown record"},
      {"bad sink record", withTrailer(bad_number, 2), "bad sink record"},
      {"entry count", withTrailer(body, 3), "count"},
      {"another file", withTrailer(not_ours, 0), "not a checkpoint file"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    writeFile(dir / "checkpoints", c.content);
    CheckpointStore store(dir.path());
    store.put(entry(7, 7, "stale", "/stale", 1));  // load replaces whatever was there
    sys::Error err = store.load();
    CHECK(err.code() == sys::ErrorCode::kCorrupt);
    CHECK_THAT(err.toString(), Catch::Contains(store.path()));
    CHECK_THAT(err.toString(), Catch::Contains(c.reason));
    CHECK(store.size() == 0);
  }
  // The untouched text parses.
  writeFile(dir / "checkpoints", text);
  CheckpointStore store(dir.path());
  CHECK(store.load().isOk());
  CHECK(store.size() == 2);
}

TEST_CASE("CheckpointStore: an unreadable checkpoint path is an error naming it") {
  TempDir dir;
  REQUIRE(::mkdir((dir / "checkpoints").c_str(), 0755) == 0);  // a directory: read fails
  CheckpointStore store(dir.path());
  sys::Error err = store.load();
  CHECK_FALSE(err.isOk());
  CHECK_THAT(err.toString(), Catch::Contains(store.path()));
}

TEST_CASE("CheckpointStore::prepare creates data_dir or says clearly why it cannot") {
  TempDir dir;
  SECTION("creates missing parents") {
    CheckpointStore store(dir / "a/b/c");
    REQUIRE(store.prepare().isOk());
    struct stat st {};
    REQUIRE(::stat((dir / "a/b/c").c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    store.put(entry(1, 1, "i", "/p", 1));
    CHECK(store.flush().isOk());
  }
  SECTION("a path below a regular file (ENOTDIR, even as root)") {
    writeFile(dir / "file", "x");
    CheckpointStore store(dir / "file/sub");
    sys::Error err = store.prepare();
    REQUIRE_FALSE(err.isOk());
    CHECK(err.sysErrno() == ENOTDIR);
    CHECK_THAT(err.toString(), Catch::Contains(dir / "file/sub"));
    CHECK_THAT(err.toString(), Catch::Contains("data_dir"));
    CHECK_THAT(err.toString(), Catch::Contains("Not a directory"));
  }
  SECTION("data_dir is itself a regular file") {
    writeFile(dir / "file", "x");
    CheckpointStore store(dir / "file");
    sys::Error err = store.prepare();
    REQUIRE_FALSE(err.isOk());
    CHECK_THAT(err.toString(), Catch::Contains(dir / "file"));
  }
  SECTION("flush into a directory that went away is an error, not a crash") {
    CheckpointStore store(dir / "gone");
    store.put(entry(1, 1, "i", "/p", 1));
    sys::Error err = store.flush();
    CHECK_FALSE(err.isOk());
    CHECK_THAT(err.toString(), Catch::Contains(dir / "gone"));
    CHECK(store.dirty());  // still to be written
  }
}

TEST_CASE("CheckpointStore: put, forget, expire and knownFiles") {
  TempDir dir;
  CheckpointStore store(dir.path());
  store.put(entry(1, 10, "web", "/var/log/web/a.log", 100));
  store.put(entry(1, 11, "web", "/var/log/web/b.log", 200));
  store.put(entry(1, 12, "db", "/var/log/db.log", 300));
  REQUIRE(store.flush().isOk());

  auto web = store.knownFiles("web");
  REQUIRE(web.size() == 2);
  std::set<std::string> paths{web[0].path, web[1].path};
  CHECK(paths == std::set<std::string>{"/var/log/web/a.log", "/var/log/web/b.log"});
  for (const auto& k : web) CHECK(k.identity.sameInode(store.find(1, k.identity.ino)->identity));
  CHECK(store.knownFiles("db").size() == 1);
  CHECK(store.knownFiles("none").empty());

  // put replaces what is known of a file.
  auto moved = entry(1, 10, "web", "/var/log/web/a.log.1", 150);
  store.put(moved);
  CHECK(store.size() == 3);
  CHECK(store.find(1, 10)->path == "/var/log/web/a.log.1");

  REQUIRE(store.flush().isOk());
  CHECK(store.expire(150) == 0);  // strictly older only
  CHECK_FALSE(store.dirty());
  CHECK(store.expire(201) == 2);
  CHECK(store.dirty());
  CHECK(store.size() == 1);
  CHECK(store.find(1, 12) != nullptr);

  store.forget(1, 12);
  CHECK(store.size() == 0);
  store.forget(1, 12);  // unknown: no-op
  REQUIRE(store.flush().isOk());
  CheckpointStore again(dir.path());
  REQUIRE(again.load().isOk());
  CHECK(again.size() == 0);
}

TEST_CASE("CheckpointStore::collectMetrics writes its writes, last write time and entries") {
  TempDir dir;
  CheckpointStore store(dir.path());
  store.put(entry(1, 10, "web", "/var/log/web/a.log", 100));
  store.put(entry(1, 11, "web", "/var/log/web/b.log", 200));
  REQUIRE(store.flush().isOk());
  store.put(entry(1, 12, "db", "/var/log/db.log", 300));
  REQUIRE(store.flush().isOk());

  testing::RecordingMetricWriter w;
  store.collectMetrics(w);
  CHECK(w.families() == std::vector<std::string>{"logsplice_checkpoint_writes_total",
                                                 "logsplice_checkpoint_last_write_seconds",
                                                 "logsplice_checkpoint_entries",
                                                 "logsplice_checkpoint_compactions_total"});
  auto writes = w.find("logsplice_checkpoint_writes_total");
  REQUIRE(writes);
  CHECK(writes->help == "Checkpoint files written.");
  CHECK(writes->type == sys::MetricType::kCounter);
  CHECK(writes->value == 2);
  auto last = w.find("logsplice_checkpoint_last_write_seconds");
  REQUIRE(last);
  CHECK(last->help == "Time the last checkpoint write took, fsyncs included.");
  CHECK(last->type == sys::MetricType::kGauge);
  CHECK(last->value == store.lastWriteSeconds());
  CHECK(last->value > 0);
  auto entries = w.find("logsplice_checkpoint_entries");
  REQUIRE(entries);
  CHECK(entries->help == "Files the checkpoint file knows.");
  CHECK(entries->type == sys::MetricType::kGauge);
  CHECK(entries->value == 3);
  auto compactions = w.find("logsplice_checkpoint_compactions_total");
  REQUIRE(compactions);
  CHECK(compactions->type == sys::MetricType::kCounter);
  CHECK(compactions->value == store.compactions());
  CHECK(compactions->value >= 1);
  CHECK(w.samples.size() == 4);
}
