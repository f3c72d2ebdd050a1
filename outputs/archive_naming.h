#pragma once

#include <ctime>
#include <string>

namespace logsplice::outputs {

// Turns a name into one safe path component: '/', NUL and control bytes become '_', and the
// names "", "." and ".." become "_", so nothing built from a source file's name can leave the
// archive directory.
std::string sanitizeComponent(const std::string& name);

// The archive layout, chosen so a person finds a host's file for an hour with `ls`:
//   <dir>/<input>/<source file name>/<YYYY-MM-DD>/<HHMMSS>_<NNN>.log        (UTC)
// NNN counts the files opened in the same second: 000 for the first, 001, 002, ... (the sink
// takes the first name that does not exist yet).
//
// Why this form: byte order (`ls` and shell globs in the C locale, `cat DAY/*`) must be write
// order, or a reader concatenating a day interleaves its lines.
//  - A fixed-width counter: "-1" < "-10" < "-2" is not write order, "001" < "002" < "010" is.
//  - Past 999 the counter widens behind a letter that sorts after every digit and encodes the
//    width: 999 < a1000 < ... < a9999 < b10000 < ... (so even a runaway rotation stays in order).
//  - The '_' separator: versions before this wrote "<HHMMSS>.log", "<HHMMSS>-1.log", ...; '_'
//    sorts after both '.' and '-', so after an upgrade within the same second a new file never
//    sorts before a file the older version wrote in that second.
//  - Every file, the first of a second too, carries the counter: names of one second then differ
//    only in their counters, so they keep write order even under a locale's collation (`ls` in
//    en_US.UTF-8), whatever it does with punctuation.
std::string archiveDirFor(const std::string& dir, const std::string& input,
                          const std::string& source_name, std::time_t when);
// `collision`: how many files were already opened in this second (0 for the first); >= 0.
std::string archiveFileName(std::time_t when, int collision);

}  // namespace logsplice::outputs
