#include "quantized/static/normalization.h"

#include "core/error.h"
#include "core/float/stubs.h"
#include "quantized/kernels/normalization.h"
#include "quantized/static/activation.h"
#include "quantized/static/linear.h"
#include "reference/static.h"

namespace qconform {

StateDict quantized_normalization_state_dict(const NormalizationOptions& options, const std::optional<Tensor>& weight,
                                             const std::optional<Tensor>& bias, const QuantParams& out) {
  StateDict state;
  if (weight) state.set("weight", *weight);
  if (bias) state.set("bias", *bias);
  set_output_qparams_buffers(state, out);
  state.versions[""] = options.state_dict_version();
  return state;
}

void load_quantized_normalization_state_dict(const StateDict& dict, const NormalizationOptions& options,
                                             const std::string& module_name, std::optional<Tensor>* weight,
                                             std::optional<Tensor>* bias, QuantParams* output_qparams) {
  std::vector<std::string> keys;
  if (*weight) keys.push_back("weight");
  if (*bias) keys.push_back("bias");
  keys.insert(keys.end(), {"scale", "zero_point"});
  dict.check_keys(keys, module_name);
  const Shape shape = options.parameter_shape();
  std::optional<Tensor> w = *weight, b = *bias;
  for (auto& [key, into] : {std::pair<const char*, std::optional<Tensor>*>{"weight", &w}, {"bias", &b}}) {
    if (!*into) continue;
    const Tensor& t = dict.at(key).as<Tensor>(key);
    if (t.sizes != shape)
      throw Error("size mismatch for " + std::string(key) + ": copying a param with shape " + shape_to_string(t.sizes) +
                  ", the shape in current model is " + shape_to_string(shape) + ".");
    *into = t;
  }
  const QuantParams q = read_output_qparams_buffers(dict, module_name);
  *weight = std::move(w);
  *bias = std::move(b);
  *output_qparams = q;
}

NormalizationGroups check_quantized_normalization_call(const NormalizationOptions& o,
                                                       const std::optional<Tensor>& weight,
                                                       const std::optional<Tensor>& bias, const QTensor& x) {
  if (o.op == NormOp::LayerNorm) {
    // _check_layer_norm_inputs: the parameters' shapes, then the input's.
    const auto check = [&](const std::optional<Tensor>& t, const char* what) {
      if (t && t->sizes != o.normalized_shape)
        throw Error(std::string("Expected ") + what + " to be of same shape as normalized_shape, but got " + what +
                    " of shape " + shape_to_string(t->sizes) + " and normalized_shape = " +
                    shape_to_string(o.normalized_shape));
    };
    check(weight, "weight");
    check(bias, "bias");
    try {
      return normalization_groups(o, x.sizes, "");
    } catch (const Error& e) {
      const std::string message = e.what();
      throw Error(message.substr(message.find("Given")));  // the op names no module
    }
  }
  NormalizationGroups g;
  try {
    g = normalization_groups(o, x.sizes, "");
  } catch (const Error& e) {
    const std::string message = e.what();
    throw Error(message.substr(message.find("Expected")));
  }
  if (g.count == 0) return g;
  // The kernel's internal assertion (LibTorch's message without its assertion prefix).
  if ((weight && weight->numel() != g.channels)) throw Error("Unexpected size of gamma");
  if ((bias && bias->numel() != g.channels)) throw Error("Unexpected size of beta");
  return g;
}

QuantizedNormalization::QuantizedNormalization(NormalizationOptions options, std::optional<Tensor> weight,
                                               std::optional<Tensor> bias, QuantParams output_qparams,
                                               EngineProfile engine)
    : options_(std::move(options)),
      weight_(std::move(weight)),
      bias_(std::move(bias)),
      output_qparams_(output_qparams),
      engine_(engine) {
  options_.validate();
  validate(output_qparams_);
  if (output_qparams_.dtype != DType::QUInt8 || output_qparams_.per_channel())
    throw Error(name() + ": the output qparams must be quint8 per-tensor, got " + output_qparams_.to_string());
}

std::unique_ptr<QuantizedNormalization> QuantizedNormalization::from_float(const FloatNormalization& float_module,
                                                                           EngineProfile engine) {
  return std::make_unique<QuantizedNormalization>(float_module.options(), float_module.weight(), float_module.bias(),
                                                  calibrated_output_qparams(float_module), engine);
}

std::unique_ptr<QuantizedNormalization> QuantizedNormalization::from_reference(const StaticReference& reference,
                                                                               EngineProfile engine) {
  const auto& norm = dynamic_cast<const FloatNormalization&>(reference.module());
  return std::make_unique<QuantizedNormalization>(norm.options(), norm.weight(), norm.bias(),
                                                  reference.output_qparams(), engine);
}

StateDict QuantizedNormalization::state_dict() const {
  return quantized_normalization_state_dict(options_, weight_, bias_, output_qparams_);
}

void QuantizedNormalization::load_state_dict(const StateDict& state) {
  load_quantized_normalization_state_dict(state, options_, name(), &weight_, &bias_, &output_qparams_);
}

ModuleOutput QuantizedNormalization::forward(const ModuleInput& input) {
  const QTensor& x = expect_quint8_input(input, name());
  const NormalizationGroups groups = check_quantized_normalization_call(options_, weight_, bias_, x);
  QTensor y{x.sizes, std::vector<int32_t>(x.values.size()), output_qparams_};
  const kernels::NormalizeQParams qparams{static_cast<float>(x.qparams.scale()),
                                          static_cast<int32_t>(x.qparams.zero_point()),
                                          static_cast<float>(output_qparams_.scale()),
                                          static_cast<int32_t>(output_qparams_.zero_point())};
  kernels::static_normalize(x.values.data(), groups, x.sizes, weight_ ? weight_->data.data() : nullptr,
                            bias_ ? bias_->data.data() : nullptr, options_.eps, qparams, aten_cpu_capability(),
                            y.values.data());
  return {std::move(y), std::nullopt};
}

}  // namespace qconform
