#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "outputs/sink.h"

namespace logsplice::outputs {

// What a framer keeps per input routed to its output (encoder, topic...), found by a line's
// SourceInfo. The entry of the previous line is cached by its SourceInfo, so a run of lines of
// one file costs no lookup. `T` holds a `config::InputConfig input` (owned: encoders view its
// name and fields); entries keep their addresses.
template <class T>
class PerInputCache {
 public:
  T& add(std::unique_ptr<T> per) {
    items_.push_back(std::move(per));
    return *items_.back();
  }

  // The entry of `source`'s input. For an input the output was not built for (a route added
  // since) `make(config::InputConfig)` builds one that knows only the input's name.
  template <class Make>
  T& of(const SourceInfo* source, Make&& make) {
    static const std::string kNone;
    const std::string& name = source ? source->input : kNone;
    // The pointer alone could name a new SourceInfo at a freed one's address: the name decides.
    if (source == cached_source_ && cached_ != nullptr && cached_->input.name == name) {
      return *cached_;
    }
    T* found = nullptr;
    for (auto& per : items_) {
      if (per->input.name == name) {
        found = per.get();
        break;
      }
    }
    if (found == nullptr) {
      config::InputConfig in;
      in.name = name;
      found = &add(make(std::move(in)));
    }
    cached_source_ = source;
    cached_ = found;
    return *found;
  }

 private:
  std::vector<std::unique_ptr<T>> items_;
  const SourceInfo* cached_source_ = nullptr;
  T* cached_ = nullptr;
};

}  // namespace logsplice::outputs
