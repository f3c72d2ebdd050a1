// InotifyWatcher on real directories: creates, writes, renames (with their cookie), deletes,
// the watched directory itself going away, unwatching, and closing with the loop.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "inputs/inotify_watcher.h"
#include "tests/unit/inputs/tailer_harness.h"
#include "tests/unit/inputs/watch_recorder.h"

namespace logsplice::inputs {

using testing::append;
using testing::Loop;
using testing::TempDir;
using testing::WatchRecorder;
using Kind = WatchHandler::Kind;

namespace {

// Creates the watcher, and closes it at scope end with the loop running.
struct InotifyRun {
  InotifyRun(Loop& l, WatchRecorder& rec) : loop(l) {
    auto w = InotifyWatcher::create(loop.get(), rec);
    REQUIRE(w.ok());
    watcher = std::move(w.value());
  }
  ~InotifyRun() {
    bool closed = false;
    watcher->close([&] { closed = true; });
    loop.waitFor([&] { return closed; }, 2000);
    CHECK(closed);
  }
  Loop& loop;
  std::unique_ptr<InotifyWatcher> watcher;
};

}  // namespace

TEST_CASE("inotify watcher: create, write, rename with a cookie, delete", "[watcher]") {
  TempDir dir;
  Loop loop;
  WatchRecorder rec;
  InotifyRun run(loop, rec);
  InotifyWatcher& w = *run.watcher;
  REQUIRE(w.watchDir(dir.path()).isOk());
  CHECK(w.watches(dir.path()));
  CHECK(w.watchedCount() == 1);
  w.start();

  append(dir / "a.log", "x\n");
  REQUIRE(loop.waitFor([&] { return rec.saw(dir.path(), "a.log", Kind::kCreated); }));
  append(dir / "a.log", "y\n");
  REQUIRE(loop.waitFor([&] { return rec.saw(dir.path(), "a.log", Kind::kContent); }));

  REQUIRE(::rename((dir / "a.log").c_str(), (dir / "a.log.1").c_str()) == 0);
  REQUIRE(loop.waitFor([&] {
    return rec.find("a.log", Kind::kRemoved) != nullptr &&
           rec.find("a.log.1", Kind::kCreated) != nullptr;
  }));
  // The two halves of the rename carry the same non-zero cookie.
  uint32_t from = rec.find("a.log", Kind::kRemoved)->cookie;
  CHECK(from != 0);
  CHECK(rec.find("a.log.1", Kind::kCreated)->cookie == from);

  rec.events.clear();
  REQUIRE(::unlink((dir / "a.log.1").c_str()) == 0);
  REQUIRE(loop.waitFor([&] { return rec.saw(dir.path(), "a.log.1", Kind::kRemoved); }));
  CHECK(rec.find("a.log.1", Kind::kRemoved)->cookie == 0);

  REQUIRE(::mkdir((dir / "sub").c_str(), 0755) == 0);
  REQUIRE(loop.waitFor([&] {
    const auto* e = rec.find("sub", Kind::kCreated);
    return e != nullptr && e->is_dir;
  }));
  CHECK(rec.overflows == 0);
}

TEST_CASE("inotify watcher: the watched directory going away is reported", "[watcher]") {
  TempDir dir;
  Loop loop;
  WatchRecorder rec;
  InotifyRun run(loop, rec);
  std::string sub = dir / "sub";
  REQUIRE(::mkdir(sub.c_str(), 0755) == 0);
  REQUIRE(run.watcher->watchDir(sub).isOk());
  run.watcher->start();
  REQUIRE(::rmdir(sub.c_str()) == 0);
  // An event with an empty name: the directory itself is gone.
  REQUIRE(loop.waitFor([&] { return rec.saw(sub, "", Kind::kRemoved); }));
}

TEST_CASE("inotify watcher: unwatched or stopped directories report nothing", "[watcher]") {
  TempDir dir;
  Loop loop;
  WatchRecorder rec;
  InotifyRun run(loop, rec);
  InotifyWatcher& w = *run.watcher;
  REQUIRE(w.watchDir(dir.path()).isOk());
  w.start();
  append(dir / "seen.log", "x\n");
  REQUIRE(loop.waitFor([&] { return rec.saw(dir.path(), "seen.log", Kind::kCreated); }));

  w.unwatchDir(dir.path());
  CHECK_FALSE(w.watches(dir.path()));
  CHECK(w.watchedCount() == 0);
  rec.events.clear();
  append(dir / "unseen.log", "x\n");
  loop.runFor(100);
  CHECK(rec.find("unseen.log", Kind::kCreated) == nullptr);

  // Stopped: events queue in the kernel and are read by drain() (or once started again).
  REQUIRE(w.watchDir(dir.path()).isOk());
  w.stop();
  append(dir / "queued.log", "x\n");
  loop.runFor(50);
  CHECK(rec.find("queued.log", Kind::kCreated) == nullptr);
  w.drain();
  CHECK(rec.find("queued.log", Kind::kCreated) != nullptr);
}

TEST_CASE("inotify watcher: a directory that does not exist is an error", "[watcher]") {
  TempDir dir;
  Loop loop;
  WatchRecorder rec;
  InotifyRun run(loop, rec);
  sys::Error err = run.watcher->watchDir(dir / "missing");
  CHECK_FALSE(err.isOk());
  CHECK(err.sysErrno() == ENOENT);
  CHECK(run.watcher->watchedCount() == 0);
}

}  // namespace logsplice::inputs
