// Discovery on real directories: glob expansion and excludes, events for files routed as entry
// changes, new directories and missing roots turned into rescans, stat polling, and
// directories that cannot be listed.

#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

#include "inputs/dir_lister.h"
#include "inputs/discovery.h"
#include "tests/unit/inputs/tailer_harness.h"

namespace logsplice::inputs {

using testing::append;
using testing::Loop;
using testing::TempDir;
using testing::testConfig;

namespace {

class DiscoveryRecorder : public DiscoveryHandler {
 public:
  std::vector<WatchHandler::Event> events;
  int rescans = 0;
  int overflows = 0;
  void entriesChanged(const std::vector<WatchHandler::Event>& batch) override {
    events.insert(events.end(), batch.begin(), batch.end());
  }
  void rescanNeeded(bool overflow) override {
    ++rescans;
    overflows += overflow ? 1 : 0;
  }
  bool sawFile(const std::string& path) const {
    return std::any_of(events.begin(), events.end(),
                       [&](const auto& e) { return joinPath(e.dir, e.name) == path; });
  }
};

struct DiscoveryRun {
  DiscoveryRun(Loop& l, const config::InputConfig& c) : loop(l), cfg(c), d(l.get(), cfg, rec) {
    sys::Error err = d.init();
    INFO(err.toString());
    REQUIRE(err.isOk());
  }
  ~DiscoveryRun() {
    bool closed = false;
    d.close([&] { closed = true; });
    loop.waitFor([&] { return closed; }, 2000);
    CHECK(closed);
  }
  std::set<std::string> scan(int* fd_err = nullptr) {
    std::set<std::string> out;
    int err = d.scan([&](const std::string& p) { out.insert(p); });
    if (fd_err != nullptr) *fd_err = err;
    return out;
  }
  Loop& loop;
  config::InputConfig cfg;
  DiscoveryRecorder rec;
  Discovery d;
};

// Fails listing one directory with `err`; lists every other for real.
class FaultyLister : public DirLister {
 public:
  FaultyLister(std::string dir, int err) : dir_(std::move(dir)), err_(err) {
    DirLister::setForTesting(this);
  }
  ~FaultyLister() override { DirLister::setForTesting(nullptr); }
  int list(const std::string& dir, std::vector<std::string>& names) override {
    if (dir == dir_) return err_;
    return DirLister::list(dir, names);
  }

 private:
  std::string dir_;
  int err_;
};

}  // namespace

TEST_CASE("discovery: a scan expands the globs minus the excludes", "[discovery]") {
  TempDir dir;
  Loop loop;
  REQUIRE(::mkdir((dir / "a").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "b").c_str(), 0755) == 0);
  append(dir / "a/x.log", "1\n");
  append(dir / "b/y.log", "1\n");
  append(dir / "b/y.log.gz", "1\n");
  append(dir / "b/skip.log", "1\n");
  append(dir / "top.txt", "1\n");
  auto cfg = testConfig("d", {dir.path() + "/*/*.log*"});
  cfg.exclude = {"*.gz", "skip.log"};
  DiscoveryRun run(loop, cfg);
  CHECK(run.scan() == std::set<std::string>{dir / "a/x.log", dir / "b/y.log"});
  CHECK(run.d.isCandidate(dir / "a/new.log"));
  CHECK_FALSE(run.d.isCandidate(dir / "a/new.log.gz"));  // excluded by pattern
  CHECK_FALSE(run.d.isCandidate(dir / "b/skip.log"));    // excluded by basename
  CHECK_FALSE(run.d.isCandidate(dir / "top.txt"));
  CHECK(run.d.excluded(dir / "whatever.gz"));
  CHECK(run.d.inotifyAvailable());
  CHECK_FALSE(run.d.polling());
  // Every directory a match can appear in is watched.
  REQUIRE(run.d.inotifyWatcher() != nullptr);
  CHECK(run.d.inotifyWatcher()->watches(dir.path()));
  CHECK(run.d.inotifyWatcher()->watches(dir / "a"));
  CHECK(run.d.inotifyWatcher()->watches(dir / "b"));
}

TEST_CASE("discovery: file events become entry changes, new directories rescans", "[discovery]") {
  TempDir dir;
  Loop loop;
  auto cfg = testConfig("d", {dir.path() + "/*/*.log"});
  DiscoveryRun run(loop, cfg);
  REQUIRE(run.scan().empty());
  run.d.start();

  REQUIRE(::mkdir((dir / "sub").c_str(), 0755) == 0);
  REQUIRE(loop.waitFor([&] { return run.rec.rescans == 1; }));
  CHECK(run.rec.overflows == 0);
  CHECK(run.rec.events.empty());  // a directory is never an entry change
  run.scan();                     // the rescan the handler would run: watches sub/
  append(dir / "sub/x.log", "1\n");
  REQUIRE(loop.waitFor([&] { return run.rec.sawFile(dir / "sub/x.log"); }));
  // A directory no glob can reach is not worth a rescan.
  int before = run.rec.rescans;
  REQUIRE(::mkdir((dir / "sub/deeper").c_str(), 0755) == 0);
  append(dir / "sub/y.log", "1\n");
  REQUIRE(loop.waitFor([&] { return run.rec.sawFile(dir / "sub/y.log"); }));
  CHECK(run.rec.rescans == before);
}

TEST_CASE("discovery: a missing root is found when it appears", "[discovery]") {
  TempDir dir;
  Loop loop;
  auto cfg = testConfig("d", {dir.path() + "/later/app/*.log"});
  DiscoveryRun run(loop, cfg);
  CHECK(run.scan().empty());
  run.d.start();
  REQUIRE(::mkdir((dir / "later").c_str(), 0755) == 0);
  REQUIRE(loop.waitFor([&] { return run.rec.rescans >= 1; }));
  run.scan();  // now watches later/, the deepest existing ancestor
  REQUIRE(::mkdir((dir / "later/app").c_str(), 0755) == 0);
  REQUIRE(loop.waitFor([&] { return run.rec.rescans >= 2; }));
  append(dir / "later/app/x.log", "1\n");
  CHECK(run.scan() == std::set<std::string>{dir / "later/app/x.log"});
}

TEST_CASE("discovery: poll: true serves the input by stat polling", "[discovery]") {
  TempDir dir;
  Loop loop;
  auto cfg = testConfig("d", {dir.path() + "/*.log"});
  cfg.poll = true;
  cfg.poll_interval = std::chrono::milliseconds(5);
  DiscoveryRun run(loop, cfg);
  CHECK_FALSE(run.d.inotifyAvailable());
  run.scan();
  CHECK(run.d.polling());
  REQUIRE(run.d.pollWatcher() != nullptr);
  CHECK(run.d.pollWatcher()->watches(dir.path()));
  run.d.start();
  append(dir / "x.log", "1\n");
  REQUIRE(loop.waitFor([&] { return run.rec.sawFile(dir / "x.log"); }));
  // watchExtra: a directory outside the globs (a symlink's target) is watched too.
  REQUIRE(::mkdir((dir / "elsewhere").c_str(), 0755) == 0);
  run.d.watchExtra(dir / "elsewhere");
  CHECK(run.d.pollWatcher()->watches(dir / "elsewhere"));
  append(dir / "elsewhere/t.log", "1\n");
  REQUIRE(loop.waitFor([&] { return run.rec.sawFile(dir / "elsewhere/t.log"); }));
}

TEST_CASE("discovery: a directory that cannot be listed is reported, with its errno",
          "[discovery]") {
  TempDir dir;
  Loop loop;
  REQUIRE(::mkdir((dir / "open").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "closed").c_str(), 0700) == 0);
  append(dir / "open/a.log", "1\n");
  append(dir / "closed/b.log", "1\n");
  auto cfg = testConfig("d", {dir.path() + "/*/*.log"});
  DiscoveryRun run(loop, cfg);
  std::vector<std::pair<std::string, int>> errors;
  auto on_err = [&](const std::string& d, int e) { errors.emplace_back(d, e); };
  {
    FaultyLister fault(dir / "closed", EACCES);
    std::set<std::string> files;
    int fd_err = run.d.scan([&](const std::string& p) { files.insert(p); }, on_err);
    CHECK(fd_err == 0);  // not a shortage of descriptors: the scan is complete
    CHECK(files == std::set<std::string>{dir / "open/a.log"});
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] == std::make_pair(dir / "closed", EACCES));
  }
  {
    // Out of descriptors: not an unreadable directory, the scan is incomplete.
    FaultyLister fault(dir / "closed", EMFILE);
    errors.clear();
    int fd_err = 0;
    run.d.scan([](const std::string&) {}, on_err);
    fd_err = run.d.scan([](const std::string&) {}, on_err);
    CHECK(fd_err == EMFILE);
    CHECK(errors.empty());
  }
  errors.clear();
  std::set<std::string> files;
  CHECK(run.d.scan([&](const std::string& p) { files.insert(p); }, on_err) == 0);
  CHECK(errors.empty());
  CHECK(files.size() == 2);
}

TEST_CASE("discovery: a real directory the agent may not list is reported as EACCES",
          "[discovery]") {
  TempDir dir;
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "open").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "private").c_str(), 0700) == 0);
  append(dir / "open/a.log", "1\n");
  append(dir / "private/b.log", "1\n");
  auto glob = PathGlob::compile(dir.path() + "/*/*.log");
  REQUIRE(glob.ok());
  // What the scan reports, as the exit status of a child: 0 when it is exactly open/a.log
  // followed and private/ unlistable with EACCES.
  auto scan = [&]() -> int {
    std::vector<std::string> files;
    std::vector<std::pair<std::string, int>> errors;
    int fd_err = glob->expand([](const std::string&) {},
                              [&](const std::string& p) { files.push_back(p); },
                              [&](const std::string& d, int e) { errors.emplace_back(d, e); });
    if (fd_err != 0) return 1;
    if (files != std::vector<std::string>{dir / "open/a.log"}) return 2;
    if (errors != std::vector<std::pair<std::string, int>>{{dir / "private", EACCES}}) return 3;
    return 0;
  };
  int code = -1;
  if (::geteuid() == 0) {
    // Root lists everything: a child takes another user's filesystem identity (which drops
    // CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH), as an agent running unprivileged would have.
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::setfsgid(65534);
      ::setfsuid(65534);
      ::_exit(::setfsuid(static_cast<uid_t>(-1)) == 65534 ? scan() : 4);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    code = WEXITSTATUS(status);
  } else {
    REQUIRE(::chmod((dir / "private").c_str(), 0) == 0);  // not even its owner may list it
    code = scan();
  }
  CHECK(code == 0);
}

}  // namespace logsplice::inputs
