#include "quantized/kernels/embedding.h"

#include <cmath>

#include "core/error.h"
#include "core/quantize.h"

namespace qconform::kernels {

PackedEmbeddingRows pack_embedding_rows(const QTensor& weight) {
  const QuantParams& qp = weight.qparams;
  if (weight.dim() != 2) throw Error("quantized::embedding_bag_prepack weight tensor rank should be 2");
  if (qp.dtype != DType::QUInt8 && qp.dtype != DType::QUInt4x2)
    throw Error("qembedding_bag_prepack currently only supports quint8 and quint4x2 weights");
  if (qp.qscheme != QScheme::PerChannelAffineFloatQParams)
    throw Error("Expect embedding_bag weights to be quantized using kPerChannelAffineFloatQParams");
  PackedEmbeddingRows p;
  p.bits = qp.dtype == DType::QUInt8 ? 8 : 4;
  p.rows = weight.sizes[0];
  p.dim = weight.sizes[1];
  p.q = weight.values;
  for (int64_t r = 0; r < p.rows; ++r) {
    const float scale = static_cast<float>(qp.scales[r]);
    const float bias = static_cast<float>(qp.zero_points[r]) * scale * -1.0f;
    if (p.bits == 8) {
      p.scale.push_back(scale);
      p.bias.push_back(bias);
    } else {
      p.scale.push_back(half_bits_to_float(float_to_half_bits(scale)));
      p.bias.push_back(half_bits_to_float(float_to_half_bits(bias)));
    }
  }
  return p;
}

std::optional<std::string> embedding_call_crashes_libtorch(const IntTensor& indices, const IntTensor* offsets,
                                                           bool include_last_offset, bool is_embedding_op) {
  (void)include_last_offset;
  const int64_t rank = static_cast<int64_t>(indices.sizes.size());
  if (rank != 1 && rank != 2) return std::nullopt;  // the op refuses those itself
  const bool empty_offsets = is_embedding_op ? indices.values.empty()
                             : rank == 2     ? (!offsets && indices.sizes[0] == 0)
                                             : (offsets && offsets->values.empty());
  if (!empty_offsets) return std::nullopt;
  return "an empty offsets tensor (an empty index tensor, or 2-d indices without rows): LibTorch 1.13 reads its "
         "first element and crashes; refused before the call";
}

Tensor quantized_embedding_lookup(const PackedEmbeddingRows& p, const IntTensor& indices, const IntTensor* offsets_in,
                                  const Tensor* per_sample_weights, bool include_last_offset, bool is_embedding_op,
                                  bool pruned, const IntTensor* mapping) {
  // PyTorch 1.13's n-bit path names both of its bit widths.
  const std::string op = p.bits == 8 ? "embedding_bag_byte" : "embedding_bag_4bit/embedding_bag_2bit";
  const int64_t rank = static_cast<int64_t>(indices.sizes.size());
  if (rank != 1 && rank != 2)
    throw Error("qembedding/qembedding_bag operator supports 1 or 2d indices, got " + std::to_string(rank));
  if (const auto crash = embedding_call_crashes_libtorch(indices, offsets_in, include_last_offset, is_embedding_op))
    throw Error(*crash);
  const int64_t n = static_cast<int64_t>(indices.values.size());
  std::vector<int64_t> offsets;
  if (is_embedding_op) {
    for (int64_t k = 0; k < n; ++k) offsets.push_back(k);  // arange(0, numel)
  } else if (rank == 2) {
    if (offsets_in)
      throw Error(op + " operator: input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                       "fixed length sequences.");
    for (int64_t k = 0; k < n; k += indices.sizes[1]) offsets.push_back(k);
  } else {
    if (!offsets_in)
      throw Error(p.bits == 8 ? "embedding_bag_byte expects offsets to be set for 1D indices."
                              : "embedding_bag_4bit/embedding_bag_2bit operator expects offsets to be set for 1D "
                                "indices.");
    offsets = offsets_in->values;
  }
  if (per_sample_weights && static_cast<int64_t>(per_sample_weights->data.size()) < n)
    throw Error(op + ": per_sample_weights holds " + std::to_string(per_sample_weights->data.size()) +
                " values for " + std::to_string(n) + " indices (LibTorch would read past its end)");
  const bool last_given = include_last_offset && !is_embedding_op;
  if (pruned) {
    if (!mapping) throw Error("bad optional access");  // the op takes compressed_indices_mapping.value()
    if (!mapping->is_int32) throw Error("expected scalar type Int but found Long");
    if (mapping->values.size() == 1 && mapping->values[0] == 0) pruned = false;  // "fall back to no sparse"
  }
  // lengths from consecutive offsets; the last bag ends at the indices' end unless given.
  std::vector<int64_t> lengths;
  int64_t lower = offsets.empty() ? 0 : offsets[0];
  for (size_t i = 1; i < offsets.size(); ++i) {
    lengths.push_back(offsets[i] - lower);
    lower = offsets[i];
  }
  if (!last_given) lengths.push_back(n - lower);
  const int64_t bags = static_cast<int64_t>(lengths.size());
  const int64_t d = p.dim;
  Shape shape{bags, d};
  if (is_embedding_op && rank == 2) shape = {indices.sizes[0], indices.sizes[1], d};
  Tensor out(shape);
  int64_t current = 0;
  for (int64_t m = 0; m < bags; ++m) {
    float* acc = out.data.data() + m * d;
    if (current + lengths[m] > n) throw Error("Expect the lengths data to be less than indices size");
    for (int64_t k = 0; k < lengths[m]; ++k, ++current) {
      int64_t idx = indices.values[current];
      if (pruned) {
        if (idx < 0 || idx >= static_cast<int64_t>(mapping->values.size()))
          throw Error("Invalid indices data for Sparse Op.");
        idx = mapping->values[idx];
        if (idx == -1) continue;
        if (idx < 0 || idx >= p.rows)
          throw Error("compressed_indices_mapping maps to row " + std::to_string(idx) + " of " +
                      std::to_string(p.rows) + " (LibTorch would read past its weight)");
      } else if (idx < 0 || idx >= p.rows) {
        throw Error("Invalid indices data");
      }
      const float w = per_sample_weights ? per_sample_weights->data[current] : 1.0f;
      const float scale = w * p.scale[idx], bias = w * p.bias[idx];
      const int32_t* q = p.q.data() + idx * d;
      for (int64_t j = 0; j < d; ++j)
        acc[j] = static_cast<float>(std::fma(static_cast<double>(scale), static_cast<double>(q[j]),
                                             static_cast<double>(acc[j] + bias)));
    }
  }
  return out;
}

}  // namespace qconform::kernels
