#pragma once
// torch.nn.LayerNorm, GroupNorm and InstanceNorm{1,2,3}d: the float modules a static case
// calibrates, what the reference runs between dequantize and quantize, and what the eager
// flow prepares and converts. Each normalizes groups of elements by their own mean and
// (biased) variance, then applies an optional affine map:
//
//   y = (x - mean(group)) / sqrt(var(group) + eps) * gamma + beta
//
//   LayerNorm:    a group is one sample's trailing normalized_shape elements; gamma and
//                 beta have normalized_shape (elementwise_affine)
//   GroupNorm:    a group is num_channels / num_groups channels of one sample; gamma and
//                 beta one per channel (affine)
//   InstanceNorm: a group is one channel of one sample; gamma and beta one per channel
//                 (affine, off by default)
//
// Statistics here are computed in double (the reference's job is PyTorch's definition, not
// ATen's float order). InstanceNorm with track_running_stats=True is refused: PyTorch's
// quantized InstanceNorm normalizes by instance statistics whatever the float module
// tracked, so there is no one definition to hold both to.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/module.h"

namespace qconform {

enum class NormOp { LayerNorm, GroupNorm, InstanceNorm };

struct NormalizationOptions {
  NormOp op = NormOp::LayerNorm;
  std::vector<int64_t> normalized_shape;  // LayerNorm
  int64_t num_groups = 1;                 // GroupNorm
  int64_t num_channels = 1;               // GroupNorm's num_channels, InstanceNorm's num_features
  int64_t spatial_dims = 2;               // InstanceNorm{1,2,3}d
  double eps = 1e-5;
  double momentum = 0.1;                  // InstanceNorm (printed only)
  bool affine = true;                     // LayerNorm's elementwise_affine; GroupNorm's, InstanceNorm's affine
  bool track_running_stats = false;       // InstanceNorm: only false is modelled

  std::string float_name() const;  // "LayerNorm", "GroupNorm", "InstanceNorm2d"
  // torch.nn's: "(3, 4), eps=1e-05, elementwise_affine=True", "2, 4, eps=1e-05, affine=True",
  // "3, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False"
  std::string extra_repr() const;
  Shape parameter_shape() const;  // gamma's and beta's: normalized_shape, or (num_channels)
  int64_t state_dict_version() const;  // 1 (LayerNorm, GroupNorm), 2 (InstanceNorm: _NormBase)
  // torch.nn's constructor checks ("num_channels must be divisible by num_groups"), Error.
  void validate() const;
};

// The groups an input of `shape` is normalized in, as ATen's quantized kernel walks them:
// `count` groups of `size` consecutive elements; per channel (GroupNorm, InstanceNorm) the
// channel of element e of group g is (g * channels_per_group + e / (size / channels_per_group))
// % channels (the input's channels: the op takes them from the input, and only gamma's size
// holds them to the module's). Error with PyTorch's message when the input does not fit.
struct NormalizationGroups {
  int64_t count = 0;
  int64_t size = 0;
  bool per_channel = false;
  int64_t channels = 1;
  int64_t channels_per_group = 1;
};
NormalizationGroups normalization_groups(const NormalizationOptions& options, const Shape& input,
                                         const std::string& module_name);

class FloatNormalization : public Module {
 public:
  // weight and bias: absent when not affine; when affine and absent, torch.nn's initial
  // values (ones and zeros). Error when they do not have parameter_shape().
  FloatNormalization(NormalizationOptions options, std::optional<Tensor> weight = std::nullopt,
                     std::optional<Tensor> bias = std::nullopt);
  std::string name() const override { return options_.float_name(); }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override;  // "weight", "bias" when affine
  void load_state_dict(const StateDict& state) override;

  const NormalizationOptions& options() const { return options_; }
  const std::optional<Tensor>& weight() const { return weight_; }
  const std::optional<Tensor>& bias() const { return bias_; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  NormalizationOptions options_;
  std::optional<Tensor> weight_, bias_;
};

}  // namespace qconform
