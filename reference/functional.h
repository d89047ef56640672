#pragma once
// The reference implementation of QFunctional's ops: the FloatFunctional op on dequantized
// operands, quantized with the observed output qparams (add, add_relu, mul, cat) or with
// those the quantized op derives from the input's (add_scalar, mul_scalar: reference/
// static.h derives them). The float op is PyTorch's definition (core/float/functional.h),
// the specification of quantized/static/functional.h.
#include "core/float/functional.h"

namespace qconform {

class ReferenceFunctional : public FloatFunctionalOp {
 public:
  using FloatFunctionalOp::FloatFunctionalOp;
  Implementation implementation() const override { return Implementation::Reference; }
};

}  // namespace qconform
