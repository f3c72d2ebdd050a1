#pragma once

#include <uv.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "agent/fill_job.h"
#include "sys/uv_handle.h"

namespace logsplice::agent {

// The one thread that splices from regular files (which can block on disk reads even with
// SPLICE_F_NONBLOCK, docs/design.md K4), so a cold catch-up never stalls the loop. Jobs go in
// with submit() from the loop thread; finished jobs come back on the loop thread through a
// uv_async_t, in submission order. start/stop/close as libuv.
class IoThread {
 public:
  using DoneCallback = std::function<void(std::unique_ptr<FillJob>)>;
  IoThread(uv_loop_t* loop, DoneCallback on_done, sys::SysCalls& sys = sys::SysCalls::real());
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  sys::Error start(size_t pipe_bytes);
  void submit(std::unique_ptr<FillJob> job);
  // Asks the thread to end after the job at hand, without waiting (any thread may call it).
  void requestStop();
  // requestStop(), then joins; queued jobs come back unrun (moved == 0).
  void stop();
  void close();
  size_t inFlight() const { return in_flight_; }

 private:
  void run();
  void deliverDone();

  uv_loop_t* loop_;
  DoneCallback on_done_;
  sys::SysCalls& sys_;
  sys::Pipe src_;
  sys::UniqueFd dev_null_;
  sys::UvHandle<uv_async_t> async_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<FillJob>> todo_;  // guarded by mu_
  std::deque<std::unique_ptr<FillJob>> done_;  // guarded by mu_
  bool quit_ = false;                          // guarded by mu_
  size_t in_flight_ = 0;                       // loop thread only
};

}  // namespace logsplice::agent
