#pragma once
// LibTorch's own static activations and Dropout on quint8 tensors behind the shared
// interface: the ops the converted modules call (aten::relu, quantized::relu6,
// quantized::leaky_relu, quantized::hardswish, quantized::elu, aten::sigmoid,
// aten::hardsigmoid, aten::tanh; nnq.Dropout returns its input). No ATen in this header.
#include <memory>
#include <optional>

#include "core/float/activation.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

// `observed`: the output qparams of an Observed op (quantized/static/activation.h).
std::unique_ptr<Module> make_libtorch_static_activation(const ActivationOptions& options,
                                                        const std::optional<QuantParams>& observed,
                                                        EngineProfile engine);
std::unique_ptr<Module> libtorch_static_activation_from_float(const FloatActivation& float_module, EngineProfile engine);
std::unique_ptr<Module> libtorch_static_activation_from_reference(const StaticReference& reference,
                                                                  EngineProfile engine);

}  // namespace qconform
