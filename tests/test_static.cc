// Static Linear: the integer module's state_dict layout and errors, and the qnnpack
// behaviours the harness reproduces (int32 bias overflow, quint8 weights refused at the
// call) checked against LibTorch in-process.
#define BOOST_TEST_MODULE static_linear
#include <boost/test/unit_test.hpp>

#include "core/quantize.h"
#include "core/registry.h"
#include "quantized/libtorch/static_linear.h"
#include "quantized/static/linear.h"
#include "tests/support.h"

using namespace qconform;

namespace {

QTensor weight_2x3(double scale) {
  return quantize(Tensor(Shape{2, 3}, {0.5f, -0.25f, 0.125f, -1.0f, 0.75f, 0.0f}),
                  QuantParams::per_tensor(DType::QInt8, scale, 0));
}

}  // namespace

BOOST_AUTO_TEST_CASE(state_dict_has_nnq_linear_keys_and_versions) {
  QuantizedLinear module(weight_2x3(0.01), Tensor(Shape{2}, {0.5f, -0.5f}), 0.05, 7, Engine::QNNPACK);
  const StateDict state = module.state_dict();
  BOOST_CHECK((state.keys() == std::vector<std::string>{"scale", "zero_point", "_packed_params.dtype",
                                                        "_packed_params._packed_params"}));
  BOOST_CHECK_EQUAL(state.versions.at(""), 3);
  BOOST_CHECK_EQUAL(state.versions.at("_packed_params"), 3);
  BOOST_CHECK_EQUAL(state.at("scale").as<Tensor>("scale").data.at(0), 0.05f);
  BOOST_CHECK_EQUAL(state.at("zero_point").as<IntTensor>("zero_point").values.at(0), 7);
  BOOST_CHECK_EQUAL(module.repr(),
                    "QuantizedLinear(in_features=3, out_features=2, scale=0.05, zero_point=7, "
                    "qscheme=torch.per_tensor_affine)");
}

BOOST_AUTO_TEST_CASE(bad_inputs_and_uncalibrated_modules_are_refused) {
  QuantizedLinear module(weight_2x3(0.01), std::nullopt, 0.05, 7, Engine::QNNPACK);
  testing::expect_error([&] { module(Tensor(Shape{1, 3})); }, "QuantizedLinear: expects a quantized (quint8) input tensor");
  const QTensor wrong = quantize(Tensor(Shape{1, 4}), QuantParams::per_tensor(DType::QUInt8, 0.1, 0));
  testing::expect_error([&] { module(ModuleInput{wrong, std::nullopt}); },
                        "mat1 and mat2 shapes cannot be multiplied (1x4 and 3x2)");
  FloatLinear uncalibrated(Tensor(Shape{2, 3}), std::nullopt);
  testing::expect_error([&] { QuantizedLinear::from_float(uncalibrated, Engine::QNNPACK); },
                        "Linear has no activation_post_process");
  testing::expect_error([&] { QuantizedLinear(weight_2x3(0.01), std::nullopt, 0.05, 7, Engine::FBGEMM); },
                        "QuantizedLinear: no integer implementation on fbgemm");
}

// bias / (x_scale * w_scale) beyond int32: qnnpack clamps the int32 bias and the sum with
// the accumulator wraps; the harness's integer module gives LibTorch's bits.
BOOST_AUTO_TEST_CASE(qnnpack_int32_bias_overflow_matches_libtorch) {
  const QTensor w = weight_2x3(1e-5);
  const Tensor bias(Shape{2}, {3.0f, -3.0f});  // 3 / (1e-5 * 1e-4) = 3e9 > 2^31
  const QTensor x = quantize(Tensor(Shape{2, 3}, {0.001f, -0.002f, 0.003f, 0.0f, 0.004f, -0.001f}),
                             QuantParams::per_tensor(DType::QUInt8, 1e-4, 100));
  QuantizedLinear integer(w, bias, 0.02, 128, Engine::QNNPACK);
  auto libtorch = make_libtorch_static_linear(w, bias, 0.02, 128, Engine::QNNPACK, false);
  const QTensor ours = std::get<QTensor>(integer(ModuleInput{x, std::nullopt}).output);
  const QTensor theirs = std::get<QTensor>((*libtorch)(ModuleInput{x, std::nullopt}).output);
  BOOST_CHECK(ours == theirs);
  // Without the overflow the first channel would be near 3 / 0.02 = 150 quanta above the
  // zero point, i.e. clamped to 255; the engine's wrapped sum lands elsewhere.
  BOOST_CHECK_NE(ours.values.at(0), 255);
}

BOOST_AUTO_TEST_CASE(qnnpack_refuses_quint8_weights_at_the_call_like_libtorch) {
  const QTensor w = quantize(Tensor(Shape{2, 3}, {0.5f, 0.25f, 0.125f, 1.0f, 0.75f, 0.0f}),
                             QuantParams::per_tensor(DType::QUInt8, 0.01, 3));
  const QTensor x = quantize(Tensor(Shape{1, 3}, {0.1f, 0.2f, 0.3f}), QuantParams::per_tensor(DType::QUInt8, 0.01, 0));
  QuantizedLinear integer(w, std::nullopt, 0.02, 0, Engine::QNNPACK);  // accepted at prepack
  auto libtorch = make_libtorch_static_linear(w, std::nullopt, 0.02, 0, Engine::QNNPACK, false);
  testing::expect_error([&] { integer(ModuleInput{x, std::nullopt}); }, "expected scalar type QInt8 but found QUInt8");
  testing::expect_error([&] { (*libtorch)(ModuleInput{x, std::nullopt}); }, "expected scalar type QInt8 but found QUInt8");
}
