#pragma once
// torch.ao.nn.quantized.reference.Embedding / EmbeddingBag, "QuantizedEmbedding(Reference)":
// the specification of weight-only embeddings. The weight is fake-quantized per row with its
// float qparams (quint8 or quint4x2), then torch.nn's float lookup and bag reduction run
// (core/float/embedding.h): mode and padding_idx honoured, as F.embedding_bag honours them.
#include <memory>

#include "core/float/embedding.h"
#include "core/module.h"

namespace qconform {

// nnq.Embedding / EmbeddingBag.from_float's checks (their messages) and the weight the float
// module's qconfig makes: per row, float qparams, quint8 or quint4x2.
QTensor weight_only_embedding_weight(const FloatEmbedding& float_module);

class ReferenceEmbedding : public Module {
 public:
  ReferenceEmbedding(EmbeddingOptions options, Tensor weight, QuantParams weight_qparams);
  // The float module's qconfig weight observer chooses weight_qparams (its checks first).
  static std::unique_ptr<ReferenceEmbedding> from_float(const FloatEmbedding& float_module);

  std::string name() const override { return "Quantized" + options_.float_name() + "(Reference)"; }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Reference; }
  // "weight" and the reference modules' weight_qscheme / weight_dtype / weight_scale /
  // weight_zero_point / weight_axis.
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const EmbeddingOptions& options() const { return options_; }
  const QuantParams& weight_qparams() const { return weight_qparams_; }
  Tensor get_weight() const { return weight_dequantized_; }  // the fake-quantized weight
  QTensor get_quantized_weight() const;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  EmbeddingOptions options_;
  Tensor weight_;
  QuantParams weight_qparams_;
  Tensor weight_dequantized_;
};

}  // namespace qconform
