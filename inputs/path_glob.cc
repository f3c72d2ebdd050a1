#include "inputs/path_glob.h"

#include "inputs/dir_lister.h"
#include "sys/unique_fd.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

namespace logsplice::inputs {

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string joinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string dirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string baseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool PathGlob::isLiteral(const std::string& component) {
  return component.find_first_of("*?[\\") == std::string::npos;
}

sys::Result<PathGlob> PathGlob::compile(const std::string& pattern) {
  if (pattern.empty() || pattern.front() != '/') {
    return sys::Error::invalidConfig("path pattern must be absolute: '" + pattern + "'");
  }
  if (pattern.back() == '/') {
    return sys::Error::invalidConfig("path pattern names a directory: '" + pattern + "'");
  }
  std::vector<std::string> parts = splitPath(pattern);
  if (parts.empty()) return sys::Error::invalidConfig("empty path pattern");
  for (const auto& p : parts) {
    if (p == "." || p == "..") {
      return sys::Error::invalidConfig("path pattern with '.' or '..': '" + pattern + "'");
    }
  }
  PathGlob g;
  g.pattern_ = pattern;
  size_t literal = 0;
  // The last component names files, so it never belongs to the root directory.
  while (literal + 1 < parts.size() && isLiteral(parts[literal])) ++literal;
  g.root_ = "/";
  for (size_t i = 0; i < literal; ++i) g.root_ = joinPath(g.root_, parts[i]);
  g.components_.assign(parts.begin() + static_cast<std::ptrdiff_t>(literal), parts.end());
  return g;
}

void PathGlob::closure(std::vector<size_t>& states) const {
  for (size_t k = 0; k < states.size(); ++k) {
    size_t i = states[k];
    if (i < components_.size() && components_[i] == "**" &&
        std::find(states.begin(), states.end(), i + 1) == states.end()) {
      states.push_back(i + 1);
    }
  }
  std::sort(states.begin(), states.end());
}

std::vector<size_t> PathGlob::step(const std::vector<size_t>& states,
                                   const std::string& name) const {
  std::vector<size_t> next;
  auto add = [&next](size_t i) {
    if (std::find(next.begin(), next.end(), i) == next.end()) next.push_back(i);
  };
  for (size_t i : states) {
    if (i >= components_.size()) continue;
    const std::string& c = components_[i];
    if (c == "**") {
      add(i);
    } else if (::fnmatch(c.c_str(), name.c_str(), 0) == 0) {
      add(i + 1);
    }
  }
  closure(next);
  return next;
}

bool PathGlob::matches(const std::string& path) const {
  std::vector<size_t> states{0};
  closure(states);
  std::vector<std::string> root_parts = splitPath(root_);
  std::vector<std::string> parts = splitPath(path);
  if (path.empty() || path.front() != '/' || parts.size() <= root_parts.size()) return false;
  if (!std::equal(root_parts.begin(), root_parts.end(), parts.begin())) return false;
  for (size_t k = root_parts.size(); k < parts.size() && !states.empty(); ++k) {
    states = step(states, parts[k]);
  }
  return std::find(states.begin(), states.end(), components_.size()) != states.end();
}

bool PathGlob::couldContain(const std::string& dir) const {
  std::vector<size_t> states{0};
  closure(states);
  std::vector<std::string> root_parts = splitPath(root_);
  std::vector<std::string> parts = splitPath(dir);
  if (parts.size() < root_parts.size()) return false;
  if (!std::equal(root_parts.begin(), root_parts.end(), parts.begin())) return false;
  for (size_t k = root_parts.size(); k < parts.size() && !states.empty(); ++k) {
    states = step(states, parts[k]);
  }
  return std::any_of(states.begin(), states.end(),
                     [this](size_t i) { return i < components_.size(); });
}

int PathGlob::expand(const std::function<void(const std::string&)>& on_dir,
                     const std::function<void(const std::string&)>& on_file,
                     const DirErrorFn& on_dir_error) const {
  return expandStat(
      on_dir, [&](const std::string& path, const struct stat*) { on_file(path); }, on_dir_error);
}

int PathGlob::expandStat(const std::function<void(const std::string&)>& on_dir,
                         const FileStatFn& on_file, const DirErrorFn& on_dir_error) const {
  std::vector<size_t> states{0};
  closure(states);
  std::vector<std::pair<dev_t, ino_t>> seen;
  int fd_error = 0;
  walk(root_, states, seen, on_dir, on_file, on_dir_error, fd_error);
  return fd_error;
}

void PathGlob::walk(const std::string& dir, std::vector<size_t> states,
                    std::vector<std::pair<dev_t, ino_t>>& seen,
                    const std::function<void(const std::string&)>& on_dir,
                    const FileStatFn& on_file, const DirErrorFn& on_dir_error,
                    int& fd_error) const {
  struct stat dst;
  if (::stat(dir.c_str(), &dst) != 0 || !S_ISDIR(dst.st_mode)) return;
  auto key = std::make_pair(dst.st_dev, dst.st_ino);
  if (std::find(seen.begin(), seen.end(), key) != seen.end()) return;  // symlink loop
  seen.push_back(key);
  on_dir(dir);
  // Entries are stat()ed relative to the directory: with 100,000 files the kernel's walk of
  // every absolute path was most of a rescan's cost. Without a descriptor (EMFILE), by path.
  sys::UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));

  auto visit = [&](const std::string& name) {
    std::vector<size_t> next = step(states, name);
    if (next.empty()) return;
    std::string child = joinPath(dir, name);
    bool names_file = std::find(next.begin(), next.end(), components_.size()) != next.end();
    struct stat st;
    int rc = dfd ? ::fstatat(dfd.get(), name.c_str(), &st, 0) : ::stat(child.c_str(), &st);
    if (rc != 0) {
      // Vanished since the listing: dropped. A dangling symlink (ENOENT, but the link itself
      // is there) or a symlink loop (ELOOP): passed on, so the caller says why it skips it.
      int err = errno;
      if (names_file && (err != ENOENT || ::lstat(child.c_str(), &st) == 0)) {
        on_file(child, nullptr);
      }
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      bool deeper = std::any_of(next.begin(), next.end(),
                                [this](size_t i) { return i < components_.size(); });
      if (deeper) walk(child, next, seen, on_dir, on_file, on_dir_error, fd_error);
    } else if (names_file) {
      on_file(child, &st);
    }
  };

  // Only literal components pending: look the names up instead of listing the directory.
  bool all_literal = std::all_of(states.begin(), states.end(), [this](size_t i) {
    return i >= components_.size() || (components_[i] != "**" && isLiteral(components_[i]));
  });
  if (all_literal) {
    for (size_t i : states) {
      if (i < components_.size()) visit(components_[i]);
    }
    return;
  }
  std::vector<std::string> names;
  if (int err = DirLister::current().list(dir, names); err != 0) {
    if (err == EMFILE || err == ENFILE) {
      fd_error = err;
    } else if (err != ENOENT && err != ENOTDIR && on_dir_error) {
      on_dir_error(dir, err);  // there, but not listable: say so (a vanished one is not news)
    }
    return;
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) visit(name);
}

}  // namespace logsplice::inputs
