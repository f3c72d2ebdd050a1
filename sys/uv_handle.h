#pragma once

#include <uv.h>

#include <utility>

namespace logsplice::sys {

// Owns one heap-allocated libuv handle. libuv's rule: a handle's memory may be freed only in or
// after its close callback, so the destructor (or close()) calls uv_close and the memory is
// freed in the callback. `data` stays free for the owner's back pointer. Loop thread only.
// Put it *before* the UniqueFd it polls in a class, so that the poll stops first on destruction.
template <class T>
class UvHandle {
 public:
  UvHandle() = default;
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  UvHandle(UvHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  UvHandle& operator=(UvHandle&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~UvHandle() { close(); }

  // Allocates the handle; the caller then runs uv_*_init on get().
  T* allocate() {
    close();
    h_ = new T{};
    return h_;
  }
  T* get() const { return h_; }
  explicit operator bool() const { return h_ != nullptr; }

  // Closes (stops) the handle now; its memory is freed in the close callback.
  void close() {
    T* h = std::exchange(h_, nullptr);
    if (!h) return;
    auto* base = reinterpret_cast<uv_handle_t*>(h);
    base->data = nullptr;
    if (uv_is_closing(base)) return;
    uv_close(base, [](uv_handle_t* p) { delete reinterpret_cast<T*>(p); });
  }

 private:
  T* h_ = nullptr;
};

}  // namespace logsplice::sys
