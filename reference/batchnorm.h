#pragma once
// The reference implementation of static BatchNorm2d/3d and BNReLU2d/3d. PyTorch has no
// reference module for them: convert(..., is_reference=True) keeps the float module between
// its dequantize and quantize (reference/static.h holds it there). This is that float
// module, in the reference's role: nn.BatchNorm's evaluation-mode definition
// (core/float/batchnorm.h), the specification of quantized/static/batchnorm.h.
#include "core/float/batchnorm.h"

namespace qconform {

class ReferenceBatchNorm : public FloatBatchNorm {
 public:
  using FloatBatchNorm::FloatBatchNorm;
  Implementation implementation() const override { return Implementation::Reference; }
};

}  // namespace qconform
