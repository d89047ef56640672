#include "quantized/libtorch/static_quantize.h"

#include "core/error.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/static/quantize.h"

namespace qconform {
namespace {

at::ScalarType scalar_type(DType dtype) {
  switch (dtype) {
    case DType::QUInt8: return at::kQUInt8;
    case DType::QInt8: return at::kQInt8;
    case DType::QInt32: return at::kQInt32;
    default: break;
  }
  throw Error("quantize_per_tensor: no quantized dtype " + to_string(dtype));
}

class LibTorchQuantize : public Module {
 public:
  explicit LibTorchQuantize(QuantParams qparams) : integer_(qparams.scale(), qparams.zero_point(), qparams.dtype) {}
  std::string name() const override { return "Quantize"; }
  std::string extra_repr() const override { return integer_.extra_repr(); }
  Implementation implementation() const override { return Implementation::LibTorch; }
  StateDict state_dict() const override { return integer_.state_dict(); }  // the same two buffers
  void load_state_dict(const StateDict& state) override { integer_.load_state_dict(state); }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const QuantParams& q = integer_.qparams();
    const at::Tensor x = libtorch::to_aten(expect_tensor(input, name()));
    const auto out = libtorch::call_op("aten::quantize_per_tensor", "",
                                       {x, q.scale(), q.zero_point(), scalar_type(q.dtype)});
    return {libtorch::from_aten_quantized(out.at(0).toTensor()), std::nullopt};
  }

 private:
  Quantize integer_;  // holds and checks the qparams and state as nnq.Quantize does
};

class LibTorchDeQuantize : public Module {
 public:
  std::string name() const override { return "DeQuantize"; }
  Implementation implementation() const override { return Implementation::LibTorch; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override { state.check_keys({}, name()); }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const auto* q = std::get_if<QTensor>(&input.input);
    if (!q) throw Error(name() + ": expected a quantized tensor input");
    const auto out = libtorch::call_op("aten::dequantize", "self", {libtorch::to_aten(*q)});
    return {libtorch::from_aten(out.at(0).toTensor()), std::nullopt};
  }
};

}  // namespace

std::unique_ptr<Module> make_libtorch_quantize(const QuantParams& qparams) {
  return std::make_unique<LibTorchQuantize>(qparams);
}

std::unique_ptr<Module> make_libtorch_dequantize() { return std::make_unique<LibTorchDeQuantize>(); }

}  // namespace qconform
