#pragma once
// The harness's value types: a dense float tensor and a quantized tensor (its integer
// representation plus its QuantParams). Row-major, contiguous. They carry data between
// implementations; the math lives in the implementations (Eigen, integer kernels,
// LibTorch), so these types stay free of any heavy header.
#include <cstdint>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "core/qparams.h"

namespace qconform {

using Shape = std::vector<int64_t>;

inline int64_t numel_of(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}
// numel_of for shapes read from files: none for a negative dimension or a product beyond int64.
inline std::optional<int64_t> checked_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape)
    if (s < 0 || __builtin_mul_overflow(n, s, &n)) return std::nullopt;
  return n;
}
std::string shape_to_string(const Shape& shape);  // "[2, 3]"

struct Tensor {
  Shape sizes;
  std::vector<float> data;

  Tensor() = default;
  explicit Tensor(Shape shape) : sizes(std::move(shape)), data(numel_of(sizes), 0.0f) {}
  Tensor(Shape shape, std::vector<float> values);  // throws if sizes and values disagree

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  int64_t dim() const { return static_cast<int64_t>(sizes.size()); }
  int64_t size(int64_t d) const { return sizes.at(d < 0 ? d + dim() : d); }
  bool operator==(const Tensor& other) const;  // same shape and bit-identical values
};

// A quantized tensor as PyTorch's int_repr() shows it: one integer per element.
// For float16 "quantization" `values` is unused and `half_bits` holds the raw halves.
struct QTensor {
  Shape sizes;
  std::vector<int32_t> values;  // row-major, whatever the memory format
  QuantParams qparams;
  // A 4-d tensor LibTorch held channels-last (NHWC in memory) and not also contiguous: some
  // of ATen's kernels choose by it (average pooling, cat along channels, add's vector blocks).
  // Not part of equality: the values are the same.
  bool channels_last = false;

  int64_t numel() const { return numel_of(sizes); }
  int64_t dim() const { return static_cast<int64_t>(sizes.size()); }
  bool operator==(const QTensor& other) const;
};

// A quint8 per-tensor 4-d tensor as LibTorch holds a channels-last one: `sizes` are (N, C, H,
// W), `bytes` the values in N, H, W, C order, not owned. Model replays hand LibTorch's tensors
// this way, as they are, to the modules that can take them (ChannelsLastBytesForward,
// core/module.h), without QTensor's int32 channel-major copy.
struct U8ChannelsLast {
  Shape sizes;
  double scale = 1;
  int64_t zero_point = 0;
  const uint8_t* bytes = nullptr;
};

// Integer tensors that appear in state_dicts (zero points, axes): int32 or int64.
struct IntTensor {
  Shape sizes;
  std::vector<int64_t> values;
  bool is_int32 = false;
  bool operator==(const IntTensor& other) const {
    return sizes == other.sizes && values == other.values && is_int32 == other.is_int32;
  }
};

}  // namespace qconform
