#pragma once
// LibTorch's own quantized BatchNorm behind the shared interface: the ops nnq.BatchNorm2d /
// BatchNorm3d and nniq.BNReLU2d / BNReLU3d call (quantized::batch_norm2d, batch_norm2d_relu,
// batch_norm3d, batch_norm3d_relu), with the converted module's state. No ATen in this header.
#include <memory>

#include "core/float/batchnorm.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

std::unique_ptr<Module> libtorch_batch_norm_from_float(const FloatBatchNorm& float_module, EngineProfile engine);
std::unique_ptr<Module> libtorch_batch_norm_from_reference(const StaticReference& reference, EngineProfile engine);
std::unique_ptr<Module> make_libtorch_batch_norm(const BatchNormOptions& options, const BatchNormState& state,
                                                 const QuantParams& output_qparams, EngineProfile engine, bool relu);

}  // namespace qconform
