#include "core/float/parameters.h"

#include "core/error.h"

namespace qconform {

StateDict weight_bias_state_dict(const Tensor& weight, const std::optional<Tensor>& bias) {
  StateDict state;
  state.set("weight", weight);
  if (bias) state.set("bias", *bias);
  state.versions[""] = 1;
  return state;
}

WeightAndBias read_weight_bias(const StateDict& state, const Shape& current_weight, bool has_bias,
                               const std::vector<std::string>& extra_keys, const std::string& module_name) {
  std::vector<std::string> keys{"weight"};
  if (has_bias) keys.push_back("bias");
  keys.insert(keys.end(), extra_keys.begin(), extra_keys.end());
  state.check_keys(keys, module_name);
  WeightAndBias result{state.at("weight").as<Tensor>("weight"), std::nullopt};
  if (has_bias) result.bias = state.at("bias").as<Tensor>("bias");
  if (result.weight.sizes != current_weight)
    throw Error("size mismatch for weight: copying a param with shape " + shape_to_string(result.weight.sizes) +
                ", the shape in current model is " + shape_to_string(current_weight) + ".");
  return result;
}

}  // namespace qconform
