// qconform: the harness's command-line tool.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/engines.h"
#include "tools/qconform/bench_lstm.h"
#include "core/error.h"
#include "core/registry.h"
#include "oracles/agreement.h"
#include "oracles/conformance.h"
#include "reports/report.h"
#include "quantized/libtorch/engine.h"
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
                          and DIR/report.html; exit 1 if any case fails (profile also from
                          QCONFORM_PROFILE)
  report RESULTS.json [--out REPORT.html]
                          render the HTML report of a results file
  case --kind KIND --pair A,B --case 'name=value ... seed=N style=S'
                          rerun one agreement case (failure messages print this line)
  bench-lstm [--reps N] [--seq-len T] [--input-size I] [--hidden-size H] [--batch B]
                          forward time of the dynamic LSTM: integer, reference, LibTorch
                          qnnpack and onednn, in one run (default: fastrnns' 100 x 64 x
                          512 x 512, and miniBatch 1); a benchmark, not a test
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

int run_conform(const Options& options) {
  const std::string out_dir = options.value("--out").value_or("build/conformance");
  const char* env_profile = std::getenv("QCONFORM_PROFILE");
  const char* env_commit = std::getenv("QCONFORM_COMMIT");
  ConformanceOptions run;
  run.profile = options.value("--profile").value_or(env_profile ? env_profile : "quick");
  cases_for_profile(run.profile);  // rejects unknown profiles before any work
  run.seed = options.value("--seed") ? std::stoull(*options.value("--seed")) : std::random_device{}();
  run.commit = env_commit ? env_commit : "";
  run.scratch_directory = out_dir + "/scratch";
  std::filesystem::create_directories(out_dir);
  const nlohmann::json results = run_conformance(run);
  const std::string summary = conformance_summary(results);
  const std::string json_path = out_dir + "/results.json", text_path = out_dir + "/summary.txt",
                    report_path = out_dir + "/report.html";
  std::ofstream(json_path) << results.dump(1) << "\n";
  std::ofstream(text_path) << summary;
  write_report(results, report_path);
  std::cout << summary << "results: " << std::filesystem::absolute(json_path).string() << "\n"
            << "summary: " << std::filesystem::absolute(text_path).string() << "\n"
            << "report:  " << std::filesystem::absolute(report_path).string() << "\n";
  return summary.find("failing") == std::string::npos ? 0 : 1;
}

int run_report(const Options& options) {
  if (options.args.empty() || options.args[0].rfind("--", 0) == 0)
    throw Error("usage: qconform report RESULTS.json [--out REPORT.html]");
  const std::string in = options.args[0];
  const std::string out = options.value("--out").value_or(
      std::filesystem::path(in).replace_filename("report.html").string());
  write_report(read_results(in), out);
  std::cout << "report: " << std::filesystem::absolute(out).string() << "\n";
  return 0;
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
  if (r.libtorch_unstable)
    std::cout << "  LibTorch gave different bits on a freshly built module; judged on that rerun\n";
  if (r.libtorch_history_dependent)
    std::cout << "  LibTorch's answer depended on earlier calls (its GEMMs on fresh prepacks, or the case in a "
                 "fresh process, gave other bits); judged on that history-free answer\n";
  if (!r.passed) std::cout << "  FAIL: " << r.failure << "\n";
  return r.passed ? 0 : 1;
}

// The agreement oracle's history-free rerun (oracles/agreement.h): one implementation's
// output for one case, computed in this fresh process, as the bit patterns of its values.
int run_libtorch_answer(const Options& options) {
  const ModuleKind& kind = module_kind(options.required("--kind"));
  const Side side = parse_side(options.required("--side"));
  const CaseConfig config = parse_case_config(kind, options.required("--case"));
  const FlatOutput flat = implementation_output(kind, side, config);
  for (float v : flat.values) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    std::cout << bits << "\n";
  }
  return 0;
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
    if (command == "libtorch-answer") return run_libtorch_answer(options);  // internal: see agreement.h
    if (command == "report") return run_report(options);
    if (command == "bench-lstm") {
      const auto number = [&](const char* name, int64_t fallback) {
        const auto v = options.value(name);
        return v ? std::stoll(*v) : fallback;
      };
      std::vector<int64_t> batches{64, 1};
      if (options.value("--batch")) batches = {number("--batch", 64)};
      return bench_lstm(static_cast<int>(number("--reps", 3)), number("--seq-len", 100), number("--input-size", 512),
                        number("--hidden-size", 512), batches);
    }
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
