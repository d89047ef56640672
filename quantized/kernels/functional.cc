#include "quantized/kernels/functional.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/cpu.h"
#include "core/error.h"
#include "core/quantize.h"

namespace qconform::kernels {
namespace {

int32_t clamp_u8(int64_t v) { return static_cast<int32_t>(std::min<int64_t>(std::max<int64_t>(v, 0), 255)); }

uint32_t float_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

float float_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// The two forms of ATen's dequantize (elementwise.h, step 1).
float dequantize_in(bool vector, int32_t q, float s, float z, float premultiplied) {
  return vector ? std::fma(static_cast<float>(q), s, premultiplied) : (static_cast<float>(q) - z) * s;
}

}  // namespace

QnnpackAddParams qnnpack_add_params(double a_scale, double b_scale, double out_scale) {
  // QNNPACK takes the ratios in float (pytorch_qnnp_create_add_nc_q8).
  const float a_ratio = static_cast<float>(a_scale) / static_cast<float>(out_scale);
  const float b_ratio = static_cast<float>(b_scale) / static_cast<float>(out_scale);
  // QNNPACK refuses ratios outside [2^-14, 2^8) ("scale ratio must be in [2**-14, 2**8)
  // range" on stderr); PyTorch's message is its own.
  for (float ratio : {a_ratio, b_ratio})
    if (!(ratio >= 0x1.0p-14f && ratio < 0x1.0p+8f)) throw Error("failed to create QNNPACK Add operator");
  const float max_ratio = std::max(a_ratio, b_ratio);
  const int32_t exponent = static_cast<int32_t>(float_bits(max_ratio) >> 23) - 127;
  const uint32_t shift = static_cast<uint32_t>(21 - exponent);
  const float scale_multiplier = float_from_bits(static_cast<uint32_t>(21 - exponent + 127) << 23);  // 2^shift
  return {shift, static_cast<int32_t>(std::lrintf(a_ratio * scale_multiplier)),
          static_cast<int32_t>(std::lrintf(b_ratio * scale_multiplier))};
}

void qnnpack_add(const int32_t* a, const int32_t* b, int64_t n, AffineQParams qa, AffineQParams qb,
                 AffineQParams out, bool relu, int32_t* y) {
  const QnnpackAddParams p = qnnpack_add_params(qa.scale, qb.scale, out.scale);
  const uint32_t ma = static_cast<uint32_t>(p.a_multiplier), mb = static_cast<uint32_t>(p.b_multiplier);
  const int32_t zero_point_product =
      static_cast<int32_t>(-(ma * static_cast<uint32_t>(qa.zero_point) + mb * static_cast<uint32_t>(qb.zero_point)));
  const int32_t remainder_mask = static_cast<int32_t>((uint32_t{1} << p.shift) - 1u);
  const int32_t remainder_threshold = remainder_mask >> 1;
  const int32_t low = relu ? out.zero_point : 0;
  for (int64_t i = 0; i < n; ++i) {
    // 3. the accumulator, in uint32 arithmetic as QNNPACK's 16-bit partial products wrap
    const int32_t acc = static_cast<int32_t>(static_cast<uint32_t>(zero_point_product) +
                                             ma * static_cast<uint32_t>(a[i]) + mb * static_cast<uint32_t>(b[i]));
    // 4. arithmetic shift, rounded half away from zero
    const int32_t remainder = (acc & remainder_mask) - static_cast<int32_t>(acc < 0);
    const int32_t q = (acc >> p.shift) + static_cast<int32_t>(remainder > remainder_threshold);
    // 5. saturating add of the zero point, clamp
    y[i] = std::min(std::max(clamp_u8(static_cast<int64_t>(q) + out.zero_point), low), 255);
  }
}

namespace {

bool cpu_has_fma() {
  static const bool fma = cpu_has_avx2() && __builtin_cpu_supports("fma");
  return fma;
}

struct AddForms {
  float sa, za, premultiplied_a, sb, zb, premultiplied_b, inverse;
  int32_t zero_point;
  bool relu;
  AddForms(AffineQParams qa, AffineQParams qb, AffineQParams out, bool relu)
      : sa(static_cast<float>(qa.scale)), za(static_cast<float>(qa.zero_point)), premultiplied_a(sa * -za),
        sb(static_cast<float>(qb.scale)), zb(static_cast<float>(qb.zero_point)), premultiplied_b(sb * -zb),
        inverse(1.0f / static_cast<float>(out.scale)), zero_point(out.zero_point), relu(relu) {}

  // Steps 1 and 2 for one element, in the vector or the scalar forms.
  float sum(bool vector, int32_t a, int32_t b) const {
    const float c = dequantize_in(vector, a, sa, za, premultiplied_a) + dequantize_in(vector, b, sb, zb, premultiplied_b);
    return relu ? std::max(c, 0.0f) : c;
  }
  int32_t one(bool vector, int32_t a, int32_t b) const {
    return static_cast<int32_t>(quantize_value(sum(vector, a, b), inverse, zero_point, 0, 255));
  }
};

// Steps 1 and 2 of elements [0, n) in the vector forms, 8 at a time: vfmadd is fma's single
// rounding, vcvtdq2ps static_cast's rounding, and max(0, c) keeps a NaN as std::max(c, 0) does.
__attribute__((target("avx2,fma"))) void vector_sums_avx2(const int32_t* a, const int32_t* b, int64_t n,
                                                          const AddForms& f, float* c) {
  const __m256 sa = _mm256_set1_ps(f.sa), pa = _mm256_set1_ps(f.premultiplied_a);
  const __m256 sb = _mm256_set1_ps(f.sb), pb = _mm256_set1_ps(f.premultiplied_b), zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 fa = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)));
    const __m256 fb = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i)));
    __m256 sum = _mm256_add_ps(_mm256_fmadd_ps(fa, sa, pa), _mm256_fmadd_ps(fb, sb, pb));
    if (f.relu) sum = _mm256_max_ps(zero, sum);
    _mm256_storeu_ps(c + i, sum);
  }
  for (; i < n; ++i) c[i] = f.sum(true, a[i], b[i]);
}

// Elements [begin, end), all in the vector forms or all in the scalar ones, a chunk of sums
// at a time, then step 3 through quantize_values (the same integers as quantize_value).
void add_range(const int32_t* a, const int32_t* b, int64_t begin, int64_t end, bool vector, const AddForms& f,
               int32_t* y) {
  constexpr int64_t kChunk = 256;
  float c[kChunk];
  for (int64_t i = begin; i < end; i += kChunk) {
    const int64_t count = std::min(kChunk, end - i);
    if (vector && cpu_has_fma()) {
      vector_sums_avx2(a + i, b + i, count, f, c);
    } else {
      for (int64_t k = 0; k < count; ++k) c[k] = f.sum(vector, a[i + k], b[i + k]);
    }
    quantize_values(c, count, f.inverse, f.zero_point, 0, 255, RoundingStep::BeforeZeroPoint, y + i);
  }
}

}  // namespace

void aten_add(const int32_t* a, const int32_t* b, int64_t n, AffineQParams qa, AffineQParams qb, AffineQParams out,
              bool relu, AtenVectorLoop loop, int32_t* y) {
  const AddForms forms(qa, qb, out, relu);
  const int64_t vector_end = loop.simd && loop.block > 0 ? n / loop.block * loop.block : 0;
  add_range(a, b, 0, vector_end, true, forms, y);
  add_range(a, b, vector_end, n, false, forms, y);
}

void aten_add_channels_last(const int32_t* a, const int32_t* b, const Shape& sizes, AffineQParams qa,
                            AffineQParams qb, AffineQParams out, bool relu, AtenVectorLoop loop, int32_t* y) {
  const int64_t n = numel_of(sizes);
  const AddForms forms(qa, qb, out, relu);
  const int64_t vector_end = loop.simd && loop.block > 0 ? n / loop.block * loop.block : 0;
  if (vector_end == 0) {  // every element in the scalar forms: the order does not matter
    add_range(a, b, 0, n, false, forms, y);
    return;
  }
  add_range(a, b, 0, n, true, forms, y);
  // ATen's scalar tail is the last elements in memory (NHWC) order: element m of memory is
  // channel m % C of position (m / C) % HW of image m / (C HW).
  const int64_t channels = sizes[1], plane = sizes[2] * sizes[3];
  for (int64_t m = vector_end; m < n; ++m) {
    const int64_t image = m / (channels * plane), within = m % (channels * plane);
    const int64_t i = image * channels * plane + (within % channels) * plane + within / channels;
    y[i] = forms.one(false, a[i], b[i]);
  }
}

namespace {

// op(a, b, first, count, y) on int32 chunks of the u8 operands, each output narrowed back (the
// binary ops' outputs are in [0, 255]); `first` is the chunk's first element.
template <typename Op>
void over_u8_chunks(const uint8_t* a, const uint8_t* b, int64_t n, uint8_t* y, const Op& op) {
  constexpr int64_t kChunk = 256;
  int32_t wide_a[kChunk], wide_b[kChunk], wide_y[kChunk];
  for (int64_t first = 0; first < n; first += kChunk) {
    const int64_t count = std::min(kChunk, n - first);
    for (int64_t k = 0; k < count; ++k) {
      wide_a[k] = a[first + k];
      wide_b[k] = b[first + k];
    }
    op(wide_a, wide_b, first, count, wide_y);
    for (int64_t k = 0; k < count; ++k) y[first + k] = static_cast<uint8_t>(wide_y[k]);
  }
}

}  // namespace

void qnnpack_add_u8(const uint8_t* a, const uint8_t* b, int64_t n, AffineQParams qa, AffineQParams qb,
                    AffineQParams out, bool relu, uint8_t* y) {
  qnnpack_add_params(qa.scale, qb.scale, out.scale);  // QNNPACK's refusal before anything is written
  over_u8_chunks(a, b, n, y, [&](const int32_t* wa, const int32_t* wb, int64_t, int64_t count, int32_t* wy) {
    qnnpack_add(wa, wb, count, qa, qb, out, relu, wy);
  });
}

void aten_add_u8(const uint8_t* a, const uint8_t* b, int64_t n, AffineQParams qa, AffineQParams qb, AffineQParams out,
                 bool relu, AtenVectorLoop loop, uint8_t* y) {
  const AddForms forms(qa, qb, out, relu);
  const int64_t vector_end = loop.simd && loop.block > 0 ? n / loop.block * loop.block : 0;
  over_u8_chunks(a, b, n, y, [&](const int32_t* wa, const int32_t* wb, int64_t first, int64_t count, int32_t* wy) {
    const int64_t vector_count = std::clamp<int64_t>(vector_end - first, 0, count);
    add_range(wa, wb, 0, vector_count, true, forms, wy);
    add_range(wa, wb, vector_count, count, false, forms, wy);
  });
}

void aten_mul(const int32_t* a, const int32_t* b, int64_t n, AffineQParams qa, AffineQParams qb, AffineQParams out,
              int32_t* y) {
  const float multiplier = static_cast<float>(qa.scale) * static_cast<float>(qb.scale) *
                           (1.0f / static_cast<float>(out.scale));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t product = (a[i] - qa.zero_point) * (b[i] - qb.zero_point);
    y[i] = clamp_u8(out.zero_point + std::lrintf(static_cast<float>(product) * multiplier));
  }
}

void scalar_op(const FunctionalOptions& o, const int32_t* a, int64_t n, AffineQParams qa, AffineQParams out,
               int32_t* y) {
  if (o.op == FunctionalOp::MulScalar) {
    for (int64_t i = 0; i < n; ++i) y[i] = o.scalar > 0.0 ? a[i] : o.scalar == 0.0 ? 0 : 255 - a[i];
    return;
  }
  if (o.op != FunctionalOp::AddScalar) throw Error("scalar_op: FloatFunctional." + o.method() + " takes no scalar");
  const int64_t c_q = static_cast<int64_t>(std::nearbyint(o.scalar / qa.scale));
  if (out.scale == qa.scale && out.zero_point == qa.zero_point - c_q) {  // inside the range: the integers copied
    std::copy(a, a + n, y);
    return;
  }
  // The kernel takes c_q as an int32 (c10's checked conversion refuses more).
  if (c_q > std::numeric_limits<int32_t>::max() || c_q < std::numeric_limits<int32_t>::min())
    throw Error("value cannot be converted to type int without overflow");
  const float multiplier = static_cast<float>(qa.scale) * (1.0f / static_cast<float>(out.scale));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t c = static_cast<int32_t>(static_cast<uint32_t>(a[i] - qa.zero_point) +
                                           static_cast<uint32_t>(c_q));  // int32, wrapping as ATen's
    y[i] = clamp_u8(out.zero_point + std::lrintf(static_cast<float>(c) * multiplier));
  }
}

bool cat_takes_nhwc_kernel(const std::vector<const QTensor*>& operands, int64_t dim) {
  if (dim != 1) return false;  // as given: -3 takes the generic path
  // quantized_cat_impl's is_cat_nhwc_fast_path: every operand channels-last contiguous (held
  // so, or with one channel or one pixel, which c10 counts as such).
  for (const QTensor* q : operands)
    if (q->sizes.size() != 4 || !(q->channels_last || q->sizes[1] == 1 || q->sizes[2] * q->sizes[3] == 1)) return false;
  return true;
}

void check_nhwc_cat(const std::vector<const QTensor*>& operands) {
  const QTensor& first = *operands.at(0);
  const auto scalar_type = [](DType d) { return d == DType::QUInt8 ? "QUInt8" : d == DType::QInt8 ? "QInt8" : "QInt32"; };
  for (const QTensor* q : operands) {
    for (size_t d : {0, 2, 3})
      if (q->sizes[d] != first.sizes[d])
        throw Error("Sizes of tensors must match expect in dimension 1. Got" + std::to_string(q->sizes[d]) + " and " +
                    std::to_string(first.sizes[d]));
    if (q->qparams.dtype != first.qparams.dtype)
      throw Error(std::string("Expected object of scalar type ") + scalar_type(first.qparams.dtype) +
                  " but got scalar type " + scalar_type(q->qparams.dtype));
    if (q->qparams.per_channel())  // the kernel reads q_scale()
      throw Error("Expected quantizer->qscheme() == kPerTensorAffine to be true, but got false.  (Could this error "
                  "message be improved?  If so, please report an enhancement request to PyTorch.)");
  }
}

QTensor matmul(const QTensor& a, const QTensor& b, const QuantParams& out) {
  FunctionalOptions o;
  o.op = FunctionalOp::Matmul;
  const Tensor b_float = dequantize(b);
  return quantize(float_functional(o, dequantize(a), {&b_float}), out);
}

QTensor cat(const std::vector<const QTensor*>& operands, int64_t dim, const QuantParams& out, AtenVectorLoop loop) {
  std::vector<Shape> shapes;
  for (const QTensor* q : operands) shapes.push_back(q->sizes);
  const Shape out_shape = cat_shape(shapes, dim);
  if (!cat_takes_nhwc_kernel(operands, dim)) {
    std::vector<Tensor> floats;
    std::vector<const Tensor*> rest;
    for (const QTensor* q : operands) floats.push_back(dequantize(*q));
    for (size_t i = 1; i < floats.size(); ++i) rest.push_back(&floats[i]);
    FunctionalOptions o{FunctionalOp::Cat, 0.0, dim};
    return quantize(float_functional(o, floats[0], rest), out);
  }
  // ATen's NHWC kernel: positions (n, h, w) outermost, each operand's channels in turn.
  const int64_t positions = out_shape[0] * out_shape[2] * out_shape[3], c_out = out_shape[1];
  std::vector<int32_t> nhwc(positions * c_out);
  const float inverse_vector = static_cast<float>(1.0 / out.scale());
  const float inverse_scalar = 1.0f / static_cast<float>(out.scale());
  const int64_t vector_width = loop.block / 2;  // one Vectorized<quint8>
  int64_t offset = 0;
  for (const QTensor* q : operands) {
    const int64_t c_in = q->sizes[1];
    const bool same_qparams = q->qparams.scale() == out.scale() && q->qparams.zero_point() == out.zero_point();
    const float s = static_cast<float>(q->qparams.scale()), z = static_cast<float>(q->qparams.zero_point());
    const float premultiplied = s * -z;
    // The operand in memory order, NHWC: position p's channels at p * c_in (the identity for
    // one channel or one pixel).
    std::vector<int32_t> held(q->values.size());
    const int64_t plane = q->sizes[2] * q->sizes[3];
    for (int64_t b = 0; b < q->sizes[0]; ++b)
      for (int64_t c = 0; c < c_in; ++c)
        for (int64_t k = 0; k < plane; ++k) held[(b * plane + k) * c_in + c] = q->values[(b * c_in + c) * plane + k];
    for (int64_t p = 0; p < positions; ++p) {
      const int32_t* in = held.data() + p * c_in;
      int32_t* o = nhwc.data() + p * c_out + offset;
      if (same_qparams) {
        std::copy(in, in + c_in, o);
        continue;
      }
      // Whole vectors of quint8 channels, then whole float vectors (a quarter of that) of the rest.
      const int64_t whole = vector_width > 0 ? c_in / vector_width * vector_width : 0;
      const int64_t quarter = vector_width / 4;
      const int64_t vector_end = quarter > 0 ? whole + (c_in - whole) / quarter * quarter : whole;
      for (int64_t c = 0; c < c_in; ++c) {
        const bool vector = c < vector_end && loop.simd;
        const float x = dequantize_in(vector, in[c], s, z, premultiplied);
        o[c] = static_cast<int32_t>(
            quantize_value(x, vector ? inverse_vector : inverse_scalar, out.zero_point(), 0, 255));
      }
    }
    offset += c_in;
  }
  // back to NCHW
  QTensor y{out_shape, std::vector<int32_t>(nhwc.size()), out};
  const int64_t hw = out_shape[2] * out_shape[3];
  for (int64_t b = 0; b < out_shape[0]; ++b)
    for (int64_t c = 0; c < c_out; ++c)
      for (int64_t k = 0; k < hw; ++k) y.values[(b * c_out + c) * hw + k] = nhwc[(b * hw + k) * c_out + c];
  y.channels_last = std::any_of(operands.begin(), operands.end(), [](const QTensor* q) { return q->channels_last; });
  return y;
}

}  // namespace qconform::kernels
