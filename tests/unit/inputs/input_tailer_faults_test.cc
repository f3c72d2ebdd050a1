// The tailer under degraded conditions: stat polling, inotify overflow, unreadable files,
// files known from checkpoints, retention, and the router's poke().

#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "inputs/file_identity.h"
#include "inputs/input_tailer.h"
#include "tests/unit/inputs/tailer_harness.h"

namespace logsplice::inputs {

using testing::append;
using testing::Loop;
using testing::RecordingObserver;
using testing::TailerRun;
using testing::TempDir;
using testing::testConfig;
using testing::Writer;

namespace {

// Root reads a chmod 000 file anyway (CAP_DAC_OVERRIDE). This drops the DAC capabilities from
// the calling thread's effective set for its lifetime (they stay permitted and come back in the
// destructor), so EACCES is real even when the suite runs as root.
class WithoutDacOverride {
 public:
  WithoutDacOverride() {
    hdr_.version = _LINUX_CAPABILITY_VERSION_3;
    hdr_.pid = 0;
    if (::syscall(SYS_capget, &hdr_, saved_) != 0) return;
    __user_cap_data_struct dropped[2] = {saved_[0], saved_[1]};
    dropped[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
    ok_ = ::syscall(SYS_capset, &hdr_, dropped) == 0;
  }
  ~WithoutDacOverride() {
    if (ok_) ::syscall(SYS_capset, &hdr_, saved_);
  }
  bool ok() const { return ok_; }

 private:
  __user_cap_header_struct hdr_{};
  __user_cap_data_struct saved_[2]{};
  bool ok_ = false;
};

FileIdentity identityOf(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  struct stat st;
  REQUIRE(::fstat(fd, &st) == 0);
  auto id = identify(fd, st);
  ::close(fd);
  REQUIRE(id.ok());
  return *id;
}

}  // namespace

TEST_CASE("tailer: stat polling passes the rotation scenario", "[tailer][poll]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  auto cfg = testConfig("t", {dir.path() + "/app.log*"});
  cfg.poll = true;
  Writer w(dir / "app.log");
  w.write("one\n");
  TailerRun run(loop, cfg, obs);
  CHECK(run->stats().polling);
  REQUIRE(obs.allShipped() == "one\n");
  w.write("two\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "one\ntwo\n"; }));
  REQUIRE(::rename((dir / "app.log").c_str(), (dir / "app.log.1").c_str()) == 0);
  w.write("three (old inode)\n");
  w.reopen();
  w.write("four (new file)\n");
  REQUIRE(loop.waitFor([&] {
    return obs.order.size() == 2 &&
           obs.records[obs.order[0]].shipped == "one\ntwo\nthree (old inode)\n" &&
           obs.records[obs.order[1]].shipped == "four (new file)\n";
  }));
  CHECK(run->stats().rotations == 1);
  REQUIRE(loop.waitFor([&] { return obs.records[obs.order[0]].closed; }));
  // copytruncate while polling.
  append(dir / "copy.txt", "four (new file)\n");
  REQUIRE(::truncate((dir / "app.log").c_str(), 0) == 0);
  w.write("five\n");
  REQUIRE(
      loop.waitFor([&] { return obs.records[obs.order[1]].shipped == "four (new file)\nfive\n"; }));
  CHECK(run->stats().truncations == 1);
  CHECK(obs.records.size() == 2);
}

TEST_CASE("tailer: inotify overflow triggers a full rescan that misses nothing", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  TailerRun run(loop, testConfig("t", {dir.path() + "/*.log"}), obs);
  Writer w(dir / "busy.log");
  w.write("a\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "a\n"; }));
  // Flood the queue (max_queued_events = 16384) without running the loop: 3 events per file.
  for (int i = 0; i < 6000; ++i) {
    std::string p = dir / ("flood" + std::to_string(i) + ".tmp");
    append(p, "x");
    ::unlink(p.c_str());
  }
  append(dir / "survivor.log", "created during the overflow\n");
  w.write("b\n");
  REQUIRE(loop.waitFor(
      [&] {
        return obs.forPath(dir / "survivor.log").size() == 1 &&
               obs.forPath(dir / "survivor.log")[0]->shipped == "created during the overflow\n" &&
               obs.forPath(dir / "busy.log")[0]->shipped == "a\nb\n";
      },
      5000));
  CHECK(run->stats().inotify_overflows >= 1);
  CHECK(run->stats().rescans >= 1);
}

TEST_CASE("tailer: an unreadable file is logged once, counted, and retried", "[tailer]") {
  TempDir dir;
  Writer secret(dir / "secret.log");  // opened before it becomes unreadable
  secret.write("hidden\n");
  REQUIRE(::chmod((dir / "secret.log").c_str(), 0) == 0);
  append(dir / "open.log", "visible\n");
  Loop loop;
  RecordingObserver obs;
  auto cfg = testConfig("t", {dir.path() + "/*.log"});
  cfg.rescan_interval = std::chrono::milliseconds(50);
  WithoutDacOverride no_dac;
  if (::geteuid() == 0 && !no_dac.ok()) {
    WARN("running as root without capset: cannot make a file unreadable; skipped");
    return;
  }
  TailerRun run(loop, cfg, obs);
  CHECK(obs.allShipped() == "visible\n");
  CHECK(run->stats().open_errors == 1);
  secret.write("still hidden\n");
  loop.runFor(120);  // events and two rescans retry it; it is counted once
  CHECK(run->stats().open_errors == 1);
  CHECK(obs.records.size() == 1);
  REQUIRE(::chmod((dir / "secret.log").c_str(), 0644) == 0);
  REQUIRE(loop.waitFor([&] {
    return obs.forPath(dir / "secret.log").size() == 1 &&
           obs.forPath(dir / "secret.log")[0]->shipped == "hidden\nstill hidden\n";
  }));
}

TEST_CASE("tailer: a checkpointed file rotated while stopped is found by identity", "[tailer]") {
  TempDir dir;
  append(dir / "app.log", "line 1\nline 2\n");
  KnownFile known{dir / "app.log", identityOf(dir / "app.log")};
  REQUIRE(::rename((dir / "app.log").c_str(), (dir / "app.log.1").c_str()) == 0);
  append(dir / "app.log.1", "line 3 (written before the rotation finished)\n");
  append(dir / "app.log", "new file\n");
  append(dir / "other.log.1", "a decoy with the same head? no: another inode\n");
  Loop loop;
  RecordingObserver obs;
  auto cfg = testConfig("t", {dir.path() + "/*.log"});
  cfg.start_at = config::StartAt::kEnd;
  TailerRun run(loop, cfg, obs, true, {known});
  auto rotated = obs.forPath(dir / "app.log.1");
  REQUIRE(rotated.size() == 1);
  CHECK(rotated[0]->default_start == 0);  // the router resumes from its checkpoint instead
  CHECK(rotated[0]->identity.sameInode(known.identity));
  auto fresh = obs.forPath(dir / "app.log");
  REQUIRE(fresh.size() == 1);
  CHECK(fresh[0]->default_start == 9);  // start_at: end for the file found at start-up
  CHECK(obs.records.size() == 2);
  REQUIRE(loop.waitFor([&] { return obs.forPath(dir / "app.log.1")[0]->closed; }));
  CHECK(obs.forPath(dir / "app.log.1")[0]->state_at_close == Follower::State::kRotated);
}

TEST_CASE("tailer: rotated_retention releases a file nobody drains", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  obs.auto_drain = false;  // a dead sink
  auto cfg = testConfig("t", {dir.path() + "/*.log"});
  cfg.rotated_retention.max_age = std::chrono::milliseconds(200);
  TailerRun run(loop, cfg, obs);
  append(dir / "app.log", "never shipped\n");
  REQUIRE(loop.waitFor([&] { return obs.records.size() == 1; }));
  REQUIRE(::unlink((dir / "app.log").c_str()) == 0);
  loop.runFor(150);  // idle past rotate_wait, but not drained: kept
  CHECK_FALSE(obs.records.begin()->second.closed);
  REQUIRE(loop.waitFor([&] { return obs.records.begin()->second.closed; }));
  CHECK(run->stats().retention_releases == 1);

  SECTION("by size: deleted files only") {
    // A renamed file pins no extra disk: max_bytes does not release it. Once deleted, its
    // space is held by our fd alone, and the byte limit applies.
    auto cfg2 = testConfig("t2", {dir.path() + "/*.big"});
    cfg2.rotated_retention.max_bytes = 10;
    RecordingObserver obs2;
    obs2.auto_drain = false;
    TailerRun run2(loop, cfg2, obs2);
    append(dir / "x.big", "more than ten bytes\n");
    REQUIRE(loop.waitFor([&] { return obs2.records.size() == 1; }));
    REQUIRE(::rename((dir / "x.big").c_str(), (dir / "x.old").c_str()) == 0);
    loop.runFor(300);  // several ticks past rotate_wait: still held for the dead sink
    CHECK_FALSE(obs2.records.begin()->second.closed);
    CHECK(run2->stats().retention_releases == 0);
    REQUIRE(::unlink((dir / "x.old").c_str()) == 0);
    REQUIRE(loop.waitFor([&] { return obs2.records.begin()->second.closed; }));
    CHECK(obs2.records.begin()->second.state_at_close == Follower::State::kDeleted);
    CHECK(run2->stats().retention_releases == 1);
  }
}

TEST_CASE("tailer: poke closes a drained rotated file at once", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  obs.auto_drain = false;
  TailerRun run(loop, testConfig("t", {dir.path() + "/*.log"}), obs);
  append(dir / "app.log", "x\n");
  REQUIRE(loop.waitFor([&] { return obs.records.size() == 1; }));
  REQUIRE(::rename((dir / "app.log").c_str(), (dir / "app.old").c_str()) == 0);
  loop.runFor(200);  // idle past rotate_wait; the sink has not shipped it
  auto& rec = obs.records.begin()->second;
  REQUIRE_FALSE(rec.closed);
  obs.drainAll();
  run->poke(*const_cast<Follower*>(rec.follower));
  CHECK(rec.closed);
  CHECK(rec.shipped == "x\n");
}

TEST_CASE("tailer: close() reports every follower and frees every handle", "[tailer]") {
  TempDir dir;
  append(dir / "a.log", "a\n");
  append(dir / "b.log", "b\n");
  Loop loop;
  RecordingObserver obs;
  {
    TailerRun run(loop, testConfig("t", {dir.path() + "/*.log"}), obs);
    CHECK(obs.openCount() == 2);
  }
  CHECK(obs.openCount() == 0);
  // The Loop destructor checks uv_loop_close() == 0.
}

TEST_CASE("tailer: a bad pattern is a start() error", "[tailer]") {
  Loop loop;
  RecordingObserver obs;
  InputTailer t(loop.get(), testConfig("t", {"/tmp/dir/"}), obs);
  sys::Error err = t.start(true, {});
  CHECK(err.code() == sys::ErrorCode::kInvalidConfig);
  bool closed = false;
  t.close([&] { closed = true; });
  REQUIRE(loop.waitFor([&] { return closed; }));
}

}  // namespace logsplice::inputs
