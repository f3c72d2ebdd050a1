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
  InotifyRun(Loop& l, WatchRecorder& rec, uint64_t batch_delay_ms = 0) : loop(l) {
    auto w = InotifyWatcher::create(loop.get(), rec, batch_delay_ms);
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

TEST_CASE("inotify watcher: batch_delay gathers changes spread over files into one batch",
          "[watcher]") {
  TempDir dir;
  Loop loop;
  WatchRecorder rec;
  constexpr uint64_t kDelay = 300;
  InotifyRun run(loop, rec, kDelay);
  InotifyWatcher& w = *run.watcher;
  REQUIRE(w.watchDir(dir.path()).isOk());
  w.start();
  // Nothing seen yet: the first change is read after the short single-file wait.
  append(dir / "a.log", "x\n");
  append(dir / "b.log", "x\n");
  REQUIRE(loop.waitFor([&] { return rec.saw(dir.path(), "b.log", Kind::kCreated); }));
  // That batch named two files: the next one waits the whole delay, and whatever changed
  // meanwhile (three files, at different moments) comes as one batch.
  int before = rec.batches;
  rec.events.clear();
  uint64_t t0 = uv_hrtime();
  append(dir / "a.log", "y\n");
  loop.runFor(50);
  CHECK(rec.batches == before);  // a timer never fires early, however busy the machine
  append(dir / "b.log", "y\n");
  append(dir / "c.log", "y\n");
  REQUIRE(loop.waitFor([&] { return rec.batches > before; }));
  // libuv timers count in whole milliseconds of the loop's cached clock: due = now_ms + delay
  // with now_ms truncated, so the real time elapsed can fall short of the delay by < 1 ms (a
  // run measured 299 of 300), plus the truncation of our own reading.
  CHECK((uv_hrtime() - t0) / 1000000 >= kDelay - 2);
  CHECK(rec.batches == before + 1);
  CHECK(rec.saw(dir.path(), "a.log", Kind::kContent));
  CHECK(rec.saw(dir.path(), "b.log", Kind::kContent));
  CHECK(rec.saw(dir.path(), "c.log", Kind::kCreated));
  CHECK(rec.overflows == 0);
}

TEST_CASE("inotify watcher: appends to a single file wait at most a millisecond", "[watcher]") {
  TempDir dir;
  Loop loop;
  WatchRecorder rec;
  InotifyRun run(loop, rec, /*batch_delay_ms=*/1000);
  InotifyWatcher& w = *run.watcher;
  REQUIRE(w.watchDir(dir.path()).isOk());
  w.start();
  append(dir / "one.log", "x\n");
  REQUIRE(loop.waitFor([&] { return rec.saw(dir.path(), "one.log", Kind::kCreated); }));
  // One file per batch: each next change is read long before the 1 s delay would end.
  for (int i = 0; i < 3; ++i) {
    rec.events.clear();
    uint64_t t0 = uv_hrtime();
    append(dir / "one.log", "more\n");
    REQUIRE(loop.waitFor([&] { return rec.saw(dir.path(), "one.log", Kind::kContent); }, 900));
    CHECK((uv_hrtime() - t0) / 1000000 < 900);
  }
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
