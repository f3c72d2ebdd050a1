#include "sys/tcp_ulp.h"

#include <sys/stat.h>
#include <sys/utsname.h>

#include <fstream>

namespace logsplice::sys {

bool tlsUlpModuleInstalled() {
  struct utsname u {};
  if (::uname(&u) != 0) return false;
  const std::string dir = std::string("/lib/modules/") + u.release + "/kernel/net/tls/";
  for (const char* name : {"tls.ko", "tls.ko.xz", "tls.ko.zst", "tls.ko.gz"}) {
    struct stat st {};
    if (::stat((dir + name).c_str(), &st) == 0) return true;
  }
  return false;
}

bool tcpUlpAvailable(std::string_view ulp, const std::string& list_path) {
  std::ifstream in(list_path);
  std::string word;
  while (in >> word) {
    if (word == ulp) return true;
  }
  return ulp == "tls" && list_path == kTcpAvailableUlpPath && tlsUlpModuleInstalled();
}

}  // namespace logsplice::sys
