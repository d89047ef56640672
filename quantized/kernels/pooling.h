#pragma once
// PyTorch 1.13's quantized MaxPool2d, AvgPool2d and AdaptiveAvgPool2d on quint8 tensors, as
// ATen dispatches them (aten/src/ATen/native/quantized/cpu/Pooling.cpp, AveragePool2d.cpp,
// AdaptiveAveragePooling.cpp, kernels/QuantizedOpKernels.cpp and QNNPACK's pooling
// operators). Every kernel keeps the input's qparams for its output. Which kernel runs
// depends on the engine, the configuration and the input's memory layout: an (N, C, H, W)
// contiguous tensor with C = 1 or H = W = 1 is also channels-last contiguous, and ATen
// then takes its NHWC kernels.
//
// With q the input integers, z the zero point, and a window W of an output element
// (core/float/pooling.h: Window1d), each kernel computes, in this order:
//
//   Max (ATen's q_maxpool_2d):  y = max over the in-bounds taps of q (0 for none)
//   QnnpackMax (qnnpack engine, no ceil_mode): y = max over all kH kW taps, each row and
//       column clamped to the input (a padding tap reads the nearest input element: the same
//       answer as Max unless dilation takes that element out of the window)
//   AvgNchw (avg_pool2d_out_frame):
//       1. acc = sum_W q - |W| z                         (int32, exact)
//       2. m = float(1 / d)                              (d: avg_divisor; input scale = output scale)
//       3. y = clamp(nearbyint(float(acc) * m + z))       (float product, float sum, round to even)
//   AvgNhwc (qavg_pool2d_nhwc_kernel): steps 1 and 2, then
//       3. y = clamp(rint(float(acc) * m) + z)            (round, then add the zero point)
//       (ATen's vector channel blocks multiply by m, its other channels by 1 / (1 / m) in
//       float; for m = float(1 / d) that is m again, for every d below 2 * 10^6, so the
//       two forms are one here. The zero point's side of the rounding is what differs from
//       AvgNchw: at a tie with an odd z.)
//   AvgQnnpack (QNNPACK, qnnpack engine, quint8, 4-D, no ceil_mode; it ignores
//   count_include_pad=False and divisor_override, and pads with z):
//       1. acc = sum over the kernel's kH kW taps of (q - z), padding taps 0
//       2. scale = float(s) / (float(s) * float(kH kW))
//       3. y = clamp(rint(float(acc) * scale) + z)
//   AdaptiveNchw (adaptive_avg_pool_single_out_frame):
//       y = nearbyint(float(sum_W q) * r),  r = (1.0f / kH) / kW in float  (no zero point, no clamp)
//   AdaptiveNhwc: acc = sum_W q - |W| z, m = float(1 / |W|),
//       y = clamp(z + rint(float(acc) * m))    (1 / (1 / m) = m, as above)
//   AdaptiveQnnpack (qnnpack engine, quint8, input divisible by the output, not the
//   identity): AvgQnnpack with kernel = stride = input / output, no padding.
#include <cstdint>
#include <string>

#include "core/engines.h"
#include "core/float/pooling.h"

namespace qconform::kernels {

enum class PoolingKernel { Max, QnnpackMax, AvgNchw, AvgNhwc, AvgQnnpack, AdaptiveNchw, AdaptiveNhwc, AdaptiveQnnpack };
std::string to_string(PoolingKernel kernel);  // "qnnpack-max", "avg-nhwc", ...

// The kernel ATen 1.13 dispatches the op on `input` (quint8) to under `engine`; its NHWC
// kernels take an input held channels-last, or one that is channels-last contiguous too.
PoolingKernel pooling_kernel(const PoolingOptions& options, Engine engine, const Shape& input, bool channels_last);

// The output shape, with the checks of that kernel's path in its order and PyTorch's
// messages (they differ between paths: the float module's are core/float/pooling.h's).
// Error names what is wrong; an AvgNchw / AvgNhwc output may be empty, as ATen's.
Shape quantized_pooled_shape(const PoolingOptions& options, PoolingKernel kernel, const Shape& input);

// y (shaped quantized_pooled_shape) from x, the quint8 integers of a contiguous tensor of
// `input` shape with zero point `zero_point` and scale `scale`.
void quantized_pool(const PoolingOptions& options, PoolingKernel kernel, const int32_t* x, const Shape& input,
                    double scale, int32_t zero_point, int32_t* y, const Shape& output);

// The Max kernel on quint8 images held channels-last (N, H, W, C bytes; `input` is (N, C, H, W)
// and `output` from quantized_pooled_shape): the same integers as quantized_pool's, each
// position's channels side by side.
void max_pool_channels_last(const PoolingOptions& options, const uint8_t* x, const Shape& input, uint8_t* y,
                            const Shape& output);

}  // namespace qconform::kernels
