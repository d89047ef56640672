// libFuzzer target: the results-file reader behind `qconform report` (reports/report.h
// parse_results) and the report rendered from what it accepts. Any input must give a report or
// a qconform::Error naming what is wrong; anything else (a JSON exception escaping, a crash, a
// sanitizer report, a leak) is a finding. Run: scripts/fuzz results
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "reports/report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qconform::render_report(qconform::parse_results(std::string(reinterpret_cast<const char*>(data), size), "fuzz input"));
  } catch (const qconform::Error&) {
  }
  return 0;
}
