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
  // for start_at:end at start-up, the end of the file's last complete line (completeEnd(), so
  // a line being written at start-up ships whole; the partial tail is at most one line), else
  // 0 (also for every file created while the agent runs). It is always <= completeEnd(). The
  // observer may resume from its checkpoints instead. completeEnd() is already measured; when
  // it exceeds default_start, fileGrew follows at once.
  virtual void fileOpened(Follower& f, uint64_t default_start) = 0;
  // completeEnd() advanced, or a break was added. Only a hint: it may repeat without change.
  virtual void fileGrew(Follower& f) = 0;
  // The file shrank below what was seen, or its head no longer matches its fingerprint
  // (copytruncate): every cursor restarts at 0. generation() has been bumped, breaks cleared
  // and completeEnd() recomputed from 0 before the call; fileGrew follows if completeEnd() > 0.
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
