#pragma once
// torch.ao.nn.quantized.FloatFunctional's ops as float modules, one op per module: add,
// add_relu, mul, add_scalar, mul_scalar and cat (a FloatFunctional in a model is a module
// whose methods call torch.add, torch.cat, ...; each kind here is one of those calls). The
// first operand is the call's input, further ones ModuleInput::others; add_scalar's and
// mul_scalar's scalar, a call argument in PyTorch, is fixed per module here (a case draws it).
#include <string>
#include <vector>

#include "core/module.h"

namespace qconform {

// Matmul: PyTorch 2's FloatFunctional.matmul (torch.matmul, observed) and QFunctional.matmul,
// which calls quantized::matmul, an op PyTorch 1.13 already has (its FloatFunctional has no
// matmul method yet). Operands of one rank >= 2 with equal leading (batch) dimensions.
enum class FunctionalOp { Add, AddRelu, Mul, AddScalar, MulScalar, Cat, Matmul };

struct FunctionalOptions {
  FunctionalOp op = FunctionalOp::Add;
  double scalar = 0.0;  // add_scalar, mul_scalar
  int64_t dim = 0;      // cat (negative counts from the end, as torch.cat)

  std::string method() const;  // FloatFunctional's method: "add", "add_relu", "cat", ...
  bool binary() const {
    return op == FunctionalOp::Add || op == FunctionalOp::AddRelu || op == FunctionalOp::Mul || op == FunctionalOp::Matmul;
  }
  bool with_scalar() const { return op == FunctionalOp::AddScalar || op == FunctionalOp::MulScalar; }
};

// Whether FloatFunctional observes the op's output: every op but add_scalar and mul_scalar,
// whose quantized forms derive their output qparams from the input's (below).
bool observes_output(FunctionalOp op);

// quantized::add_scalar's and mul_scalar's output qparams for a quint8 input with qparams
// `input` (qadd.cpp, qmul.cpp), with c the scalar and c_q = nearbyint(c / s):
//   add_scalar: z - c_q inside [0, 255]: (s, z - c_q); below: (s (255 - (z - c_q)) / 255, 0);
//               above: (s (z - c_q) / 255, 255)
//   mul_scalar: c > 0: (c s, z); c = 0: (1, 0); c < 0: (|c| s, 255 - z)
QuantParams scalar_op_output_qparams(const FunctionalOptions& options, const QuantParams& input);

// The op on float tensors (torch.add, torch.mul with broadcasting, torch.cat), with
// PyTorch's messages for shapes that do not fit.
Tensor float_functional(const FunctionalOptions& options, const Tensor& x, const std::vector<const Tensor*>& others);

// torch.cat's checks and output shape for operands of shapes `shapes` along `dim`
// ("Tensors must have same number of dimensions: got 4 and 3", "Sizes of tensors must match
// except in dimension 1. ...", "Dimension out of range ..."); returns the wrapped dim.
int64_t cat_dim(const std::vector<Shape>& shapes, int64_t dim);
Shape cat_shape(const std::vector<Shape>& shapes, int64_t dim);
// Broadcast shape of two operands, or PyTorch's "The size of tensor a (5) must match the
// size of tensor b (6) at non-singleton dimension 3".
Shape broadcast_shape(const Shape& a, const Shape& b);
// The flat index into an operand of shape `shape` (right-aligned, size-1 dimensions
// broadcast) of the output element at `index` of the broadcast shape `out`.
int64_t broadcast_index(const Shape& out, const Shape& shape, int64_t index);

// torch.matmul's result shape for operands of one rank >= 2 and equal batch dimensions, with
// PyTorch's messages where the inner sizes differ (2-d: "mat1 and mat2 shapes cannot be
// multiplied (3x4 and 5x3)", 3-d: bmm's "Expected size for first two dimensions of batch2 tensor
// to be: [2, 4] but got: [2, 5]."); other shapes (broadcasting, 1-d) are refused by name.
Shape matmul_shape(const Shape& a, const Shape& b, const std::string& module_name);

class FloatFunctionalOp : public Module {
 public:
  explicit FloatFunctionalOp(FunctionalOptions options) : options_(options) {}
  std::string name() const override { return "FloatFunctional"; }
  std::string kind_name() const override { return "FloatFunctional." + options_.method(); }
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict& state) override { state.check_keys({}, name()); }
  const FunctionalOptions& options() const { return options_; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  FunctionalOptions options_;
};

}  // namespace qconform
