// static.Softmax: nn.Softmax -> nnq.Softmax (from_float; PyTorch 1.13's eager mappings have no
// entry for it), random cases and bounds.
#include "oracles/kinds/families.h"

#include <nlohmann/json.hpp>
#include <random>

#include "core/float/activation.h"
#include "core/qconfig.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/kernels/softmax.h"
#include "quantized/libtorch/static_softmax.h"
#include "quantized/static/linear.h"
#include "quantized/static/softmax.h"
#include "reference/softmax.h"
#include "reference/static.h"

namespace qconform::kinds {
namespace {

std::optional<int64_t> case_dim(const CaseConfig& config) {
  const int64_t d = config.get("dim");
  if (d == 4) return std::nullopt;  // None: PyTorch's implicit choice (1 for 4-d inputs)
  return config.get("negative_dim") ? d - 4 : d;
}

// The output observer: MinMax as the case's qconfig says, or FixedQParams(1/256, 0) (QAT's
// default for Softmax), whose output qparams send qnnpack to QNNPACK's soft-argmax.
Case make_softmax_case(const CaseConfig& config) {
  std::mt19937_64 rng(config.data_seed);
  const Tensor x = random_input({config.get("batch"), config.get("channels"), config.get("height"), config.get("width")},
                                config.style, rng);
  const bool fixed = config.get("fixed_qparams") != 0;
  const ObserverFactory fixed_observer = fixed_qparams_observer(1.0f / 256.0f, 0);
  return calibrated_static_case(std::make_unique<FloatSoftmax>(case_dim(config)), config, x,
                                fixed ? &fixed_observer : nullptr);
}

// Per output element, in output quanta: a probability (M = 1) from a row of C elements;
// QNNPACK's table rounds its entries to integers of scale q: 128 (C + 1) / q quanta at most.
std::vector<OutputSensitivity> softmax_sensitivity(const Module& reference, const ModuleInput& input) {
  const auto& wrapper = dynamic_cast<const StaticReference&>(reference);
  const auto& softmax = dynamic_cast<const FloatSoftmax&>(wrapper.module());
  const auto& x = std::get<QTensor>(input.input);
  const int64_t dim = softmax_dim(softmax.dim(), x.dim());
  const int64_t channels = x.sizes.at(dim);
  std::vector<OutputSensitivity> result(x.values.size());
  for (OutputSensitivity& s : result) {
    s.output_scale = wrapper.output_qparams().scale();
    s.magnitude = 1.0;
    s.terms = channels;
    s.design_quanta = 128.0 * static_cast<double>(channels + 1) / kernels::qnnpack_softmax_table_scale(channels);
  }
  return result;
}

// A dim beyond the input's dimensions: PyTorch's "Dimension out of range".
std::vector<RefusalCase> softmax_refusals(const CaseConfig& config) {
  Case c = make_softmax_case(config);
  auto module = std::make_unique<FloatSoftmax>(5);
  module->qconfig = c.float_module->qconfig;
  module->activation_post_process = c.float_module->activation_post_process;
  std::vector<RefusalCase> cases;
  cases.push_back({"a dim beyond the input's 4", Case{std::move(module), c.input}});
  return cases;
}

std::optional<int64_t> spec_dim(const ModuleSpec& spec) {
  if (!spec.has("dim") || (*spec.config)["dim"].is_null()) return std::nullopt;
  return spec.integer("dim");
}

}  // namespace

ModuleKind static_softmax_kind() {
  ModuleKind kind;
  kind.float_name = "Softmax";
  kind.key = "static.Softmax";
  kind.family = Family::Static;
  kind.engine_op = EngineOp::StaticElementwise;
  kind.structure = Structure::Softmax;
  const std::vector<Engine> engines = static_engines(EngineOp::StaticElementwise);
  kind.implementations.push_back({Implementation::Reference, "Softmax(Reference)", {},
                                  [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
                                    const auto& softmax = dynamic_cast<const FloatSoftmax&>(m);
                                    return std::make_unique<StaticReference>(
                                        std::make_unique<ReferenceSoftmax>(softmax.dim()),
                                        calibrated_output_qparams(softmax));
                                  },
                                  nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, "QuantizedSoftmax", engines,
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedSoftmax::from_float(dynamic_cast<const FloatSoftmax&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedSoftmax::from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  kind.implementations.push_back(
      {Implementation::LibTorch, "QuantizedSoftmax", engines,
       [](const Module& m, const EngineProfile& e) {
         return libtorch_softmax_from_float(dynamic_cast<const FloatSoftmax&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) {
         return libtorch_softmax_from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  kind.case_parameters = {
      {"batch", 1, 3, "images"},
      {"channels", 1, 8, "channels"},
      {"height", 1, 6, "rows"},
      {"width", 1, 12, "columns"},
      {"full_range", 0, 1, "1: activations observed on all 8 bits, else 7 (default_qconfig)"},
      {"dim", 0, 4, "the dimension (4: None, PyTorch's implicit 1)"},
      {"negative_dim", 0, 1, "1: dim given as dim - 4"},
      {"fixed_qparams", 0, 1, "1: output observer FixedQParams(1/256, 0) (QNNPACK's soft-argmax on qnnpack)"},
  };
  kind.make_case = make_softmax_case;
  kind.sensitivity = softmax_sensitivity;
  kind.state_dict_holds_all_state = false;  // nnq.Softmax keeps scale and zero_point as attributes
  kind.observed_at_prepare = false;          // in no mapping
  kind.eager_mapped = false;
  kind.refusal_cases = softmax_refusals;
  kind.reference_from_spec = [](const ModuleSpec& spec) -> std::unique_ptr<Module> {
    return std::make_unique<StaticReference>(std::make_unique<ReferenceSoftmax>(spec_dim(spec)), spec_output_qparams(spec));
  };
  kind.quantized_from_spec = [](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    return std::make_unique<QuantizedSoftmax>(spec_dim(spec), spec_output_qparams(spec), engine);
  };
  return kind;
}

}  // namespace qconform::kinds
