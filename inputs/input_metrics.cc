// InputTailer::collectMetrics: the logsplice_input_* families of one input. The names, help
// strings and types are an interface (dashboards depend on them).

#include "inputs/input_tailer.h"

namespace logsplice::inputs {
namespace {

struct InputMetric {
  const char* name;
  sys::MetricType type;
  const char* help;
  uint64_t InputStats::*field;
};

using T = sys::MetricType;

constexpr InputMetric kInputMetrics[] = {
    {"logsplice_input_files_followed", T::kGauge, "Files followed now.",
     &InputStats::files_followed},
    {"logsplice_input_discovered_total", T::kCounter, "Files discovered.",
     &InputStats::files_discovered},
    {"logsplice_input_rotations_total", T::kCounter, "Rotations seen.", &InputStats::rotations},
    {"logsplice_input_truncations_total", T::kCounter, "Truncations seen.",
     &InputStats::truncations},
    {"logsplice_input_deletions_total", T::kCounter, "Deletions seen.", &InputStats::deletions},
    {"logsplice_input_long_line_splits_total", T::kCounter, "Long lines split.",
     &InputStats::long_line_splits},
    {"logsplice_input_partial_line_flushes_total", T::kCounter,
     "Final lines without newline shipped.", &InputStats::partial_line_flushes},
    {"logsplice_input_inotify_overflows_total", T::kCounter, "inotify queue overflows.",
     &InputStats::inotify_overflows},
    {"logsplice_input_rescans_total", T::kCounter, "Rescans of the globs.", &InputStats::rescans},
    {"logsplice_input_open_errors_total", T::kCounter, "Files that could not be opened.",
     &InputStats::open_errors},
    {"logsplice_input_retention_releases_total", T::kCounter,
     "Rotated files released by retention before every sink had them.",
     &InputStats::retention_releases},
    {"logsplice_input_files_open", T::kGauge, "Followed files holding an fd now.",
     &InputStats::files_open},
    {"logsplice_input_files_suspended", T::kGauge,
     "Followed files idle and delivered, fd closed until they grow (max_open_files).",
     &InputStats::files_suspended},
    {"logsplice_input_files_waiting_for_fd", T::kGauge,
     "Files waiting for a descriptor (budget spent, nothing idle).",
     &InputStats::files_waiting_for_fd},
    {"logsplice_input_suspensions_total", T::kCounter,
     "Idle delivered files closed to stay under max_open_files.", &InputStats::suspensions},
    {"logsplice_input_reopens_total", T::kCounter, "Suspended files reopened when they grew.",
     &InputStats::reopens},
    {"logsplice_input_fd_exhaustions_total", T::kCounter,
     "EMFILE/ENFILE met while opening (files then wait for a descriptor).",
     &InputStats::fd_exhaustions},
    {"logsplice_input_skipped_symlinks_total", T::kCounter,
     "Dangling symlinks and symlink loops matching the globs.", &InputStats::skipped_symlinks},
};

}  // namespace

void InputTailer::collectMetrics(sys::MetricWriter& w) const {
  const InputStats& s = stats();
  sys::MetricLabels labels{{"input", config().name}};
  for (const auto& m : kInputMetrics) {
    w.add(m.name, m.help, m.type, labels, static_cast<double>(s.*(m.field)));
  }
  w.gauge("logsplice_input_polling", "1 when stat polling serves the input.", labels,
          s.polling ? 1 : 0);
  w.gauge("logsplice_input_dirs_unreadable",
          "Directories of the globs that exist but cannot be listed (EACCES...).", labels,
          static_cast<double>(s.unreadable_dirs));
  w.counter("logsplice_input_dir_errors_total",
            "Directories of the globs found unlistable (once per episode).", labels,
            static_cast<double>(s.dir_errors_total));
}

}  // namespace logsplice::inputs
