#pragma once
// The reference implementation of static LayerNorm, GroupNorm and InstanceNorm{1,2,3}d:
// the float module between dequantize and quantize (reference/static.h), in the reference's
// role: torch.nn's definition with statistics in double (core/float/normalization.h), the
// specification of quantized/static/normalization.h.
#include "core/float/normalization.h"

namespace qconform {

class ReferenceNormalization : public FloatNormalization {
 public:
  using FloatNormalization::FloatNormalization;
  Implementation implementation() const override { return Implementation::Reference; }
};

}  // namespace qconform
