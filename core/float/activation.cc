#include "core/float/activation.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/python_text.h"

namespace qconform {

std::string ActivationOptions::float_name() const {
  switch (op) {
    case ActivationOp::ReLU: return "ReLU";
    case ActivationOp::ReLU6: return "ReLU6";
    case ActivationOp::LeakyReLU: return "LeakyReLU";
    case ActivationOp::Hardswish: return "Hardswish";
    case ActivationOp::ELU: return "ELU";
    case ActivationOp::Sigmoid: return "Sigmoid";
    case ActivationOp::Hardsigmoid: return "Hardsigmoid";
    case ActivationOp::Tanh: return "Tanh";
    case ActivationOp::Dropout: return "Dropout";
  }
  return "?";
}

std::string ActivationOptions::extra_repr() const {
  const std::string in_place = inplace ? "inplace=True" : "";
  switch (op) {
    case ActivationOp::ReLU:
    case ActivationOp::ReLU6: return in_place;
    case ActivationOp::LeakyReLU: return "negative_slope=" + python_float(negative_slope) + (inplace ? ", " + in_place : "");
    case ActivationOp::ELU: return "alpha=" + python_float(alpha) + (inplace ? ", " + in_place : "");
    case ActivationOp::Dropout: return "p=" + python_float(p) + ", inplace=" + python_bool(inplace);
    case ActivationOp::Hardswish:
    case ActivationOp::Sigmoid:
    case ActivationOp::Hardsigmoid:
    case ActivationOp::Tanh: return "";
  }
  return "";
}

void ActivationOptions::validate() const {
  if (op == ActivationOp::Dropout && !(p >= 0 && p <= 1))
    throw Error("dropout probability has to be between 0 and 1, but got " + python_float(p));
}

OutputQParamsRule output_qparams_rule(ActivationOp op) {
  switch (op) {
    case ActivationOp::ReLU:
    case ActivationOp::ReLU6:
    case ActivationOp::Dropout: return OutputQParamsRule::SameAsInput;
    case ActivationOp::Sigmoid:
    case ActivationOp::Hardsigmoid:
    case ActivationOp::Tanh: return OutputQParamsRule::Fixed;
    case ActivationOp::LeakyReLU:
    case ActivationOp::Hardswish:
    case ActivationOp::ELU: return OutputQParamsRule::Observed;
  }
  return OutputQParamsRule::Observed;
}

QuantParams fixed_output_qparams(ActivationOp op) {
  // quint8 outputs as ATen's qsigmoid / qhardsigmoid / qtanh kernels set them: [0, 1] on
  // 256 levels from 0, [-1, 1] on 256 levels around 128.
  switch (op) {
    case ActivationOp::Sigmoid:
    case ActivationOp::Hardsigmoid: return QuantParams::per_tensor(DType::QUInt8, 1.0 / 256.0, 0);
    case ActivationOp::Tanh: return QuantParams::per_tensor(DType::QUInt8, 2.0 / 256.0, 128);
    default: break;
  }
  throw Error(ActivationOptions{op}.float_name() + " has no fixed output qparams");
}

float activation_value(const ActivationOptions& o, float x) {
  switch (o.op) {
    case ActivationOp::ReLU: return x > 0.0f || std::isnan(x) ? x : 0.0f;
    case ActivationOp::ReLU6: return std::isnan(x) ? x : std::min(std::max(x, 0.0f), 6.0f);
    case ActivationOp::LeakyReLU: return x > 0.0f ? x : x * static_cast<float>(o.negative_slope);
    case ActivationOp::Hardswish: return x * std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case ActivationOp::ELU: return x > 0.0f ? x : static_cast<float>(o.alpha) * (std::exp(x) - 1.0f);
    case ActivationOp::Sigmoid: return 1.0f / (1.0f + std::exp(-x));
    case ActivationOp::Hardsigmoid: return std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case ActivationOp::Tanh: return std::tanh(x);
    case ActivationOp::Dropout: return x;
  }
  return x;
}

double activation_lipschitz(const ActivationOptions& o) {
  switch (o.op) {
    case ActivationOp::LeakyReLU: return std::max(1.0, std::abs(o.negative_slope));
    case ActivationOp::Hardswish: return 1.5;  // (2x + 3) / 6 on [-3, 3], at most 1.5; 1 above
    case ActivationOp::ELU: return std::max(1.0, std::abs(o.alpha));  // alpha e^x for x < 0
    case ActivationOp::Sigmoid: return 0.25;
    case ActivationOp::Hardsigmoid: return 1.0 / 6.0;
    default: return 1.0;
  }
}

FloatActivation::FloatActivation(ActivationOptions options) : options_(options) { options_.validate(); }

void FloatActivation::load_state_dict(const StateDict& state) { state.check_keys({}, name()); }

ModuleOutput FloatActivation::forward(const ModuleInput& input) {
  Tensor y = expect_tensor(input, name());
  for (float& v : y.data) v = activation_value(options_, v);
  return {y, std::nullopt};
}

int64_t softmax_dim(const std::optional<int64_t>& dim, int64_t rank) {
  const int64_t d = dim ? *dim : (rank == 0 || rank == 1 || rank == 3 ? 0 : 1);
  const int64_t extent = std::max<int64_t>(rank, 1);
  if (d < -extent || d >= extent)
    throw Error("Dimension out of range (expected to be in range of [" + std::to_string(-extent) + ", " +
                std::to_string(extent - 1) + "], but got " + std::to_string(d) + ")");
  return d < 0 ? d + extent : d;
}

ModuleOutput FloatSoftmax::forward(const ModuleInput& input) {
  Tensor y = expect_tensor(input, name());
  const int64_t rank = y.dim();
  const int64_t d = softmax_dim(dim_, rank);
  if (rank == 0) {
    y.data[0] = 1.0f;
    return {y, std::nullopt};
  }
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= y.sizes[k];
  for (int64_t k = d + 1; k < rank; ++k) inner *= y.sizes[k];
  const int64_t n = y.sizes[d];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      float* base = y.data.data() + o * n * inner + i;
      float largest = -INFINITY;
      for (int64_t k = 0; k < n; ++k) largest = std::max(largest, base[k * inner]);
      float sum = 0.0f;
      for (int64_t k = 0; k < n; ++k) sum += base[k * inner] = std::exp(base[k * inner] - largest);
      for (int64_t k = 0; k < n; ++k) base[k * inner] /= sum;
    }
  return {y, std::nullopt};
}

}  // namespace qconform
