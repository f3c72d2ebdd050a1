#include "agent/status/status_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <sstream>
#include <string_view>
#include <utility>

#include "agent/status/status_server.h"
#include "sys/unique_fd.h"

namespace logsplice::agent {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxResponseBytes = 64 << 20;  // a scrape is KiBs to a few MiB
constexpr size_t kTopLaggingFiles = 10;
constexpr auto kWatchInterval = std::chrono::seconds(2);
constexpr auto kRateInterval = std::chrono::seconds(1);
constexpr const char* kHint = "is the agent running with agent.metrics.listen set?";

// Set by SIGINT while `runStatus --watch` runs; blocking calls see EINTR and check it.
volatile std::sig_atomic_t g_interrupted = 0;

void onSigint(int) {
  g_interrupted = 1;
}

// Installs onSigint for SIGINT without SA_RESTART (so sleeps and polls wake up), restores the
// previous action on destruction.
class SigintGuard {
 public:
  SigintGuard() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = &onSigint;
    sigemptyset(&sa.sa_mask);
    installed_ = ::sigaction(SIGINT, &sa, &old_) == 0;
  }
  ~SigintGuard() {
    if (installed_) ::sigaction(SIGINT, &old_, nullptr);
  }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  struct sigaction old_ {};
  bool installed_ = false;
};

// Waits for `events` on fd until the deadline. Returns 0, ETIMEDOUT, EINTR (only after SIGINT),
// or the poll errno.
int waitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return ETIMEDOUT;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return 0;
    if (n == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
    if (g_interrupted) return EINTR;
  }
}

// Sleeps up to `d`; returns false when SIGINT interrupted it.
bool sleepFor(Clock::duration d) {
  auto deadline = Clock::now() + d;
  while (!g_interrupted) {
    auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) return true;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(left);
    timespec ts{static_cast<time_t>(secs.count()),
                static_cast<long>(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(left - secs).count())};
    ::nanosleep(&ts, nullptr);  // EINTR: loop re-checks the flag
  }
  return false;
}

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// "http://127.0.0.1:9880/metrics" -> "127.0.0.1:9880".
std::string endpointHostPort(std::string_view endpoint) {
  if (startsWithNoCase(endpoint, "http://")) endpoint.remove_prefix(7);
  return std::string(endpoint.substr(0, endpoint.find('/')));
}

// Splits an HTTP/1.x response into its status code and body; non-200 is an error.
sys::Result<std::string> parseResponse(const std::string& raw, const std::string& where) {
  size_t head_end = raw.find("\r\n\r\n");
  if (raw.compare(0, 7, "HTTP/1.") != 0 || raw.size() < 12 || head_end == std::string::npos) {
    return sys::Error::corrupt(where + " did not answer with HTTP (is that the metrics port?)");
  }
  int code = std::atoi(raw.c_str() + 9);
  std::string_view head(raw.data(), head_end);
  std::string body = raw.substr(head_end + 4);
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    std::string_view line = head.substr(pos, head.find("\r\n", pos) - pos);
    if (startsWithNoCase(line, "content-length:")) {
      size_t len = std::strtoull(std::string(line.substr(15)).c_str(), nullptr, 10);
      if (body.size() < len) return sys::Error::corrupt(where + ": truncated response");
      body.resize(len);
    }
  }
  if (code != 200) {
    std::string first = body.substr(0, body.find('\n'));
    return sys::Error::corrupt(where + " answered HTTP " + std::to_string(code) +
                               (first.empty() ? "" : ": " + first));
  }
  return body;
}

std::string formatCount(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

// Column-aligned text: numbers right-aligned, text left-aligned, two spaces between columns.
class Table {
 public:
  Table(std::vector<std::string> header, std::vector<bool> right) : right_(std::move(right)) {
    rows_.push_back(std::move(header));
  }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void render(std::ostream& out, std::string_view indent) const {
    std::vector<size_t> width(right_.size(), 0);
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    for (const auto& row : rows_) {
      std::string line(indent);
      for (size_t i = 0; i < row.size(); ++i) {
        size_t pad = width[i] - row[i].size();
        bool last = i + 1 == row.size();
        if (right_[i]) line.append(pad, ' ');
        line += row[i];
        if (!right_[i] && !last) line.append(pad, ' ');
        if (!last) line += "  ";
      }
      out << line << '\n';
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

struct FileLag {
  std::string input;
  std::string path;
  double lag = 0;
  double delivered = 0;
};

struct SinkView {
  std::string state;
  double up = -1;  // -1 when not exported
  double sent = 0;
  double connects = 0;
  double disconnects = 0;
  double missed = 0;
  double lag = 0;
  double copied = -1;  // logsplice_bytes_copied_total{output=...}; -1 when not exported
  std::map<std::pair<std::string, std::string>, FileLag> files;  // by (input, path)
};

struct InputView {
  double files = 0;
  double rotations = 0;
  double truncations = 0;
  double splits = 0;
  double polling = 0;
  double dirs_unreadable = 0;
};

struct AgentView {
  std::map<std::string, SinkView> sinks;
  std::map<std::string, InputView> inputs;
  double bytes_copied = -1;       // the agent-wide (older, unlabelled) form
  double copied_by_outputs = -1;  // the sum of the per-output form
  double open_fds = -1;
  double checkpoint_writes = -1;
};

AgentView collect(const std::vector<PromSample>& samples) {
  AgentView view;
  for (const auto& s : samples) {
    const std::string& n = s.name;
    if (n.rfind("logsplice_sink_", 0) == 0) {
      SinkView& sink = view.sinks[s.label("sink")];
      if (n == "logsplice_sink_up") sink.up = s.value;
      if (n == "logsplice_sink_state" && s.value == 1) sink.state = s.label("state");
      if (n == "logsplice_sink_bytes_sent_total") sink.sent = s.value;
      if (n == "logsplice_sink_connects_total") sink.connects = s.value;
      if (n == "logsplice_sink_disconnects_total") sink.disconnects = s.value;
      if (n == "logsplice_sink_missed_bytes_total") sink.missed = s.value;
    } else if (n == "logsplice_file_lag_bytes" || n == "logsplice_file_delivered_bytes") {
      SinkView& sink = view.sinks[s.label("sink")];
      FileLag& file = sink.files[{s.label("input"), s.label("path")}];
      file.input = s.label("input");
      file.path = s.label("path");
      if (n == "logsplice_file_lag_bytes") {
        file.lag = s.value;
        sink.lag += s.value;
      } else {
        file.delivered = s.value;
      }
    } else if (n.rfind("logsplice_input_", 0) == 0) {
      InputView& input = view.inputs[s.label("input")];
      if (n == "logsplice_input_files_followed") input.files = s.value;
      if (n == "logsplice_input_rotations_total") input.rotations = s.value;
      if (n == "logsplice_input_truncations_total") input.truncations = s.value;
      if (n == "logsplice_input_long_line_splits_total") input.splits = s.value;
      if (n == "logsplice_input_polling") input.polling = s.value;
      if (n == "logsplice_input_dirs_unreadable") input.dirs_unreadable = s.value;
    } else if (n == "logsplice_bytes_copied_total") {
      // Per output since the sinks report it themselves; agents before that export one total.
      const std::string& output = s.label("output");
      if (output.empty()) {
        view.bytes_copied = s.value;
      } else {
        view.sinks[output].copied = s.value;
        view.copied_by_outputs = std::max(view.copied_by_outputs, 0.0) + s.value;
      }
    } else if (n == "logsplice_open_fds") {
      view.open_fds = s.value;
    } else if (n == "logsplice_checkpoint_writes_total") {
      view.checkpoint_writes = s.value;
    }
  }
  if (view.bytes_copied < 0) view.bytes_copied = view.copied_by_outputs;
  return view;
}

std::string sinkState(const SinkView& sink) {
  if (!sink.state.empty()) return sink.state;
  if (sink.up == 1) return "up";
  if (sink.up == 0) return "down";
  return "?";
}

}  // namespace

std::string humanBytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  bool negative = bytes < 0;
  double v = negative ? -bytes : bytes;
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  char buf[48];
  if (unit == 0) {
    std::snprintf(buf, sizeof buf, "%s%.0f B", negative ? "-" : "", v);
  } else {
    std::snprintf(buf, sizeof buf, "%s%.1f %s", negative ? "-" : "", v, kUnits[unit]);
  }
  return buf;
}

// `logsplice collect`'s endpoint (logsplice_collect_*): one row per agent host.
struct HostView {
  double bytes = 0, acked = 0, unsynced = 0, streams = 0, sessions = 0, last_ack = 0;
};

std::string formatCollectStatus(const std::vector<PromSample>& now,
                                const std::vector<PromSample>& before, double seconds) {
  auto hostsOf = [](const std::vector<PromSample>& samples) {
    std::map<std::string, HostView> hosts;
    for (const PromSample& s : samples) {
      if (s.label("host").empty()) continue;
      HostView& h = hosts[s.label("host")];
      if (s.name == "logsplice_collect_bytes_total") h.bytes = s.value;
      if (s.name == "logsplice_collect_acked_bytes_total") h.acked = s.value;
      if (s.name == "logsplice_collect_unsynced_bytes") h.unsynced = s.value;
      if (s.name == "logsplice_collect_open_streams") h.streams = s.value;
      if (s.name == "logsplice_collect_sessions_total") h.sessions = s.value;
      if (s.name == "logsplice_collect_last_ack_timestamp_seconds") h.last_ack = s.value;
    }
    return hosts;
  };
  auto hosts = hostsOf(now);
  auto prev = hostsOf(before);
  std::ostringstream out;
  if (hosts.empty()) out << "no agent has connected yet\n";
  Table table({"HOST", "RECEIVED", "RATE", "ACKED", "UNSYNCED", "STREAMS", "SESSIONS", "LAST ACK"},
              {false, true, true, true, true, true, true, true});
  double unix_now = static_cast<double>(std::time(nullptr));
  for (const auto& [name, h] : hosts) {
    std::string rate = "-";
    auto it = prev.find(name);
    if (!before.empty() && seconds > 0 && it != prev.end()) {
      double delta = h.bytes - it->second.bytes;
      rate = humanBytes((delta < 0 ? h.bytes : delta) / seconds) + "/s";
    }
    std::string last = "-";
    if (h.last_ack > 0) {
      last = formatCount(std::max(0.0, unix_now - h.last_ack)) + "s ago";
    }
    table.add({name, humanBytes(h.bytes), rate, humanBytes(h.acked), humanBytes(h.unsynced),
               formatCount(h.streams), formatCount(h.sessions), last});
  }
  if (!hosts.empty()) table.render(out, "");
  double conns = 0, indexed = 0, refused = 0, paused = 0, free_bytes = -1;
  for (const PromSample& s : now) {
    if (s.name == "logsplice_collect_connections") conns = s.value;
    if (s.name == "logsplice_collect_streams") indexed = s.value;
    if (s.name == "logsplice_collect_refused_connections_total") refused = s.value;
    if (s.name == "logsplice_collect_paused_connections") paused = s.value;
    if (s.name == "logsplice_collect_free_bytes") free_bytes = s.value;
  }
  out << "\ncollector: " << formatCount(conns) << " connections, " << formatCount(indexed)
      << " streams in the index, " << formatCount(refused) << " connections refused\n";
  if (free_bytes >= 0) {
    out << "disk: " << humanBytes(free_bytes) << " free, " << formatCount(paused)
        << " connections paused for space\n";
  }
  return out.str();
}

std::string formatStatus(const std::vector<PromSample>& now, const std::vector<PromSample>& before,
                         double seconds) {
  bool collector = std::any_of(now.begin(), now.end(), [](const PromSample& s) {
    return s.name == "logsplice_collect_connections";
  });
  if (collector) return formatCollectStatus(now, before, seconds);
  AgentView view = collect(now);
  AgentView prev = collect(before);
  bool have_rate = !before.empty() && seconds > 0;
  std::ostringstream out;

  if (view.sinks.empty()) {
    out << "no sinks reported (no outputs configured, or the agent is still starting)\n";
  } else {
    // COPIED: bytes that went through the agent's memory (the copy path), when per output.
    bool per_output_copies = view.copied_by_outputs >= 0;
    std::vector<std::string> header = {"SINK",     "STATE",       "SENT", "RATE",
                                       "CONNECTS", "DISCONNECTS", "LAG"};
    std::vector<bool> right = {false, false, true, true, true, true, true};
    if (per_output_copies) {
      header.push_back("COPIED");
      right.push_back(true);
    }
    Table table(std::move(header), std::move(right));
    for (const auto& [name, sink] : view.sinks) {
      std::string rate = "-";
      auto it = prev.sinks.find(name);
      if (have_rate && it != prev.sinks.end()) {
        double delta = sink.sent - it->second.sent;
        if (delta < 0) delta = sink.sent;  // the agent restarted: counters began again at 0
        rate = humanBytes(delta / seconds) + "/s";
      }
      std::vector<std::string> row = {name,
                                      sinkState(sink),
                                      humanBytes(sink.sent),
                                      rate,
                                      formatCount(sink.connects),
                                      formatCount(sink.disconnects),
                                      humanBytes(sink.lag)};
      if (per_output_copies) row.push_back(sink.copied >= 0 ? humanBytes(sink.copied) : "-");
      table.add(std::move(row));
    }
    table.render(out, "");
    for (const auto& [name, sink] : view.sinks) {
      if (sink.missed > 0) {
        out << "warning: sink " << name << " missed " << humanBytes(sink.missed)
            << " (files went away before it could read them)\n";
      }
    }
  }

  for (const auto& [name, sink] : view.sinks) {
    std::vector<const FileLag*> lagging;
    for (const auto& [key, file] : sink.files) {
      if (file.lag > 0) lagging.push_back(&file);
    }
    if (lagging.empty()) continue;
    std::sort(lagging.begin(), lagging.end(), [](const FileLag* a, const FileLag* b) {
      return a->lag != b->lag ? a->lag > b->lag : a->path < b->path;
    });
    out << "\n"
        << name << ": behind on " << lagging.size() << (lagging.size() == 1 ? " file" : " files")
        << ", " << humanBytes(sink.lag) << " in total";
    if (lagging.size() > kTopLaggingFiles) out << " (top " << kTopLaggingFiles << " shown)";
    out << "\n";
    Table table({"LAG", "DELIVERED", "INPUT", "PATH"}, {true, true, false, false});
    for (size_t i = 0; i < lagging.size() && i < kTopLaggingFiles; ++i) {
      table.add({humanBytes(lagging[i]->lag), humanBytes(lagging[i]->delivered), lagging[i]->input,
                 lagging[i]->path});
    }
    table.render(out, "  ");
  }

  if (!view.inputs.empty()) {
    out << "\n";
    Table table({"INPUT", "FILES", "ROTATIONS", "TRUNCATIONS", "SPLIT LINES", "WATCH"},
                {false, true, true, true, true, false});
    for (const auto& [name, input] : view.inputs) {
      table.add({name, formatCount(input.files), formatCount(input.rotations),
                 formatCount(input.truncations), formatCount(input.splits),
                 input.polling > 0 ? "polling" : "inotify"});
    }
    table.render(out, "");
    for (const auto& [name, input] : view.inputs) {
      if (input.dirs_unreadable > 0) {
        out << "warning: input " << name << " cannot read " << formatCount(input.dirs_unreadable)
            << (input.dirs_unreadable == 1 ? " directory" : " directories")
            << " (permissions?): files under them are not followed\n";
      }
    }
  }

  std::vector<std::string> agent_parts;
  if (view.open_fds >= 0) agent_parts.push_back(formatCount(view.open_fds) + " open fds");
  if (view.bytes_copied >= 0) {
    agent_parts.push_back(humanBytes(view.bytes_copied) + " copied through userspace");
  }
  if (view.checkpoint_writes >= 0) {
    agent_parts.push_back(formatCount(view.checkpoint_writes) + " checkpoint writes");
  }
  if (!agent_parts.empty()) {
    out << "\nagent: ";
    for (size_t i = 0; i < agent_parts.size(); ++i) out << (i ? ", " : "") << agent_parts[i];
    out << "\n";
  }
  return out.str();
}

sys::Result<std::string> fetchMetrics(const std::string& endpoint, int timeout_ms) {
  std::string host_port = endpointHostPort(endpoint);
  auto addr = parseHostPort(host_port);
  if (!addr) return addr.error();
  std::string where = "the agent at " + host_port;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);

  const auto* sa = reinterpret_cast<const sockaddr*>(&addr.value());
  sys::UniqueFd fd(::socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return sys::Error::fromErrno(errno, "socket");
  socklen_t sa_len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::connect(fd.get(), sa, sa_len) != 0) {
    if (errno != EINPROGRESS) return sys::Error::fromErrno(errno, "cannot connect to " + where);
    if (int e = waitFor(fd.get(), POLLOUT, deadline); e != 0) {
      return sys::Error::fromErrno(e, "cannot connect to " + where);
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) return sys::Error::fromErrno(so_error, "cannot connect to " + where);
  }

  std::string request = "GET /metrics HTTP/1.1\r\nHost: " + host_port +
                        "\r\nUser-Agent: logsplice-status\r\nAccept: text/plain\r\n"
                        "Connection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (errno == EAGAIN || errno == EINTR) {
      if (g_interrupted) return sys::Error::fromErrno(EINTR, "interrupted");
      if (int e = waitFor(fd.get(), POLLOUT, deadline); e != 0) {
        return sys::Error::fromErrno(e, "sending to " + where);
      }
    } else {
      return sys::Error::fromErrno(errno, "sending to " + where);
    }
  }

  std::string raw;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
      if (raw.size() > kMaxResponseBytes) return sys::Error::corrupt(where + ": response too big");
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (g_interrupted) return sys::Error::fromErrno(EINTR, "interrupted");
      if (int e = waitFor(fd.get(), POLLIN, deadline); e != 0) {
        return sys::Error::fromErrno(e, "no complete answer from " + where);
      }
    } else {
      return sys::Error::fromErrno(errno, "reading from " + where);
    }
  }
  return parseResponse(raw, where);
}

namespace {

// Fetches and parses one scrape; a network error carries the "is the agent running" hint.
sys::Result<std::vector<PromSample>> scrape(const std::string& endpoint) {
  auto text = fetchMetrics(endpoint);
  if (!text) {
    const sys::Error& e = text.error();
    if (e.sysErrno() != 0 && e.sysErrno() != EINTR) {
      return sys::Error(e.code(), e.toString() + " (" + kHint + ")");
    }
    return e;
  }
  return parsePromText(text.value());
}

std::string clockNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

int runOnce(const std::string& endpoint, std::ostream& out, std::ostream& err) {
  auto first = scrape(endpoint);
  if (!first) {
    if (g_interrupted) return 130;
    err << "logsplice status: " << first.error().toString() << "\n";
    return 1;
  }
  auto t0 = Clock::now();
  sleepFor(kRateInterval);
  if (g_interrupted) return 130;
  auto second = scrape(endpoint);
  if (!second) {
    if (g_interrupted) return 130;
    err << "logsplice status: " << second.error().toString() << "\n";
    return 1;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  out << "logsplice status of " << endpointHostPort(endpoint) << "\n\n"
      << formatStatus(second.value(), first.value(), seconds);
  out.flush();
  return 0;
}

int runWatch(const std::string& endpoint, std::ostream& out) {
  std::vector<PromSample> prev;
  Clock::time_point prev_time;
  while (!g_interrupted) {
    auto samples = scrape(endpoint);
    auto now = Clock::now();
    std::string screen = "\x1b[H\x1b[2J";  // home + clear
    screen += "logsplice status of " + endpointHostPort(endpoint) + " at " + clockNow() +
              " (every 2 s; Ctrl-C to quit)\n\n";
    if (samples) {
      double seconds = std::chrono::duration<double>(now - prev_time).count();
      screen += formatStatus(samples.value(), prev, seconds);
      prev = std::move(samples.value());
      prev_time = now;
    } else if (!g_interrupted) {
      screen += "error: " + samples.error().toString() + "\n";
      prev.clear();  // the next rate would span the outage
    }
    out << screen << std::flush;
    sleepFor(kWatchInterval);
  }
  return 0;
}

}  // namespace

int runStatus(const std::string& endpoint, bool watch, std::ostream& out, std::ostream& err) {
  SigintGuard guard;
  return watch ? runWatch(endpoint, out) : runOnce(endpoint, out, err);
}

}  // namespace logsplice::agent
