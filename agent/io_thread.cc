#include "agent/io_thread.h"
#include "sys/assert.h"

#include <fcntl.h>

namespace logsplice::agent {

IoThread::IoThread(uv_loop_t* loop, DoneCallback on_done, sys::SysCalls& sys)
    : loop_(loop), on_done_(std::move(on_done)), sys_(sys) {}

IoThread::~IoThread() {
  stop();
  close();
}

sys::Error IoThread::start(size_t pipe_bytes) {
  auto src = sys::Pipe::create(pipe_bytes);
  if (!src.ok()) return src.error();
  src_ = std::move(src.value());
  dev_null_.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (!dev_null_) return sys::Error::fromErrno(errno, "/dev/null");
  LS_CHECK_UV(async_.init(uv_async_init, loop_, this, [](uv_async_t* a) {
    static_cast<IoThread*>(a->data)->deliverDone();
  }));
  thread_ = std::thread([this] { run(); });
  return sys::Error::ok();
}

void IoThread::submit(std::unique_ptr<FillJob> job) {
  ++in_flight_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    todo_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void IoThread::run() {
  for (;;) {
    std::unique_ptr<FillJob> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return quit_ || !todo_.empty(); });
      if (quit_) return;
      job = std::move(todo_.front());
      todo_.pop_front();
    }
    executeFill(sys_, *job, src_, dev_null_.get());
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back(std::move(job));
    }
    uv_async_send(async_.get());
  }
}

void IoThread::deliverDone() {
  std::deque<std::unique_ptr<FillJob>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(done_);
  }
  for (auto& job : done) {
    --in_flight_;
    on_done_(std::move(job));
  }
}

void IoThread::requestStop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_.notify_one();
}

void IoThread::stop() {
  if (!thread_.joinable()) return;
  requestStop();
  thread_.join();
  // Jobs never run come back with nothing moved, so the router's bookkeeping stays exact.
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& job : todo_) done_.push_back(std::move(job));
  todo_.clear();
}

void IoThread::close() {
  if (!async_) return;
  deliverDone();
  async_.close();
}

}  // namespace logsplice::agent
