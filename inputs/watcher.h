#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sys/error.h"

namespace logsplice::inputs {

// What a Watcher reports. Implemented by Discovery; called on the loop thread only.
class WatchHandler {
 public:
  enum class Kind : uint8_t {
    kContent,  // IN_MODIFY / IN_CLOSE_WRITE / IN_ATTRIB, or a changed stat while polling
    kCreated,  // IN_CREATE / IN_MOVED_TO, or a new name while polling
    kRemoved,  // IN_DELETE / IN_MOVED_FROM, or a name gone while polling
  };
  struct Event {
    std::string dir;
    std::string name;  // empty: the directory itself (deleted or moved)
    Kind kind = Kind::kContent;
    bool is_dir = false;
    uint32_t cookie = 0;  // inotify rename cookie (pairs MOVED_FROM with MOVED_TO), 0 if none
  };
  virtual ~WatchHandler() = default;
  // A batch of changes, in the order seen. Treat each as "something may have changed": never
  // count events.
  virtual void changed(const std::vector<Event>& events) = 0;
  // Events were lost (IN_Q_OVERFLOW): everything must be re-derived by a full rescan.
  virtual void overflowed() = 0;
};

// Watches a set of directories and reports changes of their entries (not recursive: each
// directory is added explicitly). Two backends, chosen per directory by Discovery when the
// directory is added: InotifyWatcher (events) and PollWatcher (stat polling). Loop thread only;
// the loop and the handler must outlive it. Verbs as libuv: start, stop, close.
class Watcher {
 public:
  virtual ~Watcher() = default;
  // Starts watching `dir`. kNoSpace: out of inotify watches (the caller falls back to polling).
  virtual sys::Error watchDir(const std::string& dir) = 0;
  virtual void unwatchDir(const std::string& dir) = 0;
  virtual bool watches(const std::string& dir) const = 0;
  virtual size_t watchedCount() const = 0;
  virtual void start() = 0;
  virtual void stop() = 0;
  // Closes the libuv handles; on_closed runs from the last close callback. The watcher may be
  // destroyed after that (or at once: its handles then free themselves).
  virtual void close(std::function<void()> on_closed) = 0;
};

}  // namespace logsplice::inputs
