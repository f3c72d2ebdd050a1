#include "agent/collect/mirror_paths.h"

#include <catch2/catch.hpp>
#include <string>

using logsplice::agent::collect::mirrorRelPath;
using logsplice::agent::collect::safeRelPath;
using logsplice::agent::collect::sanitisePath;

TEST_CASE("mirror paths: a plain path keeps its shape", "[collect]") {
  CHECK(mirrorRelPath("web-1", "app", "/var/log/app.log", 0) == "web-1/app/var/log/app.log");
  CHECK(mirrorRelPath("web-1", "app", "/var/log/app.log", 2) == "web-1/app/var/log/app.log.2");
}

TEST_CASE("mirror paths: nothing from the wire leaves the dir", "[collect]") {
  const char* hostile[] = {
      "/../../etc/passwd", "/a/../../../b", "/./.././x", "//..//..//x", "/var/log/..", "..", "/",
      "/a/\n/b\t",         "/~/.ssh/id"};
  for (const char* p : hostile) {
    std::string rel = mirrorRelPath("h", "in", p, 0);
    INFO(p << " -> " << rel);
    CHECK(safeRelPath(rel));
    CHECK(rel.rfind("h/in/", 0) == 0);
    CHECK(rel.find("/../") == std::string::npos);
    CHECK(rel.find("/./") == std::string::npos);
    CHECK(rel.find("//") == std::string::npos);
    CHECK(rel.back() != '/');
  }
  CHECK(sanitisePath("/../../etc/passwd") == "__/__/etc/passwd");
  CHECK(sanitisePath(std::string("/a\0b/c", 6)) == "a_b/c");
}

TEST_CASE("mirror paths: over-long names and deep paths are bounded", "[collect]") {
  std::string long_name = "/" + std::string(5000, 'x');
  std::string rel = sanitisePath(long_name);
  CHECK(rel.size() == 200);
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "/d";
  rel = sanitisePath(deep);
  CHECK(static_cast<size_t>(std::count(rel.begin(), rel.end(), '/')) == 31);
  CHECK(safeRelPath(mirrorRelPath("h", "i", deep, 0)));
}

TEST_CASE("mirror paths: safeRelPath refuses what the index must never point at", "[collect]") {
  CHECK_FALSE(safeRelPath(""));
  CHECK_FALSE(safeRelPath("/etc/passwd"));
  CHECK_FALSE(safeRelPath("h/../../x"));
  CHECK_FALSE(safeRelPath("h/./x"));
  CHECK_FALSE(safeRelPath("h//x"));
  CHECK_FALSE(safeRelPath("h/x/"));
  CHECK_FALSE(safeRelPath("h/x y"));
  CHECK(safeRelPath("h/in/var/log/app.log~1234"));
}
