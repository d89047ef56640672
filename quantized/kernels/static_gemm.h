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

// x: rows x in u8 values with (x_scale, x_zero_point) and the accumulation to use;
// writes rows x out u8 values to y. bias may be null.
void static_linear(const DynamicLinearActivation& x, double x_scale, const StaticLinearWeights& w,
                   const float* bias, const StaticOutput& out, Requantization rule, int32_t* y,
                   BiasOverflow bias_overflow = BiasOverflow::Saturate);

// Steps (2) to (6) alone, for accumulators (1) computed elsewhere (rows x out; onednn's
// convolutions, whose zero-point term skips the padding: quantized/static/conv.cc).
void static_requantize(const std::vector<int32_t>& acc, int64_t rows, double x_scale, const StaticLinearWeights& w,
                       const float* bias, const StaticOutput& out, Requantization rule, int32_t* y,
                       BiasOverflow bias_overflow = BiasOverflow::Saturate);

}  // namespace qconform::kernels
