#include "agent/agent.h"

#include <dirent.h>
#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "outputs/archive_sink.h"
#include "outputs/tcp_sink.h"

namespace logsplice::agent {
namespace {

constexpr uint64_t kShutdownTickMs = 20;
constexpr uint64_t kNewFileCheckpointMs = 20;

Agent* self(void* data) {
  return static_cast<Agent*>(data);
}

size_t countOpenFds() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
    n = n >= 3 ? n - 3 : 0;  // ".", ".." and the directory's own fd
  }
  return n;
}

std::string escapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

sys::Error setupLogging(const std::string& level, const std::string& log_file) {
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (log_file.empty()) {
      logger = std::make_shared<spdlog::logger>("logsplice",
                                                std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>(
          "logsplice", std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file));
    }
  } catch (const spdlog::spdlog_ex& e) {
    return sys::Error::io("log_file " + log_file + ": " + e.what());
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return sys::Error::ok();
}

Agent::Agent(config::Config cfg) : cfg_(std::move(cfg)) {
  uv_loop_init(&loop_);
}

Agent::~Agent() {
  closeAll();
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) != 0) spdlog::error("event loop closed with handles still open");
}

sys::Error Agent::start() {
  store_ = std::make_unique<CheckpointStore>(cfg_.agent.data_dir);
  if (auto err = store_->prepare()) return err;
  if (auto err = store_->load()) {
    // Never crash in a loop over a bad file: report it, set it aside, start from start_at.
    spdlog::error("{}; starting without checkpoints (files start per start_at)", err.toString());
    std::string aside = store_->path() + ".corrupt";
    ::rename(store_->path().c_str(), aside.c_str());
  }
  router_ = std::make_unique<Router>(&loop_, cfg_.agent, *store_);
  if (auto err = router_->start()) return err;
  for (const auto& out : cfg_.outputs) {
    std::unique_ptr<outputs::Sink> sink;
    if (const auto* tcp = std::get_if<config::TcpOutput>(&out.kind)) {
      sink = std::make_unique<outputs::TcpSink>(&loop_, out.name, *tcp, *router_,
                                                cfg_.agent.pipe_bytes);
    } else {
      const auto& archive = std::get<config::ArchiveOutput>(out.kind);
      sink = std::make_unique<outputs::ArchiveSink>(&loop_, out.name, archive, *router_,
                                                    cfg_.agent.pipe_bytes);
    }
    if (auto err = router_->addSink(std::move(sink), out.inputs)) {
      return sys::Error(err.code(), "output '" + out.name + "': " + err.toString(), err.sysErrno());
    }
  }
  for (const auto& in : cfg_.inputs) {
    tailers_.push_back(std::make_unique<inputs::InputTailer>(&loop_, in, *router_));
  }
  router_->setPoke([this](inputs::Follower& f) {
    for (auto& t : tailers_) {
      if (t->config().name == f.inputName()) t->poke(f);
    }
  });
  uv_timer_init(&loop_, soon_timer_.allocate());
  soon_timer_.get()->data = this;
  router_->setOnNewFile([this] {
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(soon_timer_.get()))) {
      uv_timer_start(
          soon_timer_.get(),
          [](uv_timer_t* t) {
            if (t->data) self(t->data)->writeCheckpoint();
          },
          kNewFileCheckpointMs, 0);
    }
  });
  for (auto& t : tailers_) {
    // start_at applies on an input's first start only. Once it has checkpoints, a file they do
    // not know appeared while the agent was away (e.g. the successor of a rotated file) and is
    // read from its beginning, so a restart never skips lines.
    auto known = store_->knownFiles(t->config().name);
    if (auto err = t->start(known.empty(), known)) {
      return sys::Error(err.code(), "input '" + t->config().name + "': " + err.toString(),
                        err.sysErrno());
    }
  }

  for (int signum : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    sys::UvHandle<uv_signal_t> h;
    uv_signal_init(&loop_, h.allocate());
    h.get()->data = this;
    uv_signal_start(
        h.get(),
        [](uv_signal_t* s, int n) {
          if (s->data) self(s->data)->onSignal(n);
        },
        signum);
    signals_.push_back(std::move(h));
  }
  if (cfg_.agent.metrics_listen) {
    status_ = std::make_unique<StatusServer>(
        &loop_, *cfg_.agent.metrics_listen, [this] { return metricsText(); },
        [this] { return health(); });
    if (auto err = status_->start()) return err;
    spdlog::info("metrics listening on {} (port {})", status_->listenAddress(), status_->port());
  }
  uv_timer_init(&loop_, checkpoint_timer_.allocate());
  checkpoint_timer_.get()->data = this;
  auto every = static_cast<uint64_t>(cfg_.agent.checkpoint_interval.count());
  uv_timer_start(
      checkpoint_timer_.get(),
      [](uv_timer_t* t) {
        if (t->data) self(t->data)->writeCheckpoint();
      },
      every, every);
  spdlog::info("logsplice started: {} inputs, {} outputs, lockstep {}", cfg_.inputs.size(),
               cfg_.outputs.size(), cfg_.agent.lockstep ? "on" : "off");
  return sys::Error::ok();
}

int Agent::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  return exit_code_;
}

void Agent::writeCheckpoint() {
  router_->tick();
  router_->checkpoint();
  if (auto err = store_->flush()) spdlog::error("checkpoint: {}", err.toString());
}

void Agent::onSignal(int signum) {
  switch (signum) {
    case SIGTERM:
    case SIGINT:
      if (shutting_down_) {
        spdlog::warn("second signal: stopping now");
        finish();
      } else {
        beginShutdown();
      }
      break;
    case SIGHUP:
      reload();
      break;
    case SIGUSR1:
      if (auto err = setupLogging(cfg_.agent.log_level, cfg_.agent.log_file)) {
        spdlog::error("reopening the log: {}", err.toString());
      } else {
        spdlog::info("log reopened");
      }
      break;
    default:
      break;
  }
}

void Agent::reload() {
  spdlog::warn("SIGHUP: configuration reload is not supported yet; restart to apply changes");
}

void Agent::beginShutdown() {
  shutting_down_ = true;
  shutdown_started_ = std::chrono::steady_clock::now();
  spdlog::info("stopping: draining outputs (at most {} ms)", cfg_.agent.shutdown_timeout.count());
  router_->stopFilling();
  for (auto& t : tailers_) t->stop();
  uv_timer_init(&loop_, shutdown_timer_.allocate());
  shutdown_timer_.get()->data = this;
  uv_timer_start(
      shutdown_timer_.get(),
      [](uv_timer_t* t) {
        if (t->data) self(t->data)->onShutdownTick();
      },
      0, kShutdownTickMs);
}

void Agent::onShutdownTick() {
  for (outputs::Sink* s : router_->sinks()) {
    if (auto* tcp = dynamic_cast<outputs::TcpSink*>(s)) tcp->updateAcks();
  }
  bool timed_out =
      std::chrono::steady_clock::now() - shutdown_started_ >= cfg_.agent.shutdown_timeout;
  if (router_->drained() || timed_out) {
    if (!router_->drained()) spdlog::warn("shutdown timeout: stopping with undelivered bytes");
    finish();
  }
}

void Agent::finish() {
  if (finished_) return;
  finished_ = true;
  router_->stopFilling();
  for (outputs::Sink* s : router_->sinks()) s->stop();  // takes a last ack reading
  writeCheckpoint();
  spdlog::info("stopped; checkpoint written to {}", store_->path());
  closeAll();
}

void Agent::closeAll() {
  if (router_) router_->stopFilling();
  // Followers close without touching the checkpoints: the store was just written.
  if (router_) router_->beginShutdown();
  for (auto& t : tailers_) t->close(nullptr);
  if (router_) {
    router_->stop();
    router_->closeSinks();
  }
  if (status_) status_->close(nullptr);
  for (auto& s : signals_) s.close();
  checkpoint_timer_.close();
  shutdown_timer_.close();
  soon_timer_.close();
}

StatusServer::Health Agent::health() const {
  StatusServer::Health h;
  if (shutting_down_) return {false, "shutting down"};
  for (const outputs::Sink* s : const_cast<Router&>(*router_).sinks()) {
    if (s->state() != outputs::SinkState::kConnected) {
      h.ok = false;
      h.reason += "output '" + s->name() + "' is " + outputs::sinkStateName(s->state()) + "\n";
    }
  }
  return h;
}

std::string Agent::metricsText() const {
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  metric("logsplice_bytes_copied_total", "counter",
         "Bytes the agent moved through its own memory (0 on the zero-copy path).");
  out << "logsplice_bytes_copied_total " << sys::CopyCounter::total() << '\n';
  metric("logsplice_open_fds", "gauge", "Open file descriptors.");
  out << "logsplice_open_fds " << countOpenFds() << '\n';
  metric("logsplice_checkpoint_writes_total", "counter", "Checkpoint files written.");
  out << "logsplice_checkpoint_writes_total " << store_->writes() << '\n';
  metric("logsplice_router_fills_total", "counter", "Fill jobs run by the I/O thread.");
  out << "logsplice_router_fills_total " << router_->stats().fills << '\n';
  metric("logsplice_router_lockstep_fills_total", "counter",
         "Fills that fed several sinks by tee.");
  out << "logsplice_router_lockstep_fills_total " << router_->stats().lockstep_fills << '\n';
  metric("logsplice_router_demotions_total", "counter", "Sinks that left a lockstep group.");
  out << "logsplice_router_demotions_total " << router_->stats().demotions << '\n';

  struct InputMetric {
    const char* name;
    const char* type;
    const char* help;
    uint64_t inputs::InputStats::*field;
  };
  const InputMetric input_metrics[] = {
      {"logsplice_input_files_followed", "gauge", "Files followed now.",
       &inputs::InputStats::files_followed},
      {"logsplice_input_discovered_total", "counter", "Files discovered.",
       &inputs::InputStats::files_discovered},
      {"logsplice_input_rotations_total", "counter", "Rotations seen.",
       &inputs::InputStats::rotations},
      {"logsplice_input_truncations_total", "counter", "Truncations seen.",
       &inputs::InputStats::truncations},
      {"logsplice_input_long_line_splits_total", "counter", "Long lines split.",
       &inputs::InputStats::long_line_splits},
      {"logsplice_input_inotify_overflows_total", "counter", "inotify queue overflows.",
       &inputs::InputStats::inotify_overflows},
  };
  for (const auto& m : input_metrics) {
    metric(m.name, m.type, m.help);
    for (const auto& t : tailers_) {
      out << m.name << "{input=\"" << escapeLabel(t->config().name) << "\"} "
          << t->stats().*(m.field) << '\n';
    }
  }
  metric("logsplice_input_polling", "gauge", "1 when stat polling serves the input.");
  for (const auto& t : tailers_) {
    out << "logsplice_input_polling{input=\"" << escapeLabel(t->config().name) << "\"} "
        << (t->stats().polling ? 1 : 0) << '\n';
  }

  struct SinkMetric {
    const char* name;
    const char* help;
    uint64_t outputs::SinkStats::*field;
  };
  const SinkMetric sink_metrics[] = {
      {"logsplice_sink_bytes_sent_total", "Bytes written to the socket or archive.",
       &outputs::SinkStats::bytes_sent},
      {"logsplice_sink_connects_total", "Connections made.", &outputs::SinkStats::connects},
      {"logsplice_sink_disconnects_total", "Connections lost.", &outputs::SinkStats::disconnects},
      {"logsplice_sink_resent_bytes_total", "Bytes sent again after a broken connection.",
       &outputs::SinkStats::resent_bytes},
      {"logsplice_sink_pauses_total", "Times the sink paused (disk full, permissions).",
       &outputs::SinkStats::pauses},
      {"logsplice_sink_missed_bytes_total", "Bytes released by retention before delivery.",
       &outputs::SinkStats::missed_bytes},
  };
  auto sinks = const_cast<Router&>(*router_).sinks();
  for (const auto& m : sink_metrics) {
    metric(m.name, "counter", m.help);
    for (const outputs::Sink* s : sinks) {
      out << m.name << "{sink=\"" << escapeLabel(s->name()) << "\"} " << s->stats().*(m.field)
          << '\n';
    }
  }
  metric("logsplice_sink_up", "gauge", "1 when the sink can deliver.");
  metric("logsplice_sink_state", "gauge", "The sink's state (1 for the current one).");
  for (const outputs::Sink* s : sinks) {
    bool up = s->state() == outputs::SinkState::kConnected;
    out << "logsplice_sink_up{sink=\"" << escapeLabel(s->name()) << "\"} " << (up ? 1 : 0) << '\n';
    out << "logsplice_sink_state{sink=\"" << escapeLabel(s->name()) << "\",state=\""
        << outputs::sinkStateName(s->state()) << "\"} 1\n";
  }
  metric("logsplice_file_delivered_bytes", "gauge", "Offset delivered per file and sink.");
  metric("logsplice_file_lag_bytes", "gauge", "Bytes behind the file's complete end.");
  router_->visit([&](const Router::FileSinkView& v) {
    std::string labels = "{sink=\"" + escapeLabel(v.sink) + "\",input=\"" + escapeLabel(v.input) +
                         "\",path=\"" + escapeLabel(v.path) + "\"}";
    out << "logsplice_file_delivered_bytes" << labels << ' ' << v.delivered << '\n';
    out << "logsplice_file_lag_bytes" << labels << ' '
        << (v.end > v.delivered ? v.end - v.delivered : 0) << '\n';
  });
  return out.str();
}

}  // namespace logsplice::agent
