#pragma once

// Plays the router for one event sink in the outputs tests: writes each segment's bytes (with
// an owed '\n' before and an added '\n' after, when asked) into the sink's pipe, then calls
// appended() with the matching Segment. Files are numbered; each has one shared SourceInfo.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>

#include "outputs/sink.h"

namespace logsplice::testing {

struct EventFeeder {
  std::map<uint64_t, std::shared_ptr<const outputs::SourceInfo>> sources;
  uint64_t fed = 0;  // stream bytes put into the pipe

  // The source of file `file_id`: input `input`, path /var/log/<input>/file<id>.log.
  std::shared_ptr<const outputs::SourceInfo> source(uint64_t file_id, const std::string& input) {
    auto& src = sources[file_id];
    if (!src) {
      std::string name = "file" + std::to_string(file_id) + ".log";
      src = std::make_shared<const outputs::SourceInfo>(
          outputs::SourceInfo{input, "/var/log/" + input + "/" + name, name});
    }
    return src;
  }
  static std::string pathOf(uint64_t file_id, const std::string& input) {
    return "/var/log/" + input + "/file" + std::to_string(file_id) + ".log";
  }

  void feed(outputs::Sink& sink, uint64_t file_id, const std::string& input, uint64_t offset,
            const std::string& bytes, uint32_t newline = 0, bool newline_first = false,
            uint64_t generation = 0) {
    std::string stream = (newline_first ? "\n" : "") + bytes + (newline ? "\n" : "");
    size_t done = 0;
    while (done < stream.size()) {
      ssize_t n = ::write(sink.pipe().writeFd(), stream.data() + done, stream.size() - done);
      REQUIRE(n > 0);
      done += static_cast<size_t>(n);
    }
    fed += stream.size();
    outputs::Segment seg;
    seg.file_id = file_id;
    seg.generation = generation;
    seg.offset = offset;
    seg.length = bytes.size();
    seg.newline = newline;
    seg.newline_first = newline_first;
    seg.ends_line = newline || (!bytes.empty() && bytes.back() == '\n');
    seg.source = source(file_id, input);
    sink.appended(seg);
  }
};

}  // namespace logsplice::testing
