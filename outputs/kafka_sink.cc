#include "outputs/kafka_sink.h"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "config/kafka_keys.h"
#include "sys/assert.h"
#include "sys/clock.h"

namespace logsplice::outputs {
namespace {

constexpr uint64_t kSeqMask = (uint64_t{1} << 48) - 1;
constexpr uint64_t kEpochMask = 0xffff;
// Pause after a failed message before the resend: a cluster that refuses everything at once
// (no such topic) is not hammered.
constexpr uint64_t kRewindPauseMs = 1000;
// Room left in message.max.bytes for key, headers and librdkafka's record overhead.
constexpr size_t kMessageOverhead = 512;
constexpr size_t kMinValueBytes = 256;
// Messages produced between two servings of delivery reports inside one sendFramed.
constexpr unsigned kPollEveryMessages = 32;

// Errors retrying cannot cure: the event is logged, counted and passed over.
bool isPermanent(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
      return true;
    default:
      return false;
  }
}

size_t messageMaxBytes(const config::KafkaOutput& cfg) {
  size_t max = 1000000;  // librdkafka's default message.max.bytes
  for (const auto& [k, v] : cfg.librdkafka) {
    if (k == "message.max.bytes") max = std::strtoull(v.c_str(), nullptr, 10);
  }
  return std::max(max, kMinValueBytes + kMessageOverhead) - kMessageOverhead;
}

void logFromLibrdkafka(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // Called on librdkafka's threads; spdlog's logger is thread-safe. Connection trouble comes
  // once more through the error callback (deduplicated, on the loop): here it is debug only.
  if (level <= 2) {
    spdlog::error("librdkafka {} {}: {}", rd_kafka_name(rk), fac, buf);
  } else {
    spdlog::debug("librdkafka {} {}: {}", rd_kafka_name(rk), fac, buf);
  }
}

}  // namespace

EventSink::Limits KafkaSink::limitsFor(const config::KafkaOutput& cfg) {
  Limits l;
  // Framed bytes wait here only while librdkafka's queue is full.
  l.max_unwritten_bytes = std::clamp<size_t>(cfg.max_in_flight_bytes / 8, 64 * 1024, 1 << 20);
  // As many events as librdkafka's queue takes messages (queue.buffering.max.messages).
  l.max_events_in_flight = std::max<size_t>(cfg.max_in_flight_bytes / 1024, 64);
  l.read_buffer_bytes = std::min<size_t>(l.read_buffer_bytes, messageMaxBytes(cfg));
  return l;
}

KafkaSink::KafkaSink(uv_loop_t* loop, std::string name, const config::KafkaOutput& cfg,
                     const std::string& host, SinkListener& listener, size_t pipe_bytes,
                     std::unique_ptr<Framer> framer)
    : EventSink(std::move(name), listener, std::move(framer), limitsFor(cfg)),
      loop_(loop),
      cfg_(cfg),
      host_(host),
      pipe_bytes_(pipe_bytes),
      max_value_(messageMaxBytes(cfg)) {}

KafkaSink::~KafkaSink() {
  closing_ = true;
  for (auto& [n, t] : topics_) rd_kafka_topic_destroy(t);
  topics_.clear();
  if (rk_ != nullptr) {
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(rk_);
  }
}

SinkState KafkaSink::state() const {
  if (rk_ == nullptr || !running_) return SinkState::kStopped;
  if (backing_off_) return SinkState::kBackoff;
  if (brokers_up_ > 0) return SinkState::kConnected;
  return ever_up_ ? SinkState::kBackoff : SinkState::kConnecting;
}

sys::Error KafkaSink::start() {
  // librdkafka allocates each message and each of its headers separately and frees them as
  // their delivery reports are served, in order, so freed neighbours merge into large free
  // blocks; each such free makes glibc consolidate its fast bins first (about a fifth of the
  // agent's CPU with headers). Without fast bins small blocks still come from the per-thread
  // cache; the consolidation passes are gone. Process-wide, set once, harmless for the rest.
  static const bool no_fast_bins = ::mallopt(M_MXFAST, 0) == 1;
  (void)no_fast_bins;
  auto pipe = sys::Pipe::create(pipe_bytes_);
  if (!pipe.ok()) return pipe.error();
  pipe_ = std::move(pipe.value());

  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512] = {};
  for (const auto& [k, v] : config::kafkaProperties(cfg_, host_)) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return sys::Error::invalidConfig("output '" + name() + "': librdkafka: " + err);
    }
  }
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_dr_msg_cb(conf, &KafkaSink::onDelivery);
  rd_kafka_conf_set_stats_cb(conf, [](rd_kafka_t* rk, char* json, size_t len, void* opaque) {
    onStats(rk, json, len, opaque);
    return 0;  // librdkafka frees the JSON
  });
  rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t* rk, int e, const char* reason, void* opaque) {
    onError(rk, e, reason, opaque);
  });
  rd_kafka_conf_set_log_cb(conf, logFromLibrdkafka);
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    return sys::Error::invalidConfig("output '" + name() + "': librdkafka: " + err);
  }

  event_fd_ = sys::UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!event_fd_.valid()) return sys::Error::fromErrno(errno, "eventfd");
  rd_kafka_queue_t* main_queue = rd_kafka_queue_get_main(rk_);
  const uint64_t one = 1;
  rd_kafka_queue_io_event_enable(main_queue, event_fd_.get(), &one, sizeof one);
  rd_kafka_queue_destroy(main_queue);
  if (int rc = poll_.init(uv_poll_init, loop_, this, event_fd_.get()); rc != 0) {
    return sys::Error::io(std::string("uv_poll_init: ") + uv_strerror(rc));
  }
  if (int rc = backoff_timer_.init(uv_timer_init, loop_, this); rc != 0) {
    return sys::Error::io(std::string("uv_timer_init: ") + uv_strerror(rc));
  }
  uv_poll_start(poll_.get(), UV_READABLE, [](uv_poll_t* h, int, int) {
    auto* self = static_cast<KafkaSink*>(h->data);
    uint64_t count;
    while (::read(self->event_fd_.get(), &count, sizeof count) > 0) {
    }
    self->serve();
  });
  running_ = true;
  spdlog::info("output '{}': kafka producer for {} (topic '{}')", name(),
               config::kafkaProperties(cfg_, host_).front().second, cfg_.topic);
  return sys::Error::ok();
}

rd_kafka_topic_t* KafkaSink::topic(std::string_view name) {
  if (last_topic_ != nullptr && last_topic_name_ == name) return last_topic_;
  std::string key(name);
  auto it = topics_.find(key);
  if (it == topics_.end()) {
    rd_kafka_topic_t* t = rd_kafka_topic_new(rk_, key.c_str(), nullptr);
    if (t == nullptr) return nullptr;
    it = topics_.emplace(key, t).first;
  }
  last_topic_name_ = key;
  last_topic_ = it->second;
  return last_topic_;
}

KafkaSink::Outcome KafkaSink::produce(const KafkaFrame& f, uint64_t wire_end,
                                       int64_t timestamp_ms) {
  rd_kafka_topic_t* rkt = topic(f.topic);
  if (rkt == nullptr) {
    last_error_ = "cannot create topic handle '" + std::string(f.topic) +
                  "': " + rd_kafka_err2str(rd_kafka_last_error());
    return Outcome::kFailed;
  }
  // A retry after a full queue continues the entry it began.
  if (pending_.empty() || pending_.back().wire_end != wire_end) {
    pending_.push_back({wire_end, 0, false});
  }
  Pending& p = pending_.back();
  const uint64_t seq = pending_front_seq_ + pending_.size() - 1;
  const bool raw = cfg_.format == config::EventFormat::kRaw;
  do {
    size_t room = max_value_ > f.key.size() + f.path.size() + f.input.size() + host_.size()
                      ? max_value_ - f.key.size() - f.path.size() - f.input.size() - host_.size()
                      : kMinValueBytes;
    room = std::max(room, kMinValueBytes);
    const size_t len = std::min(room, f.value.size() - head_value_done_);
    char offset_text[24];
    const uint64_t offset = f.offset + (raw ? head_value_done_ : 0);
    auto [end, ec] = std::to_chars(offset_text, offset_text + sizeof offset_text, offset);
    (void)ec;
    char* value = const_cast<char*>(f.value.data()) + head_value_done_;
    const ssize_t offset_len = end - offset_text;
    // Four header allocations per message in librdkafka: the costliest part of the path
    // even without fast bins (docs/kafka.md), hence `headers: false`.
    rd_kafka_resp_err_t e =
        cfg_.headers
            ? rd_kafka_producev(
                  rk_, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                  RD_KAFKA_V_KEY(f.key.empty() ? nullptr : f.key.data(), f.key.size()),
                  RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                  RD_KAFKA_V_HEADER("host", host_.data(), static_cast<ssize_t>(host_.size())),
                  RD_KAFKA_V_HEADER("input", f.input.data(), static_cast<ssize_t>(f.input.size())),
                  RD_KAFKA_V_HEADER("path", f.path.data(), static_cast<ssize_t>(f.path.size())),
                  RD_KAFKA_V_HEADER("offset", offset_text, offset_len),
                  RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(opaqueFor(seq))), RD_KAFKA_V_END)
            : rd_kafka_producev(
                  rk_, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                  RD_KAFKA_V_KEY(f.key.empty() ? nullptr : f.key.data(), f.key.size()),
                  RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                  RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(opaqueFor(seq))), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) return Outcome::kQueueFull;
    if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && max_value_ > kMinValueBytes) {
      max_value_ = std::max(kMinValueBytes, std::min(max_value_, len) / 2);
      continue;  // cut smaller, like an over-long line
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      last_error_ = rd_kafka_err2str(e);
      return Outcome::kFailed;
    }
    size_t copied = len + f.key.size();
    if (cfg_.headers) {
      copied += host_.size() + f.input.size() + f.path.size() + static_cast<size_t>(offset_len);
    }
    stats_.bytes_copied += copied;
    sys::CopyCounter::add(copied);
    if (head_value_done_ == 0 && len < f.value.size()) ++split_events_;
    head_value_done_ += len;
    ++p.parts;
  } while (head_value_done_ < f.value.size());
  p.sealed = true;
  head_value_done_ = 0;
  return Outcome::kDone;
}

sys::SysResult KafkaSink::sendFramed(const iovec* iov, int n) {
  size_t taken = 0;
  // The messages' timestamp, read once for the batch: librdkafka would read the wall clock for
  // each message it is not given one for.
  const int64_t timestamp_ms = sys::Clock::real().unixMicros() / 1000;
  for (int i = 0; i < n; ++i) {
    const char* p = static_cast<const char*>(iov[i].iov_base);
    size_t left = iov[i].iov_len;
    while (left > 0) {
      KafkaFrame f;
      LS_ASSERT(readKafkaFrame(p, left, f), "kafka frames are appended whole");
      Outcome o = produce(f, wireWritten() + taken + f.size, timestamp_ms);
      if (o == Outcome::kQueueFull) {
        // Told again (waitWritable) once delivery reports made room.
        return taken > 0 ? sys::SysResult{static_cast<ssize_t>(taken), 0}
                         : sys::SysResult{-1, EAGAIN};
      }
      if (o == Outcome::kFailed) {
        spdlog::warn(
            "output '{}': cannot produce: {}; resending from the first undelivered "
            "event in {} ms",
            name(), last_error_, kRewindPauseMs);
        ++failed_;
        // A message partly produced stays unsealed: it is never acknowledged, and resent.
        head_value_done_ = 0;
        need_rewind_ = true;
        backing_off_ = true;
        uv_timer_start(
            backoff_timer_.get(),
            [](uv_timer_t* t) { static_cast<KafkaSink*>(t->data)->onBackoffDone(); },
            kRewindPauseMs, 0);
        return taken > 0 ? sys::SysResult{static_cast<ssize_t>(taken), 0}
                         : sys::SysResult{-1, EAGAIN};
      }
      taken += f.size;
      p += f.size;
      left -= f.size;
      if (++produced_since_poll_ == kPollEveryMessages) {
        // Delivery reports served while the rest is produced: their messages are freed while
        // still in the cache, and the memory is reused by the next ones (serving them only
        // once the batch is produced: 1.09M instead of 1.19M msg/s, ~10 MB more peak RSS).
        // Only delivered() runs here: the acknowledgement reaches EventSink in pollQueue.
        produced_since_poll_ = 0;
        rd_kafka_poll(rk_, 0);
      }
    }
  }
  return sys::SysResult{static_cast<ssize_t>(taken), 0};
}

void KafkaSink::writeFailed(int err) {
  // sendFramed reports no error but EAGAIN: nothing else can fail.
  spdlog::error("output '{}': unexpected produce failure ({})", name(), std::strerror(err));
}

void KafkaSink::onDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  static_cast<KafkaSink*>(opaque)->delivered(reinterpret_cast<uint64_t>(m->_private), m->err,
                                             m->len);
}

void KafkaSink::delivered(uint64_t opaque, rd_kafka_resp_err_t err, size_t value_len) {
  if (closing_ || (opaque >> 48) != (kepoch_ & kEpochMask)) return;  // before a rewind
  // Sequence numbers wrap at 48 bits, as the opaque carries them: the index is their
  // difference modulo 2^48 (a report for an event already popped is far out of range).
  const uint64_t index = ((opaque & kSeqMask) - pending_front_seq_) & kSeqMask;
  if (index >= pending_.size()) return;
  Pending* it = &pending_[index];
  if (it->parts == 0) return;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++delivered_;
    --it->parts;
    // A broker acknowledged: one is up, whatever the last statistics (once a second) said.
    if (brokers_up_ == 0) brokers_up_ = 1;
    ever_up_ = true;
  } else if (isPermanent(err)) {
    ++permanent_;
    --it->parts;
    // A whole batch may be refused at once: log the 1st, 2nd, 4th, 8th... with the count.
    if ((permanent_ & (permanent_ - 1)) == 0) {
      spdlog::error(
          "output '{}': a message of {} bytes was refused for good ({}) and passed "
          "over ({} so far)",
          name(), value_len, rd_kafka_err2str(err), permanent_);
    }
  } else {
    ++failed_;
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && max_value_ > kMinValueBytes) {
      // The broker's limit is below ours: values are cut smaller from now on, then resent.
      max_value_ = std::max(kMinValueBytes, std::min(max_value_, value_len) / 2);
      spdlog::warn(
          "output '{}': a message of {} bytes is too large for the broker; values are "
          "cut to {} bytes from now on",
          name(), value_len, max_value_);
    } else if (!need_rewind_) {
      spdlog::warn(
          "output '{}': delivery failed ({}); resending from the first undelivered "
          "event in {} ms",
          name(), rd_kafka_err2str(err), kRewindPauseMs);
    }
    need_rewind_ = true;
  }
  while (!pending_.empty() && pending_.front().sealed && pending_.front().parts == 0) {
    ack_to_ = pending_.front().wire_end;
    pending_.pop_front();
    ++pending_front_seq_;
  }
}

void KafkaSink::onStats(rd_kafka_t*, char* json, size_t len, void* opaque) {
  // Counts the brokers (nodeid >= 0; the bootstrap entries have -1) whose state is "UP".
  std::string_view s(json, len);
  int up = 0;
  for (size_t at = s.find("\"nodeid\":"); at != std::string_view::npos;
       at = s.find("\"nodeid\":", at + 1)) {
    const char* p = s.data() + at + 9;
    long id = std::strtol(p, nullptr, 10);
    size_t state = s.find("\"state\":\"", at);
    if (state == std::string_view::npos) break;
    if (id >= 0 && s.compare(state + 9, 3, "UP\"") == 0) ++up;
  }
  auto* self = static_cast<KafkaSink*>(opaque);
  self->brokers_up_ = up;
  if (up > 0) self->ever_up_ = true;
}

void KafkaSink::onError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaSink*>(opaque);
  const auto e = static_cast<rd_kafka_resp_err_t>(err);
  if (e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) self->brokers_up_ = 0;
  if (e == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512] = {};
    rd_kafka_fatal_error(rk, why, sizeof why);
    spdlog::critical("output '{}': librdkafka fatal error: {}", self->name(), why);
    return;
  }
  // Connection errors repeat while a broker is away: log each reason once in a row.
  if (self->last_error_ == reason) return;
  self->last_error_ = reason;
  spdlog::warn("output '{}': {} ({})", self->name(), reason, rd_kafka_err2name(e));
}

void KafkaSink::pollQueue() {
  if (rk_ == nullptr) return;
  // Bounded: a queue refilled as fast as it is served must not hold the loop.
  for (int i = 0; i < 64 && rd_kafka_poll(rk_, 0) > 0; ++i) {
  }
  if (ack_to_ > acked_wire_) {
    acked_wire_ = ack_to_;
    acknowledgedWire(ack_to_);
  }
}

void KafkaSink::serve() {
  const uint64_t acked_before = acked_wire_;
  pollQueue();
  if (need_rewind_ && !backing_off_) {
    backing_off_ = true;
    uv_timer_start(
        backoff_timer_.get(),
        [](uv_timer_t* t) { static_cast<KafkaSink*>(t->data)->onBackoffDone(); }, kRewindPauseMs,
        0);
  }
  if (canDeliver() && (acked_wire_ != acked_before || want_drain_)) drain();
}

void KafkaSink::onBackoffDone() {
  backing_off_ = false;
  if (need_rewind_) rewind();
  if (!canDeliver()) return;
  drain();
  listener_.sinkReady(*this);
}

void KafkaSink::rewind() {
  need_rewind_ = false;
  ++rewinds_;
  // Messages still queued would only arrive as duplicates of the resend: drop them (those
  // already on their way to a broker may still arrive; their reports are ignored).
  rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING);
  ++kepoch_;
  pending_.clear();
  pending_front_seq_ = 0;  // the new epoch tells the old reports apart
  head_value_done_ = 0;
  ack_to_ = acked_wire_ = 0;
  want_drain_ = false;
  rewindEvents();
}

void KafkaSink::stop() {
  if (!running_) return;
  pollQueue();  // the last reports, so the checkpoint is current
  running_ = false;
  stopEvents();
  if (backoff_timer_) uv_timer_stop(backoff_timer_.get());
  if (poll_) uv_poll_stop(poll_.get());
}

void KafkaSink::close(std::function<void()> on_closed) {
  stop();
  if (rk_ != nullptr) {
    // No flush here: the agent drained the output on the loop (agent.shutdown_timeout, the
    // reports served as they came) and wrote the checkpoint before closing it. What is still
    // undelivered is not in the checkpoint and is sent again after the restart.
    closing_ = true;
    for (auto& [n, t] : topics_) rd_kafka_topic_destroy(t);
    topics_.clear();
    last_topic_ = nullptr;
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_, 0);
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
  }
  auto pending = std::make_shared<int>(3);
  auto done = [pending, cb = std::move(on_closed)] {
    if (--*pending == 0 && cb) cb();
  };
  closeEvents(done);
  poll_.close(done);
  backoff_timer_.close(done);
}

void KafkaSink::collectMetrics(sys::MetricWriter& w) const {
  EventSink::collectMetrics(w);
  const sys::MetricLabels by_output = {{"output", name_}};
  w.counter("logsplice_kafka_messages_delivered_total",
            "Messages the brokers acknowledged for this kafka output.", by_output,
            static_cast<double>(delivered_));
  static const char* kFailedHelp =
      "Messages of this kafka output that failed (reason transient: resent; permanent: logged "
      "and passed over).";
  w.counter("logsplice_kafka_messages_failed_total", kFailedHelp,
            {{"output", name_}, {"reason", "transient"}}, static_cast<double>(failed_));
  w.counter("logsplice_kafka_messages_failed_total", kFailedHelp,
            {{"output", name_}, {"reason", "permanent"}}, static_cast<double>(permanent_));
  w.counter("logsplice_kafka_rewinds_total",
            "Times this kafka output resent from the first undelivered event.", by_output,
            static_cast<double>(rewinds_));
  w.counter("logsplice_kafka_split_events_total",
            "Events too large for one message, sent as several.", by_output,
            static_cast<double>(split_events_));
  w.gauge("logsplice_kafka_in_flight_bytes",
          "Framed bytes handed to librdkafka and not yet acknowledged.", by_output,
          static_cast<double>(inFlightBytes()));
  w.gauge("logsplice_kafka_brokers_up", "Brokers this kafka output is connected to.", by_output,
          static_cast<double>(brokers_up_));
}

}  // namespace logsplice::outputs
