#include "inputs/dir_lister.h"

#include <dirent.h>

#include <cerrno>

namespace logsplice::inputs {
namespace {

DirLister* g_override = nullptr;

}  // namespace

int DirLister::list(const std::string& dir, std::vector<std::string>& names) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    names.push_back(std::move(name));
  }
  ::closedir(d);
  return 0;
}

DirLister& DirLister::current() {
  static DirLister real;
  return g_override != nullptr ? *g_override : real;
}

void DirLister::setForTesting(DirLister* l) {
  g_override = l;
}

}  // namespace logsplice::inputs
