// The HTML report's structure, from a results file with passing and failing cells: every
// registered module appears, each failing cell links to its detail, and the detail carries
// the counterexample and the command that reruns it. Self-contained: nothing fetched.
#define BOOST_TEST_MODULE report
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "oracles/kinds/registry.h"
#include "oracles/conformance.h"
#include "core/error.h"
#include "reports/report.h"

using namespace qconform;

namespace {

nlohmann::json results_with_a_failure() {
  ConformanceOptions options;
  options.seed = 21;
  options.cases_override = 4;
  options.scratch_directory = (std::filesystem::temp_directory_path() / "qconform-test-report").string();
  nlohmann::json results = run_conformance(options);
  // Make the first cell fail, as a failing run records it.
  auto& cell = results["cells"][0];
  cell["passed"] = 3;
  cell["worst"]["bound_fraction"] = 4.5;
  cell["failures"].push_back({{"case", "batch=1 seed=9 style=ties"},
                              {"message", "element 0 of [1, 1]: |diff| exceeds the bound"},
                              {"rerun", "build/qconform case --kind dynamic.Linear --pair x,y --case 'batch=1'"}});
  return results;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_module_is_present_and_failures_link_to_reruns) {
  const nlohmann::json results = results_with_a_failure();
  const std::string html = render_report(results);
  for (const auto& kind : registry()) BOOST_CHECK_MESSAGE(html.find(">" + kind.key + "<") != std::string::npos, kind.key);

  // The failing cell in the matrix links to an anchor whose detail holds the rerun command.
  const std::regex failing_cell("<td class=\"cell fail\"[^>]*><a href=\"#([^\"]+)\">FAIL");
  std::smatch match;
  BOOST_REQUIRE(std::regex_search(html, match, failing_cell));
  const std::string id = match[1];
  const auto detail = html.find("id=\"" + id + "\"");
  BOOST_REQUIRE(detail != std::string::npos);
  const auto detail_end = html.find("<div class=\"detail", detail + 1);
  const std::string body = html.substr(detail, detail_end - detail);
  BOOST_CHECK(body.find("FAIL") != std::string::npos);
  BOOST_CHECK(body.find("qconform case --kind dynamic.Linear") != std::string::npos);
  BOOST_CHECK(body.find("batch=1 seed=9 style=ties") != std::string::npos);
  BOOST_CHECK(html.find("Failures: 1 of ") != std::string::npos);

  // Passing cells link to their details too, and every cell has one.
  size_t details = 0;
  for (auto at = html.find("<div class=\"detail"); at != std::string::npos; at = html.find("<div class=\"detail", at + 1))
    ++details;
  BOOST_CHECK_EQUAL(details, results["cells"].size());
}

BOOST_AUTO_TEST_CASE(the_report_is_self_contained) {
  const std::string html = render_report(results_with_a_failure());
  for (const char* external : {"src=\"http", "href=\"http", "@import", "url(http", "<link "})
    BOOST_CHECK_MESSAGE(html.find(external) == std::string::npos, "report references " << external);
  BOOST_CHECK(html.find("<svg") != std::string::npos);
  BOOST_CHECK(html.find("Rejection parity") != std::string::npos);
  BOOST_CHECK(html.find("Engine table") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(fixture_replays_show_origin_verdict_and_worst_error) {
  nlohmann::json results = results_with_a_failure();
  results["fixtures"] = {{{"name", "lstm_qnnpack_bidirectional"}, {"torch_version", "1.13.1"}, {"engine", "fbgemm"},
                          {"passed", false}, {"worst", "3 quanta at element 17"}}};
  const std::string html = render_report(results);
  for (const char* text : {"lstm_qnnpack_bidirectional", "1.13.1", "fbgemm", "3 quanta at element 17"})
    BOOST_CHECK_MESSAGE(html.find(text) != std::string::npos, text);
  BOOST_CHECK(html.find("No LibTorch fixtures were replayed") == std::string::npos);
  BOOST_CHECK(render_report(results_with_a_failure()).find("No LibTorch fixtures were replayed") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_full_matrix_stays_small) {
  // Every registered kind x pair at the deep profile's case count: the page must stay light
  // enough to open in well under a second.
  nlohmann::json results = results_with_a_failure();
  for (auto& cell : results["cells"]) cell["bound_fractions"] = std::vector<double>(1000, 0.5);
  const std::string html = render_report(results);
  BOOST_TEST_MESSAGE("report size at " << results["cells"].size() << " cells: " << html.size() << " bytes");
  BOOST_CHECK_LT(html.size(), 2'000'000u);
}

// A results file missing a field the report reads, or holding another type there, is refused
// with an Error saying so; it is not read past (fuzzing found a rejection row without its
// "quantized" side crashing the report: fixtures/fuzz/results/regression-*).
BOOST_AUTO_TEST_CASE(a_malformed_results_file_is_refused_not_read_past) {
  const std::string dir = std::string(QCONFORM_SOURCE_DIR) + "/fixtures/fuzz/results/";
  std::ifstream seed(dir + "small-run.json"), crash(dir + "regression-rejection-without-a-side.json");
  std::stringstream seed_text, crash_text;
  seed_text << seed.rdbuf();
  crash_text << crash.rdbuf();
  const nlohmann::json good = parse_results(seed_text.str(), "small-run.json");
  BOOST_TEST(render_report(good).find("</html>") != std::string::npos);
  try {
    render_report(parse_results(crash_text.str(), "regression.json"));
    BOOST_FAIL("the malformed results file was rendered");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).rfind("a malformed results file: ", 0) == 0, e.what());
  }
  nlohmann::json wrong_type = good;
  wrong_type["cells"] = 5;
  BOOST_CHECK_THROW(render_report(wrong_type), Error);
  BOOST_CHECK_THROW(parse_results("[1, 2]", "list.json"), Error);
  BOOST_CHECK_THROW(parse_results(R"({"format": 3})", "number.json"), Error);
}
