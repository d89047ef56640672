// static.Linear and static.LinearReLU: random cases, bounds and fixture readers
// (torch.ao.nn.quantized.Linear, torch.ao.nn.intrinsic.quantized.LinearReLU).
#include <nlohmann/json.hpp>

#include "oracles/kinds/families.h"

#include <random>
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/libtorch/static_linear.h"
#include "quantized/static/linear.h"
#include "reference/linear.h"
#include "reference/static.h"

namespace qconform::kinds {
namespace {

std::vector<OutputSensitivity> static_linear_sensitivity(const Module& module, const ModuleInput& input) {
  const auto& wrapper = dynamic_cast<const StaticReference&>(module);
  const auto& reference = dynamic_cast<const ReferenceLinear&>(wrapper.module());
  const auto& xq = std::get<QTensor>(input.input);
  return static_block_sensitivity(dequantize(xq), xq.values, xq.qparams, reference.get_weight(),
                                  reference.get_quantized_weight(), 0, reference.bias(),
                                  wrapper.output_qparams().scale());
}

Case make_static_linear_case(const CaseConfig& config, bool relu) {
  std::mt19937_64 rng(config.data_seed);
  auto module = random_float_linear(config, relu, rng);
  const Tensor x = random_input({config.get("batch"), config.get("in_features")}, config.style, rng);
  return calibrated_static_case(std::move(module), config, x);
}

}  // namespace

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
  kind.spec_from_reference = [key = kind.key](const Module& reference) {
    const auto& wrapper = dynamic_cast<const StaticReference&>(reference);
    const auto& linear = dynamic_cast<const ReferenceLinear&>(wrapper.module());
    ModuleSpec spec = output_qparams_spec(wrapper.output_qparams());
    spec.kind = key;
    (*spec.config)["in_features"] = linear.in_features();
    (*spec.config)["out_features"] = linear.weight().sizes.at(0);
    spec.parameters.set("weight", linear.get_quantized_weight());
    spec.parameters.set("bias", linear.bias() ? StateValue(*linear.bias()) : StateValue(NoneValue{}));
    return spec;
  };
  return kind;
}

}  // namespace qconform::kinds
