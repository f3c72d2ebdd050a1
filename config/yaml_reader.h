#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sys/host_port.h"
#include "config/config.h"

namespace logsplice::config {

// The generic layer under the config parser: it reads typed values out of YAML maps and
// collects every problem as a ConfigError (file:line:col) instead of stopping at the first.
// What the keys mean, and which keys each section takes, is the parser's business (parse.cc).

using KeyList = std::span<const std::string_view>;

template <class T>
using EnumTable = std::span<const std::pair<std::string_view, T>>;

// yaml-cpp's 0-based mark as a 1-based Mark; an unknown Mark when yaml-cpp has none.
Mark toMark(const YAML::Mark& mark);
// "line:col"
std::string markText(const Mark& mark);
// "'s'"
std::string quote(std::string_view s);

// The value of `key` in a map node without touching yaml-cpp's operator[] (which may insert or
// throw); an invalid (zombie) node when absent.
YAML::Node peek(const YAML::Node& map, std::string_view key);

// One `key: value` entry of a YAML map.
struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// The accepted entries of one YAML map, after unknown and repeated keys were reported. `prefix`
// qualifies key names in messages ("rotate." for `rotate.max_bytes`).
class Fields {
 public:
  Fields(YAML::Node map, std::string prefix) : map_(std::move(map)), prefix_(std::move(prefix)) {}

  void add(Field field) { entries_.push_back(std::move(field)); }
  const Field* find(std::string_view key) const {
    for (const Field& f : entries_) {
      if (f.key == key) return &f;
    }
    return nullptr;
  }
  // "'rotate.max_bytes'"
  std::string label(std::string_view key) const { return quote(prefix_ + std::string(key)); }
  const YAML::Node& map() const { return map_; }

 private:
  YAML::Node map_;
  std::string prefix_;
  std::vector<Field> entries_;
};

// Reads the values of one config file, collecting errors that name `file`. Each read* leaves
// `out` untouched when the key is absent or its value is wrong (the default stays).
class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  void error(const Mark& mark, std::string message);
  std::vector<ConfigError>& errors() { return errors_; }
  // The config file's name as given (relative paths in it are resolved against its directory).
  const std::string& file() const { return file_; }

  static Mark keyMark(const Field& f) { return toMark(f.key_node.Mark()); }
  // Where to point for a problem with a value: the value itself, or its key when the value is
  // empty (yaml-cpp gives an empty value the position of the next token).
  static Mark valueMark(const Field& f) {
    return f.value.IsNull() ? keyMark(f) : toMark(f.value.Mark());
  }

  // Reports unknown and repeated keys of `map` and returns the entries whose key is in `allowed`
  // (or in one of `extra_allowed`). Keys in `foreign` belong to another output type; they get a
  // message saying which (`foreign_owner`).
  Fields readMap(const YAML::Node& map, KeyList allowed, const std::string& where,
                 std::string prefix, std::vector<KeyList> extra_allowed = {}, KeyList foreign = {},
                 std::string_view foreign_owner = {});

  // The map under `key`, with its own keys checked; nullopt when absent or not a map.
  std::optional<Fields> subMap(const Fields& parent, std::string_view key, KeyList allowed,
                               const std::string& where, const std::string& prefix);

  // True when `key` is present; reports it missing otherwise.
  bool require(const Fields& fields, std::string_view key, const std::string& where);

  // The field for `key` when present and a scalar; reports a wrong type otherwise.
  const Field* scalar(const Fields& fields, std::string_view key, std::string_view expected);

  void readString(const Fields& fields, std::string_view key, std::string& out,
                  bool allow_empty = false);
  void readBool(const Fields& fields, std::string_view key, bool& out);
  // A size such as 64KiB (config/units.h), at least `min` bytes.
  void readSize(const Fields& fields, std::string_view key, uint64_t& out, uint64_t min);
  // A duration such as 5s (config/units.h), at least `min`.
  void readDuration(const Fields& fields, std::string_view key, Millis& out, Millis min);
  // A whole number, at least `min`.
  void readCount(const Fields& fields, std::string_view key, uint64_t& out, uint64_t min);
  // A host:port address; port 0 is allowed (any free port).
  void readAddress(const Fields& fields, std::string_view key, std::optional<sys::HostPort>& out);

  // One of the names in `table`.
  template <class T>
  void readEnum(const Fields& fields, std::string_view key, EnumTable<T> table, T& out) {
    std::vector<std::string_view> names;
    for (const auto& entry : table) names.push_back(entry.first);
    if (std::optional<size_t> index = readChoice(fields, key, names)) out = table[*index].second;
  }

  // Returns the error message for a bad list item, or "" when it is fine.
  using ItemCheck = std::string (*)(const std::string& item);

  // A list of non-empty strings. `check`, when given, returns an error message for a bad item.
  // `marks`, when given, receives where each kept item was written.
  void readStringList(const Fields& fields, std::string_view key, std::vector<std::string>& out,
                      ItemCheck check = nullptr, std::vector<Mark>* marks = nullptr);

 private:
  // The index in `names` of the value of `key`; reports a wrong type or an unknown name.
  std::optional<size_t> readChoice(const Fields& fields, std::string_view key,
                                   const std::vector<std::string_view>& names);

  std::string file_;
  std::vector<ConfigError> errors_;
};

}  // namespace logsplice::config
