#pragma once
// LibTorch's own nnq.Softmax behind the shared interface: quantized::softmax(input, dim,
// scale, zero_point), dim resolved as nnq.Softmax.forward does. No ATen in this header.
#include <memory>
#include <optional>

#include "core/module.h"

namespace qconform {

class FloatSoftmax;
class StaticReference;

std::unique_ptr<Module> make_libtorch_softmax(std::optional<int64_t> dim, const QuantParams& output,
                                              EngineProfile engine);
std::unique_ptr<Module> libtorch_softmax_from_float(const FloatSoftmax& float_module, EngineProfile engine);
std::unique_ptr<Module> libtorch_softmax_from_reference(const StaticReference& reference, EngineProfile engine);

}  // namespace qconform
