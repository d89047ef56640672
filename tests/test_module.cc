// The shared module interface: names, forward over typed values, hooks (order, removal,
// replacement of input and output) and hooks carried through every conversion path.
#define BOOST_TEST_MODULE module_interface
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "core/float/linear.h"
#include "oracles/kinds/registry.h"
#include "quantized/dynamic/linear.h"
#include "reference/linear.h"
#include "tests/support.h"

using namespace qconform;
using qconform::testing::expect_error;

namespace {

std::unique_ptr<FloatLinear> small_linear() {
  auto m = std::make_unique<FloatLinear>(Tensor(Shape{2, 3}, {1, 2, 3, 4, 5, 6}), Tensor(Shape{2}, {0.5f, -0.5f}));
  m->qconfig = default_dynamic_qconfig();
  return m;
}

const Tensor kInput(Shape{1, 3}, {1.0f, 0.0f, -1.0f});

}  // namespace

BOOST_AUTO_TEST_CASE(float_forward_is_x_w_transpose_plus_b) {
  auto m = small_linear();
  const Tensor y = (*m)(kInput);
  BOOST_CHECK(y.sizes == (Shape{1, 2}));
  BOOST_CHECK_EQUAL(y.data[0], 1.0f - 3.0f + 0.5f);
  BOOST_CHECK_EQUAL(y.data[1], 4.0f - 6.0f - 0.5f);
  expect_error([&] { (*m)(Tensor(Shape{1, 4})); }, "mat1 and mat2 shapes cannot be multiplied (1x4 and 3x2)");
}

BOOST_AUTO_TEST_CASE(names_follow_pytorch) {
  auto m = small_linear();
  BOOST_CHECK_EQUAL(m->name(), "Linear");
  BOOST_CHECK_EQUAL(ReferenceLinear::from_float(*m)->name(), "QuantizedLinear(Reference)");
  auto q = DynamicQuantizedLinear::from_float(*m, Engine::QNNPACK);
  BOOST_CHECK_EQUAL(q->name(), "DynamicQuantizedLinear");
  BOOST_CHECK_EQUAL(q->repr(),
                    "DynamicQuantizedLinear(in_features=3, out_features=2, dtype=torch.qint8, "
                    "qscheme=torch.per_tensor_affine)");
}

BOOST_AUTO_TEST_CASE(hooks_fire_in_registration_order) {
  auto m = small_linear();
  std::vector<std::string> calls;
  m->register_forward_pre_hook([&](Module&, const ModuleInput&) { calls.push_back("pre1"); return std::nullopt; });
  m->register_forward_hook([&](Module&, const ModuleInput&, const ModuleOutput&) { calls.push_back("post1"); return std::nullopt; });
  m->register_forward_pre_hook([&](Module&, const ModuleInput&) { calls.push_back("pre2"); return std::nullopt; });
  m->register_forward_hook([&](Module&, const ModuleInput&, const ModuleOutput&) { calls.push_back("post2"); return std::nullopt; });
  (*m)(kInput);
  const std::vector<std::string> expected{"pre1", "pre2", "post1", "post2"};
  BOOST_CHECK_EQUAL_COLLECTIONS(calls.begin(), calls.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(removing_a_handle_stops_the_hook) {
  auto m = small_linear();
  int first = 0, second = 0;
  HookHandle h1 = m->register_forward_hook([&](Module&, const ModuleInput&, const ModuleOutput&) { ++first; return std::nullopt; });
  HookHandle h2 = m->register_forward_pre_hook([&](Module&, const ModuleInput&) { ++second; return std::nullopt; });
  (*m)(kInput);
  h1.remove();
  (*m)(kInput);
  BOOST_CHECK_EQUAL(first, 1);
  BOOST_CHECK_EQUAL(second, 2);
  h2.remove();
  h2.remove();  // a second removal is a no-op, as in PyTorch
  (*m)(kInput);
  BOOST_CHECK_EQUAL(second, 2);
  BOOST_CHECK_EQUAL(m->forward_hook_count(), 0u);
  BOOST_CHECK_EQUAL(m->forward_pre_hook_count(), 0u);
}

BOOST_AUTO_TEST_CASE(hooks_may_replace_input_and_output) {
  auto m = small_linear();
  m->register_forward_pre_hook([](Module&, const ModuleInput&) -> std::optional<ModuleInput> {
    return ModuleInput{Tensor(Shape{1, 3}, {0, 0, 0}), std::nullopt};
  });
  const Tensor zero_input_output = (*m)(kInput);
  BOOST_CHECK_EQUAL(zero_input_output.data[0], 0.5f);  // only the bias is left
  m->register_forward_hook([](Module&, const ModuleInput&, const ModuleOutput& out) -> std::optional<ModuleOutput> {
    Tensor doubled = std::get<Tensor>(out.output);
    for (float& v : doubled.data) v *= 2;
    return ModuleOutput{doubled, std::nullopt};
  });
  BOOST_CHECK_EQUAL((*m)(kInput).data[1], -1.0f);
}

BOOST_AUTO_TEST_CASE(a_hook_removing_itself_during_forward) {
  auto m = small_linear();
  int calls = 0;
  auto handle = std::make_shared<HookHandle>();
  *handle = m->register_forward_hook([&, handle](Module&, const ModuleInput&, const ModuleOutput&) {
    ++calls;
    handle->remove();
    return std::nullopt;
  });
  (*m)(kInput);
  (*m)(kInput);
  BOOST_CHECK_EQUAL(calls, 1);
}

BOOST_AUTO_TEST_CASE(hooks_survive_every_conversion_path) {
  const ModuleKind& kind = module_kind("dynamic.Linear");
  auto float_module = small_linear();
  std::vector<std::string> calls;
  float_module->register_forward_pre_hook([&](Module& self, const ModuleInput&) {
    calls.push_back("pre:" + self.name());
    return std::nullopt;
  });
  float_module->register_forward_hook([&](Module& self, const ModuleInput&, const ModuleOutput&) {
    calls.push_back("post:" + self.name());
    return std::nullopt;
  });
  auto reference = convert_from_float(kind, *float_module, {Implementation::Reference, Engine::QNNPACK});
  auto quantized = convert_from_float(kind, *float_module, {Implementation::Quantized, Engine::ONEDNN});
  auto libtorch = convert_from_float(kind, *float_module, {Implementation::LibTorch, Engine::QNNPACK});
  auto from_reference = convert_from_reference(kind, *reference, {Implementation::Quantized, Engine::QNNPACK});
  for (Module* m : {reference.get(), quantized.get(), libtorch.get(), from_reference.get()}) {
    BOOST_CHECK_EQUAL(m->forward_pre_hook_count(), 1u);
    BOOST_CHECK_EQUAL(m->forward_hook_count(), 1u);
    (*m)(kInput);
  }
  const std::vector<std::string> expected{
      "pre:QuantizedLinear(Reference)", "post:QuantizedLinear(Reference)",
      "pre:DynamicQuantizedLinear",     "post:DynamicQuantizedLinear",
      "pre:DynamicQuantizedLinear",     "post:DynamicQuantizedLinear",
      "pre:DynamicQuantizedLinear",     "post:DynamicQuantizedLinear"};
  BOOST_CHECK_EQUAL_COLLECTIONS(calls.begin(), calls.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(from_reference_carries_the_same_integer_weights) {
  auto float_module = small_linear();
  auto reference = ReferenceLinear::from_float(*float_module);
  auto quantized = DynamicQuantizedLinear::from_reference(*reference, Engine::QNNPACK);
  BOOST_CHECK(quantized->weight() == reference->get_quantized_weight());
  auto direct = DynamicQuantizedLinear::from_float(*float_module, Engine::QNNPACK);
  BOOST_CHECK(direct->weight() == quantized->weight());
}

BOOST_AUTO_TEST_CASE(reference_rejects_unsupported_qschemes) {
  auto m = small_linear();
  QuantParams symmetric = QuantParams::per_tensor(DType::QInt8, 0.1, 0);
  symmetric.qscheme = QScheme::PerTensorSymmetric;
  expect_error([&] { ReferenceLinear::from_float(*m, symmetric); },
               "qscheme: torch.per_tensor_symmetric is not support in reference quantized "
               "QuantizedLinear(Reference)");
}

BOOST_AUTO_TEST_CASE(integer_module_rejects_bad_inputs_clearly) {
  auto q = DynamicQuantizedLinear::from_float(*small_linear(), Engine::QNNPACK);
  expect_error([&] { (*q)(Tensor(Shape{3}, {1, 2, 3})); },
               "The dimension of input tensor should be larger than or equal to 2");
  expect_error([&] { (*q)(Tensor(Shape{2, 4})); }, "input has 4 features");
  FloatLinear quint8_weights(Tensor(Shape{1, 1}, {1.0f}), std::nullopt);
  ObserverOptions o;  // quint8 weight observer
  quint8_weights.qconfig = QConfig{"custom", default_dynamic_quant_observer(), min_max_observer(o)};
  expect_error([&] { DynamicQuantizedLinear::from_float(quint8_weights, Engine::QNNPACK); },
               "The only supported dtypes for dynamic quantized linear are qint8 and float16 got: "
               "torch.quint8");
}
