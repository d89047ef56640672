#pragma once
// QuantParams: everything that says how a tensor maps to integers, in one type.
//
//   real = scale * (q - zero_point),   q in [quant_min, quant_max]            (1)
//
// Per-tensor schemes carry one (scale, zero_point); per-channel schemes one pair per
// index along `axis`. per_channel_affine_float_qparams (embeddings) keeps a float
// zero_point and maps q = round(real / scale + zero_point) instead of (1)'s inverse.
// float16 carries no scale: "quantizing" rounds to half precision.
//
// validate() is the one place where parameters are checked; every rule is listed there
// with its reason. Kernels only assert what validate() already guaranteed.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace qconform {

struct QuantParams {
  DType dtype = DType::QUInt8;
  QScheme qscheme = QScheme::PerTensorAffine;
  std::vector<double> scales;       // one, or one per channel along `axis`
  std::vector<double> zero_points;  // integral except for ..._float_qparams
  int64_t axis = 0;                 // per-channel schemes only
  int64_t quant_min = 0;
  int64_t quant_max = 255;

  // Named constructors; each validates what it builds. The range defaults to the dtype's.
  static QuantParams per_tensor(DType dtype, double scale, int64_t zero_point,
                                std::optional<int64_t> quant_min = std::nullopt,
                                std::optional<int64_t> quant_max = std::nullopt);
  static QuantParams per_channel(DType dtype, std::vector<double> scales,
                                 std::vector<int64_t> zero_points, int64_t axis,
                                 std::optional<int64_t> quant_min = std::nullopt,
                                 std::optional<int64_t> quant_max = std::nullopt);
  static QuantParams per_channel_float_qparams(DType dtype, std::vector<float> scales,
                                               std::vector<float> zero_points, int64_t axis);
  static QuantParams float16();

  bool per_channel() const { return is_per_channel(qscheme); }
  int64_t channels() const { return static_cast<int64_t>(scales.size()); }
  double scale(int64_t channel = 0) const { return scales.at(per_channel() ? channel : 0); }
  int64_t zero_point(int64_t channel = 0) const;  // integral schemes only
  bool operator==(const QuantParams& other) const;
  std::string to_string() const;  // for messages and reports
};

// Throws qconform::Error naming the field and value of the first rule broken.
void validate(const QuantParams& qparams);
// As above, and the per-channel axis and channel count must fit `tensor_sizes`.
void validate(const QuantParams& qparams, const std::vector<int64_t>& tensor_sizes);

}  // namespace qconform
