// state_dict: PyTorch's keys and versions, a round trip through a file into a fresh module
// for every registered kind x implementation x engine (bit-identical outputs, identical
// keys), version-1 loading, and clear errors for malformed files.
#define BOOST_TEST_MODULE state_dict
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "oracles/kinds/registry.h"
#include "oracles/agreement.h"
#include "quantized/dynamic/linear.h"
#include "quantized/libtorch/dynamic_linear.h"
#include <cfloat>
#include <cmath>
#include "tests/support.h"

using namespace qconform;
using qconform::testing::expect_error;
namespace fs = std::filesystem;

namespace {

fs::path temp_file(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "qconform-test-state-dict";
  fs::create_directories(dir);
  return dir / name;
}

CaseConfig fixed_config(const ModuleKind& kind, uint64_t seed) {
  std::mt19937_64 rng(seed);
  CaseConfig config = random_case_config(kind, rng);
  config.data_seed = seed;
  config.style = InputStyle::Normal;
  // qint8 weights (per-tensor or per-channel), which every engine builds; float16 weights
  // are refused by qnnpack and onednn (the rejection oracle's business).
  if (config.values.count("weight")) config.values["weight"] = static_cast<int64_t>(seed % 2);
  // No output_padding, which onednn refuses for transposed convolutions (likewise).
  if (config.values.count("output_padding")) config.values["output_padding"] = 0;
  return config;
}

}  // namespace

BOOST_AUTO_TEST_CASE(keys_and_versions_are_pytorchs) {
  // Keys and versions as PyTorch 1.13 prints them for nnqd.Linear and nnqr.Linear
  // (module.state_dict().keys() and ._metadata).
  const ModuleKind& kind = module_kind("dynamic.Linear");
  CaseConfig config = fixed_config(kind, 1);
  config.values["bias"] = 1;
  Case c = kind.make_case(config);
  auto quantized = convert_from_float(kind, *c.float_module, {Implementation::Quantized, Engine::QNNPACK});
  const StateDict q = quantized->state_dict();
  const std::vector<std::string> q_keys{"scale", "zero_point", "_packed_params.dtype",
                                        "_packed_params._packed_params"};
  BOOST_CHECK(q.keys() == q_keys);
  BOOST_CHECK_EQUAL(q.versions.at(""), 4);
  BOOST_CHECK_EQUAL(q.versions.at("_packed_params"), 3);
  auto reference = convert_from_float(kind, *c.float_module, {Implementation::Reference, Engine::QNNPACK});
  const std::vector<std::string> r_keys{"weight", "bias", "weight_scale", "weight_zero_point",
                                        "weight_axis", "weight_qscheme", "weight_dtype"};
  BOOST_CHECK(reference->state_dict().keys() == r_keys);
}

BOOST_AUTO_TEST_CASE(round_trip_through_a_file_for_every_registered_module) {
  int checked = 0;
  for (const ModuleKind& kind : registry()) {
    for (const ImplementationEntry& entry : kind.implementations) {
      std::vector<Engine> engines = entry.engines;
      if (engines.empty()) engines = {Engine::QNNPACK};  // engine-independent
      for (Engine engine : engines) {
        const std::string label = kind.key + " " + to_string(entry.implementation) + "[" + to_string(engine) + "]";
        BOOST_TEST_CONTEXT(label) {
          const CaseConfig config = fixed_config(kind, 7);
          Case original = kind.make_case(config);
          const ConversionTarget target{entry.implementation, engine};
          auto saved_module = convert_from_float(kind, *original.float_module, target);
          const std::string& refusal = engine_rule(engine, kind.engine_op).conv3d_unpack_rejection;
          const bool is_3d = kind.float_name.size() > 2 && kind.float_name.compare(kind.float_name.size() - 2, 2, "3d") == 0;
          if (!refusal.empty() && is_3d && entry.implementation != Implementation::Reference) {
            // qnnpack cannot unpack a 3-d convolution: the state_dict is refused with its
            // message, by the integer module as by LibTorch (test_static checks both).
            expect_error([&] { saved_module->state_dict(); }, refusal);
            continue;
          }
          const StateDict state = saved_module->state_dict();
          const fs::path path = temp_file("module.qcsd");
          save_state_dict(state, path.string());
          for (const auto& entry : fs::directory_iterator(path.parent_path()))  // no temporary left behind
            BOOST_CHECK(entry.path().filename().string().find(".partial") == std::string::npos);

          // A fresh module of the same shape, built from different weights.
          CaseConfig other = config;
          other.data_seed = 8;
          Case fresh_case = kind.make_case(other);
          auto fresh = convert_from_float(kind, *fresh_case.float_module, target);
          fresh->load_state_dict(load_state_dict_file(path.string()));

          BOOST_CHECK(fresh->state_dict().keys() == state.keys());
          BOOST_CHECK(fresh->state_dict() == state);
          // nnq.Hardswish and nnq.ELU keep their output qparams outside the state_dict, as
          // PyTorch does: the loaded module keeps its own, and so its outputs.
          if (!kind.state_dict_holds_all_state) {
            ++checked;
            continue;
          }
          const ModuleOutput a = (*saved_module)(original.input);
          const ModuleOutput b = (*fresh)(original.input);
          const FlatOutput flat_a = flatten_output(a), flat_b = flatten_output(b);  // output and hidden state
          BOOST_CHECK(flat_a.parts == flat_b.parts);
          BOOST_CHECK(flat_a.values == flat_b.values);
          ++checked;
        }
      }
    }
  }
  BOOST_CHECK_GT(checked, 0);
}

BOOST_AUTO_TEST_CASE(version_one_state_dict_loads_without_reduce_range) {
  const ModuleKind& kind = module_kind("dynamic.Linear");
  Case c = kind.make_case(fixed_config(kind, 3));
  auto onednn = DynamicQuantizedLinear::from_float(dynamic_cast<const FloatLinear&>(*c.float_module), Engine::ONEDNN);
  auto qnnpack = DynamicQuantizedLinear::from_float(dynamic_cast<const FloatLinear&>(*c.float_module), Engine::QNNPACK);
  BOOST_CHECK(onednn->activations_use_reduced_range());
  StateDict old = onednn->state_dict();
  old.versions[""] = 1;
  onednn->load_state_dict(old);
  BOOST_CHECK_EQUAL(onednn->version(), 1);
  BOOST_CHECK(!onednn->activations_use_reduced_range());
  // Without reduce_range, onednn quantizes activations to 8 bits (and its int16 pair sums may
  // saturate): LibTorch's onednn, loaded from the same version-1 state_dict, agrees within
  // the epilogue bound of row dynamic.onednn.integer-vs-libtorch.
  auto libtorch = make_libtorch_dynamic_linear(onednn->weight(), onednn->bias(), Engine::ONEDNN);
  libtorch->load_state_dict(old);
  const Tensor ours = std::get<Tensor>((*onednn)(c.input).output);
  const Tensor theirs = std::get<Tensor>((*libtorch)(c.input).output);
  BOOST_REQUIRE(ours.sizes == theirs.sizes);
  for (size_t i = 0; i < ours.data.size(); ++i) {
    const double b = onednn->bias() ? std::abs(double(onednn->bias()->data[i % onednn->out_features()])) : 0.0;
    const double bound = 4.0 * FLT_EPSILON * (std::abs(double(ours.data[i])) + 2 * b) * (1 + 1e-6);
    BOOST_CHECK_LE(std::abs(double(ours.data[i]) - double(theirs.data[i])), bound);
  }
  BOOST_CHECK_EQUAL(libtorch->state_dict().versions.at(""), 1);
}

BOOST_AUTO_TEST_CASE(strict_loading_names_missing_and_unexpected_keys) {
  const ModuleKind& kind = module_kind("dynamic.Linear");
  Case c = kind.make_case(fixed_config(kind, 4));
  auto q = convert_from_float(kind, *c.float_module, {Implementation::Quantized, Engine::QNNPACK});
  StateDict state = q->state_dict();
  StateDict broken;
  for (const auto& [key, value] : state.entries())
    if (key != "scale") broken.set(key, value);
  broken.set("extra", Tensor(Shape{1}));
  expect_error([&] { q->load_state_dict(broken); },
               "Error(s) in loading state_dict for DynamicQuantizedLinear: Missing key(s) in "
               "state_dict: \"scale\". Unexpected key(s) in state_dict: \"extra\".");
  // The module still works with its old weights after the failed load.
  BOOST_CHECK(q->state_dict() == state);
}

BOOST_AUTO_TEST_CASE(malformed_files_are_rejected_with_the_path_and_reason) {
  const fs::path path = temp_file("bad.qcsd");
  std::ofstream(path) << "not a state dict";
  expect_error([&] { load_state_dict_file(path.string()); }, "bad.qcsd: malformed state_dict file at byte 8: not a qconform state_dict file (bad magic)");

  const ModuleKind& kind = module_kind("dynamic.Linear");
  Case c = kind.make_case(fixed_config(kind, 5));
  auto q = convert_from_float(kind, *c.float_module, {Implementation::Quantized, Engine::QNNPACK});
  const fs::path good = temp_file("good.qcsd");
  save_state_dict(q->state_dict(), good.string());
  const auto size = fs::file_size(good);
  fs::resize_file(good, size - 3);
  expect_error([&] { load_state_dict_file(good.string()); }, "truncated");
  expect_error([&] { load_state_dict_file(temp_file("missing.qcsd").string()); }, "cannot open state_dict file");
  // Found by scripts/fuzz state_dict (docs/reliability.md; fixtures/fuzz/state_dict/regression-*):
  // a shape whose product leaves int64 is named, not multiplied out.
  std::ifstream in(std::string(QCONFORM_SOURCE_DIR) + "/fixtures/fuzz/state_dict/regression-shape-overflow.qcsd",
                   std::ios::binary);
  BOOST_REQUIRE(in);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  expect_error([&] { parse_state_dict_bytes(bytes, "fuzz.qcsd"); }, "a shape of more elements than int64 counts");
}
