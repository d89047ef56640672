#include "reference/rnn.h"

#include "core/error.h"
#include "core/observers.h"
#include "core/quantize.h"
#include "reference/weight_qparams.h"

namespace qconform {
namespace {

// Reference RNN modules accept qscheme None (float weights), per_tensor_affine and
// per_channel_affine (reference/modules/rnn.py's assert); float16 weights carry no qscheme.
void check_rnn_reference_qparams(const QuantParams& qp, const std::string& module_name) {
  if (!is_integer_quantized(qp.dtype)) return;
  if (qp.qscheme != QScheme::PerTensorAffine && qp.qscheme != QScheme::PerChannelAffine)
    throw Error("qscheme: " + to_string(qp.qscheme) + " is not support in " + module_name);
  validate(qp);
}

// `<name>_scale`, `<name>_zero_point`, `<name>_axis`: float32 scale (a scalar, or one per
// channel), int32 zero point and axis.
void save_rnn_weight_qparams(StateDict* state, const std::string& name, const QuantParams& qp) {
  if (!is_integer_quantized(qp.dtype)) return;
  const Shape shape = qp.per_channel() ? Shape{qp.channels()} : Shape{};
  Tensor scale(shape);
  IntTensor zero_point{shape, {}, true};
  for (size_t i = 0; i < qp.scales.size(); ++i) {
    scale.data[i] = static_cast<float>(qp.scales[i]);
    zero_point.values.push_back(static_cast<int64_t>(qp.zero_points[i]));
  }
  state->set(name + "_scale", scale);
  state->set(name + "_zero_point", zero_point);
  state->set(name + "_axis", IntTensor{{}, {qp.per_channel() ? qp.axis : 0}, true});
}

QuantParams load_rnn_weight_qparams(const StateDict& state, const std::string& name, const QuantParams& current) {
  if (!is_integer_quantized(current.dtype)) return current;
  QuantParams qp = current;
  const Tensor& scale = state.at(name + "_scale").as<Tensor>(name + "_scale");
  const IntTensor& zero_point = state.at(name + "_zero_point").as<IntTensor>(name + "_zero_point");
  const IntTensor& axis = state.at(name + "_axis").as<IntTensor>(name + "_axis");
  if (scale.numel() != static_cast<int64_t>(zero_point.values.size()) || (!qp.per_channel() && scale.numel() != 1) || axis.values.size() != 1)
    throw Error("state_dict['" + name + "_scale'], ['" + name + "_zero_point'] and ['" + name +
                "_axis'] do not describe " + to_string(qp.qscheme) + " qparams (shapes " +
                shape_to_string(scale.sizes) + ", " + shape_to_string(zero_point.sizes) + ", " +
                shape_to_string(axis.sizes) + ")");
  qp.scales.assign(scale.data.begin(), scale.data.end());
  qp.zero_points.assign(zero_point.values.begin(), zero_point.values.end());
  qp.axis = axis.values[0];
  return qp;
}

}  // namespace

void check_dynamic_rnn_weight_dtype(DType dtype) {
  if (dtype != DType::QInt8 && dtype != DType::Float16)
    throw Error("Unsupported dtype for dynamic RNN quantization: " + to_string(dtype));
}

std::vector<RnnWeightQParams> observe_rnn_weights(const FloatRNN& float_module) {
  const QConfig qconfig = float_module.qconfig.value_or(default_dynamic_qconfig());
  check_dynamic_rnn_weight_dtype(qconfig.weight()->dtype());
  std::vector<RnnWeightQParams> qparams;
  for (const RnnParameters& p : float_module.parameters())
    qparams.push_back({observe_weight(qconfig.weight, p.w_ih), observe_weight(qconfig.weight, p.w_hh)});
  return qparams;
}

ReferenceRNN::ReferenceRNN(RnnOptions options, std::vector<RnnParameters> parameters,
                           std::vector<RnnWeightQParams> weight_qparams)
    : RnnModule(std::move(options), RnnInputRules::Float),
      parameters_(std::move(parameters)),
      weight_qparams_(std::move(weight_qparams)) {
  check_rnn_parameters(options_, parameters_, name());
  if (weight_qparams_.size() != parameters_.size())
    throw Error(name() + ": expected weight qparams for " + std::to_string(parameters_.size()) +
                " parameter sets, got " + std::to_string(weight_qparams_.size()));
  for (size_t i = 0; i < parameters_.size(); ++i) {
    check_rnn_reference_qparams(weight_qparams_[i].ih, name());
    check_rnn_reference_qparams(weight_qparams_[i].hh, name());
    if (is_integer_quantized(weight_qparams_[i].ih.dtype)) validate(weight_qparams_[i].ih, parameters_[i].w_ih.sizes);
    if (is_integer_quantized(weight_qparams_[i].hh.dtype)) validate(weight_qparams_[i].hh, parameters_[i].w_hh.sizes);
    RnnParameters fq = parameters_[i];
    fq.w_ih = fake_quantize_reference_weight(parameters_[i].w_ih, weight_qparams_[i].ih);
    fq.w_hh = fake_quantize_reference_weight(parameters_[i].w_hh, weight_qparams_[i].hh);
    fake_quantized_.push_back(std::move(fq));
  }
}

std::unique_ptr<ReferenceRNN> ReferenceRNN::from_float(const FloatRNN& float_module) {
  return std::make_unique<ReferenceRNN>(float_module.options(), float_module.parameters(),
                                        observe_rnn_weights(float_module));
}

QTensor ReferenceRNN::get_quantized_weight_ih(int64_t set) const {
  return quantize_reference_weight(parameters_.at(set).w_ih, weight_qparams_.at(set).ih);
}

QTensor ReferenceRNN::get_quantized_weight_hh(int64_t set) const {
  return quantize_reference_weight(parameters_.at(set).w_hh, weight_qparams_.at(set).hh);
}

RnnResult ReferenceRNN::run(const RnnCall& call) { return run_float_rnn(options_, fake_quantized_, call); }

StateDict ReferenceRNN::state_dict() const {
  StateDict state;
  save_rnn_parameters(&state, options_, parameters_);
  for (int64_t i = 0; i < options_.parameter_sets(); ++i) {
    const RnnParameterNames n = rnn_parameter_names(options_, i);
    save_rnn_weight_qparams(&state, n.w_ih, weight_qparams_[i].ih);
    save_rnn_weight_qparams(&state, n.w_hh, weight_qparams_[i].hh);
  }
  state.versions[""] = 1;
  return state;
}

void ReferenceRNN::load_state_dict(const StateDict& state) {
  std::vector<std::string> keys = rnn_parameter_keys(options_);
  for (int64_t i = 0; i < options_.parameter_sets(); ++i) {
    const RnnParameterNames n = rnn_parameter_names(options_, i);
    for (const auto& [name, qp] : {std::pair{n.w_ih, weight_qparams_[i].ih}, std::pair{n.w_hh, weight_qparams_[i].hh}})
      if (is_integer_quantized(qp.dtype))
        for (const char* suffix : {"_scale", "_zero_point", "_axis"}) keys.push_back(name + suffix);
  }
  state.check_keys(keys, name());
  std::vector<RnnWeightQParams> qparams;
  for (int64_t i = 0; i < options_.parameter_sets(); ++i) {
    const RnnParameterNames n = rnn_parameter_names(options_, i);
    qparams.push_back({load_rnn_weight_qparams(state, n.w_ih, weight_qparams_[i].ih),
                       load_rnn_weight_qparams(state, n.w_hh, weight_qparams_[i].hh)});
  }
  // Build completely (validating everything) before replacing anything.
  ReferenceRNN loaded(options_, load_rnn_parameters(state, options_), std::move(qparams));
  parameters_ = std::move(loaded.parameters_);
  weight_qparams_ = std::move(loaded.weight_qparams_);
  fake_quantized_ = std::move(loaded.fake_quantized_);
}

}  // namespace qconform
