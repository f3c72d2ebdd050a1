#include "config/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <system_error>

#include "sys/error.h"
#include "config/units.h"

namespace logsplice::config {
namespace {

// "a, b or c", for the list of accepted values in an error message.
std::string joinChoices(const std::vector<std::string_view>& choices) {
  std::string out;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) out += (i + 1 == choices.size()) ? " or " : ", ";
    out += choices[i];
  }
  return out;
}

std::string formatMillis(Millis ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + "s";
  return std::to_string(ms.count()) + "ms";
}

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The closest allowed key to a misspelt one, or "" when none is close enough to suggest.
std::string_view closestKey(std::string_view key, const std::vector<KeyList>& allowed) {
  size_t limit = key.size() <= 4 ? 1 : 2;
  std::string_view best;
  size_t best_distance = limit + 1;
  for (KeyList list : allowed) {
    for (std::string_view candidate : list) {
      size_t d = editDistance(key, candidate);
      if (d < best_distance) {
        best = candidate;
        best_distance = d;
      }
    }
  }
  return best;
}

bool contains(KeyList list, std::string_view key) {
  return std::find(list.begin(), list.end(), key) != list.end();
}

}  // namespace

Mark toMark(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return Mark{};
  return Mark{mark.line + 1, mark.column + 1};
}

std::string markText(const Mark& mark) {
  return std::to_string(mark.line) + ":" + std::to_string(mark.column);
}

std::string quote(std::string_view s) {
  return "'" + std::string(s) + "'";
}

YAML::Node peek(const YAML::Node& map, std::string_view key) {
  if (!map.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& kv : map) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

void YamlReader::error(const Mark& mark, std::string message) {
  errors_.push_back(ConfigError{file_, mark, std::move(message)});
}

Fields YamlReader::readMap(const YAML::Node& map, KeyList allowed, const std::string& where,
                           std::string prefix, std::vector<KeyList> extra_allowed, KeyList foreign,
                           std::string_view foreign_owner) {
  Fields fields(map, std::move(prefix));
  extra_allowed.insert(extra_allowed.begin(), allowed);
  for (const auto& kv : map) {
    const YAML::Node& key_node = kv.first;
    if (!key_node.IsScalar()) {
      error(toMark(key_node.Mark()), "keys must be plain strings " + where);
      continue;
    }
    const std::string& key = key_node.Scalar();
    Field field{key, key_node, kv.second};
    if (const Field* first = fields.find(key)) {
      error(keyMark(field), "duplicate key " + quote(key) + " " + where + " (first at " +
                                markText(keyMark(*first)) + ")");
      continue;
    }
    bool known = std::any_of(extra_allowed.begin(), extra_allowed.end(),
                             [&](KeyList list) { return contains(list, key); });
    if (!known) {
      std::string message = "unknown key " + quote(key) + " " + where;
      if (contains(foreign, key)) {
        message += " (only " + std::string(foreign_owner) + " outputs take it)";
      } else if (std::string_view hint = closestKey(key, extra_allowed); !hint.empty()) {
        message += " (did you mean " + quote(hint) + "?)";
      }
      error(keyMark(field), std::move(message));
      continue;
    }
    fields.add(std::move(field));
  }
  return fields;
}

std::optional<Fields> YamlReader::subMap(const Fields& parent, std::string_view key,
                                         KeyList allowed, const std::string& where,
                                         const std::string& prefix) {
  const Field* f = parent.find(key);
  if (f == nullptr) return std::nullopt;
  if (!f->value.IsMap()) {
    error(valueMark(*f), parent.label(key) + " must be a map");
    return std::nullopt;
  }
  return readMap(f->value, allowed, where, prefix);
}

bool YamlReader::require(const Fields& fields, std::string_view key, const std::string& where) {
  if (fields.find(key) != nullptr) return true;
  error(toMark(fields.map().Mark()), "missing required key " + quote(key) + " " + where);
  return false;
}

const Field* YamlReader::scalar(const Fields& fields, std::string_view key,
                                std::string_view expected) {
  const Field* f = fields.find(key);
  if (f == nullptr) return nullptr;
  if (!f->value.IsScalar()) {
    error(valueMark(*f), fields.label(key) + " must be " + std::string(expected));
    return nullptr;
  }
  return f;
}

void YamlReader::readString(const Fields& fields, std::string_view key, std::string& out,
                            bool allow_empty) {
  const Field* f = scalar(fields, key, "a string");
  if (f == nullptr) return;
  if (f->value.Scalar().empty() && !allow_empty) {
    error(valueMark(*f), fields.label(key) + " must not be empty");
    return;
  }
  out = f->value.Scalar();
}

void YamlReader::readBool(const Fields& fields, std::string_view key, bool& out) {
  const Field* f = scalar(fields, key, "true or false");
  if (f == nullptr) return;
  std::string text = f->value.Scalar();
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (text == "true") {
    out = true;
  } else if (text == "false") {
    out = false;
  } else {
    error(valueMark(*f),
          fields.label(key) + " must be true or false, not " + quote(f->value.Scalar()));
  }
}

void YamlReader::readSize(const Fields& fields, std::string_view key, uint64_t& out, uint64_t min) {
  const Field* f = scalar(fields, key, "a size such as 64KiB");
  if (f == nullptr) return;
  sys::Result<uint64_t> size = parseSize(f->value.Scalar());
  if (!size.ok()) {
    error(valueMark(*f), fields.label(key) + ": " + size.error().context());
  } else if (size.value() < min) {
    error(valueMark(*f), fields.label(key) + " must be at least " + std::to_string(min) +
                             (min == 1 ? " byte" : " bytes"));
  } else {
    out = size.value();
  }
}

void YamlReader::readDuration(const Fields& fields, std::string_view key, Millis& out, Millis min) {
  const Field* f = scalar(fields, key, "a duration such as 5s");
  if (f == nullptr) return;
  sys::Result<Millis> duration = parseDuration(f->value.Scalar());
  if (!duration.ok()) {
    error(valueMark(*f), fields.label(key) + ": " + duration.error().context());
  } else if (duration.value() < min) {
    error(valueMark(*f),
          fields.label(key) + (min == Millis(1) ? " must be greater than zero"
                                                : " must be at least " + formatMillis(min)));
  } else {
    out = duration.value();
  }
}

void YamlReader::readCount(const Fields& fields, std::string_view key, uint64_t& out,
                           uint64_t min) {
  const Field* f = scalar(fields, key, "a whole number");
  if (f == nullptr) return;
  const std::string& text = f->value.Scalar();
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    error(valueMark(*f), fields.label(key) + " must be a whole number, not " + quote(text));
  } else if (value < min) {
    error(valueMark(*f), fields.label(key) + " must be at least " + std::to_string(min));
  } else {
    out = value;
  }
}

void YamlReader::readAddress(const Fields& fields, std::string_view key,
                             std::optional<sys::HostPort>& out) {
  const Field* f = scalar(fields, key, "a host:port address");
  if (f == nullptr) return;
  sys::Result<sys::HostPort> address =
      sys::parseHostPort(f->value.Scalar(), /*allow_port_zero=*/true);
  if (!address.ok()) {
    error(valueMark(*f), fields.label(key) + ": " + address.error().context());
    return;
  }
  out = std::move(address.value());
}

std::optional<size_t> YamlReader::readChoice(const Fields& fields, std::string_view key,
                                             const std::vector<std::string_view>& names) {
  const Field* f = scalar(fields, key, "one of " + joinChoices(names));
  if (f == nullptr) return std::nullopt;
  for (size_t i = 0; i < names.size(); ++i) {
    if (f->value.Scalar() == names[i]) return i;
  }
  error(valueMark(*f), fields.label(key) + ": invalid value " + quote(f->value.Scalar()) +
                           " (expected " + joinChoices(names) + ")");
  return std::nullopt;
}

void YamlReader::readStringList(const Fields& fields, std::string_view key,
                                std::vector<std::string>& out, ItemCheck check,
                                std::vector<Mark>* marks) {
  const Field* f = fields.find(key);
  if (f == nullptr) return;
  if (!f->value.IsSequence()) {
    error(valueMark(*f), fields.label(key) + " must be a list of strings");
    return;
  }
  std::vector<std::string> items;
  std::vector<Mark> item_marks;
  for (const YAML::Node& item : f->value) {
    if (!item.IsScalar()) {
      error(item.IsNull() ? valueMark(*f) : toMark(item.Mark()),
            fields.label(key) + " must be a list of strings");
      continue;
    }
    if (item.Scalar().empty()) {
      error(toMark(item.Mark()), fields.label(key) + " must not contain empty strings");
      continue;
    }
    if (check != nullptr) {
      if (std::string problem = check(item.Scalar()); !problem.empty()) {
        error(toMark(item.Mark()), fields.label(key) + ": " + problem);
        continue;
      }
    }
    items.push_back(item.Scalar());
    item_marks.push_back(toMark(item.Mark()));
  }
  out = std::move(items);
  if (marks != nullptr) *marks = std::move(item_marks);
}

}  // namespace logsplice::config
