#pragma once
// What every reference module (torch.ao.nn.quantized.reference) shares: the weight's
// qparams, their validation, fake-quantization of the weight, and the state_dict keys
// weight_scale / weight_zero_point / weight_axis / weight_qscheme / weight_dtype.
#include <string>

#include "core/observers.h"
#include "core/state_dict.h"
#include "core/tensor.h"

namespace qconform {

// Reference modules accept qscheme per_tensor_affine, per_channel_affine and
// per_channel_affine_float_qparams (or a float dtype, meaning "not quantized").
// Throws Error with PyTorch's text:
// "qscheme: <qscheme> is not support in reference quantized <module name>".
void check_reference_weight_qparams(const QuantParams& qparams, const std::string& module_name);

// A fresh observer from `factory` watches the weight once; its qparams as a tensor's
// (float16 observers give QuantParams::float16()). What every conversion does with a weight.
QuantParams observe_weight(const ObserverFactory& factory, const Tensor& weight);

// _quantize_weight / _quantize_and_dequantize_weight.
QTensor quantize_reference_weight(const Tensor& weight, const QuantParams& qparams);
Tensor fake_quantize_reference_weight(const Tensor& weight, const QuantParams& qparams);

// _save_weight_qparams / _load_weight_qparams, with `prefix` ("" or "weight_ih_l0_").
void save_weight_qparams(StateDict* state, const std::string& prefix, const QuantParams& qparams);
QuantParams load_weight_qparams(const StateDict& state, const std::string& prefix);
std::vector<std::string> weight_qparams_keys(const std::string& prefix);

}  // namespace qconform
