// The state_dict, hook-preservation and rejection-parity oracles over every registered
// module kind, each on random case configurations (rapidcheck; failures shrink and print
// RC_PARAMS="reproduce=..." to rerun). Nothing here names a module.
#include <rapidcheck/boost_test.h>

#include <filesystem>

#include "oracles/checks.h"
#include "oracles/kinds/registry.h"
#include "properties/generators.h"

using namespace qconform;

namespace {

void assert_no_findings(const std::vector<std::string>& findings) {
  if (findings.empty()) return;
  std::string message;
  for (const auto& f : findings) message += "\n  " + f;
  RC_FAIL(std::to_string(findings.size()) + " finding(s):" + message);
}

bool init_suite() {
  auto& master = boost::unit_test::framework::master_test_suite();
  master.p_name.value = "oracles";
  const std::string scratch = (std::filesystem::temp_directory_path() / "qconform-prop-oracles").string();
  for (const ModuleKind& kind : registry()) {
    auto* suite = BOOST_TEST_SUITE(properties::test_name(kind.key));
    suite->add(boost::unit_test::make_test_case(
        [&kind, scratch] {
          rc::detail::checkBoostTest([&kind, scratch] {
            assert_no_findings(check_state_dict_round_trip(kind, *properties::gen_case_config(kind), scratch));
          });
        },
        "state_dict_round_trip", __FILE__, __LINE__));
    suite->add(boost::unit_test::make_test_case(
        [&kind] {
          rc::detail::checkBoostTest([&kind] {
            assert_no_findings(check_hook_preservation(kind, *properties::gen_case_config(kind)));
          });
        },
        "hook_preservation", __FILE__, __LINE__));
    suite->add(boost::unit_test::make_test_case(
        [&kind] {
          rc::detail::checkBoostTest([&kind] {
            assert_no_findings(check_rejection_parity(kind, *properties::gen_case_config(kind)));
          });
        },
        "rejection_parity", __FILE__, __LINE__));
    master.add(suite);
  }
  return true;
}

}  // namespace

int main(int argc, char* argv[]) {
  properties::set_rc_params_for_profile(10);
  return boost::unit_test::unit_test_main(&init_suite, argc, argv);
}
