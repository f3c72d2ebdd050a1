// Model test of one Follower alone (no tailer): seeded random sequences of file operations
// (append, rename away, create a new file under the name, truncate, delete, suspend) are applied
// to a real file in a temp dir, followed by a Follower driven the way the tailer drives it, and
// to a tiny model. After each step the follower's state, size, complete end, generation and the
// budget unit it holds must agree with the model. The seed is printed on failure;
// LOGSPLICE_MODEL_SEED=<n> replays one seed.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "inputs/fd_budget.h"
#include "inputs/follower.h"
#include "inputs/path_glob.h"
#include "tests/unit/inputs/tailer_harness.h"

namespace logsplice::inputs {

using testing::TempDir;
using State = Follower::State;

namespace {

class FollowerModel {
 public:
  explicit FollowerModel(uint64_t seed) : rng_(seed), path_(dir_ / "app.log") {
    writer_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    REQUIRE(writer_ >= 0);
    write("first line\npartial");
    sys::UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    struct stat st;
    REQUIRE(::fstat(fd.get(), &st) == 0);
    auto id = identify(fd.get(), st);
    REQUIRE(id.ok());
    FdLease lease = budget_.lease();
    REQUIRE(lease);
    f_ = std::make_unique<Follower>(Follower::nextId(), path_, "in", *id, std::move(fd), false, 0,
                                    now_, std::move(lease));
    sync();
    check();
  }
  ~FollowerModel() {
    if (writer_ >= 0) ::close(writer_);
  }

  void run(int steps) {
    for (int i = 0; i < steps && state_ != State::kClosed; ++i) {
      step();
      sync();
      INFO("ops: " << ops_.str());
      check();
    }
  }

 private:
  void write(const std::string& s) {
    REQUIRE(::write(writer_, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
    data_ += s;
  }

  void step() {
    now_ += 1500;  // past Follower::kHeadRecheckMs: every refresh re-reads the head
    switch (std::uniform_int_distribution<int>(0, 10)(rng_)) {
      case 0:
      case 1:
      case 2: {  // append whole lines, or a piece of one
        static const char* pieces[] = {"a line\n", "two\nlines\n", "no newline yet", "x", "\n"};
        std::string s = pieces[std::uniform_int_distribution<int>(0, 4)(rng_)];
        ops_ << "append(" << s.size() << ") ";
        write(s);
        if (state_ == State::kSuspended) state_ = State::kLive;  // changed: reopened by path
        break;
      }
      case 3:  // rename away (rotation by rename)
        if (name_.empty() || name_ != path_) return;
        name_ = path_ + "." + std::to_string(++renames_);
        ops_ << "rename ";
        REQUIRE(::rename(path_.c_str(), name_.c_str()) == 0);
        // Suspended: found by inode in its directory with nothing new, so closed.
        state_ = state_ == State::kLive ? State::kRotated : State::kClosed;
        break;
      case 4:  // another file under the configured name
        if (name_ == path_ || ::access(path_.c_str(), F_OK) == 0) return;
        ops_ << "create ";
        testing::append(path_, "someone else's file\n");
        break;
      case 5:  // truncate (copytruncate's second half)
        // An empty file truncated again may keep its timestamps (same clock tick): a suspended
        // follower could not see that, and there is nothing to see.
        if (data_.empty()) return;
        ops_ << "truncate ";
        REQUIRE(::ftruncate(writer_, 0) == 0);
        ++generation_;
        data_.clear();
        if (state_ == State::kSuspended) state_ = State::kLive;  // changed: reopened by path
        break;
      case 6:  // delete whatever name it has
        if (name_.empty()) return;
        ops_ << "delete ";
        REQUIRE(::unlink(name_.c_str()) == 0);
        name_.clear();
        if (state_ == State::kLive || state_ == State::kRotated) {
          state_ = State::kDeleted;
        } else if (state_ == State::kSuspended) {
          state_ = State::kClosed;  // gone while its fd was closed: nothing left to read
        }
        break;
      case 7:  // suspend (the budget wants the fd of an idle live file back)
        if (state_ != State::kLive) return;
        ops_ << "suspend ";
        f_->suspend();
        state_ = State::kSuspended;
        break;
      case 8:  // a last line, then rename away, seen in one batch
        if (name_ != path_) return;
        ops_ << "append+rename ";
        write("last\n");
        name_ = path_ + "." + std::to_string(++renames_);
        REQUIRE(::rename(path_.c_str(), name_.c_str()) == 0);
        // Suspended: found by inode in its directory, grown: reopened there to be drained.
        state_ = State::kRotated;
        break;
      default:  // nothing: a refresh with no change
        ops_ << "idle ";
        break;
    }
  }

  // What the tailer does on an event for this file.
  void sync() {
    if (f_->state() == State::kClosed) return;
    if (f_->suspended()) {
      Follower::NameCheck n = f_->checkName();
      if (n == Follower::NameCheck::kGone) {
        f_->markRotated(now_);
        REQUIRE(f_->state() == State::kSuspendedRotated);
      } else if (n != Follower::NameCheck::kThisChanged) {
        return;
      }
      Follower::Reopen r = f_->reopen(dir_.path(), [this] { return budget_.lease(); });
      if (r.kind == Follower::Reopen::kNothingNew || r.kind == Follower::Reopen::kMissing) {
        f_->markClosed();
        return;
      }
      REQUIRE(r.kind == Follower::Reopen::kResumed);
    }
    f_->refresh(sys::SysCalls::real(), now_);
    if (f_->state() == State::kLive && f_->checkName() == Follower::NameCheck::kGone) {
      f_->markRotated(now_);
    }
  }

  void check() {
    INFO("seed state: model " << Follower::stateName(state_) << ", follower "
                              << Follower::stateName(f_->state()));
    REQUIRE(f_->state() == state_);
    CHECK(f_->live() == (state_ == State::kLive || state_ == State::kSuspended));
    // The follower holds a unit of the budget exactly while its fd is open.
    bool open = state_ == State::kLive || state_ == State::kRotated || state_ == State::kDeleted;
    CHECK(budget_.inUse() == (open ? 1u : 0u));
    CHECK((f_->fd() >= 0) == open);
    if (state_ == State::kClosed || state_ == State::kSuspended) return;
    REQUIRE(f_->size() == data_.size());
    size_t nl = data_.rfind('\n');
    CHECK(f_->completeEnd() == (nl == std::string::npos ? 0 : nl + 1));
    CHECK(f_->generation() == generation_);
  }

  std::mt19937_64 rng_;
  TempDir dir_;
  std::string path_;
  std::string name_ = path_;  // where the followed file is now ("" once deleted)
  int writer_ = -1;
  std::string data_;
  FdBudget budget_{1};
  std::unique_ptr<Follower> f_;
  State state_ = State::kLive;
  uint64_t generation_ = 0;
  int renames_ = 0;
  uint64_t now_ = 1000;
  std::ostringstream ops_;
};

}  // namespace

TEST_CASE("Follower state machine agrees with a model over random file operations") {
  uint64_t first = 1;
  int seeds = 200;
  if (const char* s = std::getenv("LOGSPLICE_MODEL_SEED")) {
    first = std::strtoull(s, nullptr, 10);
    seeds = 1;
  }
  for (uint64_t seed = first; seed < first + static_cast<uint64_t>(seeds); ++seed) {
    INFO("seed " << seed << " (LOGSPLICE_MODEL_SEED=" << seed << " replays it)");
    FollowerModel m(seed);
    m.run(40);
  }
}

TEST_CASE("Follower: states have names and closing is final") {
  CHECK(std::string(Follower::stateName(State::kLive)) == "live");
  CHECK(std::string(Follower::stateName(State::kRotated)) == "rotated");
  CHECK(std::string(Follower::stateName(State::kDeleted)) == "deleted");
  CHECK(std::string(Follower::stateName(State::kSuspended)) == "suspended");
  CHECK(std::string(Follower::stateName(State::kClosed)) == "closed");
  TempDir dir;
  testing::append(dir / "a.log", "x\n");
  sys::UniqueFd fd(::open((dir / "a.log").c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  REQUIRE(::fstat(fd.get(), &st) == 0);
  auto id = identify(fd.get(), st);
  REQUIRE(id.ok());
  FdBudget budget(2);
  Follower f(1, dir / "a.log", "in", *id, std::move(fd), false, 0, 0, budget.lease());
  CHECK(budget.inUse() == 1);
  f.markClosed();
  CHECK(f.state() == State::kClosed);
  CHECK(f.fd() == -1);
  CHECK(budget.inUse() == 0);  // the lease went back with the fd
  f.requestRecheck();          // no owner, closed: a no-op
}

namespace {

// Runs `illegal` in a forked child: it must abort (LS_ASSERT), not go on.
bool abortsInChild(const std::function<void()>& illegal) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(STDERR_FILENO);  // the assertion's message is expected
    illegal();
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

}  // namespace

TEST_CASE("Follower: an illegal transition is an internal error, not a state") {
  TempDir dir;
  testing::append(dir / "a.log", "x\n");
  auto make = [&] {
    sys::UniqueFd fd(::open((dir / "a.log").c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st;
    REQUIRE(::fstat(fd.get(), &st) == 0);
    auto id = identify(fd.get(), st);
    REQUIRE(id.ok());
    return std::make_unique<Follower>(1, dir / "a.log", "in", *id, std::move(fd), false, 0, 0);
  };
  auto f = make();
  f->markRotated(1);
  CHECK(abortsInChild([&] { f->suspend(); }));                // rotated: only a live one suspends
  CHECK(abortsInChild([&] { f->markRotated(2); }));           // left its name once already
  CHECK(abortsInChild([&] { f->resume(sys::UniqueFd()); }));  // not suspended
  f->markClosed();
  CHECK(abortsInChild([&] { f->markClosed(); }));  // closed is final
  auto g = make();
  CHECK_FALSE(abortsInChild([&] {
    g->suspend();
    g->markRotated(3);
  }));  // legal: live -> suspended -> rotated while suspended
}

}  // namespace logsplice::inputs
