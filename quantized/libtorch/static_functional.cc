#include "quantized/libtorch/static_functional.h"

#include "core/error.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/static/functional.h"
#include "reference/static.h"

namespace qconform {
namespace {

class LibTorchFunctional : public Module {
 public:
  LibTorchFunctional(const FunctionalOptions& options, const QuantParams& output, EngineProfile engine)
      : options_(options), output_(output), engine_(engine) {
    libtorch::EngineGuard guard(engine_);  // LibTorch has the engine, on this process's path
  }

  std::string name() const override { return "QFunctional"; }
  std::string extra_repr() const override { return functional_extra_repr(output_); }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override { return functional_state_dict(output_); }
  void load_state_dict(const StateDict& state) override { output_ = parse_functional_state_dict(state); }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const std::vector<const QTensor*> operands = functional_operands(input, name());
    libtorch::EngineGuard guard(engine_);
    std::vector<at::Tensor> x;
    for (const QTensor* q : operands) x.push_back(libtorch::to_aten(*q));
    const double scale = output_.scale();
    const int64_t zero_point = output_.zero_point();
    const auto second = [&]() -> const at::Tensor& {
      if (x.size() < 2) throw Error(name() + "." + options_.method() + ": takes 2 operands, got " + std::to_string(x.size()));
      return x[1];
    };
    std::vector<c10::IValue> out;
    switch (options_.op) {
      case FunctionalOp::Add: out = libtorch::call_op("quantized::add", "", {x[0], second(), scale, zero_point}); break;
      case FunctionalOp::AddRelu:
        out = libtorch::call_op("quantized::add_relu", "", {x[0], second(), scale, zero_point});
        break;
      case FunctionalOp::Mul: out = libtorch::call_op("quantized::mul", "", {x[0], second(), scale, zero_point}); break;
      case FunctionalOp::AddScalar:
        out = libtorch::call_op("quantized::add_scalar", "", {x[0], c10::Scalar(options_.scalar)});
        break;
      case FunctionalOp::MulScalar:
        out = libtorch::call_op("quantized::mul_scalar", "", {x[0], c10::Scalar(options_.scalar)});
        break;
      case FunctionalOp::Cat: {
        c10::List<at::Tensor> list;
        for (const at::Tensor& t : x) list.push_back(t);
        out = libtorch::call_op("quantized::cat", "", {list, options_.dim, scale, zero_point});
        break;
      }
      case FunctionalOp::Matmul:  // PyTorch 2's QFunctional.matmul calls this 1.13 op
        out = libtorch::call_op("quantized::matmul", "", {x[0], second(), scale, zero_point});
        break;
    }
    return {libtorch::from_aten_quantized(out.at(0).toTensor()), std::nullopt};
  }

 private:
  FunctionalOptions options_;
  QuantParams output_;
  EngineProfile engine_;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_static_functional(const FunctionalOptions& options, const QuantParams& output,
                                                        EngineProfile engine) {
  return std::make_unique<LibTorchFunctional>(options, output, engine);
}

std::unique_ptr<Module> libtorch_static_functional_from_float(const FloatFunctionalOp& float_module,
                                                              EngineProfile engine) {
  return make_libtorch_static_functional(float_module.options(), functional_output_qparams(float_module), engine);
}

std::unique_ptr<Module> libtorch_static_functional_from_reference(const StaticReference& reference,
                                                                  EngineProfile engine) {
  const auto& op = dynamic_cast<const FloatFunctionalOp&>(reference.module());
  return make_libtorch_static_functional(op.options(), functional_output_qparams(reference), engine);
}

}  // namespace qconform
