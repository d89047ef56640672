// Numerical agreement, as properties over the registry: for every module kind, every
// implementation pair the registry implies (reference vs integer on each engine, integer
// vs LibTorch on each shared engine, reference vs LibTorch), a rapidcheck property draws
// case configurations, and the agreement oracle checks every output element against the
// tolerance row for the pair. Nothing here names a module.
//
// Edge scenarios run the same property with one size parameter pinned at its minimum or
// maximum (batch 1, in_features 1, ...).
//
// Rerun: a failure prints rapidcheck's RC_PARAMS="reproduce=..." (rerun the whole
// property with it) and the `qconform case ...` line that reruns the single case.
#include <rapidcheck/boost_test.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "oracles/agreement.h"
#include "properties/generators.h"

using namespace qconform;


namespace {

void agreement_property(const ModuleKind* kind, Pair pair, std::map<std::string, int64_t> pinned) {
  // One budget for the whole property, shrinking included (agreement.h: FreshProcessBudget).
  auto budget = std::make_shared<FreshProcessBudget>(kind->fresh_process_reruns);
  rc::detail::checkBoostTest([kind, pair, pinned, budget] {
    const CaseConfig config = *properties::gen_case_config(*kind, pinned);
    const CaseResult result = check_agreement(*kind, pair, config, budget.get());
    RC_CLASSIFY(result.exact == result.total, "bit-exact");
    RC_CLASSIFY(result.libtorch_unstable, "LibTorch unstable: judged on its rerun");
    RC_CLASSIFY(result.libtorch_history_dependent, "LibTorch history-dependent: judged on a history-free rerun");
    RC_TAG(to_string(config.style));
    if (!result.passed) RC_FAIL(result.failure);
  });
}

bool init_suite() {
  auto& master = boost::unit_test::framework::master_test_suite();
  master.p_name.value = "agreement";
  for (const ModuleKind& kind : registry()) {
    auto* kind_suite = BOOST_TEST_SUITE(properties::test_name(kind.key));
    for (const Pair& pair : agreement_pairs(kind)) {
      const std::string name = properties::test_name(pair.label());
      kind_suite->add(boost::unit_test::make_test_case(
          [&kind, pair] { agreement_property(&kind, pair, {}); }, name, __FILE__, __LINE__));
      for (const CaseParameter& p : kind.case_parameters) {
        for (const int64_t edge : {p.min, p.max}) {
          if (p.max - p.min < 2) continue;  // flags and small choices: covered by the main property
          kind_suite->add(boost::unit_test::make_test_case(
              [&kind, pair, p, edge] { agreement_property(&kind, pair, {{p.name, edge}}); },
              name + "__" + p.name + "_" + std::to_string(edge), __FILE__, __LINE__));
        }
      }
    }
    master.add(kind_suite);
  }
  return true;
}

}  // namespace

int main(int argc, char* argv[]) {
  // The profile sets the number of cases unless the user passes RC_PARAMS themselves.
  properties::set_rc_params_for_profile(1);
  return boost::unit_test::unit_test_main(&init_suite, argc, argv);
}
