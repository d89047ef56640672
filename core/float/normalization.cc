#include "core/float/normalization.h"

#include <cmath>

#include "core/error.h"
#include "core/python_text.h"

namespace qconform {

std::string NormalizationOptions::float_name() const {
  switch (op) {
    case NormOp::LayerNorm: return "LayerNorm";
    case NormOp::GroupNorm: return "GroupNorm";
    case NormOp::InstanceNorm: return "InstanceNorm" + std::to_string(spatial_dims) + "d";
  }
  return "?";
}

std::string NormalizationOptions::extra_repr() const {
  const std::string e = "eps=" + python_float(eps);
  switch (op) {
    case NormOp::LayerNorm: {
      std::string shape = "(";
      for (size_t i = 0; i < normalized_shape.size(); ++i)
        shape += (i ? ", " : "") + std::to_string(normalized_shape[i]);
      shape += normalized_shape.size() == 1 ? ",)" : ")";
      return shape + ", " + e + ", elementwise_affine=" + python_bool(affine);
    }
    case NormOp::GroupNorm:
      return std::to_string(num_groups) + ", " + std::to_string(num_channels) + ", " + e + ", affine=" +
             python_bool(affine);
    case NormOp::InstanceNorm:
      return std::to_string(num_channels) + ", " + e + ", momentum=" + python_float(momentum) +
             ", affine=" + python_bool(affine) + ", track_running_stats=" + python_bool(track_running_stats);
  }
  return "";
}

Shape NormalizationOptions::parameter_shape() const {
  return op == NormOp::LayerNorm ? normalized_shape : Shape{num_channels};
}

int64_t NormalizationOptions::state_dict_version() const { return op == NormOp::InstanceNorm ? 2 : 1; }

void NormalizationOptions::validate() const {
  switch (op) {
    case NormOp::LayerNorm:
      if (normalized_shape.empty())
        throw Error("Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one element, "
                    "but got normalized_shape = []");
      for (int64_t d : normalized_shape)
        if (d < 1) throw Error("LayerNorm: normalized_shape " + shape_to_string(normalized_shape) + " has a size below 1");
      break;
    case NormOp::GroupNorm:
      if (num_groups < 1) throw Error("GroupNorm: num_groups must be at least 1, got " + std::to_string(num_groups));
      if (num_channels % num_groups != 0) throw Error("num_channels must be divisible by num_groups");
      break;
    case NormOp::InstanceNorm:
      if (spatial_dims < 1 || spatial_dims > 3)
        throw Error("InstanceNorm: spatial_dims must be 1, 2 or 3, got " + std::to_string(spatial_dims));
      if (track_running_stats)
        throw Error(float_name() + " with track_running_stats=True is not modelled: PyTorch 1.13's quantized "
                    "InstanceNorm normalizes by instance statistics whatever the float module tracked");
      break;
  }
  if (num_channels < 1) throw Error(float_name() + ": the number of channels must be at least 1");
}

NormalizationGroups normalization_groups(const NormalizationOptions& o, const Shape& input,
                                         const std::string& module_name) {
  NormalizationGroups g;
  const int64_t rank = static_cast<int64_t>(input.size());
  if (o.op == NormOp::LayerNorm) {
    const int64_t k = static_cast<int64_t>(o.normalized_shape.size());
    bool fits = rank >= k;
    for (int64_t i = 0; fits && i < k; ++i) fits = input[rank - k + i] == o.normalized_shape[i];
    if (!fits) {
      std::string dims;
      for (int64_t d : o.normalized_shape) dims += ", " + std::to_string(d);
      throw Error(module_name + ": Given normalized_shape=" + shape_to_string(o.normalized_shape) +
                  ", expected input with shape [*" + dims + "], but got input of size" + shape_to_string(input));
    }
    g.size = numel_of(o.normalized_shape);
    g.count = g.size == 0 ? 0 : numel_of(input) / g.size;
    return g;
  }
  // GroupNorm and InstanceNorm (quantized::group_norm with one group per channel).
  if (rank < 3) throw Error(module_name + ": Expected normalized_shape to be at least 3-dimensional");
  const int64_t groups = o.op == NormOp::GroupNorm ? o.num_groups : input[1];
  if (input[1] % groups != 0) throw Error(module_name + ": Expected channels to be divisible by groups");
  g.per_channel = true;
  g.channels = input[1];
  g.channels_per_group = input[1] / groups;
  g.count = input[0] * groups;
  g.size = g.count == 0 ? 0 : numel_of(input) / g.count;
  return g;
}

FloatNormalization::FloatNormalization(NormalizationOptions options, std::optional<Tensor> weight,
                                       std::optional<Tensor> bias)
    : options_(std::move(options)), weight_(std::move(weight)), bias_(std::move(bias)) {
  options_.validate();
  const Shape shape = options_.parameter_shape();
  if (options_.affine) {
    if (!weight_) weight_ = Tensor(shape, std::vector<float>(numel_of(shape), 1.0f));
    if (!bias_) bias_ = Tensor(shape, std::vector<float>(numel_of(shape), 0.0f));
    if (weight_->sizes != shape || bias_->sizes != shape)
      throw Error(name() + ": weight and bias must have shape " + shape_to_string(shape) + ", got " +
                  shape_to_string(weight_->sizes) + " and " + shape_to_string(bias_->sizes));
  } else if (weight_ || bias_) {
    throw Error(name() + ": " + (options_.op == NormOp::LayerNorm ? "elementwise_affine" : "affine") +
                "=False holds no weight or bias");
  }
}

StateDict FloatNormalization::state_dict() const {
  StateDict state;
  if (weight_) state.set("weight", *weight_);
  if (bias_) state.set("bias", *bias_);
  state.versions[""] = options_.state_dict_version();
  return state;
}

void FloatNormalization::load_state_dict(const StateDict& state) {
  if (!options_.affine) {
    state.check_keys({}, name());
    return;
  }
  state.check_keys({"weight", "bias"}, name());
  Tensor w = state.at("weight").as<Tensor>("weight"), b = state.at("bias").as<Tensor>("bias");
  for (const auto& [key, t] : {std::pair<const char*, const Tensor&>{"weight", w}, {"bias", b}})
    if (t.sizes != weight_->sizes)
      throw Error("size mismatch for " + std::string(key) + ": copying a param with shape " + shape_to_string(t.sizes) +
                  ", the shape in current model is " + shape_to_string(weight_->sizes) + ".");
  weight_ = std::move(w);
  bias_ = std::move(b);
}

ModuleOutput FloatNormalization::forward(const ModuleInput& input) {
  Tensor y = expect_tensor(input, name());
  const NormalizationGroups g = normalization_groups(options_, y.sizes, name());
  if (g.per_channel && weight_ && weight_->numel() != g.channels)
    throw Error(name() + ": Expected weight to be a vector of size equal to the number of channels in input, but got "
                "weight of shape " + shape_to_string(weight_->sizes) + " and input of shape " + shape_to_string(y.sizes));
  const int64_t plane = g.per_channel ? g.size / g.channels_per_group : 0;
  for (int64_t i = 0; i < g.count; ++i) {
    float* x = y.data.data() + i * g.size;
    double sum = 0, squares = 0;
    for (int64_t e = 0; e < g.size; ++e) sum += x[e];
    const double mean = sum / static_cast<double>(g.size);
    for (int64_t e = 0; e < g.size; ++e) squares += (x[e] - mean) * (x[e] - mean);
    const double inv_std = 1.0 / std::sqrt(squares / static_cast<double>(g.size) + options_.eps);
    for (int64_t e = 0; e < g.size; ++e) {
      const int64_t p = g.per_channel ? (i * g.channels_per_group + e / plane) % g.channels : e;
      const double gamma = weight_ ? weight_->data[p] : 1.0, beta = bias_ ? bias_->data[p] : 0.0;
      x[e] = static_cast<float>((x[e] - mean) * inv_std * gamma + beta);
    }
  }
  return {y, std::nullopt};
}

}  // namespace qconform
