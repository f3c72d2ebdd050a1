#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "outputs/format/multiline.h"
#include "outputs/format/regex.h"
#include "outputs/framer.h"
#include "sys/clock.h"
#include "sys/error.h"

namespace logsplice::outputs {

// The step of an event sink between lines and events for inputs with `multiline`: the lines of
// each file go through that file's MultilineAssembler, and what it emits is an event. Lines of
// other inputs do not come here (each line is then an event).
//
// The assemblers are kept per file (id and generation), created on a file's first line and
// dropped as soon as they hold nothing (an event out by timeout, a rewind), so thousands of
// quiet files cost nothing. A pending event is the sink's business to keep exact: its lines are
// read out of the pipe but not delivered, and a rewind resends from its first line (pending()
// and forEachPending() say where).
//
// Loop thread only. The sink calls flushIdle() from a timer while anything is pending().
class MultilineStage {
 public:
  // What the stage emits, in order per file.
  class Output {
   public:
    virtual ~Output() = default;
    // One event: `event.bytes` the lines joined, `event.offset` == begin; [begin, end) the file
    // offsets it covers. `complete` is false when `end` is inside a line (a piece of a line
    // longer than the sink's buffer): the event must not count as delivered on its own.
    virtual void multilineEvent(const LineView& event, uint64_t begin, uint64_t end,
                                bool complete) = 0;
  };

  struct Rule;

  // The stage of the inputs in `inputs` that have `multiline`, or null when none has. A pattern
  // that does not compile is an error (config/ checks them first).
  static sys::Result<std::unique_ptr<MultilineStage>> create(
      const std::vector<config::InputConfig>& inputs, sys::Clock& clock = sys::Clock::real());
  ~MultilineStage();

  // The rule of the line's input, or null when its lines are events as they are. One-entry
  // cache on the SourceInfo.
  Rule* ruleFor(const SourceInfo* source);
  // Reads the clock once for the lines that follow.
  void beginBatch();
  // One line, or a piece of one: `end` is the file offset just past it (its '\n' included, or
  // the break); `continues` when it does not begin a line of the file (it follows a piece);
  // `ends_line` false when more of the same line follows (a buffer piece).
  // `source` is line.source, kept for an event the timer emits.
  void push(Rule& rule, const LineView& line, const std::shared_ptr<const SourceInfo>& source,
            uint64_t end, bool continues, bool ends_line, Output& out);
  // Emits the events idle for their input's timeout; drops the emptied assemblers.
  void flushIdle(Output& out);
  bool pending() const { return !files_.empty(); }
  // The shortest timeout of the rules: how often the sink's timer should look.
  std::chrono::milliseconds shortestTimeout() const { return shortest_timeout_; }
  // (file id, generation, file offset of the pending event's first line) of every file with a
  // pending event.
  template <class F>
  void forEachPending(F&& f) const {
    for (const auto& [id, file] : files_) {
      if (file.assembler->pending()) f(id, file.generation, file.assembler->pendingBegin());
    }
  }
  // Forgets every pending event (the router resends their lines).
  void reset() { files_.clear(); }

 private:
  struct File {
    uint64_t generation = 0;
    std::unique_ptr<format::MultilineAssembler> assembler;
    std::shared_ptr<const SourceInfo> source;  // for the events emitted by timeout
    uint64_t midline_end = UINT64_MAX;         // `end` of the last push if inside a line
  };
  MultilineStage(std::vector<std::unique_ptr<Rule>> rules, sys::Clock& clock);
  void emit(uint64_t file_id, const File& file, const format::MultilineEvent& e,
            uint64_t prev_midline, Output& out);

  std::vector<std::unique_ptr<Rule>> rules_;
  sys::Clock& clock_;
  std::chrono::milliseconds shortest_timeout_{1000};
  std::unordered_map<uint64_t, File> files_;  // files with a pending event
  bool cached_ = false;
  const SourceInfo* cached_source_ = nullptr;
  std::string cached_name_;
  Rule* cached_rule_ = nullptr;
  format::MultilineAssembler::Clock::time_point now_{};
};

}  // namespace logsplice::outputs
