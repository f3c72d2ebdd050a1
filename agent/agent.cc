#include "agent/agent.h"

#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "config/parse.h"
#include "outputs/sink_factory.h"
#include "sys/assert.h"

namespace logsplice::agent {
namespace {

constexpr uint64_t kShutdownTickMs = 20;
constexpr uint64_t kNewFileCheckpointMs = 20;

Agent* self(void* data) {
  return static_cast<Agent*>(data);
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
  // One open-file budget for the followers of every input: min(agent.max_open_files, the soft
  // RLIMIT_NOFILE raised to the hard one, less room for sockets, pipes and checkpoints).
  inputs::configureProcessFdBudget(cfg_.agent.max_open_files,
                                   64 + 4 * cfg_.outputs.size() + 2 * cfg_.inputs.size());
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
    if (auto err = router_->addSink(makeSink(out, cfg_), out.inputs)) {
      return sys::Error(err.code(), "output '" + out.name + "': " + err.toString(), err.sysErrno());
    }
  }
  for (const auto& in : cfg_.inputs) {
    tailers_.push_back(std::make_unique<inputs::InputTailer>(&loop_, in, *router_));
  }
  LS_CHECK_UV(soon_timer_.init(uv_timer_init, &loop_, this));
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
    LS_CHECK_UV(h.init(uv_signal_init, &loop_, this));
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
  LS_CHECK_UV(checkpoint_timer_.init(uv_timer_init, &loop_, this));
  auto every = static_cast<uint64_t>(cfg_.agent.checkpoint_interval.count());
  uv_timer_start(
      checkpoint_timer_.get(),
      [](uv_timer_t* t) {
        if (t->data) self(t->data)->writeCheckpoint();
      },
      every, every);
  spdlog::info("logsplice started: {} inputs, {} outputs, lockstep {}", cfg_.inputs.size(),
               cfg_.outputs.size(), cfg_.agent.lockstep ? "on" : "off");
  // Started: checkpoints loaded, every sink created (connecting in the background: a collector
  // that is down must not fail the start, the file is the buffer), every input following its
  // files, signals handled, the metrics port listening. Only now is systemd told.
  systemd_.startWatchdog();
  systemd_.ready(statusText());
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
      if (shutting_down_) break;
      systemd_.reloading();
      reload();  // a rejected config keeps the running one: ready again either way
      systemd_.ready(statusText());
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

std::unique_ptr<outputs::Sink> Agent::makeSink(const config::OutputConfig& out,
                                               const config::Config& cfg) {
  return outputs::makeSink(&loop_, out, *router_, cfg.agent, cfg.inputs);
}

void Agent::startTailer(const config::InputConfig& in) {
  router_->attachInput(in.name);
  auto tailer = std::make_unique<inputs::InputTailer>(&loop_, in, *router_);
  auto known = store_->knownFiles(in.name);
  if (auto err = tailer->start(known.empty(), known)) {
    spdlog::error("input '{}': {}", in.name, err.toString());
  }
  tailers_.push_back(std::move(tailer));
}

void Agent::closeTailer(size_t index) {
  // Its followers close now: the router keeps their delivered offsets in the checkpoint store.
  router_->detachInput(tailers_[index]->config().name);
  std::shared_ptr<inputs::InputTailer> tailer(std::move(tailers_[index]));
  tailers_.erase(tailers_.begin() + static_cast<std::ptrdiff_t>(index));
  tailer->stop();
  // Destroyed once its handles are closed (libuv frees them in their close callbacks).
  tailer->close([tailer]() mutable { tailer.reset(); });
}

namespace {

// Outputs and inputs compare by value: an entry whose YAML changed in any way is replaced.
// An event output (format syslog or json) also changes with what its events carry from the
// rest of the config: the host name, and the fields and multiline rules of its inputs.
std::string describe(const config::OutputConfig& o, const config::Config& cfg) {
  std::ostringstream s;
  s << o.name << '|';
  for (const auto& i : o.inputs) s << i << ',';
  const config::TcpOutput* t = std::get_if<config::TcpOutput>(&o.kind);
  if (const auto* relp = std::get_if<config::RelpOutput>(&o.kind)) {
    s << "relp|" << relp->window << ',' << relp->timeout.count() << '|';
    t = &relp->tcp;
  }
  if (t != nullptr) {
    s << "tcp|";
    for (const auto& a : t->addresses) s << a.toString() << ',';
    s << t->backoff.initial.count() << ',' << t->backoff.max.count() << ','
      << t->connect_timeout.count() << ',' << t->keepalive.count() << '|'
      << static_cast<int>(t->format);
    if (t->format != config::EventFormat::kRaw) {
      s << ',' << static_cast<int>(t->framing) << ',' << t->facility << ',' << t->severity << ','
        << t->app_name.size() << ':' << t->app_name << '|' << cfg.agent.hostname.size() << ':'
        << cfg.agent.hostname;
      for (const auto& in : cfg.inputs) {
        if (std::find(o.inputs.begin(), o.inputs.end(), in.name) == o.inputs.end()) continue;
        s << '|' << in.name << ':';
        for (const auto& [k, v] : in.fields) s << k.size() << ':' << k << v.size() << ':' << v;
        if (in.multiline) {
          const auto& m = *in.multiline;
          s << "|ml" << m.start_pattern.size() << ':' << m.start_pattern << ','
            << m.timeout.count() << ',' << m.max_bytes;
        }
      }
    }
    if (t->tls) {
      const auto& x = *t->tls;
      s << "|tls|" << x.ca_file << ',' << x.cert_file << ',' << x.key_file << ','
        << x.server_name << ',' << x.verify << ',' << x.min_version << ',' << x.ciphers << ','
        << x.ciphersuites << ',' << static_cast<int>(x.ktls);
    }
  } else if (const auto* k = std::get_if<config::KafkaOutput>(&o.kind)) {
    s << "kafka|";
    for (const auto& b : k->brokers) s << b << ',';
    s << '|' << k->topic << '|' << static_cast<int>(k->key) << ',' << k->compression << ','
      << k->acks << ',' << k->idempotence << ',' << k->max_in_flight_bytes << ','
      << static_cast<int>(k->format) << ',' << k->headers << '|' << cfg.agent.hostname;
    for (const auto& [p, v] : k->librdkafka) s << '|' << p.size() << ':' << p << '=' << v;
  } else if (const auto* l = std::get_if<config::LogspliceOutput>(&o.kind)) {
    s << "logsplice|" << l->token.size() << ':' << l->token << '|';
    for (const auto& a : l->tcp.addresses) s << a.toString() << ',';
    s << l->tcp.backoff.initial.count() << ',' << l->tcp.backoff.max.count() << ','
      << l->tcp.connect_timeout.count() << ',' << l->tcp.keepalive.count();
    if (l->tcp.tls) {
      const auto& x = *l->tcp.tls;
      s << "|tls|" << x.ca_file << ',' << x.cert_file << ',' << x.key_file << ','
        << x.server_name << ',' << x.verify << ',' << x.min_version << ',' << x.ciphers << ','
        << x.ciphersuites << ',' << static_cast<int>(x.ktls);
    }
  } else {
    const auto& a = std::get<config::ArchiveOutput>(o.kind);
    s << "archive|" << a.dir << ',' << a.rotate_max_bytes << ',' << a.rotate_max_age.count() << ','
      << static_cast<int>(a.fsync) << ',' << a.fsync_interval.count();
  }
  return s.str();
}

std::string describe(const config::InputConfig& i) {
  std::ostringstream s;
  s << i.name << '|';
  for (const auto& p : i.paths) s << p << ',';
  s << '|';
  for (const auto& p : i.exclude) s << p << ',';
  s << '|' << static_cast<int>(i.start_at) << ',' << i.max_line_bytes << ',' << i.poll << ','
    << i.poll_interval.count() << ',' << i.rescan_interval.count() << ','
    << i.partial_line_timeout.count() << ',' << i.rotate_wait.count() << ',' << i.copy << ','
    << i.rotated_retention.max_bytes << ',' << i.rotated_retention.max_age.count();
  return s.str();
}

}  // namespace

void Agent::reload() {
  if (shutting_down_) return;
  spdlog::info("SIGHUP: reloading {}", cfg_.source_path);
  auto parsed = config::parseConfigFile(cfg_.source_path);
  if (!parsed.ok()) {
    for (const auto& e : parsed.errors) spdlog::error("reload: {}", e.toString());
    spdlog::error("reload: {} error(s); keeping the running configuration", parsed.errors.size());
    return;
  }
  config::Config next = std::move(*parsed.config);
  const auto& a = cfg_.agent;
  const auto& b = next.agent;
  if (a.data_dir != b.data_dir || a.metrics_listen != b.metrics_listen ||
      a.lockstep != b.lockstep || a.chunk_bytes != b.chunk_bytes || a.pipe_bytes != b.pipe_bytes ||
      a.log_file != b.log_file) {
    spdlog::warn(
        "reload: changes under 'agent:' other than log_level and checkpoint_interval "
        "take effect at the next restart");
  }
  if (a.log_level != b.log_level) spdlog::set_level(spdlog::level::from_str(b.log_level));

  size_t added = 0, removed = 0, changed = 0;
  // Outputs first, so inputs that start find their sinks.
  std::map<std::string, const config::OutputConfig*> new_outputs;
  for (const auto& o : next.outputs) new_outputs[o.name] = &o;
  for (const auto& o : cfg_.outputs) {
    auto it = new_outputs.find(o.name);
    if (it == new_outputs.end()) {
      router_->removeSink(o.name);
      ++removed;
    } else if (describe(o, cfg_) != describe(*it->second, next)) {
      router_->removeSink(o.name);  // its delivered offsets stay in the store...
      if (auto err = router_->addSinkLive(makeSink(*it->second, next), it->second->inputs)) {
        spdlog::error("reload: output '{}': {}", o.name, err.toString());
      }  // ...and the new one resumes from them
      ++changed;
    } else if (outputs::Sink* sink = router_->sink(o.name)) {
      // Same config, maybe renewed certificates: re-read them (a bad one keeps the old).
      (void)outputs::reloadTlsOf(*sink);
    }
  }
  for (const auto& o : next.outputs) {
    bool existed = std::any_of(cfg_.outputs.begin(), cfg_.outputs.end(),
                               [&](const config::OutputConfig& c) { return c.name == o.name; });
    if (existed) continue;
    if (auto err = router_->addSinkLive(makeSink(o, next), o.inputs)) {
      spdlog::error("reload: output '{}': {}", o.name, err.toString());
    }
    ++added;
  }
  // Inputs: removed and changed ones close (their checkpoints stay); new and changed ones start.
  std::map<std::string, const config::InputConfig*> new_inputs;
  for (const auto& i : next.inputs) new_inputs[i.name] = &i;
  std::vector<const config::InputConfig*> to_start;
  for (size_t idx = tailers_.size(); idx-- > 0;) {
    const auto& old = tailers_[idx]->config();
    auto it = new_inputs.find(old.name);
    if (it == new_inputs.end()) {
      closeTailer(idx);
      ++removed;
    } else if (describe(old) != describe(*it->second)) {
      closeTailer(idx);
      to_start.push_back(it->second);
      ++changed;
    }
  }
  writeCheckpoint();  // closed inputs' offsets reach the store before new ones look
  for (const auto& i : next.inputs) {  // (each tailer keeps its own copy of its config)
    bool running = std::any_of(tailers_.begin(), tailers_.end(),
                               [&](const auto& t) { return t->config().name == i.name; });
    if (!running) {
      startTailer(i);
      if (std::none_of(to_start.begin(), to_start.end(),
                       [&](const config::InputConfig* c) { return c->name == i.name; })) {
        ++added;
      }
    }
  }
  next.source_path = cfg_.source_path;
  cfg_ = std::move(next);
  spdlog::info("reload done: {} added, {} removed, {} changed; the rest kept their state", added,
               removed, changed);
}

void Agent::beginShutdown() {
  shutting_down_ = true;
  systemd_.stopping();
  shutdown_started_ = std::chrono::steady_clock::now();
  spdlog::info("stopping: draining outputs (at most {} ms)", cfg_.agent.shutdown_timeout.count());
  router_->stopFilling();
  for (auto& t : tailers_) t->stop();
  LS_CHECK_UV(shutdown_timer_.init(uv_timer_init, &loop_, this));
  uv_timer_start(
      shutdown_timer_.get(),
      [](uv_timer_t* t) {
        if (t->data) self(t->data)->onShutdownTick();
      },
      0, kShutdownTickMs);
}

void Agent::onShutdownTick() {
  for (outputs::Sink* s : router_->sinks()) s->refreshDelivery();
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
  systemd_.close();
}

std::string Agent::statusText() const {
  return "shipping: " + std::to_string(cfg_.inputs.size()) + " inputs, " +
         std::to_string(cfg_.outputs.size()) + " outputs";
}

StatusServer::Health Agent::health() const {
  StatusServer::Health h;
  if (shutting_down_) return {false, "shutting down"};
  for (const outputs::Sink* s : router_->sinks()) {
    if (s->state() != outputs::SinkState::kConnected) {
      h.ok = false;
      h.reason += "output '" + s->name() + "' is " + outputs::sinkStateName(s->state()) + "\n";
    }
  }
  return h;
}

}  // namespace logsplice::agent
