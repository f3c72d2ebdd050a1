// The TCP ULP probe (sys/tcp_ulp.h): which upper-layer protocols the kernel offers.

#include "sys/tcp_ulp.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "tests/support/test_env.h"

using namespace logsplice;

TEST_CASE("tcp ulp: a list names the protocols the kernel offers", "[sys][ktls]") {
  testing::TempDir dir;
  CHECK_FALSE(sys::tcpUlpAvailable("tls", dir.path() + "/none"));  // no list: nothing offered
  testing::writeFile(dir.path() + "/ulp", "mptcp tls\n");
  CHECK(sys::tcpUlpAvailable("tls", dir.path() + "/ulp"));
  CHECK(sys::tcpUlpAvailable("mptcp", dir.path() + "/ulp"));
  CHECK_FALSE(sys::tcpUlpAvailable("espintcp", dir.path() + "/ulp"));
  testing::writeFile(dir.path() + "/ulp", "mptcp tlsx\n");
  CHECK_FALSE(sys::tcpUlpAvailable("tls", dir.path() + "/ulp"));  // whole words only
}

TEST_CASE("tcp ulp: this kernel's answer is its list, or the tls module ready to load",
          "[sys][ktls]") {
  std::ifstream in(sys::kTcpAvailableUlpPath);
  bool listed = false;
  for (std::string word; in >> word;) listed = listed || word == "tls";
  CHECK(sys::tcpUlpAvailable("tls") == (listed || sys::tlsUlpModuleInstalled()));
}
