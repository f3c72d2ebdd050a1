#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace logsplice::sys {

enum class ErrorCode {
  kOk,
  kNotFound,
  kIo,
  kInvalidConfig,
  kCorrupt,
  kWouldBlock,
  kClosed,
  kPermission,
  kNoSpace,
  kUnsupported,  // e.g. splice refused by a filesystem (EINVAL/EOPNOTSUPP/ENOSYS/EXDEV)
  kInvalidArgument,
};

const char* errorCodeName(ErrorCode code);

// A value describing a failure, like LevelDB's Status: a code, the errno (0 if none) and a
// context string (a path, host:port, or file:line:col). Cheap to copy; no exceptions.
class [[nodiscard]] Error {
 public:
  Error() = default;
  Error(ErrorCode code, std::string context, int err = 0)
      : code_(code), errno_(err), context_(std::move(context)) {}

  static Error ok() { return Error(); }
  static Error notFound(std::string ctx) { return {ErrorCode::kNotFound, std::move(ctx)}; }
  static Error io(std::string ctx, int err = 0) { return {ErrorCode::kIo, std::move(ctx), err}; }
  static Error invalidConfig(std::string ctx) {
    return {ErrorCode::kInvalidConfig, std::move(ctx)};
  }
  static Error corrupt(std::string ctx) { return {ErrorCode::kCorrupt, std::move(ctx)}; }
  static Error invalidArgument(std::string ctx) {
    return {ErrorCode::kInvalidArgument, std::move(ctx)};
  }
  // Maps an errno to the closest code (ENOENT -> NotFound, EAGAIN -> WouldBlock, ...).
  static Error fromErrno(int err, std::string ctx);

  bool isOk() const { return code_ == ErrorCode::kOk; }
  explicit operator bool() const { return !isOk(); }  // true when there is an error
  ErrorCode code() const { return code_; }
  int sysErrno() const { return errno_; }
  const std::string& context() const { return context_; }
  // "context: strerror (ECODE)" or "context" when there is no errno.
  std::string toString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  int errno_ = 0;
  std::string context_;
};

// Either a value or an Error. Functions that can fail and return something return this.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  T& operator*() { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace logsplice::sys
