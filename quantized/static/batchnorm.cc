#include "quantized/static/batchnorm.h"

#include "core/error.h"
#include "core/float/stubs.h"
#include "quantized/kernels/normalization.h"
#include "quantized/static/activation.h"
#include "quantized/static/linear.h"
#include "reference/static.h"

namespace qconform {

std::string quantized_batch_norm_name(int64_t spatial_dims, bool relu) {
  return std::string("Quantized") + (relu ? "BNReLU" : "BatchNorm") + std::to_string(spatial_dims) + "d";
}

StateDict quantized_batch_norm_state_dict(const BatchNormState& s, const QuantParams& out) {
  // nn.BatchNorm's parameters and buffers, then nnq._BatchNorm's "scale" (float32) and
  // "zero_point" (int64) buffers.
  StateDict state = batch_norm_state_dict(s);
  set_output_qparams_buffers(state, out);
  return state;
}

void load_quantized_batch_norm_state_dict(const StateDict& dict, const std::string& module_name, BatchNormState* s,
                                          QuantParams* output_qparams) {
  std::vector<std::string> keys;
  if (s->weight) keys.push_back("weight");
  if (s->bias) keys.push_back("bias");
  if (s->running_mean) keys.insert(keys.end(), {"running_mean", "running_var", "num_batches_tracked"});
  keys.insert(keys.end(), {"scale", "zero_point"});
  dict.check_keys(keys, module_name);
  BatchNormState loaded = read_batch_norm_state(dict, *s);
  const QuantParams q = read_output_qparams_buffers(dict, module_name);
  *s = std::move(loaded);
  *output_qparams = q;
}

void check_quantized_batch_norm_call(int64_t spatial_dims, const BatchNormState& s, const QTensor& x) {
  // quantized::batch_norm{2d,3d}'s order of checks (PyTorch 1.13, measured).
  if (!s.weight) throw Error("Weight must be provided");
  if (!s.bias) throw Error("Bias must be provided");
  if (!s.running_mean) throw Error("running_mean must be provided: quantized::batch_norm takes the running statistics");
  if (x.numel() == 0) return;  // the input is returned as it is
  if (x.dim() != spatial_dims + 2) throw Error("Expecting the input tensor of rank " + std::to_string(spatial_dims + 2) + ".");
  const int64_t channels = x.sizes[1];
  if (s.weight->numel() != channels || s.bias->numel() != channels) throw Error("Expect weight size to match C");
  if (s.running_mean->numel() != channels) throw Error("Mean size must match channel dimension");
  if (s.running_var->numel() != channels) throw Error("Variance size must match channel dimension");
}

BatchNormOptions QuantizedBatchNorm::converted_options(const BatchNormOptions& float_options) {
  // nnq.BatchNorm{n}d(num_features, eps) is affine and tracks statistics, with the default
  // momentum; the float module's weight and statistics are then assigned to it, None ones
  // included (its forward then refuses: "Weight must be provided").
  BatchNormOptions o = float_options;
  o.momentum = 0.1;
  o.affine = true;
  o.track_running_stats = true;
  return o;
}

QuantizedBatchNorm::QuantizedBatchNorm(BatchNormOptions options, BatchNormState state, QuantParams output_qparams,
                                       EngineProfile engine, bool relu)
    : options_(options), state_(std::move(state)), output_qparams_(output_qparams), engine_(engine), relu_(relu) {
  options_.validate();
  if (options_.spatial_dims != 2 && options_.spatial_dims != 3)
    throw Error("quantized BatchNorm exists for 2 and 3 spatial dimensions, not " + std::to_string(options_.spatial_dims));
  validate(output_qparams_);
  if (output_qparams_.dtype != DType::QUInt8 || output_qparams_.per_channel())
    throw Error(name() + ": the output qparams must be quint8 per-tensor, got " + output_qparams_.to_string());
}

std::unique_ptr<QuantizedBatchNorm> QuantizedBatchNorm::from_float(const FloatBatchNorm& float_module,
                                                                   EngineProfile engine) {
  BatchNormState state = float_module.state();
  state.num_batches_tracked = 0;
  return std::make_unique<QuantizedBatchNorm>(converted_options(float_module.options()), std::move(state),
                                              calibrated_output_qparams(float_module), engine, float_module.fused_relu);
}

std::unique_ptr<QuantizedBatchNorm> QuantizedBatchNorm::from_reference(const StaticReference& reference,
                                                                       EngineProfile engine) {
  const auto& bn = dynamic_cast<const FloatBatchNorm&>(reference.module());
  BatchNormState state = bn.state();
  state.num_batches_tracked = 0;
  return std::make_unique<QuantizedBatchNorm>(converted_options(bn.options()), std::move(state),
                                              reference.output_qparams(), engine, bn.fused_relu);
}

std::string QuantizedBatchNorm::name() const { return quantized_batch_norm_name(options_.spatial_dims, relu_); }

StateDict QuantizedBatchNorm::state_dict() const { return quantized_batch_norm_state_dict(state_, output_qparams_); }

void QuantizedBatchNorm::load_state_dict(const StateDict& state) {
  load_quantized_batch_norm_state_dict(state, name(), &state_, &output_qparams_);
}

ModuleOutput QuantizedBatchNorm::forward(const ModuleInput& input) {
  const QTensor& x = expect_quint8_input(input, name());
  check_quantized_batch_norm_call(options_.spatial_dims, state_, x);
  if (x.numel() == 0) return {x, std::nullopt};
  const kernels::BatchNormAffine affine = kernels::batch_norm_affine(
      state_.weight->data, state_.bias->data, state_.running_mean->data, state_.running_var->data, options_.eps,
      x.qparams.scale(), static_cast<float>(output_qparams_.scale()));  // nnq holds the scale as a float32 buffer
  int64_t plane = 1;
  for (int64_t d = 2; d < x.dim(); ++d) plane *= x.sizes[d];
  QTensor y{x.sizes, std::vector<int32_t>(x.values.size()), output_qparams_};
  kernels::static_batch_norm(x.values.data(), x.sizes[0], x.sizes[1], plane,
                             static_cast<int32_t>(x.qparams.zero_point()),
                             static_cast<int32_t>(output_qparams_.zero_point()), affine, relu_, aten_cpu_capability(),
                             y.values.data());
  return {std::move(y), std::nullopt};
}

}  // namespace qconform
