#pragma once
// LibTorch's own quantized MaxPool2d, AvgPool2d and AdaptiveAvgPool2d behind the shared
// interface: the float modules' calls on a quantized tensor (aten::max_pool2d,
// aten::avg_pool2d, aten::adaptive_avg_pool2d), which ATen dispatches to its quantized
// kernels or QNNPACK's by the engine. No ATen in this header.
#include <memory>

#include "core/float/pooling.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

std::unique_ptr<Module> make_libtorch_static_pooling(const PoolingOptions& options, EngineProfile engine);
std::unique_ptr<Module> libtorch_static_pooling_from_float(const FloatPooling& float_module, EngineProfile engine);
std::unique_ptr<Module> libtorch_static_pooling_from_reference(const StaticReference& reference, EngineProfile engine);

}  // namespace qconform
