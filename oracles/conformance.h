#pragma once
// The conformance run behind `qconform conform` and the main job: every registered kind x
// implementation pair (agreement), plus the state_dict, hook and rejection oracles per
// kind, written as one results file (docs/results.schema.json) that the HTML report reads.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/engines.h"

namespace qconform {

struct ConformanceOptions {
  std::string profile = "quick";  // quick: 100 cases per cell; deep: 1000
  uint64_t seed = 0;
  int64_t cases_override = 0;     // > 0: this many cases per cell (tests)
  std::string scratch_directory;  // for state_dict files
  std::string commit;             // recorded as given (scripts/conform passes git's)
  // Integer models compared with LibTorch on another int8 path than LibTorch's here
  // (agreement_pairs' integer_overrides); recorded in the results.
  std::vector<EngineProfile> integer_overrides;
  // Only the registered plug-ins' pairs (oracles/plugin.h), and not the kinds' other oracles:
  // a plug-in's own run.
  bool plugins_only = false;
  // Only these kinds (registry keys); empty: every kind. Unknown keys are an Error.
  std::vector<std::string> kinds;
};

int64_t cases_for_profile(const std::string& profile);  // throws Error for unknown names

// Runs everything and returns the results document.
nlohmann::json run_conformance(const ConformanceOptions& options);
// One line per cell, and a totals line.
std::string conformance_summary(const nlohmann::json& results);
// Reading a results file back: reports/report.h read_results.

}  // namespace qconform
