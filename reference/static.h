#pragma once
// A reference module in the static flow, as convert(..., is_reference=True) leaves it
// between its stubs: dequantize the quint8 input, run the reference module in float
// (fake-quantized weights), quantize the result with the calibrated output qparams
// (the nnq.Quantize that replaces the next QuantStub). This is what the seed's
// reference-module tests compare the integer module with. Ops whose quantized form keeps
// its input's qparams (ReLU, MaxPool2d, ...) quantize with the input's qparams instead, and
// ops whose quantized form derives its output qparams from the input's (add_scalar,
// mul_scalar) with those. Further operands (add's y, cat's tensors) are dequantized too.
#include <functional>
#include <memory>
#include <optional>

#include "core/module.h"

namespace qconform {

class StaticReference : public Module {
 public:
  // output_qparams: quint8 per-tensor, validated here.
  StaticReference(std::unique_ptr<Module> module, QuantParams output_qparams);
  // The output quantized with each input's own qparams.
  static std::unique_ptr<StaticReference> keeping_input_qparams(std::unique_ptr<Module> module);
  // The output quantized with qparams derived from the (first) input's by `rule`.
  using QParamsRule = std::function<QuantParams(const QuantParams& input)>;
  static std::unique_ptr<StaticReference> deriving_output_qparams(std::unique_ptr<Module> module, QParamsRule rule);

  std::string name() const override { return module_->name(); }
  std::string extra_repr() const override;
  Implementation implementation() const override { return Implementation::Reference; }
  // Keys: the reference module's under "module.", then nnq.Quantize's buffers
  // "quant.scale" and "quant.zero_point" (one element each; none when it keeps the input's).
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const Module& module() const { return *module_; }
  // The reference module itself, for convert(..., is_reference=True) between explicit stubs;
  // this wrapper is left empty and must not be called again.
  std::unique_ptr<Module> release_module() { return std::move(module_); }
  // Error when the output keeps or derives the input's qparams (there are none of its own).
  const QuantParams& output_qparams() const;
  bool keeps_input_qparams() const { return !output_qparams_ && !rule_; }
  // The output qparams for an input with qparams `input`, whichever the mode.
  QuantParams output_qparams_for(const QuantParams& input) const;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  StaticReference(std::unique_ptr<Module> module, std::optional<QuantParams> output_qparams);
  std::unique_ptr<Module> module_;
  std::optional<QuantParams> output_qparams_;
  QParamsRule rule_;
};

}  // namespace qconform
