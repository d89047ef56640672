#include "quantized/libtorch/static_softmax.h"

#include "core/error.h"
#include "core/float/activation.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/static/linear.h"
#include "reference/static.h"

namespace qconform {
namespace {

class LibTorchSoftmax : public Module {
 public:
  LibTorchSoftmax(std::optional<int64_t> dim, QuantParams output, EngineProfile engine)
      : dim_(dim), output_(std::move(output)), engine_(engine) {
    libtorch::EngineGuard guard(engine_);
  }
  std::string name() const override { return "QuantizedSoftmax"; }
  std::string extra_repr() const override { return "dim=" + (dim_ ? std::to_string(*dim_) : std::string("None")); }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override { state.check_keys({}, name()); }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const auto* x = std::get_if<QTensor>(&input.input);
    if (!x) throw Error(name() + ": expects a quantized input tensor");
    libtorch::EngineGuard guard(engine_);
    // nnq.Softmax.forward: dim None -> _get_softmax_dim; the op wraps and checks the rest.
    const int64_t dim = dim_ ? *dim_ : (x->dim() == 0 || x->dim() == 1 || x->dim() == 3 ? 0 : 1);
    const auto out = libtorch::call_op("quantized::softmax", "",
                                       {libtorch::to_aten(*x), dim, output_.scale(), output_.zero_point()});
    return {libtorch::from_aten_quantized(out.at(0).toTensor()), std::nullopt};
  }

 private:
  std::optional<int64_t> dim_;
  QuantParams output_;
  EngineProfile engine_;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_softmax(std::optional<int64_t> dim, const QuantParams& output,
                                              EngineProfile engine) {
  return std::make_unique<LibTorchSoftmax>(dim, output, engine);
}

std::unique_ptr<Module> libtorch_softmax_from_float(const FloatSoftmax& float_module, EngineProfile engine) {
  return make_libtorch_softmax(float_module.dim(), calibrated_output_qparams(float_module), engine);
}

std::unique_ptr<Module> libtorch_softmax_from_reference(const StaticReference& reference, EngineProfile engine) {
  const auto& softmax = dynamic_cast<const FloatSoftmax&>(reference.module());
  return make_libtorch_softmax(softmax.dim(), reference.output_qparams(), engine);
}

}  // namespace qconform
