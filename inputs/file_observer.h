#pragma once

#include <cstdint>

namespace logsplice::inputs {

class Follower;

// What the inputs tell the router. Implemented by agent/Router; called on the loop thread only.
// A Follower passed here stays valid until fileClosing() for it has returned.
class FileObserver {
 public:
  virtual ~FileObserver() = default;

  // A file starts being followed. default_start is where a sink with no checkpoint begins:
  // the file's size for start_at:end at start-up, else 0 (also for every file created while
  // the agent runs). The observer may resume from its checkpoints instead.
  virtual void fileOpened(Follower& f, uint64_t default_start) = 0;
  // completeEnd() advanced, or a break was added.
  virtual void fileGrew(Follower& f) = 0;
  // The file shrank below what was seen (copytruncate): every cursor restarts at 0.
  // generation() has been bumped before the call.
  virtual void fileTruncated(Follower& f) = 0;
  // Whether every sink routed this file has shipped everything up to completeEnd() and nothing
  // is in flight. A rotated or deleted follower closes only once this is true (or retention
  // runs out); an idle live one may then be suspended to stay under max_open_files.
  virtual bool fileDrained(const Follower& f) const = 0;
  // The follower is about to close for good (drained, or retention exceeded: the router then
  // counts the bytes each lagging sink misses).
  virtual void fileClosing(Follower& f) = 0;
};

}  // namespace logsplice::inputs
