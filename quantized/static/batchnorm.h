#pragma once
// nnq.BatchNorm2d / BatchNorm3d and nniq.BNReLU2d / BNReLU3d on quint8 tensors, the
// true-integer implementation (quantized/kernels/normalization.h has the arithmetic).
// What PyTorch 1.13's eager convert makes of a calibrated BatchNorm (or BNReLU): the float
// module's weight, bias and running statistics, and the observed output scale and zero
// point; num_batches_tracked starts again from 0 (from_float does not copy it).
#include <memory>

#include "core/float/batchnorm.h"
#include "core/module.h"

namespace qconform {

class StaticReference;

class QuantizedBatchNorm : public Module {
 public:
  QuantizedBatchNorm(BatchNormOptions options, BatchNormState state, QuantParams output_qparams, EngineProfile engine,
                     bool relu);
  // The converted module's options: from_float builds nnq.BatchNorm{n}d(num_features, eps).
  static BatchNormOptions converted_options(const BatchNormOptions& float_options);
  static std::unique_ptr<QuantizedBatchNorm> from_float(const FloatBatchNorm& float_module, EngineProfile engine);
  static std::unique_ptr<QuantizedBatchNorm> from_reference(const StaticReference& reference, EngineProfile engine);

  std::string name() const override;  // "QuantizedBatchNorm2d", "QuantizedBNReLU2d"
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const QuantParams& output_qparams() const { return output_qparams_; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  BatchNormOptions options_;
  BatchNormState state_;
  QuantParams output_qparams_;
  EngineProfile engine_;
  bool relu_;
};

// Shared with LibTorch's implementation: PyTorch's module name, its state_dict ("weight",
// "bias", "running_mean", "running_var", "num_batches_tracked", "scale", "zero_point";
// version 2) and back (strict; Error names the key), and the checks quantized::batch_norm
// makes before computing, with its messages (an input of another rank, weight or bias
// missing or of another size than the input's channels, ...).
std::string quantized_batch_norm_name(int64_t spatial_dims, bool relu);
StateDict quantized_batch_norm_state_dict(const BatchNormState& state, const QuantParams& output_qparams);
void load_quantized_batch_norm_state_dict(const StateDict& dict, const std::string& module_name, BatchNormState* state,
                                          QuantParams* output_qparams);
void check_quantized_batch_norm_call(int64_t spatial_dims, const BatchNormState& state, const QTensor& x);

}  // namespace qconform
