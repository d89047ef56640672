#pragma once
// The integer kernel of static Linear: u8 activations x s8 weights -> int32 -> u8 output.
//
// The accumulator is dynamic_gemm.h's, (1) exact or (1') with int16 pair saturation:
//   acc[n] = sum_k (xq[k] - x_zp) * (wq[n][k] - w_zp[n])                           (1)
// then one of two requantizations, as the engine table says (both measured bit-exact
// against LibTorch 1.13's kernels on this machine):
//
// Fp32Multiplier (qnnpack's q8gemm with fp32 requantization):
//   qbias[n] = quantize_val(bias[n], scale = x_scale * w_scale[n], zero_point 0)   int32 (2a)
//              beyond int32: saturated on qnnpack's GEMM path (Linear; 1x1 convolutions with
//              stride 1 and no padding), INT32_MIN on its convolution path, in either
//              direction (the x86 "integer indefinite" of a float -> int32 conversion);
//              measured on 1-d, 2-d and 3-d convolutions and Linear
//   m[n]     = float(float(w_scale[n]) * float(x_scale)) * (1.0f / float(y_scale))  float (3a)
//              (qnnpack_utils' generate_requantization_scales: the reciprocal, not a
//              division; the two differ in the last bit, which moves exact .5 products)
//   q        = sat16(nearbyint(float(acc[n] + qbias[n]) * m[n])) + y_zp                  (4a)
//
// FloatEpilogue (oneDNN's inner product through ideep, whose scales are the reciprocals
// PyTorch passes, 1.0 / scale rounded to float; the bias is scaled into the accumulator's
// units and added there, in float):
//   r[n]     = float(1 / x_scale) * float(1 / w_scale[n])      float product        (2b)
//   m[n]     = float(1 / y_scale) / r[n]                       float quotient       (3b)
//   v        = float(acc[n]) + bias[n] * r[n]                  two float roundings  (4b)
//   q        = nearbyint(v * m[n] + float(y_zp))                                    (5b)
// Measured with plain PyTorch (onednn, ideep's cache capacity 1 so that no earlier call
// interferes): 60,000 random Linear and LinearReLU cases at tie-prone power-of-two scales and
// at random ones, per-tensor and per-channel, with and without bias, all bit-exact; the
// earlier model, (float(acc) * float(x_scale * w_scale) + bias) * float(1 / y_scale), missed
// about 1 in 1,000 ties (the LinearReLU case in docs/numerics.md among them).
//
// and in both: q = clamp(q, relu ? y_zp : 0, 255)  (ReLU fused as a lower clamp at zero). (6)
#include <cstdint>
#include <vector>

#include "core/engines.h"
#include "quantized/kernels/dynamic_gemm.h"

namespace qconform::kernels {

struct StaticLinearWeights {
  DynamicLinearWeights integers;      // wq and the per-channel zero points (its float scales unused)
  std::vector<double> scales;         // w_scale per output channel, in double as PyTorch keeps it
};

struct StaticOutput {
  double scale;
  int32_t zero_point;
  bool relu = false;
};


// What (2a) gives for a bias beyond int32 (see above).
enum class BiasOverflow { Saturate, IntegerIndefinite };

// Steps (2) and (3) of either requantization, once per call: per output channel what the
// epilogue adds and multiplies, zero-padded to whole blocks of 16 channels (the SIMD tiles
// read 16 at a time). requantize() (static_gemm.cc) and the SIMD forms
// (requantize_simd.h) apply (4)-(6) to one accumulator or to 8 or 16 of them, each step the
// same single rounding, so the same integers.
struct Requantizer {
  Requantization rule = Requantization::Fp32Multiplier;
  std::vector<int32_t> qbias;                // Fp32Multiplier: (2a), wrapped to int32 as the sum's cast wraps
  std::vector<float> bias_in_accumulator;    // FloatEpilogue: (4b)'s bias[n] * r[n]
  bool has_bias = false;
  std::vector<float> multiplier;             // (3a) or (3b)
  int32_t zero_point = 0, lowest = 0;        // y_zp; (6)'s lower clamp (y_zp with ReLU, else 0)
  // FloatEpilogue: no lane can become NaN whatever the accumulator (every multiplier finite
  // and positive, every bias finite: v * m is a number or an infinity of v's sign), so the
  // SIMD forms need no scalar fallback; false where a NaN can arise (an infinite scale's
  // 0 x inf), and then only the scalar form runs. Always true for Fp32Multiplier, whose
  // conversion gives INT32_MIN for NaN in both forms.
  bool simd_exact = true;
};
Requantizer make_requantizer(double x_scale, const StaticLinearWeights& w, const float* bias,
                             const StaticOutput& out, Requantization rule,
                             BiasOverflow bias_overflow = BiasOverflow::Saturate);
// (4)-(6) for accumulator `acc` of output channel n: the specification of the SIMD forms.
int32_t requantize(const Requantizer& r, int32_t acc, int64_t n);

// u8_accumulators' sums (dynamic_gemm.h) requantized in the tile's registers: row r's
// out_features bytes to y + r * stride (the convolution's u8 channels-last output, or a block
// of it). False where u8_accumulators would be, and where !r.simd_exact (the caller then
// takes u8_accumulators and requantize()).
bool u8_requantized(const U8Rows& x, const StaticLinearWeights& w, const Requantizer& r, uint8_t* y, int64_t stride);

// x: rows x in u8 values with (x_scale, x_zero_point) and the accumulation to use;
// writes rows x out u8 values to y. bias may be null.
void static_linear(const DynamicLinearActivation& x, double x_scale, const StaticLinearWeights& w,
                   const float* bias, const StaticOutput& out, Requantization rule, int32_t* y,
                   BiasOverflow bias_overflow = BiasOverflow::Saturate);

// Steps (4) to (6) alone, for accumulators (1) computed elsewhere (rows x out_features).
void static_requantize(const std::vector<int32_t>& acc, int64_t rows, const Requantizer& r, int64_t out_features,
                       int32_t* y);

}  // namespace qconform::kernels
