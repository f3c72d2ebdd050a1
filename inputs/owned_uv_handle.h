#pragma once

#include <uv.h>

#include <functional>
#include <utility>

namespace logsplice::inputs {

// Owns one heap-allocated libuv handle and frees it only in its close callback (libuv's rule).
// Unlike a bare RAII wrapper it reports when the close has completed, which close(cb) of the
// inputs needs so that uv_loop_close() succeeds afterwards. The handle's `data` belongs to the
// owner. Destroying an open OwnedUvHandle closes it without a callback. Loop thread only.
template <class T>
class OwnedUvHandle {
 public:
  OwnedUvHandle() = default;
  OwnedUvHandle(const OwnedUvHandle&) = delete;
  OwnedUvHandle& operator=(const OwnedUvHandle&) = delete;
  ~OwnedUvHandle() { close({}); }

  // Allocates the handle and runs `init` (uv_timer_init, uv_poll_init...) on it. On failure the
  // memory is freed at once (an uninitialised handle is never passed to uv_close).
  int init(const std::function<int(T*)>& init, void* data) {
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
  T* get() const { return box_ ? &box_->handle : nullptr; }
  explicit operator bool() const { return box_ != nullptr; }

  // uv_close now (which also stops it); on_closed runs from the close callback once the memory
  // is freed. Without a handle, on_closed runs at once.
  void close(std::function<void()> on_closed) {
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
    T handle;  // first member: &box->handle is the uv handle libuv sees
    std::function<void()> on_closed;
  };
  Box* box_ = nullptr;
};

}  // namespace logsplice::inputs
