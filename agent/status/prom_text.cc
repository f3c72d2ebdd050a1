#include "agent/status/prom_text.h"

#include <cassert>
#include <charconv>
#include <cmath>
#include <limits>

namespace logsplice::agent {

namespace {

bool isNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool isNameChar(char c) {
  return isNameStart(c) || (c >= '0' && c <= '9');
}

const char* typeName(PromType type) {
  switch (type) {
    case PromType::kCounter:
      return "counter";
    case PromType::kGauge:
      return "gauge";
    case PromType::kUntyped:
      return "untyped";
  }
  return "untyped";
}

// A cursor over one line of the text format.
class LineParser {
 public:
  explicit LineParser(std::string_view line) : s_(line) {}

  void skipBlanks() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  bool atEnd() const { return pos_ >= s_.size(); }
  bool consume(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  // Metric names may also contain ':' (recording rules); label names may not.
  std::string_view name(bool allow_colon) {
    size_t start = pos_;
    while (pos_ < s_.size() &&
           (pos_ == start ? (isNameStart(s_[pos_]) || (allow_colon && s_[pos_] == ':'))
                          : (isNameChar(s_[pos_]) || (allow_colon && s_[pos_] == ':')))) {
      ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }
  // A double-quoted label value with \\, \" and \n escapes. Returns false on a syntax error.
  bool quoted(std::string& out) {
    if (!consume('"')) return false;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) return false;
      char e = s_[pos_++];
      switch (e) {
        case '\\':
          out.push_back('\\');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'n':
          out.push_back('\n');
          break;
        default:
          return false;
      }
    }
    return false;  // unterminated
  }
  std::string_view token() {
    size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != ' ' && s_[pos_] != '\t') ++pos_;
    return s_.substr(start, pos_ - start);
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

bool parseValue(std::string_view tok, double& out) {
  if (tok == "NaN") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (tok == "+Inf" || tok == "Inf") {
    out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (tok == "-Inf") {
    out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (!tok.empty() && tok.front() == '+') tok.remove_prefix(1);
  if (tok.empty()) return false;
  auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), out);
  return ec == std::errc() && end == tok.data() + tok.size();
}

sys::Error lineError(size_t line_no, const std::string& what) {
  return sys::Error::corrupt("metrics line " + std::to_string(line_no) + ": " + what);
}

}  // namespace

bool isValidPromMetricName(std::string_view name) {
  if (name.empty() || !(isNameStart(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!isNameChar(c) && c != ':') return false;
  }
  return true;
}

bool isValidPromLabelName(std::string_view name) {
  if (name.empty() || !isNameStart(name[0])) return false;
  for (char c : name) {
    if (!isNameChar(c)) return false;
  }
  return true;
}

std::string escapePromLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string escapePromHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string formatPromValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Counters and gauges are mostly integers: print them without an exponent while exact.
  constexpr double kExactLimit = 9007199254740992.0;  // 2^53
  if (value == std::trunc(value) && std::fabs(value) < kExactLimit) {
    return std::to_string(static_cast<int64_t>(value));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  assert(ec == std::errc());
  return std::string(buf, end);
}

void PromTextBuilder::family(std::string_view name, std::string_view help, PromType type) {
  assert(isValidPromMetricName(name));
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escapePromHelp(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += typeName(type);
  out_ += '\n';
}

void PromTextBuilder::sample(std::string_view name, const PromLabels& labels, double value) {
  assert(isValidPromMetricName(name));
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    bool first = true;
    for (const auto& [key, val] : labels) {
      assert(isValidPromLabelName(key));
      if (!first) out_ += ',';
      first = false;
      out_ += key;
      out_ += "=\"";
      out_ += escapePromLabelValue(val);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += formatPromValue(value);
  out_ += '\n';
}

void PromTextBuilder::single(std::string_view name, std::string_view help, PromType type,
                             double value) {
  family(name, help, type);
  sample(name, {}, value);
}

const std::string& PromSample::label(const std::string& key) const {
  static const std::string kEmpty;
  auto it = labels.find(key);
  return it == labels.end() ? kEmpty : it->second;
}

sys::Result<std::vector<PromSample>> parsePromText(std::string_view text) {
  std::vector<PromSample> samples;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    LineParser p(line);
    p.skipBlanks();
    if (p.atEnd() || p.consume('#')) continue;  // blank, comment, HELP or TYPE

    PromSample sample;
    std::string_view name = p.name(/*allow_colon=*/true);
    if (name.empty()) return lineError(line_no, "expected a metric name");
    sample.name = std::string(name);
    p.skipBlanks();
    if (p.consume('{')) {
      for (;;) {
        p.skipBlanks();
        if (p.consume('}')) break;
        std::string_view key = p.name(/*allow_colon=*/false);
        if (key.empty()) return lineError(line_no, "expected a label name");
        p.skipBlanks();
        if (!p.consume('=')) return lineError(line_no, "expected '=' after label name");
        p.skipBlanks();
        std::string value;
        if (!p.quoted(value)) return lineError(line_no, "bad label value");
        sample.labels[std::string(key)] = std::move(value);
        p.skipBlanks();
        if (p.consume(',')) continue;
        if (p.consume('}')) break;
        return lineError(line_no, "expected ',' or '}' in labels");
      }
      p.skipBlanks();
    }
    std::string_view value_tok = p.token();
    if (!parseValue(value_tok, sample.value)) {
      return lineError(line_no, "bad sample value '" + std::string(value_tok) + "'");
    }
    p.skipBlanks();
    if (!p.atEnd()) {
      std::string_view ts = p.token();  // optional timestamp in ms, ignored
      int64_t ignored = 0;
      auto [end, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), ignored);
      if (ec != std::errc() || end != ts.data() + ts.size()) {
        return lineError(line_no, "unexpected text after value");
      }
      p.skipBlanks();
      if (!p.atEnd()) return lineError(line_no, "unexpected text after timestamp");
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

}  // namespace logsplice::agent
