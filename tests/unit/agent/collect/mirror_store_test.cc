#include "agent/collect/mirror_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "inputs/file_identity.h"
#include "tests/support/test_env.h"

using logsplice::agent::collect::MirrorFile;
using logsplice::agent::collect::MirrorStore;
using logsplice::agent::collect::StreamKey;
using logsplice::testing::exists;
using logsplice::testing::readFile;
using logsplice::testing::TempDir;
using logsplice::testing::writeFile;

namespace {

void writeAt(MirrorFile* f, const std::string& data) {
  REQUIRE(::pwrite(f->fd.get(), data.data(), data.size(), static_cast<off_t>(f->written)) ==
          static_cast<ssize_t>(data.size()));
  f->written += data.size();
}

}  // namespace

TEST_CASE("mirror store: durable lengths survive a restart through the index", "[collect]") {
  TempDir tmp;
  StreamKey key{"web-1", "app", 1, 100, 0};
  {
    MirrorStore store(tmp / "m");
    REQUIRE_FALSE(store.load());
    auto f = store.open(key, 7, 5, "/var/log/app.log");
    REQUIRE(f.ok());
    CHECK(f.value()->rel == "web-1/app/var/log/app.log");
    CHECK(f.value()->durable == 0);
    f.value()->owner = &store;  // in use by a connection: its descriptor stays open
    writeAt(f.value(), "hello\n");
    int synced = 0;
    REQUIRE_FALSE(store.syncAll([&](MirrorFile& m) {
      ++synced;
      CHECK(m.durable == 6);
    }));
    CHECK(synced == 1);
    writeAt(f.value(), "not synced");  // written, never acknowledged
  }
  CHECK(readFile(tmp / "m/web-1/app/var/log/app.log") == "hello\nnot synced");
  MirrorStore again(tmp / "m");
  REQUIRE_FALSE(again.load());
  CHECK(again.size() == 1);
  auto f = again.open(key, 7, 5, "/var/log/app.log");
  REQUIRE(f.ok());
  CHECK(f.value()->durable == 6);
  CHECK(f.value()->written == 6);
  // Opened afresh: cut back to what was acknowledged.
  CHECK(readFile(tmp / "m/web-1/app/var/log/app.log") == "hello\n");
}

TEST_CASE("mirror store: the index is replaced atomically, never half-written", "[collect]") {
  TempDir tmp;
  MirrorStore store(tmp / "m");
  REQUIRE_FALSE(store.load());
  REQUIRE(store.open({"h", "in", 1, 1, 0}, 0, 0, "/a").ok());
  REQUIRE_FALSE(store.saveIndex());
  std::string first = readFile(tmp / "m/.index");
  CHECK(first.rfind("logsplice-collect-index 1\n", 0) == 0);
  CHECK_FALSE(exists(tmp / "m/.index.tmp"));  // renamed over the index
  // A crash while writing the next one leaves a temp file: the index read is the old one.
  writeFile(tmp / "m/.index.tmp", "logsplice-collect-index 1\nh\tin\t1\t1\t0\t0\t0\t99");
  MirrorStore again(tmp / "m");
  REQUIRE_FALSE(again.load());
  auto f = again.open({"h", "in", 1, 1, 0}, 0, 0, "/a");
  REQUIRE(f.ok());
  CHECK(f.value()->durable == 0);
}

TEST_CASE("mirror store: a bad index is refused or its bad lines skipped", "[collect]") {
  TempDir tmp;
  REQUIRE(::mkdir((tmp / "m").c_str(), 0750) == 0);
  SECTION("another version") {
    writeFile(tmp / "m/.index", "logsplice-collect-index 2\n");
    MirrorStore store(tmp / "m");
    CHECK(store.load());
  }
  SECTION("lines pointing outside the dir or with bad names are skipped") {
    writeFile(tmp / "m/.index",
              "logsplice-collect-index 1\n"
              "h\tin\t1\t2\t0\t0\t0\t5\t../../etc/passwd\n"
              "..\tin\t1\t3\t0\t0\t0\t5\th/in/x\n"
              "h\tin\t1\t4\t0\t0\t0\tNaN\th/in/y\n"
              "h\tin\t1\t5\t0\t0\t0\t5\th/in/ok\n");
    MirrorStore store(tmp / "m");
    REQUIRE_FALSE(store.load());
    CHECK(store.size() == 1);
  }
}

TEST_CASE("mirror store: a new file at a taken path is named by its inode too", "[collect]") {
  TempDir tmp;
  MirrorStore store(tmp / "m");
  REQUIRE_FALSE(store.load());
  auto a = store.open({"h", "in", 1, 10, 0}, 0, 0, "/var/log/app.log");
  auto b = store.open({"h", "in", 1, 11, 0}, 0, 0, "/var/log/app.log");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a.value()->rel == "h/in/var/log/app.log");
  CHECK(b.value()->rel == "h/in/var/log/app.log~11");
  auto gen = store.open({"h", "in", 1, 10, 1}, 0, 0, "/var/log/app.log");
  REQUIRE(gen.ok());
  CHECK(gen.value()->rel == "h/in/var/log/app.log.1");
}

TEST_CASE("mirror store: an inode reused by another file gets a new mirror", "[collect]") {
  TempDir tmp;
  MirrorStore store(tmp / "m");
  REQUIRE_FALSE(store.load());
  StreamKey key{"h", "in", 1, 10, 0};
  std::string old_head = "the old file's first line\n";
  uint64_t old_fp = logsplice::inputs::fingerprintOf(old_head.data(), old_head.size());
  auto a = store.open(key, old_fp, static_cast<uint32_t>(old_head.size()), "/var/log/app.log");
  REQUIRE(a.ok());
  a.value()->owner = &store;
  writeAt(a.value(), old_head + "more\n");
  REQUIRE_FALSE(store.syncAll([](MirrorFile&) {}));
  store.release(a.value());

  SECTION("the same file, seen with a longer fingerprint, keeps its mirror") {
    std::string longer = old_head + "mo";
    uint64_t fp = logsplice::inputs::fingerprintOf(longer.data(), longer.size());
    auto same = store.open(key, fp, static_cast<uint32_t>(longer.size()), "/var/log/app.log");
    REQUIRE(same.ok());
    CHECK(same.value()->rel == "h/in/var/log/app.log");
    CHECK(same.value()->durable == old_head.size() + 5);
  }
  SECTION("another file under the same inode: a new mirror, the old one kept") {
    std::string new_head = "a brand new file\n";
    uint64_t fp = logsplice::inputs::fingerprintOf(new_head.data(), new_head.size());
    auto other = store.open(key, fp, static_cast<uint32_t>(new_head.size()), "/var/log/app.log");
    REQUIRE(other.ok());
    CHECK(other.value()->rel == "h/in/var/log/app.log~10");
    CHECK(other.value()->durable == 0);
    CHECK(readFile(tmp / "m/h/in/var/log/app.log") == old_head + "more\n");
  }
}

TEST_CASE("mirror store: a file the index does not know is never overwritten", "[collect]") {
  TempDir tmp;
  REQUIRE(::mkdir((tmp / "m").c_str(), 0750) == 0);
  REQUIRE(::system(("mkdir -p " + tmp / "m/h/in/var/log").c_str()) == 0);
  writeFile(tmp / "m/h/in/var/log/app.log", "precious\n");  // the index was lost
  MirrorStore store(tmp / "m");
  REQUIRE_FALSE(store.load());
  auto f = store.open({"h", "in", 1, 10, 0}, 0, 0, "/var/log/app.log");
  REQUIRE(f.ok());
  CHECK(f.value()->rel == "h/in/var/log/app.log~10");
  CHECK(readFile(tmp / "m/h/in/var/log/app.log") == "precious\n");
}

TEST_CASE("mirror store: a file and a directory of the same name both get a mirror", "[collect]") {
  TempDir tmp;
  MirrorStore store(tmp / "m");
  REQUIRE_FALSE(store.load());
  SECTION("the directory first") {
    auto deep = store.open({"h", "in", 1, 1, 0}, 0, 0, "/var/log/app/x.log");
    auto flat = store.open({"h", "in", 1, 2, 0}, 0, 0, "/var/log/app");
    REQUIRE(deep.ok());
    REQUIRE(flat.ok());
    CHECK(deep.value()->rel == "h/in/var/log/app/x.log");
    CHECK(flat.value()->rel == "h/in/var/log/app~2");  // the name is a directory: taken
  }
  SECTION("the file first") {
    auto flat = store.open({"h", "in", 1, 2, 0}, 0, 0, "/var/log/app");
    auto deep = store.open({"h", "in", 1, 1, 0}, 0, 0, "/var/log/app/x.log");
    REQUIRE(flat.ok());
    REQUIRE(deep.ok());
    CHECK(flat.value()->rel == "h/in/var/log/app");
    CHECK(deep.value()->rel == "h/in/_clash/var_log_app_x.log");
  }
  CHECK(store.size() == 2);
}

namespace {

uint64_t allocatedBytes(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

uint64_t sizeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

TEST_CASE("mirror store: blocks are reserved ahead of the writes by the sync and given back at "
          "close",
          "[collect]") {
  TempDir tmp;
  StreamKey key{"web-1", "app", 1, 100, 0};
  const std::string path = tmp / "m/web-1/app/var/log/app.log";
  const uint64_t chunk = MirrorStore::kPreallocateBytes;
  auto noop = [](MirrorFile&) {};
  {
    MirrorStore store(tmp / "m");
    REQUIRE_FALSE(store.load());
    auto f = store.open(key, 7, 5, "/var/log/app.log");
    REQUIRE(f.ok());
    MirrorFile* m = f.value();
    m->owner = &store;
    CHECK(m->allocated == 0);  // nothing reserved on the write path
    writeAt(m, "hello\n");
    REQUIRE_FALSE(store.syncAll(noop));
    CHECK(m->allocated == 6 + 2 * chunk);    // the sync reserved two chunks past the end
    CHECK(allocatedBytes(path) >= 2 * chunk);  // on disk...
    CHECK(sizeOf(path) == 6);                  // ...without changing the file's length
    writeAt(m, "more\n");
    REQUIRE_FALSE(store.syncAll(noop));
    CHECK(m->allocated == 6 + 2 * chunk);  // more than a chunk still ahead: nothing more
    // Written to within a chunk of the reservation's end: the next sync reserves further.
    writeAt(m, std::string(static_cast<size_t>(chunk + 100), 'x'));
    REQUIRE_FALSE(store.syncAll(noop));
    CHECK(m->allocated == m->written + 2 * chunk);
    CHECK(allocatedBytes(path) >= m->written + 2 * chunk - 4096);
    CHECK(sizeOf(path) == m->written);
    store.release(m);  // synced and released: closed, the reservation given back
    CHECK_FALSE(m->fd);
    CHECK(allocatedBytes(path) < 2 * chunk);
    CHECK(sizeOf(path) == 11 + chunk + 100);
    // Opened again, written and synced, then the process "dies": the blocks stay past the end.
    auto again = store.open(key, 7, 5, "/var/log/app.log");
    REQUIRE(again.ok());
    again.value()->owner = &store;
    writeAt(again.value(), "z\n");
    REQUIRE_FALSE(store.syncAll(noop));
    CHECK(allocatedBytes(path) >= 3 * chunk);
    again.value()->fd.reset();  // no close through the store
  }
  const uint64_t length = 13 + chunk + 100;
  MirrorStore after(tmp / "m");
  REQUIRE_FALSE(after.load());
  auto f = after.open(key, 7, 5, "/var/log/app.log");
  REQUIRE(f.ok());
  CHECK(f.value()->written == length);
  CHECK(f.value()->allocated >= length + chunk);  // found with blocks past its end
  CHECK(allocatedBytes(path) >= length + chunk);
  after.release(f.value());  // nothing unsynced: closed and cut to its length
  CHECK(allocatedBytes(path) < length + (64 << 10));
  CHECK(sizeOf(path) == length);
}
