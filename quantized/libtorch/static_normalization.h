#pragma once
// LibTorch's own quantized LayerNorm, GroupNorm and InstanceNorm{1,2,3}d behind the shared
// interface: the ops the nnq modules call (quantized::layer_norm, group_norm,
// instance_norm), with the converted module's state. No ATen in this header.
#include <memory>
#include <optional>

#include "core/float/normalization.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

std::unique_ptr<Module> make_libtorch_normalization(const NormalizationOptions& options,
                                                    const std::optional<Tensor>& weight,
                                                    const std::optional<Tensor>& bias,
                                                    const QuantParams& output_qparams, EngineProfile engine);
std::unique_ptr<Module> libtorch_normalization_from_float(const FloatNormalization& float_module, EngineProfile engine);
std::unique_ptr<Module> libtorch_normalization_from_reference(const StaticReference& reference, EngineProfile engine);

}  // namespace qconform
