#include "core/float/fusion.h"

#include <cmath>
#include <functional>

#include "core/error.h"

namespace qconform {
namespace {

using Op = std::function<float(float, float)>;

[[noreturn]] void size_mismatch(int64_t a, int64_t b, int64_t dim) {
  throw Error("The size of tensor a (" + std::to_string(a) + ") must match the size of tensor b (" + std::to_string(b) +
              ") at non-singleton dimension " + std::to_string(dim));
}

// a (op) b for two vectors, broadcasting a length of one as ATen does.
std::vector<float> elementwise(const std::vector<float>& a, const std::vector<float>& b, const Op& op) {
  const size_t n = std::max(a.size(), b.size());
  if (a.size() != b.size() && a.size() != 1 && b.size() != 1)
    size_mismatch(static_cast<int64_t>(a.size()), static_cast<int64_t>(b.size()), 0);
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = op(a[a.size() == 1 ? 0 : i], b[b.size() == 1 ? 0 : i]);
  return out;
}

const Op kAdd = [](float x, float y) { return x + y; };
const Op kSub = [](float x, float y) { return x - y; };
const Op kMul = [](float x, float y) { return x * y; };

// r = rsqrt(running_var + eps), ATen's rsqrt: 1 / sqrt(v), two float32 roundings.
std::vector<float> inverse_std(const BatchNormState& s, double eps) {
  if (!s.running_var) throw Error("unsupported operand type(s) for +: 'NoneType' and 'float'");
  std::vector<float> r = s.running_var->data;
  for (float& v : r) v = 1.0f / std::sqrt(v + static_cast<float>(eps));
  return r;
}

// weight * scale, scale's channels along `dim` of the weight.
Tensor scale_channels(const Tensor& weight, const std::vector<float>& scale, int64_t dim) {
  const int64_t channels = weight.size(dim);
  const int64_t n = static_cast<int64_t>(scale.size());
  if (n != channels && n != 1) {
    if (channels == 1) throw Error("fuse_modules: folding a BatchNorm of " + std::to_string(n) +
                                   " features into a layer of one output channel would change the weight's shape");
    size_mismatch(channels, n, dim);
  }
  int64_t inner = 1;
  for (int64_t d = dim + 1; d < weight.dim(); ++d) inner *= weight.sizes[d];
  Tensor out = weight;
  for (int64_t i = 0; i < weight.numel(); ++i) out.data[i] = weight.data[i] * scale[n == 1 ? 0 : (i / inner) % channels];
  return out;
}

// The folded bias, which must have one value per output channel of the fused weight.
Tensor channel_tensor(std::vector<float> values, int64_t channels) {
  const int64_t n = static_cast<int64_t>(values.size());
  if (n != channels)
    throw Error("fuse_modules: the folded bias has " + std::to_string(n) + " element(s) for " +
                std::to_string(channels) +
                " output channels (a BatchNorm of one feature after a layer without bias; PyTorch 1.13 builds "
                "such a module and fails at its first call)");
  return Tensor({n}, std::move(values));
}

}  // namespace

WeightAndBias fold_batch_norm_into_conv(const Tensor& weight, const std::optional<Tensor>& bias,
                                        const FloatBatchNorm& bn, bool transposed) {
  const BatchNormState& s = bn.state();
  if (!bias && !s.running_mean)
    throw Error("zeros_like(): argument 'input' (position 1) must be Tensor, not NoneType");
  const int64_t features = bn.options().num_features;
  const std::vector<float> b = bias ? bias->data : std::vector<float>(s.running_mean->data.size(), 0.0f);
  const std::vector<float> gamma = s.weight ? s.weight->data : std::vector<float>(features, 1.0f);
  const std::vector<float> beta = s.bias ? s.bias->data : std::vector<float>(features, 0.0f);
  const std::vector<float> r = inverse_std(s, bn.options().eps);
  WeightAndBias fused;
  fused.weight = scale_channels(weight, elementwise(gamma, r, kMul), transposed ? 1 : 0);
  if (!s.running_mean) throw Error("unsupported operand type(s) for -: 'Tensor' and 'NoneType'");
  const std::vector<float> shifted = elementwise(elementwise(b, s.running_mean->data, kSub), r, kMul);
  fused.bias = channel_tensor(elementwise(elementwise(shifted, gamma, kMul), beta, kAdd), fused.weight.size(transposed ? 1 : 0));
  return fused;
}

WeightAndBias fold_batch_norm_into_linear(const Tensor& weight, const std::optional<Tensor>& bias,
                                          const FloatBatchNorm& bn) {
  const BatchNormState& s = bn.state();
  if (!bias && !s.running_mean)
    throw Error("zeros_like(): argument 'input' (position 1) must be Tensor, not NoneType");
  const std::vector<float> b = bias ? bias->data : std::vector<float>(s.running_mean->data.size(), 0.0f);
  const std::vector<float> r = inverse_std(s, bn.options().eps);
  if (!s.weight) throw Error("unsupported operand type(s) for *: 'NoneType' and 'Tensor'");
  const std::vector<float> scale = elementwise(s.weight->data, r, kMul);
  WeightAndBias fused;
  fused.weight = scale_channels(weight, scale, 0);
  if (!s.running_mean) throw Error("unsupported operand type(s) for -: 'Tensor' and 'NoneType'");
  std::vector<float> shifted = elementwise(elementwise(b, s.running_mean->data, kSub), scale, kMul);
  if (!s.bias) throw Error("unsupported operand type(s) for +: 'Tensor' and 'NoneType'");
  fused.bias = channel_tensor(elementwise(shifted, s.bias->data, kAdd), fused.weight.size(0));
  return fused;
}

}  // namespace qconform
