// static.Quantize and static.DeQuantize: the stubs' conversions as kinds of their own
// (QuantStub -> nnq.Quantize, DeQuantStub -> nnq.DeQuantize), random cases and bounds.
#include "oracles/kinds/families.h"

#include <cmath>
#include <random>

#include "core/float/stubs.h"
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/libtorch/static_quantize.h"
#include "quantized/static/linear.h"
#include "quantized/static/quantize.h"
#include "reference/quantize.h"

namespace qconform::kinds {
namespace {

Shape case_shape(const CaseConfig& config) {
  return {config.get("batch"), config.get("channels"), config.get("height"), config.get("width")};
}

// The stub's observer has seen x; the case's input is x (Quantize) or x quantized by it
// (DeQuantize).
Case make_stub_case(const CaseConfig& config, bool quantize_stub) {
  std::mt19937_64 rng(config.data_seed);
  const Tensor x = random_input(case_shape(config), config.style, rng);
  Case c = calibrated_static_case(std::make_unique<QuantStub>(), config, x);
  if (quantize_stub) {
    c.input = ModuleInput{x, std::nullopt};
    return c;
  }
  auto dequant = std::make_unique<DeQuantStub>();
  dequant->qconfig = c.float_module->qconfig;  // prepare gives DeQuantStub no observer
  return {std::move(dequant), std::move(c.input)};
}

// nnq.Quantize.from_float: the observer's scale as a float, its zero point.
QuantParams stub_qparams(const Module& stub) {
  const QuantParams q = calibrated_output_qparams(stub);
  return QuantParams::per_tensor(q.dtype, static_cast<float>(q.scale()), q.zero_point());
}

// Quantize: in output quanta, |x| / s (one float product against a double quotient).
std::vector<OutputSensitivity> quantize_sensitivity(const Module& reference, const ModuleInput& input) {
  const auto& module = dynamic_cast<const ReferenceQuantize&>(reference);
  const Tensor& x = std::get<Tensor>(input.input);
  std::vector<OutputSensitivity> result(x.data.size());
  for (size_t i = 0; i < result.size(); ++i) {
    result[i].output_scale = module.qparams().scale();
    result[i].magnitude = std::abs(static_cast<double>(x.data[i]));
  }
  return result;
}

// DeQuantize: M = |x| of the float the element dequantizes to.
std::vector<OutputSensitivity> dequantize_sensitivity(const Module&, const ModuleInput& input) {
  const Tensor x = dequantize(std::get<QTensor>(input.input));
  std::vector<OutputSensitivity> result(x.data.size());
  for (size_t i = 0; i < result.size(); ++i) result[i].magnitude = std::abs(static_cast<double>(x.data[i]));
  return result;
}

}  // namespace

ModuleKind static_stub_kind(bool quantize_stub) {
  ModuleKind kind;
  kind.float_name = quantize_stub ? "QuantStub" : "DeQuantStub";
  kind.key = quantize_stub ? "static.Quantize" : "static.DeQuantize";
  kind.family = Family::Static;
  kind.engine_op = EngineOp::StaticElementwise;  // ATen's kernels, whatever the engine
  kind.structure = quantize_stub ? Structure::Elementwise : Structure::ElementwiseFloat;
  const std::vector<Engine> engines = static_engines(EngineOp::StaticElementwise);
  if (quantize_stub) {
    kind.implementations.push_back({Implementation::Reference, "Quantize(Reference)", {},
                                    [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
                                      return std::make_unique<ReferenceQuantize>(stub_qparams(m));
                                    },
                                    nullptr});
    kind.implementations.push_back({Implementation::Quantized, "Quantize", engines,
                                    [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
                                      const QuantParams q = stub_qparams(m);
                                      return std::make_unique<Quantize>(q.scale(), q.zero_point(), q.dtype);
                                    },
                                    nullptr});
    kind.implementations.push_back({Implementation::LibTorch, "Quantize", engines,
                                    [](const Module& m, const EngineProfile&) {
                                      return make_libtorch_quantize(stub_qparams(m));
                                    },
                                    nullptr});
    kind.sensitivity = quantize_sensitivity;
  } else {
    kind.implementations.push_back({Implementation::Reference, "DeQuantize(Reference)", {},
                                    [](const Module&, const EngineProfile&) -> std::unique_ptr<Module> {
                                      return std::make_unique<ReferenceDeQuantize>();
                                    },
                                    nullptr});
    kind.implementations.push_back({Implementation::Quantized, "DeQuantize", engines,
                                    [](const Module&, const EngineProfile&) -> std::unique_ptr<Module> {
                                      return std::make_unique<DeQuantize>();
                                    },
                                    nullptr});
    kind.implementations.push_back({Implementation::LibTorch, "DeQuantize", engines,
                                    [](const Module&, const EngineProfile&) { return make_libtorch_dequantize(); },
                                    nullptr});
    kind.sensitivity = dequantize_sensitivity;
  }
  // Up to 3 x 8 x 6 x 12 = 1,728 elements.
  kind.case_parameters = {
      {"batch", 1, 3, "images"},
      {"channels", 1, 8, "channels"},
      {"height", 1, 6, "rows"},
      {"width", 1, 12, "columns"},
      {"full_range", 0, 1, "1: observed on all 8 bits, else 7 (default_qconfig)"},
  };
  kind.output_observed = quantize_stub;
  if (quantize_stub) {
    kind.reference_from_spec = [](const ModuleSpec& spec) -> std::unique_ptr<Module> {
      return std::make_unique<ReferenceQuantize>(spec_output_qparams(spec));
    };
    kind.quantized_from_spec = [](const ModuleSpec& spec, const EngineProfile&) -> std::unique_ptr<Module> {
      const QuantParams q = spec_output_qparams(spec);
      return std::make_unique<Quantize>(q.scale(), q.zero_point(), q.dtype);
    };
  } else {
    kind.reference_from_spec = [](const ModuleSpec&) -> std::unique_ptr<Module> {
      return std::make_unique<ReferenceDeQuantize>();
    };
    kind.quantized_from_spec = [](const ModuleSpec&, const EngineProfile&) -> std::unique_ptr<Module> {
      return std::make_unique<DeQuantize>();
    };
  }  // prepare observes QuantStub, never DeQuantStub
  kind.make_case = [quantize_stub](const CaseConfig& config) { return make_stub_case(config, quantize_stub); };
  return kind;
}

}  // namespace qconform::kinds
