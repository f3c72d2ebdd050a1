#include "outputs/multiline_stage.h"

#include <algorithm>

namespace logsplice::outputs {

struct MultilineStage::Rule {
  std::string input;
  format::Regex start;
  format::MultilineOptions options;
};

sys::Result<std::unique_ptr<MultilineStage>> MultilineStage::create(
    const std::vector<config::InputConfig>& inputs, sys::Clock& clock) {
  std::vector<std::unique_ptr<Rule>> rules;
  for (const config::InputConfig& in : inputs) {
    if (!in.multiline) continue;
    auto regex = format::Regex::compile(in.multiline->start_pattern);
    if (!regex.ok()) {
      return sys::Error::invalidConfig("input '" + in.name +
                                       "': multiline.start_pattern: " + regex.error().toString());
    }
    format::MultilineOptions options;
    options.timeout = in.multiline->timeout;
    options.max_bytes = in.multiline->max_bytes;
    rules.push_back(std::make_unique<Rule>(Rule{in.name, std::move(regex.value()), options}));
  }
  if (rules.empty()) return std::unique_ptr<MultilineStage>();
  return std::unique_ptr<MultilineStage>(new MultilineStage(std::move(rules), clock));
}

MultilineStage::MultilineStage(std::vector<std::unique_ptr<Rule>> rules, sys::Clock& clock)
    : rules_(std::move(rules)), clock_(clock) {
  shortest_timeout_ = rules_.front()->options.timeout;
  for (const auto& r : rules_) shortest_timeout_ = std::min(shortest_timeout_, r->options.timeout);
  beginBatch();
}

MultilineStage::~MultilineStage() = default;

MultilineStage::Rule* MultilineStage::ruleFor(const SourceInfo* source) {
  static const std::string kNone;
  const std::string& name = source ? source->input : kNone;
  // The pointer alone could name a new SourceInfo at a freed one's address: the name decides.
  if (cached_ && source == cached_source_ && cached_name_ == name) return cached_rule_;
  Rule* found = nullptr;
  for (auto& r : rules_) {
    if (r->input == name) found = r.get();
  }
  cached_ = true;
  cached_source_ = source;
  cached_name_ = name;
  cached_rule_ = found;
  return found;
}

void MultilineStage::beginBatch() {
  now_ = format::MultilineAssembler::Clock::time_point(
      std::chrono::milliseconds(clock_.monotonicMs()));
}

void MultilineStage::emit(uint64_t file_id, const File& file, const format::MultilineEvent& e,
                          uint64_t prev_midline, Output& out) {
  LineView v;
  v.bytes = e.text;
  v.file_id = file_id;
  v.generation = file.generation;
  v.offset = e.begin;
  v.source = file.source.get();
  bool complete = e.end != prev_midline && e.end != file.midline_end;
  v.piece = e.partial() || !complete;
  out.multilineEvent(v, e.begin, e.end, complete);
}

void MultilineStage::push(Rule& rule, const LineView& line,
                          const std::shared_ptr<const SourceInfo>& source, uint64_t end,
                          bool continues, bool ends_line, Output& out) {
  auto [it, added] = files_.try_emplace(line.file_id);
  File& file = it->second;
  if (!added && file.generation != line.generation) {
    // The file was truncated: what was pending belongs to the old content; it goes out as it is.
    const uint64_t id = line.file_id;
    file.assembler->flush(
        [&](const format::MultilineEvent& e) { emit(id, file, e, UINT64_MAX, out); });
    added = true;
  }
  if (added) {
    file.generation = line.generation;
    file.assembler = std::make_unique<format::MultilineAssembler>(rule.start, rule.options);
    file.midline_end = UINT64_MAX;
  }
  file.source = source;
  const uint64_t prev_midline = file.midline_end;
  file.midline_end = ends_line ? UINT64_MAX : end;
  const uint64_t id = line.file_id;
  file.assembler->push(
      line.bytes, line.offset, end, now_,
      [&](const format::MultilineEvent& e) { emit(id, file, e, prev_midline, out); }, continues);
  if (!file.assembler->pending()) files_.erase(it);
}

void MultilineStage::flushIdle(Output& out) {
  for (auto it = files_.begin(); it != files_.end();) {
    File& file = it->second;
    const uint64_t id = it->first;
    file.assembler->flushIdle(
        now_, [&](const format::MultilineEvent& e) { emit(id, file, e, UINT64_MAX, out); });
    it = file.assembler->pending() ? std::next(it) : files_.erase(it);
  }
}

}  // namespace logsplice::outputs
