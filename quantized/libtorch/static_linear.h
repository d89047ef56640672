#pragma once
// LibTorch's own static Linear (quantized::linear_prepack + quantized::linear /
// linear_relu) behind the shared Module interface, on qnnpack and onednn. No ATen here.
#include <memory>
#include <optional>

#include "core/float/linear.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

std::unique_ptr<Module> make_libtorch_static_linear(const QTensor& weight, const std::optional<Tensor>& bias,
                                                    double scale, int64_t zero_point, EngineProfile engine,
                                                    bool fused_relu);
std::unique_ptr<Module> libtorch_static_linear_from_float(const FloatLinear& float_linear, EngineProfile engine);
std::unique_ptr<Module> libtorch_static_linear_from_reference(const StaticReference& reference, EngineProfile engine);

}  // namespace qconform
