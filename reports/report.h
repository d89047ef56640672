#pragma once
// The HTML tolerance report: one self-contained file (inline CSS, inline SVG charts, a few
// lines of inline script for filtering and sorting; nothing fetched) rendered from a
// results file (docs/results.schema.json).
#include <nlohmann/json.hpp>
#include <string>

namespace qconform {

// Error (not a JSON exception) for a results document missing a field or holding another type.
std::string render_report(const nlohmann::json& results);
// A results file's text, checked for its format marker; Error naming `origin`.
nlohmann::json parse_results(const std::string& text, const std::string& origin);
// The same from a file; Error naming the path.
nlohmann::json read_results(const std::string& path);
// Writes atomically (temporary file renamed into place); throws Error naming the path.
void write_report(const nlohmann::json& results, const std::string& path);

// The model replay report (`qconform check --report`), from `check --models-json`'s JSON
// (oracles/model_replay.h, model_verdicts_json): each model's layer chain.
std::string render_model_report(const nlohmann::json& model_verdicts);
void write_model_report(const nlohmann::json& model_verdicts, const std::string& path);

}  // namespace qconform
