#pragma once
// nnq.Embedding and nnq.EmbeddingBag (weight-only quantization), the true-integer
// implementation: the weight quantized per row with float qparams (quint8 or quint4x2),
// packed as quantized::embedding_bag_prepack packs it, looked up and summed as LibTorch's
// kernel does (quantized/kernels/embedding.h). What PyTorch 1.13's nnq modules keep and
// drop: their mode and padding_idx never reach the op (every bag is a sum), and
// nnq.Embedding.from_float builds a quint8 module whatever its qconfig asks; here the
// module runs the kernel its weight's dtype needs (docs/numerics.md, Embeddings).
#include <memory>

#include "core/float/embedding.h"
#include "core/module.h"

namespace qconform {

class ReferenceEmbedding;

class QuantizedEmbedding : public Module {
 public:
  QuantizedEmbedding(EmbeddingOptions options, QTensor weight, EngineProfile engine);
  static std::unique_ptr<QuantizedEmbedding> from_float(const FloatEmbedding& float_module, EngineProfile engine);
  static std::unique_ptr<QuantizedEmbedding> from_reference(const ReferenceEmbedding& reference, EngineProfile engine);

  std::string name() const override { return "Quantized" + options_.float_name(); }
  // "num_embeddings=10, embedding_dim=12, dtype=torch.quint8, qscheme=torch.per_channel_affine_float_qparams"
  std::string extra_repr() const override;
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const EmbeddingOptions& options() const { return options_; }
  const QTensor& weight() const { return weight_; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  EmbeddingOptions options_;
  QTensor weight_;
  EngineProfile engine_;
};

// Shared with LibTorch's implementation: the nnq modules' repr, state_dict
// ("_packed_params.dtype", "_packed_params._packed_weight", version 1 at both levels) and
// back (strict; the weight must be quint8 or quint4x2 per-row float qparams of the module's
// shape), and the operands of one call (Error names what is missing).
std::string weight_only_embedding_extra_repr(const EmbeddingOptions& options, const QTensor& weight);
StateDict weight_only_embedding_state_dict(const QTensor& weight);
QTensor load_weight_only_embedding_state_dict(const StateDict& state, const EmbeddingOptions& options,
                                              const std::string& module_name);

}  // namespace qconform
