#include "quantized/libtorch/static_normalization.h"

#include "core/error.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/static/linear.h"
#include "quantized/static/normalization.h"
#include "reference/static.h"

namespace qconform {
namespace {

c10::IValue optional_tensor(const std::optional<Tensor>& t) {
  return t ? c10::IValue(libtorch::to_aten(*t)) : c10::IValue();
}

class LibTorchNormalization : public Module {
 public:
  LibTorchNormalization(NormalizationOptions options, std::optional<Tensor> weight, std::optional<Tensor> bias,
                        QuantParams output_qparams, EngineProfile engine)
      : options_(std::move(options)),
        weight_(std::move(weight)),
        bias_(std::move(bias)),
        output_qparams_(output_qparams),
        engine_(engine) {
    libtorch::EngineGuard guard(engine_);  // LibTorch has the engine, on this process's path
    options_.validate();
    validate(output_qparams_);
  }

  std::string name() const override { return "Quantized" + options_.float_name(); }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override {
    return quantized_normalization_state_dict(options_, weight_, bias_, output_qparams_);
  }
  void load_state_dict(const StateDict& state) override {
    load_quantized_normalization_state_dict(state, options_, name(), &weight_, &bias_, &output_qparams_);
  }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const auto* x = std::get_if<QTensor>(&input.input);
    if (!x) throw Error(name() + ": expects a quantized (quint8) input tensor");
    libtorch::EngineGuard guard(engine_);
    // The nnq modules pass their float32 "scale" buffer, which the ops take as a double.
    const double scale = static_cast<float>(output_qparams_.scale());
    const int64_t zero_point = output_qparams_.zero_point();
    const at::Tensor qx = libtorch::to_aten(*x);
    std::vector<c10::IValue> out;
    switch (options_.op) {
      case NormOp::LayerNorm:
        out = libtorch::call_op("quantized::layer_norm", "",
                                {qx, c10::IValue(options_.normalized_shape), optional_tensor(weight_),
                                 optional_tensor(bias_), options_.eps, scale, zero_point});
        break;
      case NormOp::GroupNorm:
        out = libtorch::call_op("quantized::group_norm", "",
                                {qx, options_.num_groups, optional_tensor(weight_), optional_tensor(bias_),
                                 options_.eps, scale, zero_point});
        break;
      case NormOp::InstanceNorm:
        out = libtorch::call_op("quantized::instance_norm", "",
                                {qx, optional_tensor(weight_), optional_tensor(bias_), options_.eps, scale,
                                 zero_point});
        break;
    }
    return {libtorch::from_aten_quantized(out.at(0).toTensor()), std::nullopt};
  }

 private:
  NormalizationOptions options_;
  std::optional<Tensor> weight_, bias_;
  QuantParams output_qparams_;
  EngineProfile engine_;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_normalization(const NormalizationOptions& options,
                                                    const std::optional<Tensor>& weight,
                                                    const std::optional<Tensor>& bias,
                                                    const QuantParams& output_qparams, EngineProfile engine) {
  return std::make_unique<LibTorchNormalization>(options, weight, bias, output_qparams, engine);
}

std::unique_ptr<Module> libtorch_normalization_from_float(const FloatNormalization& float_module,
                                                          EngineProfile engine) {
  return make_libtorch_normalization(float_module.options(), float_module.weight(), float_module.bias(),
                                     calibrated_output_qparams(float_module), engine);
}

std::unique_ptr<Module> libtorch_normalization_from_reference(const StaticReference& reference, EngineProfile engine) {
  const auto& norm = dynamic_cast<const FloatNormalization&>(reference.module());
  return make_libtorch_normalization(norm.options(), norm.weight(), norm.bias(), reference.output_qparams(), engine);
}

}  // namespace qconform
