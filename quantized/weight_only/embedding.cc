#include "quantized/weight_only/embedding.h"

#include "core/error.h"
#include "core/quantize.h"
#include "quantized/kernels/embedding.h"
#include "reference/embedding.h"

namespace qconform {

std::string weight_only_embedding_extra_repr(const EmbeddingOptions& o, const QTensor& weight) {
  return "num_embeddings=" + std::to_string(o.num_embeddings) + ", embedding_dim=" + std::to_string(o.embedding_dim) +
         ", dtype=" + to_string(weight.qparams.dtype) + ", qscheme=" + to_string(weight.qparams.qscheme);
}

StateDict weight_only_embedding_state_dict(const QTensor& weight) {
  StateDict state;
  state.set("_packed_params.dtype", weight.qparams.dtype);
  state.set("_packed_params._packed_weight", weight);
  state.versions[""] = 1;
  state.versions["_packed_params"] = 1;
  return state;
}

QTensor load_weight_only_embedding_state_dict(const StateDict& state, const EmbeddingOptions& o,
                                              const std::string& module_name) {
  state.check_keys({"_packed_params.dtype", "_packed_params._packed_weight"}, module_name);
  const DType dtype = state.at("_packed_params.dtype").as<DType>("_packed_params.dtype");
  const QTensor& weight = state.at("_packed_params._packed_weight").as<QTensor>("_packed_params._packed_weight");
  if (weight.qparams.dtype != dtype || (dtype != DType::QUInt8 && dtype != DType::QUInt4x2))
    throw Error(module_name + ": _packed_params._packed_weight is " + to_string(weight.qparams.dtype) +
                " for a dtype of " + to_string(dtype) + " (quint8 or quint4x2, the same)");
  if (weight.qparams.qscheme != QScheme::PerChannelAffineFloatQParams)
    throw Error("Expect embedding_bag weights to be quantized using kPerChannelAffineFloatQParams");
  if (weight.sizes != Shape{o.num_embeddings, o.embedding_dim})
    throw Error("size mismatch for _packed_params._packed_weight: copying a param with shape " +
                shape_to_string(weight.sizes) + ", the shape in current model is [" + std::to_string(o.num_embeddings) +
                ", " + std::to_string(o.embedding_dim) + "].");
  return weight;
}

QuantizedEmbedding::QuantizedEmbedding(EmbeddingOptions options, QTensor weight, EngineProfile engine)
    : options_(options), weight_(std::move(weight)), engine_(engine) {
  options_.validate();
  kernels::pack_embedding_rows(weight_);  // the prepack's checks
  if (weight_.sizes != Shape{options_.num_embeddings, options_.embedding_dim})
    throw Error(name() + ": the weight must have shape [num_embeddings, embedding_dim]");
}

std::unique_ptr<QuantizedEmbedding> QuantizedEmbedding::from_float(const FloatEmbedding& float_module,
                                                                   EngineProfile engine) {
  return std::make_unique<QuantizedEmbedding>(float_module.options(), weight_only_embedding_weight(float_module),
                                              engine);
}

std::unique_ptr<QuantizedEmbedding> QuantizedEmbedding::from_reference(const ReferenceEmbedding& reference,
                                                                       EngineProfile engine) {
  return std::make_unique<QuantizedEmbedding>(reference.options(), reference.get_quantized_weight(), engine);
}

std::string QuantizedEmbedding::extra_repr() const { return weight_only_embedding_extra_repr(options_, weight_); }

StateDict QuantizedEmbedding::state_dict() const { return weight_only_embedding_state_dict(weight_); }

void QuantizedEmbedding::load_state_dict(const StateDict& state) {
  weight_ = load_weight_only_embedding_state_dict(state, options_, name());
}

ModuleOutput QuantizedEmbedding::forward(const ModuleInput& input) {
  const kernels::PackedEmbeddingRows rows = kernels::pack_embedding_rows(weight_);
  if (!options_.bag) {
    const auto* indices = std::get_if<IntTensor>(&input.input);
    if (!indices) throw Error(name() + ": expects integer indices (an index tensor)");
    return {kernels::quantized_embedding_lookup(rows, *indices, nullptr, nullptr, false, true), std::nullopt};
  }
  const BagCall call = bag_operands(input, name());
  return {kernels::quantized_embedding_lookup(rows, *call.indices, call.offsets, call.per_sample_weights,
                                              options_.include_last_offset, false, options_.pruned_weights,
                                              call.compressed_indices_mapping),
          std::nullopt};
}

}  // namespace qconform
