// The results file: a conformance run writes it, it reads back with every registry kind x
// pair present and consistent counts, and a malformed file is refused with its path.
#define BOOST_TEST_MODULE results
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "oracles/kinds/registry.h"
#include "oracles/agreement.h"
#include "oracles/conformance.h"
#include "reports/report.h"
#include "tests/support.h"

using namespace qconform;

BOOST_AUTO_TEST_CASE(results_round_trip_through_a_file) {
  ConformanceOptions options;
  options.seed = 11;
  options.cases_override = 5;
  options.scratch_directory = (std::filesystem::temp_directory_path() / "qconform-test-results").string();
  const nlohmann::json written = run_conformance(options);
  const std::string path = options.scratch_directory + "/results.json";
  std::ofstream(path) << written.dump();
  const nlohmann::json results = read_results(path);
  BOOST_CHECK(results == written);

  size_t expected_cells = 0;
  for (const auto& kind : registry()) expected_cells += agreement_pairs(kind).size();
  BOOST_REQUIRE_EQUAL(results["cells"].size(), expected_cells);
  for (const auto& cell : results["cells"]) {
    BOOST_TEST_CONTEXT(cell["kind"] << " " << cell["pair"]) {
      BOOST_CHECK_EQUAL(cell["cases"], 5);
      BOOST_CHECK_LE(cell["passed"].get<int>(), 5);
      BOOST_CHECK_EQUAL(cell["bound_fractions"].size(), 5u);
      BOOST_CHECK(cell["worst"]["rerun"].get<std::string>().find("qconform case --kind") != std::string::npos);
      int64_t classified = 0;
      for (const auto& [name, count] : cell["mismatch_classes"].items()) classified += count.get<int64_t>();
      const double exact = cell["fraction_exact"].get<double>() * cell["elements"].get<double>();
      BOOST_CHECK_EQUAL(classified, cell["elements"].get<int64_t>() - static_cast<int64_t>(std::llround(exact)));
    }
  }
  BOOST_CHECK_EQUAL(results["checks"].size(), 3 * registry().size());
  BOOST_CHECK_EQUAL(results["seed"], 11);
}

BOOST_AUTO_TEST_CASE(malformed_results_are_refused_with_the_path) {
  const auto dir = std::filesystem::temp_directory_path() / "qconform-test-results";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "bad.json").string();
  std::ofstream(path) << "{\"format\": \"something else\"}";
  qconform::testing::expect_error([&] { read_results(path); }, "bad.json: not a qconform results file");
  std::ofstream(path) << "{not json";
  qconform::testing::expect_error([&] { read_results(path); }, "bad.json: not valid JSON");
}
