#pragma once

#include <sys/types.h>

#include <string>

#include "sys/error.h"

namespace logsplice::sys {

// mkdir -p: creates each missing component of `path` with `mode`. An existing directory is
// fine; any other failure names the component that could not be created.
Error makeDirs(const std::string& path, mode_t mode = 0750);

}  // namespace logsplice::sys
