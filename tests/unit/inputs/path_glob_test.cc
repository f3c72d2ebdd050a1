#include "inputs/path_glob.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

namespace logsplice::inputs {
namespace {

PathGlob glob(const std::string& p) {
  auto g = PathGlob::compile(p);
  REQUIRE(g.ok());
  return g.value();
}

struct TempTree {
  std::string root;
  TempTree() {
    char tmpl[] = "/tmp/ls_glob_XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    root = tmpl;
  }
  ~TempTree() {
    // Best effort: a leftover temp dir must not fail a test.
    [[maybe_unused]] int rc = std::system(("rm -rf " + root).c_str());
  }
  void mkdir(const std::string& rel) const { REQUIRE(::mkdir((root + rel).c_str(), 0755) == 0); }
  void touch(const std::string& rel) const {
    int fd = ::open((root + rel).c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    ::close(fd);
  }
};

}  // namespace

TEST_CASE("PathGlob: compile splits the literal root", "[path_glob]") {
  CHECK(glob("/var/log/nginx/*.log").root() == "/var/log/nginx");
  CHECK(glob("/var/log/*/app.log").root() == "/var/log");
  CHECK(glob("/var/log/syslog").root() == "/var/log");
  CHECK(glob("/a/**/x.log").root() == "/a");
  CHECK_FALSE(PathGlob::compile("relative/*.log").ok());
  CHECK_FALSE(PathGlob::compile("/var/log/").ok());
  CHECK_FALSE(PathGlob::compile("/var/../etc/x").ok());
}

TEST_CASE("PathGlob: component matching", "[path_glob]") {
  auto g = glob("/var/log/*/app-?.[lL]og");
  CHECK(g.matches("/var/log/nginx/app-1.log"));
  CHECK(g.matches("/var/log/x/app-z.Log"));
  CHECK_FALSE(g.matches("/var/log/app-1.log"));         // * needs one component
  CHECK_FALSE(g.matches("/var/log/a/b/app-1.log"));     // * never crosses '/'
  CHECK_FALSE(g.matches("/var/log/nginx/app-12.log"));  // ? is one character
  CHECK_FALSE(g.matches("/var/log/nginx/app-1.txt"));
  CHECK_FALSE(g.matches("/srv/log/nginx/app-1.log"));
}

TEST_CASE("PathGlob: ** matches any depth, including none", "[path_glob]") {
  auto g = glob("/data/**/*.log");
  CHECK(g.matches("/data/a.log"));
  CHECK(g.matches("/data/x/a.log"));
  CHECK(g.matches("/data/x/y/z/a.log"));
  CHECK_FALSE(g.matches("/data/x/a.txt"));
  CHECK_FALSE(g.matches("/other/a.log"));
  auto mid = glob("/data/**/logs/*.log");
  CHECK(mid.matches("/data/logs/a.log"));
  CHECK(mid.matches("/data/p/q/logs/a.log"));
  CHECK_FALSE(mid.matches("/data/p/q/a.log"));
  auto tail = glob("/data/**");
  CHECK(tail.matches("/data/a"));
  CHECK(tail.matches("/data/b/c/d"));
  CHECK(mid.couldContain("/data"));
  CHECK(mid.couldContain("/data/p/q"));
  CHECK_FALSE(glob("/data/*/x.log").couldContain("/data/a/b"));
  CHECK(glob("/data/*/x.log").couldContain("/data/a"));
}

TEST_CASE("PathGlob: expand walks the tree and reports watch dirs", "[path_glob]") {
  TempTree t;
  t.mkdir("/a");
  t.mkdir("/a/b");
  t.mkdir("/a/b/c");
  t.mkdir("/z");
  t.touch("/top.log");
  t.touch("/a/one.log");
  t.touch("/a/b/two.log");
  t.touch("/a/b/c/three.log");
  t.touch("/a/b/c/three.txt");
  t.touch("/z/four.log");
  REQUIRE(::symlink((t.root + "/a").c_str(), (t.root + "/a/b/loop").c_str()) == 0);

  std::vector<std::string> dirs, files;
  auto collect = [&](const PathGlob& g) {
    dirs.clear();
    files.clear();
    g.expand([&](const std::string& d) { dirs.push_back(d); },
             [&](const std::string& f) { files.push_back(f); });
    std::sort(files.begin(), files.end());
  };

  collect(glob(t.root + "/a/**/*.log"));
  CHECK(files == std::vector<std::string>{t.root + "/a/b/c/three.log", t.root + "/a/b/two.log",
                                          t.root + "/a/one.log"});
  CHECK(std::count(dirs.begin(), dirs.end(), t.root + "/a/b/c") == 1);

  collect(glob(t.root + "/*/one.log"));
  CHECK(files == std::vector<std::string>{t.root + "/a/one.log"});
  CHECK(dirs == std::vector<std::string>{t.root, t.root + "/a", t.root + "/z"});

  collect(glob(t.root + "/a/b/two.log"));  // all literal: no listing needed
  CHECK(files == std::vector<std::string>{t.root + "/a/b/two.log"});
  CHECK(dirs == std::vector<std::string>{t.root + "/a/b"});

  collect(glob(t.root + "/missing/*.log"));
  CHECK(files.empty());
  CHECK(dirs.empty());
}

TEST_CASE("path helpers", "[path_glob]") {
  CHECK(splitPath("/a//b/c/") == std::vector<std::string>{"a", "b", "c"});
  CHECK(joinPath("/a", "b") == "/a/b");
  CHECK(joinPath("/", "b") == "/b");
  CHECK(dirName("/a/b") == "/a");
  CHECK(dirName("/a") == "/");
  CHECK(baseName("/a/b.log") == "b.log");
}

}  // namespace logsplice::inputs
