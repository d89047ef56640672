#include "oracles/kinds/case_helpers.h"

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <cmath>

#include "core/error.h"
#include "core/observers.h"
#include "core/quantize.h"
#include "quantized/kernels/dynamic_gemm.h"
#include "reference/linear.h"

namespace qconform::kinds {

// --- random cases ---------------------------------------------------------------------------

// For RoundingTies the tensor's min and max are fixed first, so that the dynamic qparams
// (which depend only on them) are known, and the other values are placed exactly on
// x * (1/scale) = k + 1/2.
Tensor random_input(const Shape& sizes, InputStyle style, std::mt19937_64& rng) {
  Tensor x(sizes);
  NormalDistribution normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  const float magnitude = std::pow(10.0f, -3.0f + 5.0f * uniform(rng));
  const float shift = (uniform(rng) < 0.3f) ? magnitude * (2.0f * uniform(rng) - 1.0f) : 0.0f;
  switch (style) {
    case InputStyle::Normal:
      for (float& v : x.data) v = normal(rng) * magnitude + shift;
      break;
    case InputStyle::Constant: {
      const float c = uniform(rng) < 0.3f ? 0.0f : normal(rng) * magnitude;
      std::fill(x.data.begin(), x.data.end(), c);
      break;
    }
    case InputStyle::WideRange:
      for (float& v : x.data)
        v = (uniform(rng) < 0.5f ? -1.0f : 1.0f) * std::pow(10.0f, -6.0f + 10.0f * uniform(rng));
      break;
    case InputStyle::RoundingTies: {
      for (float& v : x.data) v = normal(rng) * magnitude + shift;
      if (x.numel() < 3) break;
      float lo, hi;
      tensor_min_max(x, &lo, &hi);
      // Ties for the 8-bit or the 7-bit (reduce_range) rule, alternately.
      const bool reduced = (rng() & 1) != 0;
      const QuantParams qp = choose_dynamic_qparams(lo, hi, 0, 255, reduced);
      const float inverse = 1.0f / static_cast<float>(qp.scale());
      const int64_t qmax = reduced ? 127 : 255;
      std::uniform_int_distribution<int64_t> level(-qp.zero_point(), qmax - qp.zero_point() - 1);
      for (float& v : x.data) {
        if (v == lo || v == hi) continue;  // keep the range, hence the qparams
        const float target = static_cast<float>(level(rng)) + 0.5f;
        float candidate = target / inverse;
        for (int step = 0; step < 4 && candidate * inverse != target; ++step)
          candidate = std::nextafter(candidate, candidate * inverse < target ? INFINITY : -INFINITY);
        if (candidate * inverse == target && candidate >= lo && candidate <= hi) v = candidate;
      }
      break;
    }
  }
  return x;
}

Tensor random_weight(int64_t rows, int64_t cols, bool vary_rows, std::mt19937_64& rng) {
  Tensor w(Shape{rows, cols});
  NormalDistribution normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-2.0f, 1.0f);
  const float magnitude = std::pow(10.0f, uniform(rng));
  for (int64_t r = 0; r < rows; ++r) {
    const float row_magnitude = vary_rows ? magnitude * std::pow(10.0f, uniform(rng)) : magnitude;
    for (int64_t c = 0; c < cols; ++c) w.data[r * cols + c] = normal(rng) * row_magnitude;
  }
  return w;
}

Tensor random_tensor(const Shape& sizes, float magnitude, std::mt19937_64& rng) {
  Tensor t(sizes);
  NormalDistribution normal(0.0f, 1.0f);
  for (float& v : t.data) v = normal(rng) * magnitude;
  return t;
}

// A N(0, 1) bias of `size` when the case has one.
std::optional<Tensor> random_bias(const CaseConfig& config, int64_t size, std::mt19937_64& rng) {
  if (!config.get("bias")) return std::nullopt;
  Tensor bias(Shape{size});
  NormalDistribution normal(0.0f, 1.0f);
  for (float& b : bias.data) b = normal(rng);
  return bias;
}

// Weights with per-row magnitudes when the case is per-channel.
std::unique_ptr<FloatLinear> random_float_linear(const CaseConfig& config, bool relu, std::mt19937_64& rng) {
  const int64_t in = config.get("in_features"), out = config.get("out_features");
  Tensor weight = random_weight(out, in, config.get("per_channel") != 0, rng);
  std::optional<Tensor> bias = random_bias(config, out, rng);
  auto module = std::make_unique<FloatLinear>(std::move(weight), std::move(bias));
  module->fused_relu = relu;
  return module;
}

bool has_parameter(const CaseConfig& config, const std::string& name) { return config.values.count(name) > 0; }

std::vector<RnnParameters> random_rnn_parameters(const RnnOptions& o, bool vary_rows, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f), exponent(-1.0f, 0.5f);
  const float k = 1.0f / std::sqrt(static_cast<float>(o.hidden_size)) * std::pow(10.0f, exponent(rng));
  const auto init = [&](int64_t rows, int64_t cols) {
    Tensor w(Shape{rows, cols});
    for (int64_t r = 0; r < rows; ++r) {
      const float row_gain = vary_rows ? std::pow(10.0f, exponent(rng) / 2) : 1.0f;
      for (int64_t c = 0; c < cols; ++c) w.data[r * cols + c] = unit(rng) * k * row_gain;
    }
    return w;
  };
  std::vector<RnnParameters> parameters;
  for (int64_t set = 0; set < o.parameter_sets(); ++set) {
    RnnParameters p{init(o.gate_size(), o.layer_input_size(set / o.directions())), init(o.gate_size(), o.hidden_size),
                    std::nullopt, std::nullopt};
    if (o.bias) {
      p.b_ih = init(1, o.gate_size());
      p.b_hh = init(1, o.gate_size());
      p.b_ih->sizes = p.b_hh->sizes = {o.gate_size()};
    }
    parameters.push_back(std::move(p));
  }
  return parameters;
}

// The qconfig of a static case: 7-bit activations (default_qconfig's observer) or all 8 bits
// (qnnpack's and onednn's default qconfigs, here with MinMax rather than Histogram
// observers), per-tensor or per-channel weights.
QConfig static_case_qconfig(const CaseConfig& config) {
  const bool per_channel = has_parameter(config, "per_channel") && config.get("per_channel") != 0;
  ObserverOptions act;
  act.reduce_range = config.get("full_range") == 0;
  QConfig qconfig{"", min_max_observer(act),
                  per_channel ? default_per_channel_weight_observer() : default_weight_observer()};
  qconfig.name = std::string(act.reduce_range ? "default_qconfig" : "8-bit MinMax") +
                 (per_channel ? " with per-channel weights" : "");
  return qconfig;
}

// The module gets its qconfig, the input observer gives the input qparams,
// activation_post_process has seen the output.
Case calibrated_static_case(std::unique_ptr<Module> module, const CaseConfig& config, const Tensor& x,
                            const ObserverFactory* output_factory) {
  const QConfig qconfig = static_case_qconfig(config);
  module->qconfig = qconfig;
  auto input_observer = qconfig.activation();
  input_observer->observe(x);
  const QTensor xq = quantize(x, as_tensor_qparams(input_observer->calculate_qparams()));
  std::shared_ptr<Observer> output_observer = output_factory ? (*output_factory)() : qconfig.activation();
  output_observer->observe((*module)(x));  // calibration sees the float module's output
  module->activation_post_process = output_observer;
  return {std::move(module), ModuleInput{xq, std::nullopt}};
}

Case calibrated_operands_case(std::unique_ptr<Module> module, const CaseConfig& config,
                              const std::vector<Tensor>& operands, bool observe_output) {
  const QConfig qconfig = static_case_qconfig(config);
  module->qconfig = qconfig;
  ModuleInput quantized{Tensor{}, std::nullopt}, floats{operands.at(0), std::nullopt};
  for (size_t i = 0; i < operands.size(); ++i) {
    auto observer = qconfig.activation();  // each operand's own stub
    observer->observe(operands[i]);
    const QTensor q = quantize(operands[i], as_tensor_qparams(observer->calculate_qparams()));
    if (i == 0)
      quantized.input = q;
    else {
      quantized.others.push_back(q);
      floats.others.push_back(operands[i]);
    }
  }
  std::shared_ptr<Observer> output_observer = qconfig.activation();
  if (observe_output) {
    const ModuleOutput y = (*module)(floats);
    output_observer->observe(std::get<Tensor>(y.output));
  }
  module->activation_post_process = output_observer;
  return {std::move(module), quantized};
}

// --- refusal cases ----------------------------------------------------------------------------

QTensor as_per_channel(const QTensor& q) {
  const int64_t channels = q.sizes.size() > 1 ? q.sizes[1] : 1;
  std::vector<double> scales(channels);
  std::vector<int64_t> zero_points(channels);
  for (int64_t c = 0; c < channels; ++c) {
    scales[c] = q.qparams.scale() * (1.0 + 0.1 * static_cast<double>(c));
    zero_points[c] = q.qparams.zero_point();
  }
  QTensor out = q;
  out.qparams = QuantParams::per_channel(DType::QUInt8, scales, zero_points, q.sizes.size() > 1 ? 1 : 0);
  return out;
}

QTensor as_qint8(const QTensor& q) {
  QTensor out = q;
  for (int32_t& v : out.values) v -= 128;
  out.qparams = QuantParams::per_tensor(DType::QInt8, q.qparams.scale(), q.qparams.zero_point() - 128);
  return out;
}

QTensor with_extra_column(const QTensor& q) {
  Shape sizes = q.sizes;
  const int64_t columns = sizes.back();
  sizes.back() += 1;
  QTensor out{sizes, std::vector<int32_t>(numel_of(sizes), static_cast<int32_t>(q.qparams.zero_point())), q.qparams};
  for (int64_t row = 0; row < q.numel() / columns; ++row)
    std::copy(q.values.begin() + row * columns, q.values.begin() + (row + 1) * columns,
              out.values.begin() + row * (columns + 1));
  return out;
}

QTensor without_first_dimension(const QTensor& q) {
  const Shape sizes(q.sizes.begin() + 1, q.sizes.end());
  return {sizes, std::vector<int32_t>(q.values.begin(), q.values.begin() + numel_of(sizes)), q.qparams};
}

// --- bounds ---------------------------------------------------------------------------------

void add_linear_terms(const Tensor& w, const Tensor& x, const std::optional<Tensor>& bias,
                      std::vector<OutputSensitivity>& result) {
  const int64_t out = w.size(0), in = w.size(1), rows = in ? x.numel() / in : 0;
  // |w| held k-major, so that one row's sums for every channel advance together, each its
  // own chain in k's order (the sums are the same bits as one channel at a time).
  std::vector<double> weight_abs(static_cast<size_t>(in * out)), weight_l1(static_cast<size_t>(out), 0.0);
  for (int64_t n = 0; n < out; ++n)
    for (int64_t k = 0; k < in; ++k) weight_abs[k * out + n] = std::abs(static_cast<double>(w.data[n * in + k]));
  for (int64_t k = 0; k < in; ++k)
    for (int64_t n = 0; n < out; ++n) weight_l1[n] += weight_abs[k * out + n];
  std::vector<double> magnitude(static_cast<size_t>(out));
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(magnitude.begin(), magnitude.end(), 0.0);
    for (int64_t k = 0; k < in; ++k) {
      const double xk = std::abs(static_cast<double>(x.data[r * in + k]));
      // Element by element (Eigen's vectors; a product and a sum per element, as written).
      Eigen::Map<Eigen::ArrayXd>(magnitude.data(), out) += Eigen::Map<const Eigen::ArrayXd>(weight_abs.data() + k * out, out) * xk;
    }
    for (int64_t n = 0; n < out; ++n) {
      OutputSensitivity& s = result[r * out + n];
      s.weight_l1 += weight_l1[n];
      s.magnitude += magnitude[n];
      if (bias) s.magnitude += std::abs(static_cast<double>(bias->data[n]));
    }
  }
}

// fbgemm and x86 are not in Debian's LibTorch, so theirs cannot be checked.
std::vector<Engine> static_engines(EngineOp op) {
  std::vector<Engine> engines;
  for (Engine e : all_engines())
    if (engine_rule(e, op).requantization != Requantization::NotModelled) engines.push_back(e);
  return engines;
}

// One static reduction block, rows x out, in output quanta (see OutputSensitivity): x the
// dequantized input rows (rows x K) and xq their integers, w the reference's fake-quantized
// weight rows (out x K) and wq their integers, channel_offset the block's first output
// channel in the weight qparams and bias. `saturation_loss` (rows x out, |exact - saturated|
// in accumulator steps) where the saturating engine pairs the reduction otherwise than
// adjacent K (convolutions); null: adjacent K pairs, as for Linear.
std::vector<OutputSensitivity> static_block_sensitivity(const Tensor& x, const std::vector<int32_t>& xq,
                                                        const QuantParams& x_qparams, const Tensor& w,
                                                        const QTensor& wq, int64_t channel_offset,
                                                        const std::optional<Tensor>& bias, double out_scale,
                                                        const std::vector<int64_t>* saturation_loss) {
  const int64_t in = w.size(1), out = w.size(0);
  const int64_t rows = in ? x.numel() / in : 0;
  const double x_scale = x_qparams.scale();
  kernels::DynamicLinearWeights integers{out, in, std::vector<int32_t>(wq.values.begin() + channel_offset * in,
                                                                       wq.values.begin() + (channel_offset + out) * in),
                                         {}, {}, {}};  // sums only: no scales, not packed
  for (int64_t n = 0; n < out; ++n)
    integers.zero_points.push_back(static_cast<int32_t>(wq.qparams.zero_point(channel_offset + n)));
  kernels::DynamicLinearActivation activation{xq.data(), rows, 1.0f, static_cast<int32_t>(x_qparams.zero_point())};
  const auto exact = kernels::dynamic_linear_accumulators(activation, integers);
  std::vector<int64_t> adjacent_loss;  // Linear's pairs, when the caller has no loss of its own
  if (!saturation_loss) {
    activation.accumulation = kernels::Accumulation::PairwiseInt16Saturation;
    const auto saturated = kernels::dynamic_linear_accumulators(activation, integers);
    for (size_t i = 0; i < exact.size(); ++i) adjacent_loss.push_back(std::abs(int64_t{exact[i]} - saturated[i]));
  }
  const std::vector<int64_t>& loss = saturation_loss ? *saturation_loss : adjacent_loss;
  std::optional<Tensor> block_bias;
  if (bias) block_bias = Tensor(Shape{out}, std::vector<float>(bias->data.begin() + channel_offset,
                                                                bias->data.begin() + channel_offset + out));
  std::vector<OutputSensitivity> result(rows * out);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < out; ++n) {
      OutputSensitivity& s = result[r * out + n];
      s.terms = in;
      s.output_scale = out_scale;
      const double unit = x_scale * wq.qparams.scale(channel_offset + n);  // one accumulator step, in real units
      s.bias_rounding = unit / 2;
      s.saturation_loss = static_cast<double>(loss[r * out + n]) * unit / out_scale;
      if (block_bias)
        s.int32_bias_overflow = std::abs(static_cast<double>(block_bias->data[n])) / unit +
                                    std::abs(static_cast<double>(exact[r * out + n])) >= 2147483647.0;
    }
  add_linear_terms(w, x, block_bias, result);
  return result;
}

// --- fixtures -------------------------------------------------------------------------------

QTensor spec_weight(const ModuleSpec& spec, const std::string& name) {
  return spec.parameters.at(name).as<QTensor>(spec.kind + " fixture parameter '" + name + "'");
}

std::optional<Tensor> spec_bias(const ModuleSpec& spec, const std::string& name) {
  const StateValue& v = spec.parameters.at(name);
  if (v.is<NoneValue>()) return std::nullopt;
  return v.as<Tensor>(spec.kind + " fixture parameter '" + name + "'");
}

ModuleSpec output_qparams_spec(const QuantParams& output) {
  ModuleSpec spec;
  spec.config = std::make_shared<nlohmann::json>(nlohmann::json{{"scale", output.scale()},
                                                                 {"zero_point", output.zero_point()}});
  return spec;
}

QuantParams spec_output_qparams(const ModuleSpec& spec) {
  try {
    return QuantParams::per_tensor(DType::QUInt8, spec.number("scale"), spec.integer("zero_point"));
  } catch (const Error& e) {
    throw Error(spec.kind + " fixture: output qparams (scale, zero_point): " + e.what());
  }
}

void check_spec_shape(const ModuleSpec& spec, const std::string& name, const Shape& actual, const Shape& expected) {
  if (actual != expected)
    throw Error(spec.kind + " fixture: parameter '" + name + "' has shape " + shape_to_string(actual) +
                " but the module's arguments imply " + shape_to_string(expected));
}

QTensor spec_linear_weight(const ModuleSpec& spec) {
  QTensor w = spec_weight(spec, "weight");
  check_spec_shape(spec, "weight", w.sizes, {spec.integer("out_features"), spec.integer("in_features")});
  return w;
}

std::unique_ptr<ReferenceLinear> spec_reference_linear(const ModuleSpec& spec, bool relu) {
  const QTensor w = spec_linear_weight(spec);
  auto module = std::make_unique<ReferenceLinear>(dequantize(w), spec_bias(spec, "bias"), w.qparams);
  module->fused_relu = relu;
  return module;
}

}  // namespace qconform::kinds
