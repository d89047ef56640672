// qconform: the harness's command-line tool.
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/engines.h"
#include "core/fixture.h"
#include "tools/qconform/bench.h"
#include "core/error.h"
#include "core/files.h"
#include "oracles/kinds/registry.h"
#include "oracles/agreement.h"
#include "oracles/conformance.h"
#include "oracles/replay.h"
#include "reports/report.h"
#include "quantized/libtorch/engine.h"
#include "oracles/fixture_import.h"
#include "oracles/model_import.h"
#include "oracles/model_replay.h"
#include "core/model_record.h"
#include "oracles/tolerance.h"

namespace {

using namespace qconform;

constexpr const char* kUsage = R"(usage: qconform COMMAND [OPTIONS]

commands:
  modules [--json]        the module registry: kinds, families, implementations, engines
  engines                 the engine table: what each engine accepts and rejects
  host                    this host's CPU, the ISA oneDNN dispatches to, and the int8 path
                          each engine takes here (one "name: value" per line)
  tolerances              the tolerance table, a reason per row
  conform [--out DIR] [--seed N] [--profile quick|deep] [--cases N] [--kinds LIST] [--integer-path ENGINE:PATH,...]
                          run the agreement oracle over every registered kind x pair,
                          write DIR/results.json and DIR/summary.txt, print their paths;
                          and DIR/report.html; exit 1 if any case fails (profile also from
                          QCONFORM_PROFILE); --integer-path compares LibTorch with the
                          integer model of another int8 path than the one LibTorch takes
                          here (e.g. onednn:avx2 on a VNNI host: a deliberately wrong path);
                          --cases N: N cases per cell instead of the profile's;
                          --kinds LIST: only these kinds (e.g. dynamic.Linear)
  report RESULTS.json [--out REPORT.html]
                          render the HTML report of a results file
  case --kind KIND --pair A,B --case 'name=value ... seed=N style=S'
                          rerun one agreement case (failure messages print this line)
  fixture add MODULE.pt --inputs INPUTS.pt [--name NAME] [--engine E] [--expected EXPECTED.pt]
              [--store DIR] [--force]
                          a fixture from a scripted quantized module and its inputs
                          (qconform fixture add --help)
  check [NAME|PATH ...] [--store DIR] [--json OUT] [--layers] [--report OUT.html]
                          replay fixtures and models against their recorded LibTorch outputs
                          (qconform check --help)
  bench [--variants LIST] [--batch LIST] [--threads LIST] [--impl LIST] [--json OUT] ...
                          forward time of the dynamic modules: integer, reference, plain
                          Eigen float and LibTorch's engines in one run, with the targets
                          of the performance issue; a benchmark, not a test
                          (qconform bench --help)
  help                    this text
)";

constexpr const char* kFixtureAddUsage = R"(usage: qconform fixture add MODULE.pt --inputs INPUTS.pt [--name NAME] [--engine ENGINE]
                           [--expected EXPECTED.pt] [--store DIR] [--force]

Make a fixture from what PyTorch writes:
  torch.jit.save(torch.jit.script(qmodule), "MODULE.pt")
  torch.save(inputs, "INPUTS.pt")     # a tensor, or a tuple of tensors: (x, h0[, c0]);
                                      # a packed input as tuple(packed); an embedding's
                                      # (indices[, offsets[, per_sample_weights[,
                                      # compressed_indices_mapping]]]), None where absent
MODULE.pt may also hold a whole converted model (a torchvision quantizable ResNet, ...):
every layer's call is then recorded as one fixture plus a model record, STORE/NAME.model
(docs/models.md).
MODULE.pt holds one quantized module of a registered kind (qconform modules), or
Quantize -> one such module -> DeQuantize (eager convert of QuantStub/DeQuantStub). The
float modules eager convert leaves to run on quantized tensors (ReLU, Sigmoid, Hardsigmoid,
Tanh, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d) count as such; nnq.Quantize alone takes
floats. A QFunctional op is read from a model that quantizes its arguments with Quantize
children, calls one QFunctional method on them and dequantizes the result; INPUTS.pt then
holds forward's arguments.

  --inputs INPUTS.pt     the inputs (required)
  --name NAME            the fixture's name (default: MODULE's file name without .pt)
  --engine ENGINE        qnnpack or onednn: the engine LibTorch records on (default: LibTorch's
                         default here, %s), on this host's int8 path (recorded in the
                         fixture; ONEDNN_MAX_CPU_ISA=AVX2 in the environment records onednn's
                         avx2 path on a VNNI host); with --expected, the engine and path the
                         outputs were recorded on, which may be fbgemm or x86:
                         onednn:avx2, onednn:vnni, fbgemm:vnni, qnnpack, ...
  --expected FILE.pt     outputs recorded elsewhere (torch.save of the module's result)
                         instead of running the module here
  --store DIR            where fixtures live (default: fixtures)
  --force                replace an existing fixture of that name

Writes DIR/NAME.fixture.json (or the directory DIR/NAME.model) atomically (format:
fixtures/README.md) and replays it once.
Exit status: 0 written; 2 bad input (the message names the file and what is wrong), and
nothing is written.
)";

constexpr const char* kCheckUsage = R"(usage: qconform check [NAME|PATH ...] [--store DIR] [--json OUT] [--layers]
                      [--models-json OUT] [--report OUT.html]

Replay fixtures: rebuild each module as the reference and as the integer implementation on
the fixture's engine, run both on the fixture's input, and compare each with the outputs
LibTorch recorded and with each other under the tolerance table (qconform tolerances).
Prints one line per fixture with its verdict and worst error, then every failure's details.
A model record (STORE/NAME.model, from `fixture add MODEL.pt`) replays each layer alone, then
the model with every covered layer replaced by the integer implementation and by the
reference, judging each layer's output against LibTorch's recording (docs/models.md).

  NAME|PATH ...          fixtures or models by name (NAME.fixture.json anywhere under the
                         store, or NAME.model) or by path (default: every *.fixture.json and
                         every model under the store; the bundled corpora are fixtures/modules
                         and fixtures/models)
  --store DIR            where fixtures live (default: fixtures)
  --json OUT             also write the fixtures' verdicts as JSON
  --layers               a model's per-layer table: isolated and chained errors
  --models-json OUT      the models' verdicts as JSON, layer by layer
  --report OUT.html      the models' report: each model's layer chain plotted, each layer with
                         its fixture and rerun command

Exit status: 0 every fixture and model passes; 1 any fails; 2 bad usage.
)";

// Options after the command: --name value pairs and bare --flags.
struct Options {
  std::vector<std::string> args;
  // The arguments that are neither options nor their values; `flags` take no value.
  std::vector<std::string> positionals(const std::vector<std::string>& flags) const {
    std::vector<std::string> out;
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i].rfind("--", 0) != 0) {
        out.push_back(args[i]);
      } else if (std::find(flags.begin(), flags.end(), args[i]) == flags.end()) {
        ++i;  // the option's value
      }
    }
    return out;
  }
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
  // Error naming the first option that is neither one of `with_value` (followed by its
  // value) nor one of `flags`, and any stray argument: a misspelt option must not run a
  // command with its defaults.
  void only(const std::vector<std::string>& with_value, const std::vector<std::string>& flags,
            const std::string& command) const {
    const auto known = [](const std::vector<std::string>& names, const std::string& a) {
      return std::find(names.begin(), names.end(), a) != names.end();
    };
    for (size_t i = 0; i < args.size(); ++i) {
      if (known(flags, args[i])) continue;
      if (known(with_value, args[i])) {
        if (i + 1 >= args.size()) throw Error("option " + args[i] + " needs a value (qconform help)");
        ++i;
        continue;
      }
      throw Error(std::string(args[i].rfind("-", 0) == 0 ? "unknown option " : "unexpected argument ") + args[i] +
                  " for qconform " + command + " (qconform help)");
    }
  }
};

constexpr const char* kBenchUsage = R"(usage: qconform bench [--variants LIST] [--batch LIST] [--threads LIST] [--impl LIST]
                       [--seq-len T] [--layers L] [--input-size I] [--hidden-size H]
                       [--reps N] [--json OUT|-]

Times the forward of dynamic modules, and of ResNet18's convolutions, built through the
module registry, every implementation in this process, alternating, a warm-up and then N
repetitions (default 5); prints per case the median, GMAC/s, the share of the int8
multiply-accumulate ceiling (measured again before every round of repetitions; the case's
median), and the ratio to the faster LibTorch engine; then the performance targets with
met / NOT met. Short cases (cells, Linear) repeat each call to ~20 ms. --threads sets the
integer kernels' threads and LibTorch's alike; thread counts alternate round by round too,
and for more than one thread the ceiling of that many threads running at once is measured
in each round and printed beside the two-thread target. QCONFORM_KERNEL_ISA=avx2 (or
avx_vnni, portable) times a smaller host's kernel path here.

  --model DIR       instead: a recorded model's replay (STORE/NAME.model): LibTorch's
                    forward against the integer layers alone on their recorded inputs plus
                    the integer chain, files read and modules built beforehand; --reps
                    runs, --threads (first value) the threads of both
  --variants LIST   lstm, lstm-packed, gru, gru-packed, lstm-cell, gru-cell, linear,
                    resnet18-conv (default: all; packed = a PackedSequence of random
                    lengths 1..T; resnet18-conv = each of ResNet18's convolution shapes
                    at 224 x 224, batch 1, and their total over one forward; the integer
                    and LibTorch's convolutions on channels-last bytes, as model replays
                    run them)
  --batch LIST      miniBatch values (default 64,1)
  --threads LIST    LibTorch's intra-op threads (default 1,2)
  --impl LIST       integer, reference, eigen-float, libtorch[qnnpack], libtorch[onednn]
                    (default: all)
  --seq-len T --layers L --input-size I --hidden-size H
                    fastrnns' seqLength, numLayers, inputSize, hiddenSize
                    (default 100, 1, 512, 512; Linear is I -> H)
  --json OUT        also write the results as JSON (keys per row: case, impl, threads,
                    median_ms, gmacs, ratio_vs_best_libtorch, ...); '-' for standard
                    output, the table then goes to standard error
)";

// Comma-separated values of `name`, or `fallback` when the option is absent.
std::vector<std::string> list_option(const Options& options, const std::string& name,
                                     std::vector<std::string> fallback) {
  const auto v = options.value(name);
  if (!v) return fallback;
  std::vector<std::string> out;
  std::stringstream in(*v);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  if (out.empty()) throw Error(name + " needs at least one value");
  return out;
}

int64_t integer_value(const std::string& option, const std::string& text) {
  size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw Error(option + " expects an integer, got '" + text + "'");
  return value;
}

BenchOptions bench_options(const Options& options) {
  BenchOptions b;
  b.variants = list_option(options, "--variants", b.variants);
  b.implementations = list_option(options, "--impl", {});
  b.batches.clear();
  for (const auto& v : list_option(options, "--batch", {"64", "1"})) b.batches.push_back(integer_value("--batch", v));
  b.threads.clear();
  for (const auto& v : list_option(options, "--threads", {"1", "2"}))
    b.threads.push_back(static_cast<int>(integer_value("--threads", v)));
  for (int t : b.threads)
    if (t < 1) throw Error("--threads values must be at least 1, got " + std::to_string(t));
  const auto number = [&](const char* name, int64_t& field) {
    if (auto v = options.value(name)) field = integer_value(name, *v);
  };
  number("--seq-len", b.seq_len);
  number("--layers", b.num_layers);
  number("--input-size", b.input_size);
  number("--hidden-size", b.hidden_size);
  int64_t reps = b.repetitions;
  number("--reps", reps);
  b.repetitions = static_cast<int>(reps);
  b.json_path = options.value("--json");
  return b;
}

// `qconform host`: what decides the int8 numerics here, for people and for scripts
// (tests/held_to_avx2.sh reads "onednn: vnni").
std::string host_text() {
  std::ostringstream out;
  std::string model = "unknown";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);)
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  const char* held = std::getenv("ONEDNN_MAX_CPU_ISA");
  out << "cpu: " << model << "\n"
      << "avx512_vnni: " << (cpu_has_avx512_vnni() ? "yes" : "no") << "\n"
      << "avx_vnni: " << (cpu_has_avx_vnni() ? "yes" : "no") << "\n"
      << "onednn_isa: " << onednn_isa().name << "\n"
      << "onednn_max_cpu_isa: " << (held && *held ? held : "unset") << "\n";
  for (Engine e : all_engines())
    if (const auto path = host_int8_path(e)) out << to_string(e) << ": " << to_string(*path) << "\n";
  return out.str();
}

int run_conform(const Options& options) {
  if (options.flag("--help") || options.flag("-h")) {
    std::cout << kUsage;
    return 0;
  }
  options.only({"--out", "--seed", "--profile", "--integer-path", "--cases", "--kinds"}, {}, "conform");
  const std::string out_dir = options.value("--out").value_or("build/conformance");
  const char* env_profile = std::getenv("QCONFORM_PROFILE");
  const char* env_commit = std::getenv("QCONFORM_COMMIT");
  ConformanceOptions run;
  run.profile = options.value("--profile").value_or(env_profile ? env_profile : "quick");
  cases_for_profile(run.profile);  // rejects unknown profiles before any work
  run.seed = options.value("--seed") ? std::stoull(*options.value("--seed")) : std::random_device{}();
  run.commit = env_commit ? env_commit : "";
  if (const auto cases = options.value("--cases")) {
    run.cases_override = std::stoll(*cases);
    if (run.cases_override < 1) throw Error("--cases " + *cases + ": give at least 1");
  }
  for (const std::string& text : list_option(options, "--integer-path", {})) {
    const EngineProfile profile = engine_profile_from_string(text);
    if (!profile.int8_path) throw Error("--integer-path " + text + ": name an engine and a path, e.g. onednn:avx2");
    run.integer_overrides.push_back(profile);
  }
  run.kinds = list_option(options, "--kinds", {});
  run.scratch_directory = out_dir + "/scratch";
  std::filesystem::create_directories(out_dir);
  const nlohmann::json results = run_conformance(run);
  const std::string json_path = out_dir + "/results.json", text_path = out_dir + "/summary.txt",
                    report_path = out_dir + "/report.html";
  write_file_atomically(json_path, results.dump(1) + "\n", "results");
  const std::string summary = conformance_summary(results);
  write_file_atomically(text_path, summary, "summary");
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
  if (r.first_differing_step >= 0)
    std::cout << "  the outputs first differ at time step " << r.first_differing_step << "\n";
  if (r.libtorch_unstable)
    std::cout << "  LibTorch gave different bits on a freshly built module; judged on that rerun\n";
  if (r.libtorch_history_dependent)
    std::cout << "  LibTorch's answer depended on earlier calls (its GEMMs on fresh prepacks, or the case in a "
                 "fresh process, gave other bits); judged on that history-free answer\n";
  if (!r.libtorch_defect.empty())
    std::cout << "  LibTorch's answer is not compared here, a known defect: " << r.libtorch_defect << "\n";
  if (!r.engine_deviation.empty())
    std::cout << "  not compared with the reference here, the engine's own definition: " << r.engine_deviation << "\n";
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

const char* const kDefaultStore = "fixtures";

int run_fixture_add(const Options& options) {
  if (options.flag("--help") || options.flag("-h")) {
    std::printf(kFixtureAddUsage, to_string(libtorch_default_engine()).c_str());
    return 0;
  }
  const std::vector<std::string> positional = options.positionals({"--force"});
  if (positional.size() != 2 || positional[0] != "add")
    throw Error("usage: qconform fixture add MODULE.pt --inputs INPUTS.pt [...] (qconform fixture add --help)");
  FixtureImport request;
  request.module_path = positional[1];
  request.inputs_path = options.required("--inputs");
  request.expected_path = options.value("--expected");
  if (const auto engine = options.value("--engine")) {
    request.engine = engine_profile_from_string(*engine);
    // Outputs recorded elsewhere, on an engine with two int8 paths: only the user knows which.
    if (request.expected_path && engine->find(':') == std::string::npos && !int8_paths(request.engine.engine).empty())
      throw Error("--engine " + *engine + " with --expected: name the int8 path the outputs were recorded on, " +
                  *engine + ":avx2 or " + *engine + ":vnni (vnni where that CPU has avx512_vnni or avx_vnni and " +
                  "oneDNN was not held to AVX2; fixtures/README.md)");
  } else {
    request.engine = libtorch_default_engine();
  }
  request.name = options.value("--name").value_or(std::filesystem::path(request.module_path).stem().string());
  check_fixture_name(request.name);
  const std::string store = options.value("--store").value_or(kDefaultStore);
  refuse_existing_fixture(store, request.name, options.flag("--force"));
  if (archive_is_model(request.module_path)) {
    const ModelImportResult imported = import_model(request, store, options.flag("--force"));
    const ModelRecord& record = imported.record;
    size_t covered = 0;
    for (const ModelLayer& l : record.layers) covered += l.covered();
    std::cout << "wrote " << imported.directory << ": model " << record.pytorch_type << " recorded on "
              << record.engine.label() << ", " << record.layers.size() << " layer calls, " << covered
              << " of them as layer fixtures" << (record.fully_covered() ? " (fully covered)" : "") << "\n";
    for (const auto& [type, count] : record.uncovered_types())
      std::cout << "  not covered: " << type << " x" << count << "\n";
    const ModelVerdict verdict = replay_model(imported.directory);
    std::cout << "check: " << verdict.line() << "\n" << verdict.details();
    return 0;
  }
  const Fixture fixture = import_fixture(request);
  const std::string path = store_fixture(fixture, store, options.flag("--force"));
  std::cout << "wrote " << path << ": " << fixture.module.kind << " recorded on " << fixture.engine.label() << "\n";
  const FixtureVerdict verdict = replay_fixture(fixture, path);
  std::cout << "check: " << verdict.line() << "\n" << verdict.details();
  return 0;
}

int run_check(const Options& options) {
  if (options.flag("--help") || options.flag("-h")) {
    std::cout << kCheckUsage;
    return 0;
  }
  const std::string store = options.value("--store").value_or(kDefaultStore);
  std::vector<std::string> paths, models;
  for (const std::string& item : options.positionals({"--layers"})) {
    const bool is_path =
        item.find('/') != std::string::npos || (item.size() > 5 && item.substr(item.size() - 5) == ".json");
    // A model: its directory, or its name.
    const std::string model = is_path ? item : model_directory(store, item);
    if (std::filesystem::is_regular_file(std::filesystem::path(model) / kModelRecordFile)) {
      models.push_back(model);
      continue;
    }
    std::string path = is_path ? item : "";
    if (!is_path)
      for (const std::string& candidate : list_fixtures(store))
        if (std::filesystem::path(candidate).filename() == item + kFixtureSuffix) path = candidate;
    if (path.empty() || !std::filesystem::is_regular_file(path))
      throw Error("no fixture " + (is_path ? item : item + kFixtureSuffix + " or model " + item + kModelSuffix +
                                                        " under " + store));
    paths.push_back(path);
  }
  if (paths.empty() && models.empty()) {
    paths = list_fixtures(store);
    models = list_models(store);
  }
  if (paths.empty() && models.empty()) throw Error("no fixtures in " + store);
  std::vector<FixtureVerdict> verdicts;
  int failed = 0;
  for (const std::string& path : paths) {
    verdicts.push_back(replay_fixture_file(path));
    std::cout << verdicts.back().line() << "\n";
    failed += verdicts.back().passed ? 0 : 1;
  }
  std::vector<ModelVerdict> model_verdicts;
  for (const std::string& directory : models) {
    model_verdicts.push_back(replay_model(directory));
    std::cout << model_verdicts.back().line() << "\n";
    if (options.flag("--layers")) std::cout << model_verdicts.back().table();
    failed += model_verdicts.back().passed ? 0 : 1;
  }
  const size_t total = verdicts.size() + model_verdicts.size();
  if (failed) {
    std::cout << "\n" << failed << " of " << total << " fixtures and models fail:\n";
    for (const auto& v : verdicts)
      if (!v.passed) std::cout << (v.error.empty() ? v.details() : "  " + v.path + ": " + v.error + "\n");
    for (const auto& v : model_verdicts)
      if (!v.passed) std::cout << (v.error.empty() ? v.details() : "  " + v.directory + ": " + v.error + "\n");
  } else {
    std::cout << verdicts.size() << " fixtures" << (model_verdicts.empty() ? "" : " and " + std::to_string(model_verdicts.size()) + " models") << " pass\n";
  }
  if (const auto out = options.value("--json")) write_file_atomically(*out, verdicts_json(verdicts), "verdicts");
  if (const auto out = options.value("--models-json"))
    write_file_atomically(*out, model_verdicts_json(model_verdicts), "model verdicts");
  if (const auto out = options.value("--report")) {
    write_model_report(nlohmann::json::parse(model_verdicts_json(model_verdicts)), *out);
    std::cout << "report: " << std::filesystem::absolute(*out).string() << "\n";
  }
  return failed ? 1 : 0;
}

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) must fail a write with EFBIG and a message, not kill us.
  std::signal(SIGXFSZ, SIG_IGN);
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
    if (command == "host") {
      std::cout << host_text();
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
    if (command == "fixture") return run_fixture_add(options);
    if (command == "check") return run_check(options);
    if (command == "bench") {
      if (options.flag("--help")) {
        std::cout << kBenchUsage;
        return 0;
      }
      if (const auto model = options.value("--model")) return run_model_bench(*model, bench_options(options));
      return run_bench(bench_options(options));
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
