#include "reference/embedding.h"

#include "core/error.h"
#include "core/float/parameters.h"
#include "core/quantize.h"
#include "core/observers.h"
#include "reference/weight_qparams.h"

namespace qconform {

QTensor weight_only_embedding_weight(const FloatEmbedding& float_module) {
  const std::string cls = "nnq." + float_module.options().float_name();
  if (!float_module.qconfig)
    throw Error(float_module.options().float_name() + " input float module must have qconfig defined");
  auto observer = float_module.qconfig->weight();
  if (observer->qscheme() != QScheme::PerChannelAffineFloatQParams)
    throw Error(float_module.options().float_name() +
                " quantization is only supported with float_qparams_weight_only_qconfig.");
  const DType dtype = observer->dtype();
  if (dtype != DType::QUInt8 && dtype != DType::QUInt4x2)
    throw Error("The only supported dtype for " + cls + " is torch.quint8 and torch.quint4x2, got " + to_string(dtype));
  return quantize(float_module.weight(), observe_weight(float_module.qconfig->weight, float_module.weight()));
}

ReferenceEmbedding::ReferenceEmbedding(EmbeddingOptions options, Tensor weight, QuantParams weight_qparams)
    : options_(options), weight_(std::move(weight)), weight_qparams_(std::move(weight_qparams)) {
  options_.validate();
  check_reference_weight_qparams(weight_qparams_, name());
  weight_dequantized_ = fake_quantize_reference_weight(weight_, weight_qparams_);
}

std::unique_ptr<ReferenceEmbedding> ReferenceEmbedding::from_float(const FloatEmbedding& float_module) {
  const QTensor q = weight_only_embedding_weight(float_module);
  return std::make_unique<ReferenceEmbedding>(float_module.options(), float_module.weight(), q.qparams);
}

QTensor ReferenceEmbedding::get_quantized_weight() const {
  return quantize_reference_weight(weight_, weight_qparams_);
}

StateDict ReferenceEmbedding::state_dict() const {
  StateDict state = weight_bias_state_dict(weight_, std::nullopt);
  save_weight_qparams(&state, "", weight_qparams_);
  return state;
}

void ReferenceEmbedding::load_state_dict(const StateDict& state) {
  const Tensor weight = read_weight_bias(state, weight_.sizes, false, weight_qparams_keys(""), name()).weight;
  const QuantParams qparams = load_weight_qparams(state, "");
  check_reference_weight_qparams(qparams, name());
  weight_ = weight;
  weight_qparams_ = qparams;
  weight_dequantized_ = fake_quantize_reference_weight(weight_, weight_qparams_);
}

ModuleOutput ReferenceEmbedding::forward(const ModuleInput& input) {
  return {embedding_float_forward(options_, weight_dequantized_, input, name()), std::nullopt};
}

}  // namespace qconform
