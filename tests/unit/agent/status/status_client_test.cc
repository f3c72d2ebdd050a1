#include "agent/status/status_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <sstream>
#include <string>

#include "agent/status/status_server.h"
#include "sys/unique_fd.h"

using namespace logsplice::agent;
namespace sys = logsplice::sys;
using logsplice::sys::UniqueFd;

namespace {

using namespace std::chrono_literals;

std::vector<PromSample> parse(const std::string& text) {
  auto parsed = parsePromText(text);
  REQUIRE(parsed.ok());
  return parsed.value();
}

// What the agent exports for two sinks and one input, at two moments 2 s apart.
const char* kBefore = R"(# TYPE logsplice_sink_bytes_sent_total counter
logsplice_sink_bytes_sent_total{sink="central"} 1048576
logsplice_sink_bytes_sent_total{sink="local"} 5000
)";

const char* kNow = R"(# HELP logsplice_sink_up Whether the sink can deliver.
# TYPE logsplice_sink_up gauge
logsplice_sink_up{sink="central"} 0
logsplice_sink_up{sink="local"} 1
logsplice_sink_state{sink="central",state="connected"} 0
logsplice_sink_state{sink="central",state="backoff"} 1
logsplice_sink_state{sink="local",state="connected"} 1
logsplice_sink_state{sink="local",state="backoff"} 0
logsplice_sink_bytes_sent_total{sink="central"} 3145728
logsplice_sink_bytes_sent_total{sink="local"} 7048
logsplice_sink_connects_total{sink="central"} 3
logsplice_sink_connects_total{sink="local"} 1
logsplice_sink_disconnects_total{sink="central"} 2
logsplice_sink_disconnects_total{sink="local"} 0
logsplice_sink_missed_bytes_total{sink="central"} 0
logsplice_sink_missed_bytes_total{sink="local"} 0
logsplice_file_delivered_bytes{sink="central",input="nginx",path="/var/log/nginx/access.log"} 2048
logsplice_file_lag_bytes{sink="central",input="nginx",path="/var/log/nginx/access.log"} 1536
logsplice_file_delivered_bytes{sink="central",input="nginx",path="/var/log/nginx/error.log"} 100
logsplice_file_lag_bytes{sink="central",input="nginx",path="/var/log/nginx/error.log"} 2097152
logsplice_file_delivered_bytes{sink="local",input="nginx",path="/var/log/nginx/access.log"} 3584
logsplice_file_lag_bytes{sink="local",input="nginx",path="/var/log/nginx/access.log"} 0
logsplice_input_files_followed{input="nginx"} 2
logsplice_input_rotations_total{input="nginx"} 4
logsplice_input_truncations_total{input="nginx"} 1
logsplice_input_long_line_splits_total{input="nginx"} 0
logsplice_input_polling{input="nginx"} 0
logsplice_bytes_copied_total 0
logsplice_open_fds 12
logsplice_checkpoint_writes_total 345
)";

}  // namespace

TEST_CASE("formatStatus renders sinks, lagging files, inputs and agent counters",
          "[status_client]") {
  std::string text = formatStatus(parse(kNow), parse(kBefore), 2.0);
  CHECK(text ==
        "SINK     STATE         SENT       RATE  CONNECTS  DISCONNECTS      LAG\n"
        "central  backoff    3.0 MiB  1.0 MiB/s         3            2  2.0 MiB\n"
        "local    connected  6.9 KiB  1.0 KiB/s         1            0      0 B\n"
        "\n"
        "central: behind on 2 files, 2.0 MiB in total\n"
        "      LAG  DELIVERED  INPUT  PATH\n"
        "  2.0 MiB      100 B  nginx  /var/log/nginx/error.log\n"
        "  1.5 KiB    2.0 KiB  nginx  /var/log/nginx/access.log\n"
        "\n"
        "INPUT  FILES  ROTATIONS  TRUNCATIONS  SPLIT LINES  WATCH\n"
        "nginx      2          4            1            0  inotify\n"
        "\n"
        "agent: 12 open fds, 0 B copied through userspace, 345 checkpoint writes\n");
}

TEST_CASE("formatStatus shows bytes copied per output when the agent reports them",
          "[status_client]") {
  std::string metrics =
      "logsplice_sink_state{sink=\"central\",state=\"connected\"} 1\n"
      "logsplice_sink_bytes_sent_total{sink=\"central\"} 2048\n"
      "logsplice_sink_state{sink=\"local\",state=\"connected\"} 1\n"
      "logsplice_sink_bytes_sent_total{sink=\"local\"} 4096\n"
      "logsplice_bytes_copied_total{output=\"central\"} 0\n"
      "logsplice_bytes_copied_total{output=\"local\"} 3072\n"
      "logsplice_open_fds 9\n";
  std::string text = formatStatus(parse(metrics), {}, 0);
  CHECK(text ==
        "SINK     STATE         SENT  RATE  CONNECTS  DISCONNECTS  LAG   COPIED\n"
        "central  connected  2.0 KiB     -         0            0  0 B      0 B\n"
        "local    connected  4.0 KiB     -         0            0  0 B  3.0 KiB\n"
        "\n"
        "agent: 9 open fds, 3.0 KiB copied through userspace\n");

  // The older agent-wide form keeps the table as it was and the total on the agent line.
  std::string old_form = formatStatus(parse(kNow), {}, 0);
  CHECK(old_form.find("COPIED") == std::string::npos);
  CHECK_THAT(old_form, Catch::Contains("0 B copied through userspace"));
}

TEST_CASE("formatStatus warns of unreadable input directories", "[status_client]") {
  std::string metrics =
      "logsplice_input_files_followed{input=\"nginx\"} 2\n"
      "logsplice_input_dirs_unreadable{input=\"nginx\"} 0\n"
      "logsplice_input_files_followed{input=\"secure\"} 0\n"
      "logsplice_input_dirs_unreadable{input=\"secure\"} 1\n"
      "logsplice_input_files_followed{input=\"audit\"} 0\n"
      "logsplice_input_dirs_unreadable{input=\"audit\"} 3\n";
  std::string text = formatStatus(parse(metrics), {}, 0);
  CHECK_THAT(text, Catch::Contains("warning: input secure cannot read 1 directory (permissions?): "
                                   "files under them are not followed\n"));
  CHECK_THAT(text, Catch::Contains("warning: input audit cannot read 3 directories"));
  CHECK(text.find("warning: input nginx") == std::string::npos);
  CHECK(text.find("secure ") < text.find("warning: input audit"));  // after the inputs table

  // Agents without the gauge: no warning.
  CHECK(formatStatus(parse(kNow), {}, 0).find("cannot read") == std::string::npos);
}

TEST_CASE("formatStatus without an earlier sample shows no rate", "[status_client]") {
  std::string text = formatStatus(parse(kNow), {}, 0);
  CHECK_THAT(text, Catch::Contains("central  backoff    3.0 MiB     -"));
}

TEST_CASE("formatStatus shows the top 10 lagging files and warns of missed bytes",
          "[status_client]") {
  std::string metrics =
      "logsplice_sink_up{sink=\"s\"} 1\n"
      "logsplice_sink_missed_bytes_total{sink=\"s\"} 4096\n"
      "logsplice_input_polling{input=\"nfs\"} 1\n";
  for (int i = 1; i <= 12; ++i) {
    metrics += "logsplice_file_lag_bytes{sink=\"s\",input=\"nfs\",path=\"/f" + std::to_string(i) +
               "\"} " + std::to_string(i * 100) + "\n";
  }
  std::string text = formatStatus(parse(metrics), {}, 0);
  CHECK_THAT(text, Catch::Contains("s     up"));  // no state metric: falls back to sink_up
  CHECK_THAT(text, Catch::Contains("warning: sink s missed 4.0 KiB"));
  CHECK_THAT(text, Catch::Contains("s: behind on 12 files, 7.6 KiB in total (top 10 shown)"));
  CHECK(text.find("/f12") < text.find("/f11"));  // biggest lag first
  CHECK(text.find("/f3\n") != std::string::npos);
  CHECK(text.find("/f2\n") == std::string::npos);  // 11th and 12th are cut
  CHECK(text.find("/f1\n") == std::string::npos);
  CHECK_THAT(text, Catch::Contains("polling"));

  CHECK_THAT(formatStatus({}, {}, 0), Catch::Contains("no sinks reported"));
}

TEST_CASE("formatStatus treats a counter reset as a restart", "[status_client]") {
  auto before = parse("logsplice_sink_bytes_sent_total{sink=\"s\"} 999999\n");
  auto now = parse("logsplice_sink_bytes_sent_total{sink=\"s\"} 2048\n");
  CHECK_THAT(formatStatus(now, before, 1.0), Catch::Contains("2.0 KiB/s"));
}

TEST_CASE("humanBytes", "[status_client]") {
  CHECK(humanBytes(0) == "0 B");
  CHECK(humanBytes(1023) == "1023 B");
  CHECK(humanBytes(1024) == "1.0 KiB");
  CHECK(humanBytes(1536) == "1.5 KiB");
  CHECK(humanBytes(3.0 * (1 << 30)) == "3.0 GiB");
  CHECK(humanBytes(-2048) == "-2.0 KiB");
}

namespace {

// Runs the loop on this thread while `f` (a blocking client on another thread) completes.
template <class T>
T runLoopUntil(uv_loop_t* loop, std::future<T>& f) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(
      &tick, [](uv_timer_t*) {}, 5, 5);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (f.wait_for(0s) != std::future_status::ready &&
         std::chrono::steady_clock::now() < deadline) {
    uv_run(loop, UV_RUN_ONCE);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  REQUIRE(f.wait_for(0s) == std::future_status::ready);
  return f.get();
}

void closeServer(uv_loop_t* loop, StatusServer& server) {
  bool closed = false;
  server.close([&] { closed = true; });
  while (!closed) uv_run(loop, UV_RUN_ONCE);
  REQUIRE(uv_loop_close(loop) == 0);
}

// A port on 127.0.0.1 where nothing listens (bound, then released).
uint16_t freePort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  socklen_t len = sizeof sa;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

}  // namespace

TEST_CASE("runStatus scrapes a live status server twice and prints the table", "[status_client]") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  int scrapes = 0;
  StatusServer server(
      &loop, sys::HostPort{"127.0.0.1", 0},
      [&] {
        ++scrapes;
        return std::string(scrapes == 1 ? kBefore : kNow);
      },
      [] { return StatusServer::Health{}; });
  REQUIRE_FALSE(server.start());
  std::string endpoint = "127.0.0.1:" + std::to_string(server.port());

  auto f = std::async(std::launch::async, [endpoint] {
    std::ostringstream out, err;
    int rc = runStatus("http://" + endpoint + "/", false, out, err);
    return std::make_tuple(rc, out.str(), err.str());
  });
  auto [rc, out, err] = runLoopUntil(&loop, f);
  CHECK(rc == 0);
  CHECK(err.empty());
  CHECK(scrapes == 2);
  CHECK_THAT(out, Catch::StartsWith("logsplice status of " + endpoint + "\n\n"));
  CHECK_THAT(out, Catch::Contains("central  backoff"));
  CHECK_THAT(out, Catch::Contains("MiB/s"));  // ~2 MiB over ~1 s
  CHECK_THAT(out, Catch::Contains("/var/log/nginx/error.log"));
  closeServer(&loop, server);
}

TEST_CASE("fetchMetrics returns the body and reports HTTP errors", "[status_client]") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  bool fail = false;
  StatusServer server(
      &loop, sys::HostPort{"127.0.0.1", 0},
      [&]() -> std::string {
        if (fail) throw std::runtime_error("nope");
        return "a 1\n";
      },
      nullptr);
  REQUIRE_FALSE(server.start());
  std::string endpoint = "127.0.0.1:" + std::to_string(server.port());

  auto ok = std::async(std::launch::async, [endpoint] { return fetchMetrics(endpoint); });
  auto body = runLoopUntil(&loop, ok);
  REQUIRE(body.ok());
  CHECK(body.value() == "a 1\n");

  fail = true;
  auto bad = std::async(std::launch::async, [endpoint] { return fetchMetrics(endpoint); });
  auto err = runLoopUntil(&loop, bad);
  REQUIRE_FALSE(err.ok());
  CHECK_THAT(err.error().toString(), Catch::Contains("answered HTTP 500: internal error"));
  closeServer(&loop, server);
}

TEST_CASE("runStatus explains an unreachable agent", "[status_client]") {
  std::ostringstream out, err;
  std::string endpoint = "127.0.0.1:" + std::to_string(freePort());
  CHECK(runStatus(endpoint, false, out, err) == 1);
  CHECK(out.str().empty());
  CHECK_THAT(err.str(), Catch::Contains("cannot connect to the agent at " + endpoint));
  CHECK_THAT(err.str(), Catch::Contains("Connection refused"));
  CHECK_THAT(err.str(), Catch::Contains("is the agent running with agent.metrics.listen set?"));

  std::ostringstream out2, err2;
  CHECK(runStatus("nonsense", false, out2, err2) == 1);
  CHECK_THAT(err2.str(), Catch::Contains("expected host:port"));
}

TEST_CASE("fetchMetrics times out on a peer that never answers", "[status_client]") {
  // A listening socket that is never accept()ed: connect succeeds, no answer ever comes.
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(listener.get(), 4) == 0);
  socklen_t len = sizeof sa;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&sa), &len);

  auto start = std::chrono::steady_clock::now();
  auto r = fetchMetrics("127.0.0.1:" + std::to_string(ntohs(sa.sin_port)), 200);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().sysErrno() == ETIMEDOUT);
  CHECK(took >= 200ms);
  CHECK(took < 2s);
}

TEST_CASE("formatStatus shows a collector's hosts", "[status_client]") {
  const char* before = R"(logsplice_collect_connections 1
logsplice_collect_bytes_total{host="web-1"} 1000
)";
  const char* now = R"(logsplice_collect_connections 2
logsplice_collect_refused_connections_total 3
logsplice_collect_streams 7
logsplice_collect_open_streams{host="web-1"} 2
logsplice_collect_bytes_total{host="web-1"} 5000
logsplice_collect_acked_bytes_total{host="web-1"} 4096
logsplice_collect_unsynced_bytes{host="web-1"} 904
logsplice_collect_sessions_total{host="web-1"} 1
logsplice_collect_last_ack_timestamp_seconds{host="web-1"} 0
logsplice_collect_open_streams{host="web-2"} 1
logsplice_collect_bytes_total{host="web-2"} 10
logsplice_collect_bytes_copied_total 0
logsplice_collect_free_bytes 1048576
logsplice_collect_paused_connections 1
)";
  std::string text = formatStatus(parse(now), parse(before), 2.0);
  INFO(text);
  CHECK(text.find("HOST") != std::string::npos);
  CHECK(text.find("web-1") != std::string::npos);
  CHECK(text.find("web-2") != std::string::npos);
  CHECK(text.find("2.0 KiB/s") != std::string::npos);  // (5000 - 1000) / 2 s
  CHECK(text.find("2 connections, 7 streams in the index, 3 connections refused") !=
        std::string::npos);
  CHECK(text.find("UNSYNCED") != std::string::npos);
  CHECK(text.find("904 B") != std::string::npos);
  CHECK(text.find("disk: 1.0 MiB free, 1 connections paused for space") != std::string::npos);
  CHECK(text.find("SINK") == std::string::npos);  // not the agent's table
}
