#include "quantized/static/linear.h"

#include <sstream>

#include "core/error.h"
#include "core/observers.h"
#include "core/quantize.h"
#include "reference/linear.h"
#include "reference/static.h"
#include "reference/weight_qparams.h"

namespace qconform {

QuantParams calibrated_output_qparams(const Module& float_module) {
  if (!float_module.activation_post_process)
    throw Error(float_module.name() + " has no activation_post_process: prepare and calibrate it before a static "
                "conversion");
  return as_tensor_qparams(float_module.activation_post_process->calculate_qparams());
}

QTensor quantize_static_weight(const Tensor& weight, const Module& float_module) {
  // float16 observers give float16 weights, which the engine table refuses at construction.
  return quantize(weight, observe_weight(float_module.qconfig.value_or(default_qconfig()).weight, weight));
}

QuantizedLinear::QuantizedLinear(QTensor weight, std::optional<Tensor> bias, double scale, int64_t zero_point,
                                 EngineProfile engine, bool fused_relu)
    : engine_(engine), fused_relu_(fused_relu) {
  if (engine_rule(engine.engine, EngineOp::StaticLinear).requantization == Requantization::NotModelled)
    throw Error(name() + ": no integer implementation on " + engine.label() +
                " (its requantization is not modelled; see `qconform engines`)");
  set_parameters(std::move(weight), std::move(bias), scale, zero_point);
}

void QuantizedLinear::set_parameters(QTensor weight, std::optional<Tensor> bias, double scale, int64_t zero_point) {
  check_linear_parameters(Tensor(weight.sizes), bias, name());
  validate(weight.qparams, weight.sizes);
  validate(QuantParams::per_tensor(DType::QUInt8, scale, zero_point));  // the output qparams
  std::optional<std::string> refused_at_forward;
  if (auto rejection = weight_rejection(engine_.engine, EngineOp::StaticLinear, weight.qparams)) {
    if (rejection->step == RejectionStep::Prepack) throw Error(rejection->message);
    refused_at_forward = rejection->message;
  }
  if (weight.sizes[1] > kernels::kMaxDynamicLinearK)
    throw Error(name() + ": in_features " + std::to_string(weight.sizes[1]) +
                " exceeds the int32 accumulator bound of " + std::to_string(kernels::kMaxDynamicLinearK));
  kernels::StaticLinearWeights packed;
  packed.integers.out_features = weight.sizes[0];
  packed.integers.in_features = weight.sizes[1];
  packed.integers.values = weight.values;
  for (int64_t n = 0; n < weight.sizes[0]; ++n) {
    packed.scales.push_back(weight.qparams.scale(n));  // integers.scales stay empty: only the sums are used
    packed.integers.zero_points.push_back(static_cast<int32_t>(weight.qparams.zero_point(n)));
  }
  kernels::pack_weights(packed.integers);  // the SIMD paths' layouts (dynamic_gemm.h)
  weight_ = std::move(weight);
  bias_ = std::move(bias);
  scale_ = scale;
  zero_point_ = zero_point;
  packed_ = std::move(packed);
  refused_at_forward_ = std::move(refused_at_forward);
}

std::unique_ptr<QuantizedLinear> QuantizedLinear::from_float(const FloatLinear& float_linear, EngineProfile engine) {
  const QuantParams out = calibrated_output_qparams(float_linear);
  return std::make_unique<QuantizedLinear>(quantize_static_weight(float_linear.weight(), float_linear),
                                           float_linear.bias(), out.scale(), out.zero_point(), engine,
                                           float_linear.fused_relu);
}

std::unique_ptr<QuantizedLinear> QuantizedLinear::from_reference(const StaticReference& reference, EngineProfile engine) {
  const auto& linear = dynamic_cast<const ReferenceLinear&>(reference.module());
  return std::make_unique<QuantizedLinear>(linear.get_quantized_weight(), linear.bias(),
                                           reference.output_qparams().scale(),
                                           reference.output_qparams().zero_point(), engine, linear.fused_relu);
}

std::string QuantizedLinear::extra_repr() const {
  std::ostringstream out;
  out << "in_features=" << weight_.sizes[1] << ", out_features=" << weight_.sizes[0] << ", scale=" << scale_
      << ", zero_point=" << zero_point_ << ", qscheme=" << to_string(weight_.qparams.qscheme);
  return out.str();
}

ModuleOutput QuantizedLinear::forward(const ModuleInput& input) {
  const auto* x = std::get_if<QTensor>(&input.input);
  if (!x) throw Error(name() + ": expects a quantized (quint8) input tensor");
  if (x->qparams.dtype != DType::QUInt8 || x->qparams.per_channel())
    throw Error(name() + ": expects a quint8 per-tensor input, got " + x->qparams.to_string());
  const int64_t in = weight_.sizes[1], out = weight_.sizes[0];
  if (x->dim() < 1 || x->sizes.back() != in) {
    const int64_t rows = x->dim() ? x->numel() / std::max<int64_t>(1, x->sizes.back()) : 1;
    throw Error("mat1 and mat2 shapes cannot be multiplied (" + std::to_string(rows) + "x" +
                std::to_string(x->dim() ? x->sizes.back() : 0) + " and " + std::to_string(in) + "x" +
                std::to_string(out) + ")");
  }
  if (refused_at_forward_) throw Error(*refused_at_forward_);
  const EngineOpRule& rule = engine_rule(engine_.engine, EngineOp::StaticLinear);
  // An engine's avx2 path sums u8 x s8 pairs in int16 and saturates when the calibrated input
  // uses more than 7 bits (engine table); the sum below is then the saturating one, as theirs.
  const bool saturating = sums_int16_pairs(rule, engine_);
  const int64_t rows = x->numel() / in;
  const kernels::DynamicLinearActivation activation{
      x->values.data(), rows, static_cast<float>(x->qparams.scale()), static_cast<int32_t>(x->qparams.zero_point()),
      saturating ? kernels::Accumulation::PairwiseInt16Saturation : kernels::Accumulation::Exact};
  Shape out_shape = x->sizes;
  out_shape.back() = out;
  QTensor y{out_shape, std::vector<int32_t>(rows * out), QuantParams::per_tensor(DType::QUInt8, scale_, zero_point_)};
  kernels::static_linear(activation, x->qparams.scale(), packed_, bias_ ? bias_->data.data() : nullptr,
                         {scale_, static_cast<int32_t>(zero_point_), fused_relu_}, rule.requantization, y.values.data());
  return {std::move(y), std::nullopt};
}

StateDict QuantizedLinear::state_dict() const {
  PackedLinearParams params{weight_, bias_, kVersion};
  params.scale = scale_;
  params.zero_point = zero_point_;
  return packed_linear_state_dict(params);
}

void QuantizedLinear::load_state_dict(const StateDict& state) {
  PackedLinearParams params = parse_packed_linear_state_dict(state, name());
  if (params.weight.sizes != weight_.sizes)
    throw Error("size mismatch for _packed_params._packed_params: copying a weight with shape " +
                shape_to_string(params.weight.sizes) + ", the shape in current model is " +
                shape_to_string(weight_.sizes) + ".");
  set_parameters(std::move(params.weight), std::move(params.bias), params.scale, params.zero_point);
}

}  // namespace qconform
