#pragma once

#include <string>
#include <vector>

namespace logsplice::inputs {

// Lists the entry names of a directory: the seam through which glob expansion lists
// directories, so that tests can make one fail (EACCES as a non-root agent meets it, EMFILE).
// Loop thread only.
class DirLister {
 public:
  virtual ~DirLister() = default;
  // 0 with the names (no "." or ".."), or the errno of opendir(3).
  virtual int list(const std::string& dir, std::vector<std::string>& names);

  // The lister in use: the real one unless a test installed another.
  static DirLister& current();
  // Installs `l` (null: the real one again). Tests only; `l` must outlive its use.
  static void setForTesting(DirLister* l);
};

}  // namespace logsplice::inputs
