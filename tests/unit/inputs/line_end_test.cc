#include "inputs/line_end.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "sys/sys_calls.h"

namespace logsplice::inputs {
namespace {

// A temp file holding `content`; records how many preads the search made.
struct TempFile {
  std::string path;
  int fd = -1;
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/ls_lineend_XXXXXX";
    fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    path = tmpl;
    REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  }
  ~TempFile() {
    ::close(fd);
    ::unlink(path.c_str());
  }
};

class CountingSys : public sys::SysCalls {
 public:
  int preads = 0;
  uint64_t lowest = UINT64_MAX;
  sys::SysResult pread(int fd, void* buf, size_t len, off_t offset) override {
    ++preads;
    lowest = std::min<uint64_t>(lowest, static_cast<uint64_t>(offset));
    return sys::SysCalls::pread(fd, buf, len, offset);
  }
};

uint64_t find(const std::string& content, uint64_t from, uint64_t to, uint32_t window,
              CountingSys* counting = nullptr) {
  TempFile f(content);
  CountingSys local;
  CountingSys& sys = counting ? *counting : local;
  auto r = findLastLineEnd(sys, f.fd, from, to, window);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("findLastLineEnd: basic cases", "[line_end]") {
  CHECK(find("abc\ndef\n", 0, 8, 4096) == 8);
  CHECK(find("abc\ndef", 0, 7, 4096) == 4);
  CHECK(find("abcdef", 0, 6, 4096) == 0);  // no newline at all
  CHECK(find("", 0, 0, 4096) == 0);
  CHECK(find("abc\ndef\n", 5, 8, 4096) == 8);
  CHECK(find("abc\ndef", 5, 7, 4096) == 5);  // the newline before `from` is not searched
  CHECK(find("\n", 0, 1, 4096) == 1);
  CHECK(find("abc\r\ndef\r\n", 0, 10, 4096) == 10);  // windows line ends: \r stays in the line
  CHECK(find("abc\r\ndef\r", 0, 9, 4096) == 5);
}

TEST_CASE("findLastLineEnd: newline exactly at window edges", "[line_end]") {
  const uint32_t w = 16;
  // 40 bytes, newline at the last byte of the first-read window's start, i.e. offset to - w.
  std::string s(40, 'x');
  s[40 - w] = '\n';  // first byte of the last window
  CHECK(find(s, 0, 40, w) == 40 - w + 1);
  std::string t(40, 'x');
  t[40 - w - 1] = '\n';  // last byte of the window before
  CHECK(find(t, 0, 40, w) == 40 - w);
  std::string u(40, 'x');
  u[39] = '\n';  // the very last byte
  CHECK(find(u, 0, 40, w) == 40);
  std::string v(40, 'x');
  v[0] = '\n';  // the very first byte, several windows back
  CHECK(find(v, 0, 40, w) == 1);
}

TEST_CASE("findLastLineEnd: reads one window for an ordinary append", "[line_end]") {
  std::string s;
  for (int i = 0; i < 2000; ++i) s += "line number " + std::to_string(i) + "\n";
  CountingSys sys;
  CHECK(find(s, 0, s.size(), 4096, &sys) == s.size());
  CHECK(sys.preads == 1);
  CHECK(sys.lowest == s.size() - 4096);
}

TEST_CASE("findLastLineEnd: long lines search back only to `from`", "[line_end]") {
  std::string s = "short\n" + std::string(300000, 'y');
  CountingSys sys;
  CHECK(find(s, 0, s.size(), 4096, &sys) == 6);
  // Windows double up to 64 KiB: far fewer than 300000/4096 = 74 reads.
  CHECK(sys.preads < 12);
  CountingSys bounded;
  CHECK(find(s, 100000, s.size(), 4096, &bounded) == 100000);
  CHECK(bounded.lowest == 100000);
}

}  // namespace logsplice::inputs
