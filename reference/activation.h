#pragma once
// The reference implementation of the static activations and Dropout. PyTorch has no
// reference module for them: convert(..., is_reference=True) keeps the float module between
// its dequantize and quantize (reference/static.h holds it there). This is that float
// module, in the reference's role; its value on one float is PyTorch's definition
// (core/float/activation.h), the specification of quantized/static/activation.h.
#include <memory>

#include "core/float/activation.h"

namespace qconform {

class ReferenceActivation : public FloatActivation {
 public:
  using FloatActivation::FloatActivation;
  Implementation implementation() const override { return Implementation::Reference; }
};

}  // namespace qconform
