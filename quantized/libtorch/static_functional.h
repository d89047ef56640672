#pragma once
// LibTorch's own QFunctional ops behind the shared interface: quantized::add, add_relu, mul,
// add_scalar, mul_scalar and cat, called as nnq.QFunctional's methods call them. No ATen in
// this header.
#include <memory>

#include "core/float/functional.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

std::unique_ptr<Module> make_libtorch_static_functional(const FunctionalOptions& options, const QuantParams& output,
                                                        EngineProfile engine);
std::unique_ptr<Module> libtorch_static_functional_from_float(const FloatFunctionalOp& float_module,
                                                              EngineProfile engine);
std::unique_ptr<Module> libtorch_static_functional_from_reference(const StaticReference& reference,
                                                                  EngineProfile engine);

}  // namespace qconform
