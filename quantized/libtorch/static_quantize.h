#pragma once
// LibTorch's own quantize and dequantize behind the shared interface: nnq.Quantize's
// torch.quantize_per_tensor and nnq.DeQuantize's Tensor.dequantize (aten::quantize_per_tensor,
// aten::dequantize). No ATen in this header.
#include <memory>

#include "core/module.h"

namespace qconform {

std::unique_ptr<Module> make_libtorch_quantize(const QuantParams& qparams);
std::unique_ptr<Module> make_libtorch_dequantize();

}  // namespace qconform
