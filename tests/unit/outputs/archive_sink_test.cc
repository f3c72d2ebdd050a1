// ArchiveSink: layout, rotation, a full disk (ENOSPC) pausing and resuming, the copy fallback,
// and archive files opened without O_APPEND. The test plays the router: it writes bytes into
// the sink's pipe and calls appended() with the segment.

#include "outputs/archive_sink.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/fake_clock.h"
#include "tests/support/fake_sys_calls.h"
#include "tests/support/recording_listener.h"
#include "tests/support/test_env.h"

using namespace logsplice;
using namespace logsplice::outputs;
using logsplice::testing::FakeSysCalls;
using logsplice::testing::numberedLines;
using logsplice::testing::readFile;
using logsplice::testing::RecordingListener;
using logsplice::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// FakeSysCalls whose fdatasync can be made to fail.
class SyncingSysCalls : public FakeSysCalls {
 public:
  int sync_errno = 0;  // 0: the real call
  int sync_calls = 0;
  sys::SysResult fdatasync(int fd) override {
    ++sync_calls;
    if (sync_errno != 0) return fail(sync_errno);
    return SysCalls::fdatasync(fd);
  }
};

struct Fixture {
  testing::Loop loop;  // first: destroyed last
  TempDir tmp;
  RecordingListener listener;
  SyncingSysCalls fake;
  testing::FakeClock clock;
  config::ArchiveOutput cfg;
  std::unique_ptr<ArchiveSink> sink;
  std::map<uint64_t, uint64_t> next_offset;  // per file id

  Fixture() { cfg.dir = tmp / "archive"; }
  ~Fixture() {
    if (sink) sink->close(nullptr);
    sink.reset();
    loop.runUntilIdle();
  }
  void start() {
    sink = std::make_unique<ArchiveSink>(loop.get(), "arch", cfg, listener, 256 * 1024, fake,
                                         clock);
    REQUIRE(sink->start().isOk());
  }
  // Puts `bytes` (file bytes of file_id, continuing where the last segment ended) in the pipe
  // and registers the segment, as the router does after a fill.
  void feed(const std::string& bytes, uint64_t file_id = 1, const std::string& input = "web",
            const std::string& source = "access.log") {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(sink->pipe().writeFd(), bytes.data() + done, bytes.size() - done);
      REQUIRE(n > 0);
      done += static_cast<size_t>(n);
    }
    Segment seg;
    seg.file_id = file_id;
    seg.offset = next_offset[file_id];
    seg.length = bytes.size();
    seg.source = std::make_shared<const SourceInfo>(SourceInfo{input, source, source});
    seg.ends_line = !bytes.empty() && bytes.back() == '\n';  // as the router sets it
    next_offset[file_id] += bytes.size();
    sink->appended(seg);
  }
  // Archive files under cfg.dir in the order they were created.
  std::vector<std::string> files() const {
    std::vector<std::tuple<std::string, int, std::string>> found;
    if (!fs::exists(cfg.dir)) return {};
    for (const auto& e : fs::recursive_directory_iterator(cfg.dir)) {
      if (!e.is_regular_file()) continue;
      std::string name = e.path().filename();
      int collision = 0;
      size_t dash = name.find('-');
      if (dash != std::string::npos) collision = std::atoi(name.c_str() + dash + 1);
      found.emplace_back(e.path().parent_path().string() + "/" + name.substr(0, 6), collision,
                         e.path().string());
    }
    std::sort(found.begin(), found.end());
    std::vector<std::string> out;
    for (auto& t : found) out.push_back(std::get<2>(t));
    return out;
  }
  std::string allArchived() const {
    std::string out;
    for (const auto& f : files()) out += readFile(f);
    return out;
  }
};

// Whether this process holds `path` open without O_APPEND (found through /proc/self/fd).
int openFlagsOf(const std::string& path) {
  DIR* d = ::opendir("/proc/self/fd");
  REQUIRE(d != nullptr);
  int flags = -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string link = std::string("/proc/self/fd/") + e->d_name;
    char target[PATH_MAX];
    ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (path == target) flags = ::fcntl(std::atoi(e->d_name), F_GETFL);
  }
  ::closedir(d);
  return flags;
}

}  // namespace

TEST_CASE("ArchiveSink writes each input's lines under dir/input/source/day and reports them") {
  Fixture fx;
  fx.start();
  CHECK(fx.sink->state() == SinkState::kConnected);
  uint64_t copies = sys::CopyCounter::total();
  std::string a1 = numberedLines(0, 10), a2 = numberedLines(10, 5), b = numberedLines(100, 3);
  fx.feed(a1, 1);
  fx.feed(b, 2, "db", "../../etc/passwd");
  fx.feed(a2, 1);
  auto files = fx.files();
  REQUIRE(files.size() == 2);
  std::string web_dir = fx.cfg.dir + "/web/access.log/";
  std::string db_dir = fx.cfg.dir + "/db/.._.._etc_passwd/";
  std::string web, db;
  for (const auto& f : files) {
    if (f.rfind(web_dir, 0) == 0) web = f;
    if (f.rfind(db_dir, 0) == 0) db = f;
  }
  REQUIRE_FALSE(web.empty());
  REQUIRE_FALSE(db.empty());
  CHECK(readFile(web) == a1 + a2);
  CHECK(readFile(db) == b);
  // <day>/<HHMMSS>_<NNN>.log
  std::string rel = web.substr(web_dir.size());
  CHECK(rel.size() == std::string("YYYY-MM-DD/HHMMSS_000.log").size());
  CHECK(rel[4] == '-');
  CHECK(rel[10] == '/');
  CHECK(rel.substr(rel.size() - 4) == ".log");
  CHECK(fs::weakly_canonical(db).string().rfind(fx.cfg.dir + "/", 0) == 0);

  CHECK(fx.listener.deliveredOf(1) == a1.size() + a2.size());
  CHECK(fx.listener.deliveredOf(2) == b.size());
  CHECK(fx.sink->pendingBytes() == 0);
  CHECK(fx.sink->stats().bytes_sent == a1.size() + a2.size() + b.size());
  CHECK(fx.listener.ready > 0);
  CHECK(sys::CopyCounter::total() == copies);  // splice: nothing through our memory
  CHECK(fx.sink->acceptsData(64 * 1024));
}

TEST_CASE("ArchiveSink opens archive files without O_APPEND (splice refuses it)") {
  Fixture fx;
  fx.start();
  fx.feed(numberedLines(0, 3));
  auto open = fx.sink->openFiles();
  REQUIRE(open.size() == 1);
  int flags = openFlagsOf(open[0]);
  REQUIRE(flags != -1);
  CHECK((flags & O_APPEND) == 0);
  CHECK((flags & O_ACCMODE) == O_WRONLY);
  // Writing more keeps writing at the sink's own offset.
  fx.feed(numberedLines(3, 3));
  CHECK(readFile(open[0]) == numberedLines(0, 6));
  fx.sink->stop();
  CHECK(fx.sink->openFiles().empty());
  CHECK(openFlagsOf(open[0]) == -1);  // closed
}

TEST_CASE("ArchiveSink rotates by max_bytes, losing nothing") {
  Fixture fx;
  fx.cfg.rotate_max_bytes = 1000;
  fx.start();
  std::string all;
  for (int i = 0; i < 10; ++i) {
    std::string seg = numberedLines(i * 3, 3);  // 300 bytes
    all += seg;
    fx.feed(seg);
  }
  auto files = fx.files();
  CHECK(files.size() == 3);  // 1200 + 1200 + 600: a file is full once it reached max_bytes
  CHECK(fx.allArchived() == all);
  for (const auto& f : files) {
    CAPTURE(f);
    std::string c = readFile(f);
    CHECK(c.size() <= 1000 + 300);
    CHECK(c.back() == '\n');
  }
  CHECK(fx.listener.deliveredOf(1) == all.size());
}

TEST_CASE("ArchiveSink rotates by max_age") {
  Fixture fx;
  fx.cfg.rotate_max_age = std::chrono::milliseconds(30);
  fx.start();
  std::string a = numberedLines(0, 2), b = numberedLines(2, 2);
  fx.feed(a);
  fx.clock.advanceMs(29);
  fx.feed(a);  // not yet old
  fx.clock.advanceMs(1);  // time passes; the next write goes to a new file
  fx.feed(b);
  auto files = fx.files();
  REQUIRE(files.size() == 2);
  CHECK(readFile(files[0]) == a + a);
  CHECK(readFile(files[1]) == b);
  fx.clock.advanceMs(30);
  fx.sink->tick();  // closes the aged file
  CHECK(fx.sink->openFiles().empty());
}

// ArchiveSink::fileFor checks max_bytes/max_age before every write, and segments end wherever a
// fill ended (a short fill, a piece of a long line), so a rotation can cut a line in two: its
// head ends one archive file and its tail starts the next. The same happens inside a segment
// after a short splice (fileFor runs again for the rest). See outputs/archive_sink.cc fileFor /
// drain.
TEST_CASE("ArchiveSink rotation never splits a line across archive files") {
  Fixture fx;
  fx.cfg.rotate_max_bytes = 100;
  std::string lines = numberedLines(0, 4);  // 400 bytes
  SECTION("a segment that ends mid-line") {
    fx.start();
    fx.feed(lines.substr(0, 150));
    fx.feed(lines.substr(150));
  }
  SECTION("a short splice") {
    fx.fake.on_splice = [](int in, loff_t* off_in, int out, loff_t* off_out, size_t len,
                           unsigned flags) -> std::optional<sys::SysResult> {
      if (!off_out) return std::nullopt;
      return sys::SysCalls::real().splice(in, off_in, out, off_out, std::min<size_t>(len, 70),
                                          flags);
    };
    fx.start();
    fx.feed(lines);
  }
  CHECK(fx.allArchived() == lines);
  for (const auto& f : fx.files()) {
    CAPTURE(f);
    std::string c = readFile(f);
    CHECK(c.back() == '\n');
  }
}

TEST_CASE("ArchiveSink: a full disk pauses this sink, tick() resumes it, nothing lost") {
  Fixture fx;
  bool full = false;
  int fail_after = 0;  // splices let through before failing (a partial write, then ENOSPC)
  fx.fake.on_splice = [&](int in, loff_t* off_in, int out, loff_t* off_out, size_t len,
                          unsigned flags) -> std::optional<sys::SysResult> {
    if (!off_out || !full) return std::nullopt;  // only pipe -> archive file
    if (fail_after > 0) {
      --fail_after;
      return sys::SysCalls::real().splice(in, off_in, out, off_out, std::min<size_t>(len, 37),
                                          flags);
    }
    return FakeSysCalls::fail(ENOSPC);
  };
  fx.start();
  std::string s1 = numberedLines(0, 5), s2 = numberedLines(5, 5), s3 = numberedLines(10, 5);
  fx.feed(s1);
  CHECK(fx.listener.deliveredOf(1) == s1.size());

  full = true;
  fail_after = GENERATE(0, 1, 3);
  CAPTURE(fail_after);
  uint64_t partial = static_cast<uint64_t>(fail_after) * 37;
  fx.feed(s2);
  CHECK(fx.sink->state() == SinkState::kPaused);
  CHECK(fx.sink->stats().pauses == 1);
  CHECK_FALSE(fx.sink->acceptsData(1));                      // the router stops filling it
  CHECK(fx.listener.deliveredOf(1) == s1.size() + partial);  // only what was written
  fx.feed(s3);  // a fill that was in flight still arrives
  CHECK(fx.listener.deliveredOf(1) == s1.size() + partial);
  fx.sink->tick();  // still full: stays paused
  CHECK(fx.sink->state() == SinkState::kPaused);
  CHECK(fx.listener.deliveredOf(1) == s1.size() + partial);

  full = false;
  int ready_before = fx.listener.ready;
  fx.sink->tick();
  CHECK(fx.sink->state() == SinkState::kConnected);
  CHECK(fx.listener.ready > ready_before);
  CHECK(fx.listener.deliveredOf(1) == s1.size() + s2.size() + s3.size());
  CHECK(fx.allArchived() == s1 + s2 + s3);
  CHECK(fx.sink->pendingBytes() == 0);

  // A second episode is another pause.
  uint64_t pauses = fx.sink->stats().pauses;
  full = true;
  fail_after = 0;
  fx.feed(numberedLines(15, 1));
  CHECK(fx.sink->stats().pauses == pauses + 1);
  CHECK(fx.sink->state() == SinkState::kPaused);
  full = false;
  fx.sink->tick();
  CHECK(fx.allArchived() == s1 + s2 + s3 + numberedLines(15, 1));
}

// ArchiveSink::tick() clears paused_ before retrying, so pause() counts every failed retry
// (once a second) as a new pause: a disk full for ten minutes reads as ~600 in
// logsplice_sink_pauses_total ("Times the sink paused"). See outputs/archive_sink.cc tick() and
// pause().
TEST_CASE("ArchiveSink: retries that fail while the disk stays full are one pause") {
  Fixture fx;
  bool full = false;
  fx.fake.on_splice = [&](int, loff_t*, int, loff_t* off_out, size_t,
                          unsigned) -> std::optional<sys::SysResult> {
    if (off_out && full) return FakeSysCalls::fail(ENOSPC);
    return std::nullopt;
  };
  fx.start();
  full = true;
  fx.feed(numberedLines(0, 2));
  REQUIRE(fx.sink->state() == SinkState::kPaused);
  for (int second = 0; second < 5; ++second) fx.sink->tick();
  CHECK(fx.sink->state() == SinkState::kPaused);
  CHECK(fx.sink->stats().pauses == 1);
  full = false;
  fx.sink->tick();
  CHECK(fx.allArchived() == numberedLines(0, 2));
}

TEST_CASE("ArchiveSink: a filesystem that refuses splice switches to read/write, counted") {
  Fixture fx;
  fx.fake.on_splice = [](int, loff_t*, int, loff_t* off_out, size_t,
                         unsigned) -> std::optional<sys::SysResult> {
    if (off_out) return FakeSysCalls::fail(EINVAL);
    return std::nullopt;
  };
  fx.start();
  uint64_t copies = sys::CopyCounter::total();
  std::string all;
  for (int i = 0; i < 5; ++i) {
    std::string seg = numberedLines(i * 200, 200);  // 20 KB each
    all += seg;
    fx.feed(seg);
  }
  CHECK(fx.fake.splice_calls == 1);  // refused once, never retried
  CHECK(fx.allArchived() == all);
  CHECK(sys::CopyCounter::total() == copies + all.size());
  CHECK(fx.listener.deliveredOf(1) == all.size());
  CHECK(fx.sink->state() == SinkState::kConnected);
}

TEST_CASE("ArchiveSink: a full disk in copy mode keeps the bytes it read, counts them once") {
  Fixture fx;
  bool full = false;
  fx.fake.on_splice = [](int, loff_t*, int, loff_t* off_out, size_t,
                         unsigned) -> std::optional<sys::SysResult> {
    if (off_out) return FakeSysCalls::fail(EINVAL);
    return std::nullopt;
  };
  fx.fake.on_pwrite = [&](int, const void*, size_t, off_t) -> std::optional<sys::SysResult> {
    if (full) return FakeSysCalls::fail(ENOSPC);
    return std::nullopt;
  };
  fx.start();
  uint64_t copies = sys::CopyCounter::total();
  std::string s1 = numberedLines(0, 10), s2 = numberedLines(10, 10);
  fx.feed(s1);
  full = true;
  fx.feed(s2);
  CHECK(fx.sink->state() == SinkState::kPaused);
  CHECK(fx.listener.deliveredOf(1) == s1.size());
  full = false;
  fx.sink->tick();
  CHECK(fx.allArchived() == s1 + s2);
  CHECK(fx.listener.deliveredOf(1) == s1.size() + s2.size());
  CHECK(sys::CopyCounter::total() == copies + s1.size() + s2.size());
}

TEST_CASE("ArchiveSink: a directory it cannot create pauses it until it can") {
  Fixture fx;
  testing::writeFile(fx.tmp / "blocker", "x");
  fx.cfg.dir = fx.tmp / "blocker/archive";  // below a regular file: ENOTDIR, even as root
  fx.start();
  CHECK(fx.sink->state() == SinkState::kPaused);
  CHECK(fx.sink->stats().pauses == 1);
  std::string s = numberedLines(0, 3);
  fx.feed(s);
  CHECK(fx.listener.deliveredOf(1) == 0);
  REQUIRE(::unlink((fx.tmp / "blocker").c_str()) == 0);
  fx.sink->tick();
  CHECK(fx.sink->state() == SinkState::kConnected);
  CHECK(fx.allArchived() == s);
  CHECK(fx.listener.deliveredOf(1) == s.size());
}

TEST_CASE("ArchiveSink: two files opened in the same second never clobber each other") {
  Fixture fx;
  fx.cfg.rotate_max_bytes = 1;  // every segment starts a new file
  fx.start();
  std::string all;
  for (int i = 0; i < 20; ++i) {
    std::string seg = numberedLines(i, 1);
    all += seg;
    fx.feed(seg);
  }
  CHECK(fx.files().size() == 20);
  CHECK(fx.allArchived() == all);
}

TEST_CASE("ArchiveSink keeps at most 64 archive files open and reopens them where they stopped") {
  Fixture fx;
  fx.start();
  // 100 sources written round robin, three times: the sink must close some archive files to
  // stay under the cap, and continue each in the same file when its source writes again.
  for (int round = 0; round < 3; ++round) {
    for (int src = 0; src < 100; ++src) {
      fx.feed("r" + std::to_string(round) + " s" + std::to_string(src) + "\n",
              static_cast<uint64_t>(src + 1), "web", "source" + std::to_string(src) + ".log");
      CHECK(fx.sink->openFiles().size() <= 64);
    }
  }
  auto files = fx.files();
  CHECK(files.size() == 100);  // one archive file per source, never split by the cap
  for (const auto& f : files) {
    std::string c = readFile(f);
    CAPTURE(f, c);
    std::string src = f.substr(f.find("source") + 6);
    src = src.substr(0, src.find(".log"));
    CHECK(c == "r0 s" + src + "\nr1 s" + src + "\nr2 s" + src + "\n");
  }
}

TEST_CASE("ArchiveSink names files by the injected clock's UTC time") {
  Fixture fx;
  fx.clock.setUnixSeconds(1767323045);  // 2026-01-02T03:04:05Z
  fx.start();
  fx.feed(numberedLines(0, 2));
  auto files = fx.files();
  REQUIRE(files.size() == 1);
  CHECK(files[0] == fx.cfg.dir + "/web/access.log/2026-01-02/030405_000.log");
}

TEST_CASE("ArchiveSink with fsync: interval delivers only what fdatasync made durable") {
  Fixture fx;
  fx.cfg.fsync = config::FsyncPolicy::kInterval;
  fx.start();
  std::string s1 = numberedLines(0, 5), s2 = numberedLines(5, 5);
  fx.feed(s1);
  CHECK(fx.allArchived() == s1);
  CHECK(fx.listener.deliveredOf(1) == 0);  // written, not yet synced
  fx.sink->tick();
  CHECK(fx.fake.sync_calls == 1);
  CHECK(fx.listener.deliveredOf(1) == s1.size());

  // fdatasync fails: logged, counted, paused; nothing more is acknowledged.
  fx.feed(s2);
  fx.fake.sync_errno = EIO;
  fx.sink->tick();
  CHECK(fx.sink->syncFailures() == 1);
  CHECK(fx.sink->stats().pauses == 1);
  CHECK(fx.sink->state() == SinkState::kPaused);
  CHECK_FALSE(fx.sink->acceptsData(1));
  CHECK(fx.listener.deliveredOf(1) == s1.size());
  CHECK(fx.listener.rewinds.empty());

  // Resuming sets the suspect file aside and asks for everything not acknowledged again.
  fx.fake.sync_errno = 0;
  fx.sink->tick();
  CHECK(fx.sink->state() == SinkState::kConnected);
  REQUIRE(fx.listener.rewinds.size() == 1);
  REQUIRE(fx.listener.rewinds[0].size() == 1);
  CHECK(fx.listener.rewinds[0][0].offset == s1.size());
  fx.next_offset[1] = s1.size();
  fx.feed(s2);  // the router's resend
  fx.sink->tick();
  CHECK(fx.listener.deliveredOf(1) == s1.size() + s2.size());
  auto files = fx.files();
  REQUIRE(files.size() == 2);
  CHECK(readFile(files[1]) == s2);  // the resend went to a new file
}

TEST_CASE("ArchiveSink: a failed fdatasync at rotation pauses the sink") {
  Fixture fx;
  fx.cfg.fsync = config::FsyncPolicy::kRotate;
  fx.cfg.rotate_max_bytes = 100;
  fx.start();
  std::string s1 = numberedLines(0, 2), s2 = numberedLines(2, 2);
  fx.feed(s1);
  CHECK(fx.listener.deliveredOf(1) == s1.size());  // rotate policy: delivered on write
  fx.fake.sync_errno = ENOSPC;
  fx.feed(s2);  // the first file is full: rotation syncs it, and that fails
  CHECK(fx.fake.sync_calls == 1);
  CHECK(fx.sink->syncFailures() == 1);
  CHECK(fx.sink->state() == SinkState::kPaused);
  CHECK(fx.listener.deliveredOf(1) == s1.size());
  fx.fake.sync_errno = 0;
  fx.sink->tick();
  CHECK(fx.sink->state() == SinkState::kConnected);
  // What was still in the pipe is asked for again rather than written after the failure.
  REQUIRE(fx.listener.rewinds.size() == 1);
  CHECK(fx.listener.rewinds[0][0].offset == s1.size());
  fx.next_offset[1] = s1.size();
  fx.feed(s2);
  CHECK(fx.listener.deliveredOf(1) == s1.size() + s2.size());
  CHECK(fx.allArchived() == s1 + s2);
}

TEST_CASE("ArchiveSink::close calls back only once its timer has closed") {
  Fixture fx;
  fx.start();
  bool closed = false;
  fx.sink->close([&] { closed = true; });
  CHECK_FALSE(closed);
  fx.loop.runUntilIdle();
  CHECK(closed);
}
