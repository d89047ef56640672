#include "quantized/libtorch/static_activation.h"

#include "core/error.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/static/activation.h"
#include "reference/static.h"

namespace qconform {
namespace {

class LibTorchActivation : public Module {
 public:
  LibTorchActivation(const ActivationOptions& options, const std::optional<QuantParams>& observed, EngineProfile engine)
      : options_(options), observed_(observed), engine_(engine) {
    libtorch::EngineGuard guard(engine_);  // LibTorch has the engine, on this process's path
  }

  std::string name() const override { return quantized_activation_name(options_.op); }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override { return activation_state_dict(options_, observed_); }
  void load_state_dict(const StateDict& state) override {
    std::optional<QuantParams> loaded = parse_activation_state_dict(options_, state);
    if (loaded) observed_ = *loaded;
  }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const auto* x = std::get_if<QTensor>(&input.input);
    if (!x) throw Error(name() + ": expects a quantized (quint8) input tensor");
    libtorch::EngineGuard guard(engine_);
    const at::Tensor qx = libtorch::to_aten(*x);
    const double slope = options_.negative_slope, alpha = options_.alpha;
    const double scale = observed_ ? observed_->scale() : 0.0;
    const int64_t zero_point = observed_ ? observed_->zero_point() : 0;
    std::vector<c10::IValue> out;
    switch (options_.op) {
      case ActivationOp::ReLU: out = libtorch::call_op("aten::relu", "", {qx}); break;
      case ActivationOp::ReLU6: out = libtorch::call_op("quantized::relu6", "", {qx, false}); break;
      case ActivationOp::LeakyReLU:
        out = libtorch::call_op("quantized::leaky_relu", "", {qx, slope, false, scale, zero_point});
        break;
      case ActivationOp::Hardswish: out = libtorch::call_op("quantized::hardswish", "", {qx, scale, zero_point}); break;
      case ActivationOp::ELU:
        out = libtorch::call_op("quantized::elu", "", {qx, scale, zero_point, alpha, 1.0, 1.0});
        break;
      case ActivationOp::Sigmoid: out = libtorch::call_op("aten::sigmoid", "", {qx}); break;
      case ActivationOp::Hardsigmoid: out = libtorch::call_op("aten::hardsigmoid", "", {qx}); break;
      case ActivationOp::Tanh: out = libtorch::call_op("aten::tanh", "", {qx}); break;
      case ActivationOp::Dropout: return {*x, std::nullopt};  // nnq.Dropout.forward returns its input
    }
    return {libtorch::from_aten_quantized(out.at(0).toTensor()), std::nullopt};
  }

 private:
  ActivationOptions options_;
  std::optional<QuantParams> observed_;
  EngineProfile engine_;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_static_activation(const ActivationOptions& options,
                                                        const std::optional<QuantParams>& observed,
                                                        EngineProfile engine) {
  return std::make_unique<LibTorchActivation>(options, observed, engine);
}

std::unique_ptr<Module> libtorch_static_activation_from_float(const FloatActivation& float_module,
                                                              EngineProfile engine) {
  return make_libtorch_static_activation(float_module.options(), observed_output_qparams(float_module), engine);
}

std::unique_ptr<Module> libtorch_static_activation_from_reference(const StaticReference& reference,
                                                                  EngineProfile engine) {
  const auto& activation = dynamic_cast<const FloatActivation&>(reference.module());
  return make_libtorch_static_activation(activation.options(), observed_output_qparams(reference), engine);
}

}  // namespace qconform
