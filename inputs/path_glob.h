#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "sys/error.h"

namespace logsplice::inputs {

// One `paths:` pattern, split into components. Each component is matched with fnmatch(3)
// (`*`, `?`, `[...]`, no FNM_PERIOD: `*` matches dot files too); a component that is exactly
// `**` matches any number of directories, including none. The literal leading components form
// the root, the directory where expansion starts.
// Immutable after compile(); safe to use from any thread.
class PathGlob {
 public:
  // `pattern` must be absolute (relative ones are resolved against the working directory by the
  // caller). Fails on an empty pattern or one ending in '/'.
  static sys::Result<PathGlob> compile(const std::string& pattern);

  const std::string& pattern() const { return pattern_; }
  // The deepest directory made of literal components only ("/var/log" for "/var/log/*/*.log").
  const std::string& root() const { return root_; }

  // Whether an absolute, normalised path (no "//", ".", "..") matches the whole pattern.
  bool matches(const std::string& path) const;
  // Whether `dir` could contain (at any depth) a path matching the pattern: directories below
  // the root worth watching.
  bool couldContain(const std::string& dir) const;

  // Walks the filesystem from the root. Calls on_dir(dir) for every directory in which a match
  // can appear (itself or deeper), before listing it, so a watch added there sees entries that
  // appear after the listing; then on_file(path) for each matching non-directory entry
  // (symlinks followed; directory loops through symlinks are cut by (dev, ino)). A matching
  // name that cannot be stat()ed (a dangling symlink, a symlink loop) is passed to on_file
  // too, so the caller can say why it is skipped. Missing directories are skipped silently: a
  // later event or rescan finds them. A directory that exists but cannot be listed (EACCES...)
  // is passed to on_dir_error with the errno, if given. Directories are listed through
  // DirLister::current(). Returns 0, or EMFILE/ENFILE when a directory could not be listed for
  // want of descriptors (the expansion is incomplete: retry).
  using DirErrorFn = std::function<void(const std::string& dir, int err)>;
  int expand(const std::function<void(const std::string& dir)>& on_dir,
             const std::function<void(const std::string& path)>& on_file,
             const DirErrorFn& on_dir_error = nullptr) const;
  // The same walk; on_file also gets the stat(2) of the path taken by the walk (null when it
  // failed), so a caller with many files does not stat each one a second time.
  using FileStatFn = std::function<void(const std::string& path, const struct stat* st)>;
  int expandStat(const std::function<void(const std::string& dir)>& on_dir,
                 const FileStatFn& on_file, const DirErrorFn& on_dir_error = nullptr) const;

 private:
  PathGlob() = default;
  static bool isLiteral(const std::string& component);
  // Component states after consuming `name` from `states` (with ** closure applied).
  std::vector<size_t> step(const std::vector<size_t>& states, const std::string& name) const;
  void closure(std::vector<size_t>& states) const;
  void walk(const std::string& dir, std::vector<size_t> states,
            std::vector<std::pair<dev_t, ino_t>>& seen,
            const std::function<void(const std::string&)>& on_dir, const FileStatFn& on_file,
            const DirErrorFn& on_dir_error, int& fd_error) const;

  std::string pattern_;
  std::string root_;
  std::vector<std::string> components_;  // after the root
};

// Splits "/a/b/c" into {"a", "b", "c"}; ignores empty components.
std::vector<std::string> splitPath(const std::string& path);
// "/a/b" + "c" with exactly one slash.
std::string joinPath(const std::string& dir, const std::string& name);
// "/a/b/c" -> "/a/b"; "/a" -> "/".
std::string dirName(const std::string& path);
std::string baseName(const std::string& path);

}  // namespace logsplice::inputs
