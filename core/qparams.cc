#include "core/qparams.h"

#include <cmath>
#include <sstream>

#include "core/error.h"

namespace qconform {
namespace {

std::string fmt(double value) {
  std::ostringstream out;
  out.precision(9);
  out << value;
  return out.str();
}

[[noreturn]] void reject(const std::string& field, const std::string& value,
                         const std::string& rule) {
  throw Error("invalid quantization parameters: " + field + " = " + value + ": " + rule);
}

std::string at_index(const char* field, size_t i, size_t count) {
  return count == 1 ? std::string(field) : std::string(field) + "[" + std::to_string(i) + "]";
}

}  // namespace

QuantParams QuantParams::per_tensor(DType dtype, double scale, int64_t zero_point,
                                    std::optional<int64_t> quant_min,
                                    std::optional<int64_t> quant_max) {
  QuantParams qp;
  qp.dtype = dtype;
  qp.qscheme = QScheme::PerTensorAffine;
  qp.scales = {scale};
  qp.zero_points = {static_cast<double>(zero_point)};
  if (is_integer_quantized(dtype)) {
    qp.quant_min = quant_min.value_or(dtype_min(dtype));
    qp.quant_max = quant_max.value_or(dtype_max(dtype));
  }
  validate(qp);
  return qp;
}

QuantParams QuantParams::per_channel(DType dtype, std::vector<double> scales,
                                     std::vector<int64_t> zero_points, int64_t axis,
                                     std::optional<int64_t> quant_min,
                                     std::optional<int64_t> quant_max) {
  QuantParams qp;
  qp.dtype = dtype;
  qp.qscheme = QScheme::PerChannelAffine;
  qp.scales = std::move(scales);
  qp.zero_points.assign(zero_points.begin(), zero_points.end());
  qp.axis = axis;
  if (is_integer_quantized(dtype)) {
    qp.quant_min = quant_min.value_or(dtype_min(dtype));
    qp.quant_max = quant_max.value_or(dtype_max(dtype));
  }
  validate(qp);
  return qp;
}

QuantParams QuantParams::per_channel_float_qparams(DType dtype, std::vector<float> scales,
                                                   std::vector<float> zero_points,
                                                   int64_t axis) {
  QuantParams qp;
  qp.dtype = dtype;
  qp.qscheme = QScheme::PerChannelAffineFloatQParams;
  qp.scales.assign(scales.begin(), scales.end());
  qp.zero_points.assign(zero_points.begin(), zero_points.end());
  qp.axis = axis;
  qp.quant_min = dtype_min(dtype);
  qp.quant_max = dtype_max(dtype);
  validate(qp);
  return qp;
}

QuantParams QuantParams::float16() {
  QuantParams qp;
  qp.dtype = DType::Float16;
  qp.qscheme = QScheme::PerTensorAffine;
  qp.quant_min = 0;
  qp.quant_max = 0;
  return qp;
}

int64_t QuantParams::zero_point(int64_t channel) const {
  return static_cast<int64_t>(zero_points.at(per_channel() ? channel : 0));
}

bool QuantParams::operator==(const QuantParams& o) const {
  return dtype == o.dtype && qscheme == o.qscheme && scales == o.scales &&
         zero_points == o.zero_points && (!per_channel() || axis == o.axis) &&
         quant_min == o.quant_min && quant_max == o.quant_max;
}

std::string QuantParams::to_string() const {
  std::ostringstream out;
  out << qconform::to_string(dtype) << " " << qconform::to_string(qscheme);
  if (dtype == DType::Float16) return out.str();
  out << " scale=";
  for (size_t i = 0; i < scales.size() && i < 4; ++i) out << (i ? "," : "") << fmt(scales[i]);
  if (scales.size() > 4) out << ",...(" << scales.size() << ")";
  out << " zero_point=";
  for (size_t i = 0; i < zero_points.size() && i < 4; ++i)
    out << (i ? "," : "") << fmt(zero_points[i]);
  if (zero_points.size() > 4) out << ",...";
  if (per_channel()) out << " axis=" << axis;
  out << " range=[" << quant_min << ", " << quant_max << "]";
  return out.str();
}

void validate(const QuantParams& qp) {
  // float16 is a cast, not an affine map: it has no scale, zero point or range to check.
  if (qp.dtype == DType::Float16) return;

  // Only integer dtypes have an affine map; float32 means "not quantized".
  if (!is_integer_quantized(qp.dtype))
    reject("dtype", to_string(qp.dtype), "is not a quantized integer dtype");

  // The integer range must be non-empty and stored by the dtype, or quantize would
  // produce values the storage cannot hold (quant_min/quant_max may narrow it, as the
  // int16-on-qint32 reference modules and reduce_range do, never widen it).
  if (qp.quant_min > qp.quant_max)
    reject("quant_min", std::to_string(qp.quant_min),
           "must be <= quant_max (" + std::to_string(qp.quant_max) + ")");
  if (qp.quant_min < dtype_min(qp.dtype))
    reject("quant_min", std::to_string(qp.quant_min),
           "is below the range of " + to_string(qp.dtype) + " (" +
               std::to_string(dtype_min(qp.dtype)) + ")");
  if (qp.quant_max > dtype_max(qp.dtype))
    reject("quant_max", std::to_string(qp.quant_max),
           "is above the range of " + to_string(qp.dtype) + " (" +
               std::to_string(dtype_max(qp.dtype)) + ")");

  // Per-tensor means exactly one pair; per-channel one pair per channel.
  if (qp.scales.empty()) reject("scale", "[]", "at least one scale is required");
  if (!qp.per_channel() && qp.scales.size() != 1)
    reject("scale", std::to_string(qp.scales.size()) + " values",
           to_string(qp.qscheme) + " takes exactly one scale");
  if (qp.zero_points.size() != qp.scales.size())
    reject("zero_point", std::to_string(qp.zero_points.size()) + " values",
           "must have as many entries as scale (" + std::to_string(qp.scales.size()) + ")");

  // A per-channel axis indexes a dimension; negative axes are not accepted by PyTorch's
  // quantize_per_channel either.
  if (qp.per_channel() && qp.axis < 0)
    reject("axis", std::to_string(qp.axis), "must be >= 0");

  const bool float_zero_point = qp.qscheme == QScheme::PerChannelAffineFloatQParams;
  for (size_t i = 0; i < qp.scales.size(); ++i) {
    const double s = qp.scales[i];
    // Quantizing multiplies by 1/scale and dequantizing by scale: a zero, negative,
    // infinite or NaN scale makes the map non-invertible or poisons every value.
    // (float qparams allow scale 0 in PyTorch only as a degenerate constant row; we
    // keep the stricter rule so that every accepted map is invertible.)
    if (!(s > 0.0) || !std::isfinite(s))
      reject(at_index("scale", i, qp.scales.size()), fmt(s), "must be > 0 and finite");
    // Scales are used as float32 by every engine; one that underflows to zero in
    // float32 divides by zero there.
    if (static_cast<float>(s) == 0.0f)
      reject(at_index("scale", i, qp.scales.size()), fmt(s),
             "is zero in float32, which every engine computes in");

    const double z = qp.zero_points[i];
    if (!std::isfinite(z))
      reject(at_index("zero_point", i, qp.zero_points.size()), fmt(z), "must be finite");
    if (float_zero_point) continue;
    // Integral zero points are integers by definition of (1).
    if (z != std::floor(z))
      reject(at_index("zero_point", i, qp.zero_points.size()), fmt(z),
             "must be an integer for " + to_string(qp.qscheme));
    // Real 0 must be exactly representable (zero padding, ReLU, empty bias), so the
    // zero point lies inside the integer range.
    if (z < static_cast<double>(qp.quant_min) || z > static_cast<double>(qp.quant_max))
      reject(at_index("zero_point", i, qp.zero_points.size()), fmt(z),
             "must lie inside [quant_min, quant_max] = [" + std::to_string(qp.quant_min) +
                 ", " + std::to_string(qp.quant_max) + "]");
  }
}

void validate(const QuantParams& qp, const std::vector<int64_t>& tensor_sizes) {
  validate(qp);
  if (!qp.per_channel() || qp.dtype == DType::Float16) return;
  // The axis must name a dimension of the tensor being quantized...
  const auto rank = static_cast<int64_t>(tensor_sizes.size());
  if (qp.axis >= rank)
    reject("axis", std::to_string(qp.axis),
           "is outside the tensor's rank " + std::to_string(rank));
  // ...and there is one (scale, zero_point) per index along it.
  if (tensor_sizes[qp.axis] != qp.channels())
    reject("scale", std::to_string(qp.channels()) + " values",
           "must match the tensor's size " + std::to_string(tensor_sizes[qp.axis]) +
               " along axis " + std::to_string(qp.axis));
}

}  // namespace qconform
