#include "agent/collect/mirror_paths.h"

#include <vector>

namespace logsplice::agent::collect {
namespace {

constexpr size_t kMaxComponentBytes = 200;
constexpr size_t kMaxComponents = 32;

bool keptByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '+' || c == ',' || c == '=' || c == '@';
}

std::string sanitiseComponent(std::string_view c) {
  if (c == ".") return "_";
  if (c == "..") return "__";
  std::string out;
  for (char ch : c.substr(0, kMaxComponentBytes)) out.push_back(keptByte(ch) ? ch : '_');
  return out;
}

}  // namespace

std::string sanitisePath(std::string_view path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size() && parts.size() < kMaxComponents) {
    size_t slash = path.find('/', i);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view c = path.substr(i, slash - i);
    if (!c.empty()) parts.push_back(sanitiseComponent(c));
    i = slash + 1;
  }
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out.empty() ? "_" : out;
}

std::string mirrorRelPath(std::string_view host, std::string_view input, std::string_view path,
                          uint64_t generation) {
  std::string rel =
      sanitiseComponent(host) + "/" + sanitiseComponent(input) + "/" + sanitisePath(path);
  if (generation > 0) rel += "." + std::to_string(generation);
  return rel;
}

bool safeRelPath(std::string_view rel) {
  if (rel.empty() || rel.front() == '/' || rel.size() > 4 * 1024 * 8) return false;
  size_t i = 0;
  while (i <= rel.size()) {
    size_t slash = rel.find('/', i);
    if (slash == std::string_view::npos) slash = rel.size();
    std::string_view c = rel.substr(i, slash - i);
    if (c.empty() || c == "." || c == ".." || c.size() > kMaxComponentBytes + 32) return false;
    for (char ch : c) {
      if (!keptByte(ch) && ch != '~') return false;
    }
    i = slash + 1;
  }
  return true;
}

}  // namespace logsplice::agent::collect
