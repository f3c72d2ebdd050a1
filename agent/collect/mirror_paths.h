#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace logsplice::agent::collect {

// The mirror file of a stream, relative to the collector's dir:
// <host>/<input>/<path, sanitised>[.<generation>] (docs/protocol.md "Layout"). `host` and
// `input` must have passed mirror::validName. The result never starts with '/', has no empty,
// "." or ".." component, no byte outside [A-Za-z0-9._+,=@-] and '/', and is bounded in length:
// it cannot leave the dir whatever the wire said.
std::string mirrorRelPath(std::string_view host, std::string_view input, std::string_view path,
                          uint64_t generation);

// One source path, sanitised component by component (no leading '/').
std::string sanitisePath(std::string_view path);

// Whether a relative path is one mirrorRelPath could have produced (the index is read back
// with this: an edited index must not point outside the dir either).
bool safeRelPath(std::string_view rel);

}  // namespace logsplice::agent::collect
