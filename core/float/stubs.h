#pragma once
// torch.ao.quantization.QuantStub and DeQuantStub: the float model's marks where quantized
// computation starts and ends. Identities until convert swaps them (for nnq.Quantize and
// nnq.DeQuantize, quantized/static/quantize.h); prepare observes QuantStub's output.
#include "core/module.h"

namespace qconform {

class QuantStub : public Module {
 public:
  std::string name() const override { return "QuantStub"; }
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;
};

class DeQuantStub : public Module {
 public:
  std::string name() const override { return "DeQuantStub"; }
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;
};

// torch.nn.Identity: what fuse_modules leaves in place of every module but the first of a
// fused sequence. No observer, no conversion: it passes any value through.
class Identity : public Module {
 public:
  std::string name() const override { return "Identity"; }
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override;

 protected:
  ModuleOutput forward(const ModuleInput& input) override { return {input.input, input.hidden}; }
};

// The output "scale" (float32) and "zero_point" (int64) buffers of nnq modules that register
// them as 0-dim tensors (nnq.LeakyReLU, nnq.BatchNorm, nnq.LayerNorm, ...); and back, without
// checking the other keys (the module does), validated as quint8 per-tensor.
void set_output_qparams_buffers(StateDict& state, const QuantParams& qparams);
QuantParams read_output_qparams_buffers(const StateDict& state, const std::string& module_name);

// nnq.Quantize's state, which its implementations share: buffers "scale" (float, one element)
// and "zero_point" (int64, one element); and back, strict, for a module of `dtype` named
// `module_name` (Error names what is wrong).
StateDict quantize_state_dict(const QuantParams& qparams);
QuantParams parse_quantize_state_dict(const StateDict& state, DType dtype, const std::string& module_name);

}  // namespace qconform
