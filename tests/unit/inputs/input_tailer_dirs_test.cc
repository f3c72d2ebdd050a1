// A directory of the globs that cannot be listed (EACCES: a 0700 directory of another user) is
// warned about, counted, listed for `status`, retried at rescans; and collectMetrics.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "inputs/dir_lister.h"
#include "inputs/input_tailer.h"
#include "tests/unit/inputs/tailer_harness.h"

namespace logsplice::inputs {

using testing::append;
using testing::Loop;
using testing::RecordingObserver;
using testing::TailerRun;
using testing::TempDir;
using testing::testConfig;

namespace {

// Fails listing one directory with EACCES while `denied`; lists every other for real.
class DenyingLister : public DirLister {
 public:
  explicit DenyingLister(std::string dir) : dir_(std::move(dir)) { DirLister::setForTesting(this); }
  ~DenyingLister() override { DirLister::setForTesting(nullptr); }
  int list(const std::string& dir, std::vector<std::string>& names) override {
    if (denied && dir == dir_) return EACCES;
    return DirLister::list(dir, names);
  }
  bool denied = true;

 private:
  std::string dir_;
};

struct Sample {
  std::string help;
  sys::MetricType type;
  sys::MetricLabels labels;
  double value;
};

class RecordingWriter : public sys::MetricWriter {
 public:
  std::vector<std::string> order;
  std::map<std::string, Sample> samples;
  void add(std::string_view family, std::string_view help, sys::MetricType type,
           const sys::MetricLabels& labels, double value) override {
    order.emplace_back(family);
    samples[std::string(family)] = Sample{std::string(help), type, labels, value};
  }
};

}  // namespace

TEST_CASE("tailer: an unlistable directory is reported, counted, and retried", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  REQUIRE(::mkdir((dir / "ok").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "private").c_str(), 0700) == 0);
  append(dir / "ok/a.log", "a\n");
  append(dir / "private/b.log", "b\n");
  auto cfg = testConfig("t", {dir.path() + "/*/*.log"});
  cfg.rescan_interval = std::chrono::milliseconds(20);
  DenyingLister lister(dir / "private");
  TailerRun run(loop, cfg, obs);
  CHECK(obs.allShipped() == "a\n");
  CHECK(run->stats().unreadable_dirs == 1);
  CHECK(run->stats().dir_errors_total == 1);
  auto dirs = run->unreadableDirs();
  REQUIRE(dirs.size() == 1);
  CHECK(dirs[0].path == dir / "private");
  CHECK(dirs[0].err == EACCES);
  CHECK(dirs[0].reason == "Permission denied");

  // Rescans retry it; it is counted (and warned about) once while it stays unreadable.
  uint64_t rescans = run->stats().rescans;
  REQUIRE(loop.waitFor([&] { return run->stats().rescans >= rescans + 3; }));
  CHECK(run->stats().dir_errors_total == 1);
  CHECK(run->stats().unreadable_dirs == 1);
  CHECK(obs.records.size() == 1);

  // Readable again: the next rescan follows its files and forgets the error.
  lister.denied = false;
  REQUIRE(loop.waitFor([&] { return obs.forPath(dir / "private/b.log").size() == 1; }));
  CHECK(obs.forPath(dir / "private/b.log")[0]->shipped == "b\n");
  REQUIRE(loop.waitFor([&] { return run->stats().unreadable_dirs == 0; }));
  CHECK(run->unreadableDirs().empty());
  CHECK(run->stats().dir_errors_total == 1);

  // Unreadable again: a new episode, counted again.
  lister.denied = true;
  REQUIRE(loop.waitFor([&] { return run->stats().unreadable_dirs == 1; }));
  CHECK(run->stats().dir_errors_total == 2);
}

TEST_CASE("tailer: collectMetrics reports the input's families with its label", "[tailer]") {
  TempDir dir;
  Loop loop;
  RecordingObserver obs;
  append(dir / "a.log", "a\n");
  append(dir / "b.log", "b\n");
  auto cfg = testConfig("web", {dir.path() + "/*.log"});
  TailerRun run(loop, cfg, obs);
  REQUIRE(obs.records.size() == 2);
  RecordingWriter w;
  run->collectMetrics(w);
  const std::vector<std::string> expected = {
      "logsplice_input_files_followed",
      "logsplice_input_discovered_total",
      "logsplice_input_rotations_total",
      "logsplice_input_truncations_total",
      "logsplice_input_deletions_total",
      "logsplice_input_long_line_splits_total",
      "logsplice_input_partial_line_flushes_total",
      "logsplice_input_inotify_overflows_total",
      "logsplice_input_rescans_total",
      "logsplice_input_open_errors_total",
      "logsplice_input_retention_releases_total",
      "logsplice_input_files_open",
      "logsplice_input_files_suspended",
      "logsplice_input_files_waiting_for_fd",
      "logsplice_input_suspensions_total",
      "logsplice_input_reopens_total",
      "logsplice_input_fd_exhaustions_total",
      "logsplice_input_skipped_symlinks_total",
      "logsplice_input_polling",
      "logsplice_input_dirs_unreadable",
      "logsplice_input_dir_errors_total",
  };
  CHECK(w.order == expected);
  for (const auto& [family, s] : w.samples) {
    INFO(family);
    CHECK(s.labels == sys::MetricLabels{{"input", "web"}});
    CHECK_FALSE(s.help.empty());
    bool total = family.size() > 6 && family.compare(family.size() - 6, 6, "_total") == 0;
    CHECK((s.type == sys::MetricType::kCounter) == total);
  }
  CHECK(w.samples["logsplice_input_files_followed"].value == 2);
  CHECK(w.samples["logsplice_input_discovered_total"].value == 2);
  CHECK(w.samples["logsplice_input_files_open"].value == 2);
  CHECK(w.samples["logsplice_input_files_followed"].help == "Files followed now.");
  CHECK(w.samples["logsplice_input_polling"].value == 0);
  CHECK(w.samples["logsplice_input_dirs_unreadable"].value == 0);
}

}  // namespace logsplice::inputs
