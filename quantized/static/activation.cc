#include "quantized/static/activation.h"

#include "core/error.h"
#include "core/float/stubs.h"
#include "quantized/kernels/elementwise.h"
#include "quantized/static/linear.h"
#include "reference/static.h"

namespace qconform {

std::string quantized_activation_name(ActivationOp op) {
  switch (op) {
    // nnq modules (torch.ao.quantization's static mappings swap these in)
    case ActivationOp::ReLU6: return "QuantizedReLU6";
    case ActivationOp::LeakyReLU: return "QuantizedLeakyReLU";
    case ActivationOp::Hardswish: return "QuantizedHardswish";
    case ActivationOp::ELU: return "QuantizedELU";
    case ActivationOp::Dropout: return "QuantizedDropout";
    // not in the mappings: the float module runs on the quantized tensor
    default: return ActivationOptions{op}.float_name();
  }
}

const QTensor& expect_quint8_input(const ModuleInput& input, const std::string& module_name) {
  const auto* x = std::get_if<QTensor>(&input.input);
  if (!x) throw Error(module_name + ": expects a quantized (quint8) input tensor");
  if (x->qparams.dtype != DType::QUInt8 || x->qparams.per_channel())
    throw Error(module_name + ": expects a quint8 per-tensor input, got " + x->qparams.to_string());
  return *x;
}

QuantizedActivation::QuantizedActivation(ActivationOptions options, std::optional<QuantParams> observed,
                                         EngineProfile engine)
    : options_(options), observed_(std::move(observed)), engine_(engine) {
  options_.validate();
  const bool observes = output_qparams_rule(options_.op) == OutputQParamsRule::Observed;
  if (observes && !observed_)
    throw Error(name() + ": needs the output scale and zero point (calibrate the float module first)");
  if (!observes && observed_)
    throw Error(name() + ": takes no output qparams (its output follows " +
                std::string(output_qparams_rule(options_.op) == OutputQParamsRule::Fixed ? "the op" : "the input") +
                ")");
  if (observed_) {
    validate(*observed_);
    if (observed_->dtype != DType::QUInt8 || observed_->per_channel())
      throw Error(name() + ": the output qparams must be quint8 per-tensor, got " + observed_->to_string());
  }
}

std::optional<QuantParams> observed_output_qparams(const FloatActivation& float_module) {
  if (output_qparams_rule(float_module.options().op) != OutputQParamsRule::Observed) return std::nullopt;
  return calibrated_output_qparams(float_module);
}

std::optional<QuantParams> observed_output_qparams(const StaticReference& reference) {
  const auto& activation = dynamic_cast<const FloatActivation&>(reference.module());
  if (output_qparams_rule(activation.options().op) != OutputQParamsRule::Observed) return std::nullopt;
  return reference.output_qparams();
}

std::unique_ptr<QuantizedActivation> QuantizedActivation::from_float(const FloatActivation& float_module,
                                                                     EngineProfile engine) {
  return std::make_unique<QuantizedActivation>(float_module.options(), observed_output_qparams(float_module), engine);
}

std::unique_ptr<QuantizedActivation> QuantizedActivation::from_reference(const StaticReference& reference,
                                                                         EngineProfile engine) {
  const auto& activation = dynamic_cast<const FloatActivation&>(reference.module());
  return std::make_unique<QuantizedActivation>(activation.options(), observed_output_qparams(reference), engine);
}

std::string QuantizedActivation::name() const { return quantized_activation_name(options_.op); }

QuantParams QuantizedActivation::output_qparams(const QuantParams& input) const {
  switch (output_qparams_rule(options_.op)) {
    case OutputQParamsRule::SameAsInput: return input;
    case OutputQParamsRule::Fixed: return fixed_output_qparams(options_.op);
    case OutputQParamsRule::Observed: break;
  }
  return *observed_;
}

StateDict activation_state_dict(const ActivationOptions& options, const std::optional<QuantParams>& observed) {
  StateDict state;
  // nnq.LeakyReLU registers them as buffers: torch.tensor(scale) is float32, zero_point int64.
  if (options.op == ActivationOp::LeakyReLU && observed) set_output_qparams_buffers(state, *observed);
  return state;
}

std::optional<QuantParams> parse_activation_state_dict(const ActivationOptions& options, const StateDict& state) {
  const std::string name = quantized_activation_name(options.op);
  if (options.op != ActivationOp::LeakyReLU) {
    state.check_keys({}, name);
    return std::nullopt;
  }
  state.check_keys({"scale", "zero_point"}, name);
  return read_output_qparams_buffers(state, name);
}

StateDict QuantizedActivation::state_dict() const { return activation_state_dict(options_, observed_); }

void QuantizedActivation::load_state_dict(const StateDict& state) {
  std::optional<QuantParams> loaded = parse_activation_state_dict(options_, state);
  if (loaded) observed_ = *loaded;
}

ModuleOutput QuantizedActivation::forward(const ModuleInput& input) {
  const QTensor& x = expect_quint8_input(input, name());
  const QuantParams out = output_qparams(x.qparams);
  QTensor y{x.sizes, std::vector<int32_t>(x.values.size()), out};
  const kernels::AffineQParams in{x.qparams.scale(), static_cast<int32_t>(x.qparams.zero_point())};
  const kernels::AffineQParams to{out.scale(), static_cast<int32_t>(out.zero_point())};
  const int64_t n = static_cast<int64_t>(x.values.size());
  if (engine_.engine == Engine::QNNPACK && kernels::uses_qnnpack_table(options_.op))
    kernels::qnnpack_table_activation(options_, x.values.data(), n, in, to, y.values.data());
  else
    kernels::static_activation(options_, x.values.data(), n, in, to, kernels::AtenVectorLoop::of(), y.values.data());
  return {std::move(y), std::nullopt};
}

}  // namespace qconform
