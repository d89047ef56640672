#pragma once
// The static activations and Dropout on quint8 tensors, the true-integer implementation:
// what PyTorch 1.13's eager convert leaves for each float module, with its names and state:
//   ReLU, Sigmoid, Hardsigmoid, Tanh   the float module itself, run on a quantized tensor
//                                      ("ReLU", ...; no state)
//   ReLU6, Dropout                     nnq.ReLU6, nnq.Dropout ("QuantizedReLU6", ...; no state)
//   LeakyReLU                          nnq.LeakyReLU: output scale and zero point as buffers
//                                      (state_dict keys "scale", "zero_point")
//   Hardswish, ELU                     nnq.Hardswish, nnq.ELU: output scale and zero point as
//                                      plain attributes (an empty state_dict, as PyTorch's)
// Output qparams by the op's rule (core/float/activation.h): the input's, fixed, or observed.
// Numerics: quantized/kernels/elementwise.h, the same on every engine.
#include <memory>
#include <optional>

#include "core/float/activation.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

class QuantizedActivation : public Module {
 public:
  // `observed`: the output qparams of an op whose rule is Observed (required there, refused
  // elsewhere: the others' outputs follow the input or the op).
  QuantizedActivation(ActivationOptions options, std::optional<QuantParams> observed, EngineProfile engine);

  // from_float: an Observed op's qparams from the calibrated module's activation_post_process.
  static std::unique_ptr<QuantizedActivation> from_float(const FloatActivation& float_module, EngineProfile engine);
  // from_reference: the reference's output qparams (nnq modules' from_reference(mod, scale, zp)).
  static std::unique_ptr<QuantizedActivation> from_reference(const StaticReference& reference, EngineProfile engine);

  std::string name() const override;
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const ActivationOptions& options() const { return options_; }
  // The output qparams for an input with `input` qparams.
  QuantParams output_qparams(const QuantParams& input) const;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  ActivationOptions options_;
  std::optional<QuantParams> observed_;
  EngineProfile engine_;
};

// PyTorch's converted module name for the op: "QuantizedReLU6", "Sigmoid", ...
std::string quantized_activation_name(ActivationOp op);
// The output qparams an Observed op takes from its calibrated float module, or from its
// reference; nullopt for the others (shared with LibTorch's implementation).
std::optional<QuantParams> observed_output_qparams(const FloatActivation& float_module);
std::optional<QuantParams> observed_output_qparams(const StaticReference& reference);
// The converted module's state_dict (shared with LibTorch's implementation): nnq.LeakyReLU's
// "scale" (float32) and "zero_point" (int64) buffers, nothing for the others; and back,
// strict, returning the observed qparams it holds (Error names the key).
StateDict activation_state_dict(const ActivationOptions& options, const std::optional<QuantParams>& observed);
std::optional<QuantParams> parse_activation_state_dict(const ActivationOptions& options, const StateDict& state);
// The quint8 per-tensor input a quantized activation takes, or Error naming the module.
const QTensor& expect_quint8_input(const ModuleInput& input, const std::string& module_name);

}  // namespace qconform
