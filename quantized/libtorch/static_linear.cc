#include "quantized/libtorch/static_linear.h"

#include <sstream>

#include "core/error.h"
#include "quantized/dynamic/linear.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/static/linear.h"
#include "reference/linear.h"
#include "reference/static.h"

namespace qconform {
namespace {

class LibTorchStaticLinear : public Module {
 public:
  LibTorchStaticLinear(const QTensor& weight, const std::optional<Tensor>& bias, double scale, int64_t zero_point,
                       EngineProfile engine, bool fused_relu)
      : engine_(engine), fused_relu_(fused_relu), shape_(weight.sizes) {
    prepack(weight, bias, scale, zero_point);
  }

  std::string name() const override { return fused_relu_ ? "QuantizedLinearReLU" : "QuantizedLinear"; }
  std::string extra_repr() const override {
    std::ostringstream out;
    out << "in_features=" << shape_[1] << ", out_features=" << shape_[0] << ", scale=" << scale_
        << ", zero_point=" << zero_point_ << ", engine=" << engine_.label();
    return out.str();
  }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }

  StateDict state_dict() const override {
    libtorch::EngineGuard guard(engine_);
    auto unpacked = libtorch::call_op("quantized::linear_unpack", "", {packed_});
    std::optional<Tensor> bias;
    if (!unpacked[1].isNone()) bias = libtorch::from_aten(unpacked[1].toTensor());
    PackedLinearParams params{libtorch::from_aten_quantized(unpacked[0].toTensor()), bias, QuantizedLinear::kVersion};
    params.scale = scale_;
    params.zero_point = zero_point_;
    return packed_linear_state_dict(params);
  }

  void load_state_dict(const StateDict& state) override {
    const PackedLinearParams params = parse_packed_linear_state_dict(state, name());
    prepack(params.weight, params.bias, params.scale, params.zero_point);
  }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const auto* x = std::get_if<QTensor>(&input.input);
    if (!x) throw Error(name() + ": expects a quantized (quint8) input tensor");
    libtorch::EngineGuard guard(engine_);
    auto out = libtorch::call_op(fused_relu_ ? "quantized::linear_relu" : "quantized::linear", "",
                                 {libtorch::to_aten(*x), packed_, scale_, zero_point_});
    return {libtorch::from_aten_quantized(out[0].toTensor()), std::nullopt};
  }

 private:
  void prepack(const QTensor& weight, const std::optional<Tensor>& bias, double scale, int64_t zero_point) {
    // Float16 has no static prepack: the engine table's refusal, as the integer module's.
    if (auto rejection = weight_rejection(engine_.engine, EngineOp::StaticLinear, weight.qparams))
      if (weight.qparams.dtype == DType::Float16) throw Error(rejection->message);
    libtorch::EngineGuard guard(engine_);
    const c10::IValue b = bias ? c10::IValue(libtorch::to_aten(*bias)) : c10::IValue();
    packed_ = libtorch::call_op("quantized::linear_prepack", "", {libtorch::to_aten(weight), b})[0];
    shape_ = weight.sizes;
    scale_ = scale;
    zero_point_ = zero_point;
  }

  EngineProfile engine_;
  bool fused_relu_;
  Shape shape_;
  double scale_ = 1.0;
  int64_t zero_point_ = 0;
  c10::IValue packed_;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_static_linear(const QTensor& weight, const std::optional<Tensor>& bias,
                                                    double scale, int64_t zero_point, EngineProfile engine,
                                                    bool fused_relu) {
  return std::make_unique<LibTorchStaticLinear>(weight, bias, scale, zero_point, engine, fused_relu);
}

std::unique_ptr<Module> libtorch_static_linear_from_float(const FloatLinear& float_linear, EngineProfile engine) {
  const QuantParams out = calibrated_output_qparams(float_linear);
  return make_libtorch_static_linear(quantize_static_weight(float_linear.weight(), float_linear),
                                     float_linear.bias(), out.scale(), out.zero_point(), engine,
                                     float_linear.fused_relu);
}

std::unique_ptr<Module> libtorch_static_linear_from_reference(const StaticReference& reference, EngineProfile engine) {
  const auto& linear = dynamic_cast<const ReferenceLinear&>(reference.module());
  return make_libtorch_static_linear(linear.get_quantized_weight(), linear.bias(), reference.output_qparams().scale(),
                                     reference.output_qparams().zero_point(), engine, linear.fused_relu);
}

}  // namespace qconform
