// static.ReLU, ReLU6, LeakyReLU, Hardswish, ELU, Sigmoid, Hardsigmoid, Tanh, Dropout: random
// cases, bounds and fixture readers (torch.nn's activations as PyTorch 1.13's eager convert
// leaves them: nnq.ReLU6 / LeakyReLU / Hardswish / ELU / Dropout, or the float module on a
// quantized tensor).
#include "oracles/kinds/families.h"

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/libtorch/static_activation.h"
#include "quantized/static/activation.h"
#include "quantized/static/linear.h"
#include "reference/activation.h"
#include "reference/static.h"

namespace qconform::kinds {
namespace {

// The choices behind a case's "variant" parameter: PyTorch's defaults first.
constexpr double kNegativeSlopes[] = {0.01, 0.1, 0.2, 1.5};
constexpr double kAlphas[] = {1.0, 0.5, 2.0, 0.1};

ActivationOptions case_options(ActivationOp op, const CaseConfig& config) {
  ActivationOptions o;
  o.op = op;
  const int64_t variant = has_parameter(config, "variant") ? config.get("variant") : 0;
  o.negative_slope = kNegativeSlopes[variant];
  o.alpha = kAlphas[variant];
  return o;
}

// An (N, C, H, W) input, calibrated: the input observer chooses the input qparams and the
// output observer sees the float module's output (the Observed ops' output qparams).
Case make_activation_case(const CaseConfig& config, ActivationOp op) {
  std::mt19937_64 rng(config.data_seed);
  auto module = std::make_unique<FloatActivation>(case_options(op, config));
  const Tensor x = random_input({config.get("batch"), config.get("channels"), config.get("height"), config.get("width")},
                                config.style, rng);
  return calibrated_static_case(std::move(module), config, x);
}

// The reference the op's rule implies: the calibrated output qparams, the op's fixed ones,
// or the input's.
std::unique_ptr<Module> reference_activation(const FloatActivation& float_module) {
  auto module = std::make_unique<ReferenceActivation>(float_module.options());
  switch (output_qparams_rule(float_module.options().op)) {
    case OutputQParamsRule::SameAsInput: return StaticReference::keeping_input_qparams(std::move(module));
    case OutputQParamsRule::Fixed:
      return std::make_unique<StaticReference>(std::move(module), fixed_output_qparams(float_module.options().op));
    case OutputQParamsRule::Observed: break;
  }
  return std::make_unique<StaticReference>(std::move(module), calibrated_output_qparams(float_module));
}

// Per element, in output quanta: M = L |x| + |f(x)| (tolerance table, elementwise rows).
std::vector<OutputSensitivity> activation_sensitivity(const Module& module, const ModuleInput& input) {
  const auto& wrapper = dynamic_cast<const StaticReference&>(module);
  const auto& options = dynamic_cast<const FloatActivation&>(wrapper.module()).options();
  const auto& xq = std::get<QTensor>(input.input);
  const double out_scale = wrapper.keeps_input_qparams() ? xq.qparams.scale() : wrapper.output_qparams().scale();
  const Tensor x = dequantize(xq);
  const double lipschitz = activation_lipschitz(options);
  std::vector<OutputSensitivity> result(x.data.size());
  for (size_t i = 0; i < x.data.size(); ++i) {
    OutputSensitivity& s = result[i];
    s.terms = 0;
    s.output_scale = out_scale;
    s.magnitude = lipschitz * std::abs(x.data[i]) + std::abs(activation_value(options, x.data[i]));
  }
  return result;
}

// Fixtures: the op's options and, for the Observed ops, the module's output qparams.
ActivationOptions spec_options(ActivationOp op, const ModuleSpec& spec) {
  ActivationOptions o;
  o.op = op;
  if (spec.has("negative_slope")) o.negative_slope = spec.number("negative_slope");
  if (spec.has("alpha")) o.alpha = spec.number("alpha");
  if (spec.has("p")) o.p = spec.number("p");
  return o;
}

std::optional<QuantParams> spec_observed(ActivationOp op, const ModuleSpec& spec) {
  if (output_qparams_rule(op) != OutputQParamsRule::Observed) return std::nullopt;
  return spec_output_qparams(spec);
}

std::unique_ptr<Module> spec_reference(ActivationOp op, const ModuleSpec& spec) {
  auto module = std::make_unique<ReferenceActivation>(spec_options(op, spec));
  switch (output_qparams_rule(op)) {
    case OutputQParamsRule::SameAsInput: return StaticReference::keeping_input_qparams(std::move(module));
    case OutputQParamsRule::Fixed: return std::make_unique<StaticReference>(std::move(module), fixed_output_qparams(op));
    case OutputQParamsRule::Observed: break;
  }
  return std::make_unique<StaticReference>(std::move(module), spec_output_qparams(spec));
}

}  // namespace

ModuleKind static_activation_kind(ActivationOp op) {
  ModuleKind kind;
  const ActivationOptions named{op};
  kind.float_name = named.float_name();
  kind.key = "static." + kind.float_name;
  kind.family = Family::Static;
  kind.engine_op = EngineOp::StaticElementwise;
  kind.structure = Structure::Elementwise;
  const std::string integer_name = quantized_activation_name(op);
  kind.implementations.push_back({Implementation::Reference, kind.float_name + "(Reference)", {},
                                  [](const Module& m, const EngineProfile&) {
                                    return reference_activation(dynamic_cast<const FloatActivation&>(m));
                                  },
                                  nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, integer_name, static_engines(EngineOp::StaticElementwise),
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedActivation::from_float(dynamic_cast<const FloatActivation&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedActivation::from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  kind.implementations.push_back(
      {Implementation::LibTorch, integer_name, static_engines(EngineOp::StaticElementwise),
       [](const Module& m, const EngineProfile& e) {
         return libtorch_static_activation_from_float(dynamic_cast<const FloatActivation&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) {
         return libtorch_static_activation_from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  // Up to 4 x 8 x 8 x 12 = 3,072 elements: tensors below, across and beyond ATen's vector
  // blocks of 64 and 128.
  kind.case_parameters = {
      {"batch", 1, 4, "images"},
      {"channels", 1, 8, "channels"},
      {"height", 1, 8, "rows"},
      {"width", 1, 12, "columns"},
      {"full_range", 0, 1, "1: activations observed on all 8 bits, else 7 (default_qconfig)"},
  };
  if (op == ActivationOp::LeakyReLU)
    kind.case_parameters.push_back({"variant", 0, 3, "negative_slope: 0.01, 0.1, 0.2, 1.5"});
  if (op == ActivationOp::ELU) kind.case_parameters.push_back({"variant", 0, 3, "alpha: 1.0, 0.5, 2.0, 0.1"});
  kind.make_case = [op](const CaseConfig& config) { return make_activation_case(config, op); };
  kind.sensitivity = activation_sensitivity;
  // nnq.Hardswish and nnq.ELU keep their output qparams as plain attributes, outside the
  // state_dict: a module loaded from another's state_dict keeps its own.
  kind.state_dict_holds_all_state = op != ActivationOp::Hardswish && op != ActivationOp::ELU;
  // In PyTorch's static mappings (so observed at prepare): ReLU6, LeakyReLU, Hardswish, ELU;
  // Dropout is mapped but _add_observer_ skips it; the others stay float modules.
  kind.reference_from_spec = [op](const ModuleSpec& spec) { return spec_reference(op, spec); };
  kind.quantized_from_spec = [op](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    return std::make_unique<QuantizedActivation>(spec_options(op, spec), spec_observed(op, spec), engine);
  };
  kind.observed_at_prepare = op == ActivationOp::ReLU6 || op == ActivationOp::LeakyReLU ||
                             op == ActivationOp::Hardswish || op == ActivationOp::ELU;
  return kind;
}

}  // namespace qconform::kinds
