#pragma once

// A strict reader of the flat JSON objects the JSON formatter writes (string, integer and true
// values), for tests: it refuses what RFC 8259 refuses (raw control characters in strings,
// unknown escapes, invalid UTF-8, trailing bytes), so a formatter bug fails the test.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "outputs/format/utf8.h"

namespace logsplice::outputs::format::test {

struct JsonValue {
  enum Kind { kString, kNumber, kTrue } kind = kString;
  std::string text;  // decoded string, or the number's digits
};

using JsonObject = std::vector<std::pair<std::string, JsonValue>>;

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : s_(text) {}

  // The object, or nullopt when `text` is not exactly one object followed by '\n'.
  std::optional<JsonObject> object() {
    if (utf8::validPrefix(s_) != s_.size()) return std::nullopt;
    JsonObject out;
    if (!eat('{')) return std::nullopt;
    if (!eat('}')) {
      do {
        std::optional<std::string> key = string();
        if (!key || !eat(':')) return std::nullopt;
        std::optional<JsonValue> v = value();
        if (!v) return std::nullopt;
        out.emplace_back(std::move(*key), std::move(*v));
      } while (eat(','));
      if (!eat('}')) return std::nullopt;
    }
    if (!eat('\n') || i_ != s_.size()) return std::nullopt;
    return out;
  }

 private:
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  std::optional<JsonValue> value() {
    if (i_ < s_.size() && s_[i_] == '"') {
      std::optional<std::string> str = string();
      if (!str) return std::nullopt;
      return JsonValue{JsonValue::kString, *str};
    }
    if (s_.substr(i_, 4) == "true") {
      i_ += 4;
      return JsonValue{JsonValue::kTrue, "true"};
    }
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    if (i_ == start) return std::nullopt;
    return JsonValue{JsonValue::kNumber, std::string(s_.substr(start, i_ - start))};
  }

  static void putUtf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::optional<uint32_t> hex4() {
    if (i_ + 4 > s_.size()) return std::nullopt;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return std::nullopt;
    }
    return v;
  }

  std::optional<std::string> string() {
    if (!eat('"')) return std::nullopt;
    std::string out;
    while (i_ < s_.size()) {
      auto c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return out;
      if (c < 0x20) return std::nullopt;  // must be escaped
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (i_ >= s_.size()) return std::nullopt;
      char e = s_[i_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          std::optional<uint32_t> cp = hex4();
          if (!cp || (*cp >= 0xD800 && *cp <= 0xDFFF)) return std::nullopt;  // we never pair
          putUtf8(*cp, out);
          break;
        }
        default:
          return std::nullopt;
      }
    }
    return std::nullopt;
  }

  std::string_view s_;
  size_t i_ = 0;
};

inline const JsonValue* find(const JsonObject& object, std::string_view key) {
  for (const auto& [k, v] : object) {
    if (k == key) return &v;
  }
  return nullptr;
}

}  // namespace logsplice::outputs::format::test
