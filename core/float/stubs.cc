#include "core/float/stubs.h"

#include "core/error.h"

namespace qconform {

void QuantStub::load_state_dict(const StateDict& state) { state.check_keys({}, name()); }
ModuleOutput QuantStub::forward(const ModuleInput& input) { return ModuleOutput{input.input, input.hidden}; }
void DeQuantStub::load_state_dict(const StateDict& state) { state.check_keys({}, name()); }
void Identity::load_state_dict(const StateDict& state) { state.check_keys({}, name()); }
ModuleOutput DeQuantStub::forward(const ModuleInput& input) { return ModuleOutput{input.input, input.hidden}; }

void set_output_qparams_buffers(StateDict& state, const QuantParams& qparams) {
  state.set("scale", Tensor(Shape{}, {static_cast<float>(qparams.scale())}));
  state.set("zero_point", IntTensor{{}, {qparams.zero_point()}, false});
}

QuantParams read_output_qparams_buffers(const StateDict& state, const std::string& module_name) {
  const Tensor& scale = state.at("scale").as<Tensor>("scale");
  const IntTensor& zero_point = state.at("zero_point").as<IntTensor>("zero_point");
  if (scale.numel() != 1 || zero_point.values.size() != 1)
    throw Error(module_name + ": state_dict['scale'] and state_dict['zero_point'] must hold one value each");
  const QuantParams q = QuantParams::per_tensor(DType::QUInt8, scale.data[0], zero_point.values[0]);
  validate(q);
  return q;
}

StateDict quantize_state_dict(const QuantParams& qparams) {
  StateDict state;
  state.set("scale", Tensor(Shape{1}, {static_cast<float>(qparams.scale())}));
  state.set("zero_point", IntTensor{{1}, {qparams.zero_point()}, false});
  return state;
}

QuantParams parse_quantize_state_dict(const StateDict& state, DType dtype, const std::string& module_name) {
  state.check_keys({"scale", "zero_point"}, module_name);
  const Tensor& scale = state.at("scale").as<Tensor>("scale");
  const IntTensor& zero_point = state.at("zero_point").as<IntTensor>("zero_point");
  if (scale.data.size() != 1 || zero_point.values.size() != 1)
    throw Error(module_name + ".load_state_dict: 'scale' and 'zero_point' must hold one element each");
  return QuantParams::per_tensor(dtype, scale.data[0], zero_point.values[0]);  // validates
}

}  // namespace qconform
