#pragma once
// torch.ao.nn.quantized.dynamic.Linear, "DynamicQuantizedLinear": the true-integer
// implementation. Each call quantizes the activations with the engine's dynamic rule
// (choose_dynamic_qparams), multiplies u8 x s8 into int32 and dequantizes with the
// float epilogue of quantized/kernels/dynamic_gemm.h. Engine differences come from the
// engine table only.
#include <memory>
#include <optional>
#include <vector>

#include "core/float/linear.h"
#include "core/module.h"
#include "quantized/kernels/dynamic_gemm.h"

namespace qconform {

class ReferenceLinear;

// The state_dict layout of nnq.Linear / nnqd.Linear: scale, zero_point,
// _packed_params.dtype, _packed_params._packed_params = (weight, bias), versions
// {"": version, "_packed_params": 3}. Shared by the integer and the LibTorch modules.
struct PackedLinearParams {
  QTensor weight;
  std::optional<Tensor> bias;
  int64_t version;  // the module's; 1 when the state_dict has none (pre-versioning)
  // The output qparams of static nnq.Linear; dynamic modules save 1.0 and 0.
  double scale = 1.0;
  int64_t zero_point = 0;
};
StateDict packed_linear_state_dict(const PackedLinearParams& params);
// Strict: throws Error naming the key that is missing, unexpected or of the wrong kind.
PackedLinearParams parse_packed_linear_state_dict(const StateDict& state, const std::string& module_name);

class DynamicQuantizedLinear : public Module {
 public:
  static constexpr int64_t kVersion = 4;  // version 4 passes reduce_range=True to the op

  // Throws Error with the engine's own message if the engine rejects these weights.
  DynamicQuantizedLinear(QTensor weight, std::optional<Tensor> bias, EngineProfile engine);

  // from_float: the float module's qconfig weight observer (default_dynamic_qconfig's when
  // it has none) chooses the weight qparams; the weight must observe as qint8 or float16.
  static std::unique_ptr<DynamicQuantizedLinear> from_float(const FloatLinear& float_linear,
                                                            EngineProfile engine);
  // from_reference: the reference module's integer weight, unchanged.
  static std::unique_ptr<DynamicQuantizedLinear> from_reference(const ReferenceLinear& reference,
                                                                EngineProfile engine);

  // torch.ao.nn.intrinsic.quantized.dynamic.LinearReLU when fused_relu.
  std::string name() const override { return fused_relu ? "DynamicQuantizedLinearReLU" : "DynamicQuantizedLinear"; }
  std::string extra_repr() const override;
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  int64_t in_features() const { return weight_.sizes[1]; }
  int64_t out_features() const { return weight_.sizes[0]; }
  const QTensor& weight() const { return weight_; }
  const std::optional<Tensor>& bias() const { return bias_; }
  // Modules loaded from a state_dict older than version 4 call the op without
  // reduce_range, as PyTorch does.
  int64_t version() const { return version_; }
  // Whether this call's activations are quantized with a reduced (7-bit) range: the
  // module asks for it (version 4) and the engine honours it.
  bool activations_use_reduced_range() const;
  bool uses_reduced_range(bool reduce_range) const;  // for a call that asks for reduce_range

  // LinearPackedParamsBase::apply_dynamic: y = rows x out_features from x = rows x
  // in_features, activations quantized per call (7-bit when reduce_range is asked for and
  // the engine honours it). What the recurrent modules call for every gate projection.
  void apply_dynamic(const float* x, int64_t rows, bool reduce_range, float* y, bool relu = false) const;

  // apply_dynamic in two steps, for a recurrent layer's input projection: the activations of
  // all its rows quantized at once (one min/max, one qparams: what apply_dynamic on all rows
  // does), then multiplied a few steps' rows at a time just before the cells read them, so
  // that the projection stays in cache instead of going through memory (52 MB at fastrnns'
  // size). The same bits as apply_dynamic on all rows. qint8 weights only (float16 weights
  // quantize nothing: callers project those rows at once).
  struct QuantizedActivations {
    // The integers in one of two forms. Where this host's kernels read u8 rows for them
    // (kernels::u8_rows_supported: every VNNI host, AVX2 hosts for 7-bit values), bytes:
    // rows of row_bytes, in_features padded with zeros to whole quads, the rows the tiles
    // read, with no int32 pass between. Otherwise values, rows x in_features int32.
    bool in_bytes = false;
    std::vector<uint8_t> bytes;
    int64_t row_bytes = 0;
    std::vector<int32_t> values;
    float scale;
    int32_t zero_point;
    kernels::Accumulation accumulation;
    bool seven_bit = false;  // every value <= 127 (the clamp's upper bound)
  };
  // Into `into`, whose buffer only grows (a fresh 13 MB at fastrnns' size, mapped and zeroed by
  // the kernel on every forward, cost more than the parts save).
  void quantize_dynamic(const float* x, int64_t rows, bool reduce_range, QuantizedActivations& into) const;
  void apply_quantized(const QuantizedActivations& x, int64_t first_row, int64_t rows, float* y,
                       bool relu = false) const;
  bool has_float16_weight() const { return weight_.qparams.dtype == DType::Float16; }
  bool fused_relu = false;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  void set_weight_bias(QTensor weight, std::optional<Tensor> bias);
  // u8 activations by the engine's rule (engine table: activation_quantization).
  // n activations at x into out, by the engine's rounding rule (engine table).
  void quantize_activations(const float* x, int64_t n, const QuantParams& qparams, int32_t* out) const;
  QTensor weight_;
  std::optional<Tensor> bias_;
  EngineProfile engine_;
  int64_t version_ = kVersion;
  kernels::DynamicLinearWeights packed_;  // prepared once, as engines prepack
  Tensor fp16_weight_;                    // float16 weights, as floats (fbgemm's fp16 path)
  std::optional<std::string> refused_at_forward_;  // the engine refuses these weights at the call
};

}  // namespace qconform
