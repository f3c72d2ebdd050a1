#pragma once

// Shared helpers of the agent and outputs unit tests: a temp directory, file helpers, and a
// libuv loop that must close cleanly, with waitFor() that runs the loop until a condition holds
// or a timeout passes (never a bare sleep as synchronisation).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>

#include "sys/unique_fd.h"

namespace logsplice::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ls_unit_XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    // Best effort: a leftover temp dir must not fail a test.
    [[maybe_unused]] int rc =
        std::system(("chmod -R u+rwx " + path_ + " 2>/dev/null; rm -rf " + path_).c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline void writeFile(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  ::close(fd);
}

inline void appendFile(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  ::close(fd);
}

inline std::string readFile(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

inline bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Reads everything a non-blocking fd has now (a pipe or socket), without waiting.
inline std::string readAvailable(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// "line-00000 ...\n" lines of exactly `width` bytes each (width >= 12), numbered from `first`.
inline std::string numberedLines(int first, int count, size_t width = 100) {
  std::string out;
  for (int i = first; i < first + count; ++i) {
    char head[32];
    std::snprintf(head, sizeof head, "line-%06d ", i);
    std::string line = head;
    line.resize(width - 1, static_cast<char>('a' + i % 26));
    out += line + '\n';
  }
  return out;
}

// Owns a loop; the destructor checks that it closes (no leaked handle or request).
class Loop {
 public:
  Loop() { REQUIRE(uv_loop_init(&loop_) == 0); }
  ~Loop() {
    for (int i = 0; i < 3; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&loop_) == 0);
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  uv_loop_t* get() { return &loop_; }

  // Runs the loop until pred() holds or timeout_ms passes. A repeating timer keeps
  // uv_run(ONCE) from blocking longer than a few ms.
  bool waitFor(const std::function<bool()>& pred, uint64_t timeout_ms = 5000) {
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
  // Runs until nothing is left (close callbacks, finished requests).
  void runUntilIdle() { uv_run(&loop_, UV_RUN_DEFAULT); }

 private:
  uv_loop_t loop_;
};

// An unlinked temp file holding `content` (gone when its fd closes).
inline sys::UniqueFd unlinkedTempFile(const std::string& content) {
  char path[] = "/tmp/ls_unit_XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::unlink(path);
  REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  return sys::UniqueFd(fd);
}

}  // namespace logsplice::testing
