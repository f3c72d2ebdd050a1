#include "config/validate.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <filesystem>
#include <map>
#include <set>

#include "config/event_keys.h"

namespace logsplice::config {
namespace {

std::string markText(const Mark& mark) {
  return std::to_string(mark.line) + ":" + std::to_string(mark.column);
}

std::string formatMillis(Millis ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + "s";
  return std::to_string(ms.count()) + "ms";
}

// Two spellings of one directory ("/a/b/", "/a//b", "/a/./b") must count as the same resource.
std::string normalizeDir(const std::string& dir) {
  std::string out = std::filesystem::path(dir).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

bool isHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool looksLikeIpv4(std::string_view host) {
  for (char c : host) {
    if (!((c >= '0' && c <= '9') || c == '.')) return false;
  }
  return true;
}

class Validator {
 public:
  explicit Validator(const Config& config) : config_(config) {}

  std::vector<ConfigError> run() {
    checkInputNames();
    checkOutputs();
    validateEventOutputs(config_, errors_);
    return std::move(errors_);
  }

 private:
  void error(const Mark& mark, std::string message) {
    errors_.push_back(ConfigError{config_.source_path, mark, std::move(message)});
  }

  void checkInputNames() {
    std::map<std::string, Mark> seen;
    for (const InputConfig& input : config_.inputs) {
      if (input.name.empty()) continue;  // the parser reported the missing name
      auto [it, inserted] = seen.emplace(input.name, input.mark);
      if (!inserted) {
        error(input.mark, "duplicate input name '" + input.name + "' (first defined at " +
                              markText(it->second) + ")");
      }
    }
  }

  void checkOutputs() {
    std::set<std::string> input_names;
    for (const InputConfig& input : config_.inputs) input_names.insert(input.name);
    std::map<std::string, Mark> names;
    std::map<std::string, const OutputConfig*> archive_dirs;
    for (const OutputConfig& output : config_.outputs) {
      if (!output.name.empty()) {
        auto [it, inserted] = names.emplace(output.name, output.mark);
        if (!inserted) {
          error(output.mark, "duplicate output name '" + output.name + "' (first defined at " +
                                 markText(it->second) + ")");
        }
      }
      std::string label = output.name.empty() ? "output" : "output '" + output.name + "'";
      std::set<std::string> routed;
      for (const std::string& input : output.inputs) {
        if (input_names.count(input) == 0) {
          error(output.mark, label + " routes from unknown input '" + input + "'");
        } else if (!routed.insert(input).second) {
          error(output.mark, label + " lists input '" + input + "' more than once");
        }
      }
      if (const auto* tcp = std::get_if<TcpOutput>(&output.kind)) {
        if (tcp->backoff.initial > tcp->backoff.max) {
          error(output.mark, "'backoff.initial' (" + formatMillis(tcp->backoff.initial) +
                                 ") is greater than 'backoff.max' (" +
                                 formatMillis(tcp->backoff.max) + ") in " + label);
        }
      } else if (const auto* archive = std::get_if<ArchiveOutput>(&output.kind)) {
        if (archive->dir.empty()) continue;  // the parser reported it
        auto [it, inserted] = archive_dirs.emplace(normalizeDir(archive->dir), &output);
        if (!inserted) {
          const OutputConfig& first = *it->second;
          error(output.mark, label + " writes to archive dir '" + archive->dir +
                                 "', already used by output '" + first.name + "' (at " +
                                 markText(first.mark) + ")");
        }
      }
    }
  }

  const Config& config_;
  std::vector<ConfigError> errors_;
};

}  // namespace

std::vector<ConfigError> validateConfig(const Config& config) {
  return Validator(config).run();
}

sys::Result<HostPort> parseHostPort(std::string_view text, bool allow_port_zero) {
  const std::string quoted = "'" + std::string(text) + "'";
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return sys::Error::invalidConfig("address " + quoted + " has no port (expected host:port)");
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  HostPort out;
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return sys::Error::invalidConfig("address " + quoted +
                                       " has a bad IPv6 part (expected [addr]:port)");
    }
    out.host = std::string(host.substr(1, host.size() - 2));
    in6_addr addr6{};
    if (inet_pton(AF_INET6, out.host.c_str(), &addr6) != 1) {
      return sys::Error::invalidConfig("address " + quoted + ": '" + out.host +
                                       "' is not an IPv6 address");
    }
  } else {
    if (host.empty()) {
      return sys::Error::invalidConfig("address " + quoted + " has no host (expected host:port)");
    }
    if (host.find(':') != std::string_view::npos) {
      return sys::Error::invalidConfig("address " + quoted +
                                       ": IPv6 addresses need brackets, e.g. [::1]:5140");
    }
    for (char c : host) {
      if (!isHostChar(c)) {
        return sys::Error::invalidConfig("address " + quoted + ": '" + std::string(host) +
                                         "' is not a valid host name or IP address");
      }
    }
    out.host = std::string(host);
    in_addr addr4{};
    if (looksLikeIpv4(host) && inet_pton(AF_INET, out.host.c_str(), &addr4) != 1) {
      return sys::Error::invalidConfig("address " + quoted + ": '" + out.host +
                                       "' is not a valid IPv4 address");
    }
  }
  const char* range = allow_port_zero ? "0..65535" : "1..65535";
  if (port_text.empty()) {
    return sys::Error::invalidConfig("address " + quoted + " has no port (expected host:port)");
  }
  uint64_t port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec == std::errc::result_out_of_range) port = UINT64_MAX;
  if (ec == std::errc::invalid_argument || ptr != port_text.data() + port_text.size()) {
    return sys::Error::invalidConfig("address " + quoted + ": port '" + std::string(port_text) +
                                     "' is not a number");
  }
  if (port > 65535 || (port == 0 && !allow_port_zero)) {
    return sys::Error::invalidConfig("address " + quoted + ": port " + std::string(port_text) +
                                     " is out of range (" + range + ")");
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

}  // namespace logsplice::config
