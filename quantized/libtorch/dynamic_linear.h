#pragma once
// LibTorch's own dynamic Linear (quantized::linear_prepack + quantized::linear_dynamic)
// behind the shared Module interface: the external implementation the oracles compare
// with, on the engines Debian's LibTorch has (qnnpack, onednn). No ATen in this header.
#include <memory>
#include <optional>

#include "core/float/linear.h"
#include "core/module.h"

namespace qconform {

class ReferenceLinear;

// Prepacks on `engine`; throws Error with LibTorch's own message if the engine rejects
// the weight (that message is what rejection parity compares).
std::unique_ptr<Module> make_libtorch_dynamic_linear(const QTensor& weight,
                                                     const std::optional<Tensor>& bias,
                                                     EngineProfile engine, bool fused_relu = false);
std::unique_ptr<Module> libtorch_dynamic_linear_from_float(const FloatLinear& float_linear,
                                                           EngineProfile engine);
std::unique_ptr<Module> libtorch_dynamic_linear_from_reference(const ReferenceLinear& reference,
                                                               EngineProfile engine);

}  // namespace qconform
