#include "outputs/format/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace logsplice::outputs::format {
namespace {

// Bounds the work of one match without JIT, so that a catastrophic pattern costs a skipped
// match rather than a stalled sink. JIT code has its own bound: the size of its stack.
constexpr uint32_t kMatchLimit = 1'000'000;
constexpr size_t kJitStackMin = 32 * 1024;
constexpr size_t kJitStackMax = 512 * 1024;

}  // namespace

struct Regex::State {
  pcre2_code* code = nullptr;
  pcre2_match_data* match_data = nullptr;
  pcre2_match_context* match_context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  bool jit = false;

  ~State() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(match_context);
    pcre2_match_data_free(match_data);
    pcre2_code_free(code);
  }
};

sys::Result<Regex> Regex::compile(std::string_view pattern) {
  auto state = std::make_unique<State>();
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  state->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0,
                              &error_code, &error_offset, nullptr);
  if (state->code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return sys::Error::invalidConfig("invalid regex at offset " + std::to_string(error_offset) +
                                     ": " + reinterpret_cast<const char*>(message));
  }
  state->match_data = pcre2_match_data_create_from_pattern(state->code, nullptr);
  state->match_context = pcre2_match_context_create(nullptr);
  if (state->match_data == nullptr || state->match_context == nullptr) {
    return sys::Error::io("pcre2: out of memory");
  }
  pcre2_set_match_limit(state->match_context, kMatchLimit);
  // No JIT support compiled in, or no executable memory (a hardened kernel): interpret.
  if (pcre2_jit_compile(state->code, PCRE2_JIT_COMPLETE) == 0) {
    state->jit_stack = pcre2_jit_stack_create(kJitStackMin, kJitStackMax, nullptr);
    if (state->jit_stack != nullptr) {
      pcre2_jit_stack_assign(state->match_context, nullptr, state->jit_stack);
      state->jit = true;
    }
  }
  return Regex(std::move(state));
}

Regex::Regex(std::unique_ptr<State> state) : state_(std::move(state)) {}
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

bool Regex::jit() const {
  return state_->jit;
}

bool Regex::matches(std::string_view subject) {
  // PCRE2 before 10.43 refuses a null subject even when empty.
  const char* bytes = subject.data() != nullptr ? subject.data() : "";
  auto* data = reinterpret_cast<PCRE2_SPTR>(bytes);
  int rc = state_->jit ? pcre2_jit_match(state_->code, data, subject.size(), 0, 0,
                                         state_->match_data, state_->match_context)
                       : pcre2_match(state_->code, data, subject.size(), 0, 0, state_->match_data,
                                     state_->match_context);
  return rc >= 0;
}

}  // namespace logsplice::outputs::format
