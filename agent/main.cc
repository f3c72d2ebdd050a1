#include <cstdio>

#include "agent/sys/version.h"

int main() {
  std::printf("logsplice %s\n", logsplice::sys::kVersion);
  return 0;
}
