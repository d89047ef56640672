#include "reference/linear.h"

#include "core/error.h"
#include "core/float/parameters.h"
#include "core/observers.h"
#include "reference/weight_qparams.h"

namespace qconform {

ReferenceLinear::ReferenceLinear(Tensor weight, std::optional<Tensor> bias, QuantParams weight_qparams)
    : weight_(std::move(weight)), bias_(std::move(bias)), weight_qparams_(std::move(weight_qparams)) {
  check_linear_parameters(weight_, bias_, name());
  check_reference_weight_qparams(weight_qparams_, name());
  if (is_integer_quantized(weight_qparams_.dtype)) validate(weight_qparams_, weight_.sizes);
  weight_dequantized_ = fake_quantize_reference_weight(weight_, weight_qparams_);
}

std::unique_ptr<ReferenceLinear> ReferenceLinear::from_float(const FloatLinear& float_linear,
                                                             const QuantParams& weight_qparams) {
  auto module = std::make_unique<ReferenceLinear>(float_linear.weight(), float_linear.bias(),
                                                  weight_qparams);
  module->fused_relu = float_linear.fused_relu;
  return module;
}

std::unique_ptr<ReferenceLinear> ReferenceLinear::from_float(const FloatLinear& float_linear) {
  const QConfig qconfig = float_linear.qconfig.value_or(default_dynamic_qconfig());
  return from_float(float_linear, observe_weight(qconfig.weight, float_linear.weight()));
}

std::string ReferenceLinear::extra_repr() const {
  return linear_extra_repr(in_features(), out_features(), bias_.has_value());
}

Tensor ReferenceLinear::get_weight() const { return weight_dequantized_; }

QTensor ReferenceLinear::get_quantized_weight() const {
  return quantize_reference_weight(weight_, weight_qparams_);
}

ModuleOutput ReferenceLinear::forward(const ModuleInput& input) {
  Tensor y = linear_forward(expect_tensor(input, name()), weight_dequantized_, bias_);
  if (fused_relu) relu_in_place(&y);
  return {std::move(y), std::nullopt};
}

StateDict ReferenceLinear::state_dict() const {
  StateDict state = weight_bias_state_dict(weight_, bias_);
  save_weight_qparams(&state, "", weight_qparams_);
  return state;
}

void ReferenceLinear::load_state_dict(const StateDict& state) {
  WeightAndBias read = read_weight_bias(state, weight_.sizes, bias_.has_value(), weight_qparams_keys(""), name());
  // Build the new module state completely before replacing anything.
  ReferenceLinear loaded(std::move(read.weight), std::move(read.bias), load_weight_qparams(state, ""));
  weight_ = std::move(loaded.weight_);
  bias_ = std::move(loaded.bias_);
  weight_qparams_ = std::move(loaded.weight_qparams_);
  weight_dequantized_ = std::move(loaded.weight_dequantized_);
}

}  // namespace qconform
