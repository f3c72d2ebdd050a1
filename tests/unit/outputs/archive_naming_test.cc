// Archive layout and the sanitising that keeps every archive file inside its directory.

#include "outputs/archive_naming.h"

#include <catch2/catch.hpp>
#include <algorithm>
#include <random>
#include <string>
#include <vector>

using namespace logsplice::outputs;

namespace {

constexpr std::time_t kWhen = 1700000000;  // 2023-11-14 22:13:20 UTC

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    out.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("sanitizeComponent turns any name into one safe path component") {
  CHECK(sanitizeComponent("nginx") == "nginx");
  CHECK(sanitizeComponent("access.log") == "access.log");
  CHECK(sanitizeComponent("../x") == ".._x");
  CHECK(sanitizeComponent("a/b") == "a_b");
  CHECK(sanitizeComponent("/etc/passwd") == "_etc_passwd");
  CHECK(sanitizeComponent("") == "_");
  CHECK(sanitizeComponent(".") == "_");
  CHECK(sanitizeComponent("..") == "_");
  CHECK(sanitizeComponent("...") == "...");  // an ordinary name
  CHECK(sanitizeComponent("a\nb\tc\x01\x1f\x7f") == "a_b_c___");
  CHECK(sanitizeComponent(std::string("a\0b", 3)) == "a_b");
  CHECK(sanitizeComponent("日本語.log") == "日本語.log");  // UTF-8 stays readable
  CHECK(sanitizeComponent("with space") == "with space");
}

TEST_CASE("archive layout: <dir>/<input>/<source>/<YYYY-MM-DD>/<HHMMSS>_<NNN>.log in UTC") {
  CHECK(archiveDirFor("/var/log/archive", "nginx", "access.log", kWhen) ==
        "/var/log/archive/nginx/access.log/2023-11-14");
  CHECK(archiveFileName(kWhen, 0) == "221320_000.log");
  CHECK(archiveFileName(kWhen, 1) == "221320_001.log");
  CHECK(archiveFileName(kWhen, 17) == "221320_017.log");
  CHECK(archiveFileName(kWhen, 999) == "221320_999.log");
  CHECK(archiveFileName(kWhen, 1000) == "221320_a1000.log");
  CHECK(archiveFileName(kWhen, 99999) == "221320_b99999.log");
  CHECK(archiveFileName(kWhen, 2147483647) == "221320_g2147483647.log");
  CHECK(archiveFileName(0, 0) == "000000_000.log");
  CHECK(archiveDirFor("/a", "i", "s", 0) == "/a/i/s/1970-01-01");
  // A day boundary in UTC, whatever the local zone.
  CHECK(archiveDirFor("/a", "i", "s", 1704067199) == "/a/i/s/2023-12-31");
  CHECK(archiveDirFor("/a", "i", "s", 1704067200) == "/a/i/s/2024-01-01");
}

TEST_CASE("archive layout: no input or source name can leave the directory") {
  const std::string dir = "/var/log/archive";
  std::vector<std::string> nasty = {"../x",      "a/b",   "",        ".",
                                    "..",        "/",     "//",      "../../etc",
                                    "..\x01/..", "\n..",  "x/../..", std::string(1, '\0'),
                                    "./.",       "a\x7f/"};
  // Plus random names over the dangerous alphabet.
  std::mt19937 rng(42);
  const std::string alphabet = std::string("./\n\x01\x7f") + '\0' + "a";
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    size_t len = rng() % 6;
    for (size_t j = 0; j < len; ++j) s.push_back(alphabet[rng() % alphabet.size()]);
    nasty.push_back(s);
  }
  for (const std::string& input : {std::string("in"), std::string("..")}) {
    for (const std::string& name : nasty) {
      CAPTURE(input, name);
      std::string path = archiveDirFor(dir, input, name, kWhen) + "/" + archiveFileName(kWhen, 3);
      REQUIRE(path.rfind(dir + "/", 0) == 0);
      auto parts = components(path.substr(dir.size() + 1));
      REQUIRE(parts.size() == 4);  // input, source, day, file: exactly, so no '/' got through
      for (const std::string& p : parts) {
        CHECK_FALSE(p.empty());
        CHECK(p != ".");
        CHECK(p != "..");
        for (char c : p) {
          unsigned char u = static_cast<unsigned char>(c);
          CHECK((u >= 0x20 && u != 0x7f));
        }
      }
    }
  }
}

namespace {

// What an archive sink names its files: the day's directory (relative) and the file name.
std::string relativeName(std::time_t when, int collision) {
  return archiveDirFor("", "in", "app.log", when).substr(1) + "/" +
         archiveFileName(when, collision);
}

}  // namespace

TEST_CASE("archive names sort in write order under byte order, within and across seconds") {
  // Files in creation order: seconds with 1, 2, 11, 1000, 1001 and 12000 files, a day boundary
  // (2023-12-31 23:59:59 -> 2024-01-01 00:00:00) and a gap of several seconds.
  const std::vector<std::pair<std::time_t, int>> seconds = {
      {kWhen, 1},          {kWhen + 1, 2},        {kWhen + 2, 11},    {kWhen + 3, 1000},
      {kWhen + 4, 1001},   {kWhen + 9, 12000},    {1704067199, 1500}, {1704067200, 3},
      {1704067201, 10001},
  };
  std::vector<std::string> created;
  for (const auto& [when, files] : seconds) {
    for (int n = 0; n < files; ++n) created.push_back(relativeName(when, n));
  }
  std::vector<std::string> sorted = created;
  std::mt19937 rng(7);
  std::shuffle(sorted.begin(), sorted.end(), rng);
  std::sort(sorted.begin(), sorted.end());  // std::string compares bytes, as `ls` in C locale
  REQUIRE(sorted.size() == created.size());
  for (size_t i = 0; i < created.size(); ++i) {
    if (sorted[i] != created[i]) {
      FAIL("position " << i << ": byte order has " << sorted[i] << ", written " << created[i]);
    }
  }
  // No two files share a name.
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
}

TEST_CASE("archive names sort after the names older versions wrote in the same second") {
  // Before: "<HHMMSS>.log", then "<HHMMSS>-1.log", "-2", ... An upgrade (or a clock step back)
  // can put both in one directory for one second: new files must come after the old ones.
  std::vector<std::string> old_names = {"221320.log"};
  for (int n = 1; n <= 120; ++n) old_names.push_back("221320-" + std::to_string(n) + ".log");
  for (int n : {0, 1, 9, 10, 99, 999, 1000, 54321}) {
    std::string fresh = archiveFileName(kWhen, n);
    CAPTURE(fresh);
    for (const std::string& old : old_names) CHECK(old < fresh);
    // ...and before what either version writes in the next second.
    CHECK(fresh < "221321.log");
    CHECK(fresh < "221321-1.log");
    CHECK(fresh < archiveFileName(kWhen + 1, 0));
    // ...and after what either wrote in the second before.
    CHECK(archiveFileName(kWhen - 1, 54321) < fresh);
    CHECK("221319-99.log" < fresh);
  }
}
