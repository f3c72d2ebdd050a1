#include "sys/uv_handle.h"

#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>

#include "sys/unique_fd.h"

namespace logsplice::sys {
namespace {

struct LoopFixture {
  uv_loop_t loop{};
  LoopFixture() { uv_loop_init(&loop); }
  ~LoopFixture() {
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(uv_loop_close(&loop) == 0);  // every handle was closed and freed
  }
};

TEST_CASE("UvHandle: close(cb) calls back only after libuv has closed the handle") {
  LoopFixture f;
  UvHandle<uv_timer_t> t;
  REQUIRE(t.init(uv_timer_init, &f.loop, nullptr) == 0);
  bool closed = false;
  t.close([&] { closed = true; });
  CHECK_FALSE(t);
  CHECK_FALSE(closed);  // libuv runs close callbacks on the next loop iteration
  uv_run(&f.loop, UV_RUN_DEFAULT);
  CHECK(closed);
}

TEST_CASE("UvHandle: close(cb) without a handle calls back at once") {
  UvHandle<uv_timer_t> t;
  bool closed = false;
  t.close([&] { closed = true; });
  CHECK(closed);
}

TEST_CASE("UvHandle: a failed init frees the memory and leaves no handle") {
  LoopFixture f;
  UvHandle<uv_poll_t> p;
  int rc = p.init(uv_poll_init, &f.loop, nullptr, -1);  // not a descriptor
  CHECK(rc != 0);
  CHECK_FALSE(p);
}

TEST_CASE("UvHandle: moving the owner keeps the handle and its data") {
  LoopFixture f;
  int marker = 0;
  UvHandle<uv_timer_t> a;
  REQUIRE(a.init(uv_timer_init, &f.loop, &marker) == 0);
  uv_timer_t* raw = a.get();
  UvHandle<uv_timer_t> b(std::move(a));
  CHECK_FALSE(a);
  CHECK(b.get() == raw);
  CHECK(b.get()->data == &marker);
}

// The member-order rule of uv_handle.h: declared after the descriptor it polls, the poll is
// closed (uv_close stops it) while the descriptor is still open. A stand-in for the descriptor
// records, as it is destroyed, whether the poll had already been closed.
struct RecordingFd {
  UniqueFd fd;
  uv_poll_t* watched = nullptr;
  bool* poll_closed_first = nullptr;
  ~RecordingFd() {
    *poll_closed_first = uv_is_closing(reinterpret_cast<uv_handle_t*>(watched)) != 0;
  }
};
struct PollOwner {
  RecordingFd fd;
  UvHandle<uv_poll_t> poll;  // after fd: destroyed first
};

TEST_CASE("UvHandle: declared after its fd, a poll is stopped before the fd closes") {
  LoopFixture f;
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
  UniqueFd write_end(fds[1]);
  bool poll_closed_first = false;
  {
    PollOwner owner;
    owner.fd.fd.reset(fds[0]);
    owner.fd.poll_closed_first = &poll_closed_first;
    REQUIRE(owner.poll.init(uv_poll_init, &f.loop, nullptr, fds[0]) == 0);
    owner.fd.watched = owner.poll.get();
    REQUIRE(uv_poll_start(owner.poll.get(), UV_READABLE, [](uv_poll_t*, int, int) {}) == 0);
  }
  CHECK(poll_closed_first);
}

}  // namespace
}  // namespace logsplice::sys
