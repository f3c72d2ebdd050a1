#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace logsplice::outputs {

// Jittered exponential backoff ("full jitter"): the n-th delay is uniform in
// [initial * 2^n / 2, initial * 2^n], capped at max. reset() after a success.
class Backoff {
 public:
  using Millis = std::chrono::milliseconds;
  Backoff(Millis initial, Millis max, uint64_t seed = std::random_device{}())
      : initial_(initial), max_(max), rng_(seed) {}

  Millis next() {
    uint64_t base = static_cast<uint64_t>(initial_.count());
    uint64_t cap = static_cast<uint64_t>(max_.count());
    uint64_t ceiling = attempt_ >= 40 ? cap : std::min(cap, base << attempt_);
    ++attempt_;
    std::uniform_int_distribution<uint64_t> dist(ceiling / 2, std::max<uint64_t>(ceiling, 1));
    return Millis(dist(rng_));
  }
  void reset() { attempt_ = 0; }
  uint32_t attempts() const { return attempt_; }

 private:
  Millis initial_;
  Millis max_;
  uint32_t attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace logsplice::outputs
