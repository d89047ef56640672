// QuantParams validation (every rule, with its message), quantize/dequantize against
// values computed here from the definition, and observers against hand-derived qparams.
#define BOOST_TEST_MODULE qparams
#include <boost/test/unit_test.hpp>
#include <cfloat>
#include <cmath>
#include <limits>

#include "core/observers.h"
#include "core/qconfig.h"
#include "core/quantize.h"
#include "tests/support.h"

using namespace qconform;
using qconform::testing::expect_error;

BOOST_AUTO_TEST_SUITE(validation)

BOOST_AUTO_TEST_CASE(scale_must_be_positive_and_finite) {
  for (double bad : {0.0, -0.5, std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()})
    expect_error([&] { QuantParams::per_tensor(DType::QUInt8, bad, 0); }, "scale = ");
  expect_error([] { QuantParams::per_tensor(DType::QUInt8, -0.5, 0); },
               "scale = -0.5: must be > 0 and finite");
  expect_error([] { QuantParams::per_channel(DType::QInt8, {0.1, 0.0}, {0, 0}, 0); },
               "scale[1] = 0: must be > 0 and finite");
  expect_error([] { QuantParams::per_tensor(DType::QUInt8, 1e-50, 0); }, "is zero in float32");
}

BOOST_AUTO_TEST_CASE(zero_point_must_lie_in_range) {
  expect_error([] { QuantParams::per_tensor(DType::QUInt8, 0.1, 256); },
               "zero_point = 256: must lie inside [quant_min, quant_max] = [0, 255]");
  expect_error([] { QuantParams::per_tensor(DType::QInt8, 0.1, -129); },
               "zero_point = -129: must lie inside [quant_min, quant_max] = [-128, 127]");
  expect_error([] { QuantParams::per_channel(DType::QInt8, {0.1, 0.1}, {0, 200}, 0); },
               "zero_point[1] = 200");
  // A custom (int16 on qint32) range narrows what is allowed.
  expect_error([] { QuantParams::per_tensor(DType::QInt32, 0.1, 40000, -32768, 32767); },
               "zero_point = 40000: must lie inside [quant_min, quant_max] = [-32768, 32767]");
  BOOST_CHECK_NO_THROW(QuantParams::per_tensor(DType::QInt32, 0.1, -32768, -32768, 32767));
}

BOOST_AUTO_TEST_CASE(zero_point_must_be_integral_except_float_qparams) {
  QuantParams qp = QuantParams::per_tensor(DType::QUInt8, 0.1, 3);
  qp.zero_points = {3.5};
  expect_error([&] { validate(qp); }, "zero_point = 3.5: must be an integer");
  BOOST_CHECK_NO_THROW(QuantParams::per_channel_float_qparams(DType::QUInt8, {0.1f}, {3.5f}, 0));
}

BOOST_AUTO_TEST_CASE(range_must_fit_the_dtype) {
  expect_error([] { QuantParams::per_tensor(DType::QInt8, 0.1, 0, -129, 127); },
               "quant_min = -129: is below the range of torch.qint8");
  expect_error([] { QuantParams::per_tensor(DType::QUInt8, 0.1, 0, 0, 256); },
               "quant_max = 256: is above the range of torch.quint8");
  expect_error([] { QuantParams::per_tensor(DType::QUInt8, 0.1, 0, 10, 5); },
               "quant_min = 10: must be <= quant_max (5)");
}

BOOST_AUTO_TEST_CASE(axis_must_be_inside_the_rank) {
  const auto qp = QuantParams::per_channel(DType::QInt8, {0.1, 0.2}, {0, 0}, 2);
  expect_error([&] { validate(qp, {2, 3}); }, "axis = 2: is outside the tensor's rank 2");
  expect_error([] { QuantParams::per_channel(DType::QInt8, {0.1}, {0}, -1); }, "axis = -1: must be >= 0");
  const auto two = QuantParams::per_channel(DType::QInt8, {0.1, 0.2}, {0, 0}, 1);
  expect_error([&] { validate(two, {2, 3}); }, "must match the tensor's size 3 along axis 1");
}

BOOST_AUTO_TEST_CASE(counts_must_agree) {
  QuantParams qp = QuantParams::per_tensor(DType::QUInt8, 0.1, 0);
  qp.scales = {0.1, 0.2};
  qp.zero_points = {0, 0};
  expect_error([&] { validate(qp); }, "torch.per_tensor_affine takes exactly one scale");
  qp = QuantParams::per_channel(DType::QInt8, {0.1, 0.2}, {0, 0}, 0);
  qp.zero_points = {0};
  expect_error([&] { validate(qp); }, "zero_point = 1 values: must have as many entries as scale (2)");
  qp.scales.clear();
  expect_error([&] { validate(qp); }, "at least one scale is required");
}

BOOST_AUTO_TEST_CASE(dtype_must_be_quantized) {
  QuantParams qp = QuantParams::per_tensor(DType::QUInt8, 0.1, 0);
  qp.dtype = DType::Float32;
  expect_error([&] { validate(qp); }, "dtype = torch.float32: is not a quantized integer dtype");
  BOOST_CHECK_NO_THROW(validate(QuantParams::float16()));
}

BOOST_AUTO_TEST_CASE(quantize_validates_against_the_tensor) {
  const Tensor x(Shape{2, 3});
  const auto qp = QuantParams::per_channel(DType::QInt8, {0.1, 0.2}, {0, 0}, 1);
  expect_error([&] { quantize(x, qp); }, "along axis 1");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(arithmetic)

// Values where the definition q = round_half_even(x / s) + z is unambiguous in float:
// s = 0.5 has an exact reciprocal, so x * (1/s) is exact and ties are real ties.
BOOST_AUTO_TEST_CASE(quantize_rounds_half_to_even_and_clamps) {
  const Tensor x(Shape{8}, {0.25f, 0.75f, -0.25f, -0.75f, 1.0f, 1000.0f, -1000.0f, 0.0f});
  const QTensor q = quantize(x, QuantParams::per_tensor(DType::QUInt8, 0.5, 10));
  // 0.5 -> 0, 1.5 -> 2, -0.5 -> -0, -1.5 -> -2, then + 10; clamped to [0, 255].
  const std::vector<int32_t> expected{10, 12, 10, 8, 12, 255, 0, 10};
  BOOST_CHECK_EQUAL_COLLECTIONS(q.values.begin(), q.values.end(), expected.begin(), expected.end());
  const Tensor back = dequantize(q);
  const std::vector<float> expected_back{0.0f, 1.0f, 0.0f, -1.0f, 1.0f, 122.5f, -5.0f, 0.0f};
  BOOST_CHECK_EQUAL_COLLECTIONS(back.data.begin(), back.data.end(), expected_back.begin(),
                                expected_back.end());
}

BOOST_AUTO_TEST_CASE(non_finite_values_clamp_like_x86) {
  const Tensor x(Shape{3}, {NAN, INFINITY, -INFINITY});
  const QTensor q = quantize(x, QuantParams::per_tensor(DType::QInt8, 0.5, 0));
  // cvttss2si yields INT64_MIN for NaN and +-inf, which clamps to quant_min.
  BOOST_CHECK_EQUAL(q.values[0], -128);
  BOOST_CHECK_EQUAL(q.values[1], -128);
  BOOST_CHECK_EQUAL(q.values[2], -128);
}

BOOST_AUTO_TEST_CASE(per_channel_uses_each_channels_parameters) {
  const Tensor x(Shape{2, 2}, {1.0f, -1.0f, 1.0f, -1.0f});
  const QTensor q = quantize(x, QuantParams::per_channel(DType::QInt8, {0.5, 0.25}, {1, -1}, 0));
  const std::vector<int32_t> expected{3, -1, 3, -5};
  BOOST_CHECK_EQUAL_COLLECTIONS(q.values.begin(), q.values.end(), expected.begin(), expected.end());
  const QTensor by_column = quantize(x, QuantParams::per_channel(DType::QInt8, {0.5, 0.25}, {0, 0}, 1));
  const std::vector<int32_t> expected_columns{2, -4, 2, -4};
  BOOST_CHECK_EQUAL_COLLECTIONS(by_column.values.begin(), by_column.values.end(),
                                expected_columns.begin(), expected_columns.end());
}

BOOST_AUTO_TEST_CASE(float16_rounds_to_nearest_even) {
  // 1 + 2^-11 lies exactly between 1 and 1 + 2^-10: ties to even (1).
  const Tensor x(Shape{3}, {1.0f + std::ldexp(1.0f, -11), 1.0f + 3 * std::ldexp(1.0f, -11), 70000.0f});
  const Tensor y = dequantize(quantize(x, QuantParams::float16()));
  BOOST_CHECK_EQUAL(y.data[0], 1.0f);
  BOOST_CHECK_EQUAL(y.data[1], 1.0f + std::ldexp(1.0f, -9));
  BOOST_CHECK(std::isinf(y.data[2]));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(observers)

BOOST_AUTO_TEST_CASE(min_max_affine_and_symmetric) {
  MinMaxObserver affine;  // quint8 [0, 255]
  affine.observe(Tensor(Shape{3}, {-1.0f, 0.5f, 3.0f}));
  const QuantParams a = affine.calculate_qparams();
  const float scale = 4.0f / 255.0f;
  BOOST_CHECK_EQUAL(a.scale(), static_cast<double>(scale));
  BOOST_CHECK_EQUAL(a.zero_point(), static_cast<int64_t>(0 - std::nearbyint(-1.0f / scale)));

  ObserverOptions o;
  o.dtype = DType::QInt8;
  o.qscheme = QScheme::PerTensorSymmetric;
  MinMaxObserver symmetric(o);
  symmetric.observe(Tensor(Shape{2}, {-2.0f, 1.0f}));
  const QuantParams s = symmetric.calculate_qparams();
  BOOST_CHECK_EQUAL(s.scale(), static_cast<double>(2.0f / 127.5f));
  BOOST_CHECK_EQUAL(s.zero_point(), 0);
}

BOOST_AUTO_TEST_CASE(unobserved_gives_pytorch_defaults) {
  MinMaxObserver observer;
  const QuantParams qp = observer.calculate_qparams();
  BOOST_CHECK_EQUAL(qp.scale(), 1.0);
  BOOST_CHECK_EQUAL(qp.zero_point(), 0);
}

BOOST_AUTO_TEST_CASE(constant_zero_tensor_uses_eps) {
  MinMaxObserver observer;
  observer.observe(Tensor(Shape{4}));
  BOOST_CHECK_EQUAL(observer.calculate_qparams().scale(), static_cast<double>(FLT_EPSILON));
}

BOOST_AUTO_TEST_CASE(rejections_have_pytorchs_messages) {
  ObserverOptions o;
  o.qscheme = QScheme::PerTensorSymmetric;
  o.reduce_range = true;
  expect_error([&] { MinMaxObserver{o}; }, "Cannot reduce range for symmetric quantization for quint8");
  ObserverOptions per_channel;
  per_channel.qscheme = QScheme::PerChannelAffine;
  expect_error([&] { MinMaxObserver{per_channel}; }, "MinMaxObserver's qscheme only support");
  ObserverOptions custom;
  custom.quant_min = 1;
  custom.quant_max = 10;
  expect_error([&] { MinMaxObserver{custom}; }, "Used-specified quantization range must include 0.");
  expect_error([] { PlaceholderObserver().calculate_qparams(); },
               "calculate_qparams should not be called for PlaceholderObserver");
}

BOOST_AUTO_TEST_CASE(dynamic_rule_widens_to_zero_and_nudges) {
  // min 0.5, max 2.0 -> range [0, 2], scale 2/255, zero point 0.
  const QuantParams qp = choose_dynamic_qparams(0.5f, 2.0f, 0, 255, false);
  BOOST_CHECK_EQUAL(qp.scale(), 2.0 / 255.0);
  BOOST_CHECK_EQUAL(qp.zero_point(), 0);
  // reduce_range halves qmax: scale over 127 steps.
  BOOST_CHECK_EQUAL(choose_dynamic_qparams(-1.0f, 1.0f, 0, 255, true).scale(), 2.0 / 127.0);
  // All-zero input: scale 0 becomes 0.1.
  BOOST_CHECK_EQUAL(choose_dynamic_qparams(0.0f, 0.0f, 0, 255, false).scale(), 0.1);
  // Tiny ranges are raised to fp16's smallest normal scale.
  BOOST_CHECK_EQUAL(choose_dynamic_qparams(0.0f, 1e-4f, 0, 255, false).scale(),
                    static_cast<double>(6.1e-5f));
  expect_error([] { choose_dynamic_qparams(1.0f, 0.0f, 0, 255, false); },
               "min should be less than or equal to max");
}

BOOST_AUTO_TEST_CASE(named_qconfigs_match_pytorch) {
  const QConfig dynamic = default_dynamic_qconfig();
  BOOST_CHECK(dynamic.is_dynamic());
  BOOST_CHECK(dynamic.weight_dtype() == DType::QInt8);
  BOOST_CHECK(per_channel_dynamic_qconfig().weight()->qscheme() == QScheme::PerChannelSymmetric);
  BOOST_CHECK(float16_dynamic_qconfig().weight_dtype() == DType::Float16);
  BOOST_CHECK(!default_qconfig().is_dynamic());
  auto observer = default_qconfig().activation();
  BOOST_CHECK_EQUAL(dynamic_cast<MinMaxObserver&>(*observer).quant_max(), 127);
  expect_error([] { qconfig_by_name("nope"); }, "unknown qconfig 'nope'");
}

BOOST_AUTO_TEST_SUITE_END()
