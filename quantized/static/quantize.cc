#include "quantized/static/quantize.h"

#include <sstream>

#include "core/error.h"
#include "core/float/stubs.h"
#include "core/quantize.h"

namespace qconform {

void DeQuantize::load_state_dict(const StateDict& state) { state.check_keys({}, name()); }

Quantize::Quantize(double scale, int64_t zero_point, DType dtype)
    : qparams_(QuantParams::per_tensor(dtype, scale, zero_point)) {}

std::string Quantize::extra_repr() const {
  std::ostringstream out;
  out << "scale=tensor([" << qparams_.scale() << "]), zero_point=tensor([" << qparams_.zero_point()
      << "]), dtype=" << to_string(qparams_.dtype);
  return out.str();
}

StateDict Quantize::state_dict() const { return quantize_state_dict(qparams_); }

void Quantize::load_state_dict(const StateDict& state) {
  qparams_ = parse_quantize_state_dict(state, qparams_.dtype, name());
}

ModuleOutput Quantize::forward(const ModuleInput& input) {
  return ModuleOutput{quantize(expect_tensor(input, name()), qparams_), std::nullopt};
}

ModuleOutput DeQuantize::forward(const ModuleInput& input) {
  const auto* q = std::get_if<QTensor>(&input.input);
  if (!q) throw Error(name() + ": expected a quantized tensor input");
  return ModuleOutput{dequantize(*q), std::nullopt};
}

}  // namespace qconform
