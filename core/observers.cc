#include "core/observers.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "core/cpu.h"
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

void tensor_min_max(const Tensor& x, float* min, float* max) { values_min_max(x.data.data(), x.numel(), min, max); }

namespace {

// min and max of x[0, n) for n >= 8, the same floats as the scalar loop below; false where
// they could differ, and the caller then takes that loop: a NaN (nan_min / nan_max's rule)
// or a zero extreme (which zero, +0 or -0, the loop keeps depends on the order of
// comparison; observers store min_val / max_val, so the sign must be the loop's).
__attribute__((target("avx2"))) bool min_max_without_nan(const float* x, int64_t n, float* min, float* max) {
  __m256 lo = _mm256_loadu_ps(x), hi = lo, unordered = _mm256_cmp_ps(lo, lo, _CMP_UNORD_Q);
  int64_t i = 8;
  // Four vectors at a time into independent extremes (one chain waits on min_ps's latency
  // each step: an LSTM's dynamic quantization spent 4 % of its time here), merged after:
  // without NaN and zero extremes the order of comparison does not change the floats.
  if (n >= 40) {
    __m256 lo1 = lo, lo2 = lo, lo3 = lo, hi1 = hi, hi2 = hi, hi3 = hi, unordered1 = unordered;
    for (; i + 32 <= n; i += 32) {
      const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
      const __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
      lo = _mm256_min_ps(lo, a), lo1 = _mm256_min_ps(lo1, b), lo2 = _mm256_min_ps(lo2, c), lo3 = _mm256_min_ps(lo3, d);
      hi = _mm256_max_ps(hi, a), hi1 = _mm256_max_ps(hi1, b), hi2 = _mm256_max_ps(hi2, c), hi3 = _mm256_max_ps(hi3, d);
      unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
      unordered1 = _mm256_or_ps(unordered1, _mm256_cmp_ps(c, d, _CMP_UNORD_Q));
    }
    lo = _mm256_min_ps(_mm256_min_ps(lo, lo1), _mm256_min_ps(lo2, lo3));
    hi = _mm256_max_ps(_mm256_max_ps(hi, hi1), _mm256_max_ps(hi2, hi3));
    unordered = _mm256_or_ps(unordered, unordered1);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    lo = _mm256_min_ps(lo, v);
    hi = _mm256_max_ps(hi, v);
    unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  if (_mm256_movemask_ps(unordered)) return false;
  alignas(32) float l[8], h[8];
  _mm256_store_ps(l, lo);
  _mm256_store_ps(h, hi);
  float mn = l[0], mx = h[0];
  for (int k = 1; k < 8; ++k) {
    mn = std::min(mn, l[k]);
    mx = std::max(mx, h[k]);
  }
  for (; i < n; ++i) {
    if (std::isnan(x[i])) return false;
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
  if (mn == 0.0f || mx == 0.0f) return false;
  *min = mn;
  *max = mx;
  return true;
}

}  // namespace

void values_min_max(const float* x, int64_t n, float* min, float* max) {
  *min = 0.0f;
  *max = 0.0f;
  if (n == 0) return;
  if (cpu_has_avx2() && n >= 8 && min_max_without_nan(x, n, min, max)) return;
  *min = *max = x[0];
  for (int64_t i = 0; i < n; ++i) {
    *min = nan_min(*min, x[i]);
    *max = nan_max(*max, x[i]);
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

QuantParams UniformObserver::qparams_header() const {
  QuantParams qp;
  qp.dtype = options_.dtype;
  qp.qscheme = options_.qscheme;
  qp.quant_min = quant_min_;
  qp.quant_max = quant_max_;
  return qp;
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
    // quant_min - round(min- / scale).to(torch.int), clamped, all in int32: the float to
    // int32 conversion yields INT32_MIN out of range (x86), and the subtraction wraps. For
    // the full qint32 range this is what makes PyTorch's zero point 0.
    const float shift = std::nearbyint(min_neg / s);  // torch.round: half to even
    const int32_t shift_int = (shift >= -2147483648.0f && shift < 2147483648.0f)
                                  ? static_cast<int32_t>(shift)
                                  : std::numeric_limits<int32_t>::min();
    const auto wrapped = static_cast<int32_t>(static_cast<uint32_t>(static_cast<int32_t>(quant_min_)) -
                                              static_cast<uint32_t>(shift_int));
    z = static_cast<double>(std::min<int64_t>(std::max<int64_t>(wrapped, quant_min_), quant_max_));
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
  QuantParams qp = qparams_header();
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
                                               std::vector<float>* maxs) {
  // PyTorch flattens from dimension 1, so a 1-D input fails there.
  if (x.dim() < 2)
    throw Error(name() + ": input of shape " + shape_to_string(x.sizes) +
                " has rank < 2 (PyTorch: \"Dimension out of range (expected to be in range of "
                "[-1, 0], but got 1)\")");
  const int64_t axis = options_.ch_axis < 0 ? options_.ch_axis + x.dim() : options_.ch_axis;
  if (axis < 0 || axis >= x.dim())
    throw Error("PerChannelMinMaxObserver: ch_axis " + std::to_string(options_.ch_axis) +
                " is outside the rank of a tensor of shape " + shape_to_string(x.sizes));
  axis_ = axis;
  const ChannelIndexer channel(x.sizes, axis);
  mins->assign(channel.channels, kInf);
  maxs->assign(channel.channels, -kInf);
  channel.for_each_run(x.numel(), [&](int64_t begin, int64_t end, int64_t c) {
    float lo = (*mins)[c], hi = (*maxs)[c];
    for (int64_t i = begin; i < end; ++i) {
      lo = nan_min(lo, x.data[i]);
      hi = nan_max(hi, x.data[i]);
    }
    (*mins)[c] = lo;
    (*maxs)[c] = hi;
  });
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
  QuantParams qp = qparams_header();
  qp.axis = axis_;
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
  return choose_quantization_params(min, max, qmin, qmax, /*preserve_sparsity=*/false, reduce_range, dtype);
}

QuantParams choose_quantization_params(float min, float max, int64_t qmin, int64_t qmax,
                                       bool preserve_sparsity, bool reduce_range, DType dtype) {
  if (!(min <= max))
    throw Error("In ChooseQuantizationParams, min should be less than or equal to max");
  if (reduce_range) {  // C++ integer division: truncates toward zero
    qmin /= 2;
    qmax /= 2;
  }
  if (min < 0 && max > 0 && preserve_sparsity) {
    // In int arithmetic as the C++ original; the float min/max become the symmetric range.
    const int64_t symmetric_qmin = -((qmax - qmin) / 2 + 1);
    const int64_t symmetric_qmax = (qmax - qmin) / 2;
    // float / int is a float division; the larger magnitude is then used in double.
    const double max_scale = std::max(std::fabs(min / static_cast<float>(symmetric_qmin)),
                                      std::fabs(max / static_cast<float>(symmetric_qmax)));
    min = static_cast<float>(max_scale * static_cast<double>(symmetric_qmin));
    max = static_cast<float>(max_scale * static_cast<double>(symmetric_qmax));
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
  double initial = error_min < error_max ? from_min : from_max;
  // Symmetric: the zero point is forced to the middle of the range.
  if (min < 0 && max > 0 && preserve_sparsity)
    initial = static_cast<double>(qmin + qmax) / 2;
  int64_t zero_point;
  // A NaN range (an interval the recurrent bounds propagate from infinities) leaves `initial`
  // NaN; PyTorch then converts NaN to int32, which C++ leaves undefined (x86 gives INT32_MIN, out
  // of range anyway). The harness pins it to qmin: defined, and any scale is as good there
  // (found by the UBSan build).
  if (std::isnan(initial)) zero_point = qmin;
  else if (initial < qmin) zero_point = qmin;
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

// --- Histogram ----------------------------------------------------------------------------
// Each step below is one PyTorch tensor op on float32 data; Python scalars enter those ops
// as float32, and Python-side arithmetic (on .item() values) is double.

namespace qconform {
namespace {

// c10::div_floor_floating, the scalar path of torch.div(..., rounding_mode='floor').
float div_floor(float a, float b) {
  if (b == 0.0f) return a / b;
  const float mod = std::fmod(a, b);
  float div = (a - mod) / b;
  if (mod != 0.0f && ((b < 0.0f) != (mod < 0.0f))) div -= 1.0f;
  if (div == 0.0f) return std::copysign(0.0f, a / b);
  float floordiv = std::floor(div);
  if (div - floordiv > 0.5f) floordiv += 1.0f;
  return floordiv;
}

// _get_norm: density * (end^3 - begin^3) / 3, in float32.
float l2_norm(float begin, float end, float density) {
  const float norm = (end * end * end - begin * begin * begin) / 3.0f;
  return density * norm;
}

}  // namespace

HistogramObserver::HistogramObserver(const ObserverOptions& options, int64_t bins,
                                     int64_t upsample_rate)
    : UniformObserver(options),
      bins_(bins),
      upsample_rate_(upsample_rate),
      destination_bins_(options.dtype == DType::QInt32 ? 4294967296.0 : 256.0),
      histogram_(bins, 0.0f),
      min_val_(kInf),
      max_val_(-kInf) {
  if (is_per_channel(options.qscheme))
    throw Error("HistogramObserver's qscheme only support torch.per_tensor_symmetric and "
                "torch.per_tensor_affine.");
  if (bins <= 0) throw Error("HistogramObserver: bins must be positive, got " + std::to_string(bins));
}

std::vector<float> HistogramObserver::histc(const Tensor& x, double lo, double hi) const {
  // torch.histc's range: the given one; the data's when it is empty; widened by 1 when
  // still empty.
  if (lo == hi && x.numel() > 0) {
    float data_lo, data_hi;
    tensor_min_max(x, &data_lo, &data_hi);
    lo = data_lo;
    hi = data_hi;
  }
  if (lo == hi) {
    lo -= 1;
    hi += 1;
  }
  if (!std::isfinite(lo) || !std::isfinite(hi))
    throw Error("torch.histc: range of [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "] is not finite");
  std::vector<float> hist(bins_, 0.0f);
  const float left = static_cast<float>(lo), right = static_cast<float>(hi);
  for (float v : x.data) {
    if (!(v >= left && v <= right)) continue;  // outside the range: not counted
    // pos = (x - left) * bins / (right - left), in float, truncated; the last edge is inclusive.
    auto pos = static_cast<int64_t>((v - left) * static_cast<float>(bins_) / (right - left));
    if (pos == bins_) pos -= 1;
    hist[pos] += 1.0f;
  }
  return hist;
}

void HistogramObserver::combine_histograms(std::vector<float>* combined, int64_t downsample_rate,
                                           int64_t start_index) const {
  // The old histogram, each bin repeated upsample_rate times, placed at start_index of a
  // grid downsample_rate times finer than the new bins (Python slice semantics).
  const int64_t length = bins_ * downsample_rate;
  const int64_t upsampled = bins_ * upsample_rate_;
  auto python_index = [length](int64_t i) {
    if (i < 0) i += length;
    return std::min(std::max<int64_t>(i, 0), length);
  };
  const int64_t begin = python_index(start_index), end = python_index(upsampled + start_index);
  if (std::max<int64_t>(end - begin, 0) != upsampled)
    throw Error("HistogramObserver: shape mismatch combining histograms (PyTorch raises here too)");
  // integral = cumsum(fine, dtype=double)[downsample_rate - 1 :: downsample_rate], where
  // fine[begin + i] = histogram[i / upsample_rate] and 0 elsewhere; streamed, not stored.
  std::vector<double> integral;
  integral.reserve(bins_);
  double running = 0.0;
  for (int64_t i = 0; i < length; ++i) {
    if (i >= begin && i < end) running += static_cast<double>(histogram_[(i - begin) / upsample_rate_]);
    if (i % downsample_rate == downsample_rate - 1) integral.push_back(running);
  }
  for (int64_t b = 0; b < bins_; ++b) {
    // shifted is a float32 tensor: the previous integral is rounded to float.
    const double shifted = b == 0 ? 0.0 : static_cast<double>(static_cast<float>(integral[b - 1]));
    const double interpolated = (integral[b] - shifted) / static_cast<double>(upsample_rate_);
    (*combined)[b] = (*combined)[b] + static_cast<float>(interpolated);
  }
}

namespace {
// int(v) handed to torch.histc as an int64 Scalar: PyTorch raises beyond int64.
double histc_bound(float v) {
  const double truncated = std::trunc(static_cast<double>(v));
  if (!(std::abs(truncated) < 9.2233720368547758e18))
    throw Error("HistogramObserver: int(" + std::to_string(v) +
                ") does not fit torch.histc's int64 bound (PyTorch: \"Overflow when unpacking long\")");
  return truncated;
}
}  // namespace

void HistogramObserver::observe(const Tensor& x) {
  if (x.data.empty()) return;
  float lo, hi;
  tensor_min_max(x, &lo, &hi);
  const bool uninitialized = min_val_ == kInf && max_val_ == -kInf;
  if (uninitialized || min_val_ == max_val_) {
    min_val_ = lo;
    max_val_ = hi;
    // int(min_val): Python truncates toward zero.
    histogram_ = histc(x, histc_bound(lo), histc_bound(hi));
    return;
  }
  float combined_min = nan_min(lo, min_val_);
  float combined_max = nan_max(hi, max_val_);
  // _adjust_min_max
  const float bins_f = static_cast<float>(bins_);
  const float hist_bin_width = (max_val_ - min_val_) / static_cast<float>(bins_ * upsample_rate_);
  const float downsample = std::ceil((combined_max - combined_min) / (bins_f * hist_bin_width));
  // PyTorch allocates bins * downsample_rate floats here; past 2^32 of them (16 GiB, more
  // than this machine has) it fails, and so does the harness, without trying.
  if (!(downsample >= 1.0f) || static_cast<double>(downsample) * static_cast<double>(bins_) > 4294967296.0)
    throw Error("HistogramObserver: combining histograms needs " + std::to_string(downsample) + " x " +
                std::to_string(bins_) + " bins (PyTorch fails to allocate them)");
  const auto downsample_rate = static_cast<int64_t>(downsample);
  const float e = static_cast<float>(downsample_rate) * (bins_f * hist_bin_width) -
                  (combined_max - combined_min);
  combined_max = combined_max + e;
  const auto start_index =
      static_cast<int64_t>(std::nearbyint((min_val_ - combined_min) / hist_bin_width));

  std::vector<float> combined = histc(x, histc_bound(combined_min), histc_bound(combined_max));
  if (combined_min == min_val_ && combined_max == max_val_) {
    for (int64_t b = 0; b < bins_; ++b) combined[b] = combined[b] + histogram_[b];
  } else {
    combine_histograms(&combined, downsample_rate, start_index);
  }
  histogram_ = std::move(combined);
  min_val_ = combined_min;
  max_val_ = combined_max;
}

double HistogramObserver::quantization_error(int64_t start_bin, int64_t end_bin) const {
  const double bin_width = (static_cast<double>(max_val_) - static_cast<double>(min_val_)) /
                           static_cast<double>(bins_);
  const double dst_bin_width =
      bin_width * static_cast<double>(end_bin - start_bin + 1) / destination_bins_;
  if (dst_bin_width == 0.0) return 0.0;
  const float bw = static_cast<float>(bin_width);
  const float dbw = static_cast<float>(dst_bin_width);
  const float half_dbw = static_cast<float>(dst_bin_width / 2);
  const float minus_half_dbw = static_cast<float>(-dst_bin_width / 2);
  const float last_dst_bin = static_cast<float>(destination_bins_ - 1);
  // The middle term's norm does not depend on the bin.
  const float full_bin_norm = (half_dbw * half_dbw * half_dbw -
                               minus_half_dbw * minus_half_dbw * minus_half_dbw) / 3.0f;
  double sum = 0.0;
  for (int64_t b = 0; b < bins_; ++b) {
    const float src_begin = static_cast<float>(b - start_bin) * bw;
    const float src_end = src_begin + bw;
    const float dst_of_begin = std::min(std::max(div_floor(src_begin, dbw), 0.0f), last_dst_bin);
    const float dst_of_begin_center = (dst_of_begin + 0.5f) * dbw;
    const float dst_of_end = std::min(std::max(div_floor(src_end, dbw), 0.0f), last_dst_bin);
    const float density = histogram_[b] / bw;
    float norm = 0.0f;
    norm += l2_norm(src_begin - dst_of_begin_center, half_dbw, density);
    norm += (dst_of_end - dst_of_begin - 1.0f) * (density * full_bin_norm);
    const float dst_of_end_center = dst_of_end * dbw + half_dbw;
    norm += l2_norm(minus_half_dbw, src_end - dst_of_end_center, density);
    sum += static_cast<double>(norm);
  }
  // norm.sum() is a float32 reduction; its .item() is compared in double.
  return static_cast<double>(static_cast<float>(sum));
}

void HistogramObserver::non_linear_param_search(float* new_min, float* new_max) const {
  const float bin_width = (max_val_ - min_val_) / static_cast<float>(bins_);
  double total_sum = 0.0;
  std::vector<float> cumulative(bins_);
  for (int64_t b = 0; b < bins_; ++b) {  // torch.cumsum accumulates float in double
    total_sum += static_cast<double>(histogram_[b]);
    cumulative[b] = static_cast<float>(total_sum);
  }
  const double total = static_cast<double>(static_cast<float>(total_sum));
  const double stepsize = 1e-5;
  double alpha = 0.0, beta = 1.0;
  int64_t start_bin = 0, end_bin = bins_ - 1;
  double norm_min = std::numeric_limits<double>::infinity();
  while (alpha < beta) {
    const double next_alpha = alpha + stepsize;
    const double next_beta = beta - stepsize;
    int64_t l = start_bin, r = end_bin;
    // Tensor-vs-Python-float comparisons run in float32.
    while (l < end_bin && cumulative[l] < static_cast<float>(next_alpha * total)) ++l;
    while (r > start_bin && cumulative[r] > static_cast<float>(next_beta * total)) --r;
    int64_t next_start_bin = start_bin, next_end_bin = end_bin;
    if ((l - start_bin) > (end_bin - r)) {
      next_start_bin = l;
      alpha = next_alpha;
    } else {
      next_end_bin = r;
      beta = next_beta;
    }
    if (next_start_bin == start_bin && next_end_bin == end_bin) continue;
    const double norm = quantization_error(next_start_bin, next_end_bin);
    if (norm > norm_min) break;
    norm_min = norm;
    start_bin = next_start_bin;
    end_bin = next_end_bin;
  }
  *new_min = min_val_ + bin_width * static_cast<float>(start_bin);
  *new_max = min_val_ + bin_width * static_cast<float>(end_bin + 1);
}

QuantParams HistogramObserver::calculate_qparams() const {
  QuantParams qp = qparams_header();
  double scale = 1.0, zero_point = 0.0;
  if (!(min_val_ == kInf && max_val_ == -kInf)) {
    float new_min, new_max;
    non_linear_param_search(&new_min, &new_max);
    qparams_for(new_min, new_max, &scale, &zero_point);
  }
  qp.scales = {scale};
  qp.zero_points = {zero_point};
  return qp;
}

}  // namespace qconform

namespace qconform {

FakeQuantize::FakeQuantize(std::unique_ptr<UniformObserver> observer, bool fused)
    : observer_(std::move(observer)), fused_(fused) {}

QuantParams FakeQuantize::forward_qparams() const {
  if (!fused_) return calculate_qparams();
  const bool symmetric = is_symmetric(observer_->qscheme());
  const DType dtype = observer_->dtype();
  const int64_t qmin = observer_->quant_min(), qmax = observer_->quant_max();
  auto rule = [&](float lo, float hi) {
    return choose_quantization_params(lo, hi, qmin, qmax, symmetric, /*reduce_range=*/false, dtype);
  };
  if (const auto* per_tensor = dynamic_cast<const MinMaxObserver*>(observer_.get())) {
    QuantParams qp = rule(per_tensor->min_val(), per_tensor->max_val());
    qp.scales[0] = static_cast<double>(static_cast<float>(qp.scales[0]));  // float32 buffer
    qp.quant_min = qmin;
    qp.quant_max = qmax;
    return qp;
  }
  const auto& per_channel = dynamic_cast<const PerChannelMinMaxObserver&>(*observer_);
  QuantParams qp;
  qp.dtype = dtype;
  qp.qscheme = QScheme::PerChannelAffine;
  qp.axis = per_channel.axis();
  qp.quant_min = qmin;
  qp.quant_max = qmax;
  for (size_t c = 0; c < per_channel.min_vals().size(); ++c) {
    const QuantParams channel = rule(per_channel.min_vals()[c], per_channel.max_vals()[c]);
    // The fused op stores scales in a float32 buffer.
    qp.scales.push_back(static_cast<double>(static_cast<float>(channel.scale())));
    qp.zero_points.push_back(channel.zero_points[0]);
  }
  return qp;
}

Tensor FakeQuantize::forward(const Tensor& x) {
  observe(x);
  QuantParams qp = forward_qparams();
  // Fake quantization clamps to the observer's range, not the dtype's.
  qp.qscheme = as_tensor_qparams(qp).qscheme;
  return fake_quantize(x, qp);
}

}  // namespace qconform
