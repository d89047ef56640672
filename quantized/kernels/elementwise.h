#pragma once
// The integer forms of PyTorch 1.13's static activations on quint8 tensors, as ATen's own
// kernels compute them (aten/src/ATen/native/quantized/cpu/kernels/QuantizedOpKernels.cpp,
// through cpu_kernel_vec): the kernels every engine runs for these ops (measured: qnnpack's
// and onednn's answers are identical for each; docs/numerics.md, "Static activations").
//
// Integer ops, on the input's qparams:
//   ReLU:     q' = max(q, z)
//   ReLU6:    q' = min(max(q, z), q6),  q6 = quantize(6.0) with the input's qparams
//   Dropout:  q' = q                    (evaluation mode)
//
// Float ops, per element of a contiguous tensor of n elements, in this order:
//   1. x = dequantize(q):  vector part  fma(float(q), s, float(s * -z))   one rounding
//                          scalar part  (float(q) - float(z)) * s         one rounding
//   2. y = f(x):           vector part  ATen's Vectorized<float> forms (Sleef's 1-ulp exp
//                                       and tanh, a float division for reciprocals)
//                          scalar part  the C library's expf / tanhf, in the op's own
//                                       precision (sigmoid adds and divides in double)
//   3. q' = clamp(z' + nearbyint(y * (1.0f / s')), 0, 255)
// The vector part is the first floor(n / B) * B elements, B two of ATen's quint8 vectors:
// 64 elements on its AVX2 build, 128 on AVX-512. ATen's default build (no AVX2, or
// ATEN_CPU_CAPABILITY=default) has a vector part of 64 too, in plain C++: there step 1 is the
// scalar form and step 2 the C library's functions in float arithmetic.
#include <cstdint>

#include "core/cpu.h"
#include "core/float/activation.h"

namespace qconform::kernels {

// ATen's vectorised loop on this CPU: the vector part's length unit B, and its forms.
struct AtenVectorLoop {
  int64_t block = 64;
  bool simd = true;  // FMA and Sleef (AVX2, AVX-512); false: ATen's plain C++ vectors
  static AtenVectorLoop of(AtenCapability capability = aten_cpu_capability());
  static AtenVectorLoop scalar_only() { return {0, false}; }  // every element the scalar forms
};

struct AffineQParams {
  double scale;
  int32_t zero_point;
};

// y[i] for the n values xq (quint8 integers) of the op, with input qparams `in` and output
// qparams `out` (ignored by the integer ops, which keep `in`).
void static_activation(const ActivationOptions& op, const int32_t* xq, int64_t n, AffineQParams in,
                       AffineQParams out, AtenVectorLoop loop, int32_t* y);

// On the qnnpack engine LibTorch 1.13 sends quint8 Sigmoid, Tanh, Hardsigmoid and Hardswish
// to QNNPACK's lookup-table operators (measured: where the table and ATen's kernels part,
// LibTorch's qnnpack gives the table's level; LeakyReLU, ELU and the integer ops stay ATen's).
// Each table entry i, in float arithmetic as QNNPACK builds it:
//   x = float(s) * float(i - z)
//   Sigmoid:     lrintf(clamp(256.0f / (1.0f + expf(-x))))                  (output 1/256, 0)
//   Tanh:        lrintf(clamp(float(128.0 * tanh(double(x)) + 128.0)))      (output 2/256, 128)
//   Hardsigmoid: lrintf(clamp((1 / s') * (min(max(x + 3, 0), 6) / 6) + z'))
//   Hardswish:   lrintf(clamp((1 / s') * (x * min(max(x + 3, 0), 6) / 6) + z'))
// clamped to [0, 255] before rounding; y = table[q].
bool uses_qnnpack_table(ActivationOp op);
void qnnpack_table_activation(const ActivationOptions& op, const int32_t* xq, int64_t n, AffineQParams in,
                              AffineQParams out, int32_t* y);

}  // namespace qconform::kernels
