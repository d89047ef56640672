#pragma once
// torch.ao.nn.quantized.Quantize and DeQuantize, what convert puts in the stubs' places: a
// float tensor to a per-tensor quantized one with the QuantStub's observed qparams (ATen's
// quantize_per_tensor: core/quantize.h (2)), and back (dequantize, (4)). The integer
// implementation of the static.Quantize and static.DeQuantize kinds.
#include "core/module.h"

namespace qconform {

// torch.ao.nn.quantized.Quantize: a float tensor to a per-tensor quantized one. Both convert
// paths use it (PyTorch's reference mappings keep nnq.Quantize for QuantStub).
class Quantize : public Module {
 public:
  Quantize(double scale, int64_t zero_point, DType dtype);  // validated as QuantParams
  std::string name() const override { return "Quantize"; }
  std::string extra_repr() const override;
  Implementation implementation() const override { return Implementation::Quantized; }
  // Buffers "scale" (float, one element) and "zero_point" (int64, one element).
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  const QuantParams& qparams() const { return qparams_; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  QuantParams qparams_;
};

// torch.ao.nn.quantized.DeQuantize.
class DeQuantize : public Module {
 public:
  std::string name() const override { return "DeQuantize"; }
  Implementation implementation() const override { return Implementation::Quantized; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;
};

}  // namespace qconform
