#include "quantized/libtorch/dynamic_linear.h"

#include "core/error.h"
#include "core/quantize.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/dynamic/linear.h"
#include "reference/linear.h"

namespace qconform {
namespace {

class LibTorchDynamicLinear : public Module {
 public:
  LibTorchDynamicLinear(const QTensor& weight, const std::optional<Tensor>& bias, EngineProfile engine,
                        bool fused_relu)
      : engine_(engine), fused_relu_(fused_relu), shape_(weight.sizes) {
    prepack(weight, bias);
  }

  std::string name() const override { return fused_relu_ ? "DynamicQuantizedLinearReLU" : "DynamicQuantizedLinear"; }
  std::string extra_repr() const override {
    return "in_features=" + std::to_string(shape_[1]) + ", out_features=" + std::to_string(shape_[0]) +
           ", dtype=torch.qint8, engine=" + engine_.label();
  }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }

  StateDict state_dict() const override {
    libtorch::EngineGuard guard(engine_);
    auto unpacked = libtorch::call_op("quantized::linear_unpack", "", {packed_});
    std::optional<Tensor> bias;
    if (!unpacked[1].isNone()) bias = libtorch::from_aten(unpacked[1].toTensor());
    return packed_linear_state_dict({libtorch::from_aten_quantized(unpacked[0].toTensor()), bias, version_});
  }

  void load_state_dict(const StateDict& state) override {
    const PackedLinearParams params = parse_packed_linear_state_dict(state, name());
    prepack(params.weight, params.bias);
    version_ = params.version;
  }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const Tensor& x = expect_tensor(input, name());
    libtorch::EngineGuard guard(engine_);
    // The module's version-4 call: reduce_range=True (qnnpack ignores it).
    // As nnqd.Linear.forward: version 4 passes reduce_range=True, older versions omit it
    // (False). qnnpack ignores it either way.
    const bool reduce_range = version_ >= DynamicQuantizedLinear::kVersion;
    auto out = libtorch::call_op(fused_relu_ ? "quantized::linear_relu_dynamic" : "quantized::linear_dynamic",
                                 "", {libtorch::to_aten(x), packed_, reduce_range});
    return {libtorch::from_aten(out[0].toTensor()), std::nullopt};
  }

 private:
  void prepack(const QTensor& weight, const std::optional<Tensor>& bias) {
    libtorch::EngineGuard guard(engine_);
    c10::IValue b = bias ? c10::IValue(libtorch::to_aten(*bias)) : c10::IValue();
    // float16 weights go to the fp16 prepack (which takes the float weight), as
    // nnqd.Linear does for float16_dynamic_qconfig.
    const bool fp16 = weight.qparams.dtype == DType::Float16;
    auto packed = fp16 ? libtorch::call_op("quantized::linear_prepack_fp16", "",
                                           {libtorch::to_aten(dequantize(weight)), b})
                       : libtorch::call_op("quantized::linear_prepack", "", {libtorch::to_aten(weight), b});
    packed_ = packed[0];  // replaced only after prepack succeeded
    shape_ = weight.sizes;
  }

  EngineProfile engine_;
  bool fused_relu_;
  Shape shape_;
  c10::IValue packed_;  // LinearPackedParamsBase
  int64_t version_ = DynamicQuantizedLinear::kVersion;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_dynamic_linear(const QTensor& weight,
                                                     const std::optional<Tensor>& bias, EngineProfile engine,
                                                     bool fused_relu) {
  return std::make_unique<LibTorchDynamicLinear>(weight, bias, engine, fused_relu);
}

std::unique_ptr<Module> libtorch_dynamic_linear_from_float(const FloatLinear& float_linear,
                                                           EngineProfile engine) {
  // The weight quantization is the harness's (bit-exact with PyTorch's, tested in
  // tests/test_quantize_libtorch.cc); the GEMM and epilogue are LibTorch's.
  const auto reference = ReferenceLinear::from_float(float_linear);
  return libtorch_dynamic_linear_from_reference(*reference, engine);
}

std::unique_ptr<Module> libtorch_dynamic_linear_from_reference(const ReferenceLinear& reference,
                                                               EngineProfile engine) {
  return make_libtorch_dynamic_linear(reference.get_quantized_weight(), reference.bias(), engine,
                                      reference.fused_relu);
}

}  // namespace qconform
