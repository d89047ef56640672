#include "core/float/embedding.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/float/parameters.h"

namespace qconform {

std::string to_string(EmbeddingBagMode mode) {
  switch (mode) {
    case EmbeddingBagMode::Sum: return "sum";
    case EmbeddingBagMode::Mean: return "mean";
    case EmbeddingBagMode::Max: return "max";
  }
  return "?";
}

std::string EmbeddingOptions::float_name() const { return bag ? "EmbeddingBag" : "Embedding"; }

std::string EmbeddingOptions::extra_repr() const {
  std::string s = std::to_string(num_embeddings) + ", " + std::to_string(embedding_dim);
  if (padding_idx) s += ", padding_idx=" + std::to_string(*padding_idx);
  if (bag) s += ", mode=" + to_string(mode);
  return s;
}

void EmbeddingOptions::validate() const {
  if (num_embeddings < 1 || embedding_dim < 1)
    throw Error(float_name() + ": num_embeddings and embedding_dim must be at least 1");
  if (padding_idx && (*padding_idx < 0 || *padding_idx >= num_embeddings))
    throw Error("Padding_idx must be within num_embeddings");
}

BagCall bag_operands(const ModuleInput& input, const std::string& module_name) {
  BagCall call;
  call.indices = std::get_if<IntTensor>(&input.input);
  if (!call.indices) throw Error(module_name + ": expects integer indices (an index tensor)");
  // Integer operands in order: offsets (or None before a mapping), then the mapping.
  size_t integer_operands = 0;
  for (const Value& v : input.others) {
    const bool absent = std::holds_alternative<AbsentOperand>(v);
    if (const auto* ints = std::get_if<IntTensor>(&v); ints || absent) {
      if (integer_operands == 2 || (absent && integer_operands == 1))
        throw Error(module_name + ": its integer operands are offsets (or None) and a compressed_indices_mapping");
      (integer_operands++ == 0 ? call.offsets : call.compressed_indices_mapping) = ints;
    } else if (const auto* weights = std::get_if<Tensor>(&v)) {
      call.per_sample_weights = weights;
    } else {
      throw Error(module_name + ": its operands after the indices are offsets, per_sample_weights and a "
                  "compressed_indices_mapping");
    }
  }
  return call;
}

void float_bags(const EmbeddingOptions& o, BagCall* call) {
  const IntTensor& indices = *call->indices;
  const int64_t n = static_cast<int64_t>(indices.values.size());
  if (call->per_sample_weights && call->per_sample_weights->sizes != indices.sizes)
    throw Error("embedding_bag: If per_sample_weights (" + shape_to_string(call->per_sample_weights->sizes) +
                ") is not None, then it must have the same shape as the input (" + shape_to_string(indices.sizes) + ")");
  std::vector<int64_t> offsets;
  if (indices.sizes.size() == 2) {
    if (call->offsets)
      throw Error("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of fixed length "
                  "sequences. However, found offsets of type <class 'torch.Tensor'>");
    for (int64_t b = 0; b < indices.sizes[0]; ++b) offsets.push_back(b * indices.sizes[1]);
  } else if (indices.sizes.size() == 1) {
    if (!call->offsets) throw Error("offsets has to be a 1D Tensor but got None");
    if (call->offsets->sizes.size() != 1) throw Error("offsets has to be a 1D Tensor");
    offsets = call->offsets->values;
  } else {
    throw Error("input has to be 1D or 2D Tensor, but got Tensor of dimension " + std::to_string(indices.sizes.size()));
  }
  if (call->per_sample_weights && o.mode != EmbeddingBagMode::Sum)
    throw Error("embedding_bag: per_sample_weights was not None. per_sample_weights is only supported for mode='sum' "
                "(got mode='" + to_string(o.mode) + "'). Please open a feature request on GitHub.");
  if (!offsets.empty() && offsets[0] != 0)
    throw Error("offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from position 0. "
                "However, got " + std::to_string(offsets[0]));
  if (!offsets.empty() && offsets.back() > n)
    throw Error("offsets[-1] can not be greater than input's length " + std::to_string(n) + ", but got offsets[-1] of " +
                std::to_string(offsets.back()));
  // include_last_offset takes the last offset as the end even for 2-d indices, whose offsets
  // are the rows' starts: the last row is then no bag (PyTorch 1.13, float and quantized).
  const bool last_is_end = o.include_last_offset;
  const size_t bag_count = last_is_end ? (offsets.empty() ? 0 : offsets.size() - 1) : offsets.size();
  call->bags.clear();
  for (size_t b = 0; b < bag_count; ++b) {
    const int64_t begin = offsets[b], end = b + 1 < offsets.size() ? offsets[b + 1] : n;
    if (end < begin) throw Error("embedding_bag: offsets must be non-decreasing, got " + std::to_string(begin) +
                                 " then " + std::to_string(end));
    call->bags.emplace_back(begin, end);
  }
  const int64_t index_range = o.pruned_weights && call->compressed_indices_mapping
                                  ? static_cast<int64_t>(call->compressed_indices_mapping->values.size())
                                  : o.num_embeddings;
  for (int64_t i : indices.values)
    if (i < 0 || i >= index_range)
      throw Error("embedding_bag: Expected idx >= 0 && idx < num_embeddings but found idx to be " + std::to_string(i));
}

Value embedding_float_forward(const EmbeddingOptions& o, const Tensor& weight, const ModuleInput& input,
                              const std::string& module_name) {
  const int64_t d = o.embedding_dim;
  if (!o.bag) {
    const auto* indices = std::get_if<IntTensor>(&input.input);
    if (!indices) throw Error(module_name + ": expects integer indices (an index tensor)");
    Shape shape = indices->sizes;
    shape.push_back(d);
    Tensor y(shape);
    for (size_t k = 0; k < indices->values.size(); ++k) {
      const int64_t i = indices->values[k];
      if (i < 0 || i >= o.num_embeddings) throw Error("index out of range in self");
      std::copy_n(weight.data.begin() + i * d, d, y.data.begin() + static_cast<int64_t>(k) * d);
    }
    return y;
  }
  BagCall call = bag_operands(input, module_name);
  float_bags(o, &call);
  Tensor y({static_cast<int64_t>(call.bags.size()), d});
  for (size_t b = 0; b < call.bags.size(); ++b) {
    float* out = y.data.data() + static_cast<int64_t>(b) * d;
    int64_t count = 0;
    for (int64_t k = call.bags[b].first; k < call.bags[b].second; ++k) {
      int64_t i = call.indices->values[k];
      if (o.padding_idx && i == *o.padding_idx) continue;
      if (o.pruned_weights && call.compressed_indices_mapping) {  // the kept row, or none
        i = call.compressed_indices_mapping->values[i];
        if (i == -1) continue;
        if (i < 0 || i >= o.num_embeddings) throw Error("compressed_indices_mapping maps to row " + std::to_string(i) +
                                                        " of " + std::to_string(o.num_embeddings));
      }
      const float* row = weight.data.data() + i * d;
      const float w = call.per_sample_weights ? call.per_sample_weights->data[k] : 1.0f;
      for (int64_t j = 0; j < d; ++j) {
        if (o.mode == EmbeddingBagMode::Max) out[j] = count == 0 ? row[j] : std::max(out[j], row[j]);
        else out[j] += call.per_sample_weights ? w * row[j] : row[j];
      }
      ++count;
    }
    if (o.mode == EmbeddingBagMode::Mean && count > 0)
      for (int64_t j = 0; j < d; ++j) out[j] /= static_cast<float>(count);
  }
  return y;
}

FloatEmbedding::FloatEmbedding(EmbeddingOptions options, Tensor weight)
    : options_(options), weight_(std::move(weight)) {
  options_.validate();
  if (weight_.sizes != Shape{options_.num_embeddings, options_.embedding_dim})
    throw Error(name() + ": the weight must have shape [num_embeddings, embedding_dim] = [" +
                std::to_string(options_.num_embeddings) + ", " + std::to_string(options_.embedding_dim) + "], got " +
                shape_to_string(weight_.sizes));
}

StateDict FloatEmbedding::state_dict() const { return weight_bias_state_dict(weight_, std::nullopt); }

void FloatEmbedding::load_state_dict(const StateDict& state) {
  weight_ = read_weight_bias(state, weight_.sizes, false, {}, name()).weight;
}

ModuleOutput FloatEmbedding::forward(const ModuleInput& input) {
  return {embedding_float_forward(options_, weight_, input, name()), std::nullopt};
}

}  // namespace qconform
