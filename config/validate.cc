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
      for (size_t i = 0; i < output.inputs.size(); ++i) {
        const std::string& input = output.inputs[i];
        // At the list item, like every other error; the output's own mark when not parsed.
        const Mark& at = i < output.input_marks.size() ? output.input_marks[i] : output.mark;
        if (input_names.count(input) == 0) {
          error(at, label + " routes from unknown input '" + input + "'");
        } else if (!routed.insert(input).second) {
          error(at, label + " lists input '" + input + "' more than once");
        }
      }
      const TcpOutput* tcp = std::get_if<TcpOutput>(&output.kind);
      if (const auto* ls = std::get_if<LogspliceOutput>(&output.kind)) tcp = &ls->tcp;
      if (const auto* relp = std::get_if<RelpOutput>(&output.kind)) tcp = &relp->tcp;
      if (tcp != nullptr) {
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

}  // namespace logsplice::config
