#pragma once

#include <uv.h>

#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "outputs/stream_sink.h"
#include "sys/clock.h"
#include "sys/sys_calls.h"
#include "sys/unique_fd.h"
#include "sys/uv_handle.h"

namespace logsplice::outputs {

// Appends the lines of its inputs to files under `dir` (layout in archive_naming.h) by splice
// from its pipe. Archive files are opened without O_APPEND, which splice refuses; the sink keeps
// each file's write offset. Files rotate by size and age; fsync per policy. A full disk or a
// permission error pauses this sink alone (logged once) and it retries every second; delivery
// (and so the checkpoint) only advances over bytes written, and with `fsync: interval` only over
// bytes fdatasync'ed. A failed fdatasync is logged and counted and pauses the sink like a full
// disk; on resume the files whose sync failed are closed and everything not yet delivered is
// written again into new files (after a failed fdatasync the kernel may have dropped the dirty
// pages, so a later fdatasync of the same file proves nothing). A filesystem that refuses
// splice switches the sink to read/write, counted as copied bytes. Archive names and rotation
// read the injected clock. Loop thread only.
class ArchiveSink : public StreamSink {
 public:
  ArchiveSink(uv_loop_t* loop, std::string name, const config::ArchiveOutput& cfg,
              SinkListener& listener, size_t pipe_bytes,
              sys::SysCalls& sys = sys::SysCalls::real(), sys::Clock& clock = sys::Clock::real());
  ~ArchiveSink() override;

  SinkState state() const override { return paused_ ? SinkState::kPaused : state_; }
  sys::Error start() override;
  void stop() override;
  void close(std::function<void()> on_closed) override;
  // Closes idle files, rotates by age, fsyncs by policy. Called by its own timer every second.
  void tick();
  // Paths of the archive files open now (tests, status).
  std::vector<std::string> openFiles() const;
  // fdatasync calls that failed (each also counts as a pause).
  uint64_t syncFailures() const { return sync_failures_; }

 protected:
  void drain() override;
  bool canDeliver() const override { return state_ == SinkState::kConnected && !paused_; }

 private:
  struct OpenFile {
    sys::UniqueFd fd;
    std::string path;
    uint64_t offset = 0;
    uint64_t opened_ms = 0;      // clock_.monotonicMs()
    uint64_t last_write_ms = 0;
    bool dirty = false;       // written since the last fsync
    bool sync_failed = false;  // an fdatasync failed: its content is suspect
    bool at_line_end = true;  // rotation waits for a line end, so no line spans two files
  };
  sys::Result<OpenFile*> fileFor(const Segment& seg);
  sys::Error openNew(const std::string& key, const Segment& seg);
  // Closes f, fdatasync'ing it first when the policy asks; false when that sync failed.
  bool closeFile(OpenFile& f);
  // fdatasync of f's dirty bytes; a failure is logged, counted and pauses the sink.
  bool syncFile(OpenFile& f);
  // fdatasyncs every dirty file; then, if all succeeded, everything written is delivered.
  void syncAndDeliver();
  // After a failed fdatasync: forgets the suspect files and resends what was not delivered.
  void recoverFromSyncFailure();
  bool deliverOnWrite() const { return cfg_.fsync != config::FsyncPolicy::kInterval; }
  // Closes least recently written files until fewer than the cap are open.
  void makeRoom();
  void pause(const sys::Error& why);
  // Moves up to len bytes from the pipe into f with read/write (the copy fallback).
  sys::Result<size_t> copyToFile(OpenFile& f, size_t len);

  uv_loop_t* loop_;
  config::ArchiveOutput cfg_;
  size_t pipe_bytes_;
  sys::Clock& clock_;
  SinkState state_ = SinkState::kStopped;
  bool paused_ = false;
  bool pause_logged_ = false;
  bool copy_mode_ = false;
  bool sync_failed_ = false;  // paused by a failed fdatasync
  uint64_t sync_failures_ = 0;
  std::string carry_;  // copy fallback: bytes read from the pipe, not yet written
  std::map<std::string, OpenFile> files_;  // key: input '\0' source name; fd may be closed
  size_t open_count_ = 0;                  // entries of files_ with an open fd
  sys::UvHandle<uv_timer_t> timer_;
};

}  // namespace logsplice::outputs
