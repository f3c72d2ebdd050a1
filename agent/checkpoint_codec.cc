#include "agent/checkpoint_codec.h"

#include <array>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <vector>

namespace logsplice::agent::ckpt {
namespace {

constexpr std::string_view kMagic = "logsplice-checkpoints";
constexpr std::string_view kLogMagic = "logsplice-checkpoint-log";
constexpr int kSnapshotVersion = 2;
constexpr int kLogVersion = 1;
// A record longer than this is damage, not data (an entry with a few outputs is ~200 bytes).
constexpr size_t kMaxPayload = 1 << 20;

std::array<uint32_t, 256> makeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

template <class T>
bool parseNum(std::string_view s, T* out, int base = 10) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

// Splits on single spaces; at most `max` fields (the last one takes the rest).
size_t split(std::string_view line, std::string_view* out, size_t max) {
  size_t n = 0;
  while (n + 1 < max) {
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) break;
    out[n++] = line.substr(0, sp);
    line.remove_prefix(sp + 1);
  }
  out[n++] = line;
  return n;
}

template <class T>
void appendNum(std::string& out, T v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, p);
}

void appendHex(std::string& out, uint64_t v, int width) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%0*" PRIx64, width, v);
  out += buf;
}

// The fields shared by a snapshot's f record and a log's p record:
// <dev> <ino> <fingerprint:16 hex> <fingerprint_len> <updated_unix> <input> <path>
void appendIdentity(std::string& out, const CheckpointEntry& e) {
  appendNum(out, e.identity.dev);
  out += ' ';
  appendNum(out, e.identity.ino);
  out += ' ';
  appendHex(out, e.identity.fingerprint, 16);
  out += ' ';
  appendNum(out, e.identity.fingerprint_len);
  out += ' ';
  appendNum(out, e.updated_unix);
  out += ' ';
  appendEncoded(out, e.input);
  out += ' ';
  appendEncoded(out, e.path);
}

bool parseIdentity(const std::string_view* f, CheckpointEntry* e) {
  return parseNum(f[0], &e->identity.dev) && parseNum(f[1], &e->identity.ino) &&
         parseNum(f[2], &e->identity.fingerprint, 16) &&
         parseNum(f[3], &e->identity.fingerprint_len) && parseNum(f[4], &e->updated_unix) &&
         decode(f[5], &e->input) && decode(f[6], &e->path);
}

}  // namespace

uint32_t crc32c(std::string_view data) {
  static const std::array<uint32_t, 256> table = makeCrcTable();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void appendEncoded(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += '%';  // a lone '%' stands for the empty string
    return;
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (c > 0x20 && c < 0x7f && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
}

bool decode(std::string_view s, std::string* out) {
  out->clear();
  if (s == "%") return true;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    unsigned v = 0;
    if (i + 2 >= s.size() || !parseNum(s.substr(i + 1, 2), &v, 16)) return false;
    out->push_back(static_cast<char>(v));
    i += 2;
  }
  return true;
}

// ---- Snapshot ----

void appendSnapshotHeader(std::string& out, uint64_t generation) {
  out += kMagic;
  out += ' ';
  appendNum(out, kSnapshotVersion);
  out += ' ';
  appendNum(out, generation);
  out += '\n';
}

void appendSnapshotEntry(std::string& out, std::string_view put_payload) {
  // "p <7 identity fields> [<sink> <off>]..." -> "f <7 fields>\n" + "s <sink> <off>\n"...: the
  // fields are encoded alike in both, so this is only a matter of spaces and newlines.
  constexpr auto npos = std::string_view::npos;
  std::string_view rest = put_payload.substr(2);
  size_t end = 0;
  size_t start = 0;
  for (int i = 0; i < 7; ++i) {  // the space after the 7th field, if sinks follow
    end = rest.find(' ', start);
    if (end == npos) break;
    start = end + 1;
  }
  out += "f ";
  out += rest.substr(0, end);
  out += '\n';
  while (end != npos) {
    size_t sink_end = rest.find(' ', end + 1);
    if (sink_end == npos) break;
    size_t off_end = rest.find(' ', sink_end + 1);
    out += "s ";
    out += rest.substr(end + 1, (off_end == npos ? rest.size() : off_end) - end - 1);
    out += '\n';
    end = off_end;
  }
}

void appendSnapshotTrailer(std::string& out, size_t count) {
  uint64_t sum = fnv1a(out);
  out += "end ";
  appendNum(out, count);
  out += ' ';
  appendHex(out, sum, 16);
  out += '\n';
}

std::string serializeSnapshot(const EntryMap& entries, uint64_t generation) {
  std::string text;
  text.reserve(64 + entries.size() * 160);
  appendSnapshotHeader(text, generation);
  std::string payload;
  for (const auto& [key, e] : entries) {
    payload.clear();
    appendPutPayload(payload, e);
    appendSnapshotEntry(text, payload);
  }
  appendSnapshotTrailer(text, entries.size());
  return text;
}

uint64_t peekSnapshotGeneration(const std::string& text) {
  std::string_view first(text);
  first = first.substr(0, first.find('\n'));
  std::string_view f[4];
  uint64_t gen = 0;
  if (split(first, f, 4) >= 3 && f[0] == kMagic && parseNum(f[2], &gen)) return gen;
  return 0;
}

sys::Result<Snapshot> parseSnapshot(const std::string& text, const std::string& name) {
  Snapshot snap;
  auto corrupt = [&](size_t line, const std::string& why) {
    return sys::Error::corrupt(name + ":" + std::to_string(line) + ": " + why);
  };
  size_t end_pos = text.rfind("end ");
  if (end_pos == std::string::npos || (end_pos > 0 && text[end_pos - 1] != '\n')) {
    return corrupt(0, "no end record (truncated file)");
  }
  std::string_view body(text.data(), end_pos);
  std::string_view trailer(text.data() + end_pos, text.size() - end_pos);
  if (!trailer.empty() && trailer.back() == '\n') trailer.remove_suffix(1);
  std::string_view t[3];
  size_t count = 0;
  if (split(trailer, t, 3) != 3 || !parseNum(t[1], &count)) return corrupt(0, "bad end record");
  uint64_t sum = 0;
  if (t[2].size() != 16 || !parseNum(t[2], &sum, 16) || sum != fnv1a(body)) {
    return corrupt(0, "checksum mismatch");
  }

  size_t n = 0;
  CheckpointEntry* current = nullptr;
  std::string decoded;
  while (!body.empty()) {
    size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    ++n;
    std::string_view f[9];
    size_t nf = split(line, f, 9);
    if (n == 1) {
      if (f[0] != kMagic || nf < 2 || !parseNum(f[1], &snap.version)) {
        return corrupt(n, "not a checkpoint file");
      }
      if (snap.version != 1 && snap.version != kSnapshotVersion) {
        return corrupt(n, "unsupported version " + std::to_string(snap.version));
      }
      if (snap.version == kSnapshotVersion && (nf != 3 || !parseNum(f[2], &snap.generation))) {
        return corrupt(n, "bad header");
      }
      continue;
    }
    if (f[0] == "f") {
      CheckpointEntry e;
      if (nf != 8 || !parseIdentity(f + 1, &e)) return corrupt(n, "bad file record");
      Key key = keyOf(e);
      current = &(snap.entries[key] = std::move(e));
    } else if (f[0] == "s") {
      uint64_t off = 0;
      if (!current || nf != 3 || !parseNum(f[2], &off) || !decode(f[1], &decoded)) {
        return corrupt(n, "bad sink record");
      }
      current->offsets[decoded] = off;
    } else {
      return corrupt(n, "unknown record '" + std::string(f[0]) + "'");
    }
  }
  if (n == 0) return corrupt(0, "not a checkpoint file");
  if (snap.entries.size() != count) return corrupt(n, "entry count mismatch");
  return snap;
}

// ---- Log records ----

void appendRecord(std::string& out, std::string_view payload) {
  appendNum(out, payload.size());
  out += ' ';
  appendHex(out, crc32c(payload), 8);
  out += ' ';
  out += payload;
  out += '\n';
}

std::string logHeaderPayload(uint64_t generation) {
  std::string p(kLogMagic);
  p += ' ';
  appendNum(p, kLogVersion);
  p += ' ';
  appendNum(p, generation);
  return p;
}

void appendPutPayload(std::string& out, const CheckpointEntry& e) {
  out += "p ";
  appendIdentity(out, e);
  for (const auto& [sink, off] : e.offsets) {
    out += ' ';
    appendEncoded(out, sink);
    out += ' ';
    appendNum(out, off);
  }
}

void appendForgetPayload(std::string& out, const Key& key) {
  out += "d ";
  appendNum(out, key.first);
  out += ' ';
  appendNum(out, key.second);
}

ReadStatus readRecord(std::string_view text, size_t* pos, std::string_view* payload) {
  if (*pos >= text.size()) return ReadStatus::kEnd;
  std::string_view rest = text.substr(*pos);
  size_t sp = rest.find(' ');
  if (sp == std::string_view::npos || sp > 8) return ReadStatus::kBad;
  size_t len = 0;
  uint32_t crc = 0;
  if (!parseNum(rest.substr(0, sp), &len) || len > kMaxPayload) return ReadStatus::kBad;
  size_t head = sp + 1 + 8 + 1;  // "<len> " + 8 hex + ' '
  if (rest.size() < head + len + 1 || rest[head - 1] != ' ' || rest[head + len] != '\n') {
    return ReadStatus::kBad;
  }
  if (!parseNum(rest.substr(sp + 1, 8), &crc, 16)) return ReadStatus::kBad;
  std::string_view p = rest.substr(head, len);
  if (crc32c(p) != crc) return ReadStatus::kBad;
  *payload = p;
  *pos += head + len + 1;
  return ReadStatus::kOk;
}

bool parseLogHeader(std::string_view payload, uint64_t* generation) {
  std::string_view f[4];
  int version = 0;
  return split(payload, f, 4) == 3 && f[0] == kLogMagic && parseNum(f[1], &version) &&
         version == kLogVersion && parseNum(f[2], generation);
}

bool applyRecord(std::string_view payload, EntryMap& entries) {
  if (payload.rfind("d ", 0) == 0) {
    std::string_view f[3];
    Key key;
    if (split(payload, f, 3) != 3 || !parseNum(f[1], &key.first) || !parseNum(f[2], &key.second)) {
      return false;
    }
    entries.erase(key);
    return true;
  }
  CheckpointEntry e;
  if (!parsePutPayload(payload, &e)) return false;
  Key key = keyOf(e);
  entries[key] = std::move(e);
  return true;
}

bool parsePutPayload(std::string_view payload, CheckpointEntry* out) {
  if (payload.rfind("p ", 0) != 0) return false;
  std::vector<std::string_view> f;
  while (true) {
    size_t sp = payload.find(' ');
    f.push_back(payload.substr(0, sp));
    if (sp == std::string_view::npos) break;
    payload.remove_prefix(sp + 1);
  }
  if (f.size() < 8 || (f.size() - 8) % 2 != 0) return false;
  CheckpointEntry e;
  if (!parseIdentity(f.data() + 1, &e)) return false;
  std::string sink;
  for (size_t i = 8; i < f.size(); i += 2) {
    uint64_t off = 0;
    if (!decode(f[i], &sink) || !parseNum(f[i + 1], &off)) return false;
    e.offsets[sink] = off;
  }
  *out = std::move(e);
  return true;
}

}  // namespace logsplice::agent::ckpt
