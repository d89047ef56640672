#include "core/quantize.h"

#include <Eigen/Core>  // Eigen::half: IEEE half with round-to-nearest-even conversion
#include <immintrin.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/cpu.h"
#include "core/error.h"

namespace qconform {
namespace {

// float -> int64 as x86's cvttss2si: truncates, and returns INT64_MIN for NaN and for
// values outside int64. PyTorch's static_cast<int64_t> compiles to exactly that.
int64_t truncate_like_x86(float value) {
  if (!(value > -9.2233720368547758e18f && value < 9.2233720368547758e18f))
    return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(value);
}

}  // namespace

std::string shape_to_string(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

Tensor::Tensor(Shape shape, std::vector<float> values)
    : sizes(std::move(shape)), data(std::move(values)) {
  if (numel_of(sizes) != static_cast<int64_t>(data.size()))
    throw Error("Tensor: shape " + shape_to_string(sizes) + " holds " +
                std::to_string(numel_of(sizes)) + " elements but " +
                std::to_string(data.size()) + " values were given");
}

bool Tensor::operator==(const Tensor& other) const {
  if (sizes != other.sizes || data.size() != other.data.size()) return false;
  for (size_t i = 0; i < data.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &data[i], 4);
    std::memcpy(&b, &other.data[i], 4);
    if (a != b) return false;
  }
  return true;
}

bool QTensor::operator==(const QTensor& other) const {
  return sizes == other.sizes && values == other.values && qparams == other.qparams;
}

ChannelIndexer::ChannelIndexer(const Shape& sizes, int64_t axis) {
  channels = sizes.at(axis);
  for (size_t d = axis + 1; d < sizes.size(); ++d) inner *= sizes[d];
}

int64_t quantize_value(float x, float inverse_scale, int64_t zero_point, int64_t quant_min,
                       int64_t quant_max) {
  const float rounded = std::nearbyint(x * inverse_scale);  // half to even (default mode)
  const float shifted = static_cast<float>(zero_point) + rounded;
  const int64_t q = truncate_like_x86(shifted);
  return std::min(std::max(q, quant_min), quant_max);
}

int64_t quantize_value_shift_then_round(float x, float inverse_scale, int64_t zero_point,
                                        int64_t quant_min, int64_t quant_max) {
  const float shifted = x * inverse_scale + static_cast<float>(zero_point);  // two roundings
  const int64_t q = truncate_like_x86(std::nearbyint(shifted));
  return std::min(std::max(q, quant_min), quant_max);
}

namespace {

// Eight values of quantize_values. The float steps are the scalar ones (one rounding each;
// _mm256_round_ps to nearest is nearbyint's half-to-even). The conversion reproduces
// truncate_like_x86 and the clamp: cvttps gives INT32_MIN where the scalar cvttss2si gives
// INT64_MIN (NaN, beyond int64), and both clamp to quant_min; values between 2^31 and 2^63,
// which the scalar form clamps to quant_max, become INT32_MAX first (then quant_max: qint32's
// 2^31 - 1 too, which no float below 2^31 reaches).
__attribute__((target("avx2"))) void quantize_eight(const float* x, __m256 inverse_scale, __m256 zero_point,
                                                    __m256i quant_min, __m256i quant_max, bool round_first,
                                                    int32_t* out) {
  constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m256 scaled = _mm256_mul_ps(_mm256_loadu_ps(x), inverse_scale);
  const __m256 shifted = round_first ? _mm256_add_ps(zero_point, _mm256_round_ps(scaled, kNearest))
                                     : _mm256_round_ps(_mm256_add_ps(scaled, zero_point), kNearest);
  __m256i q = _mm256_cvttps_epi32(shifted);  // INT32_MIN for NaN and beyond int32
  const __m256 beyond_int64 = _mm256_cmp_ps(shifted, _mm256_set1_ps(9.2233720368547758e18f), _CMP_NLT_UQ);
  const __m256 beyond_int32 = _mm256_cmp_ps(shifted, _mm256_set1_ps(2147483648.0f), _CMP_GE_OQ);  // NaN: false
  q = _mm256_blendv_epi8(q, _mm256_set1_epi32(std::numeric_limits<int32_t>::max()),
                         _mm256_castps_si256(_mm256_andnot_ps(beyond_int64, beyond_int32)));
  q = _mm256_blendv_epi8(q, _mm256_set1_epi32(std::numeric_limits<int32_t>::min()), _mm256_castps_si256(beyond_int64));
  q = _mm256_min_epi32(_mm256_max_epi32(q, quant_min), quant_max);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), q);
}

// The first multiple of eight of x[0, n) through quantize_eight; returns how many.
__attribute__((target("avx2"))) int64_t quantize_eights(const float* x, int64_t n, float inverse_scale,
                                                        int64_t zero_point, int64_t quant_min, int64_t quant_max,
                                                        bool round_first, int32_t* out) {
  const __m256 inverse = _mm256_set1_ps(inverse_scale), zp = _mm256_set1_ps(static_cast<float>(zero_point));
  const __m256i lo = _mm256_set1_epi32(static_cast<int32_t>(quant_min));
  const __m256i hi = _mm256_set1_epi32(static_cast<int32_t>(quant_max));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) quantize_eight(x + i, inverse, zp, lo, hi, round_first, out + i);
  return i;
}

}  // namespace

void quantize_values(const float* x, int64_t n, float inverse_scale, int64_t zero_point, int64_t quant_min,
                     int64_t quant_max, RoundingStep rounding, int32_t* out) {
  constexpr int64_t kMin = std::numeric_limits<int32_t>::min(), kMax = std::numeric_limits<int32_t>::max();
  if (quant_min < kMin || quant_max > kMax)
    throw Error("quantize_values: quant_min and quant_max must fit int32, got [" + std::to_string(quant_min) + ", " +
                std::to_string(quant_max) + "]");
  const bool round_first = rounding == RoundingStep::BeforeZeroPoint;
  int64_t i = cpu_has_avx2() ? quantize_eights(x, n, inverse_scale, zero_point, quant_min, quant_max, round_first, out)
                             : 0;
  for (; i < n; ++i)
    out[i] = static_cast<int32_t>(round_first ? quantize_value(x[i], inverse_scale, zero_point, quant_min, quant_max)
                                              : quantize_value_shift_then_round(x[i], inverse_scale, zero_point,
                                                                                quant_min, quant_max));
}

namespace {

// Eight values of quantize_values_u8 as int32 in quant_min..quant_max. The float steps are
// quantize_eight's. Their result is an integer (a sum of integers, or a rounded value), an
// infinity or NaN, so below 2^63, where the scalar conversion is exact, clamping the float
// and then converting equals converting and then clamping; from 2^63 up and for NaN the
// scalar rule's INT64_MIN clamps to quant_min, and so does the blend.
__attribute__((target("avx2"))) inline __m256i quantize_eight_in_bytes(const float* x, __m256 inverse_scale,
                                                                       __m256 zero_point, __m256 quant_min,
                                                                       __m256 quant_max, bool round_first) {
  constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m256 scaled = _mm256_mul_ps(_mm256_loadu_ps(x), inverse_scale);
  const __m256 shifted = round_first ? _mm256_add_ps(zero_point, _mm256_round_ps(scaled, kNearest))
                                     : _mm256_round_ps(_mm256_add_ps(scaled, zero_point), kNearest);
  const __m256 converts = _mm256_cmp_ps(shifted, _mm256_set1_ps(9.2233720368547758e18f), _CMP_LT_OQ);  // NaN: false
  const __m256 clamped = _mm256_min_ps(_mm256_max_ps(shifted, quant_min), quant_max);
  return _mm256_cvttps_epi32(_mm256_blendv_ps(quant_min, clamped, converts));
}

// The first multiple of 32 of x[0, n) through quantize_eight_in_bytes; returns how many.
__attribute__((target("avx2"))) int64_t quantize_bytes_prefix(const float* x, int64_t n, float inverse_scale,
                                                              int64_t zero_point, int64_t quant_min,
                                                              int64_t quant_max, bool round_first, uint8_t* out) {
  const __m256 inverse = _mm256_set1_ps(inverse_scale), zp = _mm256_set1_ps(static_cast<float>(zero_point));
  const __m256 lo = _mm256_set1_ps(static_cast<float>(quant_min)), hi = _mm256_set1_ps(static_cast<float>(quant_max));
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i a = quantize_eight_in_bytes(x + i, inverse, zp, lo, hi, round_first);
    const __m256i b = quantize_eight_in_bytes(x + i + 8, inverse, zp, lo, hi, round_first);
    const __m256i c = quantize_eight_in_bytes(x + i + 16, inverse, zp, lo, hi, round_first);
    const __m256i d = quantize_eight_in_bytes(x + i + 24, inverse, zp, lo, hi, round_first);
    // packus works within 128-bit lanes (a0 b0 c0 d0 a1 b1 c1 d1, four values each); the
    // permutation restores a b c d. Exact: every value is in 0..255.
    const __m256i bytes = _mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, d));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
  return i;
}

}  // namespace

void quantize_values_u8(const float* x, int64_t n, float inverse_scale, int64_t zero_point, int64_t quant_min,
                        int64_t quant_max, RoundingStep rounding, uint8_t* out) {
  if (!(0 <= quant_min && quant_min <= quant_max && quant_max <= 255))
    throw Error("quantize_values_u8: quant_min and quant_max must lie in 0..255 with quant_min <= quant_max, got [" +
                std::to_string(quant_min) + ", " + std::to_string(quant_max) + "]");
  const bool round_first = rounding == RoundingStep::BeforeZeroPoint;
  int64_t i = cpu_has_avx2()
                  ? quantize_bytes_prefix(x, n, inverse_scale, zero_point, quant_min, quant_max, round_first, out)
                  : 0;
  for (; i < n; ++i)
    out[i] = static_cast<uint8_t>(round_first ? quantize_value(x[i], inverse_scale, zero_point, quant_min, quant_max)
                                              : quantize_value_shift_then_round(x[i], inverse_scale, zero_point,
                                                                                quant_min, quant_max));
}

int64_t quantize_value_float_qparams(float x, float scale, float zero_point, int64_t quant_min,
                                     int64_t quant_max) {
  const float inverse_scale = scale == 0.0f ? 1.0f : 1.0f / scale;
  const float shifted = x * inverse_scale + zero_point;  // two roundings: no FMA (-ffp-contract=off)
  // lrintf, then PyTorch keeps the result in an int: the low 32 bits, wrapped (checked
  // live). Beyond int64 lrintf yields LONG_MIN on x86, whose low bits are 0.
  const int64_t rounded = std::abs(shifted) < 9.2233720368547758e18f
                              ? static_cast<int64_t>(std::nearbyint(shifted))
                              : std::numeric_limits<int64_t>::min();
  const auto q = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(rounded)));
  return std::min<int64_t>(std::max<int64_t>(q, quant_min), quant_max);
}

uint16_t float_to_half_bits(float x) { return Eigen::numext::bit_cast<uint16_t>(Eigen::half(x)); }

float half_bits_to_float(uint16_t bits) {
  return static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(bits));
}

QTensor quantize(const Tensor& x, const QuantParams& qp) {
  validate(qp, x.sizes);
  QTensor q{x.sizes, std::vector<int32_t>(x.data.size()), qp};
  const int64_t n = x.numel();
  if (qp.dtype == DType::Float16) {
    for (int64_t i = 0; i < n; ++i) q.values[i] = float_to_half_bits(x.data[i]);
    return q;
  }
  if (qp.qscheme == QScheme::PerChannelAffineFloatQParams) {
    ChannelIndexer(x.sizes, qp.axis).for_each_run(n, [&](int64_t begin, int64_t end, int64_t c) {
      const float scale = static_cast<float>(qp.scales[c]), zero_point = static_cast<float>(qp.zero_points[c]);
      for (int64_t i = begin; i < end; ++i)
        q.values[i] = static_cast<int32_t>(
            quantize_value_float_qparams(x.data[i], scale, zero_point, qp.quant_min, qp.quant_max));
    });
    return q;
  }
  if (!qp.per_channel()) {
    const float inverse_scale = 1.0f / static_cast<float>(qp.scales[0]);
    quantize_values(x.data.data(), n, inverse_scale, qp.zero_point(), qp.quant_min, qp.quant_max,
                    RoundingStep::BeforeZeroPoint, q.values.data());
    return q;
  }
  ChannelIndexer(x.sizes, qp.axis).for_each_run(n, [&](int64_t begin, int64_t end, int64_t c) {
    quantize_values(x.data.data() + begin, end - begin, 1.0f / static_cast<float>(qp.scales[c]), qp.zero_point(c),
                    qp.quant_min, qp.quant_max, RoundingStep::BeforeZeroPoint, q.values.data() + begin);
  });
  return q;
}

Tensor dequantize(const QTensor& q) {
  const QuantParams& qp = q.qparams;
  Tensor x(q.sizes);
  const int64_t n = q.numel();
  if (qp.dtype == DType::Float16) {
    for (int64_t i = 0; i < n; ++i) x.data[i] = half_bits_to_float(static_cast<uint16_t>(q.values[i]));
    return x;
  }
  if (qp.qscheme == QScheme::PerChannelAffineFloatQParams) {  // (6)
    ChannelIndexer(q.sizes, qp.axis).for_each_run(n, [&](int64_t begin, int64_t end, int64_t c) {
      const float zero_point = static_cast<float>(qp.zero_points[c]), scale = static_cast<float>(qp.scales[c]);
      for (int64_t i = begin; i < end; ++i) x.data[i] = (static_cast<float>(q.values[i]) - zero_point) * scale;
    });
    return x;
  }
  if (!qp.per_channel()) {  // (4)
    // The difference is taken in integers first (for qint32 the float conversion of q
    // alone would already round), in int32 with wraparound as PyTorch does: computed in
    // uint32 to keep the wrap well-defined.
    const float scale = static_cast<float>(qp.scales[0]);
    const auto zero_point = static_cast<uint32_t>(static_cast<int32_t>(qp.zero_point()));
    for (int64_t i = 0; i < n; ++i) {
      const auto difference =
          static_cast<int32_t>(static_cast<uint32_t>(q.values[i]) - zero_point);
      x.data[i] = static_cast<float>(difference) * scale;
    }
    return x;
  }
  ChannelIndexer(q.sizes, qp.axis).for_each_run(n, [&](int64_t begin, int64_t end, int64_t c) {  // (5)
    const int64_t zero_point = qp.zero_point(c);
    const double scale = qp.scales[c];
    for (int64_t i = begin; i < end; ++i)
      x.data[i] = static_cast<float>(static_cast<double>(q.values[i] - zero_point) * scale);
  });
  return x;
}

Tensor fake_quantize(const Tensor& x, const QuantParams& qp) { return dequantize(quantize(x, qp)); }

}  // namespace qconform
