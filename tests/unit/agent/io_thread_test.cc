// IoThread on a real loop: jobs run on its own thread, completions come back on the loop thread
// in submission order, stop() hands queued jobs back unrun, and a job's fault (FakeSysCalls)
// comes back in the job.

#include "agent/io_thread.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fake_sys_calls.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::agent;
using logsplice::testing::FakeSysCalls;
using logsplice::testing::numberedLines;
using logsplice::testing::readAvailable;

namespace {

std::shared_ptr<const sys::UniqueFd> tempFile(const std::string& content) {
  return std::make_shared<const sys::UniqueFd>(logsplice::testing::unlinkedTempFile(content));
}

sys::Pipe makePipe() {
  auto p = sys::Pipe::create(256 * 1024);
  REQUIRE(p.ok());
  return std::move(p.value());
}

// A job moving all of `fd` (`size` bytes) into `pipe`.
std::unique_ptr<FillJob> job(uint64_t file_id, std::shared_ptr<const sys::UniqueFd> fd,
                             uint64_t size, const sys::Pipe& pipe) {
  auto j = std::make_unique<FillJob>();
  j->file_id = file_id;
  j->fd = std::move(fd);
  j->limit_end = size;
  j->max_len = size;
  FillTarget t;
  t.sink = 0;
  t.pipe_wr = pipe.writeFd();
  j->targets.push_back(t);
  return j;
}

// Completions as the loop sees them.
struct Done {
  std::vector<std::unique_ptr<FillJob>> jobs;
  std::vector<std::thread::id> threads;
};

}  // namespace

TEST_CASE("IoThread: jobs run off the loop thread and come back on it, in order") {
  testing::Loop loop;
  FakeSysCalls sys;
  std::mutex mu;
  std::vector<std::thread::id> splice_threads;
  sys.on_splice = [&](int, loff_t*, int, loff_t*, size_t, unsigned) -> std::optional<sys::SysResult> {
    std::lock_guard<std::mutex> lock(mu);
    splice_threads.push_back(std::this_thread::get_id());
    return std::nullopt;
  };
  Done done;
  IoThread io(
      loop.get(),
      [&](std::unique_ptr<FillJob> j) {
        done.threads.push_back(std::this_thread::get_id());
        done.jobs.push_back(std::move(j));
      },
      sys);
  REQUIRE(io.start(256 * 1024).isOk());

  std::string content = numberedLines(0, 20);
  std::vector<sys::Pipe> pipes;
  for (int i = 0; i < 8; ++i) pipes.push_back(makePipe());
  auto fd = tempFile(content);
  for (uint64_t i = 0; i < 8; ++i) io.submit(job(i + 1, fd, content.size(), pipes[i]));
  CHECK(io.inFlight() == 8);
  REQUIRE(loop.waitFor([&] { return done.jobs.size() == 8; }));
  CHECK(io.inFlight() == 0);

  for (uint64_t i = 0; i < 8; ++i) {
    CHECK(done.jobs[i]->file_id == i + 1);
    CHECK(done.threads[i] == std::this_thread::get_id());
    CHECK(done.jobs[i]->targets[0].moved == content.size());
    CHECK(readAvailable(pipes[i].readFd()) == content);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    REQUIRE_FALSE(splice_threads.empty());
    for (auto id : splice_threads) CHECK(id != std::this_thread::get_id());
  }
  io.stop();
  io.close();
  loop.runUntilIdle();
}

TEST_CASE("IoThread: stop() finishes the job at hand and hands the queued ones back unrun") {
  testing::Loop loop;
  FakeSysCalls sys;
  std::atomic<bool> entered{false}, release{false};
  std::atomic<int> jobs_spliced{0};
  sys.on_splice = [&](int, loff_t*, int, loff_t*, size_t, unsigned) -> std::optional<sys::SysResult> {
    if (!entered.exchange(true)) {
      // The first job holds the thread until the test has asked it to stop.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!release && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    }
    ++jobs_spliced;
    return std::nullopt;
  };
  Done done;
  IoThread io(
      loop.get(), [&](std::unique_ptr<FillJob> j) { done.jobs.push_back(std::move(j)); }, sys);
  REQUIRE(io.start(256 * 1024).isOk());

  std::string content = numberedLines(0, 20);
  auto fd = tempFile(content);
  std::vector<sys::Pipe> pipes;
  for (int i = 0; i < 3; ++i) pipes.push_back(makePipe());
  for (uint64_t i = 0; i < 3; ++i) io.submit(job(i + 1, fd, content.size(), pipes[i]));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!entered && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  REQUIRE(entered);
  io.requestStop();  // before the job at hand ends: the thread takes no other
  release = true;
  io.stop();
  CHECK(io.inFlight() == 3);  // nothing delivered yet: completions come through the loop
  io.close();                 // hands back what is left
  loop.runUntilIdle();

  REQUIRE(done.jobs.size() == 3);
  CHECK(io.inFlight() == 0);
  CHECK(done.jobs[0]->file_id == 1);
  CHECK(done.jobs[0]->targets[0].moved == content.size());
  CHECK(readAvailable(pipes[0].readFd()) == content);
  for (size_t i = 1; i < 3; ++i) {
    CHECK(done.jobs[i]->file_id == i + 1);
    CHECK(done.jobs[i]->targets[0].moved == 0);
    CHECK(readAvailable(pipes[i].readFd()).empty());
  }
  CHECK(jobs_spliced == 1);
}

TEST_CASE("IoThread: a job's fault comes back in the job") {
  testing::Loop loop;
  FakeSysCalls sys;
  Done done;
  IoThread io(
      loop.get(), [&](std::unique_ptr<FillJob> j) { done.jobs.push_back(std::move(j)); }, sys);
  REQUIRE(io.start(256 * 1024).isOk());
  std::string content = numberedLines(0, 20);
  auto fd = tempFile(content);
  sys::Pipe pipe = makePipe();

  SECTION("EIO from the disk: an error, nothing moved") {
    sys.on_splice = [](int, loff_t*, int, loff_t*, size_t, unsigned) {
      return std::optional<sys::SysResult>(FakeSysCalls::fail(EIO));
    };
    io.submit(job(7, fd, content.size(), pipe));
    REQUIRE(loop.waitFor([&] { return done.jobs.size() == 1; }));
    CHECK(done.jobs[0]->file_id == 7);
    CHECK(done.jobs[0]->error);
    CHECK_FALSE(done.jobs[0]->unsupported);
    CHECK(done.jobs[0]->targets[0].moved == 0);
  }
  SECTION("EINVAL (a filesystem that refuses splice): unsupported, not an error") {
    sys.on_splice = [](int, loff_t*, int, loff_t*, size_t, unsigned) {
      return std::optional<sys::SysResult>(FakeSysCalls::fail(EINVAL));
    };
    io.submit(job(8, fd, content.size(), pipe));
    REQUIRE(loop.waitFor([&] { return done.jobs.size() == 1; }));
    CHECK(done.jobs[0]->unsupported);
    CHECK_FALSE(done.jobs[0]->error);
    CHECK(done.jobs[0]->targets[0].moved == 0);
  }
  CHECK(readAvailable(pipe.readFd()).empty());
  io.stop();
  io.close();
  loop.runUntilIdle();
}
