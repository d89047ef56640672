#pragma once
// torch.nn.Linear: the float module that conversions start from, and the float math
// (on Eigen) that the reference implementation reuses with fake-quantized weights.
#include <optional>

#include "core/module.h"

namespace qconform {

// y = x W^T + b over the last dimension of x (F.linear). Throws Error with PyTorch's
// "mat1 and mat2 shapes cannot be multiplied (MxK and K'xN)" when the features differ.
Tensor linear_forward(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias);

// ReLU in place, for the fused LinearReLU forms (NaN stays NaN, as torch.relu).
void relu_in_place(Tensor* y);
// "in_features=3, out_features=2, bias=True", as nn.Linear's extra_repr.
std::string linear_extra_repr(int64_t in_features, int64_t out_features, bool bias);

// Checks that weight is (out, in) and bias is (out); names `module_name` in the error.
void check_linear_parameters(const Tensor& weight, const std::optional<Tensor>& bias,
                             const std::string& module_name);

class FloatLinear : public Module {
 public:
  FloatLinear(Tensor weight, std::optional<Tensor> bias);
  // torch.nn.intrinsic.LinearReLU when fused_relu.
  std::string name() const override { return fused_relu ? "LinearReLU" : "Linear"; }
  std::string extra_repr() const override;
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  int64_t in_features() const { return weight_.size(1); }
  int64_t out_features() const { return weight_.size(0); }
  const Tensor& weight() const { return weight_; }
  const std::optional<Tensor>& bias() const { return bias_; }
  // torch.nn.intrinsic.LinearReLU is this module followed by ReLU.
  bool fused_relu = false;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  Tensor weight_;
  std::optional<Tensor> bias_;
};

}  // namespace qconform
