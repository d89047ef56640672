#include "reference/quantize.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/float/stubs.h"

namespace qconform {

ReferenceQuantize::ReferenceQuantize(QuantParams qparams) : qparams_(std::move(qparams)) {
  validate(qparams_);
  if (qparams_.per_channel()) throw Error("Quantize(Reference): takes per-tensor qparams, got " + qparams_.to_string());
}

StateDict ReferenceQuantize::state_dict() const { return quantize_state_dict(qparams_); }

void ReferenceQuantize::load_state_dict(const StateDict& state) {
  qparams_ = parse_quantize_state_dict(state, qparams_.dtype, name());
}

ModuleOutput ReferenceQuantize::forward(const ModuleInput& input) {
  const Tensor& x = expect_tensor(input, name());
  QTensor q{x.sizes, std::vector<int32_t>(x.data.size()), qparams_};
  const double s = qparams_.scale(), z = static_cast<double>(qparams_.zero_point());
  const double lo = static_cast<double>(qparams_.quant_min), hi = static_cast<double>(qparams_.quant_max);
  for (size_t i = 0; i < x.data.size(); ++i) {
    const double v = x.data[i];
    // round(x / scale) + zero_point, clamped; NaN to the lowest level, as ATen's conversion does.
    const double level = std::isnan(v) ? lo : std::nearbyint(v / s) + z;
    q.values[i] = static_cast<int32_t>(std::min(std::max(level, lo), hi));
  }
  return {q, std::nullopt};
}

ModuleOutput ReferenceDeQuantize::forward(const ModuleInput& input) {
  const auto* q = std::get_if<QTensor>(&input.input);
  if (!q) throw Error(name() + ": expected a quantized tensor input");
  Tensor x(q->sizes);
  // The channel of element i for a per-channel tensor: its index along the axis.
  int64_t inner = 1;
  const int64_t axis = q->qparams.per_channel() ? q->qparams.axis : 0;
  for (size_t d = static_cast<size_t>(axis) + 1; d < q->sizes.size(); ++d) inner *= q->sizes[d];
  const int64_t channels = q->qparams.per_channel() ? q->sizes.at(axis) : 1;
  for (size_t i = 0; i < x.data.size(); ++i) {
    const int64_t c = (static_cast<int64_t>(i) / inner) % channels;
    x.data[i] = static_cast<float>((static_cast<double>(q->values[i]) - static_cast<double>(q->qparams.zero_point(c))) *
                                   q->qparams.scale(c));
  }
  return {x, std::nullopt};
}

}  // namespace qconform
