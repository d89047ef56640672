#include "quantized/libtorch/static_pooling.h"

#include "core/error.h"
#include "quantized/libtorch/aten_bridge.h"
#include "reference/static.h"

namespace qconform {
namespace {

std::vector<int64_t> pair(const SizeArg& s) { return {s.h, s.w}; }

class LibTorchPooling : public Module {
 public:
  LibTorchPooling(const PoolingOptions& options, EngineProfile engine) : options_(options), engine_(engine) {
    libtorch::EngineGuard guard(engine_);  // LibTorch has the engine, on this process's path
  }

  std::string name() const override { return options_.float_name(); }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override { state.check_keys({}, name()); }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const auto* x = std::get_if<QTensor>(&input.input);
    if (!x) throw Error(name() + ": expects a quantized (quint8) input tensor");
    libtorch::EngineGuard guard(engine_);
    const at::Tensor qx = libtorch::to_aten(*x);
    const PoolingOptions& o = options_;
    std::vector<c10::IValue> out;
    switch (o.op) {
      case PoolingOp::MaxPool2d:
        out = libtorch::call_op("aten::max_pool2d", "",
                                {qx, pair(o.kernel_size), o.stride ? pair(*o.stride) : std::vector<int64_t>{},
                                 pair(o.padding), pair(o.dilation), o.ceil_mode});
        break;
      case PoolingOp::AvgPool2d:
        out = libtorch::call_op("aten::avg_pool2d", "",
                                {qx, pair(o.kernel_size), o.stride ? pair(*o.stride) : std::vector<int64_t>{},
                                 pair(o.padding), o.ceil_mode, o.count_include_pad,
                                 o.divisor_override ? c10::IValue(*o.divisor_override) : c10::IValue()});
        break;
      case PoolingOp::AdaptiveAvgPool2d: {
        // nn.AdaptiveAvgPool2d fills a None dimension with the input's size.
        const auto [oh, ow] = adaptive_output_size(o.output_size, x->sizes[x->sizes.size() - 2], x->sizes.back());
        // LibTorch 1.13's qnnpack path takes the input size modulo the output size before
        // any check: a zero output size kills the process (SIGFPE). Refused before the call.
        if (engine_.engine == Engine::QNNPACK && (oh == 0 || ow == 0))
          throw Error("adaptive_avg_pool2d: an output_size of 0 on qnnpack: LibTorch 1.13 takes the input size "
                      "modulo it (a division by zero, SIGFPE); refused");
        out = libtorch::call_op("aten::adaptive_avg_pool2d", "", {qx, std::vector<int64_t>{oh, ow}});
        break;
      }
    }
    return {libtorch::from_aten_quantized(out.at(0).toTensor()), std::nullopt};
  }

 private:
  PoolingOptions options_;
  EngineProfile engine_;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_static_pooling(const PoolingOptions& options, EngineProfile engine) {
  return std::make_unique<LibTorchPooling>(options, engine);
}

std::unique_ptr<Module> libtorch_static_pooling_from_float(const FloatPooling& float_module, EngineProfile engine) {
  return make_libtorch_static_pooling(float_module.options(), engine);
}

std::unique_ptr<Module> libtorch_static_pooling_from_reference(const StaticReference& reference,
                                                               EngineProfile engine) {
  return make_libtorch_static_pooling(dynamic_cast<const FloatPooling&>(reference.module()).options(), engine);
}

}  // namespace qconform
