// Archive layout and the sanitising that keeps every archive file inside its directory.

#include "outputs/archive_naming.h"

#include <catch2/catch.hpp>
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

TEST_CASE("archive layout: <dir>/<input>/<source>/<YYYY-MM-DD>/<HHMMSS>[-N].log in UTC") {
  CHECK(archiveDirFor("/var/log/archive", "nginx", "access.log", kWhen) ==
        "/var/log/archive/nginx/access.log/2023-11-14");
  CHECK(archiveFileName(kWhen, 0) == "221320.log");
  CHECK(archiveFileName(kWhen, 1) == "221320-1.log");
  CHECK(archiveFileName(kWhen, 17) == "221320-17.log");
  CHECK(archiveFileName(0, 0) == "000000.log");
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
