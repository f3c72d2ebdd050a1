// The open-file budget: more files than descriptors, suspension and reopening by path,
// rotation and truncation while suspended, files waiting for an fd, EMFILE, shared budgets.

#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <climits>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "inputs/fd_budget.h"
#include "inputs/input_tailer.h"
#include "tests/unit/inputs/tailer_harness.h"

namespace logsplice::inputs {

using testing::append;
using testing::Loop;
using testing::Record;
using testing::RecordingObserver;
using testing::TailerRun;
using testing::TempDir;
using testing::testConfig;

namespace {

// Descriptors this process holds on files under `dir`.
size_t fdsUnder(const std::string& dir) {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  REQUIRE(d != nullptr);
  while (struct dirent* e = ::readdir(d)) {
    char target[PATH_MAX];
    std::string link = std::string("/proc/self/fd/") + e->d_name;
    ssize_t len = ::readlink(link.c_str(), target, sizeof target - 1);
    if (len <= 0) continue;
    if (std::string(target, static_cast<size_t>(len)).rfind(dir + "/", 0) == 0) ++n;
  }
  ::closedir(d);
  return n;
}

size_t openFds() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  REQUIRE(d != nullptr);
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n - 3;  // ".", ".." and the directory's own fd
}

std::string name(const char* prefix, int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%02d.log", prefix, i);
  return buf;
}

// Whether everything written to each path was shipped, over all the followers it had.
bool allShipped(const RecordingObserver& obs, const std::map<std::string, std::string>& written) {
  for (const auto& [path, data] : written) {
    std::string got;
    for (const auto* r : obs.forPath(path)) got += r->shipped;
    if (got != data) return false;
  }
  return true;
}

const Record* recordOf(const RecordingObserver& obs, const std::string& path) {
  auto rs = obs.forPath(path);
  return rs.empty() ? nullptr : rs.back();
}

}  // namespace

TEST_CASE("tailer fds: 50 files under a budget of 8, growing in random order", "[tailer][fds]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  FdBudget budget(8);
  std::map<std::string, std::string> written;
  std::vector<std::string> paths;
  for (int i = 0; i < 50; ++i) {
    paths.push_back(dir / name("f", i));
    std::string line = "file " + std::to_string(i) + " line 0\n";
    append(paths.back(), line);
    written[paths.back()] = line;
  }
  TailerRun run(loop, testConfig("t", {dir.path() + "/*.log"}), obs, true, {}, &budget);
  REQUIRE(loop.waitFor([&] { return allShipped(obs, written); }));
  CHECK(run->stats().files_followed == 50);
  CHECK(run->stats().files_open <= 8);
  CHECK(run->stats().files_open + run->stats().files_suspended == 50);
  CHECK(fdsUnder(dir.path()) <= 8);

  auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  size_t most_fds = 0;
  for (int step = 1; step <= 300; ++step) {
    const std::string& p = paths[rng() % paths.size()];
    std::string line = p.substr(p.size() - 7) + " step " + std::to_string(step) + "\n";
    append(p, line);
    written[p] += line;
    if (step % 7 == 0) {
      REQUIRE(loop.waitFor([&] { return allShipped(obs, written); }));
      most_fds = std::max(most_fds, fdsUnder(dir.path()));
    }
  }
  REQUIRE(loop.waitFor([&] { return allShipped(obs, written); }));
  const InputStats& s = run->stats();
  CHECK(most_fds <= 8);
  CHECK(budget.inUse() <= 8);
  CHECK(s.files_followed == 50);
  CHECK(s.files_open + s.files_suspended == 50);
  CHECK(s.suspensions >= 42);
  CHECK(s.reopens > 0);
  CHECK(s.files_waiting_for_fd == 0);
  CHECK(s.open_errors == 0);
  CHECK(s.rotations == 0);
  CHECK(obs.records.size() == 50);  // reopened, never re-followed: one record per file
  run.close();
  CHECK(budget.inUse() == 0);
}

TEST_CASE("tailer fds: stat polling reopens suspended files too", "[tailer][fds]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  FdBudget budget(3);
  std::map<std::string, std::string> written;
  for (int i = 0; i < 12; ++i) {
    append(dir / name("p", i), "first\n");
    written[dir / name("p", i)] = "first\n";
  }
  auto cfg = testConfig("t", {dir.path() + "/*.log"});
  cfg.poll = true;
  TailerRun run(loop, cfg, obs, true, {}, &budget);
  REQUIRE(loop.waitFor([&] { return allShipped(obs, written); }));
  for (int round = 0; round < 3; ++round) {
    for (int i = 11; i >= 0; --i) {
      append(dir / name("p", i), "round " + std::to_string(round) + "\n");
      written[dir / name("p", i)] += "round " + std::to_string(round) + "\n";
    }
    REQUIRE(loop.waitFor([&] { return allShipped(obs, written); }));
  }
  CHECK(run->stats().polling);
  CHECK(run->stats().reopens >= 27);
  CHECK(fdsUnder(dir.path()) <= 3);
}

TEST_CASE("tailer fds: rotation and truncation while suspended", "[tailer][fds]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  FdBudget budget(2);
  std::map<std::string, std::string> written;
  for (int i = 0; i < 4; ++i) {
    append(dir / name("r", i), "first " + std::to_string(i) + "\n");
    written[dir / name("r", i)] = "first " + std::to_string(i) + "\n";
  }
  TailerRun run(loop, testConfig("t", {dir.path() + "/*.log"}), obs, true, {}, &budget);
  REQUIRE(loop.waitFor([&] { return allShipped(obs, written); }));
  // Any suspended one will do.
  std::string p;
  for (const auto& [path, data] : written) {
    const Record* r = recordOf(obs, path);
    if (r != nullptr && r->follower != nullptr && r->follower->fd() < 0) p = path;
  }
  REQUIRE_FALSE(p.empty());
  const Record* old = recordOf(obs, p);
  uint64_t old_id = old->id;

  SECTION("renamed in place after a last write: the old inode is found and finished") {
    // All in one event batch: the write, the rename and the new file.
    append(p, "late\n");
    REQUIRE(::rename(p.c_str(), (p + ".1").c_str()) == 0);
    append(p, "new file\n");
    REQUIRE(loop.waitFor([&] {
      return obs.records.at(old_id).shipped == written[p] + "late\n" &&
             recordOf(obs, p)->id != old_id && recordOf(obs, p)->shipped == "new file\n";
    }));
    CHECK(run->stats().rotations == 1);
    REQUIRE(loop.waitFor([&] { return obs.records.at(old_id).closed; }));
    CHECK(obs.records.at(old_id).state_at_close == Follower::State::kRotated);
    CHECK(recordOf(obs, p)->default_start == 0);
  }
  SECTION("renamed with nothing new: closed without taking an fd") {
    REQUIRE(::rename(p.c_str(), (p + ".1").c_str()) == 0);
    append(p, "new file\n");
    REQUIRE(loop.waitFor([&] {
      return obs.records.at(old_id).closed && recordOf(obs, p)->shipped == "new file\n";
    }));
    CHECK(obs.records.at(old_id).shipped == written[p]);
    CHECK(run->stats().rotations == 1);
  }
  SECTION("deleted: the new file is followed from 0") {
    REQUIRE(::unlink(p.c_str()) == 0);
    append(p, "new file\n");
    written[p] += "new file\n";
    // The new file may get the freed inode number: with no fd left on the old one, that looks
    // like copytruncate (same inode, another head) and is handled as such: from offset 0.
    REQUIRE(loop.waitFor([&] { return allShipped(obs, written); }));
    auto rs = obs.forPath(p);
    if (rs.size() == 2) {
      CHECK(rs.back()->shipped == "new file\n");
      REQUIRE(loop.waitFor([&] { return obs.records.at(old_id).closed; }));
    } else {
      CHECK(rs.front()->truncated == 1);
    }
  }
  SECTION("copytruncate: reopened and restarted at 0") {
    REQUIRE(::truncate(p.c_str(), 0) == 0);
    append(p, "rewritten\n");
    REQUIRE(loop.waitFor([&] { return obs.records.at(old_id).truncated == 1; }));
    REQUIRE(loop.waitFor([&] { return obs.records.at(old_id).cursor == 10; }));
    CHECK(obs.records.at(old_id).shipped == written[p] + "rewritten\n");
    CHECK(recordOf(obs, p)->id == old_id);
  }
  CHECK(run->stats().open_errors == 0);
  CHECK(fdsUnder(dir.path()) <= 2);
}

TEST_CASE("tailer fds: with nothing idle, new files wait and are never dropped", "[tailer][fds]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  obs.auto_drain = false;  // a slow sink: nothing is ever drained on its own
  FdBudget budget(3);
  std::map<std::string, std::string> written;
  for (int i = 0; i < 7; ++i) {
    append(dir / name("w", i), "line " + std::to_string(i) + "\n");
    written[dir / name("w", i)] = "line " + std::to_string(i) + "\n";
  }
  TailerRun run(loop, testConfig("t", {dir.path() + "/*.log"}), obs, true, {}, &budget);
  loop.runFor(100);
  CHECK(obs.records.size() == 3);
  CHECK(run->stats().files_waiting_for_fd == 4);
  CHECK(run->stats().files_open == 3);
  // New ones queue behind them.
  append(dir / "w99.log", "late file\n");
  written[dir / "w99.log"] = "late file\n";
  loop.runFor(100);
  CHECK(run->stats().files_waiting_for_fd == 5);
  // The sink catches up: every waiting file gets its turn.
  REQUIRE(loop.waitFor([&] {
    obs.drainAll();
    return allShipped(obs, written);
  }));
  CHECK(run->stats().files_waiting_for_fd == 0);
  CHECK(run->stats().open_errors == 0);
  CHECK(obs.records.size() == 8);
}

TEST_CASE("tailer fds: start_at end still applies to files that waited at start-up",
          "[tailer][fds]") {
  TempDir dir;
  Loop loop;
  // Another input holds the whole budget with files its sink has not read yet.
  RecordingObserver hog;
  hog.auto_drain = false;
  FdBudget budget(2);
  append(dir / "hog1.txt", "hog 1\n");
  append(dir / "hog2.txt", "hog 2\n");
  TailerRun hog_run(loop, testConfig("hog", {dir.path() + "/*.txt"}), hog, true, {}, &budget);
  REQUIRE(budget.available() == 0);

  RecordingObserver obs;
  for (int i = 0; i < 3; ++i) append(dir / name("s", i), "before start\npartial ");
  auto cfg = testConfig("t", {dir.path() + "/*.log"});
  cfg.start_at = config::StartAt::kEnd;
  TailerRun run(loop, cfg, obs, true, {}, &budget);
  CHECK(run->stats().files_waiting_for_fd == 3);
  std::map<std::string, std::string> written;
  for (int i = 0; i < 3; ++i) {
    append(dir / name("s", i), "line\nafter start\n");
    written[dir / name("s", i)] = "partial line\nafter start\n";
  }
  loop.runFor(50);
  CHECK(obs.records.empty());
  hog.drainAll();  // now the hog's files are idle and delivered: they give way
  REQUIRE(loop.waitFor([&] { return allShipped(obs, written); }));
  CHECK(hog_run->stats().suspensions == 2);
}

TEST_CASE("tailer fds: two inputs share one budget", "[tailer][fds]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs_a, obs_b;
  FdBudget budget(4);
  std::map<std::string, std::string> wa, wb;
  for (int i = 0; i < 6; ++i) {
    append(dir / name("a", i), "a\n");
    wa[dir / name("a", i)] = "a\n";
    append(dir / name("b", i), "b\n");
    wb[dir / name("b", i)] = "b\n";
  }
  TailerRun a(loop, testConfig("a", {dir.path() + "/a*.log"}), obs_a, true, {}, &budget);
  TailerRun b(loop, testConfig("b", {dir.path() + "/b*.log"}), obs_b, true, {}, &budget);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 6; ++i) {
      append(dir / name("a", i), "a" + std::to_string(round) + "\n");
      wa[dir / name("a", i)] += "a" + std::to_string(round) + "\n";
      append(dir / name("b", i), "b" + std::to_string(round) + "\n");
      wb[dir / name("b", i)] += "b" + std::to_string(round) + "\n";
    }
    REQUIRE(loop.waitFor([&] { return allShipped(obs_a, wa) && allShipped(obs_b, wb); }));
    CHECK(a->stats().files_open + b->stats().files_open <= 4);
    CHECK(fdsUnder(dir.path()) <= 4);
  }
  CHECK(a->stats().suspensions > 0);  // b's files took a's descriptors, and the other way
  CHECK(b->stats().suspensions > 0);
  CHECK(budget.inUse() == a->stats().files_open + b->stats().files_open);
}

TEST_CASE("tailer fds: EMFILE is a spent budget, not an open error", "[tailer][fds]") {
  TempDir dir;
  TempDir staging;
  std::map<std::string, std::string> written;
  for (int i = 0; i < 30; ++i) {
    append(staging / name("e", i), "emfile " + std::to_string(i) + "\n");
    written[dir / name("e", i)] = "emfile " + std::to_string(i) + "\n";
  }
  Loop loop;
  RecordingObserver obs;
  FdBudget unlimited;
  TailerRun run(loop, testConfig("t", {dir.path() + "/*.log"}), obs, true, {}, &unlimited);

  struct rlimit saved;
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  struct Restore {
    struct rlimit rl;
    ~Restore() { ::setrlimit(RLIMIT_NOFILE, &rl); }
  } restore{saved};
  struct rlimit low = saved;
  low.rlim_cur = openFds() + 3;  // room for three followers, then EMFILE
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  for (int i = 0; i < 30; ++i) {
    REQUIRE(::rename((staging / name("e", i)).c_str(), (dir / name("e", i)).c_str()) == 0);
  }
  bool ok = loop.waitFor([&] { return allShipped(obs, written); }, 5000);
  InputStats s = run->stats();
  ::setrlimit(RLIMIT_NOFILE, &saved);
  CHECK(ok);
  CHECK(s.fd_exhaustions > 0);
  CHECK(s.open_errors == 0);
  CHECK(s.suspensions > 0);
  CHECK(s.files_followed == 30);
  CHECK(unlimited.limit() < 10);  // lowered to what the process really has
}

TEST_CASE("tailer: symlink loops and dangling symlinks are reported once", "[tailer]") {
  TempDir dir;
  append(dir / "good.log", "good\n");
  REQUIRE(::symlink("loop.log", (dir / "loop.log").c_str()) == 0);
  REQUIRE(::symlink("target.txt", (dir / "dangling.log").c_str()) == 0);
  Loop loop;
  RecordingObserver obs;
  auto cfg = testConfig("t", {dir.path() + "/*.log"});
  cfg.rescan_interval = std::chrono::milliseconds(30);
  TailerRun run(loop, cfg, obs);
  CHECK(obs.records.size() == 1);
  CHECK(run->stats().skipped_symlinks == 2);
  loop.runFor(150);  // a few rescans: reported once
  CHECK(run->stats().skipped_symlinks == 2);
  CHECK(run->stats().open_errors == 0);
  // The target appears: the link is followed at the next rescan.
  append(dir / "target.txt", "via link\n");
  REQUIRE(loop.waitFor([&] {
    auto r = obs.forPath(dir / "dangling.log");
    return !r.empty() && r[0]->shipped == "via link\n";
  }));
}

}  // namespace logsplice::inputs
