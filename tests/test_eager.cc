// The eager flow (core/eager.h) on the seeds' model shapes: qconfig propagation and
// overrides, prepare's observers and where their hook goes, convert to every implementation,
// QuantWrapper, quantize_dynamic, the seed's forward-hook tests for the static and dynamic
// flows, and the seed's reference-module pattern for Linear.
#define BOOST_TEST_MODULE eager
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <random>

#include "oracles/eager.h"
#include "core/float/conv.h"
#include "core/float/linear.h"
#include "core/float/rnn.h"
#include "core/quantize.h"
#include "core/state_dict.h"
#include "tests/support.h"

using namespace qconform;
using qconform::testing::expect_error;

namespace {

Tensor random_tensor(Shape shape, uint64_t seed, float magnitude = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, magnitude);
  Tensor t(std::move(shape));
  for (float& v : t.data) v = normal(rng);
  return t;
}

std::unique_ptr<FloatLinear> linear(int64_t in, int64_t out, uint64_t seed) {
  return std::make_unique<FloatLinear>(random_tensor({out, in}, seed, 0.4f), random_tensor({out}, seed + 1, 0.1f));
}

// The seeds' QuantStubModel: quant -> fc (Linear 5x5) -> dequant. A reference module takes
// float input, so for is_reference=True the seeds put it between its own stubs:
// quant -> dequant_in -> fc -> quant_out -> dequant.
std::unique_ptr<Sequential> quant_stub_model(uint64_t seed = 11, bool for_reference = false) {
  Sequential::Children c;
  c.emplace_back("quant", std::make_unique<QuantStub>());
  if (for_reference) c.emplace_back("dequant_in", std::make_unique<DeQuantStub>());
  c.emplace_back("fc", linear(5, 5, seed));
  if (for_reference) c.emplace_back("quant_out", std::make_unique<QuantStub>());
  c.emplace_back("dequant", std::make_unique<DeQuantStub>());
  return std::make_unique<Sequential>(std::move(c), "QuantStubModel");
}

const std::vector<ConversionTarget> kStaticTargets = {{Implementation::Quantized, Engine::QNNPACK},
                                                      {Implementation::LibTorch, Engine::QNNPACK},
                                                      {Implementation::Reference, Engine::QNNPACK}};

std::string label_of(const ConversionTarget& t) { return to_string(t.implementation) + "[" + t.engine.label() + "]"; }

}  // namespace

// test_quantize_eager_ptq.py's test_forward_hooks_preserved (static): the user's hooks survive
// prepare and convert, prepare's observer hook runs before the user's forward hook, and after
// convert no observer hook and no extra hook remain.
BOOST_AUTO_TEST_CASE(static_flow_preserves_forward_hooks) {
  for (const ConversionTarget& target : kStaticTargets) {
    BOOST_TEST_CONTEXT("convert to " << label_of(target)) {
      auto model = quant_stub_model(11, target.implementation == Implementation::Reference);
      int pre_forwards = 0, forwards = 0;
      Module& fc = model->child("fc");
      const HookHandle pre = fc.register_forward_pre_hook([&](Module&, const ModuleInput&) {
        ++pre_forwards;
        return std::optional<ModuleInput>();
      });
      const HookHandle post = fc.register_forward_hook([&](Module&, const ModuleInput&, const ModuleOutput&) {
        ++forwards;
        return std::optional<ModuleOutput>();
      });
      model->qconfig = get_default_qconfig(Engine::QNNPACK);
      prepare(*model);

      BOOST_CHECK_EQUAL(model->child("quant").forward_hook_count(), 1u);  // its observer
      BOOST_CHECK_EQUAL(model->child("dequant").forward_hook_count(), 0u);
      BOOST_REQUIRE_EQUAL(fc.forward_pre_hook_count(), 1u);
      BOOST_CHECK_EQUAL(fc.forward_pre_hook_ids().front(), pre.id());
      BOOST_REQUIRE_EQUAL(fc.forward_hook_count(), 2u);
      BOOST_REQUIRE(fc.observer_hook_id.has_value());
      BOOST_CHECK_EQUAL(fc.forward_hook_ids().front(), *fc.observer_hook_id);  // observer first
      BOOST_CHECK_EQUAL(fc.forward_hook_ids().back(), post.id());              // the user's last

      for (uint64_t i = 0; i < 4; ++i) (*model)(random_tensor({3, 5}, 100 + i));  // calibration
      BOOST_CHECK_EQUAL(pre_forwards, 4);
      BOOST_CHECK_EQUAL(forwards, 4);

      convert(*model, target);
      Module& converted = model->child("fc");
      BOOST_CHECK_NE(&converted, &fc);
      BOOST_CHECK_EQUAL(model->child("quant").name(), "Quantize");
      BOOST_CHECK_EQUAL(model->child("dequant").name(), "DeQuantize");
      BOOST_CHECK_EQUAL(model->child("quant").forward_hook_count(), 0u);
      BOOST_CHECK_EQUAL(converted.forward_pre_hook_count(), 1u);
      BOOST_CHECK_EQUAL(converted.forward_pre_hook_ids().front(), pre.id());
      BOOST_REQUIRE_EQUAL(converted.forward_hook_count(), 1u);
      BOOST_CHECK_EQUAL(converted.forward_hook_ids().back(), post.id());

      (*model)(random_tensor({3, 5}, 200));
      BOOST_CHECK_EQUAL(pre_forwards, 5);
      BOOST_CHECK_EQUAL(forwards, 5);
    }
  }
}

// TestQuantizeEagerPTQDynamic.test_forward_hooks_preserved: quantize_dynamic keeps both hooks.
BOOST_AUTO_TEST_CASE(dynamic_flow_preserves_forward_hooks) {
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN})
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      Sequential::Children c;
      c.emplace_back("fc1", linear(5, 5, 3));
      Sequential model(std::move(c), "SingleLayerLinearDynamicModel");
      int pre_forwards = 0, forwards = 0;
      const HookHandle pre = model.child("fc1").register_forward_pre_hook([&](Module&, const ModuleInput&) {
        ++pre_forwards;
        return std::optional<ModuleInput>();
      });
      const HookHandle post =
          model.child("fc1").register_forward_hook([&](Module&, const ModuleInput&, const ModuleOutput&) {
            ++forwards;
            return std::optional<ModuleOutput>();
          });
      quantize_dynamic(model, {implementation, engine});
      Module& fc1 = model.child("fc1");
      BOOST_CHECK_EQUAL(fc1.name(), "DynamicQuantizedLinear");
      BOOST_CHECK(fc1.engine() == engine);
      BOOST_CHECK((fc1.forward_pre_hook_ids() == std::vector<uint64_t>{pre.id()}));
      BOOST_CHECK((fc1.forward_hook_ids() == std::vector<uint64_t>{post.id()}));
      model(random_tensor({2, 5}, 9));
      BOOST_CHECK_EQUAL(pre_forwards, 1);
      BOOST_CHECK_EQUAL(forwards, 1);
    }
}

// A parent's qconfig reaches its children; a child's own qconfig wins; qconfig None skips the
// module and everything under it.
BOOST_AUTO_TEST_CASE(qconfig_propagates_overrides_and_skips) {
  Sequential::Children inner;
  inner.emplace_back("fc1", linear(4, 4, 1));
  inner.emplace_back("fc2", linear(4, 4, 2));
  auto sub = std::make_unique<Sequential>(std::move(inner));
  sub->child("fc2").qconfig_explicitly_none = true;
  Sequential::Children skipped_inner;
  skipped_inner.emplace_back("fc4", linear(4, 4, 4));
  auto skipped = std::make_unique<Sequential>(std::move(skipped_inner));
  skipped->qconfig_explicitly_none = true;
  Sequential::Children c;
  c.emplace_back("quant", std::make_unique<QuantStub>());
  c.emplace_back("sub", std::move(sub));
  c.emplace_back("fc3", linear(4, 4, 3));
  c.emplace_back("skipped", std::move(skipped));
  Sequential model(std::move(c), "Model");
  model.qconfig = default_qconfig();
  model.child("fc3").qconfig = default_per_channel_qconfig();

  prepare(model);
  auto& sub_ref = dynamic_cast<Sequential&>(model.child("sub"));
  auto& skipped_ref = dynamic_cast<Sequential&>(model.child("skipped"));
  BOOST_REQUIRE(sub_ref.child("fc1").qconfig.has_value());
  BOOST_CHECK_EQUAL(sub_ref.child("fc1").qconfig->name, "default_qconfig");
  BOOST_CHECK(!sub_ref.child("fc2").qconfig.has_value());
  BOOST_CHECK(!sub_ref.child("fc2").activation_post_process);
  BOOST_CHECK_EQUAL(model.child("fc3").qconfig->name, "default_per_channel_qconfig");
  BOOST_CHECK(!skipped_ref.child("fc4").qconfig.has_value());
  BOOST_CHECK(!skipped_ref.child("fc4").activation_post_process);
  BOOST_CHECK(model.child("quant").activation_post_process != nullptr);
  BOOST_CHECK(sub_ref.child("fc1").activation_post_process != nullptr);

  // Linear -> Linear: the quantized fc1 feeds float fc2, so calibrate the pieces that
  // convert needs and check names only.
  for (uint64_t i = 0; i < 3; ++i) (*model.children()[0].second)(random_tensor({2, 4}, 50 + i));
  for (uint64_t i = 0; i < 3; ++i) sub_ref.child("fc1")(random_tensor({2, 4}, 60 + i));
  for (uint64_t i = 0; i < 3; ++i) model.child("fc3")(random_tensor({2, 4}, 70 + i));
  convert(model, {Implementation::Quantized, Engine::QNNPACK});
  BOOST_CHECK_EQUAL(model.child("quant").name(), "Quantize");
  BOOST_CHECK_EQUAL(sub_ref.child("fc1").name(), "QuantizedLinear");
  BOOST_CHECK_EQUAL(sub_ref.child("fc2").name(), "Linear");
  BOOST_CHECK_EQUAL(model.child("fc3").name(), "QuantizedLinear");
  BOOST_CHECK_EQUAL(skipped_ref.child("fc4").name(), "Linear");
  // fc3's weight went through its own (per-channel) qconfig.
  const StateDict fc3 = model.child("fc3").state_dict();
  BOOST_CHECK(fc3.contains("_packed_params._packed_params"));
}

// QuantWrapper: quant, module, dequant with the module's qconfig; a DeQuantStub whose qconfig
// is None stays a DeQuantStub.
BOOST_AUTO_TEST_CASE(quant_wrapper_and_a_dequant_stub_with_qconfig_none) {
  auto fc = linear(3, 2, 7);
  fc->qconfig = default_qconfig();
  auto wrapper = quant_wrapper(std::move(fc));
  BOOST_CHECK_EQUAL(wrapper->name(), "QuantWrapper");
  BOOST_CHECK_EQUAL(wrapper->child("quant").qconfig->name, "default_qconfig");
  wrapper->child("dequant").qconfig.reset();
  wrapper->child("dequant").qconfig_explicitly_none = true;
  prepare(*wrapper);
  for (uint64_t i = 0; i < 3; ++i) (*wrapper)(random_tensor({4, 3}, 30 + i));
  convert(*wrapper, {Implementation::Quantized, Engine::QNNPACK});
  BOOST_CHECK_EQUAL(wrapper->child("quant").name(), "Quantize");
  BOOST_CHECK_EQUAL(wrapper->child("module").name(), "QuantizedLinear");
  BOOST_CHECK_EQUAL(wrapper->child("dequant").name(), "DeQuantStub");
  // The output is then still quantized, as in PyTorch.
  const ModuleOutput out = (*wrapper)(ModuleInput{random_tensor({4, 3}, 40), std::nullopt});
  BOOST_CHECK(std::holds_alternative<QTensor>(out.output));
}

// The converted tree's state_dict: the children's keys under their names, written to disk,
// read back and loaded into a tree converted from other weights: identical keys, identical
// outputs.
BOOST_AUTO_TEST_CASE(converted_tree_state_dict_round_trips_through_a_file) {
  const auto converted = [](uint64_t seed) {
    auto model = quant_stub_model(seed);
    model->qconfig = default_qconfig();
    prepare(*model);
    for (uint64_t i = 0; i < 3; ++i) (*model)(random_tensor({4, 5}, seed * 10 + i));
    convert(*model, {Implementation::Quantized, Engine::QNNPACK});
    return model;
  };
  auto a = converted(1), b = converted(2);
  const StateDict state = a->state_dict();
  BOOST_CHECK((state.keys() == std::vector<std::string>{"quant.scale", "quant.zero_point", "fc.scale",
                                                        "fc.zero_point", "fc._packed_params.dtype",
                                                        "fc._packed_params._packed_params"}));
  BOOST_CHECK_EQUAL(state.versions.at("fc"), 3);
  const std::string path = (std::filesystem::temp_directory_path() / "qconform-test-eager.qsd").string();
  save_state_dict(state, path);
  b->load_state_dict(load_state_dict_file(path));
  std::filesystem::remove(path);
  BOOST_CHECK(b->state_dict() == state);
  const Tensor x = random_tensor({6, 5}, 77);
  BOOST_CHECK((*a)(x).data == (*b)(x).data);
  // A tree refuses a state_dict with a key it does not have, and stays as it was.
  StateDict extra = state;
  extra.set("fc.unexpected", Tensor(Shape{1}, {1.0f}));
  expect_error([&] { b->load_state_dict(extra); }, "fc.unexpected");
  BOOST_CHECK(b->state_dict() == state);
}

// Errors: convert before calibration, an unknown child, a bad Quantize state.
BOOST_AUTO_TEST_CASE(flow_errors_name_the_module) {
  auto model = quant_stub_model();
  model->qconfig = default_qconfig();
  propagate_qconfig(*model);  // qconfigs without observers: prepare was skipped
  expect_error([&] { convert(*model, {Implementation::Quantized, Engine::QNNPACK}); },
               "QuantStub has no activation_post_process");
  BOOST_CHECK_EQUAL(model->child("quant").name(), "QuantStub");  // nothing was swapped
  expect_error([&] { model->child("fc2"); }, "QuantStubModel has no child 'fc2' (children: quant, fc, dequant)");
  // A conversion refused deep in the tree leaves every module where it was.
  Sequential::Children inner;
  inner.emplace_back("fc2", linear(5, 5, 2));
  Sequential::Children outer;
  outer.emplace_back("quant", std::make_unique<QuantStub>());
  outer.emplace_back("fc1", linear(5, 5, 1));
  outer.emplace_back("sub", std::make_unique<Sequential>(std::move(inner)));
  Sequential tree(std::move(outer), "Tree");
  tree.qconfig = default_qconfig();
  prepare(tree);
  tree(random_tensor({2, 5}, 3));
  dynamic_cast<Sequential&>(tree.child("sub")).child("fc2").activation_post_process.reset();
  expect_error([&] { convert(tree, {Implementation::Quantized, Engine::QNNPACK}); },
               "Linear has no activation_post_process");
  BOOST_CHECK_EQUAL(tree.child("quant").name(), "QuantStub");
  BOOST_CHECK_EQUAL(tree.child("fc1").name(), "Linear");

  Quantize q(0.5, 3, DType::QUInt8);
  StateDict bad = q.state_dict();
  bad.set("zero_point", IntTensor{{1}, {300}, false});
  expect_error([&] { q.load_state_dict(bad); }, "zero_point");
  BOOST_CHECK_EQUAL(q.qparams().zero_point(), 3);
  expect_error([&] { quantize_dynamic(*model, {Implementation::Quantized, Engine::QNNPACK}, DType::QUInt8); },
               "Don't know how to quantize with default settings for");
}

// test_quantize_eager_ptq.py's _test_reference_module_impl, with the seed's modules and
// input shapes: the integer module between Quantize and DeQuantize equals, after
// dequantization, the is_reference=True module between its own stubs (quant1 -> dequant1 ->
// module -> quant2 -> dequant2). The seed runs it on fbgemm and onednn and skips qnnpack;
// here qnnpack is the engine whose static requantization the harness models, where the int32
// bias and the float multiplier may move an element by one output quantum: the elements that
// differ are counted (in the test log) and must be at most 10 % and one quantum away.
void check_reference_module_pattern(const std::string& label, const std::function<std::unique_ptr<Module>()>& make,
                                    const Shape& input_shape, const std::string& integer_name,
                                    const std::string& reference_name) {
  const Tensor data = random_tensor(input_shape, 5);
  const auto calibrated = [&](std::vector<std::string> names, const std::string& class_name) {
    Sequential::Children c;
    for (const auto& n : names) {
      if (n == "module") c.emplace_back(n, make());  // the same float weights in both models
      else if (n.rfind("quant", 0) == 0) c.emplace_back(n, std::make_unique<QuantStub>());
      else c.emplace_back(n, std::make_unique<DeQuantStub>());
    }
    auto model = std::make_unique<Sequential>(std::move(c), class_name);
    model->qconfig = default_qconfig();
    prepare(*model);
    (*model)(data);
    return model;
  };
  auto ref_m = calibrated({"quant1", "dequant1", "module", "quant2", "dequant2"}, "RefM");
  convert(*ref_m, {Implementation::Reference, Engine::QNNPACK});
  BOOST_CHECK_EQUAL(ref_m->child("module").name(), reference_name);
  const Tensor ref_res = (*ref_m)(data);
  const double quantum = dynamic_cast<const Quantize&>(ref_m->child("quant2")).qparams().scale();
  for (const ConversionTarget& target : {kStaticTargets[0], kStaticTargets[1]}) {
    BOOST_TEST_CONTEXT(label << " " << label_of(target)) {
      auto m = calibrated({"quant", "module", "dequant"}, "M");
      convert(*m, target);
      BOOST_CHECK_EQUAL(m->child("module").name(), integer_name);
      BOOST_CHECK_EQUAL(m->child("quant").name(), "Quantize");
      BOOST_CHECK_EQUAL(m->child("dequant").name(), "DeQuantize");
      const Tensor res = (*m)(data);
      BOOST_REQUIRE_EQUAL(res.data.size(), ref_res.data.size());
      int64_t equal = 0;
      for (size_t i = 0; i < res.data.size(); ++i) {
        equal += res.data[i] == ref_res.data[i];
        BOOST_CHECK_LE(std::abs(double(res.data[i]) - ref_res.data[i]), quantum * 1.0001);
      }
      BOOST_TEST_MESSAGE("reference pattern, " << label << ", " << label_of(target) << ": " << equal << "/"
                                               << res.data.size() << " elements equal");
      BOOST_CHECK_GE(equal * 10, static_cast<int64_t>(res.data.size()) * 9);
    }
  }
}

std::unique_ptr<Module> seed_conv(int64_t dims, bool transposed = false) {  // {'in_channels': 1, 'out_channels': 1, 'kernel_size': 1}
  ConvOptions o;
  o.spatial_dims = dims;
  o.transposed = transposed;
  o.kernel_size.assign(dims, 1);
  o.stride.assign(dims, 1);
  o.padding.assign(dims, 0);
  o.dilation.assign(dims, 1);
  return std::make_unique<FloatConv>(o, random_tensor(o.weight_shape(), 3, 0.5f), random_tensor({1}, 4, 0.1f));
}

BOOST_AUTO_TEST_CASE(reference_module_pattern_for_linear_and_convolutions) {
  check_reference_module_pattern("Linear", [] { return linear(5, 10, 0); }, {16, 5}, "QuantizedLinear",
                                 "QuantizedLinear(Reference)");
  check_reference_module_pattern("Conv1d", [] { return seed_conv(1); }, {16, 1, 1}, "QuantizedConv1d",
                                 "QuantizedConv1d(Reference)");
  check_reference_module_pattern("Conv2d", [] { return seed_conv(2); }, {16, 1, 10, 10}, "QuantizedConv2d",
                                 "QuantizedConv2d(Reference)");
  check_reference_module_pattern("Conv3d", [] { return seed_conv(3); }, {16, 1, 10, 10, 10}, "QuantizedConv3d",
                                 "QuantizedConv3d(Reference)");
  check_reference_module_pattern("ConvTranspose1d", [] { return seed_conv(1, true); }, {16, 1, 1},
                                 "QuantizedConvTranspose1d", "QuantizedConvTranspose1d(Reference)");
  check_reference_module_pattern("ConvTranspose2d", [] { return seed_conv(2, true); }, {16, 1, 10, 10},
                                 "QuantizedConvTranspose2d", "QuantizedConvTranspose2d(Reference)");
  // ConvTranspose3d: qnnpack has none (engine table; test_static), so there is no integer
  // module here to hold against its reference.
}

// test_quantize_eager_ptq.py's per-channel ConvTranspose rule: a per-channel weight observer
// on ConvTranspose{1,2,3}d fails at prepare, not at convert, with PyTorch's message (braces
// included: its source has no f-string), and leaves no observer behind; with qconfig None
// on the transposed convolution the same model prepares.
BOOST_AUTO_TEST_CASE(per_channel_conv_transpose_is_refused_at_prepare) {
  for (int64_t dims : {1, 2, 3}) {
    const auto model = [&] {
      Sequential::Children c;
      c.emplace_back("quant", std::make_unique<QuantStub>());
      c.emplace_back("module", seed_conv(dims, true));
      c.emplace_back("dequant", std::make_unique<DeQuantStub>());
      auto m = std::make_unique<Sequential>(std::move(c), "M");
      m->qconfig = default_per_channel_qconfig();
      return m;
    };
    auto refused = model();
    expect_error([&] { prepare(*refused); }, "Per channel weight observer is not supported yet for ConvTranspose{n}d.");
    BOOST_CHECK(!refused->child("quant").activation_post_process);
    BOOST_CHECK_EQUAL(refused->child("quant").forward_hook_count(), 0u);
    auto skipped = model();
    skipped->child("module").qconfig_explicitly_none = true;
    prepare(*skipped);
    BOOST_CHECK(skipped->child("quant").activation_post_process != nullptr);
    BOOST_CHECK(!skipped->child("module").activation_post_process);
  }
}
