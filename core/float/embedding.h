#pragma once
// torch.nn.Embedding and torch.nn.EmbeddingBag as float modules: what weight-only
// quantization converts, and (with a fake-quantized weight) what the reference runs.
//
// Embedding: y[i...] = W[indices[i...]]                 (any index shape; padding_idx only
//                                                        matters for gradients)
// EmbeddingBag: bag b holds indices[offsets[b] .. offsets[b + 1]) (1-d indices), or row b
//   (2-d indices, no offsets); y[b] = the bag's rows reduced by mode:
//     sum:  sum_k w_k W[i_k]         (w_k = per_sample_weights[k], 1 without; sum only)
//     mean: sum_k W[i_k] / count
//     max:  the elementwise max
//   entries equal to padding_idx are left out (and not counted); an empty bag gives zeros.
//   include_last_offset: the last offset ends the last bag instead of starting one (with 2-d
//   indices too, whose last row is then no bag, as in PyTorch 1.13).
//
// The call's operands: ModuleInput::input is the indices (an IntTensor); among `others`, the
// first IntTensor is the offsets, a second one the compressed_indices_mapping, and a float
// Tensor the per_sample_weights.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/module.h"

namespace qconform {

enum class EmbeddingBagMode { Sum, Mean, Max };
std::string to_string(EmbeddingBagMode mode);  // "sum", "mean", "max"

struct EmbeddingOptions {
  int64_t num_embeddings = 1;
  int64_t embedding_dim = 1;
  std::optional<int64_t> padding_idx;  // normalized to [0, num_embeddings)
  bool bag = false;                    // EmbeddingBag
  EmbeddingBagMode mode = EmbeddingBagMode::Sum;
  bool include_last_offset = false;
  // nnq.EmbeddingBag's pruned_weights attribute (set by hand after conversion in PyTorch): the
  // weight's rows are the kept ones, and each call maps its indices through a
  // compressed_indices_mapping (-1: a pruned row, which adds nothing). Carried here so that
  // cases and fixtures can ask for it; the float module's own forward has no such notion.
  bool pruned_weights = false;

  std::string float_name() const;  // "Embedding", "EmbeddingBag"
  // nn.Embedding's "10, 4" (", padding_idx=0"); nn.EmbeddingBag's "10, 4, mode=sum" (...)
  std::string extra_repr() const;
  // torch.nn's constructor checks ("Padding_idx must be within num_embeddings"), Error.
  void validate() const;
};

// An EmbeddingBag call's operands, split from a ModuleInput, and its bags as [begin, end)
// ranges into the flattened indices.
struct BagCall {
  const IntTensor* indices = nullptr;
  const IntTensor* offsets = nullptr;             // null: none given
  const Tensor* per_sample_weights = nullptr;     // null: none given
  const IntTensor* compressed_indices_mapping = nullptr;  // null: none given
  std::vector<std::pair<int64_t, int64_t>> bags;  // filled by float_bags
};
BagCall bag_operands(const ModuleInput& input, const std::string& module_name);
// F.embedding_bag's checks, with its messages, and the bags. Error names what is wrong.
void float_bags(const EmbeddingOptions& options, BagCall* call);

// The float forward of either module over `weight` (num_embeddings x embedding_dim).
Value embedding_float_forward(const EmbeddingOptions& options, const Tensor& weight, const ModuleInput& input,
                              const std::string& module_name);

class FloatEmbedding : public Module {
 public:
  FloatEmbedding(EmbeddingOptions options, Tensor weight);
  std::string name() const override { return options_.float_name(); }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override;  // "weight"
  void load_state_dict(const StateDict& state) override;

  const EmbeddingOptions& options() const { return options_; }
  const Tensor& weight() const { return weight_; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  EmbeddingOptions options_;
  Tensor weight_;
};

}  // namespace qconform
