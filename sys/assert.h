#pragma once

#include <cstdio>
#include <cstdlib>

// LS_ASSERT(cond, message): for states that cannot happen unless the code is wrong. Unlike
// assert() it stays on in release builds: a log shipper that goes on with a broken invariant
// loses or duplicates data silently, so it stops with the place and the message instead (and
// systemd restarts it from its checkpoints). Not for anything the world can cause (bad input,
// I/O errors): those are sys::Error.
#define LS_ASSERT(cond, message)                                                   \
  do {                                                                             \
    if (!(cond)) ::logsplice::sys::assertFailed(#cond, message, __FILE__, __LINE__); \
  } while (0)

// LS_CHECK_UV(expr): a libuv call that cannot fail with a valid loop (uv_timer_init,
// uv_signal_init, uv_async_init): abort with libuv's reason if it does.
#define LS_CHECK_UV(expr)                                                                \
  do {                                                                                   \
    int ls_uv_rc_ = (expr);                                                              \
    if (ls_uv_rc_ != 0) ::logsplice::sys::assertFailed(#expr, ::uv_strerror(ls_uv_rc_), \
                                                       __FILE__, __LINE__);              \
  } while (0)

namespace logsplice::sys {

[[noreturn]] inline void assertFailed(const char* cond, const char* message, const char* file,
                                      int line) {
  std::fprintf(stderr, "logsplice: internal error at %s:%d: %s (%s)\n", file, line, message,
               cond);
  std::fflush(stderr);
  std::abort();
}

}  // namespace logsplice::sys
