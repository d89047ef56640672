#include "core/qconfig.h"

#include <sstream>

#include "core/error.h"

namespace qconform {
namespace {

std::string describe(const char* observer, const ObserverOptions& o, bool per_channel) {
  std::ostringstream out;
  out << observer << "(dtype=" << to_string(o.dtype) << ", qscheme=" << to_string(o.qscheme);
  if (o.reduce_range) out << ", reduce_range=True";
  if (o.quant_min && o.quant_max) out << ", quant_min=" << *o.quant_min << ", quant_max=" << *o.quant_max;
  if (per_channel) out << ", ch_axis=" << o.ch_axis;
  out << ")";
  return out.str();
}

template <typename ObserverType>
ObserverFactory factory(const char* name, const ObserverOptions& options, bool per_channel) {
  return {describe(name, options, per_channel),
          [options] { return std::make_unique<ObserverType>(options); }};
}

}  // namespace

bool QConfig::is_dynamic() const { return activation()->is_dynamic(); }
DType QConfig::weight_dtype() const { return weight()->dtype(); }

ObserverFactory min_max_observer(const ObserverOptions& o) {
  return factory<MinMaxObserver>("MinMaxObserver", o, false);
}
ObserverFactory moving_average_min_max_observer(const ObserverOptions& o) {
  return factory<MovingAverageMinMaxObserver>("MovingAverageMinMaxObserver", o, false);
}
ObserverFactory per_channel_min_max_observer(const ObserverOptions& o) {
  return factory<PerChannelMinMaxObserver>("PerChannelMinMaxObserver", o, true);
}
ObserverFactory moving_average_per_channel_min_max_observer(const ObserverOptions& o) {
  return factory<MovingAveragePerChannelMinMaxObserver>("MovingAveragePerChannelMinMaxObserver", o,
                                                        true);
}

ObserverFactory placeholder_observer(DType dtype, std::optional<DType> compute_dtype) {
  std::string text = "PlaceholderObserver(dtype=" + to_string(dtype);
  if (compute_dtype) text += ", compute_dtype=" + to_string(*compute_dtype);
  return {text + ")", [dtype, compute_dtype] {
            return std::make_unique<PlaceholderObserver>(dtype, compute_dtype);
          }};
}

ObserverFactory fixed_qparams_observer(float scale, int64_t zero_point) {
  std::ostringstream text;
  text << "FixedQParamsObserver(scale=" << scale << ", zero_point=" << zero_point << ")";
  return {text.str(), [scale, zero_point] {
            return std::make_unique<FixedQParamsObserver>(scale, zero_point);
          }};
}

ObserverFactory default_observer() {
  ObserverOptions o;
  o.quant_min = 0;
  o.quant_max = 127;
  return min_max_observer(o);
}

ObserverFactory default_weight_observer() {
  ObserverOptions o;
  o.dtype = DType::QInt8;
  o.qscheme = QScheme::PerTensorSymmetric;
  return min_max_observer(o);
}

ObserverFactory default_per_channel_weight_observer() {
  ObserverOptions o;
  o.dtype = DType::QInt8;
  o.qscheme = QScheme::PerChannelSymmetric;
  return per_channel_min_max_observer(o);
}

ObserverFactory default_dynamic_quant_observer() {
  return placeholder_observer(DType::QUInt8, DType::QUInt8);
}

QConfig default_qconfig() { return {"default_qconfig", default_observer(), default_weight_observer()}; }

QConfig default_per_channel_qconfig() {
  return {"default_per_channel_qconfig", default_observer(), default_per_channel_weight_observer()};
}

QConfig default_dynamic_qconfig() {
  return {"default_dynamic_qconfig", default_dynamic_quant_observer(), default_weight_observer()};
}

QConfig per_channel_dynamic_qconfig() {
  return {"per_channel_dynamic_qconfig", default_dynamic_quant_observer(),
          default_per_channel_weight_observer()};
}

QConfig float16_dynamic_qconfig() {
  return {"float16_dynamic_qconfig", placeholder_observer(DType::Float16, DType::Float16),
          placeholder_observer(DType::Float16)};
}

QConfig float_qparams_weight_only_qconfig() {
  ObserverOptions o;
  o.dtype = DType::QUInt8;
  o.qscheme = QScheme::PerChannelAffineFloatQParams;
  return {"float_qparams_weight_only_qconfig", placeholder_observer(DType::Float32),
          per_channel_min_max_observer(o)};
}

QConfig float_qparams_weight_only_qconfig_4bit() {
  ObserverOptions o;
  o.dtype = DType::QUInt4x2;
  o.qscheme = QScheme::PerChannelAffineFloatQParams;
  return {"float_qparams_weight_only_qconfig_4bit", placeholder_observer(DType::Float32),
          per_channel_min_max_observer(o)};
}

QConfig qconfig_by_name(const std::string& name) {
  const std::pair<const char*, QConfig (*)()> named[] = {
      {"default_qconfig", default_qconfig},
      {"default_per_channel_qconfig", default_per_channel_qconfig},
      {"default_dynamic_qconfig", default_dynamic_qconfig},
      {"per_channel_dynamic_qconfig", per_channel_dynamic_qconfig},
      {"float16_dynamic_qconfig", float16_dynamic_qconfig},
      {"float_qparams_weight_only_qconfig", float_qparams_weight_only_qconfig},
      {"float_qparams_weight_only_qconfig_4bit", float_qparams_weight_only_qconfig_4bit},
  };
  std::string known;
  for (const auto& [key, make] : named) {
    if (name == key) return make();
    known += std::string(known.empty() ? "" : ", ") + key;
  }
  throw Error("unknown qconfig '" + name + "' (known: " + known + ")");
}

}  // namespace qconform
