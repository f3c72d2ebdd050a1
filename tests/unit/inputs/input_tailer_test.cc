#include "inputs/input_tailer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/unit/inputs/tailer_harness.h"

namespace logsplice::inputs {

using testing::append;
using testing::Loop;
using testing::RecordingObserver;
using testing::TailerRun;
using testing::TempDir;
using testing::testConfig;
using testing::Writer;

TEST_CASE("tailer: files present at start-up, start_at beginning and end", "[tailer]") {
  TempDir dir;
  append(dir / "a.log", "old 1\nold 2\n");
  append(dir / "b.log", "old b\npartial");
  append(dir / "skip.txt", "not matched\n");
  Loop loop;
  RecordingObserver obs;
  auto cfg = testConfig("t", {dir.path() + "/*.log"});

  SECTION("beginning") {
    TailerRun run(loop, cfg, obs);
    REQUIRE(obs.records.size() == 2);
    CHECK(obs.forPath(dir / "a.log")[0]->shipped == "old 1\nold 2\n");
    CHECK(obs.forPath(dir / "b.log")[0]->shipped == "old b\n");
    CHECK(run->stats().files_followed == 2);
    CHECK(run->stats().files_discovered == 2);
  }
  SECTION("end") {
    cfg.start_at = config::StartAt::kEnd;
    TailerRun run(loop, cfg, obs);
    REQUIRE(obs.records.size() == 2);
    CHECK(obs.forPath(dir / "a.log")[0]->default_start == 12);
    // The line being written at start-up is shipped whole once complete.
    CHECK(obs.forPath(dir / "b.log")[0]->default_start == 6);
    append(dir / "a.log", "new 1\n");
    append(dir / "b.log", " done\n");
    REQUIRE(loop.waitFor([&] {
      return obs.forPath(dir / "a.log")[0]->shipped == "new 1\n" &&
             obs.forPath(dir / "b.log")[0]->shipped == "partial done\n";
    }));
  }
  SECTION("files created later start at 0 even with start_at end") {
    cfg.start_at = config::StartAt::kEnd;
    TailerRun run(loop, cfg, obs);
    append(dir / "c.log", "first\nsecond\n");
    REQUIRE(loop.waitFor(
        [&] {
          auto r = obs.forPath(dir / "c.log");
          return r.size() == 1 && r[0]->shipped == "first\nsecond\n";
        },
        100 + 500));
    CHECK(obs.forPath(dir / "c.log")[0]->default_start == 0);
  }
}

TEST_CASE("tailer: a new file is picked up within 100 ms", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  TailerRun run(loop, testConfig("t", {dir.path() + "/*.log"}), obs);
  CHECK(obs.records.empty());
  auto t0 = std::chrono::steady_clock::now();
  append(dir / "new.log", "hello\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "hello\n"; }, 1000));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(100));
  append(dir / "new.log", "world\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "hello\nworld\n"; }, 1000));
  CHECK(obs.records.size() == 1);
}

TEST_CASE("tailer: exclude matches the basename or the full path", "[tailer]") {
  TempDir dir;
  append(dir / "a.log", "a\n");
  append(dir / "a.log.gz", "zip\n");
  append(dir / "debug.log", "dbg\n");
  Loop loop;
  RecordingObserver obs;
  auto cfg = testConfig("t", {dir.path() + "/*.log*"});
  cfg.exclude = {"*.gz", dir.path() + "/debug.*"};
  TailerRun run(loop, cfg, obs);
  append(dir / "b.log.gz", "zip\n");
  append(dir / "b.log", "b\n");
  REQUIRE(loop.waitFor([&] { return obs.records.size() == 2 && obs.allShipped() == "a\nb\n"; }));
  loop.runFor(30);
  CHECK(obs.records.size() == 2);
}

TEST_CASE("tailer: rename + create (logrotate create)", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  // The glob also matches the rotated name: the rotated inode must not get a second follower.
  bool glob_matches_rotated = GENERATE(false, true);
  auto cfg = testConfig("t", {dir.path() + (glob_matches_rotated ? "/app.log*" : "/app.log")});
  Writer w(dir / "app.log");
  w.write("one\n");
  TailerRun run(loop, cfg, obs);
  REQUIRE(obs.allShipped() == "one\n");
  REQUIRE(::rename((dir / "app.log").c_str(), (dir / "app.log.1").c_str()) == 0);
  w.write("two, to the old inode after the rename\n");
  REQUIRE(loop.waitFor(
      [&] { return obs.allShipped() == "one\ntwo, to the old inode after the rename\n"; }));
  w.reopen();  // the application reopens its log: a new file under the name
  w.write("three\n");
  REQUIRE(loop.waitFor([&] {
    return obs.records.size() == 2 && obs.order.size() == 2 &&
           obs.records[obs.order[1]].shipped == "three\n";
  }));
  const auto& old_rec = obs.records[obs.order[0]];
  CHECK(old_rec.shipped == "one\ntwo, to the old inode after the rename\n");
  CHECK(obs.records[obs.order[1]].default_start == 0);
  CHECK(run->stats().rotations == 1);
  // The rotated follower closes once idle for rotate_wait and drained.
  REQUIRE(loop.waitFor([&] { return obs.records[obs.order[0]].closed; }, 2000));
  CHECK(obs.records[obs.order[0]].state_at_close == Follower::State::kRotated);
  CHECK(run->stats().files_followed == 1);
  // A later rescan meets app.log.1 again (if it matches): it was finished, not a new file.
  loop.runFor(150);
  CHECK(obs.records.size() == 2);
}

TEST_CASE("tailer: rotation many times in a row loses nothing", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  auto cfg = testConfig("t", {dir.path() + "/app.log"});
  TailerRun run(loop, cfg, obs);
  std::string expected;
  Writer w(dir / "app.log");
  for (int r = 0; r < 20; ++r) {
    for (int i = 0; i < 5; ++i) {
      std::string line = "rot " + std::to_string(r) + " line " + std::to_string(i) + "\n";
      w.write(line);
      expected += line;
    }
    std::string to = dir / ("app.log." + std::to_string(r));
    REQUIRE(::rename((dir / "app.log").c_str(), to.c_str()) == 0);
    w.write("late " + std::to_string(r) + "\n");
    expected += "late " + std::to_string(r) + "\n";
    w.reopen();
    if (r % 3 == 0) loop.runFor(1);  // some rotations are seen one by one, others in bursts
  }
  REQUIRE(loop.waitFor([&] { return obs.allShipped().size() == expected.size(); }));
  // Each file's lines are in order; across files, followers open in event order. Every line
  // arrives exactly once.
  auto sortedLines = [](const std::string& s) {
    std::vector<std::string> lines;
    size_t i = 0;
    while (i < s.size()) {
      size_t j = s.find('\n', i);
      lines.push_back(s.substr(i, j - i));
      i = j + 1;
    }
    std::sort(lines.begin(), lines.end());
    return lines;
  };
  CHECK(sortedLines(obs.allShipped()) == sortedLines(expected));
  for (const auto& [id, r] : obs.records) {
    CHECK(expected.find(r.shipped) != std::string::npos);  // contiguous and in order
  }
}

TEST_CASE("tailer: copytruncate restarts at 0 with a new generation", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  TailerRun run(loop, testConfig("t", {dir.path() + "/*.log"}), obs);
  Writer w(dir / "app.log");
  w.write("before 1\nbefore 2\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "before 1\nbefore 2\n"; }));
  uint64_t gen0 = obs.records.begin()->second.follower->generation();
  // copytruncate: copy to a name outside the glob, truncate in place, the writer goes on.
  append(dir / "app.log.1", "before 1\nbefore 2\n");
  REQUIRE(::truncate((dir / "app.log").c_str(), 0) == 0);
  w.write("after\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "before 1\nbefore 2\nafter\n"; }));
  CHECK(obs.records.size() == 1);
  CHECK(obs.records.begin()->second.truncated == 1);
  CHECK(obs.records.begin()->second.follower->generation() == gen0 + 1);
  CHECK(run->stats().truncations == 1);

  SECTION("regrown past the old size before we looked: caught by the fingerprint") {
    REQUIRE(::truncate((dir / "app.log").c_str(), 0) == 0);
    w.write("a much longer line than anything before, written right after truncating\n");
    REQUIRE(loop.waitFor([&] { return obs.records.begin()->second.truncated == 2; }));
    REQUIRE(loop.waitFor([&] {
      return obs.allShipped() ==
             "before 1\nbefore 2\nafter\na much longer line than anything before, written right "
             "after truncating\n";
    }));
  }
}

TEST_CASE("tailer: a rewrite hidden by regrowth within a second is found by the rescan",
          "[tailer]") {
  // Past 1 KiB the head is re-read at most once a second on growth. A copytruncate whose new
  // content outgrows the old size within that second, after which the file goes quiet, is
  // caught by the next rescan (the owed check), never left unshipped.
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  auto cfg = testConfig("t", {dir.path() + "/*.log"});
  cfg.rescan_interval = std::chrono::milliseconds(100);
  TailerRun run(loop, cfg, obs);
  Writer w(dir / "app.log");
  std::string old_content(2000, 'o');
  old_content.back() = '\n';
  w.write(old_content);
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == old_content; }));
  std::string fresh;
  for (int i = 0; i < 40; ++i)
    fresh +=
        "fresh line " + std::to_string(i) + " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";
  REQUIRE(fresh.size() > old_content.size());
  // Both before the loop runs again: one batch of events, the file already larger than before.
  REQUIRE(::truncate((dir / "app.log").c_str(), 0) == 0);
  w.write(fresh);
  REQUIRE(loop.waitFor([&] { return run->stats().truncations == 1; }, 3000));
  REQUIRE(loop.waitFor([&] {
    const std::string all = obs.allShipped();
    return all.size() >= fresh.size() &&
           all.compare(all.size() - fresh.size(), fresh.size(), fresh) == 0;
  }));
  CHECK(obs.records.size() == 1);
}

TEST_CASE("tailer: a file deleted while open is drained from the fd", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  TailerRun run(loop, testConfig("t", {dir.path() + "/*.log"}), obs);
  Writer w(dir / "app.log");
  w.write("x\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "x\n"; }));
  REQUIRE(::unlink((dir / "app.log").c_str()) == 0);
  w.write("after unlink\npartial at the end");
  REQUIRE(loop.waitFor([&] { return obs.records.begin()->second.closed; }));
  const auto& r = obs.records.begin()->second;
  CHECK(r.state_at_close == Follower::State::kDeleted);
  // The final line without newline is flushed (with a break) before the close.
  CHECK(r.shipped == "x\nafter unlink\npartial at the end\n");
  CHECK(run->stats().deletions == 1);
  CHECK(run->stats().partial_line_flushes == 1);
  CHECK(run->stats().files_followed == 0);
  // A new file under the name is a new follower.
  append(dir / "app.log", "reborn\n");
  REQUIRE(loop.waitFor(
      [&] { return obs.records.size() == 2 && obs.allShipped().ends_with("reborn\n"); }));
}

TEST_CASE("tailer: directories created later under ** are watched", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  auto cfg = testConfig("t", {dir.path() + "/**/*.log", dir.path() + "/later/*/x.log"});
  TailerRun run(loop, cfg, obs);
  REQUIRE(::mkdir((dir / "a").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "a/b").c_str(), 0755) == 0);
  append(dir / "a/b/deep.log", "deep\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "deep\n"; }));
  // A root that does not exist at start: its ancestor is watched until it appears.
  REQUIRE(::mkdir((dir / "later").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "later/q").c_str(), 0755) == 0);
  append(dir / "later/q/x.log", "later\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "deep\nlater\n"; }));
  append(dir / "a/b/deep.log", "deeper\n");
  REQUIRE(loop.waitFor(
      [&] { return obs.forPath(dir / "a/b/deep.log")[0]->shipped == "deep\ndeeper\n"; }));
}

TEST_CASE("tailer: a final line without newline is flushed after partial_line_timeout",
          "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  auto cfg = testConfig("t", {dir.path() + "/*.log"});
  cfg.partial_line_timeout = std::chrono::milliseconds(150);
  TailerRun run(loop, cfg, obs);
  Writer w(dir / "app.log");
  w.write("complete\nno newline yet");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "complete\n"; }));
  loop.runFor(50);
  CHECK(obs.allShipped() == "complete\n");  // not before the timeout
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "complete\nno newline yet\n"; }, 2000));
  CHECK(run->stats().partial_line_flushes == 1);
  // More bytes for that line continue after the break, as their own line.
  w.write(" - rest\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "complete\nno newline yet\n - rest\n"; }));
  const testing::Record& r = obs.records.begin()->second;
  CHECK(r.raw == "complete\nno newline yet - rest\n");
}

TEST_CASE("tailer: a line longer than max_line_bytes is split", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  auto cfg = testConfig("t", {dir.path() + "/*.log"});
  cfg.max_line_bytes = 10;
  TailerRun run(loop, cfg, obs);
  Writer w(dir / "app.log");
  w.write("short\n0123456789abcdefghijKLM");  // 23 bytes unterminated: two pieces of 10
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "short\n0123456789\nabcdefghij\n"; }));
  CHECK(run->stats().long_line_splits == 2);
  w.write("NO\n");
  REQUIRE(
      loop.waitFor([&] { return obs.allShipped() == "short\n0123456789\nabcdefghij\nKLMNO\n"; }));
  // A long line complete inside one appended batch is not split (we never scan all bytes).
  w.write(std::string(25, 'z') + "\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped().ends_with(std::string(25, 'z') + "\n"); }));
  CHECK(run->stats().long_line_splits == 2);
}

TEST_CASE("tailer: two paths to one inode are followed once", "[tailer]") {
  TempDir dir;
  REQUIRE(::mkdir((dir / "real").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "logs").c_str(), 0755) == 0);
  append(dir / "real/target.log", "via link\n");
  REQUIRE(::symlink((dir / "real/target.log").c_str(), (dir / "logs/link.log").c_str()) == 0);
  REQUIRE(::symlink((dir / "real/target.log").c_str(), (dir / "logs/other.log").c_str()) == 0);
  Loop loop;
  RecordingObserver obs;
  TailerRun run(loop, testConfig("t", {dir.path() + "/logs/*.log", dir.path() + "/real/*.log"}),
                obs);
  CHECK(obs.records.size() == 1);
  CHECK(obs.allShipped() == "via link\n");
  append(dir / "real/target.log", "more\n");
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "via link\nmore\n"; }));
  CHECK(obs.records.size() == 1);
}

TEST_CASE("tailer: a symlinked file outside the globs' directories is refreshed", "[tailer]") {
  TempDir dir;
  REQUIRE(::mkdir((dir / "real").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "logs").c_str(), 0755) == 0);
  append(dir / "real/target.txt", "a\n");
  REQUIRE(::symlink((dir / "real/target.txt").c_str(), (dir / "logs/link.log").c_str()) == 0);
  Loop loop;
  RecordingObserver obs;
  TailerRun run(loop, testConfig("t", {dir.path() + "/logs/*.log"}), obs);
  append(dir / "real/target.txt", "b\n");  // an event in the target's directory only
  REQUIRE(loop.waitFor([&] { return obs.allShipped() == "a\nb\n"; }));
}

}  // namespace logsplice::inputs
