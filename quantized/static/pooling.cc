#include "quantized/static/pooling.h"

#include <stdexcept>

#include "quantized/kernels/pooling.h"
#include "quantized/static/activation.h"
#include "reference/static.h"

namespace qconform {

std::unique_ptr<QuantizedPooling> QuantizedPooling::from_float(const FloatPooling& float_module, EngineProfile engine) {
  return std::make_unique<QuantizedPooling>(float_module.options(), engine);
}

std::unique_ptr<QuantizedPooling> QuantizedPooling::from_reference(const StaticReference& reference,
                                                                   EngineProfile engine) {
  return from_float(dynamic_cast<const FloatPooling&>(reference.module()), engine);
}

ModuleOutput QuantizedPooling::forward(const ModuleInput& input) {
  const QTensor& x = expect_quint8_input(input, name());
  const kernels::PoolingKernel kernel = kernels::pooling_kernel(options_, engine_.engine, x.sizes, x.channels_last);
  const Shape out_shape = kernels::quantized_pooled_shape(options_, kernel, x.sizes);
  QTensor y{out_shape, std::vector<int32_t>(numel_of(out_shape)), x.qparams};
  kernels::quantized_pool(options_, kernel, x.values.data(), x.sizes, x.qparams.scale(),
                          static_cast<int32_t>(x.qparams.zero_point()), y.values.data(), out_shape);
  return {std::move(y), std::nullopt};
}

std::optional<U8ChannelsLast> QuantizedPooling::channels_last_output(const std::vector<U8ChannelsLast>& x) const {
  if (x.size() != 1 || x[0].sizes.size() != 4 ||
      kernels::pooling_kernel(options_, engine_.engine, x[0].sizes, true) != kernels::PoolingKernel::Max)
    return std::nullopt;
  // The max pool keeps the input's qparams (as forward).
  return U8ChannelsLast{kernels::quantized_pooled_shape(options_, kernels::PoolingKernel::Max, x[0].sizes), x[0].scale,
                        x[0].zero_point, nullptr};
}

void QuantizedPooling::forward_channels_last(const std::vector<U8ChannelsLast>& x, uint8_t* y) const {
  const std::optional<U8ChannelsLast> output = channels_last_output(x);
  if (!output) throw std::logic_error(name() + ": forward_channels_last on operands it does not take");
  kernels::max_pool_channels_last(options_, x[0].bytes, x[0].sizes, y, output->sizes);
}

}  // namespace qconform
