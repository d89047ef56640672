#include "reference/weight_qparams.h"

#include "core/error.h"
#include "core/quantize.h"

namespace qconform {

QuantParams observe_weight(const ObserverFactory& factory, const Tensor& weight) {
  auto observer = factory();
  if (observer->dtype() == DType::Float16) return QuantParams::float16();
  observer->observe(weight);
  return as_tensor_qparams(observer->calculate_qparams());
}

void check_reference_weight_qparams(const QuantParams& qp, const std::string& module_name) {
  if (qp.dtype == DType::Float32 || qp.dtype == DType::Float16) return;
  if (qp.qscheme != QScheme::PerTensorAffine && qp.qscheme != QScheme::PerChannelAffine &&
      qp.qscheme != QScheme::PerChannelAffineFloatQParams)
    throw Error("qscheme: " + to_string(qp.qscheme) + " is not support in reference quantized " +
                module_name);
  validate(qp);
}

QTensor quantize_reference_weight(const Tensor& weight, const QuantParams& qp) {
  if (qp.dtype == DType::Float32)
    throw Error("Unsupported dtype and qscheme: " + to_string(qp.dtype) + ", " + to_string(qp.qscheme));
  return quantize(weight, qp);
}

Tensor fake_quantize_reference_weight(const Tensor& weight, const QuantParams& qp) {
  if (qp.dtype == DType::Float32) return weight;
  return dequantize(quantize(weight, qp));
}

std::vector<std::string> weight_qparams_keys(const std::string& prefix) {
  return {prefix + "weight_scale", prefix + "weight_zero_point", prefix + "weight_axis",
          prefix + "weight_qscheme", prefix + "weight_dtype"};
}

void save_weight_qparams(StateDict* state, const std::string& prefix, const QuantParams& qp) {
  const bool quantized = is_integer_quantized(qp.dtype);
  const bool per_channel = quantized && qp.per_channel();
  const Shape shape = per_channel ? Shape{qp.channels()} : Shape{};
  Tensor scale(shape);
  IntTensor zero_point{shape, {}, /*is_int32=*/true};
  if (!quantized) {
    scale.data = {1.0f};
    zero_point.values = {0};
  } else {
    for (size_t i = 0; i < qp.scales.size(); ++i) {
      scale.data[i] = static_cast<float>(qp.scales[i]);
      zero_point.values.push_back(static_cast<int64_t>(qp.zero_points[i]));
    }
  }
  if (qp.qscheme == QScheme::PerChannelAffineFloatQParams) {
    // Float zero points are stored as a float tensor, as PyTorch does.
    Tensor float_zero_point(shape);
    for (size_t i = 0; i < qp.zero_points.size(); ++i)
      float_zero_point.data[i] = static_cast<float>(qp.zero_points[i]);
    state->set(prefix + "weight_scale", scale);
    state->set(prefix + "weight_zero_point", float_zero_point);
  } else {
    state->set(prefix + "weight_scale", scale);
    state->set(prefix + "weight_zero_point", zero_point);
  }
  state->set(prefix + "weight_axis", IntTensor{{}, {per_channel ? qp.axis : 0}, true});
  state->set(prefix + "weight_qscheme", qp.qscheme);
  state->set(prefix + "weight_dtype", qp.dtype);
}

QuantParams load_weight_qparams(const StateDict& state, const std::string& prefix) {
  QuantParams qp;
  qp.dtype = state.at(prefix + "weight_dtype").as<DType>(prefix + "weight_dtype");
  qp.qscheme = state.at(prefix + "weight_qscheme").as<QScheme>(prefix + "weight_qscheme");
  if (!is_integer_quantized(qp.dtype)) {
    if (qp.dtype == DType::Float16) return QuantParams::float16();
    qp.scales = {1.0};
    qp.zero_points = {0.0};
    return qp;
  }
  const Tensor& scale = state.at(prefix + "weight_scale").as<Tensor>(prefix + "weight_scale");
  qp.scales.assign(scale.data.begin(), scale.data.end());
  const StateValue& zp = state.at(prefix + "weight_zero_point");
  if (zp.is<Tensor>()) {
    const Tensor& z = zp.as<Tensor>(prefix + "weight_zero_point");
    qp.zero_points.assign(z.data.begin(), z.data.end());
  } else {
    const IntTensor& z = zp.as<IntTensor>(prefix + "weight_zero_point");
    qp.zero_points.assign(z.values.begin(), z.values.end());
  }
  const IntTensor& axis = state.at(prefix + "weight_axis").as<IntTensor>(prefix + "weight_axis");
  qp.axis = axis.values.empty() ? 0 : axis.values[0];
  qp.quant_min = dtype_min(qp.dtype);
  qp.quant_max = dtype_max(qp.dtype);
  validate(qp);
  return qp;
}

}  // namespace qconform
