#include "core/float/linear.h"

#include <Eigen/Core>

#include "core/error.h"
#include "core/float/parameters.h"

namespace qconform {
namespace {
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}

void check_linear_parameters(const Tensor& weight, const std::optional<Tensor>& bias,
                             const std::string& module_name) {
  if (weight.dim() != 2)
    throw Error(module_name + ": weight must be 2-D (out_features, in_features), got shape " +
                shape_to_string(weight.sizes));
  if (bias && (bias->dim() != 1 || bias->size(0) != weight.size(0)))
    throw Error(module_name + ": bias must have shape [" + std::to_string(weight.size(0)) +
                "], got " + shape_to_string(bias->sizes));
}

Tensor linear_forward(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias) {
  const int64_t in = weight.size(1), out = weight.size(0);
  const int64_t k = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = k == 0 ? 0 : x.numel() / k;
  if (x.dim() == 0 || k != in)
    throw Error("mat1 and mat2 shapes cannot be multiplied (" + std::to_string(rows) + "x" +
                std::to_string(k) + " and " + std::to_string(in) + "x" + std::to_string(out) + ")");
  Shape out_sizes = x.sizes;
  out_sizes.back() = out;
  Tensor y(out_sizes);
  Eigen::Map<const RowMajor> xm(x.data.data(), rows, in);
  Eigen::Map<const RowMajor> wm(weight.data.data(), out, in);
  Eigen::Map<RowMajor> ym(y.data.data(), rows, out);
  ym.noalias() = xm * wm.transpose();
  if (bias) {
    Eigen::Map<const Eigen::RowVectorXf> b(bias->data.data(), out);
    ym.rowwise() += b;
  }
  return y;
}

void relu_in_place(Tensor* y) {
  for (float& v : y->data)
    if (v < 0.0f) v = 0.0f;
}

std::string linear_extra_repr(int64_t in_features, int64_t out_features, bool bias) {
  return "in_features=" + std::to_string(in_features) + ", out_features=" +
         std::to_string(out_features) + ", bias=" + (bias ? "True" : "False");
}

FloatLinear::FloatLinear(Tensor weight, std::optional<Tensor> bias)
    : weight_(std::move(weight)), bias_(std::move(bias)) {
  check_linear_parameters(weight_, bias_, "Linear");
}

std::string FloatLinear::extra_repr() const {
  return linear_extra_repr(in_features(), out_features(), bias_.has_value());
}

ModuleOutput FloatLinear::forward(const ModuleInput& input) {
  Tensor y = linear_forward(expect_tensor(input, name()), weight_, bias_);
  if (fused_relu) relu_in_place(&y);
  return {y, std::nullopt};
}

StateDict FloatLinear::state_dict() const { return weight_bias_state_dict(weight_, bias_); }

void FloatLinear::load_state_dict(const StateDict& state) {
  WeightAndBias loaded = read_weight_bias(state, weight_.sizes, bias_.has_value(), {}, name());
  check_linear_parameters(loaded.weight, loaded.bias, name());
  weight_ = std::move(loaded.weight);
  bias_ = std::move(loaded.bias);
}

}  // namespace qconform
