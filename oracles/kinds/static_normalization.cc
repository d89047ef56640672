// static.BatchNorm2d, BatchNorm3d, BNReLU2d, BNReLU3d (nnq.BatchNorm{2,3}d and
// nniq.BNReLU{2,3}d, what PyTorch 1.13's eager convert makes of a calibrated BatchNorm, or of
// the BNReLU fuse_modules makes), and static.LayerNorm, GroupNorm, InstanceNorm{1,2,3}d
// (nnq.LayerNorm, ...): random cases, bounds, refusals and fixture readers.
#include "oracles/kinds/families.h"

#include <cfloat>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/float/batchnorm.h"
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/kernels/normalization.h"
#include "quantized/libtorch/static_batchnorm.h"
#include "quantized/libtorch/static_normalization.h"
#include "quantized/static/batchnorm.h"
#include "quantized/static/linear.h"
#include "quantized/static/normalization.h"
#include "reference/batchnorm.h"
#include "reference/normalization.h"
#include "reference/static.h"

namespace qconform::kinds {
namespace {

constexpr double kEps[] = {1e-5, 1e-3, 0.1};

// Statistics as training leaves them: means of either sign, variances from 0.01 to 10 (and
// tiny ones, where eps matters), gammas of either sign and a random magnitude.
BatchNormState random_state(int64_t channels, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> log_var(-2.0f, 1.0f);
  std::bernoulli_distribution tiny(0.1);
  BatchNormState s;
  s.weight = random_tensor({channels}, 1.0f, rng);
  s.bias = random_tensor({channels}, 1.0f, rng);
  s.running_mean = random_tensor({channels}, 1.0f, rng);
  Tensor var({channels});
  for (float& v : var.data) v = tiny(rng) ? 1e-7f : std::pow(10.0f, log_var(rng));
  s.running_var = var;
  s.num_batches_tracked = 7;
  return s;
}

BatchNormOptions case_options(int64_t dims, const CaseConfig& config) {
  BatchNormOptions o;
  o.spatial_dims = dims;
  o.num_features = config.get("channels");
  o.eps = kEps[config.get("eps")];
  return o;
}

Case make_batch_norm_case(const CaseConfig& config, int64_t dims, bool relu) {
  std::mt19937_64 rng(config.data_seed);
  const BatchNormOptions o = case_options(dims, config);
  auto module = std::make_unique<FloatBatchNorm>(o, random_state(o.num_features, rng));
  module->fused_relu = relu;
  Shape shape{config.get("batch"), o.num_features, config.get("height"), config.get("width")};
  if (dims == 3) shape.insert(shape.begin() + 2, config.get("depth"));
  const Tensor x = random_input(shape, config.style, rng);
  return calibrated_static_case(std::move(module), config, x);
}

std::unique_ptr<Module> reference_batch_norm(const FloatBatchNorm& float_module) {
  auto module = std::make_unique<ReferenceBatchNorm>(float_module.options(), float_module.state());
  module->fused_relu = float_module.fused_relu;
  return std::make_unique<StaticReference>(std::move(module), calibrated_output_qparams(float_module));
}

// Per element of channel c, in real units: a = w / sqrt(var + eps), y = a x + (b - mean a);
// M = |a x| + |mean a| + |b| + |y| (tolerance table, normalization rows), over K = 4 roundings.
std::vector<OutputSensitivity> batch_norm_sensitivity(const Module& module, const ModuleInput& input) {
  const auto& wrapper = dynamic_cast<const StaticReference&>(module);
  const auto& bn = dynamic_cast<const FloatBatchNorm&>(wrapper.module());
  const BatchNormState& s = bn.state();
  const Tensor x = dequantize(std::get<QTensor>(input.input));
  const int64_t channels = x.size(1);
  int64_t plane = 1;
  for (int64_t d = 2; d < x.dim(); ++d) plane *= x.sizes[d];
  std::vector<OutputSensitivity> result(x.data.size());
  for (size_t i = 0; i < x.data.size(); ++i) {
    const int64_t c = (static_cast<int64_t>(i) / plane) % channels;
    const double a = s.weight->data[c] / std::sqrt(static_cast<double>(s.running_var->data[c]) + bn.options().eps);
    const double shift = s.running_mean->data[c] * a;
    const double y = a * x.data[i] + s.bias->data[c] - shift;
    OutputSensitivity& e = result[i];
    e.terms = 4;
    e.output_scale = wrapper.output_qparams().scale();
    e.magnitude = std::abs(a * x.data[i]) + std::abs(shift) + std::abs(s.bias->data[c]) + std::abs(y);
  }
  return result;
}

std::vector<RefusalCase> batch_norm_refusals(const CaseConfig& config, int64_t dims, bool relu) {
  std::vector<RefusalCase> cases;
  Case c = make_batch_norm_case(config, dims, relu);
  c.input.input = without_first_dimension(std::get<QTensor>(c.input.input));
  cases.push_back({"an input without its batch dimension", std::move(c)});
  return cases;
}

// Fixtures: nnq.BatchNorm's num_features and eps, its float parameters and statistics, and
// its output scale and zero point.
BatchNormOptions spec_options(int64_t dims, const ModuleSpec& spec) {
  BatchNormOptions o;
  o.spatial_dims = dims;
  o.num_features = spec.integer("num_features");
  o.eps = spec.number("eps");
  return o;
}

BatchNormState spec_state(const BatchNormOptions& o, const ModuleSpec& spec) {
  BatchNormState s;
  const auto read = [&](const char* key) {
    const Tensor& t = spec.parameters.at(key).as<Tensor>(key);
    check_spec_shape(spec, key, t.sizes, {o.num_features});
    return t;
  };
  s.weight = read("weight");
  s.bias = read("bias");
  s.running_mean = read("running_mean");
  s.running_var = read("running_var");
  return s;
}

// --- LayerNorm, GroupNorm, InstanceNorm ------------------------------------------------------

// The module and input shape of a case. LayerNorm normalizes the last one or two of (batch,
// rows, columns); GroupNorm and InstanceNorm take (batch, channels, spatial...). Groups run
// from one element to a few hundred: below, across and beyond ATen's vector blocks of 32
// and 64.
std::pair<NormalizationOptions, Shape> norm_case_shape(NormOp op, int64_t dims, const CaseConfig& config) {
  NormalizationOptions o;
  o.op = op;
  o.eps = kEps[config.get("eps")];
  o.affine = config.get("affine") != 0;
  const int64_t batch = config.get("batch");
  if (op == NormOp::LayerNorm) {
    const Shape shape{batch, config.get("rows"), config.get("columns")};
    o.normalized_shape = config.get("normalized_dims") == 2 ? Shape{shape[1], shape[2]} : Shape{shape[2]};
    return {o, shape};
  }
  // large_map: a 32 x 32 map, which with one channel takes LibTorch's channels-last kernel
  // from 512 pixels on (float sums per thread).
  const bool large = has_parameter(config, "large_map") && config.get("large_map") != 0;
  if (op == NormOp::GroupNorm) {
    o.num_groups = config.get("groups");
    o.num_channels = o.num_groups * config.get("channels_per_group");
    if (large) return {o, {batch, o.num_channels, 32, 32}};
    return {o, {batch, o.num_channels, config.get("height"), config.get("width")}};
  }
  o.spatial_dims = dims;
  o.num_channels = config.get("channels");
  if (large) return {o, {batch, o.num_channels, 32, 32}};
  Shape shape{batch, o.num_channels, config.get("length")};
  if (dims >= 2) shape.push_back(config.get("width"));
  if (dims == 3) shape.push_back(config.get("depth"));
  return {o, shape};
}

Case make_norm_case(const CaseConfig& config, NormOp op, int64_t dims) {
  std::mt19937_64 rng(config.data_seed);
  const auto [o, shape] = norm_case_shape(op, dims, config);
  std::optional<Tensor> weight, bias;
  if (o.affine) {
    weight = random_tensor(o.parameter_shape(), 1.0f, rng);
    bias = random_tensor(o.parameter_shape(), 1.0f, rng);
  }
  auto module = std::make_unique<FloatNormalization>(o, weight, bias);
  // A random offset per group, so that means sit far from zero too (the variance's
  // cancellation).
  Tensor x = random_input(shape, config.style, rng);
  NormalDistribution offset(0.0f, 2.0f);
  const NormalizationGroups g = normalization_groups(o, shape, module->name());
  for (int64_t i = 0; i < g.count; ++i) {
    const float shift = offset(rng);
    for (int64_t e = 0; e < g.size; ++e) x.data[i * g.size + e] += shift;
  }
  return calibrated_static_case(std::move(module), config, x);
}

std::unique_ptr<Module> reference_norm(const FloatNormalization& float_module) {
  auto module =
      std::make_unique<ReferenceNormalization>(float_module.options(), float_module.weight(), float_module.bias());
  return std::make_unique<StaticReference>(std::move(module), calibrated_output_qparams(float_module));
}

// Per element, in real units. Let t be the normalized value and g, b the affine terms. Each
// side rounds its few float steps (K = 4) of terms bounded by M = |t g| + |b| + |y|; beyond
// that the integer side gives up, by design, the accuracy of its statistics: its variance is
// E[q^2] - m^2 in float over integers up to 255, off by up to 3 eps (S2 / N + m^2) quanta
// squared (N eps more where LibTorch's channels-last kernel sums q^2 in float), and its mean
// by eps |m|; so t g moves by |t g| (1/2) dvar s^2 / (var s^2 + eps_bn) + |g| 2 eps (|m| +
// |m - z|) s / std (the channels-last kernel's folded bias, -g' (m - z) + beta, rounds a term
// of that size too). That is design_quanta, in output quanta.
std::vector<OutputSensitivity> norm_sensitivity(const Module& module, const ModuleInput& input) {
  const auto& wrapper = dynamic_cast<const StaticReference&>(module);
  const auto& norm = dynamic_cast<const FloatNormalization&>(wrapper.module());
  const NormalizationOptions& o = norm.options();
  const QTensor& xq = std::get<QTensor>(input.input);
  const double s = xq.qparams.scale(), out_scale = wrapper.output_qparams().scale();
  const double zero_point = static_cast<double>(xq.qparams.zero_point());
  const double eps = FLT_EPSILON;
  const NormalizationGroups g = normalization_groups(o, xq.sizes, norm.name());
  const int64_t plane = g.per_channel ? g.size / g.channels_per_group : g.size;
  std::vector<OutputSensitivity> result(xq.values.size());
  for (int64_t i = 0; i < g.count; ++i) {
    const int32_t* q = xq.values.data() + i * g.size;
    double sum = 0, squares = 0;
    for (int64_t e = 0; e < g.size; ++e) {
      sum += q[e];
      squares += static_cast<double>(q[e]) * q[e];
    }
    const double m = sum / static_cast<double>(g.size);
    const double variance_q = std::max(squares / static_cast<double>(g.size) - m * m, 0.0);
    // LibTorch's channels-last kernel sums q^2 in float from 512 pixels on: up to N eps
    // relative error in E[q^2].
    const double sum_error = kernels::normalize_sums_in_float(g, xq.sizes) ? static_cast<double>(g.size) * eps : 0.0;
    const double variance_error_q = (3 * eps + sum_error) * (squares / static_cast<double>(g.size) + m * m);
    const double variance = variance_q * s * s + o.eps;
    const double std = std::sqrt(variance);
    const double relative_std_error = 0.5 * variance_error_q * s * s / variance;
    for (int64_t e = 0; e < g.size; ++e) {
      const int64_t p = g.per_channel ? (i * g.channels_per_group + e / plane) % g.channels : e;
      const double gamma = norm.weight() ? norm.weight()->data[p] : 1.0;
      const double beta = norm.bias() ? norm.bias()->data[p] : 0.0;
      const double t = (q[e] - m) * s / std;
      const double y = t * gamma + beta;
      OutputSensitivity& out = result[i * g.size + e];
      out.terms = 4;
      out.output_scale = out_scale;
      out.magnitude = std::abs(t * gamma) + std::abs(beta) + std::abs(y);
      out.design_quanta =
          (std::abs(t * gamma) * relative_std_error +
           std::abs(gamma) * 2 * eps * (std::abs(m) + std::abs(m - zero_point)) * s / std) / out_scale;
    }
  }
  return result;
}

std::vector<RefusalCase> norm_refusals(const CaseConfig& config, NormOp op, int64_t dims) {
  std::vector<RefusalCase> cases;
  if (op == NormOp::LayerNorm) {  // the input's trailing sizes must be normalized_shape
    Case c = make_norm_case(config, op, dims);
    c.input.input = with_extra_column(std::get<QTensor>(c.input.input));
    cases.push_back({"an input one column wider than normalized_shape", std::move(c)});
    return cases;
  }
  Case c = make_norm_case(config, op, dims);  // group_norm needs (N, C, ...)
  QTensor x = std::get<QTensor>(c.input.input);
  x.sizes.resize(2);  // (N, C): the first N C integers
  x.values.resize(numel_of(x.sizes));
  c.input.input = x;
  cases.push_back({"an input of two dimensions", std::move(c)});
  return cases;
}

std::optional<std::string> norm_libtorch_defect(const Module& reference, const ModuleInput& input) {
  const auto& norm = dynamic_cast<const FloatNormalization&>(dynamic_cast<const StaticReference&>(reference).module());
  const Shape& shape = std::get<QTensor>(input.input).sizes;
  const NormalizationGroups groups = normalization_groups(norm.options(), shape, norm.name());
  if (kernels::nhwc_unwritten_samples(groups, shape) == 0) return std::nullopt;
  return "quantized::group_norm's channels-last kernel (a 4-d input with one channel or one pixel, below 512 "
         "pixels) wraps the batch index at the group's size (" + std::to_string(groups.size) +
         " elements): samples from there on are never written and hold whatever memory LibTorch was given";
}

NormalizationOptions norm_spec_options(NormOp op, int64_t dims, const ModuleSpec& spec) {
  NormalizationOptions o;
  o.op = op;
  o.eps = spec.number("eps");
  o.affine = spec.flag("affine");
  if (op == NormOp::LayerNorm) o.normalized_shape = spec.integers("normalized_shape");
  if (op == NormOp::GroupNorm) {
    o.num_groups = spec.integer("num_groups");
    o.num_channels = spec.integer("num_channels");
  }
  if (op == NormOp::InstanceNorm) {
    o.spatial_dims = dims;
    o.num_channels = spec.integer("num_features");
  }
  return o;
}

std::optional<Tensor> norm_spec_parameter(const NormalizationOptions& o, const ModuleSpec& spec, const char* key) {
  if (!o.affine) return std::nullopt;
  const Tensor& t = spec.parameters.at(key).as<Tensor>(key);
  check_spec_shape(spec, key, t.sizes, o.parameter_shape());
  return t;
}

}  // namespace

ModuleKind static_norm_kind(NormOp op, int64_t dims) {
  ModuleKind kind;
  NormalizationOptions named;
  named.op = op;
  named.spatial_dims = dims;
  kind.float_name = named.float_name();
  kind.key = "static." + kind.float_name;
  kind.family = Family::Static;
  kind.engine_op = EngineOp::StaticNormalization;
  kind.structure = Structure::Normalization;
  const std::string integer_name = "Quantized" + kind.float_name;
  const std::vector<Engine> engines = static_engines(EngineOp::StaticNormalization);
  kind.implementations.push_back({Implementation::Reference, kind.float_name + "(Reference)", {},
                                  [](const Module& m, const EngineProfile&) {
                                    return reference_norm(dynamic_cast<const FloatNormalization&>(m));
                                  },
                                  nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, integer_name, engines,
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedNormalization::from_float(dynamic_cast<const FloatNormalization&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedNormalization::from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  kind.implementations.push_back(
      {Implementation::LibTorch, integer_name, engines,
       [](const Module& m, const EngineProfile& e) {
         return libtorch_normalization_from_float(dynamic_cast<const FloatNormalization&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) {
         return libtorch_normalization_from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  kind.case_parameters = {{"batch", 1, 3, "samples"}};
  if (op == NormOp::LayerNorm) {
    kind.case_parameters.push_back({"rows", 1, 6, "rows"});
    kind.case_parameters.push_back({"columns", 1, 80, "columns"});
    kind.case_parameters.push_back({"normalized_dims", 1, 2, "normalized_shape: the last 1 or 2 dimensions"});
  } else if (op == NormOp::GroupNorm) {
    kind.case_parameters.push_back({"groups", 1, 4, "num_groups"});
    kind.case_parameters.push_back({"channels_per_group", 1, 3, "channels per group"});
    kind.case_parameters.push_back({"height", 1, 6, "rows"});
    kind.case_parameters.push_back({"width", 1, 12, "columns"});
  } else {
    kind.case_parameters.push_back({"channels", 1, 6, "channels (num_features)"});
    kind.case_parameters.push_back({"length", 1, dims == 1 ? 90 : 12, "the first spatial size"});
    if (dims >= 2) kind.case_parameters.push_back({"width", 1, 8, "the second spatial size"});
    if (dims == 3) kind.case_parameters.push_back({"depth", 1, 3, "the third spatial size"});
  }
  if (op == NormOp::GroupNorm || (op == NormOp::InstanceNorm && dims == 2))
    kind.case_parameters.push_back({"large_map", 0, 1, "1: a 32 x 32 map (LibTorch's channels-last kernel's float "
                                                       "sums when there is one channel)"});
  kind.case_parameters.push_back({"affine", 0, 1, "1: weight and bias (elementwise_affine / affine)"});
  kind.case_parameters.push_back({"eps", 0, 2, "eps: 1e-5, 1e-3, 0.1"});
  kind.case_parameters.push_back({"full_range", 0, 1, "1: activations observed on all 8 bits, else 7 (default_qconfig)"});
  kind.make_case = [op, dims](const CaseConfig& config) { return make_norm_case(config, op, dims); };
  kind.sensitivity = norm_sensitivity;
  kind.refusal_cases = [op, dims](const CaseConfig& config) { return norm_refusals(config, op, dims); };
  kind.libtorch_defect = [](const Module& reference, const ModuleInput& input, Engine, const std::string&) {
    return norm_libtorch_defect(reference, input);
  };
  kind.reference_from_spec = [op, dims](const ModuleSpec& spec) -> std::unique_ptr<Module> {
    const NormalizationOptions o = norm_spec_options(op, dims, spec);
    auto module = std::make_unique<ReferenceNormalization>(o, norm_spec_parameter(o, spec, "weight"),
                                                           norm_spec_parameter(o, spec, "bias"));
    return std::make_unique<StaticReference>(std::move(module), spec_output_qparams(spec));
  };
  kind.quantized_from_spec = [op, dims](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    const NormalizationOptions o = norm_spec_options(op, dims, spec);
    return std::make_unique<QuantizedNormalization>(o, norm_spec_parameter(o, spec, "weight"),
                                                    norm_spec_parameter(o, spec, "bias"), spec_output_qparams(spec),
                                                    engine);
  };
  return kind;
}

ModuleKind static_batch_norm_kind(int64_t dims, bool relu) {
  ModuleKind kind;
  BatchNormOptions named;
  named.spatial_dims = dims;
  kind.float_name = named.float_name(relu);
  kind.key = "static." + kind.float_name;
  kind.family = Family::Static;
  kind.engine_op = EngineOp::StaticNormalization;
  kind.structure = Structure::Normalization;
  const std::string integer_name = quantized_batch_norm_name(dims, relu);
  const std::vector<Engine> engines = static_engines(EngineOp::StaticNormalization);
  kind.implementations.push_back({Implementation::Reference, kind.float_name + "(Reference)", {},
                                  [](const Module& m, const EngineProfile&) {
                                    return reference_batch_norm(dynamic_cast<const FloatBatchNorm&>(m));
                                  },
                                  nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, integer_name, engines,
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedBatchNorm::from_float(dynamic_cast<const FloatBatchNorm&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedBatchNorm::from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  kind.implementations.push_back({Implementation::LibTorch, integer_name, engines,
                                  [](const Module& m, const EngineProfile& e) {
                                    return libtorch_batch_norm_from_float(dynamic_cast<const FloatBatchNorm&>(m), e);
                                  },
                                  [](const Module& r, const EngineProfile& e) {
                                    return libtorch_batch_norm_from_reference(dynamic_cast<const StaticReference&>(r),
                                                                              e);
                                  }});
  // Channels up to 80: below, across and beyond ATen's vector blocks of 8, 32 and 64.
  kind.case_parameters = {
      {"batch", 1, 3, "images"},
      {"channels", 1, 80, "channels (num_features)"},
      {"height", 1, 5, "rows"},
      {"width", 1, 6, "columns"},
      {"eps", 0, 2, "eps: 1e-5, 1e-3, 0.1"},
      {"full_range", 0, 1, "1: activations observed on all 8 bits, else 7 (default_qconfig)"},
  };
  if (dims == 3) kind.case_parameters.insert(kind.case_parameters.begin() + 2, {"depth", 1, 3, "depth"});
  kind.make_case = [dims, relu](const CaseConfig& config) { return make_batch_norm_case(config, dims, relu); };
  kind.sensitivity = batch_norm_sensitivity;
  kind.refusal_cases = [dims, relu](const CaseConfig& config) { return batch_norm_refusals(config, dims, relu); };
  kind.reference_from_spec = [dims, relu](const ModuleSpec& spec) -> std::unique_ptr<Module> {
    const BatchNormOptions o = spec_options(dims, spec);
    auto module = std::make_unique<ReferenceBatchNorm>(o, spec_state(o, spec));
    module->fused_relu = relu;
    return std::make_unique<StaticReference>(std::move(module), spec_output_qparams(spec));
  };
  kind.quantized_from_spec = [dims, relu](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    const BatchNormOptions o = spec_options(dims, spec);
    return std::make_unique<QuantizedBatchNorm>(QuantizedBatchNorm::converted_options(o), spec_state(o, spec),
                                                spec_output_qparams(spec), engine, relu);
  };
  return kind;
}

}  // namespace qconform::kinds
