#pragma once
// The arithmetic of fuse_modules (torch.nn.utils.fusion in PyTorch 1.13): a BatchNorm in
// evaluation mode folded into the convolution or linear layer before it, so that one
// integer kernel computes both after quantization. Per output channel c:
//
//   r[c]  = rsqrt(running_var[c] + eps)                       (float32: eps rounded to float)
//   conv:    w'[c] = w[c] * (gamma[c] * r[c])
//            b'[c] = ((b[c] - running_mean[c]) * r[c]) * gamma[c] + beta[c]
//   linear:  s[c]  = gamma[c] * r[c]
//            w'[c] = w[c] * s[c]
//            b'[c] = (b[c] - running_mean[c]) * s[c] + beta[c]
//
// each step one float32 operation, in this order (the two functions group the products
// differently, as PyTorch's do; a missing conv bias is zeros, a missing gamma ones and beta
// zeros for the convolution). A transposed convolution's output channels are its weight's
// dimension 1. Sizes broadcast as ATen broadcasts them (a BatchNorm of one feature scales
// every channel) and otherwise fail with ATen's message; the result is bit for bit
// PyTorch's (tests/test_fuse.cc, against fixtures/core/fuse.json).
#include <optional>

#include "core/float/batchnorm.h"
#include "core/float/parameters.h"

namespace qconform {

// fuse_conv_bn_weights(conv_w, conv_b, bn.running_mean, bn.running_var, bn.eps, bn.weight,
// bn.bias, transpose).
WeightAndBias fold_batch_norm_into_conv(const Tensor& weight, const std::optional<Tensor>& bias,
                                        const FloatBatchNorm& bn, bool transposed);
// fuse_linear_bn_weights(linear_w, linear_b, bn.running_mean, bn.running_var, bn.eps,
// bn.weight, bn.bias).
WeightAndBias fold_batch_norm_into_linear(const Tensor& weight, const std::optional<Tensor>& bias,
                                          const FloatBatchNorm& bn);

}  // namespace qconform
