// quantize / dequantize / the dynamic qparams rule against LibTorch's own functions, on
// rapidcheck-generated tensors and qparams: every integer and every float bit must agree.
// On failure rapidcheck prints the shrunk counterexample and RC_PARAMS="reproduce=..."
// to rerun exactly that case: RC_PARAMS="reproduce=..." build/test_quantize_libtorch
#define BOOST_TEST_MODULE quantize_vs_libtorch
#include <rapidcheck/boost_test.h>

#include <cmath>
#include <cstring>

#include "core/observers.h"
#include "core/quantize.h"
#include "quantized/libtorch/aten_bridge.h"
#include "properties/generators.h"

using namespace qconform;

namespace {

at::ScalarType aten_dtype(DType d) {
  return d == DType::QUInt8 ? at::kQUInt8 : d == DType::QInt8 ? at::kQInt8 : at::kQInt32;
}

rc::Gen<DType> gen_dtype() { return rc::gen::element(DType::QUInt8, DType::QInt8, DType::QInt32); }

// Scales spanning tiny to large, float32-representable (PyTorch stores them as double but
// computes with float) and sometimes with exact reciprocals.
rc::Gen<double> gen_scale() {
  return rc::gen::oneOf(
      rc::gen::map(rc::gen::inRange(-20, 8), [](int e) { return std::ldexp(1.0, e); }),
      rc::gen::map(rc::gen::inRange(1, 1000000), [](int m) {
        return static_cast<double>(static_cast<float>(m * 1e-6 * std::pow(10.0, m % 5 - 2)));
      }));
}

// Values that stress rounding: ties at k + 1/2 quanta, exact multiples, huge, tiny, zero.
rc::Gen<std::vector<float>> gen_values(double scale, int64_t count) {
  const auto value = rc::gen::oneOf(
      rc::gen::map(rc::gen::inRange(-300, 300), [scale](int k) { return static_cast<float>((k + 0.5) * scale); }),
      rc::gen::map(rc::gen::inRange(-300, 300), [scale](int k) { return static_cast<float>(k * scale); }),
      rc::gen::map(rc::gen::arbitrary<int>(), [](int v) { return static_cast<float>(v) * 1e-3f; }),
      rc::gen::element(0.0f, -0.0f, 1e-30f, -1e30f, 3e9f, -3e9f));
  return rc::gen::container<std::vector<float>>(static_cast<size_t>(count), value);
}

void check_same_integers(const QTensor& ours, const at::Tensor& theirs) {
  const at::Tensor ints = theirs.int_repr().to(at::kInt).contiguous();
  RC_ASSERT(static_cast<size_t>(ints.numel()) == ours.values.size());
  for (size_t i = 0; i < ours.values.size(); ++i) RC_ASSERT(ours.values[i] == ints.data_ptr<int32_t>()[i]);
}

void check_same_floats(const Tensor& ours, const at::Tensor& theirs) {
  const at::Tensor f = theirs.contiguous();
  RC_ASSERT(static_cast<size_t>(f.numel()) == ours.data.size());
  RC_ASSERT(std::memcmp(ours.data.data(), f.data_ptr<float>(), ours.data.size() * sizeof(float)) == 0);
}

}  // namespace

RC_BOOST_PROP(quantize_per_tensor_matches_aten, ()) {
  const DType dtype = *gen_dtype().as("dtype");
  const double scale = *gen_scale().as("scale");
  const int64_t zero_point = *rc::gen::inRange<int64_t>(dtype == DType::QUInt8 ? 0 : -128,
                                                        dtype == DType::QUInt8 ? 256 : 128).as("zero_point");
  const int64_t n = *rc::gen::inRange<int64_t>(1, 64).as("numel");
  const Tensor x(Shape{n}, *gen_values(scale, n).as("values"));
  const QuantParams qp = QuantParams::per_tensor(dtype, scale, zero_point);
  const QTensor ours = quantize(x, qp);
  const at::Tensor theirs = at::quantize_per_tensor(libtorch::to_aten(x), scale, zero_point, aten_dtype(dtype));
  check_same_integers(ours, theirs);
  check_same_floats(dequantize(ours), theirs.dequantize());
}

RC_BOOST_PROP(quantize_per_channel_matches_aten, ()) {
  const DType dtype = *rc::gen::element(DType::QUInt8, DType::QInt8).as("dtype");
  const int64_t rank = *rc::gen::inRange<int64_t>(1, 4).as("rank");
  Shape sizes;
  for (int64_t d = 0; d < rank; ++d) sizes.push_back(*rc::gen::inRange<int64_t>(1, 5));
  const int64_t axis = *rc::gen::inRange<int64_t>(0, rank).as("axis");
  std::vector<double> scales;
  std::vector<int64_t> zero_points;
  for (int64_t c = 0; c < sizes[axis]; ++c) {
    scales.push_back(*gen_scale());
    zero_points.push_back(*rc::gen::inRange<int64_t>(dtype == DType::QUInt8 ? 0 : -128, dtype == DType::QUInt8 ? 256 : 128));
  }
  const Tensor x(sizes, *gen_values(scales[0], numel_of(sizes)).as("values"));
  const QuantParams qp = QuantParams::per_channel(dtype, scales, zero_points, axis);
  const QTensor ours = quantize(x, qp);
  const at::Tensor theirs = at::quantize_per_channel(libtorch::to_aten(x), at::tensor(scales, at::kDouble),
                                                     at::tensor(zero_points, at::kLong), axis, aten_dtype(dtype));
  check_same_integers(ours, theirs);
  check_same_floats(dequantize(ours), theirs.dequantize());
}

RC_BOOST_PROP(dynamic_qparams_match_aten_choose_qparams, ()) {
  const int64_t n = *rc::gen::inRange<int64_t>(1, 32).as("numel");
  const float magnitude = std::ldexp(1.0f, *rc::gen::inRange(-30, 30).as("magnitude exponent"));
  std::vector<float> values;
  for (int v : *rc::gen::container<std::vector<int>>(static_cast<size_t>(n), rc::gen::inRange(-1000, 1000)))
    values.push_back(static_cast<float>(v) * magnitude);
  const bool reduce_range = *rc::gen::arbitrary<bool>().as("reduce_range");
  const Tensor x(Shape{n}, values);
  float lo, hi;
  tensor_min_max(x, &lo, &hi);
  const QuantParams ours = choose_dynamic_qparams(lo, hi, 0, 255, reduce_range);
  const auto [scale, zero_point] = at::_choose_qparams_per_tensor(libtorch::to_aten(x), reduce_range);
  RC_ASSERT(ours.scale() == scale);
  RC_ASSERT(ours.zero_point() == zero_point);
}

RC_BOOST_PROP(float_qparams_per_channel_matches_aten, ()) {
  // per_channel_affine_float_qparams, as embeddings use it: float zero points, quint8 or
  // quint4x2 (the latter compared after dequantization: LibTorch packs two per byte).
  const DType dtype = *rc::gen::element(DType::QUInt8, DType::QUInt4x2).as("dtype");
  const int64_t rows = *rc::gen::inRange<int64_t>(1, 6).as("rows");
  const int64_t cols = *rc::gen::inRange<int64_t>(1, 9).as("cols");
  std::vector<float> scales, zero_points;
  for (int64_t r = 0; r < rows; ++r) {
    scales.push_back(static_cast<float>(*gen_scale()));
    zero_points.push_back(static_cast<float>(*rc::gen::inRange(-2000, 2000)) / 16.0f);
  }
  const Tensor x(Shape{rows, cols}, *gen_values(scales[0], rows * cols).as("values"));
  const QuantParams qp = QuantParams::per_channel_float_qparams(dtype, scales, zero_points, 0);
  const QTensor ours = quantize(x, qp);
  const at::Tensor theirs = at::quantize_per_channel(
      libtorch::to_aten(x), at::tensor(scales, at::kFloat), at::tensor(zero_points, at::kFloat), 0,
      dtype == DType::QUInt8 ? at::kQUInt8 : at::kQUInt4x2);
  if (dtype == DType::QUInt8) check_same_integers(ours, theirs);
  check_same_floats(dequantize(ours), theirs.dequantize());
}

RC_BOOST_PROP(float16_rounding_matches_aten, ()) {
  const int64_t n = *rc::gen::inRange<int64_t>(1, 64).as("numel");
  std::vector<float> values;
  for (int64_t i = 0; i < n; ++i) {
    // Raw bit patterns: every float, including subnormals, halfway cases, huge values.
    const auto bits = *rc::gen::arbitrary<uint32_t>();
    float v;
    std::memcpy(&v, &bits, sizeof v);
    values.push_back(std::isnan(v) ? 0.0f : v);
  }
  const Tensor x(Shape{n}, values);
  check_same_floats(dequantize(quantize(x, QuantParams::float16())),
                    libtorch::to_aten(x).to(at::kHalf).to(at::kFloat));
}

// The bridge's conversions: from_aten_quantized reads an 8-bit tensor's bytes directly
// (contiguous, or channels-last transposed image by image) and to_aten writes a quint8
// channels-last tensor directly; both must give what ATen's own int_repr and memory-format
// copies give, for channel and plane counts on and off the 16 x 16 transpose blocks.
RC_BOOST_PROP(conversions_keep_integers_and_memory_format, ()) {
  const DType dtype = *rc::gen::element(DType::QUInt8, DType::QInt8);
  const std::vector<int64_t> sizes{*rc::gen::inRange<int64_t>(0, 3), *rc::gen::inRange<int64_t>(1, 40),
                                   *rc::gen::inRange<int64_t>(1, 9), *rc::gen::inRange<int64_t>(1, 21)};
  const bool channels_last = *rc::gen::arbitrary<bool>();
  const double scale = *gen_scale();
  const int64_t zero_point = dtype == DType::QUInt8 ? *rc::gen::inRange<int64_t>(0, 256) : 0;
  const at::Tensor x = at::rand(sizes, at::TensorOptions().dtype(at::kFloat)).mul_(600).sub_(300).mul_(scale);
  at::Tensor q = at::quantize_per_tensor(x, scale, zero_point, aten_dtype(dtype));
  if (channels_last) q = q.contiguous(at::MemoryFormat::ChannelsLast);

  const QTensor ours = libtorch::from_aten_quantized(q);
  RC_ASSERT(ours.sizes == sizes);
  check_same_integers(ours, q);
  // 1 x 1 planes and single channels are both formats at once; ATen calls those contiguous.
  RC_ASSERT(ours.channels_last == (q.dim() == 4 && !q.is_contiguous()));

  const at::Tensor back = libtorch::to_aten(ours);
  RC_ASSERT(back.scalar_type() == q.scalar_type());
  RC_ASSERT(back.q_scale() == q.q_scale());
  RC_ASSERT(back.q_zero_point() == q.q_zero_point());
  if (q.numel() > 0) RC_ASSERT(back.strides().vec() == q.strides().vec());  // an empty one is every format
  RC_ASSERT(at::equal(back.int_repr(), q.int_repr()));
}
