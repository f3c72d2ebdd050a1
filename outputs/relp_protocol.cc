#include "outputs/relp_protocol.h"

#include "sys/version.h"

namespace logsplice::outputs::relp {
namespace {

constexpr size_t kMaxDigits = 9;

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isLetter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

std::string openOffers() {
  return std::string("relp_version=0\nrelp_software=logsplice,") + sys::kVersion +
         "\ncommands=syslog";
}

void appendFrame(uint32_t txnr, std::string_view command, std::string_view data, std::string& out) {
  out += std::to_string(txnr);
  out += ' ';
  out += command;
  out += ' ';
  out += std::to_string(data.size());
  if (!data.empty()) {
    out += ' ';
    out += data;
  }
  out += '\n';
}

void appendSyslogHeader(uint32_t txnr, std::string& out) {
  out += std::to_string(txnr);
  out += " syslog ";
}

void Parser::feed(const char* data, size_t len) {
  if (!error_.empty()) return;
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, len);
}

void Parser::reset() {
  buf_.clear();
  pos_ = 0;
  error_.clear();
}

Parser::Result Parser::fail(std::string why) {
  error_ = std::move(why);
  buf_.clear();
  pos_ = 0;
  return Result::kError;
}

Parser::Result Parser::next(Frame& frame) {
  if (!error_.empty()) return Result::kError;
  const size_t end = buf_.size();
  size_t p = pos_;
  // A number of 1..9 digits followed by one of `stops`; returns npos for "need more".
  auto number = [&](uint64_t& value, const char* what) -> int {
    size_t digits = 0;
    value = 0;
    while (p < end && isDigit(buf_[p])) {
      if (++digits > kMaxDigits) return -1;
      value = value * 10 + static_cast<uint64_t>(buf_[p] - '0');
      ++p;
    }
    if (p == end) return 0;
    if (digits == 0) {
      fail(std::string("expected a ") + what + " (digits)");
      return -2;
    }
    return 1;
  };
  uint64_t txnr = 0;
  int r = number(txnr, "transaction number");
  if (r == -1) return fail("transaction number longer than 9 digits");
  if (r == -2) return Result::kError;
  if (r == 0) return Result::kNeedMore;
  if (buf_[p] != ' ') return fail("no space after the transaction number");
  ++p;
  const size_t cmd_begin = p;
  while (p < end && isLetter(buf_[p])) {
    if (p - cmd_begin >= kMaxCommandBytes) return fail("command longer than 32 letters");
    ++p;
  }
  if (p == end) return Result::kNeedMore;
  if (p == cmd_begin) return fail("expected a command (letters)");
  if (buf_[p] != ' ') return fail("no space after the command");
  const std::string_view command(buf_.data() + cmd_begin, p - cmd_begin);
  ++p;
  uint64_t datalen = 0;
  r = number(datalen, "data length");
  if (r == -1) return fail("data length longer than 9 digits");
  if (r == -2) return Result::kError;
  if (r == 0) return Result::kNeedMore;
  if (datalen > kMaxDataBytes) {
    return fail("data length " + std::to_string(datalen) + " over the " +
                std::to_string(kMaxDataBytes) + " bytes a response may have");
  }
  size_t data_begin = p;
  if (datalen == 0) {
    // No DATA; a space before the trailer is tolerated.
    if (buf_[p] == ' ') {
      ++p;
      if (p == end) return Result::kNeedMore;
    }
    data_begin = p;
  } else {
    if (buf_[p] != ' ') return fail("no space after the data length");
    ++p;
    data_begin = p;
    if (end - p < datalen + 1) return Result::kNeedMore;
    p += datalen;
  }
  if (buf_[p] != '\n') return fail("frame not ended by a newline");
  ++p;
  frame.txnr = static_cast<uint32_t>(txnr);
  frame.command = command;
  frame.data = std::string_view(buf_.data() + data_begin, static_cast<size_t>(datalen));
  pos_ = p;
  return Result::kFrame;
}

bool parseRsp(std::string_view data, Rsp& rsp) {
  if (data.size() < 3 || !isDigit(data[0]) || !isDigit(data[1]) || !isDigit(data[2])) return false;
  rsp.code = (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');
  std::string_view rest = data.substr(3);
  rsp.text = {};
  rsp.data = {};
  if (rest.empty()) return true;
  if (rest[0] == '\n') {
    rsp.data = rest.substr(1);
    return true;
  }
  if (rest[0] != ' ') return false;
  rest.remove_prefix(1);
  size_t lf = rest.find('\n');
  rsp.text = rest.substr(0, lf);
  if (lf != std::string_view::npos) rsp.data = rest.substr(lf + 1);
  return true;
}

bool offersCommand(std::string_view offers, std::string_view command) {
  constexpr std::string_view kKey = "commands=";
  while (!offers.empty()) {
    size_t lf = offers.find('\n');
    std::string_view line = offers.substr(0, lf);
    offers = lf == std::string_view::npos ? std::string_view() : offers.substr(lf + 1);
    if (line.substr(0, kKey.size()) != kKey) continue;
    std::string_view values = line.substr(kKey.size());
    while (!values.empty()) {
      size_t comma = values.find(',');
      if (values.substr(0, comma) == command) return true;
      values = comma == std::string_view::npos ? std::string_view() : values.substr(comma + 1);
    }
  }
  return false;
}

std::string printable(std::string_view text, size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace logsplice::outputs::relp
