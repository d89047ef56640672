#pragma once
// The reference implementation of MaxPool2d, AvgPool2d and AdaptiveAvgPool2d. PyTorch has no
// reference module for them: convert(..., is_reference=True) keeps the float module, which
// sees the dequantized input; the quantize after it takes the input's qparams
// (reference/static.h keeps them). This is that float module in the reference's role; the
// windows and values are PyTorch's (core/float/pooling.h), the specification of
// quantized/static/pooling.h.
#include "core/float/pooling.h"

namespace qconform {

class ReferencePooling : public FloatPooling {
 public:
  using FloatPooling::FloatPooling;
  Implementation implementation() const override { return Implementation::Reference; }
};

}  // namespace qconform
