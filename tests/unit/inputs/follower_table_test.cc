// FollowerTable: the indexes (id, inode, live path, symlink target), following the followers'
// state changes, the counts by state, and the memory of finished files.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>

#include "inputs/follower_table.h"
#include "tests/unit/inputs/tailer_harness.h"

namespace logsplice::inputs {

using testing::append;
using testing::TempDir;
using State = Follower::State;

namespace {

// Forwards the followers' state changes to the table, as the tailer does.
struct TableOwner : FollowerOwner {
  explicit TableOwner(FollowerTable& t) : table(t) {}
  void recheckSoon(Follower&) override { ++rechecks; }
  void followerStateChanged(Follower& f, State from) override { table.stateChanged(f, from); }
  FollowerTable& table;
  int rechecks = 0;
};

std::unique_ptr<Follower> followerOf(const std::string& path, FollowerOwner* owner) {
  append(path, "line\n");
  sys::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd);
  struct stat st;
  REQUIRE(::fstat(fd.get(), &st) == 0);
  auto id = identify(fd.get(), st);
  REQUIRE(id.ok());
  auto f =
      std::make_unique<Follower>(Follower::nextId(), path, "in", *id, std::move(fd), false, 0, 0);
  f->setOwner(owner);
  return f;
}

FileIdentity fakeIdentity(uint64_t ino) {
  FileIdentity id;
  id.dev = 1;
  id.ino = ino;
  return id;
}

}  // namespace

TEST_CASE("follower table: indexes follow adds, state changes and removals", "[table]") {
  TempDir dir;
  FollowerTable table;
  TableOwner owner(table);
  Follower& a = table.add(followerOf(dir / "a.log", &owner), dir / "a.log");
  Follower& b = table.add(followerOf(dir / "b.log", &owner), dir / "b.log");
  uint64_t a_id = a.id();
  uint64_t b_id = b.id();
  CHECK(table.size() == 2);
  CHECK(table.byId(a_id) == &a);
  CHECK(table.byInode(FollowerTable::keyOf(b.identity())) == &b);
  CHECK(table.liveAt(dir / "a.log") == &a);
  CHECK(table.liveAt(dir / "c.log") == nullptr);
  CHECK(table.ids() == std::vector<uint64_t>{a_id, b_id});
  CHECK(table.notLiveIds().empty());
  CHECK(table.count(State::kLive) == 2);

  // Suspended: still live (its name), counted as suspended.
  a.suspend();
  CHECK(table.liveAt(dir / "a.log") == &a);
  CHECK(table.count(State::kLive) == 1);
  CHECK(table.count(State::kSuspended) == 1);
  CHECK(table.suspendedCount() == 1);
  CHECK(table.notLiveIds().empty());

  // Rotated while suspended: leaves its name, still suspended.
  a.markRotated(5);
  CHECK(table.liveAt(dir / "a.log") == nullptr);
  CHECK(table.notLiveIds() == std::vector<uint64_t>{a_id});
  CHECK(table.count(State::kSuspendedRotated) == 1);
  CHECK(table.suspendedCount() == 1);

  // Deleted (seen by a refresh): leaves its name.
  REQUIRE(::unlink((dir / "b.log").c_str()) == 0);
  CHECK(b.refresh(sys::SysCalls::real(), 10).deleted);
  CHECK(b.state() == State::kDeleted);
  CHECK(table.liveAt(dir / "b.log") == nullptr);
  CHECK(table.count(State::kDeleted) == 1);
  CHECK(table.notLiveIds().size() == 2);

  std::unique_ptr<Follower> gone = table.remove(a_id);
  REQUIRE(gone);
  CHECK(table.byId(a_id) == nullptr);
  CHECK(table.byInode(FollowerTable::keyOf(gone->identity())) == nullptr);
  CHECK(table.notLiveIds() == std::vector<uint64_t>{b_id});
  CHECK(table.suspendedCount() == 0);
  // A state change of a follower no longer in the table changes nothing.
  gone->markClosed();
  CHECK(table.count(State::kClosed) == 0);
  CHECK(table.remove(a_id) == nullptr);
  CHECK(table.size() == 1);
}

TEST_CASE("follower table: a symlinked path is also found by its target", "[table]") {
  TempDir dir;
  REQUIRE(::mkdir((dir / "real").c_str(), 0755) == 0);
  append(dir / "real/app.log", "x\n");
  REQUIRE(::symlink((dir / "real/app.log").c_str(), (dir / "link.log").c_str()) == 0);
  FollowerTable table;
  TableOwner owner(table);
  Follower& f = table.add(followerOf(dir / "link.log", &owner), dir / "real/app.log");
  CHECK(table.liveAt(dir / "link.log") == &f);
  CHECK(table.byRealPath(dir / "real/app.log") == std::vector<uint64_t>{f.id()});
  CHECK(table.realPathOf(f) == dir / "real/app.log");
  Follower& g = table.add(followerOf(dir / "plain.log", &owner), dir / "plain.log");
  CHECK(table.realPathOf(g) == dir / "plain.log");
  CHECK(table.byRealPath(dir / "plain.log").empty());  // only symlinked ones are indexed
  table.remove(f.id());
  CHECK(table.byRealPath(dir / "real/app.log").empty());
}

TEST_CASE("follower table: finished files are remembered, pruned and bounded", "[table]") {
  FollowerTable table;
  table.rememberFinished(fakeIdentity(1), 100);
  table.rememberFinished(fakeIdentity(2), 200);
  REQUIRE(table.finished({1, 1}) != nullptr);
  CHECK(table.finished({1, 1})->size == 100);
  CHECK(table.finished({1, 3}) == nullptr);
  table.forgetFinished({1, 1});
  CHECK(table.finished({1, 1}) == nullptr);
  table.rememberFinished(fakeIdentity(1), 100);
  table.pruneFinished({{1, 2}});  // a full scan saw only inode 2
  CHECK(table.finished({1, 1}) == nullptr);
  CHECK(table.finished({1, 2}) != nullptr);

  // Bounded: the oldest (lowest key) go first.
  for (uint64_t ino = 10; ino < 10 + 5000; ++ino) table.rememberFinished(fakeIdentity(ino), 1);
  CHECK(table.finished({1, 2}) == nullptr);
  CHECK(table.finished({1, 10 + 4999}) != nullptr);

  // Adding a follower of a finished inode forgets it as finished.
  TempDir dir;
  TableOwner owner(table);
  auto f = followerOf(dir / "a.log", &owner);
  table.rememberFinished(f->identity(), 3);
  auto key = FollowerTable::keyOf(f->identity());
  table.add(std::move(f), dir / "a.log");
  CHECK(table.finished(key) == nullptr);
}

TEST_CASE("follower table: requestRecheck reaches the owner", "[table]") {
  TempDir dir;
  FollowerTable table;
  TableOwner owner(table);
  Follower& f = table.add(followerOf(dir / "a.log", &owner), dir / "a.log");
  f.requestRecheck();
  CHECK(owner.rechecks == 1);
  f.setOwner(nullptr);
  f.requestRecheck();
  CHECK(owner.rechecks == 1);
}

}  // namespace logsplice::inputs
