#pragma once
// torch.ao.nn.quantized.Softmax ("QuantizedSoftmax"), the true-integer implementation: the
// softmax along `dim` (None: PyTorch's implicit choice) of a quint8 input, with the output
// scale and zero point its from_float takes from the calibrated nn.Softmax (plain attributes:
// an empty state_dict, as PyTorch's). PyTorch 1.13's eager mappings hold no entry for
// nn.Softmax: convert leaves it float, and nnq.Softmax is reached by from_float.
// Numerics: quantized/kernels/softmax.h.
#include <memory>
#include <optional>

#include "core/module.h"

namespace qconform {

class FloatSoftmax;
class StaticReference;

class QuantizedSoftmax : public Module {
 public:
  QuantizedSoftmax(std::optional<int64_t> dim, QuantParams output, EngineProfile engine);
  static std::unique_ptr<QuantizedSoftmax> from_float(const FloatSoftmax& float_module, EngineProfile engine);
  static std::unique_ptr<QuantizedSoftmax> from_reference(const StaticReference& reference, EngineProfile engine);

  std::string name() const override { return "QuantizedSoftmax"; }
  std::string extra_repr() const override;  // nn.Softmax's: "dim=1", "dim=None"
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override { state.check_keys({}, name()); }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  std::optional<int64_t> dim_;
  QuantParams output_;
  EngineProfile engine_;
};

}  // namespace qconform
