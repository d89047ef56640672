#pragma once
// torch.nn.BatchNorm{1,2,3}d in evaluation mode, and torch.nn.intrinsic.BNReLU{2,3}d (the
// float module fuse_modules makes of BatchNorm followed by ReLU): what a static case
// calibrates, what the reference runs between dequantize and quantize, and what
// fuse_modules folds into a preceding convolution or linear layer (core/float/fusion.h).
//
// In evaluation mode, per channel c (dimension 1 of the input):
//
//   y = (x - running_mean[c]) / sqrt(running_var[c] + eps) * weight[c] + bias[c]
//
// evaluated as ATen's CPU kernel does it: alpha = weight * (1 / sqrt(var + eps)),
// beta = bias - mean * alpha, y = x * alpha + beta, each step rounded to float32.
#include <cstdint>
#include <optional>
#include <string>

#include "core/module.h"

namespace qconform {

struct BatchNormOptions {
  int64_t spatial_dims = 2;  // 1 (BatchNorm1d: (N, C) or (N, C, L)), 2 or 3
  int64_t num_features = 1;
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;               // weight and bias exist
  bool track_running_stats = true;  // running_mean, running_var, num_batches_tracked exist

  std::string float_name(bool relu) const;  // "BatchNorm2d", "BNReLU2d"
  // "3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True"
  std::string extra_repr() const;
  // The input ranks the module takes: {4} for 2d, {5} for 3d, {2, 3} for 1d.
  bool accepts_rank(int64_t rank) const;
  void validate() const;  // num_features >= 1, spatial_dims 1..3, Error otherwise
};

// The module's parameters and buffers as torch.nn holds them (float32, one per channel).
struct BatchNormState {
  std::optional<Tensor> weight, bias;                // affine
  std::optional<Tensor> running_mean, running_var;   // track_running_stats
  int64_t num_batches_tracked = 0;
};

// The parameters and buffers torch.nn.BatchNorm saves, those that exist: "weight", "bias",
// "running_mean", "running_var", "num_batches_tracked"; and back into a copy of `current`,
// each of its present entries read with PyTorch's size check (the caller checks the keys).
StateDict batch_norm_state_dict(const BatchNormState& state);
BatchNormState read_batch_norm_state(const StateDict& dict, const BatchNormState& current);

class FloatBatchNorm : public Module {
 public:
  // Missing parameters take torch.nn's initial values (weight 1, bias 0, mean 0, var 1).
  FloatBatchNorm(BatchNormOptions options, BatchNormState state = {});
  std::string name() const override { return options_.float_name(fused_relu); }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Float; }
  // "weight", "bias", "running_mean", "running_var", "num_batches_tracked" (version 2), the
  // ones that exist; under "0." for BNReLU (an nn.Sequential of the BatchNorm and ReLU).
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const BatchNormOptions& options() const { return options_; }
  const BatchNormState& state() const { return state_; }
  bool fused_relu = false;

 protected:
  // Evaluation mode only: Error when training (batch statistics are not modelled).
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  BatchNormOptions options_;
  BatchNormState state_;
};

// Error naming the module unless the input's rank fits and dimension 1 has num_features
// channels (torch.nn's "expected 4D input (got 3D input)", F.batch_norm's
// "running_mean should contain 5 elements not 3").
void check_batch_norm_input(const BatchNormOptions& options, const Shape& input, const std::string& module_name);

}  // namespace qconform
