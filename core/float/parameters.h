#pragma once
// The "weight" and "bias" entries every float and reference module with a weight saves
// (torch.nn.Module's parameters, state_dict version 1), and their strict loading.
#include <optional>
#include <string>
#include <vector>

#include "core/state_dict.h"
#include "core/tensor.h"

namespace qconform {

struct WeightAndBias {
  Tensor weight;
  std::optional<Tensor> bias;
};

// "weight", then "bias" when there is one; versions[""] = 1.
StateDict weight_bias_state_dict(const Tensor& weight, const std::optional<Tensor>& bias);

// Checks that `state` holds exactly "weight", "bias" (when the module has one) and
// `extra_keys`, and that the weight has the module's current shape (PyTorch's "size
// mismatch for weight: ..." otherwise); returns the two. Nothing is changed here.
WeightAndBias read_weight_bias(const StateDict& state, const Shape& current_weight, bool has_bias,
                               const std::vector<std::string>& extra_keys, const std::string& module_name);

}  // namespace qconform
