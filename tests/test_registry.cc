// The module registry: dynamic Linear is declared once with both implementations (plus
// LibTorch's), conversions go through it, and absent implementations or engines are
// reported clearly.
#define BOOST_TEST_MODULE registry
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <set>

#include "oracles/kinds/registry.h"
#include "oracles/agreement.h"
#include "tests/support.h"

using namespace qconform;
using qconform::testing::expect_error;

BOOST_AUTO_TEST_CASE(dynamic_linear_is_registered_with_both_implementations) {
  const ModuleKind& kind = module_kind("dynamic.Linear");
  BOOST_CHECK(kind.family == Family::Dynamic);
  BOOST_REQUIRE(kind.find(Implementation::Reference));
  BOOST_REQUIRE(kind.find(Implementation::Quantized));
  BOOST_CHECK_EQUAL(kind.find(Implementation::Reference)->repr_name, "QuantizedLinear(Reference)");
  BOOST_CHECK_EQUAL(kind.find(Implementation::Quantized)->repr_name, "DynamicQuantizedLinear");
  BOOST_CHECK(kind.supports(Implementation::Quantized, Engine::FBGEMM));
  BOOST_CHECK(!kind.supports(Implementation::LibTorch, Engine::FBGEMM));  // not in Debian's build
}

BOOST_AUTO_TEST_CASE(keys_are_unique_and_every_kind_is_complete) {
  std::set<std::string> keys;
  for (const auto& kind : registry()) {
    BOOST_TEST_CONTEXT(kind.key) {
      BOOST_CHECK(keys.insert(kind.key).second);
      BOOST_CHECK(kind.make_case);
      // Every kind can bound its differences: per output element, or propagated.
      BOOST_CHECK(kind.structure == Structure::Recurrent ? static_cast<bool>(kind.recurrent_bounds)
                                                         : static_cast<bool>(kind.sensitivity));
      if (agreement_pairs(kind).empty()) {
        // Only where no engine here runs the module: the reference alone, and the engine
        // table says why (qnnpack has no ConvTranspose3d; test_static shows LibTorch's).
        BOOST_CHECK_EQUAL(kind.implementations.size(), 1u);
        BOOST_CHECK_EQUAL(kind.key, "static.ConvTranspose3d");
        BOOST_CHECK(!engine_rule(Engine::QNNPACK, kind.engine_op).conv_transpose3d_rejection.empty());
      }
      for (const auto& entry : kind.implementations) BOOST_CHECK(entry.from_float);
    }
  }
}

BOOST_AUTO_TEST_CASE(json_lists_every_kind_with_its_implementations) {
  const auto json = nlohmann::json::parse(registry_json());
  BOOST_REQUIRE_EQUAL(json.size(), registry().size());
  const auto& linear = json[0];
  BOOST_CHECK_EQUAL(linear["kind"], "dynamic.Linear");
  BOOST_CHECK_EQUAL(linear["family"], "dynamic");
  std::set<std::string> implementations;
  for (const auto& entry : linear["implementations"]) implementations.insert(entry["implementation"]);
  BOOST_CHECK(implementations.count("reference") && implementations.count("quantized"));
}

BOOST_AUTO_TEST_CASE(unknown_names_are_reported_with_the_alternatives) {
  expect_error([] { module_kind("dynamic.Nope"); }, "unknown module kind 'dynamic.Nope' (registered: dynamic.Linear");
  const ModuleKind& kind = module_kind("dynamic.Linear");
  std::mt19937_64 rng(1);
  Case c = kind.make_case(random_case_config(kind, rng));
  expect_error([&] { convert_from_float(kind, *c.float_module, {Implementation::LibTorch, Engine::FBGEMM}); },
               "dynamic.Linear: the libtorch implementation does not run on fbgemm");
  expect_error([] { parse_pair("reference"); }, "malformed pair");
  expect_error([&] { parse_case_config(kind, "batch=17 in_features=1 out_features=1 bias=0 per_channel=0 leading_dim=1"); },
               "batch=17 is outside [0, 16]");
}
