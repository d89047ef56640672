#include "reference/conv.h"

#include "core/error.h"
#include "core/float/parameters.h"
#include "core/observers.h"
#include "reference/weight_qparams.h"

namespace qconform {

ReferenceConv::ReferenceConv(ConvOptions options, Tensor weight, std::optional<Tensor> bias, QuantParams weight_qparams)
    : options_(std::move(options)),
      weight_(std::move(weight)),
      bias_(std::move(bias)),
      weight_qparams_(std::move(weight_qparams)) {
  check_conv_parameters(options_, weight_.sizes, bias_, name());
  check_reference_weight_qparams(weight_qparams_, name());
  if (is_integer_quantized(weight_qparams_.dtype)) validate(weight_qparams_, weight_.sizes);
  weight_dequantized_ = fake_quantize_reference_weight(weight_, weight_qparams_);
}

std::unique_ptr<ReferenceConv> ReferenceConv::from_float(const FloatConv& float_conv) {
  const QConfig qconfig = float_conv.qconfig.value_or(default_qconfig());
  auto module = std::make_unique<ReferenceConv>(float_conv.options(), float_conv.weight(), float_conv.bias(),
                                                observe_weight(qconfig.weight, float_conv.weight()));
  module->fused_relu = float_conv.fused_relu;
  return module;
}

QTensor ReferenceConv::get_quantized_weight() const { return quantize_reference_weight(weight_, weight_qparams_); }

ModuleOutput ReferenceConv::forward(const ModuleInput& input) {
  return {float_conv(options_, expect_tensor(input, name()), weight_dequantized_, bias_, fused_relu, name()),
          std::nullopt};
}

StateDict ReferenceConv::state_dict() const {
  StateDict state = weight_bias_state_dict(weight_, bias_);
  save_weight_qparams(&state, "", weight_qparams_);
  return state;
}

void ReferenceConv::load_state_dict(const StateDict& state) {
  WeightAndBias read = read_weight_bias(state, weight_.sizes, bias_.has_value(), weight_qparams_keys(""), name());
  // Built completely (and so validated) before anything is replaced.
  ReferenceConv loaded(options_, std::move(read.weight), std::move(read.bias), load_weight_qparams(state, ""));
  weight_ = std::move(loaded.weight_);
  bias_ = std::move(loaded.bias_);
  weight_qparams_ = std::move(loaded.weight_qparams_);
  weight_dequantized_ = std::move(loaded.weight_dequantized_);
}

}  // namespace qconform
