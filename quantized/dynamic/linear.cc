#include "quantized/dynamic/linear.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/float/rnn.h"
#include "core/observers.h"
#include "core/quantize.h"
#include "quantized/kernels/threads.h"
#include "reference/linear.h"
#include "reference/weight_qparams.h"

namespace qconform {
namespace {

Tensor scalar_tensor(float v) { return Tensor(Shape{}, {v}); }

// The engine's rule for u8 activations (engine table: activation_quantization), as the
// arguments of quantize_values: the reciprocal, zero point, clamp and rounding step.
struct ActivationRule {
  float inverse_scale;
  int64_t zero_point, quant_min, quant_max;
  RoundingStep rounding;
};
ActivationRule activation_rule(Engine engine, const QuantParams& qparams) {
  switch (engine_rule(engine, EngineOp::DynamicLinear).activation_quantization) {
    case ActivationQuantization::RoundThenShift:  // quantize_per_tensor's rule (core/quantize.h)
      return {1.0f / static_cast<float>(qparams.scale()), qparams.zero_point(), qparams.quant_min, qparams.quant_max,
              RoundingStep::BeforeZeroPoint};
    case ActivationQuantization::ShiftThenRound:  // oneDNN's reorder: the reciprocal in double, 0..255
      return {static_cast<float>(1.0 / qparams.scale()), qparams.zero_point(), 0, 255, RoundingStep::AfterZeroPoint};
  }
  throw Error("unknown activation quantization rule");
}

}  // namespace

DynamicQuantizedLinear::DynamicQuantizedLinear(QTensor weight, std::optional<Tensor> bias,
                                               EngineProfile engine)
    : engine_(engine) {
  set_weight_bias(std::move(weight), std::move(bias));
}

void DynamicQuantizedLinear::set_weight_bias(QTensor weight, std::optional<Tensor> bias) {
  if (weight.dim() != 2)
    throw Error(name() + ": weight must be 2-D (out_features, in_features), got shape " +
                shape_to_string(weight.sizes));
  if (bias && (bias->dim() != 1 || bias->size(0) != weight.sizes[0]))
    throw Error(name() + ": bias must have shape [" + std::to_string(weight.sizes[0]) + "], got " +
                shape_to_string(bias->sizes));
  validate(weight.qparams, weight.sizes);
  // The engine's refusal surfaces at the step where the engine itself refuses.
  std::optional<std::string> refused_at_forward;
  if (auto rejection = weight_rejection(engine_.engine, EngineOp::DynamicLinear, weight.qparams)) {
    if (rejection->step == RejectionStep::Prepack) throw Error(rejection->message);
    refused_at_forward = rejection->message;
  }
  if (weight.qparams.dtype == DType::Float16) {
    // fbgemm's fp16 path (PackedLinearWeightFp16): weights saturated to +-65504, the fp16
    // maximum, then rounded to half; saturating after the round-to-nearest-even conversion
    // is the same, since every float above 65504 rounds to 65504 or to infinity.
    constexpr uint16_t kHalfMax = 0x7BFF, kHalfInf = 0x7C00, kSign = 0x8000;
    for (int32_t& bits : weight.values)
      if ((bits & ~kSign) == kHalfInf) bits = (bits & kSign) | kHalfMax;
    fp16_weight_ = dequantize(weight);
    weight_ = std::move(weight);
    bias_ = std::move(bias);
    packed_ = {};
    refused_at_forward_ = std::move(refused_at_forward);
    return;
  }
  if (weight.sizes[1] > kernels::kMaxDynamicLinearK)
    throw Error(name() + ": in_features " + std::to_string(weight.sizes[1]) +
                " exceeds the int32 accumulator bound of " +
                std::to_string(kernels::kMaxDynamicLinearK));

  kernels::DynamicLinearWeights packed;
  packed.out_features = weight.sizes[0];
  packed.in_features = weight.sizes[1];
  packed.values = weight.values;
  for (int64_t n = 0; n < packed.out_features; ++n) {
    packed.scales.push_back(static_cast<float>(weight.qparams.scale(n)));
    packed.zero_points.push_back(static_cast<int32_t>(weight.qparams.zero_point(n)));
  }
  kernels::pack_weights(packed);
  weight_ = std::move(weight);
  bias_ = std::move(bias);
  packed_ = std::move(packed);
  refused_at_forward_ = std::move(refused_at_forward);
}

std::unique_ptr<DynamicQuantizedLinear> DynamicQuantizedLinear::from_float(
    const FloatLinear& float_linear, EngineProfile engine) {
  const QConfig qconfig = float_linear.qconfig.value_or(default_dynamic_qconfig());
  const DType dtype = qconfig.weight()->dtype();
  if (dtype != DType::QInt8 && dtype != DType::Float16)
    throw Error("The only supported dtypes for dynamic quantized linear are qint8 and float16 got: " +
                to_string(dtype));
  QTensor weight = quantize(float_linear.weight(), observe_weight(qconfig.weight, float_linear.weight()));
  auto module = std::make_unique<DynamicQuantizedLinear>(std::move(weight), float_linear.bias(), engine);
  module->fused_relu = float_linear.fused_relu;
  return module;
}

std::unique_ptr<DynamicQuantizedLinear> DynamicQuantizedLinear::from_reference(
    const ReferenceLinear& reference, EngineProfile engine) {
  auto module = std::make_unique<DynamicQuantizedLinear>(reference.get_quantized_weight(),
                                                         reference.bias(), engine);
  module->fused_relu = reference.fused_relu;
  return module;
}

std::string DynamicQuantizedLinear::extra_repr() const {
  return "in_features=" + std::to_string(in_features()) + ", out_features=" +
         std::to_string(out_features()) + ", dtype=" + to_string(weight_.qparams.dtype) +
         ", qscheme=" + to_string(weight_.qparams.qscheme);
}

void DynamicQuantizedLinear::quantize_activations(const float* x, int64_t n, const QuantParams& qparams,
                                                  int32_t* out) const {
  const ActivationRule rule = activation_rule(engine_.engine, qparams);
#ifdef QCONFORM_MUTATION_ROUND_HALF_AWAY
  // Deliberate defect for the oracles' mutation check: ties round away from zero.
  if (rule.rounding == RoundingStep::BeforeZeroPoint) {
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<int32_t>(std::min<int64_t>(
          255, std::max<int64_t>(0, rule.zero_point + static_cast<int64_t>(std::round(x[i] * rule.inverse_scale)))));
    return;
  }
#endif
  quantize_values(x, n, rule.inverse_scale, rule.zero_point, rule.quant_min, rule.quant_max, rule.rounding, out);
}

bool DynamicQuantizedLinear::activations_use_reduced_range() const { return uses_reduced_range(version_ >= 4); }

ModuleOutput DynamicQuantizedLinear::forward(const ModuleInput& input) {
  const Tensor& x = expect_tensor(input, name());
  if (refused_at_forward_) throw Error(*refused_at_forward_);
  if (x.dim() < 2)
    throw Error("The dimension of input tensor should be larger than or equal to 2");
  if (x.size(-1) != in_features())
    throw Error(name() + ": input has " + std::to_string(x.size(-1)) +
                " features (last dimension of shape " + shape_to_string(x.sizes) +
                ") but in_features is " + std::to_string(in_features()));
  Shape out_sizes = x.sizes;
  out_sizes.back() = out_features();
  if (x.numel() == 0 && engine_rule(engine_.engine, EngineOp::DynamicLinear).flattens_empty_output &&
      weight_.qparams.dtype != DType::Float16)
    out_sizes = {0, out_features()};  // the engine's shape for empty inputs (engine table)
  Tensor y(out_sizes);
  // nnqd.Linear.forward: version 4 passes reduce_range=True, older versions omit it.
  apply_dynamic(x.data.data(), x.numel() / in_features(), version_ >= 4, y.data.data(), fused_relu);
  return {std::move(y), std::nullopt};
}

bool DynamicQuantizedLinear::uses_reduced_range(bool reduce_range) const {
  return reduce_range && engine_rule(engine_.engine, EngineOp::DynamicLinear).honors_reduce_range;
}

void DynamicQuantizedLinear::apply_dynamic(const float* x, int64_t rows, bool reduce_range, float* y,
                                           bool relu) const {
  if (refused_at_forward_) throw Error(*refused_at_forward_);
  const int64_t in = in_features(), out = out_features();
  if (weight_.qparams.dtype == DType::Float16) {
    // fbgemm's fp16 GEMM: float activations times the half weights, accumulated in float;
    // the bias is added afterwards.
    float_projection(x, rows, in, fp16_weight_, std::nullopt, y);
    if (bias_)
      for (int64_t i = 0; i < rows * out; ++i) y[i] = y[i] + bias_->data[i % out];
    if (relu)
      for (int64_t i = 0; i < rows * out; ++i) y[i] = y[i] > 0.0f ? y[i] : (y[i] == y[i] ? 0.0f : y[i]);
    return;
  }
  // Activation qparams for this call, from the data (the engines' dynamic rule). The
  // integers go to a buffer that only grows: the recurrent modules' time loops allocate
  // nothing here after their first step.
  thread_local QuantizedActivations activations;
  quantize_dynamic(x, rows, reduce_range, activations);
  apply_quantized(activations, 0, rows, y, relu);
}

void DynamicQuantizedLinear::quantize_dynamic(const float* x, int64_t rows, bool reduce_range,
                                              QuantizedActivations& activations) const {
  if (refused_at_forward_) throw Error(*refused_at_forward_);
  if (has_float16_weight()) throw Error(name() + ": float16 weights quantize no activations");
  const int64_t in = in_features(), n = rows * in;
  // Large inputs (an LSTM's whole input sequence, and its hidden state at miniBatch 64) in
  // parts of at least 2^14 values across the kernel threads: the extremes of consecutive parts
  // merged in order are the whole's (nan_min / nan_max keep the first of equal values, and a
  // NaN anywhere), and quantizing is per value.
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(kernels::kernel_threads(), n >> 14));
  const auto part_range = [&](int64_t part) { return std::pair<int64_t, int64_t>{n * part / parts, n * (part + 1) / parts}; };
  std::vector<float> part_min(parts), part_max(parts);
  kernels::parallel_for(parts, [&](int64_t part) {
    const auto [first, end] = part_range(part);
    values_min_max(x + first, end - first, &part_min[part], &part_max[part]);
  });
  float x_min = part_min[0], x_max = part_max[0];
  for (int64_t part = 1; part < parts; ++part) {
    x_min = std::isnan(x_min) || std::isnan(part_min[part]) ? NAN : std::min(x_min, part_min[part]);
    x_max = std::isnan(x_max) || std::isnan(part_max[part]) ? NAN : std::max(x_max, part_max[part]);
  }
  const bool reduced = uses_reduced_range(reduce_range);
  const QuantParams x_qparams = choose_dynamic_qparams(x_min, x_max, 0, 255, reduced);
  validate(x_qparams);  // as quantize() does: an infinite input gives no usable scale
  activations.scale = static_cast<float>(x_qparams.scale());
  activations.zero_point = static_cast<int32_t>(x_qparams.zero_point());
  // An engine's avx2 path sums u8 x s8 pairs in int16 (engine table) and saturates when
  // activations use all 8 bits; with 7 bits (reduce_range honoured) the two sums are equal.
  const bool saturating = !reduced && sums_int16_pairs(engine_rule(engine_.engine, EngineOp::DynamicLinear), engine_);
  activations.accumulation = saturating ? kernels::Accumulation::PairwiseInt16Saturation : kernels::Accumulation::Exact;
  const ActivationRule rule = activation_rule(engine_.engine, x_qparams);
  activations.seven_bit = rule.quant_max <= 127;
  if (!saturating && kernels::u8_rows_supported(activations.seven_bit)) {
    // The byte form (QuantizedActivations), in parts of whole rows.
    activations.in_bytes = true;
    activations.row_bytes = packed_.packed.k_quads * 4;
    if (activations.bytes.size() < static_cast<size_t>(rows * activations.row_bytes))
      activations.bytes.resize(rows * activations.row_bytes);
    const int64_t row_parts = std::max<int64_t>(1, std::min(parts, rows));
    kernels::parallel_for(row_parts, [&](int64_t part) {
      for (int64_t row = rows * part / row_parts; row < rows * (part + 1) / row_parts; ++row) {
        uint8_t* out = activations.bytes.data() + row * activations.row_bytes;
        quantize_values_u8(x + row * in, in, rule.inverse_scale, rule.zero_point, rule.quant_min, rule.quant_max,
                           rule.rounding, out);
        std::fill(out + in, out + activations.row_bytes, uint8_t{0});
      }
    });
    return;
  }
  activations.in_bytes = false;
  if (activations.values.size() < static_cast<size_t>(n)) activations.values.resize(n);
  kernels::parallel_for(parts, [&](int64_t part) {
    const auto [first, end] = part_range(part);
    quantize_activations(x + first, end - first, x_qparams, activations.values.data() + first);
  });
}

void DynamicQuantizedLinear::apply_quantized(const QuantizedActivations& x, int64_t first_row, int64_t rows, float* y,
                                             bool relu) const {
  if (x.in_bytes) {
    thread_local std::vector<const uint8_t*> row_starts;
    row_starts.resize(rows);
    for (int64_t r = 0; r < rows; ++r) row_starts[r] = x.bytes.data() + (first_row + r) * x.row_bytes;
    const kernels::U8Rows u8{row_starts.data(), rows, 1, x.row_bytes / 4, in_features(), x.zero_point, x.seven_bit};
    if (!kernels::dynamic_linear_u8(u8, x.scale, packed_, bias_ ? bias_->data.data() : nullptr, relu, y))
      throw std::logic_error(name() + ": the kernels declined the u8 rows that quantize_dynamic built for them");
    return;
  }
  const kernels::DynamicLinearActivation activation{x.values.data() + first_row * in_features(), rows, x.scale,
                                                    x.zero_point, x.accumulation};
  kernels::dynamic_linear(activation, packed_, bias_ ? bias_->data.data() : nullptr, relu, y);
}

StateDict packed_linear_state_dict(const PackedLinearParams& params) {
  StateDict state;
  // nnq.Linear saves the output scale and zero point; dynamic modules keep 1.0 and 0.
  state.set("scale", scalar_tensor(static_cast<float>(params.scale)));  // torch.tensor(float): float32
  state.set("zero_point", IntTensor{{}, {params.zero_point}, false});
  state.set("_packed_params.dtype", params.weight.qparams.dtype);
  const StateValue weight = params.weight.qparams.dtype == DType::Float16
                               ? StateValue(dequantize(params.weight))  // float32, as PyTorch
                               : StateValue(params.weight);
  state.set("_packed_params._packed_params",
            StateTuple{weight, params.bias ? StateValue(*params.bias) : StateValue(NoneValue{})});
  state.versions[""] = params.version;
  state.versions["_packed_params"] = 3;
  return state;
}

PackedLinearParams parse_packed_linear_state_dict(const StateDict& state, const std::string& module_name) {
  state.check_keys({"scale", "zero_point", "_packed_params.dtype", "_packed_params._packed_params"},
                   module_name);
  const auto& packed = state.at("_packed_params._packed_params")
                           .as<StateTuple>("_packed_params._packed_params");
  if (packed.size() != 2)
    throw Error("state_dict['_packed_params._packed_params'] must be (weight, bias), got " +
                std::to_string(packed.size()) + " values");
  const DType dtype = state.at("_packed_params.dtype").as<DType>("_packed_params.dtype");
  PackedLinearParams params{QTensor{}, std::nullopt, 1};
  if (dtype == DType::Float16)  // PyTorch unpacks fp16 weights as float32 tensors
    params.weight = quantize(packed[0].as<Tensor>("_packed_params._packed_params[0]"), QuantParams::float16());
  else
    params.weight = packed[0].as<QTensor>("_packed_params._packed_params[0]");
  if (!packed[1].is<NoneValue>()) params.bias = packed[1].as<Tensor>("_packed_params._packed_params[1]");
  const Tensor& scale = state.at("scale").as<Tensor>("scale");
  const IntTensor& zero_point = state.at("zero_point").as<IntTensor>("zero_point");
  if (scale.numel() != 1 || zero_point.values.size() != 1)
    throw Error("state_dict['scale'] and state_dict['zero_point'] must hold one value each");
  params.scale = scale.data[0];
  params.zero_point = zero_point.values[0];
  if (dtype != params.weight.qparams.dtype)
    throw Error("state_dict['_packed_params.dtype'] is " + to_string(dtype) +
                " but the packed weight is " + to_string(params.weight.qparams.dtype));
  // No version recorded means a pre-versioning module, as PyTorch reads it (None < 4).
  const auto version = state.versions.find("");
  if (version != state.versions.end()) params.version = version->second;
  return params;
}

StateDict DynamicQuantizedLinear::state_dict() const {
  return packed_linear_state_dict({weight_, bias_, version_});
}

void DynamicQuantizedLinear::load_state_dict(const StateDict& state) {
  PackedLinearParams params = parse_packed_linear_state_dict(state, name());
  if (params.weight.sizes != weight_.sizes)
    throw Error("size mismatch for _packed_params._packed_params: copying a weight with shape " +
                shape_to_string(params.weight.sizes) + ", the shape in current model is " +
                shape_to_string(weight_.sizes) + ".");
  set_weight_bias(std::move(params.weight), std::move(params.bias));  // validates before replacing
  version_ = params.version;
}

}  // namespace qconform
