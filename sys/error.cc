#include "sys/error.h"

#include <cstring>

namespace logsplice::sys {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "ok";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kIo:
      return "i/o error";
    case ErrorCode::kInvalidConfig:
      return "invalid config";
    case ErrorCode::kCorrupt:
      return "corrupt";
    case ErrorCode::kWouldBlock:
      return "would block";
    case ErrorCode::kClosed:
      return "closed";
    case ErrorCode::kPermission:
      return "permission denied";
    case ErrorCode::kNoSpace:
      return "no space";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
  }
  return "unknown";
}

Error Error::fromErrno(int err, std::string ctx) {
  ErrorCode code = ErrorCode::kIo;
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      code = ErrorCode::kNotFound;
      break;
    case EAGAIN:
      code = ErrorCode::kWouldBlock;
      break;
    case EACCES:
    case EPERM:
      code = ErrorCode::kPermission;
      break;
    case ENOSPC:
    case EDQUOT:
      code = ErrorCode::kNoSpace;
      break;
    case EINVAL:
    case EOPNOTSUPP:
    case ENOSYS:
    case EXDEV:
      code = ErrorCode::kUnsupported;
      break;
    case EPIPE:
    case ECONNRESET:
      code = ErrorCode::kClosed;
      break;
    default:
      break;
  }
  return Error(code, std::move(ctx), err);
}

std::string Error::toString() const {
  if (isOk()) return "ok";
  std::string out = context_;
  if (errno_ != 0) {
    if (!out.empty()) out += ": ";
    out += std::strerror(errno_);
  } else if (out.empty()) {
    out = errorCodeName(code_);
  }
  return out;
}

}  // namespace logsplice::sys
