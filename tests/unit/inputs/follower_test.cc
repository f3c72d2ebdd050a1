// Follower::refresh on a real file, with the clock driven by the test: the head re-check that
// guards against copytruncate is rate-limited for a file that only grows, and a skipped check is
// owed, so a rewrite hidden by fast regrowth is still found (late, never lost).

#include "inputs/follower.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "sys/sys_calls.h"
#include "inputs/file_identity.h"
#include "tests/support/test_env.h"

namespace logsplice::inputs {
namespace {

using testing::appendFile;
using testing::numberedLines;
using testing::TempDir;
using testing::writeFile;

std::unique_ptr<Follower> follow(const std::string& path, uint64_t now_ms) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  struct stat st;
  REQUIRE(::fstat(fd, &st) == 0);
  auto id = identify(fd, st);
  REQUIRE(id.ok());
  return std::make_unique<Follower>(1, path, "in", *id, sys::UniqueFd(fd), false, 0, now_ms);
}

}  // namespace

TEST_CASE("Follower: a rewrite regrown past the old size is found by the owed head check") {
  TempDir dir;
  std::string path = dir / "app.log";
  std::string first = numberedLines(0, 40);  // 4 KiB: a full 1 KiB fingerprint
  writeFile(path, first);
  auto f = follow(path, 1000);
  sys::SysCalls& sys = sys::SysCalls::real();

  auto c = f->refresh(sys, 1000);  // first refresh: the head is checked
  REQUIRE_FALSE(c.truncated);
  REQUIRE(f->completeEnd() == first.size());

  // copytruncate, and the writer refills the file past the old size before we look.
  std::string second = numberedLines(1000, 80);
  REQUIRE(::truncate(path.c_str(), 0) == 0);
  appendFile(path, second);

  // 100 ms after the last check: growth only, so the head is not re-read yet...
  c = f->refresh(sys, 1100);
  CHECK_FALSE(c.truncated);
  CHECK(c.grew);
  // ...but the check is owed: the next refresh does it although nothing changed since.
  c = f->refresh(sys, 1200);
  CHECK(c.truncated);
  CHECK(f->generation() == 1);
  CHECK(f->completeEnd() == second.size());
}

TEST_CASE("Follower: the head is re-read on growth once a second, and always below 1 KiB") {
  TempDir dir;
  std::string path = dir / "app.log";
  writeFile(path, "a short first line\n");
  auto f = follow(path, 0);
  sys::SysCalls& sys = sys::SysCalls::real();
  REQUIRE_FALSE(f->refresh(sys, 0).truncated);

  // Below 1 KiB every growth re-reads the head: a rewrite is seen at once, even 1 ms later.
  REQUIRE(::truncate(path.c_str(), 0) == 0);
  writeFile(path, "another first line, longer than the old one\n");
  CHECK(f->refresh(sys, 1).truncated);

  // A full fingerprint and a growth more than a second after the last check: read at once.
  std::string big = numberedLines(0, 40);
  writeFile(path, big);                 // same inode, rewritten from 0: a new head
  CHECK(f->refresh(sys, 2).truncated);  // shrink-or-rewrite below 1 KiB known: checked
  REQUIRE(::truncate(path.c_str(), 0) == 0);
  appendFile(path, numberedLines(500, 60));
  CHECK(f->refresh(sys, 2 + Follower::kHeadRecheckMs).truncated);
}

TEST_CASE("Follower: freshFrom marks where the latest growth starts") {
  TempDir dir;
  std::string path = dir / "app.log";
  std::string first = numberedLines(0, 10);
  writeFile(path, first);
  auto f = follow(path, 0);
  sys::SysCalls& sys = sys::SysCalls::real();
  f->refresh(sys, 0);
  CHECK(f->freshFrom() == 0);  // everything was new to the first refresh
  appendFile(path, numberedLines(10, 5));
  f->refresh(sys, 10);
  CHECK(f->freshFrom() == first.size());
  f->refresh(sys, 20);  // nothing changed: still the same latest growth
  CHECK(f->freshFrom() == first.size());
  REQUIRE(::truncate(path.c_str(), 0) == 0);
  appendFile(path, numberedLines(0, 1));
  f->refresh(sys, 30);
  CHECK(f->freshFrom() == UINT64_MAX);  // after a truncation nothing counts as fresh
}

}  // namespace logsplice::inputs
