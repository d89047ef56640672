// The registry table. Each module kind is one function below; registry() lists them.
#include "core/registry.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "core/fixture.h"
#include "core/float/conv.h"
#include "core/float/linear.h"
#include "core/float/rnn.h"
#include "core/observers.h"
#include "core/quantize.h"
#include "quantized/libtorch/dynamic_linear.h"
#include "quantized/libtorch/engine.h"
#include "oracles/recurrent_bounds.h"
#include "quantized/dynamic/linear.h"
#include "quantized/dynamic/rnn.h"
#include "quantized/libtorch/dynamic_rnn.h"
#include "quantized/libtorch/static_conv.h"
#include "quantized/libtorch/static_linear.h"
#include "quantized/static/conv.h"
#include "quantized/static/linear.h"
#include "reference/conv.h"
#include "reference/linear.h"
#include "reference/rnn.h"
#include "reference/static.h"

namespace qconform {
namespace {

// --- shared helpers for building random cases -------------------------------------------

// Input values in `style`, shaped `sizes`. For RoundingTies the tensor's min and max are
// fixed first, so that the dynamic qparams (which depend only on them) are known, and the
// other values are placed exactly on x * (1/scale) = k + 1/2.
Tensor random_input(const Shape& sizes, InputStyle style, std::mt19937_64& rng) {
  Tensor x(sizes);
  std::normal_distribution<float> normal(0.0f, 1.0f);
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
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-2.0f, 1.0f);
  const float magnitude = std::pow(10.0f, uniform(rng));
  for (int64_t r = 0; r < rows; ++r) {
    const float row_magnitude = vary_rows ? magnitude * std::pow(10.0f, uniform(rng)) : magnitude;
    for (int64_t c = 0; c < cols; ++c) w.data[r * cols + c] = normal(rng) * row_magnitude;
  }
  return w;
}

// --- reading a fixture's ModuleSpec ---------------------------------------------------------

QTensor spec_weight(const ModuleSpec& spec, const std::string& name) {
  return spec.parameters.at(name).as<QTensor>(spec.kind + " fixture parameter '" + name + "'");
}

std::optional<Tensor> spec_bias(const ModuleSpec& spec, const std::string& name) {
  const StateValue& v = spec.parameters.at(name);
  if (v.is<NoneValue>()) return std::nullopt;
  return v.as<Tensor>(spec.kind + " fixture parameter '" + name + "'");
}

// A static module's output qparams (nnq modules' `scale` and `zero_point` attributes).
QuantParams spec_output_qparams(const ModuleSpec& spec) {
  try {
    return QuantParams::per_tensor(DType::QUInt8, spec.number("scale"), spec.integer("zero_point"));
  } catch (const Error& e) {
    throw Error(spec.kind + " fixture: output qparams (scale, zero_point): " + e.what());
  }
}

// A weight's shape against what the constructor arguments imply.
void check_spec_shape(const ModuleSpec& spec, const std::string& name, const Shape& actual, const Shape& expected) {
  if (actual != expected)
    throw Error(spec.kind + " fixture: parameter '" + name + "' has shape " + shape_to_string(actual) +
                " but the module's arguments imply " + shape_to_string(expected));
}

// --- dynamic.Linear ----------------------------------------------------------------------

// sum |w_k| and sum |w_k x_k| + |b| of output element (row r, channel n) of x W^T + b.
void add_linear_terms(const Tensor& w, const Tensor& x, const std::optional<Tensor>& bias, int64_t r, int64_t n,
                      OutputSensitivity* s) {
  const int64_t in = w.size(1);
  for (int64_t k = 0; k < in; ++k) {
    const double wk = std::abs(static_cast<double>(w.data[n * in + k]));
    s->weight_l1 += wk;
    s->magnitude += wk * std::abs(static_cast<double>(x.data[r * in + k]));
  }
  if (bias) s->magnitude += std::abs(static_cast<double>(bias->data[n]));
}

// The float Linear (or LinearReLU) of a case: weights with per-row magnitudes when the
// case is per-channel, and a N(0, 1) bias when it has one.
// A N(0, 1) bias of `size` when the case has one.
std::optional<Tensor> random_bias(const CaseConfig& config, int64_t size, std::mt19937_64& rng) {
  if (!config.get("bias")) return std::nullopt;
  Tensor bias(Shape{size});
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& b : bias.data) b = normal(rng);
  return bias;
}

std::unique_ptr<FloatLinear> random_float_linear(const CaseConfig& config, bool relu, std::mt19937_64& rng) {
  const int64_t in = config.get("in_features"), out = config.get("out_features");
  Tensor weight = random_weight(out, in, config.get("per_channel") != 0, rng);
  std::optional<Tensor> bias = random_bias(config, out, rng);
  auto module = std::make_unique<FloatLinear>(std::move(weight), std::move(bias));
  module->fused_relu = relu;
  return module;
}

std::vector<OutputSensitivity> linear_sensitivity(const Module& module, const ModuleInput& input) {
  const auto& reference = dynamic_cast<const ReferenceLinear&>(module);
  const Tensor w = reference.get_weight();
  const Tensor& x = expect_tensor(input, reference.name());
  const int64_t in = reference.in_features(), out = reference.out_features();
  const int64_t rows = x.numel() / in;
  std::vector<OutputSensitivity> result(rows * out);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < out; ++n) {
      OutputSensitivity& s = result[r * out + n];
      s.terms = in;
      add_linear_terms(w, x, reference.bias(), r, n, &s);
    }
  return result;
}

// A Linear's weight from a fixture, against in_features and out_features.
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

Case make_dynamic_linear_case(const CaseConfig& config, bool relu) {
  std::mt19937_64 rng(config.data_seed);
  const int64_t in = config.get("in_features");
  const bool per_channel = config.get("per_channel") != 0;
  auto module = random_float_linear(config, relu, rng);
  module->qconfig = per_channel ? per_channel_dynamic_qconfig() : default_dynamic_qconfig();
  Shape input_shape{config.get("batch"), in};
  if (config.get("leading_dim") > 1) input_shape.insert(input_shape.begin(), config.get("leading_dim"));
  Tensor x = random_input(input_shape, config.style, rng);
  return {std::move(module), ModuleInput{std::move(x), std::nullopt}};
}

// dynamic.Linear, and dynamic.LinearReLU (the same modules with the ReLU fused).
ModuleKind dynamic_linear_kind(bool relu) {
  ModuleKind kind;
  kind.key = relu ? "dynamic.LinearReLU" : "dynamic.Linear";
  kind.float_name = relu ? "LinearReLU" : "Linear";
  kind.family = Family::Dynamic;
  kind.engine_op = EngineOp::DynamicLinear;
  kind.implementations.push_back(
      {Implementation::Reference, "QuantizedLinear(Reference)", {},
       [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
         return ReferenceLinear::from_float(dynamic_cast<const FloatLinear&>(m));
       },
       nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, relu ? "DynamicQuantizedLinearReLU" : "DynamicQuantizedLinear", all_engines(),
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return DynamicQuantizedLinear::from_float(dynamic_cast<const FloatLinear&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
         return DynamicQuantizedLinear::from_reference(dynamic_cast<const ReferenceLinear&>(r), e);
       }});
  kind.implementations.push_back(
      {Implementation::LibTorch, relu ? "DynamicQuantizedLinearReLU" : "DynamicQuantizedLinear", libtorch_engines(),
       [](const Module& m, const EngineProfile& e) {
         return libtorch_dynamic_linear_from_float(dynamic_cast<const FloatLinear&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) {
         return libtorch_dynamic_linear_from_reference(dynamic_cast<const ReferenceLinear&>(r), e);
       }});
  kind.case_parameters = {
      {"batch", 0, 16, "rows of the input (0: an empty batch, which PyTorch allows)"},
      {"in_features", 1, 64, "reduction length K"},
      {"out_features", 1, 64, "output channels N"},
      {"bias", 0, 1, "1: with bias"},
      {"per_channel", 0, 1, "1: per_channel_dynamic_qconfig, else default_dynamic_qconfig"},
      {"leading_dim", 1, 3, "size of an extra leading input dimension (1: 2-D input)"},
  };
  kind.make_case = [relu](const CaseConfig& config) { return make_dynamic_linear_case(config, relu); };
  kind.sensitivity = linear_sensitivity;
  kind.weight_shape = [](const Module& reference) {
    return dynamic_cast<const ReferenceLinear&>(reference).weight().sizes;
  };
  kind.with_weight_qparams = [](const Module& reference, const QuantParams& qparams) -> std::unique_ptr<Module> {
    const auto& linear = dynamic_cast<const ReferenceLinear&>(reference);
    auto module = std::make_unique<ReferenceLinear>(linear.weight(), linear.bias(), qparams);
    module->fused_relu = linear.fused_relu;
    return module;
  };
  kind.reference_from_spec = [relu](const ModuleSpec& spec) -> std::unique_ptr<Module> {
    return spec_reference_linear(spec, relu);
  };
  kind.quantized_from_spec = [relu](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    auto module = std::make_unique<DynamicQuantizedLinear>(spec_linear_weight(spec), spec_bias(spec, "bias"), engine);
    module->fused_relu = relu;
    return module;
  };
  return kind;
}


// --- static.Linear, static.LinearReLU -----------------------------------------------------

// The engines with an integer implementation of a static op (engine table: requantization
// modelled); fbgemm and x86 are not in Debian's LibTorch, so theirs cannot be checked.
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
                                                        const std::vector<int64_t>* saturation_loss = nullptr) {
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
      add_linear_terms(w, x, block_bias, r, n, &s);
    }
  return result;
}

std::vector<OutputSensitivity> static_linear_sensitivity(const Module& module, const ModuleInput& input) {
  const auto& wrapper = dynamic_cast<const StaticReference&>(module);
  const auto& reference = dynamic_cast<const ReferenceLinear&>(wrapper.module());
  const auto& xq = std::get<QTensor>(input.input);
  return static_block_sensitivity(dequantize(xq), xq.values, xq.qparams, reference.get_weight(),
                                  reference.get_quantized_weight(), 0, reference.bias(),
                                  wrapper.output_qparams().scale());
}

bool has_parameter(const CaseConfig& config, const std::string& name) { return config.values.count(name) > 0; }

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

// A static case as prepare + one calibration batch leave it: the module gets its qconfig,
// the input observer gives the input qparams, activation_post_process has seen the output.
Case calibrated_static_case(std::unique_ptr<Module> module, const CaseConfig& config, const Tensor& x) {
  const QConfig qconfig = static_case_qconfig(config);
  module->qconfig = qconfig;
  auto input_observer = qconfig.activation();
  input_observer->observe(x);
  const QTensor xq = quantize(x, as_tensor_qparams(input_observer->calculate_qparams()));
  std::shared_ptr<Observer> output_observer = qconfig.activation();
  output_observer->observe((*module)(x));  // calibration sees the float module's output
  module->activation_post_process = output_observer;
  return {std::move(module), ModuleInput{xq, std::nullopt}};
}

Case make_static_linear_case(const CaseConfig& config, bool relu) {
  std::mt19937_64 rng(config.data_seed);
  auto module = random_float_linear(config, relu, rng);
  const Tensor x = random_input({config.get("batch"), config.get("in_features")}, config.style, rng);
  return calibrated_static_case(std::move(module), config, x);
}

ModuleKind static_linear_kind(bool relu) {
  ModuleKind kind;
  kind.key = relu ? "static.LinearReLU" : "static.Linear";
  kind.float_name = relu ? "LinearReLU" : "Linear";
  kind.family = Family::Static;
  kind.engine_op = EngineOp::StaticLinear;
  const std::string integer_name = relu ? "QuantizedLinearReLU" : "QuantizedLinear";
  kind.implementations.push_back(
      {Implementation::Reference, "QuantizedLinear(Reference)", {},
       [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
         const auto& linear = dynamic_cast<const FloatLinear&>(m);
         return std::make_unique<StaticReference>(ReferenceLinear::from_float(linear), calibrated_output_qparams(m));
       },
       nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, integer_name, static_engines(EngineOp::StaticLinear),
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedLinear::from_float(dynamic_cast<const FloatLinear&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedLinear::from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  kind.implementations.push_back(
      // LibTorch is compared only where the harness has an integer implementation.
      {Implementation::LibTorch, integer_name, static_engines(EngineOp::StaticLinear),
       [](const Module& m, const EngineProfile& e) {
         return libtorch_static_linear_from_float(dynamic_cast<const FloatLinear&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) {
         return libtorch_static_linear_from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  kind.case_parameters = {
      {"batch", 1, 8, "rows of the input"},
      {"in_features", 1, 64, "reduction length K"},
      {"out_features", 1, 32, "output channels N"},
      {"bias", 0, 1, "1: with bias"},
      {"per_channel", 0, 1, "1: default_per_channel_weight_observer, else default_weight_observer"},
      {"full_range", 0, 1, "1: activations observed on all 8 bits, else 7 (default_qconfig)"},
  };
  kind.make_case = [relu](const CaseConfig& config) { return make_static_linear_case(config, relu); };
  kind.sensitivity = static_linear_sensitivity;
  kind.weight_shape = [](const Module& reference) {
    return dynamic_cast<const ReferenceLinear&>(dynamic_cast<const StaticReference&>(reference).module()).weight().sizes;
  };
  kind.with_weight_qparams = [](const Module& reference, const QuantParams& qparams) -> std::unique_ptr<Module> {
    const auto& wrapper = dynamic_cast<const StaticReference&>(reference);
    const auto& linear = dynamic_cast<const ReferenceLinear&>(wrapper.module());
    auto module = std::make_unique<ReferenceLinear>(linear.weight(), linear.bias(), qparams);
    module->fused_relu = linear.fused_relu;
    return std::make_unique<StaticReference>(std::move(module), wrapper.output_qparams());
  };
  kind.reference_from_spec = [relu](const ModuleSpec& spec) -> std::unique_ptr<Module> {
    return std::make_unique<StaticReference>(spec_reference_linear(spec, relu), spec_output_qparams(spec));
  };
  kind.quantized_from_spec = [relu](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    const QuantParams out = spec_output_qparams(spec);
    return std::make_unique<QuantizedLinear>(spec_linear_weight(spec), spec_bias(spec, "bias"), out.scale(),
                                             out.zero_point(), engine, relu);
  };
  return kind;
}

// --- static.Conv{1,2,3}d, static.ConvReLU{1,2,3}d --------------------------------------

// A case's convolution. Transposed: output_padding below max(stride, dilation) as PyTorch
// requires, and the padding no larger than keeps one output position (the input size is
// 1 + extra_size there).
ConvOptions conv_options(const CaseConfig& config, int64_t dims, bool transposed) {
  ConvOptions o;
  o.spatial_dims = dims;
  o.transposed = transposed;
  o.groups = config.get("groups");
  o.in_channels = o.groups * config.get("in_per_group");
  o.out_channels = o.groups * config.get("out_per_group");
  o.kernel_size.assign(dims, config.get("kernel"));
  o.stride.assign(dims, config.get("stride"));
  o.padding.assign(dims, config.get("padding"));
  o.dilation.assign(dims, config.get("dilation"));
  o.bias = config.get("bias") != 0;
  if (transposed) {
    const int64_t stride = o.stride[0], dilation = o.dilation[0], kernel = o.kernel_size[0];
    const int64_t output_padding = std::min(config.get("output_padding"), std::max(stride, dilation) - 1);
    const int64_t in = 1 + config.get("extra_size");
    const int64_t padding =
        std::min(config.get("padding"), ((in - 1) * stride + dilation * (kernel - 1) + output_padding) / 2);
    o.output_padding.assign(dims, output_padding);
    o.padding.assign(dims, padding);
  }
  return o;
}

// Per output element (image, channel, position), flatten_output's order: the static block
// sensitivity of each image and group over its patches.
std::vector<OutputSensitivity> static_conv_sensitivity(const Module& module, const ModuleInput& input) {
  const auto& wrapper = dynamic_cast<const StaticReference&>(module);
  const auto& reference = dynamic_cast<const ReferenceConv&>(wrapper.module());
  const ConvOptions& o = reference.options();
  QTensor xq = std::get<QTensor>(input.input);
  QTensor wq = reference.get_quantized_weight();
  Tensor w = reference.get_weight();
  const int32_t x_zero_point = static_cast<int32_t>(xq.qparams.zero_point());
  // Integers are read with kAbsentInput where no input value is (padding, a transposed
  // input's gaps): the int16-pair-summing engines skip those, everyone else reads x_zp.
  const auto absent_as_zero_point = [x_zero_point](std::vector<int32_t> values) {
    std::replace(values.begin(), values.end(), kAbsentInput, x_zero_point);
    return values;
  };
  if (o.transposed) {  // the stride-1 convolution that computes it (core/float/conv.h)
    Shape stretched;
    xq.values = stretch_input<int32_t>(o, xq.sizes, xq.values.data(), kAbsentInput, &stretched, reference.name());
    xq.sizes = stretched;
    wq = QTensor{o.stride1_equivalent().weight_shape(), stride1_weight(o, wq.values), wq.qparams};
    w = Tensor(o.stride1_equivalent().weight_shape(), stride1_weight(o, w.data));
  }
  const Tensor x = dequantize(QTensor{xq.sizes, absent_as_zero_point(xq.values), xq.qparams});  // gaps: real 0
  const ConvGeometry g = ConvGeometry::make(o.transposed ? o.stride1_equivalent() : o, xq.sizes, reference.name());
  const int64_t positions = g.positions(), patch = g.patch(), out_per_group = g.out_channels / g.groups;
  const int64_t in_per_group = g.in_channels / g.groups, kernel_volume = patch / in_per_group;
  // What int16 pairs lose, in the order and with the skipped positions of the engine that
  // sums them (onednn: engines.h grouped_conv_pairs_channel_multiple; measured there): zero
  // where that engine sums this convolution exactly. The exact sums, magnitudes and L1 norms
  // do not depend on the order.
  bool pairs = false;
  for (Engine e : all_engines())
    for (const EngineProfile& profile : engine_profiles(e))
      pairs = pairs || conv_sums_int16_pairs(engine_rule(e, EngineOp::StaticConv), profile, o.transposed, o.groups,
                                             in_per_group, out_per_group);
  const int64_t paired = paired_width(in_per_group, kernel_volume);
  // Per group, once: the float weight rows, and the integer rows in the paired order.
  std::vector<Tensor> w_groups;
  std::vector<kernels::DynamicLinearWeights> paired_weights;
  for (int64_t group = 0; group < g.groups; ++group) {
    w_groups.emplace_back(Shape{out_per_group, patch},
                          std::vector<float>(w.data.begin() + group * out_per_group * patch,
                                             w.data.begin() + (group + 1) * out_per_group * patch));
    if (!pairs) continue;
    kernels::DynamicLinearWeights& rows = paired_weights.emplace_back(kernels::DynamicLinearWeights{
        out_per_group, paired, std::vector<int32_t>(out_per_group * paired), {}, std::vector<int32_t>(out_per_group, 0),
        {}});
    for (int64_t j = 0; j < out_per_group; ++j)
      to_channel_pairs<int32_t>(in_per_group, kernel_volume, wq.values.data() + (group * out_per_group + j) * patch, 0,
                                rows.values.data() + j * paired);
  }
  std::vector<OutputSensitivity> result(g.batch * g.out_channels * positions);
  Tensor patches(Shape{positions, patch});
  std::vector<int32_t> marked_patches(positions * patch);
  std::vector<int32_t> pair_values(positions * paired), present(positions * paired);
  std::vector<int64_t> loss(positions * out_per_group, 0);
  for (int64_t image = 0; image < g.batch; ++image)
    for (int64_t group = 0; group < g.groups; ++group) {
      im2col<float>(g, x.data.data(), image, group, 0.0f, patches.data.data());
      im2col<int32_t>(g, xq.values.data(), image, group, kAbsentInput, marked_patches.data());
      if (pairs) {
        channel_pair_patches(g, marked_patches.data(), pair_values.data(), present.data());
        // The zero-point term is exact on both sides: the raw values' sums differ by the loss.
        kernels::DynamicLinearActivation raw{pair_values.data(), positions, 1.0f, 0};
        const auto exact = kernels::dynamic_linear_accumulators(raw, paired_weights[group]);
        raw.accumulation = kernels::Accumulation::PairwiseInt16Saturation;
        const auto saturated = kernels::dynamic_linear_accumulators(raw, paired_weights[group]);
        for (size_t i = 0; i < loss.size(); ++i) loss[i] = std::abs(int64_t{exact[i]} - saturated[i]);
      }
      const auto block = static_block_sensitivity(patches, absent_as_zero_point(marked_patches), xq.qparams,
                                                  w_groups[group], wq,
                                                  group * out_per_group, reference.bias(),
                                                  wrapper.output_qparams().scale(), &loss);
      for (int64_t p = 0; p < positions; ++p) {
        // No input value under the kernel: the output is the bias alone.
        const int32_t* row = marked_patches.data() + p * patch;
        const bool unreached = o.transposed && std::all_of(row, row + patch, [](int32_t v) { return v == kAbsentInput; });
        for (int64_t j = 0; j < out_per_group; ++j) {
          OutputSensitivity& s = result[(image * g.out_channels + group * out_per_group + j) * positions + p];
          s = block[p * out_per_group + j];
          s.unreached = unreached;
        }
      }
    }
  return result;
}

// A calibrated float Conv{n}d (or ConvReLU{n}d, ConvTranspose{n}d): spatial sizes from the
// dilated kernel minus the padding (down to the kernel size itself) up to a few positions
// more; a transposed convolution's input has 1 + extra_size positions.
Case make_static_conv_case(const CaseConfig& config, int64_t dims, bool relu, bool transposed) {
  std::mt19937_64 rng(config.data_seed);
  const ConvOptions o = conv_options(config, dims, transposed);
  const Shape weight_shape = o.weight_shape();
  const bool per_channel = has_parameter(config, "per_channel") && config.get("per_channel") != 0;
  Tensor flat = random_weight(weight_shape[0], numel_of(weight_shape) / weight_shape[0], per_channel, rng);
  auto module = std::make_unique<FloatConv>(o, Tensor(weight_shape, std::move(flat.data)), random_bias(config, o.out_channels, rng));
  module->fused_relu = relu;
  Shape input_shape{config.get("batch"), o.in_channels};
  for (int64_t d = 0; d < dims; ++d) {
    const int64_t dilated = o.dilation[d] * (o.kernel_size[d] - 1) + 1;
    input_shape.push_back((transposed ? 1 : std::max<int64_t>(1, dilated - 2 * o.padding[d])) + config.get("extra_size"));
  }
  const Tensor x = random_input(input_shape, config.style, rng);
  return calibrated_static_case(std::move(module), config, x);
}

// A convolution's constructor arguments from a fixture (nnq.Conv's attributes).
ConvOptions spec_conv_options(const ModuleSpec& spec, const std::string& float_name) {
  ConvOptions o;
  o.in_channels = spec.integer("in_channels");
  o.out_channels = spec.integer("out_channels");
  o.kernel_size = spec.integers("kernel_size");
  o.stride = spec.integers("stride");
  o.padding = spec.integers("padding");
  o.dilation = spec.integers("dilation");
  o.groups = spec.integer("groups");
  o.padding_mode = spec.text("padding_mode");
  o.transposed = spec.flag("transposed");
  o.spatial_dims = static_cast<int64_t>(o.kernel_size.size());
  if (o.transposed) o.output_padding = spec.integers("output_padding");
  o.bias = !spec.parameters.at("bias").is<NoneValue>();
  for (const auto* v : {&o.stride, &o.padding, &o.dilation})
    if (static_cast<int64_t>(v->size()) != o.spatial_dims)
      throw Error(spec.kind + " fixture: kernel_size, stride, padding and dilation must have one entry per spatial dimension");
  o.validate(float_name);
  return o;
}

// A convolution's integer weight from a fixture, against the shape its arguments imply.
QTensor spec_conv_weight(const ModuleSpec& spec, const ConvOptions& o) {
  QTensor w = spec_weight(spec, "weight");
  check_spec_shape(spec, "weight", w.sizes, o.weight_shape());
  return w;
}

ModuleKind static_conv_kind(int64_t dims, bool relu, bool transposed = false) {
  ModuleKind kind;
  const std::string suffix = std::to_string(dims) + "d";
  kind.float_name = std::string(transposed ? "ConvTranspose" : relu ? "ConvReLU" : "Conv") + suffix;
  kind.key = "static." + kind.float_name;
  kind.family = Family::Static;
  kind.engine_op = EngineOp::StaticConv;
  const std::string integer_name = "Quantized" + kind.float_name;
  kind.implementations.push_back(
      {Implementation::Reference, std::string(transposed ? "QuantizedConvTranspose" : "QuantizedConv") + suffix + "(Reference)", {},
       [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
         return std::make_unique<StaticReference>(ReferenceConv::from_float(dynamic_cast<const FloatConv&>(m)),
                                                  calibrated_output_qparams(m));
       },
       nullptr});
  // Engines with modelled requantization; qnnpack has no 3-d transposed convolution (engine table).
  std::vector<Engine> engines;
  for (Engine e : static_engines(EngineOp::StaticConv))
    if (!(transposed && dims == 3 && !engine_rule(e, EngineOp::StaticConv).conv_transpose3d_rejection.empty()))
      engines.push_back(e);
  if (!engines.empty()) {
    kind.implementations.push_back(
        {Implementation::Quantized, integer_name, engines,
         [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
           return QuantizedConv::from_float(dynamic_cast<const FloatConv&>(m), e);
         },
         [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
           return QuantizedConv::from_reference(dynamic_cast<const StaticReference&>(r), e);
         }});
    kind.implementations.push_back(
        {Implementation::LibTorch, integer_name, engines,
         [](const Module& m, const EngineProfile& e) { return libtorch_static_conv_from_float(dynamic_cast<const FloatConv&>(m), e); },
         [](const Module& r, const EngineProfile& e) {
           return libtorch_static_conv_from_reference(dynamic_cast<const StaticReference&>(r), e);
         }});
  }
  kind.case_parameters = {
      {"batch", 1, 4, "images"},
      {"groups", 1, 4, "groups (channels = groups x per-group channels, up to 16)"},
      {"in_per_group", 1, 4, "input channels per group"},
      {"out_per_group", 1, 4, "output channels per group"},
      {"kernel", 1, dims == 3 ? 3 : 5, "kernel size, every spatial dim"},
      {"stride", 1, 3, "stride, every spatial dim"},
      {"padding", 0, 2, "zero padding, every spatial dim"},
      {"dilation", 1, 2, "dilation, every spatial dim"},
      {"extra_size", 0, dims == 3 ? 2 : 4, "input size beyond the smallest the kernel allows"},
      {"bias", 0, 1, "1: with bias"},
      {"full_range", 0, 1, "1: activations observed on all 8 bits, else 7 (default_qconfig)"},
  };
  if (transposed) {
    kind.case_parameters.push_back(
        {"output_padding", 0, 2, "extra output positions at the end (kept below max(stride, dilation))"});
    kind.per_channel_weights = false;  // PyTorch refuses per-channel weight observers for ConvTranspose
    kind.engine_config_rule = [](const Module& reference, Engine engine) -> std::optional<std::string> {
      const auto& conv = dynamic_cast<const ReferenceConv&>(dynamic_cast<const StaticReference&>(reference).module());
      return output_padding_rejection(engine_rule(engine, EngineOp::StaticConv), conv.options().output_padding_or_zeros());
    };
  } else {
    kind.case_parameters.push_back(
        {"per_channel", 0, 1, "1: default_per_channel_weight_observer, else default_weight_observer"});
  }
  kind.make_case = [dims, relu, transposed](const CaseConfig& config) {
    return make_static_conv_case(config, dims, relu, transposed);
  };
  kind.libtorch_defect = [](const Module& reference, const ModuleInput& input, Engine engine,
                            const std::string& onednn_isa) -> std::optional<std::string> {
    const ConvOptions& o =
        dynamic_cast<const ReferenceConv&>(dynamic_cast<const StaticReference&>(reference).module()).options();
    const auto* x = std::get_if<QTensor>(&input.input);
    if (!x) return std::nullopt;
    const int64_t kernel_volume = numel_of(o.kernel_size);
    return libtorch_conv_defect(engine_rule(engine, EngineOp::StaticConv), onednn_isa,
                                {o.transposed, o.spatial_dims, o.groups, o.in_channels / o.groups, o.out_channels,
                                 kernel_volume, static_cast<int64_t>(x->qparams.zero_point())});
  };
  kind.sensitivity = static_conv_sensitivity;
  kind.weight_shape = [](const Module& reference) {
    const auto& conv = dynamic_cast<const ReferenceConv&>(dynamic_cast<const StaticReference&>(reference).module());
    return conv.weight().sizes;
  };
  kind.with_weight_qparams = [](const Module& reference, const QuantParams& qparams) -> std::unique_ptr<Module> {
    const auto& wrapper = dynamic_cast<const StaticReference&>(reference);
    const auto& conv = dynamic_cast<const ReferenceConv&>(wrapper.module());
    auto module = std::make_unique<ReferenceConv>(conv.options(), conv.weight(), conv.bias(), qparams);
    module->fused_relu = conv.fused_relu;
    return std::make_unique<StaticReference>(std::move(module), wrapper.output_qparams());
  };
  kind.reference_from_spec = [relu, name = kind.float_name](const ModuleSpec& spec) -> std::unique_ptr<Module> {
    const ConvOptions o = spec_conv_options(spec, name);
    const QTensor w = spec_conv_weight(spec, o);
    auto module = std::make_unique<ReferenceConv>(o, dequantize(w), spec_bias(spec, "bias"), w.qparams);
    module->fused_relu = relu;
    return std::make_unique<StaticReference>(std::move(module), spec_output_qparams(spec));
  };
  kind.quantized_from_spec = [relu, name = kind.float_name](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    const ConvOptions o = spec_conv_options(spec, name);
    const QuantParams out = spec_output_qparams(spec);
    return std::make_unique<QuantizedConv>(o, spec_conv_weight(spec, o), spec_bias(spec, "bias"), out.scale(), out.zero_point(), engine, relu);
  };
  return kind;
}

// --- dynamic LSTM, GRU, RNNCell, LSTMCell, GRUCell --------------------------------------

Tensor random_tensor(const Shape& sizes, float magnitude, std::mt19937_64& rng) {
  Tensor t(sizes);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : t.data) v = normal(rng) * magnitude;
  return t;
}

// pack_padded_sequence(padded, lengths, enforce_sorted=False): sequences sorted by
// decreasing length, then time-major rows of the sequences still running.
PackedSequence pack_sequences(const Tensor& padded_seq_first, const std::vector<int64_t>& lengths) {
  const int64_t T = padded_seq_first.size(0), B = padded_seq_first.size(1), F = padded_seq_first.size(2);
  std::vector<int64_t> sorted(B);
  std::iota(sorted.begin(), sorted.end(), 0);
  std::stable_sort(sorted.begin(), sorted.end(), [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  std::vector<int64_t> unsorted(B);
  for (int64_t i = 0; i < B; ++i) unsorted[sorted[i]] = i;
  PackedSequence packed;
  std::vector<float> rows;
  for (int64_t t = 0; t < T; ++t) {
    int64_t active = 0;
    for (int64_t i = 0; i < B && lengths[sorted[i]] > t; ++i, ++active)
      rows.insert(rows.end(), padded_seq_first.data.begin() + (t * B + sorted[i]) * F,
                  padded_seq_first.data.begin() + (t * B + sorted[i] + 1) * F);
    if (active == 0) break;
    packed.batch_sizes.push_back(active);
  }
  const int64_t total = static_cast<int64_t>(rows.size()) / F;
  packed.data = Tensor(Shape{total, F}, std::move(rows));
  packed.sorted_indices = std::move(sorted);
  packed.unsorted_indices = std::move(unsorted);
  return packed;
}

QConfig rnn_qconfig(int64_t weight) {
  switch (weight) {
    case 0: return default_dynamic_qconfig();
    case 1: return per_channel_dynamic_qconfig();
    default: return float16_dynamic_qconfig();
  }
}

Case make_dynamic_rnn_case(const CaseConfig& config, RnnMode mode, bool cell) {
  std::mt19937_64 rng(config.data_seed);
  RnnOptions o;
  o.mode = mode;
  o.cell = cell;
  o.input_size = config.get("input_size");
  o.hidden_size = config.get("hidden_size");
  if (!cell) {
    o.num_layers = config.get("num_layers");
    o.bidirectional = config.get("bidirectional") != 0;
    o.batch_first = config.get("batch_first") != 0;
    o.dropout = o.num_layers > 1 ? 0.25 : 0.0;  // inactive in eval; shows in repr only
  }
  if (mode == RnnMode::RNN) o.nonlinearity = config.get("relu") ? "relu" : "tanh";
  const bool per_channel = config.get("weight") == 1;
  // PyTorch's initialisation, U(-k, k) with k = 1/sqrt(hidden_size), times a gain from
  // 1/10 to 3 (per row, too, for per-channel cases): trained recurrent weights stay near
  // this scale, which keeps the recurrence from amplifying every difference step after step.
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f), exponent(-1.0f, 0.5f);
  const float k = 1.0f / std::sqrt(static_cast<float>(o.hidden_size)) * std::pow(10.0f, exponent(rng));
  const auto init = [&](int64_t rows, int64_t cols) {
    Tensor w(Shape{rows, cols});
    for (int64_t r = 0; r < rows; ++r) {
      const float row_gain = per_channel ? std::pow(10.0f, exponent(rng) / 2) : 1.0f;
      for (int64_t c = 0; c < cols; ++c) w.data[r * cols + c] = unit(rng) * k * row_gain;
    }
    return w;
  };
  std::vector<RnnParameters> parameters;
  for (int64_t i = 0; i < o.parameter_sets(); ++i) {
    RnnParameters p{init(o.gate_size(), o.layer_input_size(i / o.directions())), init(o.gate_size(), o.hidden_size),
                    std::nullopt, std::nullopt};
    p.b_ih = init(1, o.gate_size());
    p.b_hh = init(1, o.gate_size());
    p.b_ih->sizes = p.b_hh->sizes = {o.gate_size()};
    parameters.push_back(std::move(p));
  }
  auto module = std::make_unique<FloatRNN>(o, std::move(parameters));
  module->qconfig = rnn_qconfig(config.get("weight"));

  const int64_t batch = config.get("batch");
  ModuleInput input;
  const bool hidden_given = config.get("hidden_given") != 0;
  const Shape hidden_shape = cell ? Shape{batch, o.hidden_size} : Shape{o.parameter_sets(), batch, o.hidden_size};
  if (cell) {
    input.input = random_input({batch, o.input_size}, config.style, rng);
  } else {
    const int64_t T = config.get("seq_len");
    Tensor seq = random_input({T, batch, o.input_size}, config.style, rng);
    if (config.get("packed")) {
      std::vector<int64_t> lengths(batch);
      std::uniform_int_distribution<int64_t> length(1, T);
      for (auto& l : lengths) l = length(rng);
      lengths[rng() % batch] = T;  // the longest sequence sets seq_len
      input.input = pack_sequences(seq, lengths);
    } else if (o.batch_first) {
      Tensor bf(Shape{batch, T, o.input_size});
      for (int64_t t = 0; t < T; ++t)
        for (int64_t b = 0; b < batch; ++b)
          std::copy(seq.data.begin() + (t * batch + b) * o.input_size,
                    seq.data.begin() + (t * batch + b + 1) * o.input_size,
                    bf.data.begin() + (b * T + t) * o.input_size);
      input.input = std::move(bf);
    } else {
      input.input = std::move(seq);
    }
  }
  if (hidden_given) {
    HiddenState hidden{random_tensor(hidden_shape, 0.5f, rng), std::nullopt};
    if (mode == RnnMode::LSTM) hidden.c = random_tensor(hidden_shape, 1.0f, rng);
    input.hidden = std::move(hidden);
  }
  return {std::move(module), std::move(input)};
}

// A recurrent module's constructor arguments from a fixture (nnqd.RNNBase's attributes; the
// cells' sizes come from their weights' shapes).
RnnOptions spec_rnn_options(const ModuleSpec& spec, RnnMode mode, bool cell) {
  RnnOptions o;
  o.mode = mode;
  o.cell = cell;
  o.input_size = spec.integer("input_size");
  o.hidden_size = spec.integer("hidden_size");
  o.bias = spec.flag("bias");
  if (!cell) {
    o.num_layers = spec.integer("num_layers");
    o.batch_first = spec.flag("batch_first");
    o.dropout = spec.number("dropout");
    o.bidirectional = spec.flag("bidirectional");
  }
  if (mode == RnnMode::RNN && cell) o.nonlinearity = spec.text("nonlinearity");
  o.validate();
  return o;
}

// Every parameter set's integer weights and float biases, under PyTorch's names.
std::vector<QuantizedRnnWeights> spec_rnn_weights(const ModuleSpec& spec, const RnnOptions& o) {
  // A version-1 dynamic LSTM/GRU (reduce_range off) records it; cells always reduce.
  const bool reduce_range = !spec.has("reduce_range") || spec.flag("reduce_range");
  std::vector<QuantizedRnnWeights> weights;
  for (int64_t set = 0; set < o.parameter_sets(); ++set) {
    const RnnParameterNames names = rnn_parameter_names(o, set);
    weights.push_back({spec_weight(spec, names.w_ih), spec_weight(spec, names.w_hh), spec_bias(spec, names.b_ih),
                       spec_bias(spec, names.b_hh), reduce_range});
  }
  return weights;
}

ModuleKind dynamic_rnn_kind(RnnMode mode, bool cell) {
  RnnOptions names;
  names.mode = mode;
  names.cell = cell;
  ModuleKind kind;
  kind.float_name = names.float_name();
  kind.key = "dynamic." + kind.float_name;
  kind.family = Family::Dynamic;
  kind.engine_op = EngineOp::DynamicLinear;  // every gate projection is a dynamic linear call
  kind.structure = Structure::Recurrent;
  const bool has_from_reference = !(mode == RnnMode::GRU && !cell);  // PyTorch 1.13: nnqd.GRU has none
  kind.implementations.push_back(
      {Implementation::Reference, "Quantized" + kind.float_name + "(Reference)", {},
       [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
         return ReferenceRNN::from_float(dynamic_cast<const FloatRNN&>(m));
       },
       nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, "DynamicQuantized" + kind.float_name, all_engines(),
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return DynamicQuantizedRNN::from_float(dynamic_cast<const FloatRNN&>(m), e);
       },
       has_from_reference ? std::function<std::unique_ptr<Module>(const Module&, const EngineProfile&)>(
                                [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
                                  return DynamicQuantizedRNN::from_reference(dynamic_cast<const ReferenceRNN&>(r), e);
                                })
                          : nullptr});
  kind.implementations.push_back(
      {Implementation::LibTorch, "DynamicQuantized" + kind.float_name, libtorch_engines(),
       [](const Module& m, const EngineProfile& e) { return libtorch_dynamic_rnn_from_float(dynamic_cast<const FloatRNN&>(m), e); },
       has_from_reference ? std::function<std::unique_ptr<Module>(const Module&, const EngineProfile&)>(
                                [](const Module& r, const EngineProfile& e) {
                                  return libtorch_dynamic_rnn_from_reference(dynamic_cast<const ReferenceRNN&>(r), e);
                                })
                          : nullptr,
       cell ? nullptr
            : std::function<std::unique_ptr<Module>(const Module&, const EngineProfile&)>([](const Module& m, const EngineProfile& e) {
                return libtorch_dynamic_rnn_from_float(dynamic_cast<const FloatRNN&>(m), e,
                                                       LibTorchRnnCalls::FreshPrepackPerProjection);
              })});
  if (cell) {
    kind.case_parameters = {{"batch", 1, 8, "rows of the input"}};
  } else {
    kind.case_parameters = {
        {"seq_len", 1, 6, "time steps (the longest sequence when packed)"},
        {"batch", 1, 4, "sequences"},
        {"num_layers", 1, 3, "stacked layers"},
        {"bidirectional", 0, 1, "1: both directions"},
        {"batch_first", 0, 1, "1: input (batch, seq, feature)"},
        {"packed", 0, 1, "1: a PackedSequence with unsorted lengths (sorted_indices / unsorted_indices)"},
    };
  }
  kind.case_parameters.push_back({"input_size", 1, 32, "features of the input"});
  kind.case_parameters.push_back({"hidden_size", 1, 32, "features of the hidden state"});
  kind.case_parameters.push_back({"hidden_given", 0, 1, "1: an initial hidden state is passed, else zeros"});
  kind.case_parameters.push_back(
      {"weight", 0, 2, "0: default_dynamic_qconfig (qint8 per-tensor), 1: per_channel_dynamic_qconfig, "
                       "2: float16_dynamic_qconfig"});
  if (mode == RnnMode::RNN) kind.case_parameters.push_back({"relu", 0, 1, "1: nonlinearity='relu', else 'tanh'"});
  kind.make_case = [mode, cell](const CaseConfig& config) { return make_dynamic_rnn_case(config, mode, cell); };
  kind.recurrent_bounds = [](const Module& reference, const ModuleInput& input, const RecurrentBoundModel& model) {
    return recurrent_error_bounds(dynamic_cast<const ReferenceRNN&>(reference), input, model);
  };
  kind.weight_shape = [](const Module& reference) {
    return dynamic_cast<const ReferenceRNN&>(reference).parameters().at(0).w_ih.sizes;
  };
  kind.with_weight_qparams = [](const Module& reference, const QuantParams& qparams) -> std::unique_ptr<Module> {
    const auto& rnn = dynamic_cast<const ReferenceRNN&>(reference);
    // Per-channel qparams along axis 0 fit w_ih and w_hh alike (gate_size rows).
    std::vector<RnnWeightQParams> all(rnn.parameters().size(), RnnWeightQParams{qparams, qparams});
    return std::make_unique<ReferenceRNN>(rnn.options(), rnn.parameters(), std::move(all));
  };
  kind.reference_from_spec = [mode, cell](const ModuleSpec& spec) -> std::unique_ptr<Module> {
    const RnnOptions o = spec_rnn_options(spec, mode, cell);
    std::vector<RnnParameters> parameters;
    std::vector<RnnWeightQParams> qparams;
    for (const QuantizedRnnWeights& w : spec_rnn_weights(spec, o)) {
      parameters.push_back({dequantize(w.w_ih), dequantize(w.w_hh), w.b_ih, w.b_hh});
      qparams.push_back({w.w_ih.qparams, w.w_hh.qparams});
    }
    return std::make_unique<ReferenceRNN>(o, std::move(parameters), std::move(qparams));
  };
  kind.quantized_from_spec = [mode, cell](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    const RnnOptions o = spec_rnn_options(spec, mode, cell);
    return std::make_unique<DynamicQuantizedRNN>(o, spec_rnn_weights(spec, o), engine);
  };
  kind.module_weight_rule = [](const QuantParams& qparams) -> std::optional<std::string> {
    try {
      check_dynamic_rnn_weight_dtype(qparams.dtype);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::nullopt;
  };
  return kind;
}

std::vector<ModuleKind> make_registry() {
  std::vector<ModuleKind> kinds;
  kinds.push_back(dynamic_linear_kind(/*relu=*/false));
  kinds.push_back(dynamic_linear_kind(/*relu=*/true));
  kinds.push_back(dynamic_rnn_kind(RnnMode::LSTM, /*cell=*/false));
  kinds.push_back(dynamic_rnn_kind(RnnMode::GRU, /*cell=*/false));
  kinds.push_back(dynamic_rnn_kind(RnnMode::RNN, /*cell=*/true));
  kinds.push_back(dynamic_rnn_kind(RnnMode::LSTM, /*cell=*/true));
  kinds.push_back(dynamic_rnn_kind(RnnMode::GRU, /*cell=*/true));
  kinds.push_back(static_linear_kind(/*relu=*/false));
  kinds.push_back(static_linear_kind(/*relu=*/true));
  for (int64_t dims : {1, 2, 3})
    for (bool relu : {false, true}) kinds.push_back(static_conv_kind(dims, relu));
  for (int64_t dims : {1, 2, 3}) kinds.push_back(static_conv_kind(dims, /*relu=*/false, /*transposed=*/true));
  return kinds;
}

}  // namespace

std::string to_string(Family family) {
  switch (family) {
    case Family::Dynamic: return "dynamic";
    case Family::Static: return "static";
    case Family::WeightOnly: return "weight-only";
    case Family::Reference: return "reference";
  }
  return "?";
}

std::string to_string(Structure structure) {
  return structure == Structure::Reduction ? "reduction" : "recurrent";
}

std::string to_string(InputStyle style) {
  switch (style) {
    case InputStyle::Normal: return "normal";
    case InputStyle::RoundingTies: return "ties";
    case InputStyle::Constant: return "constant";
    case InputStyle::WideRange: return "wide";
  }
  return "?";
}

int64_t CaseConfig::get(const std::string& name) const {
  const auto it = values.find(name);
  if (it == values.end()) throw Error("case has no parameter '" + name + "' (" + to_string() + ")");
  return it->second;
}

std::string CaseConfig::to_string() const {
  std::ostringstream out;
  for (const auto& [name, value] : values) out << name << "=" << value << " ";
  out << "seed=" << data_seed << " style=" << qconform::to_string(style);
  return out.str();
}

const ImplementationEntry* ModuleKind::find(Implementation implementation) const {
  for (const auto& entry : implementations)
    if (entry.implementation == implementation) return &entry;
  return nullptr;
}

bool ModuleKind::supports(Implementation implementation, Engine engine) const {
  const ImplementationEntry* entry = find(implementation);
  if (!entry) return false;
  return entry->engines.empty() ||
         std::find(entry->engines.begin(), entry->engines.end(), engine) != entry->engines.end();
}

const std::vector<ModuleKind>& registry() {
  static const std::vector<ModuleKind> kinds = make_registry();
  return kinds;
}

const ModuleKind& module_kind(const std::string& key) {
  std::string known;
  for (const auto& kind : registry()) {
    if (kind.key == key) return kind;
    known += (known.empty() ? "" : ", ") + kind.key;
  }
  throw Error("unknown module kind '" + key + "' (registered: " + known + ")");
}

namespace {
const ImplementationEntry& require(const ModuleKind& kind, const ConversionTarget& target) {
  const ImplementationEntry* entry = kind.find(target.implementation);
  if (!entry)
    throw Error(kind.key + " has no " + to_string(target.implementation) + " implementation");
  if (!kind.supports(target.implementation, target.engine.engine))
    throw Error(kind.key + ": the " + to_string(target.implementation) +
                " implementation does not run on " + to_string(target.engine.engine));
  return *entry;
}
}  // namespace

std::unique_ptr<Module> convert_from_float(const ModuleKind& kind, const Module& float_module,
                                           const ConversionTarget& target) {
  auto module = require(kind, target).from_float(float_module, target.engine);
  module->copy_hooks_from(float_module);
  return module;
}

std::unique_ptr<Module> convert_from_reference(const ModuleKind& kind, const Module& reference,
                                               const ConversionTarget& target) {
  const ImplementationEntry& entry = require(kind, target);
  if (!entry.from_reference)
    throw Error(kind.key + ": " + entry.repr_name + " has no from_reference");
  auto module = entry.from_reference(reference, target.engine);
  module->copy_hooks_from(reference);
  return module;
}

std::string registry_table_text() {
  std::ostringstream out;
  out << "kind                   family       implementation  name                                engines\n";
  for (const auto& kind : registry())
    for (const auto& entry : kind.implementations) {
      std::string engines;
      for (Engine e : entry.engines) engines += (engines.empty() ? "" : ",") + to_string(e);
      if (entry.engines.empty()) engines = "(engine-independent)";
      char line[256];
      std::snprintf(line, sizeof line, "%-22s %-12s %-15s %-35s %s\n", kind.key.c_str(),
                    to_string(kind.family).c_str(), to_string(entry.implementation).c_str(),
                    entry.repr_name.c_str(), engines.c_str());
      out << line;
    }
  return out.str();
}

std::string registry_json() {
  nlohmann::json kinds = nlohmann::json::array();
  for (const auto& kind : registry()) {
    nlohmann::json implementations = nlohmann::json::array();
    std::vector<std::string> all;
    for (const auto& entry : kind.implementations) {
      std::vector<std::string> engines;
      for (Engine e : entry.engines) {
        engines.push_back(to_string(e));
        if (std::find(all.begin(), all.end(), to_string(e)) == all.end()) all.push_back(to_string(e));
      }
      implementations.push_back({{"implementation", to_string(entry.implementation)},
                                 {"name", entry.repr_name},
                                 {"engines", engines},
                                 {"from_reference", static_cast<bool>(entry.from_reference)}});
    }
    kinds.push_back({{"kind", kind.key},
                     {"name", kind.float_name},
                     {"family", to_string(kind.family)},
                     {"op", to_string(kind.engine_op)},
                     {"implementations", implementations},
                     {"engines", all}});
  }
  return kinds.dump(2);
}

}  // namespace qconform
