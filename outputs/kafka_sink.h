#pragma once

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "outputs/event_sink.h"
#include "outputs/kafka_framer.h"
#include "sys/unique_fd.h"
#include "sys/uv_handle.h"

namespace logsplice::outputs {

// Events to a Kafka cluster through librdkafka, one message per event (docs/kafka.md). It is an
// EventSink: lines are read out of the pipe and framed by a KafkaFramer, and sendFramed cuts the
// framed bytes back into messages and hands each to rd_kafka_producev (librdkafka copies it:
// every byte copied in is counted in bytes_copied). Each message carries the sequence number
// of its framed event as its opaque, so its delivery report finds the event in O(1) (an index
// into the queue of pending events, not a search); the contiguous prefix of delivered events
// (reports come out of order across partitions) is reported with acknowledgedWire(), which
// advances each file's checkpoint over whole events only.
//
// Delivery reports reach the loop through an eventfd librdkafka writes to when its main queue
// becomes non-empty (rd_kafka_queue_io_event_enable), polled with uv_poll; rd_kafka_poll(rk, 0)
// then serves them. No thread of ours, no blocking call on the loop.
//
// Memory: librdkafka's queue is bounded by max_in_flight_bytes (queue.buffering.max.kbytes and
// .messages); when it is full producev says so, the framed bytes wait, the event sink stops
// reading its pipe, the pipe fills and the router stops filling it: during an outage the file
// is the buffer.
//
// Shutdown: the agent's drain phase (agent.shutdown_timeout) serves delivery reports as they
// come; close() then purges what is left and destroys the producer without waiting.
//
// Failures: a message that fails after librdkafka's own retries (message.timeout.ms passed,
// a retriable error) rewinds the output to the first undelivered event of each file, after a
// one-second pause (at-least-once: what was delivered behind it is sent again). A message the
// broker finds too large makes the output cut values to half that size from then on and
// resend. Permanent errors (authorisation, an invalid record) are logged with librdkafka's
// reason and counted, and the event is passed over: retrying cannot succeed.
class KafkaSink : public EventSink {
 public:
  KafkaSink(uv_loop_t* loop, std::string name, const config::KafkaOutput& cfg,
            const std::string& host, SinkListener& listener, size_t pipe_bytes,
            std::unique_ptr<Framer> framer);
  ~KafkaSink() override;

  // The EventSink limits that match max_in_flight_bytes.
  static Limits limitsFor(const config::KafkaOutput& cfg);

  SinkState state() const override;
  sys::Error start() override;
  void stop() override;
  void close(std::function<void()> on_closed) override;
  void refreshDelivery() override { serve(); }
  void collectMetrics(sys::MetricWriter& w) const override;

  // Serves librdkafka's queue now (delivery reports, statistics, errors) and acts on them.
  void serve();

  uint64_t messagesDelivered() const { return delivered_; }
  uint64_t messagesFailed() const { return failed_; }
  uint64_t messagesPermanentFailed() const { return permanent_; }
  uint64_t rewinds() const { return rewinds_; }
  int brokersUp() const { return brokers_up_; }
  uint64_t inFlightBytes() const { return wireWritten() - acked_wire_; }
  size_t maxValueBytes() const { return max_value_; }

 protected:
  bool canDeliver() const override { return rk_ != nullptr && running_ && !backing_off_; }
  int outFd() const override { return -1; }
  void waitWritable(bool on) override { want_drain_ = on; }
  void writeFailed(int err) override;
  sys::SysResult sendFramed(const iovec* iov, int n) override;
  void pollAcknowledged() override { pollQueue(); }

 private:
  // One framed event handed to librdkafka (as one message, or several pieces of its value).
  struct Pending {
    uint64_t wire_end;
    uint32_t parts;  // messages produced and not yet reported
    bool sealed;     // every piece is produced
  };
  enum class Outcome { kDone, kQueueFull, kFailed };

  static void onDelivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
  static void onStats(rd_kafka_t*, char* json, size_t len, void* opaque);
  static void onError(rd_kafka_t*, int err, const char* reason, void* opaque);

  // Produces what is left of `f`'s value from `head_value_done_` on, in pieces of at most
  // max_value_ bytes, stamped `timestamp_ms` (Unix milliseconds).
  Outcome produce(const KafkaFrame& f, uint64_t wire_end, int64_t timestamp_ms);
  rd_kafka_topic_t* topic(std::string_view name);
  void delivered(uint64_t opaque, rd_kafka_resp_err_t err, size_t value_len);
  // rd_kafka_poll until the queue is empty; acts on nothing that changes the event queue but
  // acknowledgements.
  void pollQueue();
  void rewind();
  void onBackoffDone();
  // The epoch (16 bits) and the pending event's sequence number (48 bits).
  uint64_t opaqueFor(uint64_t seq) const {
    return (kepoch_ << 48) | (seq & ((uint64_t{1} << 48) - 1));
  }

  uv_loop_t* loop_;
  config::KafkaOutput cfg_;
  std::string host_;
  size_t pipe_bytes_;
  rd_kafka_t* rk_ = nullptr;
  std::unordered_map<std::string, rd_kafka_topic_t*> topics_;
  std::string last_topic_name_;
  rd_kafka_topic_t* last_topic_ = nullptr;
  sys::UniqueFd event_fd_;
  sys::UvHandle<uv_poll_t> poll_;  // after event_fd_: closed first
  sys::UvHandle<uv_timer_t> backoff_timer_;

  bool running_ = false;
  bool backing_off_ = false;
  bool want_drain_ = false;
  bool need_rewind_ = false;
  bool closing_ = false;
  uint64_t kepoch_ = 0;          // bumped at each rewind (16 bits in the opaque)
  std::deque<Pending> pending_;     // in wire order
  uint64_t pending_front_seq_ = 0;  // sequence number of pending_.front()
  size_t head_value_done_ = 0;   // value bytes of the first unsent frame already produced
  unsigned produced_since_poll_ = 0;  // messages since sendFramed last served reports
  uint64_t ack_to_ = 0;          // wire position the delivered prefix reaches
  uint64_t acked_wire_ = 0;      // ... as reported to the event sink
  size_t max_value_;             // value bytes per message

  uint64_t delivered_ = 0;
  uint64_t failed_ = 0;
  uint64_t permanent_ = 0;
  uint64_t rewinds_ = 0;
  uint64_t split_events_ = 0;
  int brokers_up_ = 0;
  bool ever_up_ = false;
  std::string last_error_;
};

}  // namespace logsplice::outputs
