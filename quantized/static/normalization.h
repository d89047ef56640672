#pragma once
// nnq.LayerNorm, GroupNorm and InstanceNorm{1,2,3}d on quint8 tensors, the true-integer
// implementation (quantized/kernels/normalization.h has the arithmetic): what PyTorch
// 1.13's eager convert makes of a calibrated float module, its weight and bias (None when
// not affine) and the observed output scale and zero point as 0-dim buffers.
#include <memory>
#include <optional>

#include "core/float/normalization.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

class QuantizedNormalization : public Module {
 public:
  QuantizedNormalization(NormalizationOptions options, std::optional<Tensor> weight, std::optional<Tensor> bias,
                         QuantParams output_qparams, EngineProfile engine);
  static std::unique_ptr<QuantizedNormalization> from_float(const FloatNormalization& float_module,
                                                            EngineProfile engine);
  static std::unique_ptr<QuantizedNormalization> from_reference(const StaticReference& reference,
                                                                EngineProfile engine);

  std::string name() const override { return "Quantized" + options_.float_name(); }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  NormalizationOptions options_;
  std::optional<Tensor> weight_, bias_;
  QuantParams output_qparams_;
  EngineProfile engine_;
};

// Shared with LibTorch's implementation: the state_dict ("weight", "bias" when affine, then
// "scale" (float32) and "zero_point" (int64); the float module's version) and back (strict;
// Error names the key), and the checks the quantized ops make before computing, with their
// messages (layer_norm's shape checks, group_norm's rank and divisibility, gamma's size).
StateDict quantized_normalization_state_dict(const NormalizationOptions& options, const std::optional<Tensor>& weight,
                                             const std::optional<Tensor>& bias, const QuantParams& output_qparams);
void load_quantized_normalization_state_dict(const StateDict& dict, const NormalizationOptions& options,
                                             const std::string& module_name, std::optional<Tensor>* weight,
                                             std::optional<Tensor>* bias, QuantParams* output_qparams);
NormalizationGroups check_quantized_normalization_call(const NormalizationOptions& options,
                                                       const std::optional<Tensor>& weight,
                                                       const std::optional<Tensor>& bias, const QTensor& x);

}  // namespace qconform
