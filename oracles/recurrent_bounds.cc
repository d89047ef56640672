#include "oracles/recurrent_bounds.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/float/rnn_runner.h"
#include "core/observers.h"
#include "oracles/agreement.h"
#include "reference/rnn.h"

namespace qconform {
namespace {

constexpr double kEps = FLT_EPSILON;
// Below the normal range an ulp is no longer relative: one smallest normal per operation.
constexpr double kTiny = FLT_MIN;

// The per-side ulps of sigmoid and tanh for the current propagation.
thread_local double function_ulps = 2;

// v: the reference computation in double; d: how far either side can be from v; e: how
// far the two sides can be from each other. Both sides lie in [v - d, v + d], which is
// where the Lipschitz constants of sigmoid and tanh are taken.
struct Bounded {
  double v = 0;
  double d = 0;
  double e = 0;
};

// Products of bounds where an infinite bound times zero must stay infinite (an unbounded
// difference), not become NaN.
double times(double a, double b) { return a == 0 || b == 0 ? 0.0 : a * b; }
double plus(double a, double b) { return std::isnan(a + b) ? INFINITY : a + b; }

// One float rounding on each side: by at most half an ulp, eps/2 relative.
Bounded rounded(double v, double d, double e) {
  if (!std::isfinite(v) || !std::isfinite(d) || !std::isfinite(e)) return {v, INFINITY, INFINITY};
  const double magnitude = std::abs(v) + d;
  return {v, d + kEps / 2 * magnitude + kTiny, e + kEps * magnitude + 2 * kTiny};
}
Bounded operator+(Bounded a, Bounded b) { return rounded(a.v + b.v, plus(a.d, b.d), plus(a.e, b.e)); }
Bounded operator-(Bounded a, Bounded b) { return rounded(a.v - b.v, plus(a.d, b.d), plus(a.e, b.e)); }
Bounded operator*(Bounded a, Bounded b) {
  // |a1 b1 - a2 b2| <= |a1| |b1 - b2| + |b2| |a1 - a2|, with |a1| <= |v_a| + d_a.
  const double d = plus(plus(times(std::abs(a.v), b.d), times(std::abs(b.v), a.d)), times(a.d, b.d));
  const double e = plus(times(std::abs(a.v) + a.d, b.e), times(std::abs(b.v) + b.d, a.e));
  return rounded(a.v * b.v, d, e);
}

// f(a) for f with derivative at most `lipschitz` on [v_a - d_a, v_a + d_a], evaluated by
// each side to within function_ulps ulps.
Bounded function_of(double v, double lipschitz, const Bounded& a) {
  const double d = times(lipschitz, a.d), e = times(lipschitz, a.e);
  if (!std::isfinite(d) || !std::isfinite(e)) return {v, INFINITY, INFINITY};
  const double magnitude = std::abs(v) + d;
  return {v, d + function_ulps * kEps * magnitude + kTiny, e + 2 * function_ulps * kEps * magnitude + 2 * kTiny};
}

Bounded rnn_sigmoid(Bounded a) {
  const double nearest = std::max(0.0, std::abs(a.v) - a.d);  // sigmoid' peaks at 0
  // sigmoid'(x) = e^-x / (1 + e^-x)^2, not s (1 - s), which cancels to 0 for large x.
  const double t = std::exp(-nearest);
  return function_of(1.0 / (1.0 + std::exp(-a.v)), t / ((1.0 + t) * (1.0 + t)), a);
}

Bounded rnn_tanh(Bounded a) {
  const double nearest = std::max(0.0, std::abs(a.v) - a.d);
  const double c = std::cosh(nearest);  // tanh' = 1 / cosh^2, without 1 - tanh^2's cancellation
  return function_of(std::tanh(a.v), 1.0 / (c * c), a);
}

Bounded rnn_relu(Bounded a) { return {a.v > 0 ? a.v : 0.0, a.d, a.e}; }

// The gate projections of the reference's weights, with the error model of the pair.
class BoundedProjections {
 public:
  BoundedProjections(const ReferenceRNN& reference, const RecurrentBoundModel& model)
      : reference_(reference), model_(model) {
    const EngineOpRule& rule = engine_rule(model.engine, EngineOp::DynamicLinear);
    // LSTM and GRU (version 2) and the cells ask for reduce_range.
    reduced_ = rule.honors_reduce_range && model.reduce_range;
    fp16_ = reference.weight_dtype() == DType::Float16;
    for (int64_t i = 0; i < reference.options().parameter_sets(); ++i) {
      if (!fp16_) {
        integer_ih_.push_back(reference.get_quantized_weight_ih(i));
        integer_hh_.push_back(reference.get_quantized_weight_hh(i));
      }
    }
  }

  void project_input(int64_t set, const Bounded* x, int64_t rows, int64_t in, Bounded* out) {
    const RnnParameters& p = reference_.fake_quantized_parameters()[set];
    project(p.w_ih, p.b_ih, fp16_ ? nullptr : &integer_ih_[set], x, rows, in, out);
  }
  void project_hidden(int64_t set, const Bounded* h, int64_t rows, Bounded* out) {
    const RnnParameters& p = reference_.fake_quantized_parameters()[set];
    project(p.w_hh, p.b_hh, fp16_ ? nullptr : &integer_hh_[set], h, rows, p.w_hh.size(1), out);
  }

 private:
  void project(const Tensor& w, const std::optional<Tensor>& b, const QTensor* wq, const Bounded* x, int64_t rows,
               int64_t in, Bounded* out) const {
    const int64_t n_out = w.size(0);
    // The call's range; either side's range lies within `farthest` of it.
    double lo = 0, hi = 0, farthest = 0, widest_difference = 0;
    for (int64_t i = 0; i < rows * in; ++i) {
      lo = std::min(lo, x[i].v);
      hi = std::max(hi, x[i].v);
      farthest = std::max(farthest, x[i].d);
      widest_difference = std::max(widest_difference, x[i].e);
    }
    // Either side's scale: ChooseQuantizationParams on its range, which lies between the
    // call's range narrowed and widened by `farthest`; scales below 6.1e-5 are raised to it
    // (SMALL_SCALE_THRESHOLD). All-zero inputs quantize exactly whatever the scale.
    const double levels = reduced_ ? 127.0 : 255.0;
    const double small_scale = static_cast<double>(6.1e-5f);
    double s_hi = 0, s_lo = 0;
    if (hi - lo + 2 * farthest > 0) {
      s_hi = choose_dynamic_qparams(static_cast<float>(lo - farthest), static_cast<float>(hi + farthest), 0, 255,
                                    reduced_).scale() * (1 + std::ldexp(1.0, -20));
      s_lo = std::max(small_scale, (hi - lo - 2 * farthest) / levels * (1 - std::ldexp(1.0, -20)));
    }
    const bool identical_integers = model_.quantizing_sides == 2 && model_.same_engine && widest_difference == 0;
    const int quantizing = fp16_ || identical_integers ? 0 : model_.quantizing_sides;
    const int saturating = fp16_ || reduced_ || identical_integers ? 0 : model_.saturating_sides;
    const double rounding = fp16_ ? 0.0 : s_hi * (0.5 + std::ldexp(1.0, -14));
    const double half_step = fp16_ ? 0.0 : s_hi / 2;
    for (int64_t r = 0; r < rows; ++r) {
      const Bounded* xr = x + r * in;
      for (int64_t j = 0; j < n_out; ++j) {
        const float* wj = w.data.data() + j * in;
        double v = 0, d = 0, e = 0, magnitude = 0;
        for (int64_t k = 0; k < in; ++k) {
          const double wk = std::abs(static_cast<double>(wj[k]));
          v += wj[k] * xr[k].v;
          d += wk * (xr[k].d + rounding);
          e += wk * (xr[k].e + quantizing * rounding);
          magnitude += wk * (std::abs(xr[k].v) + xr[k].d + half_step);
        }
        if (b) {
          v += b->data[j];
          magnitude += std::abs(b->data[j]);
        }
        // A K-term float sum on each side, and the integer epilogue's four roundings.
        d += static_cast<double>(in + 4) * kEps / 2 * magnitude + kTiny;
        e += static_cast<double>(in + 4) * kEps * magnitude + kTiny;
        if (model_.saturating_sides > 0 && !fp16_ && !reduced_) {
          const double loss = saturation_loss(*wq, j, xr, in, lo, farthest, s_lo, s_hi);
          d += loss;
          e += saturating * loss;
        }
        out[r * n_out + j] = {v, d, e};
      }
    }
  }

  // The largest int16 pair-sum loss (1') of quantized/kernels/dynamic_gemm.h can cause in
  // output j, in real units, over the u8 values x's elements can quantize to on a side.
  double saturation_loss(const QTensor& wq, int64_t j, const Bounded* x, int64_t in, double lo, double farthest,
                         double s_lo, double s_hi) const {
    const auto u8_range = [&](const Bounded& xk, double* q_min, double* q_max) {
      if (s_lo <= 0) {
        *q_min = 0;
        *q_max = 255;
        return;
      }
      // q = round(x / s) + zero_point ~ (x - min) / s, within one level.
      *q_min = std::clamp(std::floor((xk.v - xk.d - lo - farthest) / s_hi) - 1, 0.0, 255.0);
      *q_max = std::clamp(std::ceil((xk.v + xk.d - lo + farthest) / s_lo) + 1, 0.0, 255.0);
    };
    double loss = 0;
    for (int64_t k = 0; k + 1 < in; k += 2) {
      const double wa = wq.values[j * in + k], wb = wq.values[j * in + k + 1];
      double a_lo, a_hi, b_lo, b_hi;
      u8_range(x[k], &a_lo, &a_hi);
      u8_range(x[k + 1], &b_lo, &b_hi);
      const double p_max = std::max(wa * a_lo, wa * a_hi) + std::max(wb * b_lo, wb * b_hi);
      const double p_min = std::min(wa * a_lo, wa * a_hi) + std::min(wb * b_lo, wb * b_hi);
      loss += std::max(0.0, p_max - 32767.0) + std::max(0.0, -32768.0 - p_min);
    }
    return loss * wq.qparams.scale(wq.qparams.per_channel() ? j : 0) * s_hi;
  }

  const ReferenceRNN& reference_;
  RecurrentBoundModel model_;
  bool reduced_ = false;
  bool fp16_ = false;
  std::vector<QTensor> integer_ih_, integer_hh_;
};

std::vector<Bounded> lift(const std::vector<float>& values) {
  std::vector<Bounded> lifted(values.size());
  for (size_t i = 0; i < values.size(); ++i) lifted[i] = {values[i], 0.0, 0.0};
  return lifted;
}

// Bounds as floats, rounded up, to travel through finish_rnn_call's layout changes.
std::vector<float> bounds_of(const std::vector<Bounded>& values) {
  std::vector<float> bounds(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const float f = static_cast<float>(values[i].e);
    bounds[i] = static_cast<double>(f) < values[i].e ? std::nextafter(f, INFINITY) : f;
  }
  return bounds;
}

}  // namespace

std::vector<double> recurrent_error_bounds(const ReferenceRNN& reference, const ModuleInput& input,
                                           const RecurrentBoundModel& model) {
  function_ulps = model.function_ulps;
  const RnnOptions& o = reference.options();
  const RnnCall call = prepare_rnn_call(o, input, RnnInputRules::Float, reference.name());
  BoundedProjections projections(reference, model);
  const std::vector<Bounded> data = lift(call.data_values());
  const RnnRun<Bounded> run =
      run_rnn<Bounded>(o, projections, data.data(), call.rows, call.batch_sizes, lift(call.h0), lift(call.c0));
  const ModuleOutput laid_out = finish_rnn_call(o, call, {bounds_of(run.output), bounds_of(run.h_n), bounds_of(run.c_n)});
  const std::vector<float> flat = flatten_output(laid_out).values;
  return std::vector<double>(flat.begin(), flat.end());
}

}  // namespace qconform
