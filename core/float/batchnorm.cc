#include "core/float/batchnorm.h"

#include <cmath>

#include "core/error.h"
#include "core/python_text.h"

namespace qconform {

std::string BatchNormOptions::float_name(bool relu) const {
  return (relu ? "BNReLU" : "BatchNorm") + std::to_string(spatial_dims) + "d";
}

std::string BatchNormOptions::extra_repr() const {
  return std::to_string(num_features) + ", eps=" + python_float(eps) + ", momentum=" + python_float(momentum) +
         ", affine=" + python_bool(affine) + ", track_running_stats=" + python_bool(track_running_stats);
}

bool BatchNormOptions::accepts_rank(int64_t rank) const {
  return spatial_dims == 1 ? rank == 2 || rank == 3 : rank == spatial_dims + 2;
}

void BatchNormOptions::validate() const {
  if (spatial_dims < 1 || spatial_dims > 3)
    throw Error("BatchNorm: spatial_dims must be 1, 2 or 3, got " + std::to_string(spatial_dims));
  if (num_features < 1) throw Error("BatchNorm: num_features must be at least 1, got " + std::to_string(num_features));
}

namespace {

Tensor filled(int64_t channels, float value) { return Tensor({channels}, std::vector<float>(channels, value)); }

void check_channel_tensor(const std::optional<Tensor>& t, int64_t channels, const std::string& key,
                          const std::string& module_name) {
  if (t && t->sizes != Shape{channels})
    throw Error(module_name + ": " + key + " has shape " + shape_to_string(t->sizes) + ", expected [" +
                std::to_string(channels) + "]");
}

}  // namespace

FloatBatchNorm::FloatBatchNorm(BatchNormOptions options, BatchNormState state)
    : options_(options), state_(std::move(state)) {
  options_.validate();
  const int64_t c = options_.num_features;
  if (options_.affine) {
    if (!state_.weight) state_.weight = filled(c, 1.0f);
    if (!state_.bias) state_.bias = filled(c, 0.0f);
  } else if (state_.weight || state_.bias) {
    throw Error(name() + ": affine=False holds no weight or bias");
  }
  if (options_.track_running_stats) {
    if (!state_.running_mean) state_.running_mean = filled(c, 0.0f);
    if (!state_.running_var) state_.running_var = filled(c, 1.0f);
  } else if (state_.running_mean || state_.running_var) {
    throw Error(name() + ": track_running_stats=False holds no running statistics");
  }
  check_channel_tensor(state_.weight, c, "weight", name());
  check_channel_tensor(state_.bias, c, "bias", name());
  check_channel_tensor(state_.running_mean, c, "running_mean", name());
  check_channel_tensor(state_.running_var, c, "running_var", name());
}

StateDict batch_norm_state_dict(const BatchNormState& s) {
  StateDict state;
  if (s.weight) state.set("weight", *s.weight);
  if (s.bias) state.set("bias", *s.bias);
  if (s.running_mean) {
    state.set("running_mean", *s.running_mean);
    state.set("running_var", *s.running_var);
    state.set("num_batches_tracked", IntTensor{{}, {s.num_batches_tracked}, false});
  }
  state.versions[""] = 2;
  return state;
}

BatchNormState read_batch_norm_state(const StateDict& dict, const BatchNormState& current) {
  BatchNormState loaded = current;
  const auto read = [&](const std::string& key, std::optional<Tensor>* into) {
    if (!*into) return;
    const Tensor& t = dict.at(key).as<Tensor>(key);
    if (t.sizes != (*into)->sizes)
      throw Error("size mismatch for " + key + ": copying a param with shape " + shape_to_string(t.sizes) +
                  ", the shape in current model is " + shape_to_string((*into)->sizes) + ".");
    *into = t;
  };
  read("weight", &loaded.weight);
  read("bias", &loaded.bias);
  read("running_mean", &loaded.running_mean);
  read("running_var", &loaded.running_var);
  if (current.running_mean) {
    const IntTensor& n = dict.at("num_batches_tracked").as<IntTensor>("num_batches_tracked");
    if (n.values.size() != 1) throw Error("size mismatch for num_batches_tracked: expected one element");
    loaded.num_batches_tracked = n.values[0];
  }
  return loaded;
}

StateDict FloatBatchNorm::state_dict() const {
  StateDict own = batch_norm_state_dict(state_);
  if (!fused_relu) return own;
  StateDict sequential = prefixed_state_dict(own, "0");
  sequential.versions[""] = 1;  // nn.Sequential has no _version of its own
  return sequential;
}

void FloatBatchNorm::load_state_dict(const StateDict& state) {
  const StateDict own = fused_relu ? state_dict_under(state, "0") : state;
  std::vector<std::string> keys;
  if (options_.affine) keys.insert(keys.end(), {"weight", "bias"});
  if (options_.track_running_stats) keys.insert(keys.end(), {"running_mean", "running_var", "num_batches_tracked"});
  if (fused_relu) {
    std::vector<std::string> prefixed;
    for (const auto& k : keys) prefixed.push_back("0." + k);
    state.check_keys(prefixed, name());
  } else {
    state.check_keys(keys, name());
  }
  state_ = read_batch_norm_state(own, state_);
}

void check_batch_norm_input(const BatchNormOptions& o, const Shape& input, const std::string& module_name) {
  const int64_t rank = static_cast<int64_t>(input.size());
  if (!o.accepts_rank(rank)) {
    const std::string expected = o.spatial_dims == 1 ? "2D or 3D" : std::to_string(o.spatial_dims + 2) + "D";
    throw Error(module_name + ": expected " + expected + " input (got " + std::to_string(rank) + "D input)");
  }
  if (input[1] != o.num_features)
    throw Error(module_name + ": running_mean should contain " + std::to_string(input[1]) + " elements not " +
                std::to_string(o.num_features));
}

ModuleOutput FloatBatchNorm::forward(const ModuleInput& input) {
  if (training)
    throw Error(name() + " is in training mode: the harness runs BatchNorm in evaluation mode only (call eval())");
  if (!options_.track_running_stats)
    throw Error(name() + ": track_running_stats=False normalizes by batch statistics, which the harness does not "
                         "model");
  Tensor y = expect_tensor(input, name());
  check_batch_norm_input(options_, y.sizes, name());
  const int64_t channels = options_.num_features;
  int64_t plane = 1;
  for (int64_t d = 2; d < y.dim(); ++d) plane *= y.sizes[d];
  const float eps = static_cast<float>(options_.eps);
  for (int64_t c = 0; c < channels; ++c) {
    const float invstd = 1.0f / std::sqrt(state_.running_var->data[c] + eps);
    const float alpha = (state_.weight ? state_.weight->data[c] : 1.0f) * invstd;
    const float beta = (state_.bias ? state_.bias->data[c] : 0.0f) - state_.running_mean->data[c] * alpha;
    for (int64_t n = 0; n < y.sizes[0]; ++n) {
      float* row = y.data.data() + (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) {
        row[i] = row[i] * alpha + beta;
        if (fused_relu && row[i] < 0.0f) row[i] = 0.0f;
      }
    }
  }
  return {y, std::nullopt};
}

}  // namespace qconform
