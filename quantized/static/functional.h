#pragma once
// torch.ao.nn.quantized.QFunctional ("QFunctional"), one op per module: what PyTorch 1.13's
// eager convert swaps in for a FloatFunctional, the true-integer implementation. It holds
// the observed output scale and zero point (its state_dict: "scale" float32 and "zero_point"
// int64, 0-d; an add_scalar or mul_scalar never feeds the observer, so theirs are the
// unobserved observer's 1.0 and 0, unused by the op). Numerics: quantized/kernels/functional.h.
#include <memory>

#include "core/float/functional.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

class QuantizedFunctional : public Module, public ChannelsLastBytesForward {
 public:
  QuantizedFunctional(FunctionalOptions options, QuantParams output, EngineProfile engine);
  static std::unique_ptr<QuantizedFunctional> from_float(const FloatFunctionalOp& float_module, EngineProfile engine);
  static std::unique_ptr<QuantizedFunctional> from_reference(const StaticReference& reference, EngineProfile engine);

  std::string name() const override { return "QFunctional"; }
  std::string extra_repr() const override;  // "scale=0.5, zero_point=3"
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  const FunctionalOptions& options() const { return options_; }

  // add and add_relu of two operands of one shape as LibTorch holds them (none for the other
  // ops): forward's integers, in memory order.
  std::optional<U8ChannelsLast> channels_last_output(const std::vector<U8ChannelsLast>& x) const override;
  void forward_channels_last(const std::vector<U8ChannelsLast>& x, uint8_t* y) const override;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  FunctionalOptions options_;
  QuantParams output_;
  EngineProfile engine_;
};

// Shared with LibTorch's implementation: QFunctional's state and repr, and the output
// qparams it takes from a calibrated float module or from its reference.
StateDict functional_state_dict(const QuantParams& output);
QuantParams parse_functional_state_dict(const StateDict& state);
std::string functional_extra_repr(const QuantParams& output);
QuantParams functional_output_qparams(const FloatFunctionalOp& float_module);
QuantParams functional_output_qparams(const StaticReference& reference);
// The operands of a call, quantized, in order (the input, then ModuleInput::others); Error
// naming the module otherwise.
std::vector<const QTensor*> functional_operands(const ModuleInput& input, const std::string& module_name);

}  // namespace qconform
