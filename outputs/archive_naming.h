#pragma once

#include <ctime>
#include <string>

namespace logsplice::outputs {

// Turns a name into one safe path component: '/', NUL and control bytes become '_', and the
// names "", "." and ".." become "_", so nothing built from a source file's name can leave the
// archive directory.
std::string sanitizeComponent(const std::string& name);

// The archive layout, chosen so a person finds a host's file for an hour with `ls`:
//   <dir>/<input>/<source file name>/<YYYY-MM-DD>/<HHMMSS>.log        (UTC)
// A second file opened in the same second gets "<HHMMSS>-1.log", "-2", ...
std::string archiveDirFor(const std::string& dir, const std::string& input,
                          const std::string& source_name, std::time_t when);
std::string archiveFileName(std::time_t when, int collision);

}  // namespace logsplice::outputs
