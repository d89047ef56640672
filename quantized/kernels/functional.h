#pragma once
// PyTorch 1.13's QFunctional ops on quint8 per-tensor tensors, as ATen and QNNPACK compute
// them (aten/src/ATen/native/quantized/cpu/qadd.cpp, qmul.cpp, qconcat.cpp, kernels/
// QuantizedOpKernels.cpp; QNNPACK's q8vadd). Operands of one shape (broadcasting is not
// modelled: the module refuses it). With (s_a, z_a), (s_b, z_b) the operands' qparams and
// (s, z) the output's:
//
//   add, add_relu, qnnpack engine, same shapes (QNNPACK's add operator, fixed point):
//     1. e = exponent of max(s_a / s, s_b / s) (floats); shift = 21 - e (13 to 31)
//     2. m_a = lrintf(s_a / s * 2^shift), m_b likewise     (22-bit multipliers)
//     3. acc = m_a q_a + m_b q_b - (m_a z_a + m_b z_b)     (int32, wrapping)
//     4. q = acc >> shift, rounded half away from zero (remainder against 2^(shift-1))
//     5. y = clamp(q + z, add_relu ? z : 0, 255)
//   add, add_relu, other engines (ATen's qadd_kernel, through its vectorised loop: the
//   elements in whole blocks of B (quantized/kernels/elementwise.h) take the vector forms):
//     1. a = dequantize(q_a), b = dequantize(q_b)      vector: fma(float(q), s, s * -z)
//                                                      scalar: (float(q) - z) * s
//     2. c = a + b (add_relu: max(c, 0))
//     3. y = clamp(rint(c * (1.0f / s)) + z)
//   mul (ATen's qmul_kernel, every engine; both forms the same):
//     m = float(s_a) * float(s_b) * (1.0f / float(s)),  y = clamp(z + rint(float((q_a - z_a)(q_b - z_b)) * m))
//   add_scalar c (every engine): c_q = nearbyint(c / s_a) and the output qparams of
//     core/float/functional.h; inside the range the integers are copied; otherwise
//     m = float(s_a) * (1.0f / float(s)), y = clamp(z + rint(float(q_a - z_a + c_q) * m))
//   mul_scalar c: c > 0 copies the integers, c = 0 gives 0s, c < 0 gives 255 - q_a
//   matmul (quantized::matmul without ruy): a' = dequantize(a), b' = dequantize(b) (core/quantize.h),
//     per batch y = a' b' in float, each sum in k's order, then quantize(y, out)
//   cat (quantized_cat_impl):
//     dim == 1 and every operand 4-d and channels-last contiguous too (C = 1 or H = W = 1):
//       ATen's NHWC kernel, per operand and position: the integers copied where the
//       operand's qparams equal the output's; otherwise the first floor(C / V) V channels
//       (V = 32 on AVX2, 64 on AVX-512; the default build's vectors compute as its scalars)
//       in the vector forms (FMA dequantize, times float(1.0 / s) taken in double), then
//       whole blocks of V / 4 of the remaining channels the same way, the rest in the scalar
//       forms (dequantize_val, quantize_val)
//     otherwise: dequantize each (core/quantize.h), concatenate, quantize (the same
//       integers as the reference's)
#include <cstdint>
#include <vector>

#include "core/float/functional.h"
#include "core/tensor.h"
#include "quantized/kernels/elementwise.h"

namespace qconform::kernels {

// QNNPACK's add requantization (steps 1 and 2 above).
struct QnnpackAddParams {
  uint32_t shift;
  int32_t a_multiplier;
  int32_t b_multiplier;
};
// Error, with PyTorch's message, where QNNPACK refuses to create the operator (an
// input-to-output scale ratio outside [2^-14, 2^8)).
QnnpackAddParams qnnpack_add_params(double a_scale, double b_scale, double out_scale);

// The binary ops (add, add_relu, mul) on n elements each.
void qnnpack_add(const int32_t* a, const int32_t* b, int64_t n, AffineQParams qa, AffineQParams qb,
                 AffineQParams out, bool relu, int32_t* y);
void aten_add(const int32_t* a, const int32_t* b, int64_t n, AffineQParams qa, AffineQParams qb, AffineQParams out,
              bool relu, AtenVectorLoop loop, int32_t* y);
// aten_add on two channels-last 4-d operands held channel-major (QTensor's order): ATen walks
// them in memory order, so its scalar tail is the last elements of NHWC order. The same
// integers as transposing both to NHWC, aten_add, and transposing back.
void aten_add_channels_last(const int32_t* a, const int32_t* b, const Shape& sizes, AffineQParams qa,
                            AffineQParams qb, AffineQParams out, bool relu, AtenVectorLoop loop, int32_t* y);
// qnnpack_add and aten_add on u8 operands as they lie in memory (a channels-last tensor's N,
// H, W, C order, where ATen's scalar tail is the last elements): the same integers, a chunk at
// a time widened through the int32 kernels.
void qnnpack_add_u8(const uint8_t* a, const uint8_t* b, int64_t n, AffineQParams qa, AffineQParams qb,
                    AffineQParams out, bool relu, uint8_t* y);
void aten_add_u8(const uint8_t* a, const uint8_t* b, int64_t n, AffineQParams qa, AffineQParams qb, AffineQParams out,
                 bool relu, AtenVectorLoop loop, uint8_t* y);
void aten_mul(const int32_t* a, const int32_t* b, int64_t n, AffineQParams qa, AffineQParams qb, AffineQParams out,
              int32_t* y);
// add_scalar and mul_scalar: `out` from scalar_op_output_qparams.
void scalar_op(const FunctionalOptions& options, const int32_t* a, int64_t n, AffineQParams qa, AffineQParams out,
               int32_t* y);

// cat: whether ATen takes its NHWC kernel, that kernel's own checks of the operands (its
// messages, in its order: sizes of dimensions 0, 2, 3, the dtype, then per-tensor qparams),
// and the concatenation either way.
QTensor matmul(const QTensor& a, const QTensor& b, const QuantParams& out);

bool cat_takes_nhwc_kernel(const std::vector<const QTensor*>& operands, int64_t dim);
void check_nhwc_cat(const std::vector<const QTensor*>& operands);
QTensor cat(const std::vector<const QTensor*>& operands, int64_t dim, const QuantParams& out, AtenVectorLoop loop);

}  // namespace qconform::kernels
