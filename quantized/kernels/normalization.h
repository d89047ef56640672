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
//
// LayerNorm, GroupNorm, InstanceNorm (quantized::layer_norm, group_norm, instance_norm;
// QuantizedOpKernels.cpp's quantized_normalize_kernel; instance_norm is group_norm with one
// group per channel). Per group of N integers q (core/float/normalization.h says which):
//   1. S = sum q, S2 = sum q^2, exactly (int64)
//      m    = float(S) / float(N)                        the raw integers' mean
//      mean = m - float(z_in)                            in input quanta
//      var  = max(float(S2) / float(N) - m m, 0)         in input quanta squared
//      r    = float(double(s_in) / sqrt(double((var s_in) s_in) + eps))
//   2. per element, t = float(q - z_in) - mean:
//      GroupNorm, InstanceNorm: y = t g' + beta[c], g' = r gamma[c] (once per channel)
//      LayerNorm:               y = (t r) gamma[e] + beta[e]
//      (missing gamma: 1, missing beta: 0)
//   3. q' = clamp(z_out + nearbyint(y (1 / s_out)), 0, 255), 1 / s_out in float
//
// GroupNorm and InstanceNorm on a 4-d input that is also channels-last contiguous (one
// channel, or one pixel: LibTorch's contiguous tensors then qualify) take another kernel,
// quantized_groupnorm_nhwc_kernel, whose step 2 folds the mean into a bias per channel:
//      g'[c] = r gamma[c],  b'[c] = -g'[c] mean + beta[c],  y = float(q - z_in) g'[c] + b'[c]
// (measured: a constant group then gives y - beta = d g' - round(mean g'), not 0). For
// feature maps below 512 pixels it walks its groups with the batch index wrapped at N, the
// group's size (data_index_init(begin, n, N, g, G)): samples n >= N are never written and
// hold whatever memory LibTorch was given (ModuleKind::libtorch_defect says so; the model
// computes them as the other samples). From 512 pixels it sums q and q^2 in float, per
// thread of at::parallel_for (contiguous chunks of the batch x pixel range), then over the
// threads in order: the model does the same for aten_intra_op_threads() threads.
// Contraction, measured against LibTorch on tie cases: ATen's AVX2 and AVX-512 builds fuse
// the variance's m m into the subtraction and the last product-plus-beta of step 2 into one
// FMA each, in vector lanes and scalar tails alike; its default build rounds every product
// and sum. Outputs beyond 2^31 quanta before the clamp (vector lanes wrap to level 0) are not
// modelled: they need |gamma| / s_out above 10^7.
#include <cstdint>
#include <vector>

#include "core/cpu.h"
#include "core/float/normalization.h"

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

struct NormalizeQParams {
  float input_scale;
  int32_t input_zero_point;
  float output_scale;  // as the module's float32 buffer holds it
  int32_t output_zero_point;
};

// Which of ATen's two kernels a call takes.
enum class NormalizeKernel { Contiguous, ChannelsLast };
// ChannelsLast where `shape` is 4-d with one channel or one pixel and the groups are per channel.
NormalizeKernel normalize_kernel_for(const NormalizationGroups& groups, const std::vector<int64_t>& shape);
// The samples quantized_groupnorm_nhwc_kernel leaves unwritten (those from N on, N the group's
// size, below 512 pixels); 0 when none.
int64_t nhwc_unwritten_samples(const NormalizationGroups& groups, const std::vector<int64_t>& shape);

// Whether the call sums q^2 in float (the channels-last kernel from 512 pixels on), whose
// rounding grows with the number of terms.
bool normalize_sums_in_float(const NormalizationGroups& groups, const std::vector<int64_t>& shape);

// Steps 1 to 3 over `groups`; gamma and beta: nullptr when absent, else one per channel
// (per-channel groups) or one per element of a group (LayerNorm). `shape` is the input's
// (N, C, ...) (the channels-last kernel needs the pixels per channel and the batch).
void static_normalize(const int32_t* xq, const NormalizationGroups& groups, const std::vector<int64_t>& shape,
                      const float* gamma, const float* beta, double eps, NormalizeQParams qparams,
                      AtenCapability capability, int32_t* y);

}  // namespace qconform::kernels
