#pragma once
// torch.ao.nn.quantized.Linear, "QuantizedLinear" (and intrinsic LinearReLU,
// "QuantizedLinearReLU"): the true-integer static implementation. quint8 input with its
// own qparams, qint8 weights, int32 accumulation, requantized to the module's output
// scale and zero point by the engine's rule (quantized/kernels/static_gemm.h).
#include <memory>
#include <optional>

#include "core/float/linear.h"
#include "core/module.h"
#include "quantized/dynamic/linear.h"
#include "quantized/kernels/static_gemm.h"

namespace qconform {

class StaticReference;

// The output qparams a calibrated float module carries (its activation_post_process);
// throws Error naming the module when it was not calibrated.
QuantParams calibrated_output_qparams(const Module& float_module);
// The weight of a static conversion: the qconfig's weight observer (default_qconfig's when
// the module has none) observes the float weight; returns the quantized weight.
QTensor quantize_static_weight(const Tensor& weight, const Module& float_module);

class QuantizedLinear : public Module {
 public:
  static constexpr int64_t kVersion = 3;  // nnq.Linear._version

  // Throws Error with the engine's own message if the engine rejects these weights at prepack.
  QuantizedLinear(QTensor weight, std::optional<Tensor> bias, double scale, int64_t zero_point, EngineProfile engine,
                  bool fused_relu = false);

  // from_float: weight observer from the qconfig, output qparams from activation_post_process.
  static std::unique_ptr<QuantizedLinear> from_float(const FloatLinear& float_linear, EngineProfile engine);
  // from_reference: the reference module's integer weight and output qparams, unchanged.
  static std::unique_ptr<QuantizedLinear> from_reference(const StaticReference& reference, EngineProfile engine);

  std::string name() const override { return fused_relu_ ? "QuantizedLinearReLU" : "QuantizedLinear"; }
  std::string extra_repr() const override;
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const QTensor& weight() const { return weight_; }
  const std::optional<Tensor>& bias() const { return bias_; }
  double scale() const { return scale_; }
  int64_t zero_point() const { return zero_point_; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  void set_parameters(QTensor weight, std::optional<Tensor> bias, double scale, int64_t zero_point);
  QTensor weight_;
  std::optional<Tensor> bias_;
  double scale_ = 1.0;
  int64_t zero_point_ = 0;
  EngineProfile engine_;
  bool fused_relu_;
  kernels::StaticLinearWeights packed_;
  std::optional<std::string> refused_at_forward_;  // qnnpack refuses quint8 weights at the call
};

}  // namespace qconform
