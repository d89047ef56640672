#pragma once
// The integer form of PyTorch 1.13's quantized embedding ops as Debian's LibTorch runs them:
// quantized::embedding_bag_prepack's rows, then embedding_byte / embedding_4bit /
// embedding_bag_byte / embedding_bag_4bit through ATen's fallback kernel
// (qembeddingbag.cpp, embedding_lookup_fallback_impl: LibTorch built without fbgemm).
//
// Prepack, per row r of a per_channel_affine_float_qparams weight (scale s, float zero
// point z):
//   quint8:   the row's integers, then float s and float b = (z * s) * -1
//   quint4x2: two integers per byte (element j in bits 4 (j % 2) of byte j / 2), then s and
//             b each rounded to IEEE half
// Lookup, per bag (an embedding's every index is a bag of one), out = 0, then for each index
// i of the bag, with w its per-sample weight (1 without):
//   s' = float(w * s[i]), b' = float(w * b[i])
//   out[j] = float(fma(double(s'), double(q[i][j]), double(float(out[j] + b'))))
// (C's fma: a uint8 argument makes every argument double; the product is exact in double).
// The op ignores the module's mode and padding_idx: every bag is a sum (PyTorch 1.13's
// nnq.EmbeddingBag passes mode 0 and no padding_idx).
//
// Bags: `offsets` starts them; without include_last_offset the last ends at the indices'
// end. Each bag's length is the difference of consecutive offsets, but the kernel walks the
// indices from 0 whatever offsets[0] is, and checks only that it stays inside them.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace qconform::kernels {

struct PackedEmbeddingRows {
  int bits = 8;                 // 8 (quint8) or 4 (quint4x2)
  int64_t rows = 0, dim = 0;
  std::vector<int32_t> q;       // rows x dim integers, unpacked
  std::vector<float> scale, bias;  // per row, as stored (half-rounded for 4 bits)
};

// From the quantized weight (quint8, or quint4x2 with its values unpacked, one per element).
PackedEmbeddingRows pack_embedding_rows(const QTensor& weight);

// LibTorch 1.13 reads the first offset whatever the offsets' length, and crashes on an empty
// offsets tensor (seen: a segmentation fault): an Embedding's empty index tensor, an
// EmbeddingBag's empty offsets, 2-d indices without rows. Such a call is refused, before
// LibTorch is called, on both implementations, with this message; nullopt when it is safe.
std::optional<std::string> embedding_call_crashes_libtorch(const IntTensor& indices, const IntTensor* offsets,
                                                           bool include_last_offset, bool is_embedding_op);

// One quantized embedding call. `indices`: 1-d or 2-d (2-d: each row a bag, offsets refused);
// `offsets`: null for none; `per_sample_weights`: null for none. Checks in the op's order, its
// messages (e.g. "Invalid indices data"); `op` names it in them ("embedding_bag_byte").
// Returns the output, (bags, dim), or for an embedding indices.shape + (dim).
// Pruned weights (`pruned`, with `mapping` the compressed_indices_mapping): each index u must
// lie in [0, mapping size) ("Invalid indices data for Sparse Op."), its row is mapping[u], and
// -1 skips it; a mapping of one 0 means "not pruned" (the op's own convention); the mapping
// must be int32. A mapped row outside the weight is refused (LibTorch would read past it).
Tensor quantized_embedding_lookup(const PackedEmbeddingRows& rows, const IntTensor& indices,
                                  const IntTensor* offsets, const Tensor* per_sample_weights, bool include_last_offset,
                                  bool is_embedding_op, bool pruned = false, const IntTensor* mapping = nullptr);

}  // namespace qconform::kernels
