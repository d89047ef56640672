// static.add, static.add_relu, static.mul, static.add_scalar, static.mul_scalar, static.cat:
// random cases and bounds for FloatFunctional's ops as PyTorch 1.13's eager convert leaves
// them (nnq.QFunctional), one op per kind.
#include "oracles/kinds/families.h"

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/kernels/functional.h"
#include "quantized/libtorch/static_functional.h"
#include "quantized/static/functional.h"
#include "quantized/static/linear.h"
#include "reference/functional.h"
#include "reference/static.h"

namespace qconform::kinds {
namespace {

// A case's scalar, part of the module's configuration (a state_dict round trip keeps it):
// mantissa x 0.37 x 10^exponent, from 0 (mul_scalar's third branch) through both signs to
// values that push add_scalar's zero point out of range.
double case_scalar(const CaseConfig& config) {
  return static_cast<double>(config.get("scalar_mantissa")) * 0.37 *
         std::pow(10.0, static_cast<double>(config.get("scalar_exponent")));
}

Case make_functional_case(const CaseConfig& config, FunctionalOp op) {
  std::mt19937_64 rng(config.data_seed);
  FunctionalOptions o;
  o.op = op;
  Shape shape{config.get("batch"), config.get("channels"), config.get("height"), config.get("width")};
  if (has_parameter(config, "spatial_ones") && config.get("spatial_ones")) shape[2] = shape[3] = 1;
  if (op == FunctionalOp::Matmul) {  // (batch, n, k) x (batch, k, m): n channels, k width, m height
    const Shape a{shape[0], shape[1], shape[3]}, b{shape[0], shape[3], shape[2]};
    std::vector<Tensor> operands{random_input(a, config.style, rng), random_input(b, config.style, rng)};
    return calibrated_operands_case(std::make_unique<FloatFunctionalOp>(o), config, operands, true);
  }
  std::vector<Tensor> operands{random_input(shape, config.style, rng)};
  if (o.binary()) operands.push_back(random_input(shape, config.style, rng));
  if (o.with_scalar()) o.scalar = case_scalar(config);
  if (op == FunctionalOp::Cat) {
    const int64_t d = config.get("dim");
    o.dim = config.get("negative_dim") ? d - 4 : d;
    std::uniform_int_distribution<int64_t> size(1, d == 1 ? 40 : 4);
    for (int64_t k = 1; k < config.get("operands"); ++k) {
      Shape other = shape;
      other[d] = size(rng);
      operands.push_back(random_input(other, config.style, rng));
    }
  }
  Case c = calibrated_operands_case(std::make_unique<FloatFunctionalOp>(o), config, operands, observes_output(op));
  // Operands held channels-last, as a model's convolutions leave them: ATen's add walks them
  // in memory order, its cat takes the NHWC kernel on dim 1.
  if (has_parameter(config, "channels_last") && config.get("channels_last")) {
    std::get<QTensor>(c.input.input).channels_last = true;
    for (Value& v : c.input.others) std::get<QTensor>(v).channels_last = true;
  }
  return c;
}

std::unique_ptr<Module> reference_functional(const FloatFunctionalOp& float_module) {
  const FunctionalOptions o = float_module.options();
  auto module = std::make_unique<ReferenceFunctional>(o);
  if (!observes_output(o.op))
    return StaticReference::deriving_output_qparams(
        std::move(module), [o](const QuantParams& input) { return scalar_op_output_qparams(o, input); });
  return std::make_unique<StaticReference>(std::move(module), calibrated_output_qparams(float_module));
}

// QNNPACK add's multipliers against the exact ratios, times the operands: what its fixed
// point loses, in output quanta (0 where QNNPACK refuses the ratios).
double qnnpack_add_loss(const QuantParams& a, const QuantParams& b, const QuantParams& out, int32_t qa, int32_t qb) {
  try {
    const kernels::QnnpackAddParams p = kernels::qnnpack_add_params(a.scale(), b.scale(), out.scale());
    const double unit = std::ldexp(1.0, static_cast<int>(p.shift));
    return (std::abs(p.a_multiplier - a.scale() / out.scale() * unit) * std::abs(qa - a.zero_point()) +
            std::abs(p.b_multiplier - b.scale() / out.scale() * unit) * std::abs(qb - b.zero_point())) /
           unit;
  } catch (const Error&) {
    return 0.0;
  }
}

std::vector<OutputSensitivity> functional_sensitivity(const Module& reference, const ModuleInput& input) {
  const auto& wrapper = dynamic_cast<const StaticReference&>(reference);
  const FunctionalOptions& o = dynamic_cast<const FloatFunctionalOp&>(wrapper.module()).options();
  const std::vector<const QTensor*> q = functional_operands(input, "QFunctional");
  const QuantParams out = wrapper.output_qparams_for(q[0]->qparams);
  std::vector<Tensor> x;
  for (const QTensor* t : q) x.push_back(dequantize(*t));
  if (o.op == FunctionalOp::Matmul) {  // per output: K products, M = sum |a b| + |y|
    const Shape y = matmul_shape(x[0].sizes, x[1].sizes, "QFunctional");
    const int64_t n = x[0].sizes[1], k = x[0].sizes[2], m = x[1].sizes[2];
    std::vector<OutputSensitivity> result(numel_of(y));
    for (int64_t b = 0; b < y[0]; ++b)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) {
          OutputSensitivity& s = result[(b * n + i) * m + j];
          double sum = 0;
          for (int64_t t = 0; t < k; ++t) {
            const double p = static_cast<double>(x[0].data[(b * n + i) * k + t]) * x[1].data[(b * k + t) * m + j];
            s.magnitude += std::abs(p);
            sum += p;
          }
          s.magnitude += std::abs(sum);
          s.terms = k;
          s.output_scale = out.scale();
        }
    return result;
  }
  if (o.op == FunctionalOp::Cat) {  // M = 2 |x| of the element each output copies
    std::vector<Tensor> magnitudes = x;
    std::vector<const Tensor*> rest;
    for (Tensor& t : magnitudes)
      for (float& v : t.data) v = 2.0f * std::abs(v);
    for (size_t i = 1; i < magnitudes.size(); ++i) rest.push_back(&magnitudes[i]);
    const Tensor m = float_functional(o, magnitudes[0], rest);
    std::vector<OutputSensitivity> result(m.data.size());
    for (size_t i = 0; i < result.size(); ++i) {
      result[i].output_scale = out.scale();
      result[i].magnitude = m.data[i];
    }
    return result;
  }
  // Binary ops broadcast as torch.add and torch.mul do (MobileNetV3's squeeze-excitation
  // multiplies [N, C, 1, 1] by [N, C, H, W]): per output element, the operands' elements.
  const Shape y = o.binary() ? broadcast_shape(x[0].sizes, x[1].sizes) : x[0].sizes;
  std::vector<OutputSensitivity> result(numel_of(y));
  const double c = o.scalar;
  const double c_q = std::nearbyint(c / q[0]->qparams.scale());
  for (size_t i = 0; i < result.size(); ++i) {
    OutputSensitivity& s = result[i];
    s.output_scale = out.scale();
    const int64_t ia = broadcast_index(y, x[0].sizes, static_cast<int64_t>(i));
    const int64_t ib = o.binary() ? broadcast_index(y, x[1].sizes, static_cast<int64_t>(i)) : 0;
    const double a = x[0].data[ia];
    switch (o.op) {
      case FunctionalOp::Add:
      case FunctionalOp::AddRelu: {
        const double b = x[1].data[ib];
        s.magnitude = std::abs(a) + std::abs(b) + std::abs(a + b);
        s.design_quanta = qnnpack_add_loss(q[0]->qparams, q[1]->qparams, out, q[0]->values[ia], q[1]->values[ib]);
        break;
      }
      case FunctionalOp::Mul: s.magnitude = std::abs(a * x[1].data[ib]); break;
      case FunctionalOp::AddScalar:
        s.magnitude = std::abs(a) + std::abs(c) + std::abs(a + c);
        s.design_quanta = std::abs(c - c_q * q[0]->qparams.scale()) / out.scale();
        break;
      case FunctionalOp::MulScalar: s.magnitude = std::abs(a * c) + std::abs(a); break;
      case FunctionalOp::Cat:
      case FunctionalOp::Matmul: break;
    }
  }
  return result;
}

// Operands PyTorch refuses, derived from a case: the second operand (or the input) per-channel,
// of another dtype, of another shape; for cat, of another rank or size, and a dim out of range.
std::vector<RefusalCase> functional_refusals(const CaseConfig& config, FunctionalOp op) {
  const auto variant = [&](const std::string& name, const std::function<void(ModuleInput&, FunctionalOptions&)>& change) {
    Case c = make_functional_case(config, op);
    FunctionalOptions o = dynamic_cast<const FloatFunctionalOp&>(*c.float_module).options();
    change(c.input, o);
    auto module = std::make_unique<FloatFunctionalOp>(o);
    module->qconfig = c.float_module->qconfig;
    module->activation_post_process = c.float_module->activation_post_process;
    return RefusalCase{name, Case{std::move(module), c.input}};
  };
  const auto first = [](ModuleInput& in) -> QTensor& { return std::get<QTensor>(in.input); };
  const auto second = [](ModuleInput& in) -> QTensor& { return std::get<QTensor>(in.others.at(0)); };
  std::vector<RefusalCase> cases;
  FunctionalOptions named;
  named.op = op;
  if (named.binary()) {
    cases.push_back(variant("a per-channel second operand", [&](ModuleInput& in, FunctionalOptions&) {
      second(in) = as_per_channel(second(in));
    }));
    cases.push_back(variant("per-channel operands", [&](ModuleInput& in, FunctionalOptions&) {
      first(in) = as_per_channel(first(in));
      second(in) = as_per_channel(second(in));
    }));
    cases.push_back(variant("a qint8 second operand", [&](ModuleInput& in, FunctionalOptions&) {
      second(in) = as_qint8(second(in));
    }));
    // Widths w + 1 and w + 2: both above 1, so they cannot broadcast.
    cases.push_back(variant("operands of different widths", [&](ModuleInput& in, FunctionalOptions&) {
      first(in) = with_extra_column(first(in));
      second(in) = with_extra_column(with_extra_column(second(in)));
    }));
  } else if (op == FunctionalOp::AddScalar) {
    cases.push_back(variant("a per-channel input", [&](ModuleInput& in, FunctionalOptions&) {
      first(in) = as_per_channel(first(in));
    }));
  } else if (op == FunctionalOp::Cat) {
    cases.push_back(variant("an operand of one dimension less", [&](ModuleInput& in, FunctionalOptions&) {
      second(in) = without_first_dimension(second(in));
    }));
    // One column more than the first operand: along dim 3 itself, concatenate along 0 instead.
    cases.push_back(variant("an operand of another size outside dim", [&](ModuleInput& in, FunctionalOptions& o) {
      const int64_t d = o.dim < 0 ? o.dim + 4 : o.dim;
      if (d == 3) o.dim = 0;
      second(in) = with_extra_column(d == 3 ? first(in) : second(in));
    }));
    cases.push_back(variant("a per-channel operand", [&](ModuleInput& in, FunctionalOptions&) {
      second(in) = as_per_channel(second(in));
    }));
    cases.push_back(variant("a qint8 operand", [&](ModuleInput& in, FunctionalOptions&) {
      second(in) = as_qint8(second(in));
    }));
    cases.push_back(variant("dim out of range", [&](ModuleInput&, FunctionalOptions& o) { o.dim = 4; }));
  }
  return cases;
}

// Fixtures: the call's constant arguments and QFunctional's scale and zero point.
FunctionalOptions spec_options(FunctionalOp op, const ModuleSpec& spec) {
  FunctionalOptions o;
  o.op = op;
  if (spec.has("scalar")) o.scalar = spec.number("scalar");
  if (spec.has("dim")) o.dim = spec.integer("dim");
  return o;
}

std::unique_ptr<Module> spec_reference(FunctionalOp op, const ModuleSpec& spec) {
  const FunctionalOptions o = spec_options(op, spec);
  auto module = std::make_unique<ReferenceFunctional>(o);
  if (!observes_output(op))
    return StaticReference::deriving_output_qparams(
        std::move(module), [o](const QuantParams& input) { return scalar_op_output_qparams(o, input); });
  return std::make_unique<StaticReference>(std::move(module), spec_output_qparams(spec));
}

}  // namespace

ModuleKind static_functional_kind(FunctionalOp op) {
  ModuleKind kind;
  FunctionalOptions named;
  named.op = op;
  kind.float_name = "FloatFunctional." + named.method();
  kind.key = "static." + named.method();
  kind.family = Family::Static;
  kind.engine_op = EngineOp::StaticFunctional;
  kind.structure = op == FunctionalOp::Matmul ? Structure::FloatReduction : Structure::Elementwise;
  const std::vector<Engine> engines = static_engines(EngineOp::StaticFunctional);
  kind.implementations.push_back({Implementation::Reference, "FloatFunctional(Reference)", {},
                                  [](const Module& m, const EngineProfile&) {
                                    return reference_functional(dynamic_cast<const FloatFunctionalOp&>(m));
                                  },
                                  nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, "QFunctional", engines,
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedFunctional::from_float(dynamic_cast<const FloatFunctionalOp&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedFunctional::from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  kind.implementations.push_back(
      {Implementation::LibTorch, "QFunctional", engines,
       [](const Module& m, const EngineProfile& e) {
         return libtorch_static_functional_from_float(dynamic_cast<const FloatFunctionalOp&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) {
         return libtorch_static_functional_from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  // Up to 3 x 8 x 6 x 12 = 1,728 elements per operand: below, across and beyond ATen's vector
  // blocks of 64 and 128.
  kind.case_parameters = {
      {"batch", 1, 3, "images"},
      {"channels", 1, 8, "channels"},
      {"height", 1, 6, "rows"},
      {"width", 1, 12, "columns"},
      {"full_range", 0, 1, "1: activations observed on all 8 bits, else 7 (default_qconfig)"},
  };
  if (op == FunctionalOp::Matmul)  // (batch, n, k) x (batch, k, m)
    kind.case_parameters = {
        {"batch", 1, 3, "matrices"},
        {"channels", 1, 8, "n: rows of the first operand"},
        {"height", 1, 6, "m: columns of the second operand"},
        {"width", 1, 40, "k: the products summed per output"},
        {"full_range", 0, 1, "1: activations observed on all 8 bits, else 7 (default_qconfig)"},
    };
  if (named.binary() || op == FunctionalOp::Cat)
    kind.case_parameters.push_back({"channels_last", 0, 1, "1: operands held channels-last (as convolutions leave them)"});
  if (named.with_scalar()) {
    kind.case_parameters.push_back({"scalar_mantissa", -9, 9, "the scalar: mantissa x 0.37 x 10^exponent"});
    kind.case_parameters.push_back({"scalar_exponent", -3, 2, "the scalar's exponent"});
  }
  if (op == FunctionalOp::Cat) {
    kind.case_parameters.push_back({"operands", 2, 3, "tensors concatenated"});
    kind.case_parameters.push_back({"dim", 0, 3, "the dimension (the others' sizes along it: 1 to 4, to 40 on dim 1)"});
    kind.case_parameters.push_back({"negative_dim", 0, 1, "1: dim given as dim - 4"});
    kind.case_parameters.push_back(
        {"spatial_ones", 0, 1, "1: H = W = 1, channels-last contiguous too (ATen's NHWC kernel on dim 1)"});
  }
  kind.make_case = [op](const CaseConfig& config) { return make_functional_case(config, op); };
  kind.output_observed = observes_output(op);
  kind.refusal_cases = [op](const CaseConfig& config) { return functional_refusals(config, op); };
  kind.reference_from_spec = [op](const ModuleSpec& spec) { return spec_reference(op, spec); };
  kind.quantized_from_spec = [op](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    return std::make_unique<QuantizedFunctional>(spec_options(op, spec), spec_output_qparams(spec), engine);
  };
  kind.sensitivity = functional_sensitivity;
  return kind;
}

}  // namespace qconform::kinds
