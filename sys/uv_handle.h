#pragma once

#include <uv.h>

#include <functional>
#include <utility>

namespace logsplice::sys {

// Owns one heap-allocated libuv handle. libuv's rule: a handle's memory may be freed only in or
// after its close callback, so close() calls uv_close and the memory is freed in the callback;
// close(cb) runs cb once that has happened (what a component's own close(cb) needs, so that
// uv_loop_close() succeeds afterwards). Destroying an open handle closes it without a callback.
// `data` belongs to the owner. Loop thread only.
//
// Member order: C++ destroys members in reverse order of declaration, so declare a UvHandle
// *after* the UniqueFd it polls: the handle is then destroyed (uv_close, which stops the poll)
// before the descriptor is closed. tests/unit/sys/uv_handle_test.cc checks the rule.
template <class T>
class UvHandle {
 public:
  UvHandle() = default;
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  // The handle itself lives on the heap, so moving the owner moves only the pointer.
  UvHandle(UvHandle&& o) noexcept : box_(std::exchange(o.box_, nullptr)) {}
  UvHandle& operator=(UvHandle&& o) noexcept {
    if (this != &o) {
      close({});
      box_ = std::exchange(o.box_, nullptr);
    }
    return *this;
  }
  ~UvHandle() { close({}); }

  // Allocates the handle and runs `init` (a uv_*_init call) on it, then sets handle->data. On
  // failure the memory is freed at once (an uninitialised handle is never passed to uv_close)
  // and the libuv error is returned.
  [[nodiscard]] int init(const std::function<int(T*)>& init, void* data) {
    close({});
    auto* box = new Box{};
    int rc = init(&box->handle);
    if (rc != 0) {
      delete box;
      return rc;
    }
    box->handle.data = data;
    box_ = box;
    return 0;
  }
  // The usual case: `timer_.init(uv_timer_init, loop, this)`, `poll_.init(uv_poll_init_socket,
  // loop, this, fd)`.
  template <class Fn, class... Args>
  [[nodiscard]] int init(Fn fn, uv_loop_t* loop, void* data, Args... args) {
    return init([&](T* h) { return fn(loop, h, args...); }, data);
  }

  T* get() const { return box_ ? &box_->handle : nullptr; }
  explicit operator bool() const { return box_ != nullptr; }

  // uv_close now (which also stops the handle); on_closed runs from the close callback once the
  // memory is freed. Without a handle, on_closed runs at once.
  void close(std::function<void()> on_closed = {}) {
    Box* box = std::exchange(box_, nullptr);
    if (box == nullptr) {
      if (on_closed) on_closed();
      return;
    }
    box->on_closed = std::move(on_closed);
    box->handle.data = box;
    uv_close(reinterpret_cast<uv_handle_t*>(&box->handle), [](uv_handle_t* h) {
      auto* b = static_cast<Box*>(h->data);
      std::function<void()> cb = std::move(b->on_closed);
      delete b;
      if (cb) cb();
    });
  }

 private:
  struct Box {
    T handle;  // first member: &box->handle is the handle libuv sees
    std::function<void()> on_closed;
  };
  Box* box_ = nullptr;
};

}  // namespace logsplice::sys
