#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sys/error.h"

namespace logsplice::outputs::format {

// A compiled PCRE2 pattern (UTF mode off: log lines are bytes) and what matching it needs: JIT
// code when the platform has it (pcre2_jit_match on a private JIT stack), pcre2_match with a
// match limit otherwise. One per user of it; matching is not thread-safe (one match data).
class Regex {
 public:
  // Compiles `pattern`; an error names the offset in the pattern PCRE2 stopped at.
  static sys::Result<Regex> compile(std::string_view pattern);

  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

  // Whether the pattern matches somewhere in `subject` (anchor it with ^ to test the start).
  // A match error (limit reached on a pathological pattern) counts as no match.
  bool matches(std::string_view subject);

  bool jit() const;  // JIT code is in use

 private:
  struct State;
  explicit Regex(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace logsplice::outputs::format
