#pragma once
// The reference implementation of nnq.Softmax: nn.Softmax itself on the dequantized input
// (core/float/activation.h), quantized with the calibrated output qparams by reference/
// static.h; the specification of quantized/static/softmax.h.
#include "core/float/activation.h"

namespace qconform {

class ReferenceSoftmax : public FloatSoftmax {
 public:
  using FloatSoftmax::FloatSoftmax;
  Implementation implementation() const override { return Implementation::Reference; }
};

}  // namespace qconform
