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

ObserverFactory histogram_observer(const ObserverOptions& o, int64_t bins) {
  std::string text = describe("HistogramObserver", o, false);
  text.insert(text.size() - 1, ", bins=" + std::to_string(bins));
  return {text, [o, bins] { return std::make_unique<HistogramObserver>(o, bins); }};
}

ObserverFactory fake_quantize(ObserverFactory observer, bool fused) {
  const std::string name = fused ? "FusedMovingAvgObsFakeQuantize" : "FakeQuantize";
  return {name + "(observer=" + observer.description + ")", [observer, fused] {
            std::unique_ptr<Observer> inner = observer();
            auto* uniform = dynamic_cast<UniformObserver*>(inner.get());
            if (!uniform) throw Error("FakeQuantize needs a min/max-family observer, got " + inner->name());
            inner.release();
            return std::make_unique<FakeQuantize>(std::unique_ptr<UniformObserver>(uniform), fused);
          }};
}

namespace {

ObserverOptions activation_range(bool reduce_range) {
  ObserverOptions o;  // quint8, per_tensor_affine
  o.quant_min = 0;
  o.quant_max = 255;
  o.reduce_range = reduce_range;
  return o;
}

ObserverOptions symmetric_weight(QScheme qscheme) {
  ObserverOptions o;
  o.dtype = DType::QInt8;
  o.qscheme = qscheme;
  o.quant_min = -128;
  o.quant_max = 127;
  return o;
}

}  // namespace

ObserverFactory default_fake_quant() {
  return fake_quantize(moving_average_min_max_observer(activation_range(true)), false);
}
ObserverFactory default_weight_fake_quant() {
  return fake_quantize(moving_average_min_max_observer(symmetric_weight(QScheme::PerTensorSymmetric)), false);
}
ObserverFactory default_per_channel_weight_fake_quant() {
  return fake_quantize(moving_average_per_channel_min_max_observer(symmetric_weight(QScheme::PerChannelSymmetric)),
                       false);
}
ObserverFactory default_fused_act_fake_quant() {
  return fake_quantize(moving_average_min_max_observer(activation_range(false)), true);
}
ObserverFactory default_fused_wt_fake_quant() {
  return fake_quantize(moving_average_min_max_observer(symmetric_weight(QScheme::PerTensorSymmetric)), true);
}
ObserverFactory default_fused_per_channel_wt_fake_quant() {
  return fake_quantize(moving_average_per_channel_min_max_observer(symmetric_weight(QScheme::PerChannelSymmetric)),
                       true);
}

QConfig get_default_qconfig(Engine engine) {
  // fbgemm and x86 keep activations to 7 bits (vpmaddubsw saturation); qnnpack and onednn
  // use all 8. Weights are per-channel everywhere except qnnpack.
  ObserverOptions activation;
  activation.reduce_range = engine == Engine::FBGEMM || engine == Engine::X86;
  const ObserverFactory weight = engine == Engine::QNNPACK ? default_weight_observer()
                                                           : default_per_channel_weight_observer();
  return {"get_default_qconfig('" + to_string(engine) + "')", histogram_observer(activation), weight};
}

QConfig get_default_qat_qconfig(Engine engine, int version) {
  if (version != 0 && version != 1)
    throw Error("Version number: " + std::to_string(version) +
                "in get_default_qat_qconfig is not supported. Version number must be 0 or 1");
  const bool fused = version == 1;
  const bool reduce_range = engine == Engine::FBGEMM || engine == Engine::X86;
  const ObserverFactory activation =
      fake_quantize(moving_average_min_max_observer(activation_range(reduce_range)), fused);
  ObserverFactory weight;
  if (engine == Engine::QNNPACK)
    weight = fused ? default_fused_wt_fake_quant() : default_weight_fake_quant();
  else
    weight = fused ? default_fused_per_channel_wt_fake_quant() : default_per_channel_weight_fake_quant();
  return {"get_default_qat_qconfig('" + to_string(engine) + "', " + std::to_string(version) + ")",
          activation, weight};
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
