#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "config/config.h"

namespace logsplice::outputs::format {

// How messages are delimited on a TCP stream (RFC 6587):
// - octet counting: "LEN SP MSG", LEN the decimal byte count of MSG (not characters). MSG may
//   contain anything, newlines included (multiline events).
// - LF: "MSG\n". A MSG with a newline would be cut in two by the receiver, so config/ refuses
//   `framing: lf` for syslog outputs fed by a `multiline` input; a single line has none.
using Framing = config::Framing;

// Appends `message` framed.
void appendFramed(Framing framing, std::string_view message, std::string& out);

// Frames in place the message a formatter just appended to `out` from offset `start` on:
// octet counting inserts "LEN " at `start` (moving the message), LF appends '\n'. Lets a
// formatter write straight into the output buffer.
void frameInPlace(Framing framing, std::string& out, size_t start);

// The number of bytes the octet-counting prefix "LEN " takes for a message of `length` bytes.
size_t octetCountPrefixLength(size_t length);

}  // namespace logsplice::outputs::format
