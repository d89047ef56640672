#pragma once
// quantize / dequantize / fake_quantize with PyTorch 1.13's arithmetic, step for step.
// The float operations and their order are part of the specification: a different
// but "mathematically equal" formula (dividing by scale instead of multiplying by the
// float reciprocal, dequantizing per-channel in float instead of double) changes
// results at rounding ties. tests/test_quantize_libtorch.cc checks every path against
// at::quantize_per_tensor / quantize_per_channel / dequantize.
#include <algorithm>
#include <cstdint>

#include "core/qparams.h"
#include "core/tensor.h"

namespace qconform {

// q = clamp(zero_point + nearbyint(x * (1.0f / float(scale))), quant_min, quant_max)  (2)
// The product is float32 and rounds half to even; the sum is float32 as in PyTorch's
// quantize_val (int64 + float promotes to float). A NaN, an infinity or a sum beyond
// int64 converts to INT64_MIN as x86's cvttss2si does, and then clamps to quant_min.
int64_t quantize_value(float x, float inverse_scale, int64_t zero_point, int64_t quant_min,
                       int64_t quant_max);

// oneDNN's reorder of float activations to u8 (observed live at exact ties):
// q = clamp(nearbyint(float(x * float(1.0 / scale)) + float(zero_point)), ...)       (2')
// The reciprocal is taken in double and rounded once; the zero point is added before
// rounding, so at ties an odd zero point rounds the other way than (2).
int64_t quantize_value_shift_then_round(float x, float inverse_scale, int64_t zero_point,
                                        int64_t quant_min, int64_t quant_max);

// (2) or (2') on n values at once, out[i] equal to the scalar function's result for every
// input (NaN, infinities and values beyond int64 included); 8 at a time with AVX2, for the
// dynamic modules' activations. quant_min and quant_max must fit int32.
enum class RoundingStep { BeforeZeroPoint /* (2) */, AfterZeroPoint /* (2') */ };
void quantize_values(const float* x, int64_t n, float inverse_scale, int64_t zero_point, int64_t quant_min,
                     int64_t quant_max, RoundingStep rounding, int32_t* out);

// The same integers as bytes, for a range within 0..255 (the dynamic modules' activations,
// which go straight to the u8 rows the integer kernels read); 32 at a time with AVX2.
void quantize_values_u8(const float* x, int64_t n, float inverse_scale, int64_t zero_point, int64_t quant_min,
                        int64_t quant_max, RoundingStep rounding, uint8_t* out);

// per_channel_affine_float_qparams (embeddings):
// q = clamp(int32(lrintf(x * inv + zero_point)), quant_min, quant_max), inv = 1/scale (1 if 0)
// where int32() keeps the low 32 bits, as PyTorch's int variable does            (3)
int64_t quantize_value_float_qparams(float x, float scale, float zero_point, int64_t quant_min,
                                     int64_t quant_max);

// Rounds to IEEE half (round to nearest even, overflow to infinity) and back.
uint16_t float_to_half_bits(float x);
float half_bits_to_float(uint16_t bits);

// Throws qconform::Error (via validate) if qparams do not fit the tensor.
QTensor quantize(const Tensor& x, const QuantParams& qparams);
// per-tensor:  x = float(q - zero_point) * float(scale)   int32 difference, float32 (4)
//   PyTorch 1.13 takes the difference in int32 and lets it wrap (its SIMD kernel), so a
//   qint32 value within |zero_point| of the int32 limits dequantizes with the wrong sign.
//   That is a PyTorch defect; the harness reproduces it because it specifies PyTorch.
// per-channel: x = float(double(q - zero_point) * scale)               in float64   (5)
// float qparams: x = (float(q) - zero_point) * scale                    in float32   (6)
Tensor dequantize(const QTensor& q);
// dequantize(quantize(x)) in one pass; equals PyTorch's fake_quantize_per_{tensor,channel}
// _affine whenever |q - zero_point| < 2^24 (always, for 8-bit dtypes).
Tensor fake_quantize(const Tensor& x, const QuantParams& qparams);

// The number of elements per channel slice and the channel of flat index i, for a
// row-major tensor quantized along `axis`.
struct ChannelIndexer {
  int64_t inner = 1;     // product of the sizes after `axis`
  int64_t channels = 1;  // size along `axis`
  ChannelIndexer(const Shape& sizes, int64_t axis);
  int64_t channel_of(int64_t flat_index) const { return (flat_index / inner) % channels; }
  // f(begin, end, channel) for each run of `inner` consecutive elements of one channel among
  // the first n, in order: the loops over a tensor without a division per element.
  template <typename F>
  void for_each_run(int64_t n, F&& f) const {
    for (int64_t begin = 0, c = 0; begin < n; begin += inner, c = c + 1 == channels ? 0 : c + 1)
      f(begin, std::min(begin + inner, n), c);
  }
};

}  // namespace qconform
