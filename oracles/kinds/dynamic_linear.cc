// dynamic.Linear and dynamic.LinearReLU: random cases, bounds and fixture readers
// (torch.ao.nn.quantized.dynamic.Linear, torch.ao.nn.intrinsic.quantized.dynamic.LinearReLU).
#include "oracles/kinds/families.h"

#include <random>
#include "core/observers.h"
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/dynamic/linear.h"
#include "quantized/libtorch/dynamic_linear.h"
#include "quantized/libtorch/engine.h"
#include "reference/linear.h"

namespace qconform::kinds {
namespace {

std::vector<OutputSensitivity> linear_sensitivity(const Module& module, const ModuleInput& input) {
  const auto& reference = dynamic_cast<const ReferenceLinear&>(module);
  const Tensor w = reference.get_weight();
  const Tensor& x = expect_tensor(input, reference.name());
  const int64_t in = reference.in_features(), out = reference.out_features();
  const int64_t rows = x.numel() / in;
  std::vector<OutputSensitivity> result(rows * out);
  for (OutputSensitivity& s : result) s.terms = in;
  add_linear_terms(w, x, reference.bias(), result);
  return result;
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

}  // namespace

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

}  // namespace qconform::kinds
