#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "sys/pipe.h"
#include "sys/splice.h"
#include "sys/unique_fd.h"

using namespace logsplice::sys;

namespace {

UniqueFd tempFileWith(const std::string& content) {
  char path[] = "/tmp/logsplice-splice-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::unlink(path);
  REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  return UniqueFd(fd);
}

std::string drain(const Pipe& p) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(p.readFd(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Counts calls and can fail the next one with a chosen errno.
class FailingSys : public SysCalls {
 public:
  int fail_errno = 0;
  SysResult splice(int a, loff_t* b, int c, loff_t* d, size_t e, unsigned f) override {
    if (fail_errno) return {-1, fail_errno};
    return SysCalls::splice(a, b, c, d, e, f);
  }
};

}  // namespace

TEST_CASE("UniqueFd closes, releases and moves") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  {
    UniqueFd a(fds[0]);
    UniqueFd b(std::move(a));
    CHECK_FALSE(a.valid());
    CHECK(b.get() == fds[0]);
  }
  CHECK(::fcntl(fds[0], F_GETFD) == -1);  // closed by b's destructor
  UniqueFd w(fds[1]);
  int raw = w.release();
  CHECK_FALSE(w.valid());
  CHECK(::close(raw) == 0);
  CHECK(w.close().isOk());
}

TEST_CASE("Pipe reports its real capacity and queued bytes") {
  auto p = Pipe::create(100000);
  REQUIRE(p.ok());
  CHECK(p->capacity() >= 100000);  // rounded up to a power of two of pages
  CHECK(p->queued() == 0);
  REQUIRE(::write(p->writeFd(), "abc", 3) == 3);
  CHECK(p->queued() == 3);
}

TEST_CASE("spliceFileToPipe moves bytes at an explicit offset and reports EOF as 0") {
  auto file = tempFileWith("hello\nworld\n");
  auto p = Pipe::create(0);
  REQUIRE(p.ok());
  uint64_t off = 6;
  auto r = spliceFileToPipe(SysCalls::real(), file.get(), &off, p->writeFd(), 100);
  REQUIRE(r.ok());
  CHECK(r.value() == 6);  // a range straddling EOF returns what exists
  CHECK(off == 12);
  CHECK(drain(*p) == "world\n");
  auto eof = spliceFileToPipe(SysCalls::real(), file.get(), &off, p->writeFd(), 100);
  REQUIRE(eof.ok());
  CHECK(eof.value() == 0);
}

TEST_CASE("splice into a full pipe is WouldBlock, not an error or a hang") {
  std::string big(1 << 20, 'x');
  auto file = tempFileWith(big);
  auto p = Pipe::create(0);
  REQUIRE(p.ok());
  uint64_t off = 0;
  size_t total = 0;
  for (;;) {
    auto r = spliceFileToPipe(SysCalls::real(), file.get(), &off, p->writeFd(), big.size());
    if (!r.ok()) {
      CHECK(r.error().code() == ErrorCode::kWouldBlock);
      break;
    }
    REQUIRE(r.value() > 0);
    total += r.value();
  }
  CHECK(total == p->capacity());
  CHECK(off == total);
}

TEST_CASE("tee restarts at the head of its source after a partial copy") {
  auto src = Pipe::create(65536);
  auto dst = Pipe::create(4096);
  REQUIRE(src.ok());
  REQUIRE(dst.ok());
  std::string data;
  for (int i = 0; i < 8192; ++i) data.push_back(static_cast<char>('a' + i / 4096));
  REQUIRE(::write(src->writeFd(), data.data(), data.size()) == 8192);
  auto first = teePipe(SysCalls::real(), src->readFd(), dst->writeFd(), 8192);
  REQUIRE(first.ok());
  CHECK(first.value() == 4096);
  CHECK(drain(*dst) == std::string(4096, 'a'));
  CHECK(src->queued() == 8192);  // tee does not consume
  auto second = teePipe(SysCalls::real(), src->readFd(), dst->writeFd(), 8192);
  REQUIRE(second.ok());
  CHECK(drain(*dst) == std::string(4096, 'a'));  // the same head again, not the next 'b's
}

TEST_CASE("splice into an O_APPEND file is reported as unsupported") {
  char path[] = "/tmp/logsplice-append-XXXXXX";
  int raw = ::mkstemp(path);
  REQUIRE(raw >= 0);
  ::close(raw);
  UniqueFd out(::open(path, O_WRONLY | O_APPEND));
  ::unlink(path);
  auto p = Pipe::create(0);
  REQUIRE(p.ok());
  REQUIRE(::write(p->writeFd(), "x\n", 2) == 2);
  auto r = splicePipeToFd(SysCalls::real(), p->readFd(), out.get(), nullptr, 2, false);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == ErrorCode::kUnsupported);
  CHECK(r.error().sysErrno() == EINVAL);
}

TEST_CASE("injected errors come back with their errno and code") {
  FailingSys sys;
  auto file = tempFileWith("a\n");
  auto p = Pipe::create(0);
  REQUIRE(p.ok());
  uint64_t off = 0;
  sys.fail_errno = ENOSPC;
  auto r = splicePipeToFd(sys, p->readFd(), file.get(), &off, 2, false);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == ErrorCode::kNoSpace);
  CHECK(off == 0);
  CHECK_THAT(r.error().toString(), Catch::Contains("No space"));
}

TEST_CASE("Error maps errnos and formats context") {
  CHECK(Error::fromErrno(ENOENT, "/x").code() == ErrorCode::kNotFound);
  CHECK(Error::fromErrno(EACCES, "/x").code() == ErrorCode::kPermission);
  CHECK(Error::fromErrno(EXDEV, "/x").code() == ErrorCode::kUnsupported);
  CHECK(Error::fromErrno(ENOENT, "/x").toString() == "/x: No such file or directory");
  CHECK(Error::invalidConfig("a.yaml:3:4: bad").toString() == "a.yaml:3:4: bad");
  CHECK_FALSE(Error::ok());
  Result<int> r = 5;
  CHECK(r.ok());
  Result<int> e = Error::notFound("y");
  CHECK_FALSE(e.ok());
}
