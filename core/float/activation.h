#pragma once
// torch.nn's activations and Dropout as float modules: what a static case calibrates, what
// the reference runs between dequantize and quantize, and what the eager flow prepares and
// converts. The value of each op on one float is PyTorch's definition, evaluated in float32.
#include <optional>
#include <string>

#include "core/module.h"

namespace qconform {

enum class ActivationOp { ReLU, ReLU6, LeakyReLU, Hardswish, ELU, Sigmoid, Hardsigmoid, Tanh, Dropout };

struct ActivationOptions {
  ActivationOp op = ActivationOp::ReLU;
  double negative_slope = 0.01;  // LeakyReLU
  double alpha = 1.0;            // ELU
  double p = 0.5;                // Dropout (evaluation mode: the identity)
  bool inplace = false;

  std::string float_name() const;  // "ReLU", "LeakyReLU", ...
  std::string extra_repr() const;  // torch.nn's: "negative_slope=0.01", "p=0.5, inplace=False", ""
  void validate() const;           // PyTorch's constructor checks (Dropout's p), Error otherwise
};

// How PyTorch 1.13's static quantized form of the op chooses its output qparams:
//   SameAsInput: an integer op on the input's integers (ReLU, ReLU6, Dropout);
//   Fixed: ATen's kernel sets them whatever was observed (Sigmoid and Hardsigmoid 1/256 and
//          0, Tanh 2/256 and 128; eager prepare gives these modules FixedQParams observers);
//   Observed: the nnq module holds the calibrated scale and zero point (LeakyReLU,
//          Hardswish, ELU).
enum class OutputQParamsRule { SameAsInput, Fixed, Observed };
OutputQParamsRule output_qparams_rule(ActivationOp op);
QuantParams fixed_output_qparams(ActivationOp op);  // Error unless the rule is Fixed

// The op on one float32 (PyTorch's definition; Dropout in evaluation mode).
float activation_value(const ActivationOptions& options, float x);
// A bound on |f(x) - f(x')| / |x - x'| over all x: how a difference in the input carries over.
double activation_lipschitz(const ActivationOptions& options);

class FloatActivation : public Module {
 public:
  explicit FloatActivation(ActivationOptions options);
  std::string name() const override { return options_.float_name(); }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override { return {}; }  // no parameters or buffers
  void load_state_dict(const StateDict& state) override;
  const ActivationOptions& options() const { return options_; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  ActivationOptions options_;
};

// torch.nn.Softmax(dim) as a float module (dim None: PyTorch's implicit choice, 0 for
// inputs of 0, 1 or 3 dimensions, else 1). PyTorch 1.13's eager convert leaves it as it is
// (it is in no mapping); prepare observes it only when named in observer_non_leaf_module_list.
class FloatSoftmax : public Module {
 public:
  explicit FloatSoftmax(std::optional<int64_t> dim = std::nullopt) : dim_(dim) {}
  std::string name() const override { return "Softmax"; }
  std::string extra_repr() const override { return "dim=" + (dim_ ? std::to_string(*dim_) : std::string("None")); }
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override { state.check_keys({}, name()); }
  const std::optional<int64_t>& dim() const { return dim_; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  std::optional<int64_t> dim_;
};

// The dimension a softmax of `dim` runs along for an input of `rank` dimensions: None takes
// PyTorch's implicit choice (_get_softmax_dim: 0 for ranks 0, 1 and 3, else 1); negative
// dims count from the end. Error with PyTorch's message when it is out of range.
int64_t softmax_dim(const std::optional<int64_t>& dim, int64_t rank);

}  // namespace qconform
