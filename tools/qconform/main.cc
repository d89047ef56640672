// qconform: the harness's command-line tool.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/engines.h"
#include "core/error.h"
#include "core/registry.h"
#include "oracles/agreement.h"
#include "oracles/libtorch/engine.h"
#include "oracles/tolerance.h"

namespace {

using namespace qconform;

constexpr const char* kUsage = R"(usage: qconform COMMAND [OPTIONS]

commands:
  modules [--json]        the module registry: kinds, families, implementations, engines
  engines                 the engine table: what each engine accepts and rejects
  tolerances              the tolerance table, a reason per row
  conform [--out DIR] [--seed N] [--profile quick|deep]
                          run the agreement oracle over every registered kind x pair,
                          write DIR/results.json and DIR/summary.txt, print their paths;
                          exit 1 if any case fails (profile also from QCONFORM_PROFILE)
  case --kind KIND --pair A,B --case 'name=value ... seed=N style=S'
                          rerun one agreement case (failure messages print this line)
  help                    this text
)";

// Options after the command: --name value pairs and bare --flags.
struct Options {
  std::vector<std::string> args;
  bool flag(const std::string& name) const {
    for (const auto& a : args)
      if (a == name) return true;
    return false;
  }
  std::optional<std::string> value(const std::string& name) const {
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == name) return args[i + 1];
    return std::nullopt;
  }
  std::string required(const std::string& name) const {
    if (auto v = value(name)) return *v;
    throw Error("missing required option " + name);
  }
};

int64_t cases_per_pair(const std::string& profile) {
  if (profile == "quick") return 100;
  if (profile == "deep") return 1000;
  throw Error("unknown profile '" + profile + "' (expected quick or deep)");
}

int run_conform(const Options& options) {
  const std::string out_dir = options.value("--out").value_or("build/conformance");
  const char* env_profile = std::getenv("QCONFORM_PROFILE");
  const std::string profile = options.value("--profile").value_or(env_profile ? env_profile : "quick");
  const uint64_t seed = options.value("--seed") ? std::stoull(*options.value("--seed"))
                                                : std::random_device{}();
  const int64_t cases = cases_per_pair(profile);
  std::filesystem::create_directories(out_dir);

  const auto start = std::chrono::steady_clock::now();
  nlohmann::json results;
  results["schema"] = "qconform-results/1";
  results["profile"] = profile;
  results["seed"] = seed;
  results["libtorch_version"] = libtorch_version();
  std::vector<std::string> engines;
  for (Engine e : libtorch_engines()) engines.push_back(to_string(e));
  results["libtorch_engines"] = engines;
  results["cells"] = nlohmann::json::array();

  std::ostringstream summary;
  int64_t failed_cells = 0, total_cases = 0;
  for (const auto& kind : registry()) {
    for (const auto& pair : agreement_pairs(kind)) {
      std::mt19937_64 rng(seed ^ std::hash<std::string>{}(kind.key + pair.label()));
      int64_t passed = 0, exact = 0, elements = 0;
      CaseResult worst;
      CaseConfig worst_config;
      std::string first_failure;
      for (int64_t i = 0; i < cases; ++i) {
        const CaseConfig config = random_case_config(kind, rng);
        CaseResult r;
        try {
          r = check_agreement(kind, pair, config);
        } catch (const Error& e) {
          r.failure = std::string("error: ") + e.what() + "\n  rerun: " + rerun_command(kind, pair, config);
        }
        ++total_cases;
        passed += r.passed;
        exact += r.exact;
        elements += r.total;
        if (!r.passed && first_failure.empty()) first_failure = r.failure;
        if (i == 0 || r.max_bound_fraction > worst.max_bound_fraction || (!r.passed && worst.passed)) {
          worst = r;
          worst_config = config;
        }
      }
      const bool ok = passed == cases;
      failed_cells += !ok;
      results["cells"].push_back({
          {"kind", kind.key},
          {"pair", pair.label()},
          {"tolerance_row", worst.tolerance_row},
          {"cases", cases},
          {"passed", passed},
          {"fraction_exact", elements ? static_cast<double>(exact) / elements : 1.0},
          {"worst_abs_error", worst.max_abs_error},
          {"worst_bound_fraction", std::isfinite(worst.max_bound_fraction) ? worst.max_bound_fraction : -1.0},
          {"worst_case", worst_config.to_string()},
          {"rerun", rerun_command(kind, pair, worst_config)},
          {"first_failure", first_failure},
      });
      char line[512];
      std::snprintf(line, sizeof line, "%-4s %-16s %-40s %5lld/%-5lld exact %6.2f%%  worst %.3g of bound\n",
                    ok ? "ok" : "FAIL", kind.key.c_str(), pair.label().c_str(),
                    static_cast<long long>(passed), static_cast<long long>(cases),
                    elements ? 100.0 * exact / elements : 100.0, worst.max_bound_fraction);
      summary << line;
      if (!ok) summary << "     " << first_failure << "\n";
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  results["seconds"] = seconds;
  summary << total_cases << " cases in " << seconds << " s (" << total_cases / std::max(seconds, 1e-9)
          << " cases/s), seed " << seed << ", profile " << profile << "\n";

  const std::string json_path = out_dir + "/results.json", text_path = out_dir + "/summary.txt";
  std::ofstream(json_path) << results.dump(2) << "\n";
  std::ofstream(text_path) << summary.str();
  std::cout << summary.str() << "results: " << std::filesystem::absolute(json_path).string() << "\n"
            << "summary: " << std::filesystem::absolute(text_path).string() << "\n";
  return failed_cells == 0 ? 0 : 1;
}

int run_case(const Options& options) {
  const ModuleKind& kind = module_kind(options.required("--kind"));
  const Pair pair = parse_pair(options.required("--pair"));
  const CaseConfig config = parse_case_config(kind, options.required("--case"));
  const CaseResult r = check_agreement(kind, pair, config);
  std::cout << kind.key << " " << pair.label() << " {" << config.to_string() << "}\n"
            << "  row " << r.tolerance_row << ": " << r.exact << "/" << r.total
            << " exact, max |diff| " << r.max_abs_error << ", worst " << r.max_bound_fraction
            << " of bound\n";
  if (!r.passed) std::cout << "  FAIL: " << r.failure << "\n";
  return r.passed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "help";
  Options options{std::vector<std::string>(argv + std::min(argc, 2), argv + argc)};
  try {
    if (command == "modules") {
      std::cout << (options.flag("--json") ? registry_json() + "\n" : registry_table_text());
      return 0;
    }
    if (command == "engines") {
      std::cout << engine_table_text();
      return 0;
    }
    if (command == "tolerances") {
      std::cout << tolerance_table_text();
      return 0;
    }
    if (command == "conform") return run_conform(options);
    if (command == "case") return run_case(options);
    if (command == "help" || command == "--help" || command == "-h") {
      std::cout << kUsage;
      return 0;
    }
    std::cerr << "qconform: unknown command '" << command << "'\n" << kUsage;
    return 2;
  } catch (const Error& e) {
    std::cerr << "qconform " << command << ": " << e.what() << "\n";
    return 2;
  }
}
