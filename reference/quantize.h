#pragma once
// The reference implementations of the static.Quantize and static.DeQuantize kinds: PyTorch's
// documented definitions, evaluated in double (torch.quantize_per_tensor: "round(x / scale) +
// zero_point", clamped; Tensor.dequantize: "(q - zero_point) * scale"). ATen's kernels
// multiply by a float reciprocal and take the scale in float (core/quantize.h), which is what
// the integer side follows; the two meet within a quantum (quantize) or a few float roundings
// (dequantize).
#include "core/module.h"

namespace qconform {

class ReferenceQuantize : public Module {
 public:
  explicit ReferenceQuantize(QuantParams qparams);  // per-tensor, validated
  std::string name() const override { return "Quantize(Reference)"; }
  Implementation implementation() const override { return Implementation::Reference; }
  // nnq.Quantize's buffers, so that the state moves between implementations.
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  const QuantParams& qparams() const { return qparams_; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  QuantParams qparams_;
};

class ReferenceDeQuantize : public Module {
 public:
  std::string name() const override { return "DeQuantize(Reference)"; }
  Implementation implementation() const override { return Implementation::Reference; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override { state.check_keys({}, name()); }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;
};

}  // namespace qconform
