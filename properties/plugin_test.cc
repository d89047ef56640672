#include "properties/plugin_test.h"

#include <rapidcheck/boost_test.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "core/error.h"
#include "core/files.h"
#include "oracles/agreement.h"
#include "oracles/conformance.h"
#include "oracles/plugin.h"
#include "properties/generators.h"
#include "reports/report.h"

namespace qconform {

namespace {

void plugin_property(const ModuleKind* kind, Pair pair) {
  auto budget = std::make_shared<FreshProcessBudget>(kind->fresh_process_reruns);
  rc::detail::checkBoostTest([kind, pair, budget] {
    const CaseConfig config = *properties::gen_case_config(*kind);
    const CaseResult result = check_agreement(*kind, pair, config, budget.get());
    RC_CLASSIFY(result.exact == result.total && result.declined.empty(), "bit-exact");
    RC_CLASSIFY(!result.declined.empty(), "declined by the plug-in");
    RC_TAG(to_string(config.style));
    if (!result.passed) RC_FAIL(result.failure);
  });
}

// The registered plug-ins' pairs, as a conformance run: results file and report.
void plugin_conformance() {
  const char* out = std::getenv("QCONFORM_PLUGIN_OUT");
  const std::string dir = out && *out ? out : "plugin-conformance";
  std::filesystem::create_directories(dir);
  ConformanceOptions options;
  options.plugins_only = true;
  options.seed = 20261121;
  if (const char* seed = std::getenv("QCONFORM_SEED"); seed && *seed && std::string(seed) != "random")
    options.seed = std::strtoull(seed, nullptr, 10);
  options.profile = std::getenv("QCONFORM_PROFILE") ? std::getenv("QCONFORM_PROFILE") : "quick";
  const nlohmann::json results = run_conformance(options);
  write_file_atomically(dir + "/results.json", results.dump(1) + "\n", "results");
  write_report(results, dir + "/report.html");
  const std::string summary = conformance_summary(results);
  std::cout << summary << "results: " << std::filesystem::absolute(dir + "/results.json").string()
            << "\nreport:  " << std::filesystem::absolute(dir + "/report.html").string() << "\n";
  BOOST_TEST(summary.find("failing") == std::string::npos, summary);
}

bool init_suite() {
  auto& master = boost::unit_test::framework::master_test_suite();
  master.p_name.value = "plugins";
  for (const ModuleKind& kind : registry()) {
    const std::vector<Pair> pairs = plugin_pairs(kind);
    if (pairs.empty()) continue;
    auto* suite = BOOST_TEST_SUITE(properties::test_name(kind.key));
    for (const Pair& pair : pairs)
      suite->add(boost::unit_test::make_test_case([&kind, pair] { plugin_property(&kind, pair); },
                                                  properties::test_name(pair.label()), __FILE__, __LINE__));
    master.add(suite);
  }
  master.add(boost::unit_test::make_test_case(&plugin_conformance, "conformance_report", __FILE__, __LINE__));
  return true;
}

// PROGRAM case --kind K --pair 'A,B' --case '...'
int rerun_case(int argc, char** argv) {
  std::string kind_key, pair_text, case_text;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string option = argv[i];
    if (option == "--kind") kind_key = argv[i + 1];
    else if (option == "--pair") pair_text = argv[i + 1];
    else if (option == "--case") case_text = argv[i + 1];
    else throw Error("unknown option " + option + " (case --kind KIND --pair 'A,B' --case '...')");
  }
  if (kind_key.empty() || pair_text.empty() || case_text.empty())
    throw Error("usage: " + std::string(argv[0]) + " case --kind KIND --pair 'A,B' --case '...'");
  const ModuleKind& kind = module_kind(kind_key);
  const Pair pair = parse_pair(pair_text);
  const CaseConfig config = parse_case_config(kind, case_text);
  const CaseResult r = check_agreement(kind, pair, config);
  std::cout << kind.key << " " << pair.label() << " {" << config.to_string() << "}\n";
  if (!r.declined.empty()) {
    std::cout << "  declined by the plug-in: " << r.declined << "\n";
    return 0;
  }
  std::cout << "  row " << r.tolerance_row << ": " << r.exact << "/" << r.total << " exact, max |diff| "
            << r.max_abs_error << ", worst " << r.max_bound_fraction << " of bound\n";
  if (!r.passed) std::cout << "  FAIL: " << r.failure << "\n";
  return r.passed ? 0 : 1;
}

}  // namespace

int plugin_test_main(int argc, char** argv, const char* qconform_tool) {
  if (qconform_tool && *qconform_tool && !std::getenv("QCONFORM_TOOL")) setenv("QCONFORM_TOOL", qconform_tool, 1);
  if (plugins().empty()) {
    std::cerr << argv[0] << ": no plug-in is registered (call qconform::register_plugin before plugin_test_main)\n";
    return 2;
  }
  // Failures print a rerun line naming this program.
  set_rerun_program(std::filesystem::absolute(argv[0]).string());
  if (argc > 1 && std::string(argv[1]) == "case") {
    try {
      return rerun_case(argc, argv);
    } catch (const Error& e) {
      std::cerr << argv[0] << ": " << e.what() << "\n";
      return 2;
    }
  }
  properties::set_rc_params_for_profile(1);
  return boost::unit_test::unit_test_main(&init_suite, argc, argv);
}

}  // namespace qconform
