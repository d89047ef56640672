#pragma once
// quantized::softmax (nnq.Softmax) of PyTorch 1.13 on quint8 tensors, along one dimension.
//
//   qnnpack engine, per-tensor quint8 input, output qparams exactly (1/256, 0): QNNPACK's
//   soft-argmax, all integers after one table (measured: LibTorch's qnnpack follows it where
//   ATen's float softmax would round otherwise):
//     1. t[i] = lrint(q * exp((i - 255) * float(s))) for i in 0..255, in double,
//        q = min((2^32 - 1) / C, 2^23 - 1), C the dimension's size
//     2. per row: m = max q; e_k = t[q_k + 255 - m]; S = sum e_k        (uint32)
//     3. y_k = min(255, (256 e_k + floor(S / 2)) / S)                     (integer division)
//   otherwise ATen's float path: dequantize, at::softmax, quantize_per_tensor. ATen's softmax
//   reduces in vector lanes whose order, and whose split between vector and scalar code,
//   depends on its build and its threads' chunks; the model is softmax in float (max, exp of
//   the difference, a running sum, a division) and meets it within float roundings (the
//   tolerance table states it; docs/numerics.md, "Softmax").
#include <cstdint>

#include "core/tensor.h"

namespace qconform::kernels {

// Whether quantized::softmax takes QNNPACK's soft-argmax (engine qnnpack checked by the caller).
bool softmax_takes_qnnpack(const QuantParams& input, const QuantParams& output, int64_t rank);

// y (shape of x) along `dim` (in range), with output qparams `out`.
void qnnpack_softmax(const QTensor& x, int64_t dim, int32_t* y);
void aten_softmax(const QTensor& x, int64_t dim, const QuantParams& out, int32_t* y);

// QNNPACK's table scale q for a dimension of `channels` (step 1).
double qnnpack_softmax_table_scale(int64_t channels);

}  // namespace qconform::kernels
