#include "quantized/libtorch/static_batchnorm.h"

#include "core/error.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/static/batchnorm.h"
#include "quantized/static/linear.h"
#include "reference/static.h"

namespace qconform {
namespace {

c10::IValue optional_tensor(const std::optional<Tensor>& t) {
  return t ? c10::IValue(libtorch::to_aten(*t)) : c10::IValue();
}

class LibTorchBatchNorm : public Module {
 public:
  LibTorchBatchNorm(BatchNormOptions options, BatchNormState state, QuantParams output_qparams, EngineProfile engine,
                    bool relu)
      : options_(QuantizedBatchNorm::converted_options(options)),
        state_(std::move(state)),
        output_qparams_(output_qparams),
        engine_(engine),
        relu_(relu) {
    libtorch::EngineGuard guard(engine_);  // LibTorch has the engine, on this process's path
    validate(output_qparams_);
  }

  std::string name() const override { return quantized_batch_norm_name(options_.spatial_dims, relu_); }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override { return quantized_batch_norm_state_dict(state_, output_qparams_); }
  void load_state_dict(const StateDict& state) override {
    load_quantized_batch_norm_state_dict(state, name(), &state_, &output_qparams_);
  }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const auto* x = std::get_if<QTensor>(&input.input);
    if (!x) throw Error(name() + ": expects a quantized (quint8) input tensor");
    libtorch::EngineGuard guard(engine_);
    const std::string op = std::string("quantized::batch_norm") + std::to_string(options_.spatial_dims) + "d" +
                           (relu_ ? "_relu" : "");
    // nnq's forward passes its float32 "scale" buffer, which the op takes as a double.
    const double scale = static_cast<float>(output_qparams_.scale());
    std::vector<c10::IValue> out = libtorch::call_op(
        op.c_str(), "",
        {libtorch::to_aten(*x), optional_tensor(state_.weight), optional_tensor(state_.bias),
         optional_tensor(state_.running_mean), optional_tensor(state_.running_var), options_.eps, scale,
         output_qparams_.zero_point()});
    return {libtorch::from_aten_quantized(out.at(0).toTensor().contiguous()), std::nullopt};
  }

 private:
  BatchNormOptions options_;
  BatchNormState state_;
  QuantParams output_qparams_;
  EngineProfile engine_;
  bool relu_;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_batch_norm(const BatchNormOptions& options, const BatchNormState& state,
                                                 const QuantParams& output_qparams, EngineProfile engine, bool relu) {
  return std::make_unique<LibTorchBatchNorm>(options, state, output_qparams, engine, relu);
}

std::unique_ptr<Module> libtorch_batch_norm_from_float(const FloatBatchNorm& float_module, EngineProfile engine) {
  BatchNormState state = float_module.state();
  state.num_batches_tracked = 0;
  return make_libtorch_batch_norm(float_module.options(), state, calibrated_output_qparams(float_module), engine,
                                  float_module.fused_relu);
}

std::unique_ptr<Module> libtorch_batch_norm_from_reference(const StaticReference& reference, EngineProfile engine) {
  const auto& bn = dynamic_cast<const FloatBatchNorm&>(reference.module());
  BatchNormState state = bn.state();
  state.num_batches_tracked = 0;
  return make_libtorch_batch_norm(bn.options(), state, reference.output_qparams(), engine, bn.fused_relu);
}

}  // namespace qconform
