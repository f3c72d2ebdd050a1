// Model-based test of the follower state machine (after Vector's file-source interpreter):
// seeded random sequences of writes, partial lines, long lines, rename+create, copytruncate,
// truncate and delete+recreate run against the real tailer on a real temp directory. A fast
// sink (RecordingObserver) ships everything reported between steps; at the end, what each file
// instance shipped is compared with a model of what was written to it. The seed is printed on
// failure; LOGSPLICE_MODEL_SEED=<n> replays one seed.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "inputs/input_tailer.h"
#include "tests/unit/inputs/tailer_harness.h"

namespace logsplice::inputs {

using testing::Loop;
using testing::RecordingObserver;
using testing::TailerRun;
using testing::TempDir;
using testing::testConfig;

namespace {

constexpr uint64_t kMaxLine = 64;

// One file instance (one inode lifetime) as the model sees it.
struct Instance {
  uint64_t dev = 0, ino = 0;
  size_t first_record = 0;     // records opened before this instance existed are not its own
  std::string shipped_before;  // content before truncations (all shipped: we had caught up)
  std::string content;         // what the file holds now
  bool live = true;            // still the writer's file under the configured name
  size_t created = 0;          // creation order
};

struct Variant {
  const char* name;
  bool poll;
  bool rotated_names_match;  // glob app.log* (renames stay inside the glob; no copytruncate)
  int seeds;
  int steps;
};

class Model {
 public:
  Model(const Variant& v, uint64_t seed) : v_(v), rng_(seed) {
    cfg_ = testConfig("model", {dir_.path() + (v.rotated_names_match ? "/app.log*" : "/*.log")});
    cfg_.max_line_bytes = kMaxLine;
    cfg_.rotate_wait = std::chrono::milliseconds(30);
    cfg_.poll = v.poll;
    cfg_.poll_interval = std::chrono::milliseconds(5);
  }

  void run() {
    TailerRun tailer(loop_, cfg_, obs_);
    newInstance();
    for (int step = 0; step < v_.steps; ++step) {
      doStep();
      // Generous: under ASan on a loaded 2-core machine one step has taken over 3 s.
      bool ok = loop_.waitFor([&] { return caughtUp(); }, 15000);
      INFO("ops: " << ops_.str());
      INFO("state: " << describe());
      REQUIRE(ok);
    }
    ::close(fd_);
    fd_ = -1;
    for (auto& inst : instances_) inst.live = inst.live && &inst == &instances_.back();
    INFO("ops: " << ops_.str());
    // Rotated and deleted files finish: shipped whole (final partial line flushed), closed.
    REQUIRE(loop_.waitFor([&] { return caughtUp() && rotatedClosed(); }, 5000));
    verify();
  }

 private:
  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  std::string path() const { return dir_ / "app.log"; }

  std::string line() {
    std::string s = "L" + std::to_string(seq_++) + " ";
    s += std::string(pick(40), static_cast<char>('a' + pick(26)));
    return s + "\n";
  }
  void write(const std::string& data) {
    REQUIRE(::write(fd_, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    cur().content += data;
  }
  Instance& cur() { return instances_[writer_instance_]; }

  void newInstance() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    REQUIRE(fd_ >= 0);
    struct stat st;
    REQUIRE(::fstat(fd_, &st) == 0);
    Instance inst;
    inst.dev = st.st_dev;
    inst.ino = st.st_ino;
    inst.first_record = obs_.order.size();
    inst.created = instances_.size();
    instances_.push_back(inst);
    writer_instance_ = instances_.size() - 1;
  }
  bool endsWithNewline() { return cur().content.empty() || cur().content.back() == '\n'; }

  void doStep() {
    uint64_t r = pick(100);
    if (r < 40) {
      int n = 1 + static_cast<int>(pick(5));
      std::string batch;
      for (int i = 0; i < n; ++i) batch += line();
      write(batch);
      ops_ << "append" << n << ' ';
    } else if (r < 52) {
      std::string l = line();
      write(l.substr(0, 1 + pick(l.size() - 1)));  // the rest never comes: the next line joins
      ops_ << "partial ";
    } else if (r < 58) {
      std::string long_line = "LONG" + std::to_string(seq_++) + std::string(80 + pick(200), 'x');
      if (pick(2) == 0) {
        write(long_line + "\n");  // complete in one batch: shipped unsplit
        ops_ << "longline ";
      } else {
        write(long_line);  // unterminated: split every kMaxLine bytes
        ops_ << "longpartial ";
      }
    } else if (r < 72) {
      std::string to = dir_ / ("app.log." + std::to_string(rotation_++));
      REQUIRE(::rename(path().c_str(), to.c_str()) == 0);
      if (pick(2) == 0) write(line());  // the writer has not reopened yet
      cur().live = false;
      newInstance();
      ops_ << "rename+create ";
    } else if (r < 80 && endsWithNewline()) {
      if (!v_.rotated_names_match) {
        std::string copy = dir_ / ("copy." + std::to_string(rotation_++));
        testing::append(copy, cur().content);
      }
      REQUIRE(::ftruncate(fd_, 0) == 0);
      cur().shipped_before += cur().content;
      cur().content.clear();
      if (pick(3) != 0) write(line() + line());
      ops_ << (v_.rotated_names_match ? "truncate " : "copytruncate ");
    } else if (r < 88) {
      REQUIRE(::unlink(path().c_str()) == 0);
      if (pick(2) == 0) write(line());
      cur().live = false;
      newInstance();
      ops_ << "delete+recreate ";
    } else if (r < 92 && rotation_ > 0) {
      std::string victim = dir_ / ("app.log." + std::to_string(pick(rotation_)));
      ::unlink(victim.c_str());  // logrotate removing an old file (maybe still followed)
      ops_ << "delete-old ";
    } else {
      ops_ << "idle ";
    }
  }

  // The records (followers) that followed this instance.
  std::vector<const testing::Record*> recordsOf(const Instance& inst) const {
    // Inode numbers are reused: a later instance with the same inode owns the records opened
    // after it was created.
    size_t end = obs_.order.size();
    for (const auto& other : instances_) {
      if (&other != &inst && other.dev == inst.dev && other.ino == inst.ino &&
          other.first_record >= inst.first_record && other.created > inst.created) {
        end = std::min(end, other.first_record);
      }
    }
    std::vector<const testing::Record*> out;
    for (size_t i = inst.first_record; i < end; ++i) {
      const auto& r = obs_.records.at(obs_.order[i]);
      if (r.identity.dev == inst.dev && r.identity.ino == inst.ino) out.push_back(&r);
    }
    return out;
  }
  std::string rawOf(const Instance& inst) const {
    std::string out;
    for (const auto* r : recordsOf(inst)) out += r->raw;
    return out;
  }
  // Every complete line of every instance has been shipped (a fast sink keeps up).
  bool caughtUp() const {
    // Stat polling cannot know a file that was created and renamed away between two ticks:
    // let it discover each new file before the next step (inotify needs no such help).
    if (v_.poll && instances_.back().live && recordsOf(instances_.back()).empty()) return false;
    for (const auto& inst : instances_) {
      std::string want = inst.shipped_before + inst.content;
      size_t complete = want.rfind('\n');
      size_t need = complete == std::string::npos ? 0 : complete + 1;
      std::string got = rawOf(inst);
      if (got.size() < need) return false;
      if (want.compare(0, got.size(), got) != 0) return false;
    }
    return true;
  }
  // Instances that are behind, for failure messages.
  std::string describe() const {
    std::ostringstream out;
    for (size_t i = 0; i < instances_.size(); ++i) {
      const Instance& inst = instances_[i];
      std::string want = inst.shipped_before + inst.content;
      std::string got = rawOf(inst);
      size_t complete = want.rfind('\n');
      size_t need = complete == std::string::npos ? 0 : complete + 1;
      if (got.size() >= need && want.compare(0, got.size(), got) == 0) continue;
      out << "\n instance " << i << " ino " << inst.ino << (inst.live ? " live" : " gone")
          << ": want " << want.size() << " (complete " << need << ") got " << got.size()
          << " records " << recordsOf(inst).size() << " prefix-ok "
          << (want.compare(0, std::min(got.size(), want.size()), got.substr(0, want.size())) == 0);
      for (const auto* r : recordsOf(inst)) {
        out << " [rec " << r->id << " " << r->path << " start " << r->default_start << " cursor "
            << r->cursor << " closed " << r->closed << " trunc " << r->truncated << "]";
      }
      out << "\n  want: " << want.substr(0, 300) << "\n  got:  " << got.substr(0, 300);
    }
    return out.str();
  }
  bool rotatedClosed() const {
    for (const auto& inst : instances_) {
      if (inst.live) continue;
      for (const auto* r : recordsOf(inst)) {
        if (!r->closed) return false;
      }
    }
    return true;
  }

  void verify() {
    for (size_t i = 0; i < instances_.size(); ++i) {
      const Instance& inst = instances_[i];
      INFO("instance " << i << (inst.live ? " (live)" : " (rotated/deleted)"));
      std::string want = inst.shipped_before + inst.content;
      auto recs = recordsOf(inst);
      if (want.empty()) {
        CHECK(rawOf(inst).empty());
        continue;
      }
      REQUIRE(recs.size() == 1);  // one follower per inode lifetime, never a duplicate
      const auto& rec = *recs[0];
      if (inst.live) {
        size_t complete = want.rfind('\n');
        size_t need = complete == std::string::npos ? 0 : complete + 1;
        CHECK(rec.raw.size() >= need);
        CHECK(want.compare(0, rec.raw.size(), rec.raw) == 0);
      } else {
        CHECK(rec.raw == want);  // everything, including the final partial line
        CHECK(rec.shipped.back() == '\n');
      }
      // Breaks never produce empty lines.
      CHECK(rec.shipped.find("\n\n") == std::string::npos);
    }
  }

  Variant v_;
  std::mt19937_64 rng_;
  TempDir dir_;
  Loop loop_;
  RecordingObserver obs_;
  config::InputConfig cfg_;
  std::vector<Instance> instances_;
  size_t writer_instance_ = 0;
  int fd_ = -1;
  uint64_t seq_ = 0;
  uint64_t rotation_ = 0;
  std::ostringstream ops_;
};

void runVariant(const Variant& v) {
  std::vector<uint64_t> seeds;
  if (const char* s = std::getenv("LOGSPLICE_MODEL_SEED")) {
    seeds.push_back(std::strtoull(s, nullptr, 10));
  } else {
    for (int i = 1; i <= v.seeds; ++i) seeds.push_back(static_cast<uint64_t>(i) * 7919);
  }
  for (uint64_t seed : seeds) {
    INFO("variant " << v.name << ", seed " << seed << " (replay: LOGSPLICE_MODEL_SEED=" << seed
                    << ")");
    Model(v, seed).run();
  }
}

}  // namespace

TEST_CASE("model: random writes and rotations against the real tailer (inotify)", "[model]") {
  runVariant({"inotify", false, false, 30, 200});
}

TEST_CASE("model: rotated names inside the glob are deduplicated by inode", "[model]") {
  runVariant({"inotify-glob-matches-rotated", false, true, 10, 150});
}

TEST_CASE("model: the same sequences under stat polling", "[model][poll]") {
  runVariant({"poll", true, false, 4, 100});
}

}  // namespace logsplice::inputs
