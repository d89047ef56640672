#pragma once
// MaxPool2d, AvgPool2d and AdaptiveAvgPool2d on quint8 tensors, the true-integer
// implementation. PyTorch 1.13's eager convert leaves the float module in place (none of
// them is in the static mappings) and calls it on the quantized tensor: ATen's quantized
// kernels then run, keeping the input's qparams. Same names, reprs and (empty) state_dicts
// as the float modules. Which kernel runs and its numerics: quantized/kernels/pooling.h.
#include <memory>

#include "core/float/pooling.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

class QuantizedPooling : public Module, public ChannelsLastBytesForward {
 public:
  QuantizedPooling(PoolingOptions options, EngineProfile engine) : options_(std::move(options)), engine_(engine) {}
  static std::unique_ptr<QuantizedPooling> from_float(const FloatPooling& float_module, EngineProfile engine);
  static std::unique_ptr<QuantizedPooling> from_reference(const StaticReference& reference, EngineProfile engine);

  std::string name() const override { return options_.float_name(); }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override { state.check_keys({}, name()); }
  const PoolingOptions& options() const { return options_; }

  // A max pool that takes ATen's Max kernel (not QNNPACK's) on a 4-d input as LibTorch holds
  // it: forward's integers, channels side by side; none for the other kinds.
  std::optional<U8ChannelsLast> channels_last_output(const std::vector<U8ChannelsLast>& x) const override;
  void forward_channels_last(const std::vector<U8ChannelsLast>& x, uint8_t* y) const override;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  PoolingOptions options_;
  EngineProfile engine_;
};

}  // namespace qconform
