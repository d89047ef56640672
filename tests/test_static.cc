// Static Linear and Conv: the integer modules' state_dict layouts and errors, and the
// qnnpack behaviours the harness reproduces (int32 bias overflow on the GEMM and the
// convolution paths, quint8 weights refused at the call, 3-d unpack refused, a missing
// conv bias reported as zeros) checked against LibTorch in-process.
#define BOOST_TEST_MODULE static_linear
#include <boost/test/unit_test.hpp>
#include <rapidcheck/boost_test.h>

#include "core/cpu.h"
#include "quantized/kernels/dynamic_gemm.h"
#include "quantized/kernels/static_gemm.h"
#include "quantized/kernels/threads.h"
#include "core/quantize.h"
#include "oracles/kinds/registry.h"
#include "oracles/agreement.h"
#include "quantized/libtorch/static_conv.h"
#include "quantized/libtorch/static_linear.h"
#include "quantized/static/conv.h"
#include "quantized/static/linear.h"
#include "tests/support.h"

using namespace qconform;

namespace {

QTensor weight_2x3(double scale) {
  return quantize(Tensor(Shape{2, 3}, {0.5f, -0.25f, 0.125f, -1.0f, 0.75f, 0.0f}),
                  QuantParams::per_tensor(DType::QInt8, scale, 0));
}

// The 2-d convolution by its definition on u8 channels-last input (N, H, W, C): for each
// output, the exact sum (1) of static_gemm.h over its group's channels and the kernel
// (positions outside the input read the zero point: real zero), then the scalar
// kernels::requantize(), the specification of the tiles' SIMD forms. Shares nothing with the
// module's GEMM, its runs or its tiles. Returns the output channels-last.
std::vector<uint8_t> conv_by_definition(const ConvOptions& o, const QTensor& w, const std::optional<Tensor>& bias,
                                        const kernels::StaticOutput& out, Requantization rule, const Shape& sizes,
                                        const std::vector<uint8_t>& nhwc, double x_scale, int32_t x_zero_point,
                                        bool int16_pairs = false) {
  const int64_t batch = sizes[0], height = sizes[2], width = sizes[3], in_channels = sizes[1];
  const int64_t in_per_group = in_channels / o.groups, out_per_group = o.out_channels / o.groups;
  int64_t out_size[2];
  for (int d = 0; d < 2; ++d)
    out_size[d] = (sizes[2 + d] + 2 * o.padding[d] - o.dilation[d] * (o.kernel_size[d] - 1) - 1) / o.stride[d] + 1;
  bool pointwise = true;  // qnnpack's GEMM path saturates an overflowing bias (static_gemm.h (2a))
  for (int d = 0; d < 2; ++d) pointwise = pointwise && o.kernel_size[d] == 1 && o.stride[d] == 1 && o.padding[d] == 0;
  std::vector<kernels::Requantizer> requantizers;
  for (int64_t group = 0; group < o.groups; ++group) {
    kernels::StaticLinearWeights scales;
    scales.integers.out_features = out_per_group;
    for (int64_t j = 0; j < out_per_group; ++j) scales.scales.push_back(w.qparams.scale(group * out_per_group + j));
    requantizers.push_back(kernels::make_requantizer(
        x_scale, scales, bias ? bias->data.data() + group * out_per_group : nullptr, out, rule,
        pointwise ? kernels::BiasOverflow::Saturate : kernels::BiasOverflow::IntegerIndefinite));
  }
  std::vector<uint8_t> y(batch * out_size[0] * out_size[1] * o.out_channels);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t oh = 0; oh < out_size[0]; ++oh)
      for (int64_t ow = 0; ow < out_size[1]; ++ow)
        for (int64_t oc = 0; oc < o.out_channels; ++oc) {
          const int64_t group = oc / out_per_group;
          const int64_t w_zero_point = w.qparams.zero_point(oc);
          int64_t acc = 0;
          for (int64_t kh = 0; kh < o.kernel_size[0]; ++kh)
            for (int64_t kw = 0; kw < o.kernel_size[1]; ++kw) {
              const int64_t ih = oh * o.stride[0] - o.padding[0] + kh * o.dilation[0];
              const int64_t iw = ow * o.stride[1] - o.padding[1] + kw * o.dilation[1];
              const bool inside = ih >= 0 && ih < height && iw >= 0 && iw < width;
              const auto xq = [&](int64_t c) -> int64_t {
                return inside ? nhwc[((n * height + ih) * width + iw) * in_channels + group * in_per_group + c]
                              : x_zero_point;
              };
              const auto wq = [&](int64_t c) -> int64_t {
                return w.values[((oc * in_per_group + c) * o.kernel_size[0] + kh) * o.kernel_size[1] + kw];
              };
              if (!int16_pairs) {
                for (int64_t c = 0; c < in_per_group; ++c) acc += (xq(c) - x_zero_point) * (wq(c) - w_zero_point);
                continue;
              }
              // (2'), symmetric weights: adjacent channels' raw products summed in int16 with
              // saturation (an odd last channel alone), minus x_zp times the weights, and only
              // where the kernel meets an input value.
              if (!inside) continue;
              for (int64_t c = 0; c < in_per_group; c += 2) {
                const bool second = c + 1 < in_per_group;
                const int64_t pair = xq(c) * wq(c) + (second ? xq(c + 1) * wq(c + 1) : 0);
                acc += std::clamp<int64_t>(pair, -32768, 32767) - x_zero_point * (wq(c) + (second ? wq(c + 1) : 0));
              }
            }
          y[((n * out_size[0] + oh) * out_size[1] + ow) * o.out_channels + oc] =
              static_cast<uint8_t>(kernels::requantize(requantizers[group], static_cast<int32_t>(acc), oc % out_per_group));
        }
  return y;
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

namespace {

ConvOptions conv_options(int64_t dims, int64_t in, int64_t out, int64_t kernel, int64_t stride = 1,
                         int64_t padding = 0, int64_t groups = 1, bool bias = true) {
  ConvOptions o;
  o.spatial_dims = dims;
  o.in_channels = in;
  o.out_channels = out;
  o.kernel_size.assign(dims, kernel);
  o.stride.assign(dims, stride);
  o.padding.assign(dims, padding);
  o.dilation.assign(dims, 1);
  o.groups = groups;
  o.bias = bias;
  return o;
}

QTensor conv_weight(const ConvOptions& o, double scale) {
  Tensor w(o.weight_shape());
  for (size_t i = 0; i < w.data.size(); ++i) w.data[i] = 0.01f * static_cast<float>(static_cast<int>(i * 37 % 200) - 100);
  return quantize(w, QuantParams::per_tensor(DType::QInt8, scale, 0));
}

QTensor conv_input(const ConvOptions& o, int64_t size, double scale, int64_t zero_point) {
  Shape shape{1, o.in_channels};
  for (int64_t d = 0; d < o.spatial_dims; ++d) shape.push_back(size);
  Tensor x(shape);
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = 0.05f * static_cast<float>(static_cast<int>(i * 13 % 40) - 20);
  return quantize(x, QuantParams::per_tensor(DType::QUInt8, scale, zero_point));
}

}  // namespace

// nnq.Conv2d's state_dict keys, version and repr, as PyTorch 1.13 prints them for
// torch.ao.nn.quantized.Conv2d(2, 4, 3): "QuantizedConv2d(2, 4, kernel_size=(3, 3),
// stride=(1, 1), scale=1.0, zero_point=0)", keys weight, bias, scale, zero_point, version 1.
BOOST_AUTO_TEST_CASE(conv_state_dict_and_repr_are_nnq_convs) {
  const ConvOptions o = conv_options(2, 2, 4, 3);
  QuantizedConv conv(o, conv_weight(o, 0.01), Tensor(Shape{4}), 1.0, 0, Engine::QNNPACK);
  const StateDict state = conv.state_dict();
  BOOST_CHECK((state.keys() == std::vector<std::string>{"weight", "bias", "scale", "zero_point"}));
  BOOST_CHECK_EQUAL(state.versions.at(""), 1);
  BOOST_CHECK(state.at("scale").as<Tensor>("scale").sizes == Shape{});
  BOOST_CHECK_EQUAL(conv.repr(), "QuantizedConv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), scale=1, zero_point=0)");
  const ConvOptions relu1d = conv_options(1, 2, 4, 3, 2, 1, 2);
  QuantizedConv fused(relu1d, conv_weight(relu1d, 0.01), Tensor(Shape{4}), 0.5, 3, Engine::QNNPACK, true);
  BOOST_CHECK_EQUAL(fused.repr(), "QuantizedConvReLU1d(2, 4, kernel_size=(3,), stride=(2,), scale=0.5, zero_point=3, "
                                  "padding=(1,), groups=2)");
}

// PyTorch's messages for configurations and inputs it refuses.
BOOST_AUTO_TEST_CASE(conv_errors_use_pytorchs_messages) {
  ConvOptions o = conv_options(2, 3, 4, 3, 1, 0, 2);
  testing::expect_error([&] { o.validate("Conv2d"); }, "in_channels must be divisible by groups");
  o = conv_options(2, 4, 3, 3, 1, 0, 2);
  testing::expect_error([&] { o.validate("Conv2d"); }, "out_channels must be divisible by groups");
  o = conv_options(2, 2, 4, 3);
  o.padding_mode = "reflect";
  testing::expect_error([&] { o.validate("Conv2d"); }, "'padding_mode' reflect is not supported by quantized convolution");
  const ConvOptions ok = conv_options(2, 2, 4, 3);
  QuantizedConv conv(ok, conv_weight(ok, 0.01), std::nullopt, 0.1, 0, Engine::QNNPACK);
  const QTensor flat = quantize(Tensor(Shape{2, 5, 5}), QuantParams::per_tensor(DType::QUInt8, 0.1, 0));
  testing::expect_error([&] { conv(ModuleInput{flat, std::nullopt}); }, "Input shape must be `(N, C, H, W)`!");
  const QTensor three = conv_input(conv_options(2, 3, 4, 3), 5, 0.1, 0);
  testing::expect_error([&] { conv(ModuleInput{three, std::nullopt}); },
                        "Given groups=1, weight of size [4, 2, 3, 3], expected input[1, 3, 5, 5] to have 2 channels, "
                        "but got 3 channels instead");
  const QTensor small = conv_input(ok, 2, 0.1, 0);
  testing::expect_error([&] { conv(ModuleInput{small, std::nullopt}); },
                        "Calculated padded input size per channel: (2 x 2). Kernel size: (3 x 3). Kernel size can't be "
                        "greater than actual input size");
}

// qnnpack cannot unpack a 3-d convolution, so nnq.Conv3d's state_dict fails there with
// "QNNPACK only supports conv2d_unpack right now."; and a convolution without bias unpacks a
// zero bias. The integer module reports both as LibTorch does.
BOOST_AUTO_TEST_CASE(qnnpack_conv_unpack_rules_match_libtorch) {
  const ConvOptions o3 = conv_options(3, 2, 2, 1);
  QuantizedConv integer3(o3, conv_weight(o3, 0.01), std::nullopt, 0.1, 0, Engine::QNNPACK);
  auto libtorch3 = make_libtorch_static_conv(o3, conv_weight(o3, 0.01), std::nullopt, 0.1, 0, Engine::QNNPACK, false);
  testing::expect_error([&] { integer3.state_dict(); }, "QNNPACK only supports conv2d_unpack right now.");
  testing::expect_error([&] { libtorch3->state_dict(); }, "QNNPACK only supports conv2d_unpack right now.");
  for (int64_t dims : {1, 2}) {
    const ConvOptions o = conv_options(dims, 2, 3, 2, 1, 0, 1, /*bias=*/false);
    QuantizedConv integer(o, conv_weight(o, 0.01), std::nullopt, 0.1, 0, Engine::QNNPACK);
    auto libtorch = make_libtorch_static_conv(o, conv_weight(o, 0.01), std::nullopt, 0.1, 0, Engine::QNNPACK, false);
    BOOST_CHECK(integer.state_dict() == libtorch->state_dict());
    BOOST_CHECK(integer.state_dict().at("bias").as<Tensor>("bias").data == std::vector<float>(3, 0.0f));
  }
}

// A bias beyond int32 (bias / (x_scale * w_scale) > 2^31): qnnpack saturates it on its GEMM
// path (1x1, stride 1, no padding) and turns it into INT32_MIN on its convolution path; the
// integer module gives LibTorch's bits on both, and the two paths differ.
BOOST_AUTO_TEST_CASE(qnnpack_conv_bias_overflow_matches_libtorch_on_both_paths) {
  std::vector<int32_t> first_channel;
  for (int64_t stride : {1, 2}) {
    const ConvOptions o = conv_options(2, 3, 3, 1, stride);
    const Tensor bias(Shape{3}, {0.8f, 0.8f, -0.4f});
    const QTensor w = conv_weight(o, 0.0004);
    // A zero input (a constant one calibrates to a tiny scale): the bias alone decides,
    // and 0.8 / (1.2e-7 * 4e-4) > 2^31.
    const QTensor x = quantize(Tensor(Shape{1, 3, 3, 3}), QuantParams::per_tensor(DType::QUInt8, 1.2e-7, 0));
    QuantizedConv integer(o, w, bias, 0.009, 40, Engine::QNNPACK);
    auto libtorch = make_libtorch_static_conv(o, w, bias, 0.009, 40, Engine::QNNPACK, false);
    const QTensor ours = std::get<QTensor>(integer(ModuleInput{x, std::nullopt}).output);
    const QTensor theirs = std::get<QTensor>((*libtorch)(ModuleInput{x, std::nullopt}).output);
    BOOST_CHECK_MESSAGE(ours == theirs, "stride " << stride);
    first_channel.push_back(ours.values.at(0));
  }
  BOOST_CHECK_NE(first_channel[0], first_channel[1]);
}

// A transposed convolution: nnq.ConvTranspose's repr; qnnpack bit-exact with the integer
// module (the agreement property covers random configurations); ConvTranspose3d refused on
// qnnpack, whose kernel in LibTorch 1.13 gives a wrong output size.
BOOST_AUTO_TEST_CASE(conv_transpose_repr_and_qnnpack_3d) {
  ConvOptions o = conv_options(2, 4, 2, 3, 2, 1);
  o.transposed = true;
  o.output_padding = {1, 1};
  const QTensor w = conv_weight(o, 0.01);
  BOOST_CHECK((w.sizes == Shape{4, 2, 3, 3}));  // (in, out / groups, k...)
  QuantizedConv integer(o, w, Tensor(Shape{2}), 0.05, 10, Engine::QNNPACK);
  BOOST_CHECK_EQUAL(integer.repr(), "QuantizedConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(2, 2), scale=0.05, "
                                    "zero_point=10, padding=(1, 1), output_padding=(1, 1))");
  auto libtorch = make_libtorch_static_conv(o, w, Tensor(Shape{2}), 0.05, 10, Engine::QNNPACK, false);
  const QTensor x = conv_input(o, 4, 0.02, 3);
  const QTensor ours = std::get<QTensor>(integer(ModuleInput{x, std::nullopt}).output);
  BOOST_CHECK((ours.sizes == Shape{1, 2, 8, 8}));  // (4 - 1) * 2 - 2 + 2 + 1 + 1
  BOOST_CHECK(ours == std::get<QTensor>((*libtorch)(ModuleInput{x, std::nullopt}).output));
  BOOST_CHECK(integer.state_dict() == libtorch->state_dict());

  ConvOptions o3 = conv_options(3, 2, 2, 3);
  o3.transposed = true;
  testing::expect_error([&] { QuantizedConv(o3, conv_weight(o3, 0.01), std::nullopt, 0.05, 0, Engine::QNNPACK); },
                        "ConvTranspose3d is not implemented on qnnpack in PyTorch 1.13");
  auto libtorch3 = make_libtorch_static_conv(o3, conv_weight(o3, 0.01), std::nullopt, 0.05, 0, Engine::QNNPACK, false);
  const QTensor x3 = conv_input(o3, 4, 0.02, 3);
  bool wrong = true;
  try {
    const QTensor y3 = std::get<QTensor>((*libtorch3)(ModuleInput{x3, std::nullopt}).output);
    wrong = y3.sizes != Shape{1, 2, 6, 6, 6};
    BOOST_TEST_MESSAGE("LibTorch qnnpack ConvTranspose3d output " << shape_to_string(y3.sizes) << ", expected [1, 2, 6, 6, 6]");
  } catch (const Error& e) {
    BOOST_TEST_MESSAGE("LibTorch qnnpack ConvTranspose3d: " << e.what());
  }
  BOOST_CHECK_MESSAGE(wrong, "LibTorch's qnnpack ConvTranspose3d now gives the right size: revisit the engine table");
}

// onednn's static LinearReLU at a rounding tie that the first model of oneDNN's epilogue
// (scaling the bias in float after the accumulator) rounded one quantum low: harness 80,
// LibTorch 81. With ideep's reciprocal scales and the bias in the accumulator's units
// (static_gemm.h FloatEpilogue) every element is LibTorch's.
BOOST_AUTO_TEST_CASE(onednn_static_linear_relu_matches_libtorch_at_a_rounding_tie) {
  const ModuleKind& kind = module_kind("static.LinearReLU");
  const CaseResult r = check_agreement(
      kind, parse_pair("quantized[onednn],libtorch[onednn]"),
      parse_case_config(kind, "batch=8 bias=0 full_range=0 in_features=12 out_features=2 per_channel=0 "
                              "seed=270945 style=ties"));
  BOOST_TEST(r.passed);
  BOOST_TEST(r.exact == r.total, r.exact << "/" << r.total << " exact");
}

namespace {

// Inputs and weights that make every u8 x s8 pair overflow int16 (2 x 200 x 100 > 32767),
// so that each convolution below depends on how its engine forms the pairs.
QTensor saturating_input(const Shape& shape, int64_t zero_point) {
  QTensor x{shape, std::vector<int32_t>(numel_of(shape)), QuantParams::per_tensor(DType::QUInt8, 0.01, zero_point)};
  for (size_t i = 0; i < x.values.size(); ++i) x.values[i] = 200 + static_cast<int32_t>(i * 7 % 56);
  return x;
}

QTensor saturating_weight(const ConvOptions& o) {
  const Shape shape = o.weight_shape();
  QTensor w{shape, std::vector<int32_t>(numel_of(shape)), QuantParams::per_tensor(DType::QInt8, 0.01, 0)};
  // One sign per output channel, so that the input channels paired for it share it: the
  // leading dimension, or the second of a transposed convolution's (in, out / groups, ...).
  const int64_t per_leading = numel_of(shape) / shape[0], kernel_volume = per_leading / shape[1];
  for (size_t i = 0; i < w.values.size(); ++i) {  // magnitudes 100..127
    const int64_t output = o.transposed ? i / kernel_volume % shape[1] : i / per_leading;
    w.values[i] = (output % 2 ? -1 : 1) * (100 + static_cast<int32_t>(i * 5 % 28));
  }
  return w;
}

}  // namespace

// oneDNN's convolutions on its two int8 paths (docs/numerics.md). avx2: int16 pairs of
// adjacent input channels at one kernel position, padding skipped; grouped convolutions
// with per-group channels not multiples of 4 summed exactly; transposed ones paired over the
// stretched input, its gaps skipped. vnni: every one summed exactly. Each configuration,
// with every pair saturating, gives LibTorch's integers on the path LibTorch takes here
// (pairs in im2col's order, or padding read as the zero point, would not), and the other
// path's integers differ wherever that path forms pairs the other does not. (ctest runs
// this once more with oneDNN held to AVX2 on a VNNI host, so both paths meet LibTorch.)
BOOST_AUTO_TEST_CASE(onednn_conv_paths_match_libtorch_when_every_pair_saturates) {
  struct Config {
    const char* what;
    int64_t dims, in, out, kernel, stride, padding, groups;
    bool transposed;
    bool paths_differ;  // the avx2 path forms int16 pairs here (the vnni path never does)
  };
  const EngineProfile here = Engine::ONEDNN;
  const EngineProfile other(Engine::ONEDNN, *here.int8_path == Int8Path::Avx2 ? Int8Path::Vnni : Int8Path::Avx2);
  for (const Config& c : {Config{"groups 1, padded", 2, 6, 3, 3, 1, 1, 1, false, true},
                          Config{"groups 1, odd channels, 1-d", 1, 5, 2, 3, 2, 2, 1, false, true},
                          Config{"groups 2 of 4 in, 4 out: pairs", 2, 8, 8, 2, 1, 1, 2, false, true},
                          Config{"groups 2 of 3 in, 2 out: exact", 2, 6, 4, 2, 1, 1, 2, false, false},
                          Config{"3-d, padded", 3, 4, 2, 2, 1, 1, 1, false, true},
                          Config{"transposed, strided, padded", 2, 6, 3, 3, 2, 1, 1, true, true},
                          Config{"transposed, groups 2 of 3", 1, 6, 4, 2, 2, 0, 2, true, true}}) {
    ConvOptions o = conv_options(c.dims, c.in, c.out, c.kernel, c.stride, c.padding, c.groups);
    o.transposed = c.transposed;
    const QTensor w = saturating_weight(o);
    const Tensor bias(Shape{c.out}, std::vector<float>(c.out, 0.25f));
    Shape shape{2, c.in};
    for (int64_t d = 0; d < c.dims; ++d) shape.push_back(4);
    const QTensor x = saturating_input(shape, 250);  // padding read as 250 would saturate too
    QuantizedConv integer(o, w, bias, 2.5, 128, here), other_path(o, w, bias, 2.5, 128, other);
    auto libtorch = make_libtorch_static_conv(o, w, bias, 2.5, 128, Engine::ONEDNN, false);
    const QTensor ours = std::get<QTensor>(integer(ModuleInput{x, std::nullopt}).output);
    const QTensor theirs = std::get<QTensor>((*libtorch)(ModuleInput{x, std::nullopt}).output);
    const QTensor others = std::get<QTensor>(other_path(ModuleInput{x, std::nullopt}).output);
    const auto differing = [](const QTensor& p, const QTensor& q) {
      int64_t count = 0;
      for (size_t i = 0; i < p.values.size() && p.sizes == q.sizes; ++i) count += p.values[i] != q.values[i];
      return count;
    };
    BOOST_CHECK_MESSAGE(ours == theirs, c.what << ", " << here.label() << ": " << differing(ours, theirs) << " of "
                                                << ours.values.size() << " differ from LibTorch");
    BOOST_CHECK_MESSAGE((differing(others, theirs) > 0) == c.paths_differ,
                        c.what << ", " << other.label() << ": " << differing(others, theirs) << " of "
                               << ours.values.size() << " differ from LibTorch on " << here.label());
  }
}

// onednn refuses a transposed convolution's output_padding at prepack, before the weights.
BOOST_AUTO_TEST_CASE(onednn_refuses_output_padding_before_the_weights) {
  ConvOptions o = conv_options(2, 2, 2, 3, 2);
  o.transposed = true;
  o.output_padding = {1, 0};
  const QTensor asymmetric = quantize(Tensor(o.weight_shape()), QuantParams::per_tensor(DType::QInt8, 0.01, 3));
  for (const QTensor& w : {conv_weight(o, 0.01), asymmetric}) {
    testing::expect_error([&] { QuantizedConv(o, w, std::nullopt, 0.05, 0, Engine::ONEDNN); },
                          "quantized::conv_prepack: ONEDNN only supports zero output_padding.");
    testing::expect_error([&] { make_libtorch_static_conv(o, w, std::nullopt, 0.05, 0, Engine::ONEDNN, false); },
                          "quantized::conv_prepack: ONEDNN only supports zero output_padding.");
  }
}

// A transposed convolution whose stride exceeds its kernel: output positions no input
// reaches hold the bias alone (PyTorch's definition; the integer module computes it), while
// LibTorch's onednn kernel leaves them unspecified (values change from call to call). The
// sensitivity marks exactly those positions, and the agreement oracle gives them no bound.
BOOST_AUTO_TEST_CASE(onednn_transposed_outputs_no_input_reaches) {
  ConvOptions o = conv_options(2, 4, 4, 1, 3);
  o.transposed = true;
  const Tensor bias(Shape{4}, {0.5f, -0.25f, 0.75f, 0.0f});
  QuantizedConv integer(o, conv_weight(o, 0.01), bias, 0.05, 100, Engine::ONEDNN);
  const QTensor y = std::get<QTensor>(integer(ModuleInput{conv_input(o, 3, 0.02, 3), std::nullopt}).output);
  BOOST_REQUIRE((y.sizes == Shape{1, 4, 7, 7}));  // (3 - 1) * 3 + 1
  for (int64_t c = 0; c < 4; ++c)
    for (int64_t i = 0; i < 7; ++i)
      for (int64_t j = 0; j < 7; ++j)
        if (i % 3 || j % 3)  // reached by no input: round(bias / 0.05) + 100
          BOOST_CHECK_EQUAL(y.values[(c * 7 + i) * 7 + j], 100 + static_cast<int32_t>(std::nearbyint(bias.data[c] / 0.05f)));

  const ModuleKind& kind = module_kind("static.ConvTranspose2d");
  const CaseConfig config = parse_case_config(
      kind, "batch=2 bias=1 dilation=1 extra_size=2 full_range=1 groups=1 in_per_group=4 kernel=1 out_per_group=4 "
            "output_padding=0 padding=0 stride=3 seed=5 style=wide");
  const Case c = kind.make_case(config);
  auto reference = convert_from_float(kind, *c.float_module, {Implementation::Reference, Engine::QNNPACK});
  const auto sensitivity = kind.sensitivity(*reference, c.input);
  int64_t unreached = 0;
  for (const auto& s : sensitivity) unreached += s.unreached;
  // Input 3 x 3 (1 + extra_size), output 7 x 7: 49 - 9 positions unreached, per image and channel.
  BOOST_CHECK_EQUAL(unreached, 2 * 4 * (49 - 9));
  for (int repeat = 0; repeat < 5; ++repeat) {
    const CaseResult r = check_agreement(kind, parse_pair("quantized[onednn],libtorch[onednn]"), config);
    BOOST_TEST(r.passed, r.failure);
    for (const auto& [name, count] : r.mismatch_classes) BOOST_TEST(name == "engine-unspecified", name << ": " << count);
  }
}

// oneDNN's two int8 paths differ where int16 pairs saturate, and each path's integers equal
// LibTorch's on that path: one static Linear and one Conv2d case (full 8-bit activations,
// the first data seed whose two integer answers differ), LibTorch on this process's path
// in-process and on the other in a fresh process with oneDNN held to AVX2 (a VNNI host
// answers for both). A host without VNNI has no vnni LibTorch: the vnni recordings of the
// bundled corpus stand in (test_fixture: a_recording_replays_against_its_own_path_only).
BOOST_AUTO_TEST_CASE(int8_paths_differ_where_pairs_saturate_and_each_matches_libtorch_on_its_path) {
  const EngineProfile avx2(Engine::ONEDNN, Int8Path::Avx2), vnni(Engine::ONEDNN, Int8Path::Vnni);
  for (const auto& [key, sizes] :
       {std::pair<std::string, std::string>{"static.Linear", "batch=6 bias=1 full_range=1 in_features=64 "
                                                             "out_features=12 per_channel=0"},
        {"static.Conv2d", "batch=2 bias=1 dilation=1 extra_size=3 full_range=1 groups=1 in_per_group=4 kernel=3 "
                          "out_per_group=4 padding=1 per_channel=1 stride=1"}}) {
    const ModuleKind& kind = module_kind(key);
    std::optional<CaseConfig> config;
    FlatOutput on_avx2, on_vnni;
    for (int seed = 0; seed < 50 && !config; ++seed) {
      const CaseConfig candidate = parse_case_config(kind, sizes + " seed=" + std::to_string(seed) + " style=normal");
      on_avx2 = implementation_output(kind, {Implementation::Quantized, avx2}, candidate);
      on_vnni = implementation_output(kind, {Implementation::Quantized, vnni}, candidate);
      if (on_avx2.values != on_vnni.values) config = candidate;
    }
    BOOST_REQUIRE_MESSAGE(config, key << ": no seed below 50 saturates an int16 pair");
    int64_t differing = 0;
    for (size_t i = 0; i < on_avx2.values.size(); ++i) differing += on_avx2.values[i] != on_vnni.values[i];
    BOOST_TEST_MESSAGE(key << " {" << config->to_string() << "}: the paths differ in " << differing << " of "
                           << on_avx2.values.size() << " outputs");

    const EngineProfile here = Engine::ONEDNN, other = here == avx2 ? vnni : avx2;
    const FlatOutput libtorch_here = implementation_output(kind, {Implementation::LibTorch, here}, *config);
    BOOST_TEST(libtorch_here.values == (here == avx2 ? on_avx2 : on_vnni).values,
               key << ": quantized[" << here.label() << "] differs from libtorch[" << here.label() << "]");
    // The other path in a fresh process: held to AVX2, or (in a process held to AVX2 here)
    // unheld, which only a VNNI CPU can answer.
    const auto libtorch_other = fresh_process_output(kind, {Implementation::LibTorch, other}, *config);
    if (other == avx2 || cpu_has_avx512_vnni() || cpu_has_avx_vnni()) {
      BOOST_REQUIRE_MESSAGE(libtorch_other, key << ": no answer from a fresh process on " << other.label());
      BOOST_TEST(*libtorch_other == (other == avx2 ? on_avx2 : on_vnni).values,
                 key << ": quantized[" << other.label() << "] differs from libtorch[" << other.label() << "]");
    } else {
      BOOST_TEST(!libtorch_other, key << ": a CPU without VNNI answered for onednn:vnni");
    }
  }
}

// LibTorch's onednn conv3d on oneDNN's AVX-512 kernels ignores a non-zero input zero point
// for grouped convolutions with one input channel per group, 8 output channels and a
// kernel of 8 positions (engine table: libtorch_conv_defects; scripts/onednn_vnni_conv3d_
// defect.py). The harness names it: on such an ISA LibTorch's answer is wrong and the
// agreement oracle classes it engine-defect instead of failing or hiding it; elsewhere
// LibTorch's answer equals the integer implementation's and no defect is claimed. If a
// later libdnnl fixes it, the first check fails and the row should go.
BOOST_AUTO_TEST_CASE(the_avx512_conv3d_defect_is_named_where_it_shows) {
  const ModuleKind& kind = module_kind("static.Conv3d");
  const CaseConfig config = parse_case_config(
      kind, "batch=1 bias=1 dilation=1 extra_size=1 full_range=1 groups=4 in_per_group=1 kernel=2 out_per_group=2 "
            "padding=0 per_channel=0 stride=1 seed=3 style=normal");
  const Case c = kind.make_case(config);
  BOOST_REQUIRE(std::get<QTensor>(c.input.input).qparams.zero_point() != 0);
  const FlatOutput integer = implementation_output(kind, {Implementation::Quantized, Engine::ONEDNN}, config);
  const FlatOutput libtorch = implementation_output(kind, {Implementation::LibTorch, Engine::ONEDNN}, config);
  const bool avx512 = onednn_isa().name.rfind("avx512_core", 0) == 0;
  BOOST_TEST((integer.values != libtorch.values) == avx512, "oneDNN ISA " << onednn_isa().name);
  const CaseResult r = check_agreement(kind, parse_pair("quantized[onednn],libtorch[onednn]"), config);
  BOOST_TEST(r.passed, r.failure);
  BOOST_TEST(r.libtorch_defect.empty() == !avx512, r.libtorch_defect);
  if (avx512) BOOST_TEST(r.mismatch_classes.count("engine-defect") == 1u);
}

// A systematic disagreement (the integer model of the other int8 path against LibTorch on
// this one) spends a cell's fresh-process reruns once, then every further failing case
// fails at once and says why: a cell's time does not grow with its failures.
BOOST_AUTO_TEST_CASE(a_systematic_disagreement_spends_the_fresh_process_budget_once) {
  const ModuleKind& kind = module_kind("static.Linear");
  const EngineProfile here = Engine::ONEDNN;
  const EngineProfile other(Engine::ONEDNN, *here.int8_path == Int8Path::Avx2 ? Int8Path::Vnni : Int8Path::Avx2);
  const Pair wrong{{Implementation::Quantized, other}, {Implementation::LibTorch, here}};
  FreshProcessBudget budget(2);
  int failed = 0, failed_after_budget = 0;
  for (int seed = 0; seed < 40 && failed < 4; ++seed) {
    const CaseConfig config = parse_case_config(
        kind, "batch=6 bias=1 full_range=1 in_features=64 out_features=12 per_channel=0 seed=" + std::to_string(seed) +
                  " style=normal");
    const int spent_before = budget.spent();
    const CaseResult r = check_agreement(kind, wrong, config, &budget);
    if (r.passed) continue;
    ++failed;
    BOOST_TEST(r.mismatch_classes.count("saturation") == 1u, r.failure);
    if (spent_before == budget.limit()) {
      ++failed_after_budget;
      BOOST_TEST(!r.fresh_process_recomputed);
      BOOST_TEST(r.failure.find("this cell's 2 fresh-process reruns are spent") != std::string::npos, r.failure);
    }
  }
  BOOST_TEST(failed == 4);
  BOOST_TEST(budget.spent() == 2);
  BOOST_TEST(failed_after_budget == 2);
}

// The convolution on LibTorch's channels-last bytes (ChannelsLastBytesForward, the model
// replay's path) gives forward's integers, at any 2-d geometry (groups, stride, padding,
// dilation, fewer and more than 16 channels), per-tensor and per-channel weights, with and
// without bias and ReLU, on qnnpack and both onednn profiles. The expected layout comes from
// the index formula, not from the kernels' transposes. rapidcheck prints the case and
// RC_PARAMS to rerun it.
RC_BOOST_PROP(conv_on_channels_last_bytes_gives_forwards_integers, ()) {
  const int64_t groups = *rc::gen::inRange<int64_t>(1, 4);
  const int64_t in_per_group = *rc::gen::inRange<int64_t>(1, 21), out_per_group = *rc::gen::inRange<int64_t>(1, 21);
  ConvOptions o = conv_options(2, in_per_group * groups, out_per_group * groups, 1, 1, 0, groups,
                               *rc::gen::arbitrary<bool>());
  for (int d = 0; d < 2; ++d) {
    o.kernel_size[d] = *rc::gen::inRange<int64_t>(1, 5);
    o.stride[d] = *rc::gen::inRange<int64_t>(1, 4);
    o.padding[d] = *rc::gen::inRange<int64_t>(0, 3);
    o.dilation[d] = *rc::gen::inRange<int64_t>(1, 3);
  }
  const Shape sizes{*rc::gen::inRange<int64_t>(1, 3), o.in_channels, *rc::gen::inRange<int64_t>(1, 13),
                    *rc::gen::inRange<int64_t>(1, 13)};
  for (int d = 0; d < 2; ++d) RC_PRE(sizes[2 + d] + 2 * o.padding[d] >= o.dilation[d] * (o.kernel_size[d] - 1) + 1);
  const Shape weight_shape = o.weight_shape();
  QTensor w{weight_shape, *rc::gen::container<std::vector<int32_t>>(numel_of(weight_shape), rc::gen::inRange(-128, 128)),
            QuantParams::per_tensor(DType::QInt8, 0.01, 0)};
  if (*rc::gen::arbitrary<bool>()) {
    std::vector<double> scales(o.out_channels);
    std::vector<int64_t> zero_points(o.out_channels, 0);
    for (double& scale : scales) scale = 0.001 * *rc::gen::inRange(1, 50);
    w.qparams = QuantParams::per_channel(DType::QInt8, scales, zero_points, 0);
  }
  std::optional<Tensor> bias;
  if (o.bias) {
    bias = Tensor(Shape{o.out_channels});
    for (float& b : bias->data) b = 0.01f * static_cast<float>(*rc::gen::inRange(-300, 300));
  }
  const EngineProfile here = Engine::ONEDNN;
  const EngineProfile other(Engine::ONEDNN, *here.int8_path == Int8Path::Avx2 ? Int8Path::Vnni : Int8Path::Avx2);
  const EngineProfile engine = *rc::gen::element(EngineProfile(Engine::QNNPACK), here, other);
  const double out_scale = 0.01 * *rc::gen::inRange(1, 100);
  const int64_t out_zero_point = *rc::gen::inRange(0, 256);
  const bool relu = *rc::gen::arbitrary<bool>();
  QuantizedConv conv(o, w, bias, out_scale, out_zero_point, engine, relu);
  // 7-bit values (and zero point) half the time: a host without VNNI takes only those here.
  const int x_max = *rc::gen::element(127, 255);
  const auto x_values = *rc::gen::container<std::vector<int32_t>>(numel_of(sizes), rc::gen::inRange(0, x_max + 1));
  const QTensor x{sizes, x_values, QuantParams::per_tensor(DType::QUInt8, 0.02, *rc::gen::inRange(0, x_max + 1))};
  const int64_t channels = sizes[1], plane = sizes[2] * sizes[3];
  std::vector<uint8_t> nhwc(x_values.size());
  for (int64_t n = 0; n < sizes[0]; ++n)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < plane; ++i) nhwc[(n * plane + i) * channels + c] = x_values[(n * channels + c) * plane + i];
  const std::vector<U8ChannelsLast> operands{{sizes, x.qparams.scale(), x.qparams.zero_point(), nhwc.data()}};
  const std::optional<U8ChannelsLast> output = conv.channels_last_output(operands);
  const bool int16_pairs = conv_sums_int16_pairs(engine_rule(engine.engine, EngineOp::StaticConv), engine,
                                                 /*transposed=*/false, groups, in_per_group, out_per_group);
  RC_CLASSIFY(int16_pairs, "int16 pair sums");
  RC_CLASSIFY(!output, "the path does not take these operands (int16 pairs of an odd count of channels in groups, "
                       "or 8-bit on AVX2)");
  if (!output) {
    // Only where forward's own channels-last path would not run either.
    const bool declined_by_rule = int16_pairs ? (groups > 1 && in_per_group % 2 == 1) || !kernels::u8_pair_rows_supported()
                                              : !kernels::u8_rows_supported(x_max == 127);
    RC_ASSERT(declined_by_rule);
    return;
  }
  const QTensor expected = std::get<QTensor>(conv(ModuleInput{x, std::nullopt}).output);
  RC_ASSERT(output->sizes == expected.sizes);
  RC_ASSERT(output->scale == expected.qparams.scale());
  RC_ASSERT(output->zero_point == expected.qparams.zero_point());
  const int64_t out_channels = expected.sizes[1], out_plane = expected.sizes[2] * expected.sizes[3];
  std::vector<uint8_t> y(expected.values.size() + 16, 0xa5);  // 16 guard bytes
  conv.forward_channels_last(operands, y.data());
  for (size_t i = expected.values.size(); i < y.size(); ++i) RC_ASSERT(y[i] == 0xa5);
  // Two kernel threads (blocks of positions per image and group shared between them): the
  // same bytes.
  std::vector<uint8_t> two_threads(y.size(), 0xa5);
  kernels::set_kernel_threads(2);
  conv.forward_channels_last(operands, two_threads.data());
  kernels::set_kernel_threads(1);
  RC_ASSERT(two_threads == y);
  for (int64_t n = 0; n < expected.sizes[0]; ++n)
    for (int64_t c = 0; c < out_channels; ++c)
      for (int64_t i = 0; i < out_plane; ++i)
        RC_ASSERT(int32_t{y[(n * out_plane + i) * out_channels + c]} == expected.values[(n * out_channels + c) * out_plane + i]);
  // And both (the byte path and forward run the same runs and tiles) give the definition's.
  const std::vector<uint8_t> defined =
      conv_by_definition(o, w, bias, {out_scale, static_cast<int32_t>(out_zero_point), relu},
                         engine_rule(engine.engine, EngineOp::StaticConv).requantization, sizes, nhwc,
                         x.qparams.scale(), static_cast<int32_t>(x.qparams.zero_point()), int16_pairs);
  RC_ASSERT(std::equal(defined.begin(), defined.end(), y.begin()));
}

// The engines that sum int16 pairs skip the kernel positions outside the input (2'). The
// channels-last path reads padding there that gives the same sums where no pair of padding
// can saturate, and otherwise mends the zero-point term per row: both against the
// definition, with input zero points where padding pairs would saturate (x_zp > 127 and
// weights near -128) half the time. The module's forward and its byte path alike.
RC_BOOST_PROP(paired_conv_skips_the_padding_even_where_it_would_saturate, ()) {
  const int64_t in = *rc::gen::inRange<int64_t>(1, 9), out = *rc::gen::inRange<int64_t>(1, 9);
  ConvOptions o = conv_options(2, in, out, *rc::gen::inRange<int64_t>(1, 4), *rc::gen::inRange<int64_t>(1, 3),
                               *rc::gen::inRange<int64_t>(1, 3));
  const Shape sizes{1, in, *rc::gen::inRange<int64_t>(1, 9), *rc::gen::inRange<int64_t>(1, 9)};
  for (int d = 0; d < 2; ++d) RC_PRE(sizes[2 + d] + 2 * o.padding[d] >= o.kernel_size[d]);
  const bool extreme = *rc::gen::arbitrary<bool>();
  RC_CLASSIFY(extreme, "padding pairs that would saturate");
  const auto weight_value = extreme ? rc::gen::element(-128, -127, 127) : rc::gen::inRange(-128, 128);
  const QTensor w{o.weight_shape(), *rc::gen::container<std::vector<int32_t>>(numel_of(o.weight_shape()), weight_value),
                  QuantParams::per_tensor(DType::QInt8, 0.01, 0)};
  const Tensor bias(Shape{out}, std::vector<float>(out, 0.25f));
  const EngineProfile engine(Engine::ONEDNN, Int8Path::Avx2);
  RC_PRE(conv_sums_int16_pairs(engine_rule(Engine::ONEDNN, EngineOp::StaticConv), engine, false, 1, in, out));
  const int32_t x_zero_point = extreme ? *rc::gen::inRange(200, 256) : *rc::gen::inRange(0, 256);
  const auto x_values = *rc::gen::container<std::vector<int32_t>>(numel_of(sizes), rc::gen::inRange(0, 256));
  const QTensor x{sizes, x_values, QuantParams::per_tensor(DType::QUInt8, 0.02, x_zero_point)};
  QuantizedConv conv(o, w, bias, 0.5, 128, engine, /*fused_relu=*/false);
  const int64_t plane = sizes[2] * sizes[3];
  std::vector<uint8_t> nhwc(x_values.size());
  for (int64_t c = 0; c < in; ++c)
    for (int64_t i = 0; i < plane; ++i) nhwc[i * in + c] = static_cast<uint8_t>(x_values[c * plane + i]);
  const std::vector<uint8_t> defined =
      conv_by_definition(o, w, bias, {0.5, 128, false}, engine_rule(Engine::ONEDNN, EngineOp::StaticConv).requantization,
                         sizes, nhwc, x.qparams.scale(), x_zero_point, /*int16_pairs=*/true);
  const QTensor y = std::get<QTensor>(conv(ModuleInput{x, std::nullopt}).output);
  const int64_t out_plane = y.sizes[2] * y.sizes[3];
  for (int64_t c = 0; c < out; ++c)
    for (int64_t i = 0; i < out_plane; ++i) RC_ASSERT(y.values[c * out_plane + i] == int32_t{defined[i * out + c]});
  const std::vector<U8ChannelsLast> operands{{sizes, x.qparams.scale(), x_zero_point, nhwc.data()}};
  if (!conv.channels_last_output(operands)) {
    RC_ASSERT(!kernels::u8_pair_rows_supported());  // QCONFORM_KERNEL_ISA=portable: forward's loop only
    return;
  }
  std::vector<uint8_t> bytes(defined.size());
  conv.forward_channels_last(operands, bytes.data());
  RC_ASSERT(bytes == defined);
}

// LibTorch's convolution on channels-last bytes (the form the bench times it in, beside the
// integer module's) computes what its forward computes: the same op on the same values,
// wrapped without a copy. qnnpack's answers do not depend on the calls before (onednn's may,
// docs/numerics.md), so the integers are compared there exactly, and the integer module's
// bytes path gives them too.
BOOST_AUTO_TEST_CASE(libtorch_conv_on_channels_last_bytes_matches_its_forward) {
  ConvOptions o = conv_options(2, 5, 7, 3, 2, 1);
  const QTensor w = conv_weight(o, 0.01);
  const Tensor bias(Shape{7}, std::vector<float>(7, 0.125f));
  const QTensor x = conv_input(o, 9, 0.1, 4);
  std::vector<uint8_t> nhwc(x.values.size());
  for (int64_t c = 0; c < 5; ++c)
    for (int64_t i = 0; i < 81; ++i) nhwc[i * 5 + c] = static_cast<uint8_t>(x.values[c * 81 + i]);
  const std::vector<U8ChannelsLast> operands{{x.sizes, x.qparams.scale(), x.qparams.zero_point(), nhwc.data()}};
  for (const bool relu : {false, true}) {
    auto libtorch = make_libtorch_static_conv(o, w, bias, 0.07, 12, Engine::QNNPACK, relu);
    QuantizedConv integer(o, w, bias, 0.07, 12, Engine::QNNPACK, relu);
    const auto* takes_bytes = dynamic_cast<const ChannelsLastBytesForward*>(libtorch.get());
    BOOST_REQUIRE(takes_bytes);
    const auto output = takes_bytes->channels_last_output(operands);
    BOOST_REQUIRE(output);
    const QTensor expected = std::get<QTensor>((*libtorch)(ModuleInput{x, std::nullopt}).output);
    BOOST_TEST(output->sizes == expected.sizes);
    std::vector<uint8_t> theirs(expected.values.size()), ours(expected.values.size());
    takes_bytes->forward_channels_last(operands, theirs.data());
    const int64_t out_plane = expected.sizes[2] * expected.sizes[3];
    int64_t differ = 0;
    for (int64_t c = 0; c < 7; ++c)
      for (int64_t i = 0; i < out_plane; ++i) differ += theirs[i * 7 + c] != expected.values[c * out_plane + i];
    BOOST_TEST(differ == 0, "relu " << relu << ": " << differ << " bytes differ from LibTorch's forward");
    // (The integer module's path needs an exact u8 kernel: none under QCONFORM_KERNEL_ISA=portable.)
    if (!integer.channels_last_output(operands)) continue;
    integer.forward_channels_last(operands, ours.data());
    BOOST_TEST(ours == theirs, "relu " << relu << ": the integer module's bytes differ from LibTorch's");
  }
}
