#pragma once
// torch.ao.nn.quantized.reference.Linear, "QuantizedLinear(Reference)": the specification
// that every integer Linear is measured against.
//
//   forward(x) = x · dequantize(quantize(W, weight_qparams))^T + b        (float math)
//
// Used by the dynamic and the static flows alike (activations are quantized around it by
// the flow, not by the module), with fused_relu for LinearReLU.
#include <optional>

#include "core/float/linear.h"
#include "core/module.h"

namespace qconform {

class ReferenceLinear : public Module {
 public:
  ReferenceLinear(Tensor weight, std::optional<Tensor> bias, QuantParams weight_qparams);

  // Reference.from_float(float_linear, weight_qparams).
  static std::unique_ptr<ReferenceLinear> from_float(const FloatLinear& float_linear,
                                                     const QuantParams& weight_qparams);
  // convert(..., is_reference=True): the weight observer of the float module's qconfig
  // (default_dynamic_qconfig's when it has none) chooses weight_qparams.
  static std::unique_ptr<ReferenceLinear> from_float(const FloatLinear& float_linear);

  std::string name() const override { return "QuantizedLinear(Reference)"; }
  std::string extra_repr() const override;
  Implementation implementation() const override { return Implementation::Reference; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  int64_t in_features() const { return weight_.size(1); }
  int64_t out_features() const { return weight_.size(0); }
  const Tensor& weight() const { return weight_; }  // float, as stored
  const std::optional<Tensor>& bias() const { return bias_; }
  const QuantParams& weight_qparams() const { return weight_qparams_; }
  Tensor get_weight() const;               // fake-quantized weight used by forward
  QTensor get_quantized_weight() const;    // what from_reference hands to integer modules
  bool fused_relu = false;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  Tensor weight_;
  std::optional<Tensor> bias_;
  QuantParams weight_qparams_;
  Tensor weight_dequantized_;  // cached: the weight does not change between calls
};

}  // namespace qconform
