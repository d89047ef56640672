#include "core/float/functional.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace qconform {

std::string FunctionalOptions::method() const {
  switch (op) {
    case FunctionalOp::Add: return "add";
    case FunctionalOp::AddRelu: return "add_relu";
    case FunctionalOp::Mul: return "mul";
    case FunctionalOp::AddScalar: return "add_scalar";
    case FunctionalOp::MulScalar: return "mul_scalar";
    case FunctionalOp::Cat: return "cat";
    case FunctionalOp::Matmul: return "matmul";
  }
  return "?";
}

bool observes_output(FunctionalOp op) { return op != FunctionalOp::AddScalar && op != FunctionalOp::MulScalar; }

QuantParams scalar_op_output_qparams(const FunctionalOptions& o, const QuantParams& input) {
  const double s = input.scale(), c = o.scalar;
  const int64_t z = input.zero_point();
  const int64_t q_min = 0, q_max = 255;
  if (o.op == FunctionalOp::AddScalar) {
    const int64_t c_q = static_cast<int64_t>(std::nearbyint(c / s));  // the scalar on the input's grid
    if (q_min > z - c_q)
      return QuantParams::per_tensor(DType::QUInt8,
                                     (static_cast<double>(q_max) - (z - c_q)) / (static_cast<double>(q_max) - q_min) * s,
                                     q_min);
    if (q_max < z - c_q)
      return QuantParams::per_tensor(DType::QUInt8,
                                     (static_cast<double>(z - c_q) - q_min) / (static_cast<double>(q_max) - q_min) * s,
                                     q_max);
    return QuantParams::per_tensor(DType::QUInt8, s, z - c_q);
  }
  if (o.op == FunctionalOp::MulScalar) {
    if (c > 0.0) return QuantParams::per_tensor(DType::QUInt8, c * s, z);
    if (c == 0.0) return QuantParams::per_tensor(DType::QUInt8, 1.0, 0);
    return QuantParams::per_tensor(DType::QUInt8, std::abs(c) * s, q_max - (z - q_min));
  }
  throw Error("FloatFunctional." + o.method() + ": its output qparams are observed, not derived");
}

int64_t cat_dim(const std::vector<Shape>& shapes, int64_t dim) {
  if (shapes.empty()) throw Error("torch.cat(): expected a non-empty list of Tensors");
  const int64_t rank = static_cast<int64_t>(shapes[0].size());
  if (dim < -rank || dim >= rank)
    throw Error("Dimension out of range (expected to be in range of [" + std::to_string(-rank) + ", " +
                std::to_string(rank - 1) + "], but got " + std::to_string(dim) + ")");
  const int64_t d = dim < 0 ? dim + rank : dim;
  for (size_t i = 1; i < shapes.size(); ++i) {
    if (static_cast<int64_t>(shapes[i].size()) != rank)
      throw Error("Tensors must have same number of dimensions: got " + std::to_string(rank) + " and " +
                  std::to_string(shapes[i].size()));
    for (int64_t k = 0; k < rank; ++k)
      if (k != d && shapes[i][k] != shapes[0][k])
        throw Error("Sizes of tensors must match except in dimension " + std::to_string(d) + ". Expected size " +
                    std::to_string(shapes[0][k]) + " but got size " + std::to_string(shapes[i][k]) +
                    " for tensor number " + std::to_string(i) + " in the list.");
  }
  return d;
}

Shape cat_shape(const std::vector<Shape>& shapes, int64_t dim) {
  const int64_t d = cat_dim(shapes, dim);
  Shape out = shapes[0];
  for (size_t i = 1; i < shapes.size(); ++i) out[d] += shapes[i][d];
  return out;
}

Shape broadcast_shape(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t k = 0; k < rank; ++k) {
    const int64_t da = k < rank - a.size() ? 1 : a[k - (rank - a.size())];
    const int64_t db = k < rank - b.size() ? 1 : b[k - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      throw Error("The size of tensor a (" + std::to_string(da) + ") must match the size of tensor b (" +
                  std::to_string(db) + ") at non-singleton dimension " + std::to_string(k));
    out[k] = da == 1 ? db : da;
  }
  return out;
}

// The flat index into an operand of shape `shape` (right-aligned, size-1 dimensions
// broadcast) of the output element at `index` of `out`.
int64_t broadcast_index(const Shape& out, const Shape& shape, int64_t index) {
  int64_t result = 0, stride = 1;
  for (size_t k = out.size(); k-- > 0;) {
    const int64_t coordinate = index % out[k];
    index /= out[k];
    const size_t offset = out.size() - shape.size();
    if (k < offset) continue;
    const int64_t size = shape[k - offset];
    if (size != 1) result += coordinate * stride;
    stride *= size;
  }
  return result;
}

Tensor float_functional(const FunctionalOptions& o, const Tensor& x, const std::vector<const Tensor*>& others) {
  const size_t operands = o.op == FunctionalOp::Cat ? others.size() : (o.binary() ? 1 : 0);
  if (others.size() != operands)
    throw Error("FloatFunctional." + o.method() + ": takes " + std::to_string(operands + 1) + " operand(s), got " +
                std::to_string(others.size() + 1));
  if (o.op == FunctionalOp::Cat) {
    std::vector<Shape> shapes{x.sizes};
    std::vector<const Tensor*> parts{&x};
    for (const Tensor* t : others) {
      shapes.push_back(t->sizes);
      parts.push_back(t);
    }
    const int64_t d = cat_dim(shapes, o.dim);
    Tensor y(cat_shape(shapes, o.dim));
    // outer x (size along d) x inner blocks, copied part after part
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < d; ++k) outer *= x.sizes[k];
    for (size_t k = d + 1; k < x.sizes.size(); ++k) inner *= x.sizes[k];
    float* out = y.data.data();
    for (int64_t i = 0; i < outer; ++i)
      for (const Tensor* part : parts) {
        const int64_t block = part->sizes[d] * inner;
        std::copy(part->data.begin() + i * block, part->data.begin() + (i + 1) * block, out);
        out += block;
      }
    return y;
  }
  if (o.with_scalar()) {
    Tensor y = x;
    const float c = static_cast<float>(o.scalar);
    for (float& v : y.data) v = o.op == FunctionalOp::AddScalar ? v + c : v * c;
    return y;
  }
  const Tensor& other = *others[0];
  if (o.op == FunctionalOp::Matmul) {  // per batch, (n, k) x (k, m), sums in k's order
    Tensor y(matmul_shape(x.sizes, other.sizes, "FloatFunctional"));
    const int64_t n = x.sizes[x.dim() - 2], k = x.sizes.back(), m = other.sizes.back();
    const int64_t batches = n * m ? y.numel() / (n * m) : 0;
    for (int64_t b = 0; b < batches; ++b)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) {
          float sum = 0.0f;
          for (int64_t t = 0; t < k; ++t) sum += x.data[(b * n + i) * k + t] * other.data[(b * k + t) * m + j];
          y.data[(b * n + i) * m + j] = sum;
        }
    return y;
  }
  Tensor y(broadcast_shape(x.sizes, other.sizes));
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float a = x.data[broadcast_index(y.sizes, x.sizes, i)];
    const float b = other.data[broadcast_index(y.sizes, other.sizes, i)];
    float v = o.op == FunctionalOp::Mul ? a * b : a + b;
    if (o.op == FunctionalOp::AddRelu) v = v > 0.0f || std::isnan(v) ? v : 0.0f;
    y.data[i] = v;
  }
  return y;
}

Shape matmul_shape(const Shape& a, const Shape& b, const std::string& module_name) {
  const auto dims = [](const Shape& s) {
    std::string text;
    for (size_t i = 0; i < s.size(); ++i) text += (i ? ", " : "") + std::to_string(s[i]);
    return text;
  };
  if (a.size() < 2 || a.size() != b.size() || !std::equal(a.begin(), a.end() - 2, b.begin()))
    throw Error(module_name + ".matmul: operands " + shape_to_string(a) + " and " + shape_to_string(b) +
                ": the model covers operands of one rank >= 2 with equal batch dimensions (no broadcasting)");
  const int64_t k = a.back(), k2 = b[b.size() - 2];
  if (k != k2) {
    if (a.size() == 2)
      throw Error("mat1 and mat2 shapes cannot be multiplied (" + std::to_string(a[0]) + "x" + std::to_string(k) +
                  " and " + std::to_string(k2) + "x" + std::to_string(b[1]) + ")");
    int64_t batch = 1;
    for (size_t i = 0; i + 2 < a.size(); ++i) batch *= a[i];
    throw Error("Expected size for first two dimensions of batch2 tensor to be: [" + dims({batch, k}) + "] but got: [" +
                dims({batch, k2}) + "].");
  }
  Shape out = a;
  out.back() = b.back();
  return out;
}

ModuleOutput FloatFunctionalOp::forward(const ModuleInput& input) {
  const Tensor& x = expect_tensor(input, name());
  std::vector<const Tensor*> others;
  for (const Value& v : input.others) {
    const auto* t = std::get_if<Tensor>(&v);
    if (!t) throw Error(name() + "." + options_.method() + ": expects float tensors");
    others.push_back(t);
  }
  return {float_functional(options_, x, others), std::nullopt};
}

}  // namespace qconform
