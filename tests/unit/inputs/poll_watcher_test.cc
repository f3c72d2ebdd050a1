// PollWatcher on real directories: new names, changed stat, vanished names, a replaced inode,
// the directory itself going away, and the timer driving it.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "inputs/poll_watcher.h"
#include "tests/unit/inputs/tailer_harness.h"
#include "tests/unit/inputs/watch_recorder.h"

namespace logsplice::inputs {

using testing::append;
using testing::Loop;
using testing::TempDir;
using testing::WatchRecorder;
using Kind = WatchHandler::Kind;

namespace {

struct PollRun {
  PollRun(Loop& l, WatchRecorder& rec, std::chrono::milliseconds every)
      : loop(l), watcher(l.get(), rec, every) {}
  ~PollRun() {
    bool closed = false;
    watcher.close([&] { closed = true; });
    loop.waitFor([&] { return closed; }, 2000);
    CHECK(closed);
  }
  Loop& loop;
  PollWatcher watcher;
};

}  // namespace

TEST_CASE("poll watcher: one pass reports created, changed and removed names", "[watcher]") {
  TempDir dir;
  Loop loop;
  WatchRecorder rec;
  PollRun run(loop, rec, std::chrono::milliseconds(60000));  // passes driven by the test
  PollWatcher& w = run.watcher;
  append(dir / "old.log", "x\n");
  REQUIRE(w.watchDir(dir.path()).isOk());
  CHECK(w.watches(dir.path()));
  CHECK(w.watchedCount() == 1);

  w.pollOnce();  // nothing changed since watchDir's snapshot
  CHECK(rec.events.empty());
  CHECK(rec.batches == 0);

  append(dir / "new.log", "x\n");
  append(dir / "old.log", "more\n");
  w.pollOnce();
  CHECK(rec.batches == 1);
  CHECK(rec.saw(dir.path(), "new.log", Kind::kCreated));
  CHECK(rec.saw(dir.path(), "old.log", Kind::kContent));

  rec.events.clear();
  REQUIRE(::unlink((dir / "old.log").c_str()) == 0);
  // Replaced under the same name (another inode): a creation, not a content change.
  REQUIRE(::rename((dir / "new.log").c_str(), (dir / "tmp").c_str()) == 0);
  append(dir / "new.log", "another file\n");
  w.pollOnce();
  CHECK(rec.saw(dir.path(), "old.log", Kind::kRemoved));
  CHECK(rec.saw(dir.path(), "new.log", Kind::kCreated));
  CHECK(rec.saw(dir.path(), "tmp", Kind::kCreated));

  REQUIRE(::mkdir((dir / "sub").c_str(), 0755) == 0);
  rec.events.clear();
  w.pollOnce();
  const auto* e = rec.find("sub", Kind::kCreated);
  REQUIRE(e != nullptr);
  CHECK(e->is_dir);
  CHECK(rec.overflows == 0);
}

TEST_CASE("poll watcher: the timer polls, and a vanished directory is reported once", "[watcher]") {
  TempDir dir;
  Loop loop;
  WatchRecorder rec;
  PollRun run(loop, rec, std::chrono::milliseconds(5));
  PollWatcher& w = run.watcher;
  std::string sub = dir / "sub";
  REQUIRE(::mkdir(sub.c_str(), 0755) == 0);
  REQUIRE(w.watchDir(sub).isOk());
  w.start();
  append(sub + "/a.log", "x\n");
  REQUIRE(loop.waitFor([&] { return rec.saw(sub, "a.log", Kind::kCreated); }));

  REQUIRE(::unlink((sub + "/a.log").c_str()) == 0);
  REQUIRE(::rmdir(sub.c_str()) == 0);
  REQUIRE(loop.waitFor([&] { return rec.saw(sub, "", Kind::kRemoved); }));
  CHECK_FALSE(w.watches(sub));  // dropped: a later rescan adds it again if it comes back
  size_t n = rec.events.size();
  loop.runFor(40);
  CHECK(rec.events.size() == n);

  w.stop();
  REQUIRE(w.watchDir(dir.path()).isOk());
  append(dir / "b.log", "x\n");
  loop.runFor(40);
  CHECK(rec.find("b.log", Kind::kCreated) == nullptr);  // stopped: no pass
}

TEST_CASE("poll watcher: a directory that cannot be listed is an error", "[watcher]") {
  TempDir dir;
  Loop loop;
  WatchRecorder rec;
  PollRun run(loop, rec, std::chrono::milliseconds(60000));
  sys::Error err = run.watcher.watchDir(dir / "missing");
  CHECK_FALSE(err.isOk());
  CHECK(err.sysErrno() == ENOENT);
  CHECK(run.watcher.watchedCount() == 0);
}

}  // namespace logsplice::inputs
