#pragma once

// Shared helpers of the inputs tests: a temp directory, a libuv loop that must close cleanly,
// waitFor() that runs the loop until a condition holds (never a bare sleep), and a recording
// FileObserver that ships bytes like a fast sink would: [cursor, completeEnd) by pread, with a
// '\n' inserted at each break.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "inputs/file_observer.h"
#include "inputs/follower.h"
#include "inputs/input_tailer.h"

namespace logsplice::inputs::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ls_inputs_XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    // Best effort: a leftover temp dir must not fail a test.
    [[maybe_unused]] int rc =
        std::system(("chmod -R u+rwx " + path_ + " 2>/dev/null; rm -rf " + path_).c_str());
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// Appends through a fresh O_APPEND fd each time (like many small writers).
inline void append(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  ::close(fd);
}

// A log writer that keeps its fd, as an application does between rotations.
class Writer {
 public:
  explicit Writer(std::string path) : path_(std::move(path)) { reopen(); }
  ~Writer() {
    if (fd_ >= 0) ::close(fd_);
  }
  void reopen() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    REQUIRE(fd_ >= 0);
  }
  void write(const std::string& data) {
    REQUIRE(::write(fd_, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// Everything the observer saw about one follower, kept after the follower closed.
struct Record {
  uint64_t id = 0;
  std::string path;
  FileIdentity identity;
  uint64_t default_start = 0;
  uint64_t cursor = 0;
  std::string shipped;  // bytes shipped, with a '\n' at every break
  std::string raw;      // the same without the inserted newlines
  int grew = 0;
  int truncated = 0;
  bool closed = false;
  Follower::State state_at_close = Follower::State::kLive;
  const Follower* follower = nullptr;  // null once closed
};

class RecordingObserver : public FileObserver {
 public:
  bool auto_drain = true;  // ship at once on fileOpened/fileGrew (a fast sink)
  std::map<uint64_t, Record> records;
  std::vector<uint64_t> order;  // ids in opening order

  void fileOpened(Follower& f, uint64_t default_start) override {
    Record& r = records[f.id()];
    r.id = f.id();
    r.path = f.path();
    r.identity = f.identity();
    r.default_start = default_start;
    r.cursor = default_start;
    r.follower = &f;
    order.push_back(f.id());
    if (auto_drain) drain(f);
  }
  void fileGrew(Follower& f) override {
    ++records[f.id()].grew;
    if (auto_drain) drain(f);
  }
  void fileTruncated(Follower& f) override {
    Record& r = records[f.id()];
    ++r.truncated;
    r.cursor = 0;
  }
  bool fileDrained(const Follower& f) const override {
    auto it = records.find(f.id());
    return it != records.end() && it->second.cursor >= f.completeEnd();
  }
  void fileClosing(Follower& f) override {
    Record& r = records[f.id()];
    r.closed = true;
    r.state_at_close = f.state();
    r.follower = nullptr;
  }

  // Ships [cursor, completeEnd) of f.
  void drain(Follower& f) {
    Record& r = records[f.id()];
    uint64_t end = f.completeEnd();
    while (r.cursor < end) {
      auto next_break = f.breaks().upper_bound(r.cursor);
      uint64_t stop = end;
      if (next_break != f.breaks().end() && *next_break <= end) stop = *next_break;
      std::string buf(stop - r.cursor, '\0');
      ssize_t n = ::pread(f.fd(), buf.data(), buf.size(), static_cast<off_t>(r.cursor));
      REQUIRE(n == static_cast<ssize_t>(buf.size()));
      r.shipped += buf;
      r.raw += buf;
      r.cursor = stop;
      if (f.breaks().count(stop) != 0) r.shipped += '\n';
    }
    f.pruneBreaksBelow(r.cursor);
  }
  void drainAll() {
    for (auto& [id, r] : records) {
      if (r.follower != nullptr) drain(*const_cast<Follower*>(r.follower));
    }
  }

  // Helpers for assertions.
  std::vector<const Record*> forPath(const std::string& path) const {
    std::vector<const Record*> out;
    for (uint64_t id : order) {
      const Record& r = records.at(id);
      if (r.path == path) out.push_back(&r);
    }
    return out;
  }
  std::string allShipped() const {
    std::string out;
    for (uint64_t id : order) out += records.at(id).shipped;
    return out;
  }
  size_t openCount() const {
    size_t n = 0;
    for (const auto& [id, r] : records) n += r.closed ? 0 : 1;
    return n;
  }
};

// Owns a loop; the destructor checks that it closes (no leaked handle).
class Loop {
 public:
  Loop() { REQUIRE(uv_loop_init(&loop_) == 0); }
  ~Loop() {
    for (int i = 0; i < 3; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&loop_) == 0);
  }
  uv_loop_t* get() { return &loop_; }

  // Runs the loop until pred() holds or timeout_ms passes. A repeating timer keeps
  // uv_run(ONCE) from blocking longer than a few ms.
  bool waitFor(const std::function<bool()>& pred, uint64_t timeout_ms = 3000) {
    uv_timer_t timer;
    uv_timer_init(&loop_, &timer);
    uv_timer_start(
        &timer, [](uv_timer_t*) {}, 2, 2);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    bool ok = pred();
    while (!ok && std::chrono::steady_clock::now() < deadline) {
      uv_run(&loop_, UV_RUN_ONCE);
      ok = pred();
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    return ok;
  }
  // Runs the loop for about ms milliseconds (to show that something does NOT happen).
  void runFor(uint64_t ms) {
    waitFor([] { return false; }, ms);
  }

 private:
  uv_loop_t loop_;
};

inline config::InputConfig testConfig(const std::string& name, std::vector<std::string> paths) {
  config::InputConfig cfg;
  cfg.name = name;
  cfg.paths = std::move(paths);
  cfg.start_at = config::StartAt::kBeginning;
  cfg.poll_interval = std::chrono::milliseconds(20);
  cfg.rescan_interval = std::chrono::milliseconds(60000);
  cfg.partial_line_timeout = std::chrono::milliseconds(60000);
  cfg.rotate_wait = std::chrono::milliseconds(100);
  return cfg;
}

// Starts a tailer and closes it at scope end, running the loop until its handles are closed.
class TailerRun {
 public:
  TailerRun(Loop& loop, const config::InputConfig& cfg, RecordingObserver& obs,
            bool at_startup = true, const std::vector<KnownFile>& known = {},
            FdBudget* budget = nullptr)
      : loop_(loop),
        tailer_(budget != nullptr ? std::make_unique<InputTailer>(loop.get(), cfg, obs, *budget)
                                  : std::make_unique<InputTailer>(loop.get(), cfg, obs)) {
    sys::Error err = tailer_->start(at_startup, known);
    INFO(err.toString());
    REQUIRE(err.isOk());
  }
  ~TailerRun() { close(); }
  void close() {
    if (!tailer_) return;
    bool closed = false;
    tailer_->close([&closed] { closed = true; });
    loop_.waitFor([&] { return closed; }, 2000);
    CHECK(closed);
    tailer_.reset();
  }
  InputTailer& operator*() { return *tailer_; }
  InputTailer* operator->() { return tailer_.get(); }

 private:
  Loop& loop_;
  std::unique_ptr<InputTailer> tailer_;
};

}  // namespace logsplice::inputs::testing
