#include "reference/linear.h"

#include "core/error.h"
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
  return {y, std::nullopt};
}

StateDict ReferenceLinear::state_dict() const {
  StateDict state;
  state.set("weight", weight_);
  if (bias_) state.set("bias", *bias_);
  save_weight_qparams(&state, "", weight_qparams_);
  state.versions[""] = 1;
  return state;
}

void ReferenceLinear::load_state_dict(const StateDict& state) {
  std::vector<std::string> keys{"weight"};
  if (bias_) keys.push_back("bias");
  for (auto& key : weight_qparams_keys("")) keys.push_back(key);
  state.check_keys(keys, name());
  // Build the new module state completely before replacing anything.
  ReferenceLinear loaded(state.at("weight").as<Tensor>("weight"),
                         bias_ ? std::optional<Tensor>(state.at("bias").as<Tensor>("bias"))
                               : std::nullopt,
                         load_weight_qparams(state, ""));
  if (loaded.weight_.sizes != weight_.sizes)
    throw Error("size mismatch for weight: copying a param with shape " +
                shape_to_string(loaded.weight_.sizes) + ", the shape in current model is " +
                shape_to_string(weight_.sizes) + ".");
  weight_ = std::move(loaded.weight_);
  bias_ = std::move(loaded.bias_);
  weight_qparams_ = std::move(loaded.weight_qparams_);
  weight_dequantized_ = std::move(loaded.weight_dequantized_);
}

}  // namespace qconform
