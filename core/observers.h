#pragma once
// Observers: statistics in, QuantParams out, with PyTorch 1.13's arithmetic
// (torch/ao/quantization/observer.py). PyTorch computes calculate_qparams with float32
// tensor ops; so do we, one rounding per tensor op, in the same order:
//
//   affine:     scale = max((max+ - min-) / float(qmax - qmin), eps)
//               zero_point = clamp(qmin - round_half_even(min- / scale), qmin, qmax)
//   symmetric:  scale = max(max(-min-, max+) / (float(qmax - qmin) / 2), eps)
//               zero_point = 0, or 128 for quint8 ((qmin + qmax) / 2 with a custom range)
//   float qparams: scale = (max - min) / float(qmax - qmin), 1 where not > eps
//               zero_point = -min / scale   (a float)
//   with min- = min(min, 0), max+ = max(max, 0).
//
// The engines' own dynamic activation path uses a different rule, in double
// (quant_utils::ChooseQuantizationParams): see choose_dynamic_qparams below.
#include <cfloat>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/qparams.h"
#include "core/tensor.h"

namespace qconform {

struct ObserverOptions {
  DType dtype = DType::QUInt8;
  QScheme qscheme = QScheme::PerTensorAffine;
  bool reduce_range = false;
  std::optional<int64_t> quant_min;  // both or neither (a "customized range")
  std::optional<int64_t> quant_max;
  float eps = FLT_EPSILON;           // torch.finfo(torch.float32).eps
  float averaging_constant = 0.01f;  // moving-average observers
  int64_t ch_axis = 0;               // per-channel observers
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual std::string name() const = 0;  // PyTorch's class name
  virtual void observe(const Tensor& x) = 0;
  // Throws for observers that have no qparams (PlaceholderObserver), with PyTorch's text.
  virtual QuantParams calculate_qparams() const = 0;
  virtual DType dtype() const = 0;
  virtual QScheme qscheme() const { return QScheme::PerTensorAffine; }
  // Whether activations under this observer are quantized per call (dynamic quantization).
  virtual bool is_dynamic() const { return false; }
};

// A named factory, as PyTorch's `MinMaxObserver.with_args(...)`: qconfigs hold these.
struct ObserverFactory {
  std::string description;  // "MinMaxObserver(dtype=torch.qint8, qscheme=...)"
  std::function<std::unique_ptr<Observer>()> make;
  std::unique_ptr<Observer> operator()() const { return make(); }
};

// Base of the min/max family: range checks, quant range and the qparams formulas above.
class UniformObserver : public Observer {
 public:
  explicit UniformObserver(const ObserverOptions& options);
  DType dtype() const override { return options_.dtype; }
  QScheme qscheme() const override { return options_.qscheme; }
  int64_t quant_min() const { return quant_min_; }
  int64_t quant_max() const { return quant_max_; }

 protected:
  // QuantParams with this observer's dtype, qscheme and range, and no scales yet.
  QuantParams qparams_header() const;
  // The formulas at the top of this file, for one channel or one tensor.
  void qparams_for(float min_val, float max_val, double* scale, double* zero_point) const;
  ObserverOptions options_;
  int64_t quant_min_ = 0, quant_max_ = 255;
  bool customized_range_ = false;
};

class MinMaxObserver : public UniformObserver {
 public:
  explicit MinMaxObserver(const ObserverOptions& options = {});
  std::string name() const override { return "MinMaxObserver"; }
  void observe(const Tensor& x) override;
  QuantParams calculate_qparams() const override;
  float min_val() const { return min_val_; }
  float max_val() const { return max_val_; }

 protected:
  float min_val_, max_val_;
};

class MovingAverageMinMaxObserver : public MinMaxObserver {
 public:
  explicit MovingAverageMinMaxObserver(const ObserverOptions& options = {});
  std::string name() const override { return "MovingAverageMinMaxObserver"; }
  // min += c * (min_now - min), likewise max; the first batch sets them directly.
  void observe(const Tensor& x) override;
};

class PerChannelMinMaxObserver : public UniformObserver {
 public:
  explicit PerChannelMinMaxObserver(const ObserverOptions& options = {});
  std::string name() const override { return "PerChannelMinMaxObserver"; }
  void observe(const Tensor& x) override;
  QuantParams calculate_qparams() const override;
  const std::vector<float>& min_vals() const { return min_vals_; }
  const std::vector<float>& max_vals() const { return max_vals_; }
  int64_t axis() const { return axis_; }

 protected:
  // Per-channel min and max of x along ch_axis.
  void channel_min_max(const Tensor& x, std::vector<float>* mins, std::vector<float>* maxs);
  std::vector<float> min_vals_, max_vals_;
  int64_t axis_ = 0;  // ch_axis made non-negative against the observed rank
};

class MovingAveragePerChannelMinMaxObserver : public PerChannelMinMaxObserver {
 public:
  explicit MovingAveragePerChannelMinMaxObserver(const ObserverOptions& options = {});
  std::string name() const override { return "MovingAveragePerChannelMinMaxObserver"; }
  void observe(const Tensor& x) override;
};

// HistogramObserver: a running histogram over [min, max], then an L2-error search for
// the clipping range (_non_linear_param_search), then the MinMax formulas on that range.
// PyTorch 1.13 bins with torch.histc(x, bins, min=int(min), max=int(max)): the range is
// truncated to integers and values outside it are dropped. Reproduced as is.
class HistogramObserver : public UniformObserver {
 public:
  explicit HistogramObserver(const ObserverOptions& options = {}, int64_t bins = 2048,
                             int64_t upsample_rate = 128);
  std::string name() const override { return "HistogramObserver"; }
  void observe(const Tensor& x) override;
  QuantParams calculate_qparams() const override;

 private:
  // torch.histc(x, bins_, min, max) with PyTorch's range rules.
  std::vector<float> histc(const Tensor& x, double min, double max) const;
  void combine_histograms(std::vector<float>* combined, int64_t downsample_rate,
                          int64_t start_index) const;
  double quantization_error(int64_t start_bin, int64_t end_bin) const;
  void non_linear_param_search(float* new_min, float* new_max) const;

  int64_t bins_;
  int64_t upsample_rate_;
  double destination_bins_;  // 2^bits of the dtype
  std::vector<float> histogram_;
  float min_val_, max_val_;
};

class FixedQParamsObserver : public Observer {
 public:
  FixedQParamsObserver(float scale, int64_t zero_point, DType dtype = DType::QUInt8,
                       int64_t quant_min = 0, int64_t quant_max = 255);
  std::string name() const override { return "FixedQParamsObserver"; }
  void observe(const Tensor&) override {}
  QuantParams calculate_qparams() const override { return qparams_; }
  DType dtype() const override { return qparams_.dtype; }

 private:
  QuantParams qparams_;
};

// Passes a dtype through: float16 weights, or "quantize per call" (dynamic activations).
class PlaceholderObserver : public Observer {
 public:
  explicit PlaceholderObserver(DType dtype = DType::Float32,
                               std::optional<DType> compute_dtype = std::nullopt);
  std::string name() const override { return "PlaceholderObserver"; }
  void observe(const Tensor&) override {}
  QuantParams calculate_qparams() const override;  // throws, as PyTorch does
  DType dtype() const override { return dtype_; }
  bool is_dynamic() const override { return compute_dtype_.has_value(); }

 private:
  DType dtype_;
  std::optional<DType> compute_dtype_;
};

// The engines' rule for quantizing activations on every call (quant_utils::
// ChooseQuantizationParams, identical to fbgemm's): in double, range widened to include
// 0, scale = (max - min) / (qmax - qmin), 0.1 if that is 0 in float or has an infinite
// float reciprocal, raised to 6.1e-5 (fp16's smallest normal) with min/max stretched,
// zero point from the end with the smaller error, nudged to an integer in [qmin, qmax].
// reduce_range halves qmin and qmax first.
QuantParams choose_dynamic_qparams(float min, float max, int64_t qmin, int64_t qmax,
                                   bool reduce_range, DType dtype = DType::QUInt8);
// The same rule with preserve_sparsity (used by the fused QAT op for symmetric configs):
// when min < 0 < max the range is made symmetric around the middle of [qmin, qmax] first,
// and the zero point is that middle. The dtype's storage range is `dtype`'s.
QuantParams choose_quantization_params(float min, float max, int64_t qmin, int64_t qmax,
                                       bool preserve_sparsity, bool reduce_range, DType dtype);

// min and max over all elements; (0, 0) for an empty tensor, as the engines use.
void tensor_min_max(const Tensor& x, float* min, float* max);
// The same over n values at x (no copy; the dynamic modules' per-call rule).
void values_min_max(const float* x, int64_t n, float* min, float* max);

// The qparams of a tensor quantized with an observer's result: its qscheme is always
// affine (symmetric is a property of how the observer chose the parameters) and it clamps
// to the dtype's range, as PyTorch's _quantize_weight does.
QuantParams as_tensor_qparams(QuantParams qparams);

}  // namespace qconform

namespace qconform {

// FakeQuantize / FusedMovingAvgObsFakeQuantize (QAT): an observer that also fake-quantizes
// what it observes. calculate_qparams() is its observer's (what convert uses). The forward
// pass of the fused variant fake-quantizes with different qparams: those of the engines'
// rule applied to the running min/max (preserve_sparsity for symmetric schemes), as
// PyTorch's fused_moving_avg_obs_fake_quant computes them.
class FakeQuantize : public Observer {
 public:
  FakeQuantize(std::unique_ptr<UniformObserver> observer, bool fused);
  std::string name() const override { return fused_ ? "FusedMovingAvgObsFakeQuantize" : "FakeQuantize"; }
  void observe(const Tensor& x) override { observer_->observe(x); }
  QuantParams calculate_qparams() const override { return observer_->calculate_qparams(); }
  DType dtype() const override { return observer_->dtype(); }
  QScheme qscheme() const override { return observer_->qscheme(); }
  // The qparams forward() fake-quantizes with (see above).
  QuantParams forward_qparams() const;
  // Observes x, then returns it fake-quantized with forward_qparams().
  Tensor forward(const Tensor& x);
  const UniformObserver& observer() const { return *observer_; }

 private:
  std::unique_ptr<UniformObserver> observer_;
  bool fused_;
};

}  // namespace qconform
