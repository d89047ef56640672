#pragma once
// The integer forms of PyTorch 1.13's quantized normalizations, as ATen computes them on
// every engine (no engine has its own kernel for these ops).
//
// BatchNorm (quantized::batch_norm{2d,3d}[_relu]; qbatch_norm.cpp, q_batch_norm_kernel):
//   1. per channel c, once, in ATen's mix of float and double (compute_fused_params):
//        inv_sigma = float(1.0 / double(sqrtf(var[c] + float(eps))))
//        alpha[c]  = float(double(inv_sigma * w[c]) * (s_in / s_out))
//        beta[c]   = float(double(b[c] - (mean[c] * inv_sigma) * w[c]) / s_out)
//   2. per element, y = alpha[c] * float(q - z_in) + beta[c]:
//        AVX2 and AVX-512 builds: one fused multiply-add (the vector lanes use vfmadd, and
//          the compiler contracts the scalar tail's a * x + b too: measured, every element)
//        default build: a product and a sum, two roundings
//   3. q' = clamp(z_out + nearbyint(y), 0, 255); BNReLU: max(q', z_out) before the clamp.
//      A vector lane converts y to int32 (cvtps2dq): |y| >= 2^31 (or NaN) becomes INT_MIN,
//      so level 0; a scalar lane converts to int64 (lrintf). Which lanes are vector, per
//      pixel of C channels: AVX2 and default, the first 32 floor(C / 32) channels, then 8
//      floor(r / 8) of the remaining r; AVX-512 the first 64 floor(C / 64).
#include <cstdint>
#include <vector>

#include "core/cpu.h"

namespace qconform::kernels {

struct BatchNormAffine {
  std::vector<float> alpha, beta;  // per channel, in output quanta
};

// Step 1. `weight`, `bias`, `mean`, `var`: one float per channel.
BatchNormAffine batch_norm_affine(const std::vector<float>& weight, const std::vector<float>& bias,
                                  const std::vector<float>& mean, const std::vector<float>& var, double eps,
                                  double input_scale, double output_scale);

// Steps 2 and 3 over an NC(spatial) tensor of `batch` images, `channels` channels and `plane`
// positions per channel.
void static_batch_norm(const int32_t* xq, int64_t batch, int64_t channels, int64_t plane, int32_t input_zero_point,
                       int32_t output_zero_point, const BatchNormAffine& affine, bool relu,
                       AtenCapability capability, int32_t* y);

}  // namespace qconform::kernels
