// static.BatchNorm2d, BatchNorm3d, BNReLU2d, BNReLU3d: random cases, bounds, refusals and
// fixture readers (nnq.BatchNorm{2,3}d and nniq.BNReLU{2,3}d, what PyTorch 1.13's eager
// convert makes of a calibrated BatchNorm, or of the BNReLU fuse_modules makes).
#include "oracles/kinds/families.h"

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/float/batchnorm.h"
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/libtorch/static_batchnorm.h"
#include "quantized/static/batchnorm.h"
#include "quantized/static/linear.h"
#include "reference/batchnorm.h"
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

}  // namespace

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
