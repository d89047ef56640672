#include "core/observers.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/quantize.h"

namespace qconform {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// torch.min / torch.max on float tensors propagate NaN.
float nan_min(float a, float b) { return (std::isnan(a) || std::isnan(b)) ? NAN : std::min(a, b); }
float nan_max(float a, float b) { return (std::isnan(a) || std::isnan(b)) ? NAN : std::max(a, b); }

void check_min_le_max(float min_val, float max_val) {
  if (!(min_val <= max_val)) {
    std::ostringstream out;
    out << "min " << min_val << " should be less than max " << max_val;
    throw Error(out.str());
  }
}

}  // namespace

void tensor_min_max(const Tensor& x, float* min, float* max) {
  *min = 0.0f;
  *max = 0.0f;
  if (x.data.empty()) return;
  *min = *max = x.data[0];
  for (float v : x.data) {
    *min = nan_min(*min, v);
    *max = nan_max(*max, v);
  }
}

QuantParams as_tensor_qparams(QuantParams qparams) {
  if (qparams.qscheme == QScheme::PerTensorSymmetric) qparams.qscheme = QScheme::PerTensorAffine;
  if (qparams.qscheme == QScheme::PerChannelSymmetric) qparams.qscheme = QScheme::PerChannelAffine;
  // quantize_per_tensor / quantize_per_channel clamp to the dtype's storage range, not to
  // the observer's (possibly reduced or customized) range.
  if (is_integer_quantized(qparams.dtype)) {
    qparams.quant_min = dtype_min(qparams.dtype);
    qparams.quant_max = dtype_max(qparams.dtype);
  }
  return qparams;
}

// --- UniformObserver ----------------------------------------------------------------------

UniformObserver::UniformObserver(const ObserverOptions& options) : options_(options) {
  const auto d = options.dtype;
  if (d != DType::QInt8 && d != DType::QUInt8 && d != DType::QUInt4x2 && d != DType::QInt32)
    throw Error("Default Observer only works for qint8, quint8 and quint4x2 data type (got " +
                to_string(d) + ")");
  customized_range_ = options.quant_min.has_value() && options.quant_max.has_value();
  if (customized_range_) {
    const int64_t qmin = *options.quant_min, qmax = *options.quant_max;
    if (!(qmin <= 0 && 0 <= qmax))
      throw Error("Used-specified quantization range must include 0. (quant_min=" +
                  std::to_string(qmin) + ", quant_max=" + std::to_string(qmax) + ")");
    if (!(qmin < qmax))
      throw Error("qmin must be strictly less than qmax for user-specified quantization range. "
                  "(quant_min=" + std::to_string(qmin) + ", quant_max=" + std::to_string(qmax) + ")");
    const int64_t length = qmax - qmin + 1;
    if (d == DType::QInt8 && !(length > 0 && length <= 256))
      throw Error("quantization range should be positive and not exceed the maximum bit range "
                  "(=256).");
    if (d == DType::QInt32 && !(length > 0 && length <= (int64_t{1} << 31)))
      throw Error("quantization range should be positive and not exceed the maximum bit range "
                  "(=4294967296).");
    quant_min_ = qmin;
    quant_max_ = qmax;
    if (options.reduce_range) {  // Python's floor division
      quant_min_ = static_cast<int64_t>(std::floor(quant_min_ / 2.0));
      quant_max_ = static_cast<int64_t>(std::floor(quant_max_ / 2.0));
    }
  } else if (d == DType::QInt8) {
    quant_min_ = options.reduce_range ? -64 : -128;
    quant_max_ = options.reduce_range ? 63 : 127;
  } else if (d == DType::QUInt8) {
    quant_min_ = 0;
    quant_max_ = options.reduce_range ? 127 : 255;
  } else if (d == DType::QInt32) {
    quant_min_ = std::numeric_limits<int32_t>::min();
    quant_max_ = std::numeric_limits<int32_t>::max();
  } else {
    quant_min_ = 0;
    quant_max_ = 15;
  }
  if (is_symmetric(options.qscheme) && options.reduce_range && d == DType::QUInt8)
    throw Error("Cannot reduce range for symmetric quantization for quint8");
}

void UniformObserver::qparams_for(float min_val, float max_val, double* scale,
                                  double* zero_point) const {
  check_min_le_max(min_val, max_val);
  const float min_neg = std::min(min_val, 0.0f);
  const float max_pos = std::max(max_val, 0.0f);
  const float eps = options_.eps;
  const float qrange = static_cast<float>(quant_max_ - quant_min_);
  float s = 1.0f;
  double z = 0.0;
  if (is_symmetric(options_.qscheme)) {
    const float half_range = static_cast<float>(static_cast<double>(quant_max_ - quant_min_) / 2);
    s = std::max(std::max(-min_neg, max_pos) / half_range, eps);
    if (options_.dtype == DType::QUInt8)
      z = customized_range_ ? static_cast<double>((quant_min_ + quant_max_) / 2) : 128.0;
  } else if (options_.qscheme == QScheme::PerChannelAffineFloatQParams) {
    s = (max_val - min_val) / qrange;
    if (!(s > eps)) s = 1.0f;
    z = static_cast<double>(-min_val / s);  // float32 division, kept as a float value
  } else {
    s = std::max((max_pos - min_neg) / qrange, eps);
    const float shift = std::nearbyint(min_neg / s);  // torch.round: half to even
    z = static_cast<double>(quant_min_ - static_cast<int64_t>(shift));
    z = std::min(std::max(z, static_cast<double>(quant_min_)), static_cast<double>(quant_max_));
  }
  *scale = static_cast<double>(s);
  *zero_point = z;
}

// --- MinMax -------------------------------------------------------------------------------

MinMaxObserver::MinMaxObserver(const ObserverOptions& options)
    : UniformObserver(options), min_val_(kInf), max_val_(-kInf) {
  if (is_per_channel(options.qscheme))
    throw Error(
        "MinMaxObserver's qscheme only support torch.per_tensor_symmetric and "
        "torch.per_tensor_affine.");
}

void MinMaxObserver::observe(const Tensor& x) {
  if (x.data.empty()) return;
  float lo, hi;
  tensor_min_max(x, &lo, &hi);
  min_val_ = nan_min(lo, min_val_);
  max_val_ = nan_max(hi, max_val_);
}

QuantParams MinMaxObserver::calculate_qparams() const {
  QuantParams qp;
  qp.dtype = options_.dtype;
  qp.qscheme = options_.qscheme;
  qp.quant_min = quant_min_;
  qp.quant_max = quant_max_;
  double scale = 1.0, zero_point = 0.0;
  // Never observed: PyTorch warns and returns scale 1, zero point 0.
  if (!(min_val_ == kInf && max_val_ == -kInf)) qparams_for(min_val_, max_val_, &scale, &zero_point);
  qp.scales = {scale};
  qp.zero_points = {zero_point};
  return qp;
}

MovingAverageMinMaxObserver::MovingAverageMinMaxObserver(const ObserverOptions& options)
    : MinMaxObserver(options) {}

void MovingAverageMinMaxObserver::observe(const Tensor& x) {
  if (x.data.empty()) return;
  float lo, hi;
  tensor_min_max(x, &lo, &hi);
  if (min_val_ == kInf && max_val_ == -kInf) {
    min_val_ = lo;
    max_val_ = hi;
    return;
  }
  const float c = options_.averaging_constant;
  min_val_ = min_val_ + c * (lo - min_val_);  // three float32 roundings, as the tensor ops
  max_val_ = max_val_ + c * (hi - max_val_);
}

// --- PerChannel ---------------------------------------------------------------------------

PerChannelMinMaxObserver::PerChannelMinMaxObserver(const ObserverOptions& options)
    : UniformObserver(options) {
  if (!is_per_channel(options.qscheme))
    throw Error(
        "PerChannelMinMaxObserver's qscheme only support torch.per_channel_symmetric, "
        "torch.per_channel_affine and torch.per_channel_affine_float_qparams.");
}

void PerChannelMinMaxObserver::channel_min_max(const Tensor& x, std::vector<float>* mins,
                                               std::vector<float>* maxs) const {
  const int64_t axis = options_.ch_axis < 0 ? options_.ch_axis + x.dim() : options_.ch_axis;
  if (axis < 0 || axis >= x.dim())
    throw Error("PerChannelMinMaxObserver: ch_axis " + std::to_string(options_.ch_axis) +
                " is outside the rank of a tensor of shape " + shape_to_string(x.sizes));
  const ChannelIndexer channel(x.sizes, axis);
  mins->assign(channel.channels, kInf);
  maxs->assign(channel.channels, -kInf);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = channel.channel_of(i);
    (*mins)[c] = nan_min((*mins)[c], x.data[i]);
    (*maxs)[c] = nan_max((*maxs)[c], x.data[i]);
  }
}

void PerChannelMinMaxObserver::observe(const Tensor& x) {
  if (x.data.empty()) return;
  std::vector<float> lo, hi;
  channel_min_max(x, &lo, &hi);
  if (min_vals_.empty()) {
    min_vals_ = lo;
    max_vals_ = hi;
    return;
  }
  if (lo.size() != min_vals_.size())
    throw Error("PerChannelMinMaxObserver: " + std::to_string(lo.size()) +
                " channels observed after " + std::to_string(min_vals_.size()));
  for (size_t c = 0; c < lo.size(); ++c) {
    min_vals_[c] = nan_min(lo[c], min_vals_[c]);
    max_vals_[c] = nan_max(hi[c], max_vals_[c]);
  }
}

QuantParams PerChannelMinMaxObserver::calculate_qparams() const {
  QuantParams qp;
  qp.dtype = options_.dtype;
  qp.qscheme = options_.qscheme;
  qp.axis = options_.ch_axis;
  qp.quant_min = quant_min_;
  qp.quant_max = quant_max_;
  if (min_vals_.empty()) {  // never observed: PyTorch's default, one channel
    qp.scales = {1.0};
    qp.zero_points = {0.0};
    return qp;
  }
  qp.scales.resize(min_vals_.size());
  qp.zero_points.resize(min_vals_.size());
  for (size_t c = 0; c < min_vals_.size(); ++c)
    qparams_for(min_vals_[c], max_vals_[c], &qp.scales[c], &qp.zero_points[c]);
  return qp;
}

MovingAveragePerChannelMinMaxObserver::MovingAveragePerChannelMinMaxObserver(
    const ObserverOptions& options)
    : PerChannelMinMaxObserver(options) {}

void MovingAveragePerChannelMinMaxObserver::observe(const Tensor& x) {
  if (x.data.empty()) return;
  std::vector<float> lo, hi;
  channel_min_max(x, &lo, &hi);
  if (min_vals_.empty()) {
    min_vals_ = lo;
    max_vals_ = hi;
    return;
  }
  const float c = options_.averaging_constant;
  for (size_t i = 0; i < lo.size(); ++i) {
    min_vals_[i] = min_vals_[i] + c * (lo[i] - min_vals_[i]);
    max_vals_[i] = max_vals_[i] + c * (hi[i] - max_vals_[i]);
  }
}

// --- FixedQParams, Placeholder ---------------------------------------------------------------

FixedQParamsObserver::FixedQParamsObserver(float scale, int64_t zero_point, DType dtype,
                                           int64_t quant_min, int64_t quant_max)
    : qparams_(QuantParams::per_tensor(dtype, scale, zero_point, quant_min, quant_max)) {}

PlaceholderObserver::PlaceholderObserver(DType dtype, std::optional<DType> compute_dtype)
    : dtype_(dtype), compute_dtype_(compute_dtype) {}

QuantParams PlaceholderObserver::calculate_qparams() const {
  throw Error("calculate_qparams should not be called for PlaceholderObserver");
}

// --- the engines' dynamic rule ---------------------------------------------------------------

QuantParams choose_dynamic_qparams(float min, float max, int64_t qmin, int64_t qmax,
                                   bool reduce_range, DType dtype) {
  if (!(min <= max))
    throw Error("In ChooseQuantizationParams, min should be less than or equal to max");
  if (reduce_range) {  // C++ integer division: truncates toward zero
    qmin /= 2;
    qmax /= 2;
  }
  min = std::min(min, 0.0f);
  max = std::max(max, 0.0f);
  if (!(qmin < qmax)) throw Error("In ChooseQuantizationParams, qmin should be less than qmax");

  double scale = (static_cast<double>(max) - min) / static_cast<double>(qmax - qmin);
  if (static_cast<float>(scale) == 0.0f || std::isinf(1.0f / static_cast<float>(scale)))
    scale = 0.1;

  // Scales below fp16's smallest normal are raised to it, stretching the range.
  constexpr float kSmallScale = 6.1e-5f;
  if (scale < kSmallScale) {
    const float original = static_cast<float>(scale);
    scale = kSmallScale;
    if (min == 0.0f) {
      max = kSmallScale * static_cast<float>(qmax - qmin);
    } else if (max == 0.0f) {
      min = -kSmallScale * static_cast<float>(qmax - qmin);
    } else {
      const float amplifier = kSmallScale / original;
      min *= amplifier;
      max *= amplifier;
    }
  }

  // Either end pins the zero point; use the one whose terms are smaller (less rounding).
  const double from_min = static_cast<double>(qmin) - min / scale;
  const double from_max = static_cast<double>(qmax) - max / scale;
  const double error_min = std::abs(static_cast<double>(qmin)) - std::abs(min / scale);
  const double error_max = std::abs(static_cast<double>(qmax)) - std::abs(max / scale);
  const double initial = error_min < error_max ? from_min : from_max;
  int64_t zero_point;
  if (initial < qmin) zero_point = qmin;
  else if (initial > qmax) zero_point = qmax;
  else zero_point = static_cast<int64_t>(std::nearbyint(initial));

  QuantParams qp;
  qp.dtype = dtype;
  qp.qscheme = QScheme::PerTensorAffine;
  qp.scales = {scale};
  qp.zero_points = {static_cast<double>(zero_point)};
  // The quantized activations use the dtype's full storage range: the reduced range
  // shapes scale and zero point, and values never leave it because it covers [min, max].
  qp.quant_min = dtype_min(dtype);
  qp.quant_max = dtype_max(dtype);
  return qp;
}

}  // namespace qconform
