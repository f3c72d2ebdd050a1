// executeFill on real temp files and real pipes: what the I/O thread does for one fill.

#include "agent/fill_job.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "sys/pipe.h"
#include "sys/sys_calls.h"
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

sys::Pipe makePipe(size_t bytes) {
  auto p = sys::Pipe::create(bytes);
  REQUIRE(p.ok());
  return std::move(p.value());
}

// The I/O thread's resources: its source pipe and /dev/null.
struct IoResources {
  sys::Pipe src = makePipe(256 * 1024);
  sys::UniqueFd dev_null{::open("/dev/null", O_WRONLY | O_CLOEXEC)};
};

FillJob makeJob(std::shared_ptr<const sys::UniqueFd> fd, uint64_t offset, uint64_t limit_end,
                uint64_t max_len) {
  FillJob job;
  job.file_id = 1;
  job.fd = std::move(fd);
  job.offset = offset;
  job.limit_end = limit_end;
  job.max_len = max_len;
  return job;
}

FillTarget target(uint32_t sink, const sys::Pipe& p) {
  FillTarget t;
  t.sink = sink;
  t.pipe_wr = p.writeFd();
  return t;
}

}  // namespace

TEST_CASE("executeFill: one target gets exactly [offset, end) by splice, nothing copied") {
  IoResources io;
  auto file = tempFile("aaa\nbbb\nccc\nddd\n");
  sys::Pipe out = makePipe(64 * 1024);
  FillJob job = makeJob(file, 4, 12, 1 << 20);
  job.targets.push_back(target(0, out));
  uint64_t copies = sys::CopyCounter::total();

  executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());

  CHECK(job.error.isOk());
  CHECK_FALSE(job.unsupported);
  CHECK(job.planned_end == 12);
  CHECK(job.planned_at_boundary);
  CHECK(job.targets[0].moved == 8);
  CHECK_FALSE(job.targets[0].newline_after);
  CHECK(readAvailable(out.readFd()) == "bbb\nccc\n");
  CHECK(sys::CopyCounter::total() == copies);  // the normal path copies nothing
  CHECK(io.src.queued() == 0);                 // one target never touches the source pipe
}

TEST_CASE("executeFill: a chunk limit inside a line is pulled back to the last line end") {
  IoResources io;
  auto file = tempFile("line1\nline2\nline3\n");  // 18 bytes
  sys::Pipe out = makePipe(64 * 1024);

  SECTION("cut inside line2") {
    FillJob job = makeJob(file, 0, 18, 10);
    job.targets.push_back(target(0, out));
    executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());
    CHECK(job.planned_end == 6);
    CHECK(job.planned_at_boundary);
    CHECK(job.targets[0].moved == 6);
    CHECK(readAvailable(out.readFd()) == "line1\n");
  }
  SECTION("from a later offset") {
    FillJob job = makeJob(file, 6, 18, 10);
    job.targets.push_back(target(0, out));
    executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());
    CHECK(job.planned_end == 12);
    CHECK(job.planned_at_boundary);
    CHECK(readAvailable(out.readFd()) == "line2\n");
  }
  SECTION("a limit that falls just after a newline keeps the whole chunk") {
    FillJob job = makeJob(file, 0, 18, 12);
    job.targets.push_back(target(0, out));
    executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());
    CHECK(job.planned_end == 12);
    CHECK(job.planned_at_boundary);
    CHECK(readAvailable(out.readFd()) == "line1\nline2\n");
  }
}

TEST_CASE("executeFill: a line longer than the chunk ships a piece, not at a boundary") {
  IoResources io;
  std::string content = std::string(100, 'x') + "\ny\n";  // 103 bytes
  auto file = tempFile(content);
  sys::Pipe out = makePipe(64 * 1024);
  uint64_t copies = sys::CopyCounter::total();

  uint64_t offset = 0;
  std::string got;
  std::vector<std::pair<uint64_t, bool>> plan;
  while (offset < content.size()) {
    FillJob job = makeJob(file, offset, content.size(), 40);
    job.targets.push_back(target(0, out));
    executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());
    REQUIRE(job.targets[0].moved == job.planned_end - offset);
    plan.emplace_back(job.planned_end, job.planned_at_boundary);
    offset = job.planned_end;
    got += readAvailable(out.readFd());
  }
  // 40 and 80 are pieces of the long line; the rest reaches the end of the data.
  REQUIRE(plan.size() == 3);
  CHECK(plan[0] == std::make_pair<uint64_t, bool>(40, false));
  CHECK(plan[1] == std::make_pair<uint64_t, bool>(80, false));
  CHECK(plan[2] == std::make_pair<uint64_t, bool>(103, true));
  CHECK(got == content);
  CHECK(sys::CopyCounter::total() == copies);  // no newline is made up without a break
}

TEST_CASE("executeFill: a break gets a '\\n' after its bytes, counted as one copied byte") {
  IoResources io;
  auto file = tempFile("abcdefgh");  // a final line without newline: the break is at 8
  sys::Pipe out = makePipe(64 * 1024);

  SECTION("the chunk reaches the break") {
    FillJob job = makeJob(file, 0, 8, 1 << 20);
    job.limit_is_break = true;
    job.targets.push_back(target(0, out));
    uint64_t copies = sys::CopyCounter::total();
    executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());
    CHECK(job.targets[0].moved == 8);
    CHECK(job.targets[0].newline_after);
    CHECK(job.planned_at_boundary);
    CHECK(readAvailable(out.readFd()) == "abcdefgh\n");
    CHECK(sys::CopyCounter::total() == copies + 1);
  }
  SECTION("the chunk stops before the break: no newline yet") {
    FillJob job = makeJob(file, 0, 8, 4);
    job.limit_is_break = true;
    job.targets.push_back(target(0, out));
    uint64_t copies = sys::CopyCounter::total();
    executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());
    CHECK(job.planned_end == 4);
    CHECK_FALSE(job.planned_at_boundary);
    CHECK(job.targets[0].moved == 4);
    CHECK_FALSE(job.targets[0].newline_after);
    CHECK(readAvailable(out.readFd()) == "abcd");
    CHECK(sys::CopyCounter::total() == copies);
  }
}

TEST_CASE("executeFill: no room for the break's '\\n' leaves newline_after false, uncounted") {
  IoResources io;
  // One page of file data fills a one-slot pipe: page-cache buffers never merge, so there is no
  // slot left for the '\n' (docs/design.md K3).
  std::string content(4096, 'z');
  auto file = tempFile(content);
  sys::Pipe out = makePipe(4096);
  REQUIRE(out.capacity() == 4096);
  FillJob job = makeJob(file, 0, 4096, 1 << 20);
  job.limit_is_break = true;
  job.targets.push_back(target(0, out));
  uint64_t copies = sys::CopyCounter::total();
  executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());
  CHECK(job.targets[0].moved == 4096);
  CHECK_FALSE(job.targets[0].newline_after);  // the router keeps it owed
  CHECK(sys::CopyCounter::total() == copies);
  CHECK(readAvailable(out.readFd()) == content);
}

TEST_CASE("executeFill: an owed newline goes first") {
  IoResources io;
  auto file = tempFile("abc\n");
  sys::Pipe out = makePipe(64 * 1024);

  SECTION("written before the bytes and counted") {
    FillJob job = makeJob(file, 0, 4, 1 << 20);
    FillTarget t = target(0, out);
    t.newline_first = true;
    job.targets.push_back(t);
    uint64_t copies = sys::CopyCounter::total();
    executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());
    CHECK(job.targets[0].newline_first_written);
    CHECK(job.targets[0].moved == 4);
    CHECK(readAvailable(out.readFd()) == "\nabc\n");
    CHECK(sys::CopyCounter::total() == copies + 1);
  }
  SECTION("with nothing after it (the cursor stands at the break)") {
    FillJob job = makeJob(file, 4, 4, 1 << 20);
    FillTarget t = target(0, out);
    t.newline_first = true;
    job.targets.push_back(t);
    executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());
    CHECK(job.targets[0].newline_first_written);
    CHECK(job.targets[0].moved == 0);
    CHECK(readAvailable(out.readFd()) == "\n");
  }
  SECTION("a full pipe: neither the newline nor bytes for that target, others unaffected") {
    sys::Pipe full = makePipe(4096);
    REQUIRE(full.capacity() == 4096);
    std::string fill(4096, 'q');
    REQUIRE(::write(full.writeFd(), fill.data(), fill.size()) == 4096);
    FillJob job = makeJob(file, 0, 4, 1 << 20);
    FillTarget t = target(1, full);
    t.newline_first = true;
    job.targets.push_back(t);
    job.targets.push_back(target(0, out));
    uint64_t copies = sys::CopyCounter::total();
    executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());
    CHECK_FALSE(job.targets[0].newline_first_written);
    CHECK(job.targets[0].moved == 0);
    CHECK(job.targets[1].moved == 4);
    CHECK(readAvailable(out.readFd()) == "abc\n");
    CHECK(readAvailable(full.readFd()) == fill);
    CHECK(sys::CopyCounter::total() == copies);
    CHECK(io.src.queued() == 0);
  }
}

TEST_CASE("executeFill: lockstep with a nearly full target demotes only that target") {
  IoResources io;
  std::string content = numberedLines(0, 300);  // 30000 bytes: 8 pages
  auto file = tempFile(content);
  const uint64_t first_end = 20000;  // a line end (200 lines of 100 bytes)

  // The short target sits at each position in turn: teed (first, middle) or spliced (last).
  for (size_t short_at = 0; short_at < 3; ++short_at) {
    CAPTURE(short_at);
    sys::Pipe pipes[3] = {makePipe(256 * 1024), makePipe(256 * 1024), makePipe(256 * 1024)};
    // Two slots, one of them taken: room for one page-cache buffer only.
    pipes[short_at] = makePipe(8192);
    REQUIRE(pipes[short_at].capacity() == 8192);
    REQUIRE(::write(pipes[short_at].writeFd(), "#", 1) == 1);

    FillJob job = makeJob(file, 0, first_end, 1 << 20);
    for (int i = 0; i < 3; ++i) job.targets.push_back(target(static_cast<uint32_t>(i), pipes[i]));
    uint64_t copies = sys::CopyCounter::total();
    executeFill(sys::SysCalls::real(), job, io.src, io.dev_null.get());

    CHECK(job.error.isOk());
    CHECK(job.planned_end == first_end);
    CHECK(job.planned_at_boundary);
    for (size_t i = 0; i < 3; ++i) {
      CAPTURE(i);
      std::string got = readAvailable(pipes[i].readFd());
      if (i == short_at) {
        CHECK(job.targets[i].moved < first_end);
        REQUIRE(got.size() == 1 + job.targets[i].moved);
        CHECK(got == "#" + content.substr(0, job.targets[i].moved));
      } else {
        CHECK(job.targets[i].moved == first_end);
        CHECK(got == content.substr(0, first_end));
      }
    }
    CHECK(io.src.queued() == 0);  // what nobody took was dropped: the next job starts clean
    CHECK(sys::CopyCounter::total() == copies);

    // The next lockstep job on the same source pipe carries exactly its own bytes.
    sys::Pipe a = makePipe(256 * 1024), b = makePipe(256 * 1024);
    FillJob next = makeJob(file, first_end, content.size(), 1 << 20);
    next.targets.push_back(target(0, a));
    next.targets.push_back(target(1, b));
    executeFill(sys::SysCalls::real(), next, io.src, io.dev_null.get());
    CHECK(next.targets[0].moved == content.size() - first_end);
    CHECK(next.targets[1].moved == content.size() - first_end);
    CHECK(readAvailable(a.readFd()) == content.substr(first_end));
    CHECK(readAvailable(b.readFd()) == content.substr(first_end));
    CHECK(io.src.queued() == 0);
  }
}

TEST_CASE("executeFill: lockstep splices once and tees, lockstep off splices per target") {
  IoResources io;
  std::string content = numberedLines(0, 100);
  auto file = tempFile(content);
  for (bool lockstep : {true, false}) {
    CAPTURE(lockstep);
    sys::Pipe a = makePipe(256 * 1024), b = makePipe(256 * 1024), c = makePipe(256 * 1024);
    FakeSysCalls fake;
    FillJob job = makeJob(file, 0, content.size(), 1 << 20);
    job.lockstep = lockstep;
    job.targets = {target(0, a), target(1, b), target(2, c)};
    uint64_t copies = sys::CopyCounter::total();
    executeFill(fake, job, io.src, io.dev_null.get());
    for (auto* p : {&a, &b, &c}) CHECK(readAvailable(p->readFd()) == content);
    for (auto& t : job.targets) CHECK(t.moved == content.size());
    CHECK(fake.tee_calls == (lockstep ? 2 : 0));
    CHECK(sys::CopyCounter::total() == copies);
    CHECK(io.src.queued() == 0);
  }
}

TEST_CASE("executeFill: copy mode moves the same bytes and counts every one") {
  IoResources io;
  std::string content = numberedLines(0, 200) + "tail-without-newline";
  auto file = tempFile(content);
  sys::Pipe a = makePipe(256 * 1024), b = makePipe(256 * 1024);
  FillJob job = makeJob(file, 0, content.size(), 1 << 20);
  job.copy_mode = true;
  job.limit_is_break = true;  // the tail is a forced break: one '\n' per target
  job.targets = {target(0, a), target(1, b)};
  FakeSysCalls fake;
  uint64_t copies = sys::CopyCounter::total();
  executeFill(fake, job, io.src, io.dev_null.get());
  CHECK(job.error.isOk());
  CHECK(fake.splice_calls == 0);
  CHECK(fake.tee_calls == 0);
  for (auto& t : job.targets) {
    CHECK(t.moved == content.size());
    CHECK(t.newline_after);
  }
  CHECK(readAvailable(a.readFd()) == content + "\n");
  CHECK(readAvailable(b.readFd()) == content + "\n");
  CHECK(sys::CopyCounter::total() == copies + 2 * (content.size() + 1));
}

TEST_CASE("executeFill: a file that refuses splice marks the job unsupported") {
  IoResources io;
  std::string content = numberedLines(0, 10);
  auto file = tempFile(content);
  FakeSysCalls fake;
  int errs[] = {EINVAL, EOPNOTSUPP, ENOSYS, EXDEV};
  for (int err : errs) {
    for (size_t n_targets : {1u, 2u}) {
      CAPTURE(err, n_targets);
      fake.on_splice = [&](int, loff_t* off_in, int, loff_t*, size_t,
                           unsigned) -> std::optional<sys::SysResult> {
        if (off_in) return FakeSysCalls::fail(err);  // file -> pipe only
        return std::nullopt;
      };
      sys::Pipe a = makePipe(64 * 1024), b = makePipe(64 * 1024);
      FillJob job = makeJob(file, 0, content.size(), 1 << 20);
      job.targets.push_back(target(0, a));
      if (n_targets == 2) job.targets.push_back(target(1, b));
      executeFill(fake, job, io.src, io.dev_null.get());
      CHECK(job.unsupported);
      CHECK(job.error.isOk());
      for (auto& t : job.targets) CHECK(t.moved == 0);
      CHECK(readAvailable(a.readFd()).empty());
      CHECK(io.src.queued() == 0);
    }
  }
}

TEST_CASE("executeFill: an I/O error is reported, not taken for unsupported") {
  IoResources io;
  auto file = tempFile("abc\n");
  FakeSysCalls fake;
  fake.on_splice = [](int, loff_t* off_in, int, loff_t*, size_t,
                      unsigned) -> std::optional<sys::SysResult> {
    if (off_in) return FakeSysCalls::fail(EIO);
    return std::nullopt;
  };
  sys::Pipe a = makePipe(64 * 1024);
  FillJob job = makeJob(file, 0, 4, 1 << 20);
  job.targets.push_back(target(0, a));
  executeFill(fake, job, io.src, io.dev_null.get());
  CHECK_FALSE(job.unsupported);
  CHECK(job.error.code() == sys::ErrorCode::kIo);
  CHECK(job.error.sysErrno() == EIO);
  CHECK(job.targets[0].moved == 0);
}

TEST_CASE("executeFill: EINTR and short splices are resumed until the chunk is in the pipe") {
  IoResources io;
  std::string content = numberedLines(0, 50);
  auto file = tempFile(content);
  FakeSysCalls fake;
  int calls = 0;
  fake.on_splice = [&](int in, loff_t* off_in, int out, loff_t* off_out, size_t len,
                       unsigned flags) -> std::optional<sys::SysResult> {
    if (!off_in) return std::nullopt;
    if (++calls % 2 == 1) return FakeSysCalls::fail(EINTR);
    // Short transfers of at most 333 bytes.
    return sys::SysCalls::real().splice(in, off_in, out, off_out, std::min<size_t>(len, 333),
                                        flags);
  };
  sys::Pipe a = makePipe(256 * 1024);
  FillJob job = makeJob(file, 0, content.size(), 1 << 20);
  job.targets.push_back(target(0, a));
  executeFill(fake, job, io.src, io.dev_null.get());
  CHECK(job.error.isOk());
  CHECK(job.targets[0].moved == content.size());
  CHECK(readAvailable(a.readFd()) == content);
}
