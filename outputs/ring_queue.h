#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "sys/assert.h"

namespace logsplice::outputs {

// A FIFO over one growable array: push at the back, pop at the front, no allocation once it
// has grown to its working size (std::deque allocates a block every few elements, which showed
// at 5% of an event sink's CPU). Capacity doubles when full and never shrinks; the owner bounds
// the size (an event sink's max_events_in_flight).
template <class T>
class RingQueue {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  void clear() {
    head_ = 0;
    size_ = 0;
  }
  void push_back(T value) {
    if (size_ == slots_.size()) grow();
    slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(value);
    ++size_;
  }
  T& front() {
    LS_ASSERT(size_ > 0, "front() of an empty RingQueue");
    return slots_[head_];
  }
  T& back() {
    LS_ASSERT(size_ > 0, "back() of an empty RingQueue");
    return slots_[(head_ + size_ - 1) & (slots_.size() - 1)];
  }
  void pop_front() {
    LS_ASSERT(size_ > 0, "pop_front() of an empty RingQueue");
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
  }
  // In queue order.
  template <class F>
  void forEach(F&& f) const {
    for (size_t i = 0; i < size_; ++i) f(slots_[(head_ + i) & (slots_.size() - 1)]);
  }

 private:
  void grow() {
    std::vector<T> bigger(slots_.empty() ? 64 : slots_.size() * 2);
    for (size_t i = 0; i < size_; ++i) bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    slots_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<T> slots_;  // size is 0 or a power of two
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace logsplice::outputs
