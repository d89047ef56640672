#include "oracles/conformance.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/cpu.h"
#include "core/error.h"
#include "oracles/kinds/registry.h"
#include "oracles/agreement.h"
#include "oracles/checks.h"
#include "oracles/plugin.h"
#include "quantized/libtorch/engine.h"
#include "oracles/tolerance.h"

namespace qconform {
namespace {

using nlohmann::json;

double finite_or(double v, double otherwise) { return std::isfinite(v) ? v : otherwise; }

// CPU model and the flags that decide integer kernels' behaviour.
json cpu_description() {
  json cpu = {{"model", "unknown"}, {"flags", json::array()}, {"threads", std::thread::hardware_concurrency()}};
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && cpu["model"] == "unknown") cpu["model"] = value;
    if (key == "flags" && cpu["flags"].empty()) {
      std::istringstream flags(value);
      std::string flag;
      while (flags >> flag)
        for (const char* wanted : {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni"})
          if (flag == wanted) cpu["flags"].push_back(flag);
    }
  }
  // Which int8 path each engine takes in this process: what the LibTorch sides ran on.
  cpu["onednn_isa"] = onednn_isa().name;
  const char* held = std::getenv("ONEDNN_MAX_CPU_ISA");
  cpu["onednn_max_cpu_isa"] = held && *held ? json(held) : json();
  cpu["int8_paths"] = json::object();
  for (Engine e : all_engines())
    if (const auto path = host_int8_path(e)) cpu["int8_paths"][to_string(e)] = to_string(*path);
  return cpu;
}

json tolerance_rows() {
  json rows = json::array();
  std::vector<ToleranceRow> all;
  for (const Plugin& plugin : plugins()) all.insert(all.end(), plugin.tolerance_rows.begin(), plugin.tolerance_rows.end());
  all.insert(all.end(), tolerance_table().begin(), tolerance_table().end());
  for (const auto& row : all)
    rows.push_back({{"id", row.id}, {"family", to_string(row.family)}, {"structure", to_string(row.structure)}, {"a", row.a.label()}, {"b", row.b.label()},
                    {"same_engine", row.same_engine}, {"kind", to_string(row.kind)}, {"roundings", row.roundings},
                    {"reason", row.reason}});
  return rows;
}

json engine_rows() {
  json rows = json::array();
  for (const auto& r : engine_table())
    rows.push_back({{"engine", to_string(r.engine)}, {"op", to_string(r.op)}, {"verified_live", r.verified_live},
                    {"qint8_weights", r.accepts_qint8_weights}, {"per_channel_weights", r.accepts_per_channel_weights},
                    {"weight_zero_point_must_be_zero", r.requires_zero_weight_zero_point},
                    {"fp16_weights", r.accepts_fp16_weights}, {"honors_reduce_range", r.honors_reduce_range},
                    {"pairwise_int16_saturation", r.pairwise_int16_saturation},
                    {"int8_paths", [&] {
                       json paths = json::array();
                       for (Int8Path p : int8_paths(r.engine)) paths.push_back(to_string(p));
                       return paths;
                     }()},
                    {"activation_quantization", to_string(r.activation_quantization)},
                    {"flattens_empty_output", r.flattens_empty_output}, {"notes", r.notes}});
  return rows;
}

}  // namespace

int64_t cases_for_profile(const std::string& profile) {
  if (profile == "quick") return 100;
  if (profile == "deep") return 1000;
  throw Error("unknown profile '" + profile + "' (expected quick or deep)");
}

json run_conformance(const ConformanceOptions& options) {
  const int64_t cases = options.cases_override > 0 ? options.cases_override : cases_for_profile(options.profile);
  const auto start = std::chrono::steady_clock::now();
  json results;
  results["format"] = "qconform-results/1";
  results["profile"] = options.profile;
  results["seed"] = options.seed;
  results["cases_per_cell"] = cases;
  results["commit"] = options.commit;
  results["libtorch_version"] = libtorch_version();
  std::vector<std::string> engines;
  for (Engine e : libtorch_engines()) engines.push_back(to_string(e));
  results["libtorch_engines"] = engines;
  json overrides = json::array();
  for (const EngineProfile& p : options.integer_overrides) overrides.push_back(p.label());
  results["integer_path_overrides"] = overrides;
  results["cpu"] = cpu_description();
  results["tolerances"] = tolerance_rows();
  results["engine_table"] = engine_rows();
  results["cells"] = json::array();
  results["checks"] = json::array();
  results["rejections"] = json::array();

  for (const std::string& key : options.kinds) module_kind(key);  // an unknown kind is an Error, before any work
  results["kinds"] = options.kinds;
  int64_t total_cases = 0;
  for (const auto& kind : registry()) {
    if (!options.kinds.empty() && std::find(options.kinds.begin(), options.kinds.end(), kind.key) == options.kinds.end())
      continue;
    // A plug-in's run checks its pairs only; any other run adds the registered plug-ins' pairs.
    std::vector<Pair> pairs = plugin_pairs(kind);
    if (options.plugins_only && pairs.empty()) continue;
    if (!options.plugins_only) {
      std::vector<Pair> built_in = agreement_pairs(kind, options.integer_overrides);
      pairs.insert(pairs.begin(), built_in.begin(), built_in.end());
    }
    for (const auto& pair : pairs) {
      const uint64_t cell_seed = options.seed ^ std::hash<std::string>{}(kind.key + "|" + pair.label());
      std::mt19937_64 rng(cell_seed);
      int64_t passed = 0, rejected = 0, exact = 0, elements = 0, unstable = 0, history_dependent = 0, defect = 0,
              deviation = 0;
      std::string defect_description, deviation_description;
      FreshProcessBudget budget(kind.fresh_process_reruns);
      json classes = json::object();
      json first_steps = json::object();  // cases by the time step where their outputs first differ
      json failures = json::array();
      CaseResult worst;
      CaseConfig worst_config;
      std::vector<double> fractions;  // per case, for the report's histogram
      const auto cell_start = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < cases; ++i) {
        const CaseConfig config = random_case_config(kind, rng);
        CaseResult r;
        try {
          r = check_agreement(kind, pair, config, &budget);
        } catch (const Error& e) {
          r.failure = std::string("error: ") + e.what() + "\n  rerun: " + rerun_command(kind, pair, config);
        }
        ++total_cases;
        passed += r.passed;
        rejected += r.rejected;
        unstable += r.libtorch_unstable;
        history_dependent += r.libtorch_history_dependent;
        if (!r.libtorch_defect.empty()) {
          ++defect;
          defect_description = r.libtorch_defect;
        }
        if (!r.engine_deviation.empty()) {
          ++deviation;
          deviation_description = r.engine_deviation;
        }
        exact += r.exact;
        elements += r.total;
        for (const auto& [name, count] : r.mismatch_classes) classes[name] = classes.value(name, 0) + count;
        if (r.first_differing_step >= 0) {
          const std::string step = std::to_string(r.first_differing_step);
          first_steps[step] = first_steps.value(step, 0) + 1;
        }
        if (!r.passed && failures.size() < 5)
          failures.push_back({{"case", config.to_string()}, {"message", r.failure},
                              {"rerun", rerun_command(kind, pair, config)}});
        fractions.push_back(finite_or(r.max_bound_fraction, -1.0));
        const bool worse = (!r.passed && worst.passed) ||
                           (r.passed == worst.passed && r.max_bound_fraction > worst.max_bound_fraction);
        if (i == 0 || worse) {
          worst = r;
          worst_config = config;
        }
      }
      const ToleranceRow& row = tolerance_for(kind.family, kind.structure, pair.a, pair.b);
      results["cells"].push_back({
          {"kind", kind.key},
          {"family", to_string(kind.family)},
          {"pair", pair.label()},
          {"a", pair.a.label()},
          {"b", pair.b.label()},
          {"tolerance_row", row.id},
          {"cell_seed", cell_seed},
          {"cases", cases},
          {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - cell_start).count()},
          {"passed", passed},
          {"rejected", rejected},
          {"libtorch_unstable", unstable},
          {"libtorch_history_dependent", history_dependent},
          {"fresh_process_reruns", budget.spent()},
          {"libtorch_defect_cases", defect},
          {"libtorch_defect", defect_description},
          {"engine_deviation_cases", deviation},
          {"engine_deviation", deviation_description},
          {"elements", elements},
          {"fraction_exact", elements ? static_cast<double>(exact) / elements : 1.0},
          {"worst", {{"abs_error", worst.max_abs_error},
                     {"bound", finite_or(worst.worst_bound, -1.0)},
                     {"bound_fraction", finite_or(worst.max_bound_fraction, -1.0)},
                     {"activation_scale", worst.activation_scale},
                     {"case", worst_config.to_string()},
                     {"rerun", rerun_command(kind, pair, worst_config)}}},
          {"bound_fractions", fractions},
          {"mismatch_classes", classes},
          {"first_differing_steps", first_steps},
          {"failures", failures},
      });
    }

    // The other oracles, once per kind on a few configurations.
    if (options.plugins_only) continue;
    std::mt19937_64 rng(options.seed ^ std::hash<std::string>{}(kind.key + "|checks"));
    const std::string scratch = options.scratch_directory.empty() ? "/tmp/qconform-conform" : options.scratch_directory;
    for (const std::string name : {"state_dict_round_trip", "hook_preservation", "rejection_parity"}) {
      json findings = json::array();
      const int64_t runs = std::max<int64_t>(1, cases / 10);
      for (int64_t i = 0; i < runs; ++i) {
        const CaseConfig config = random_case_config(kind, rng);
        std::vector<std::string> found;
        try {
          if (name == "state_dict_round_trip") found = check_state_dict_round_trip(kind, config, scratch);
          else if (name == "hook_preservation") found = check_hook_preservation(kind, config);
          else found = check_rejection_parity(kind, config);
        } catch (const Error& e) {
          found.push_back(std::string("error: ") + e.what() + " {" + config.to_string() + "}");
        }
        for (auto& f : found) findings.push_back(f);
      }
      results["checks"].push_back({{"kind", kind.key}, {"check", name}, {"runs", runs},
                                   {"passed", findings.empty()}, {"findings", findings}});
    }
    std::mt19937_64 rejection_rng(options.seed);
    for (const auto& o : rejection_outcomes(kind, random_case_config(kind, rejection_rng)))
      results["rejections"].push_back({{"kind", kind.key}, {"variant", o.variant}, {"engine", to_string(o.engine)},
                                       {"table", o.table}, {"quantized", o.quantized}, {"libtorch", o.libtorch}});
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  results["seconds"] = seconds;
  results["total_cases"] = total_cases;
  results["cases_per_second"] = total_cases / std::max(seconds, 1e-9);
  return results;
}

std::string conformance_summary(const json& results) {
  std::ostringstream out;
  int64_t failed = 0;
  // Where LibTorch's answers came from: the CPU and the int8 path each engine took.
  const json& cpu = results["cpu"];
  out << "cpu: " << cpu.value("model", std::string("unknown")) << "; oneDNN ISA "
      << cpu.value("onednn_isa", std::string("not recorded"));
  if (cpu.contains("onednn_max_cpu_isa") && cpu["onednn_max_cpu_isa"].is_string())
    out << " (held by ONEDNN_MAX_CPU_ISA=" << cpu["onednn_max_cpu_isa"].get<std::string>() << ")";
  out << "; int8 paths:";
  const json paths = cpu.value("int8_paths", json::object());
  for (const auto& [engine, path] : paths.items()) out << " " << engine << " " << path.get<std::string>();
  if (!results.value("integer_path_overrides", json::array()).empty())
    out << "; integer models forced to " << results["integer_path_overrides"].dump();
  out << "\n";
  for (const auto& cell : results["cells"]) {
    const bool ok = cell["passed"] == cell["cases"];
    failed += !ok;
    const double fraction = cell["worst"]["bound_fraction"].get<double>();
    char worst[64];
    if (fraction < 0) std::snprintf(worst, sizeof worst, "beyond a zero bound");
    else std::snprintf(worst, sizeof worst, "%.3g of bound", fraction);
    char line[512];
    std::snprintf(line, sizeof line, "%-4s %-18s %-40s %5lld/%-5lld exact %6.2f%%  worst %s\n",
                  ok ? "ok" : "FAIL", cell["kind"].get<std::string>().c_str(), cell["pair"].get<std::string>().c_str(),
                  static_cast<long long>(cell["passed"]), static_cast<long long>(cell["cases"]),
                  100.0 * cell["fraction_exact"].get<double>(), worst);
    out << line;
    for (const auto& f : cell["failures"]) out << "     " << f["message"].get<std::string>() << "\n";
  }
  for (const auto& check : results["checks"]) {
    const bool ok = check["passed"];
    failed += !ok;
    out << (ok ? "ok   " : "FAIL ") << check["kind"].get<std::string>() << " " << check["check"].get<std::string>()
        << " (" << check["runs"] << " runs)\n";
    for (const auto& f : check["findings"]) out << "     " << f.get<std::string>() << "\n";
  }
  out << results["total_cases"] << " agreement cases in " << results["seconds"].get<double>() << " s ("
      << static_cast<int64_t>(results["cases_per_second"].get<double>()) << " cases/s), seed " << results["seed"]
      << ", profile " << results["profile"].get<std::string>() << "; "
      << (failed ? std::to_string(failed) + " failing" : std::string("all passing")) << "\n";
  return out.str();
}


}  // namespace qconform
