#include "inputs/file_identity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

namespace logsplice::inputs {
namespace {

struct TempFile {
  std::string path;
  int fd = -1;
  TempFile() {
    char tmpl[] = "/tmp/ls_ident_XXXXXX";
    fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    path = tmpl;
  }
  ~TempFile() {
    ::close(fd);
    ::unlink(path.c_str());
  }
  void append(const std::string& s) const {
    REQUIRE(::pwrite(fd, s.data(), s.size(), size()) == static_cast<ssize_t>(s.size()));
  }
  off_t size() const {
    struct stat st;
    ::fstat(fd, &st);
    return st.st_size;
  }
  struct stat st() const {
    struct stat out;
    REQUIRE(::fstat(fd, &out) == 0);
    return out;
  }
  FileIdentity id() const {
    auto r = identify(fd, st());
    REQUIRE(r.ok());
    return *r;
  }
  bool matches(const FileIdentity& known) const {
    auto r = stillMatches(fd, st(), known);
    REQUIRE(r.ok());
    return *r;
  }
};

}  // namespace

TEST_CASE("FileIdentity: growth below 1 KiB keeps the identity", "[file_identity]") {
  TempFile f;
  FileIdentity empty = f.id();
  CHECK(empty.fingerprint_len == 0);
  f.append("hello\n");
  FileIdentity small = f.id();
  CHECK(small.fingerprint_len == 6);
  CHECK(f.matches(empty));
  f.append(std::string(2000, 'a'));
  FileIdentity full = f.id();
  CHECK(full.fingerprint_len == FileIdentity::kFingerprintBytes);
  CHECK(f.matches(small));  // the prefix it had still hashes the same
  CHECK(f.matches(full));
  f.append("more");
  CHECK(f.id().fingerprint == full.fingerprint);  // capped at 1 KiB: later bytes don't count
  CHECK(full.sameInode(small));
  CHECK(full.toString() == std::to_string(full.dev) + ":" + std::to_string(full.ino) + ":" +
                               std::to_string(full.fingerprint) + "/1024");
}

TEST_CASE("FileIdentity: inode reused with a different head is another file", "[file_identity]") {
  TempFile f;
  f.append("first file line\n");
  FileIdentity before = f.id();
  // Simulate reuse: same inode, new content (what a delete + create that got the same inode
  // number, or a truncate + rewrite, looks like).
  REQUIRE(::ftruncate(f.fd, 0) == 0);
  f.append("other file line\n");
  CHECK_FALSE(f.matches(before));
  // Shorter than the known fingerprint: not the same file either.
  REQUIRE(::ftruncate(f.fd, 0) == 0);
  f.append("first");
  CHECK_FALSE(f.matches(before));
}

TEST_CASE("FileIdentity: another inode never matches", "[file_identity]") {
  TempFile a, b;
  a.append("same content\n");
  b.append("same content\n");
  CHECK(a.id().fingerprint == b.id().fingerprint);
  CHECK_FALSE(b.matches(a.id()));
}

TEST_CASE("checkHead answers both questions in one read", "[file_identity]") {
  TempFile f;
  f.append("abc");
  FileIdentity small = f.id();
  f.append("def");
  auto h = checkHead(f.fd, f.st(), small);
  REQUIRE(h.ok());
  CHECK(h->matches);
  CHECK(h->current.fingerprint_len == 6);
  CHECK(h->current.fingerprint == fingerprintOf("abcdef", 6));
}

}  // namespace logsplice::inputs
