#pragma once
// LibTorch's own static convolutions behind the shared interface: quantized::conv{n}d_prepack
// and quantized::conv{n}d / conv{n}d_relu, as nnq.Conv{n}d and nniq.ConvReLU{n}d call them;
// the state_dict unpacks with quantized::conv{n}d_unpack, so an engine that cannot unpack
// (qnnpack for 3-d: "QNNPACK only supports conv2d_unpack right now.") refuses it with
// LibTorch's own message. No ATen in this header.
#include <memory>
#include <optional>

#include "core/float/conv.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

std::unique_ptr<Module> make_libtorch_static_conv(const ConvOptions& options, const QTensor& weight,
                                                  const std::optional<Tensor>& bias, double scale,
                                                  int64_t zero_point, EngineProfile engine, bool fused_relu);
std::unique_ptr<Module> libtorch_static_conv_from_float(const FloatConv& float_conv, EngineProfile engine);
std::unique_ptr<Module> libtorch_static_conv_from_reference(const StaticReference& reference, EngineProfile engine);

}  // namespace qconform
