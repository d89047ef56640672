#include "reference/static.h"

#include <sstream>

#include "core/error.h"
#include "core/quantize.h"

namespace qconform {
namespace {

void check_output_qparams(const QuantParams& q) {
  validate(q);
  if (q.dtype != DType::QUInt8 || q.per_channel())
    throw Error("static reference: the output qparams must be quint8 per-tensor, got " + q.to_string());
}

}  // namespace

StaticReference::StaticReference(std::unique_ptr<Module> module, QuantParams output_qparams)
    : StaticReference(std::move(module), std::optional<QuantParams>(std::move(output_qparams))) {}

StaticReference::StaticReference(std::unique_ptr<Module> module, std::optional<QuantParams> output_qparams)
    : module_(std::move(module)), output_qparams_(std::move(output_qparams)) {
  if (!module_) throw Error("static reference: no module");
  if (output_qparams_) check_output_qparams(*output_qparams_);
}

std::unique_ptr<StaticReference> StaticReference::keeping_input_qparams(std::unique_ptr<Module> module) {
  return std::unique_ptr<StaticReference>(new StaticReference(std::move(module), std::nullopt));
}

std::unique_ptr<StaticReference> StaticReference::deriving_output_qparams(std::unique_ptr<Module> module,
                                                                          QParamsRule rule) {
  auto reference = std::unique_ptr<StaticReference>(new StaticReference(std::move(module), std::nullopt));
  reference->rule_ = std::move(rule);
  return reference;
}

const QuantParams& StaticReference::output_qparams() const {
  if (!output_qparams_)
    throw Error(name() + " (static reference) " + (rule_ ? "derives" : "keeps") +
                " its input's qparams: it has none of its own");
  return *output_qparams_;
}

QuantParams StaticReference::output_qparams_for(const QuantParams& input) const {
  if (output_qparams_) return *output_qparams_;
  return rule_ ? rule_(input) : input;
}

std::string StaticReference::extra_repr() const {
  std::ostringstream out;
  out << module_->extra_repr();
  if (output_qparams_)
    out << (module_->extra_repr().empty() ? "" : ", ") << "output_scale=" << output_qparams_->scale()
        << ", output_zero_point=" << output_qparams_->zero_point();
  return out.str();
}

ModuleOutput StaticReference::forward(const ModuleInput& input) {
  const auto* x = std::get_if<QTensor>(&input.input);
  if (!x) throw Error(name() + " (static): expects a quantized (quint8) input tensor");
  ModuleInput dequantized{dequantize(*x), std::nullopt};
  for (const Value& other : input.others) {
    const auto* q = std::get_if<QTensor>(&other);
    if (!q) throw Error(name() + " (static): expects quantized operands");
    dequantized.others.push_back(dequantize(*q));
  }
  ModuleOutput inner = (*module_)(dequantized);
  const auto* y = std::get_if<Tensor>(&inner.output);
  if (!y) throw Error(name() + " (static): the reference module returned no float tensor");
  return {quantize(*y, output_qparams_for(x->qparams)), std::nullopt};
}

StateDict StaticReference::state_dict() const {
  StateDict state = prefixed_state_dict(module_->state_dict(), "module");
  if (!output_qparams_) return state;
  state.set("quant.scale", Tensor(Shape{1}, {static_cast<float>(output_qparams_->scale())}));
  state.set("quant.zero_point", IntTensor{{1}, {output_qparams_->zero_point()}, false});
  return state;
}

void StaticReference::load_state_dict(const StateDict& state) {
  std::vector<std::string> expected;
  for (const auto& key : module_->state_dict().keys()) expected.push_back("module." + key);
  if (!output_qparams_) {
    state.check_keys(expected, name());
    module_->load_state_dict(state_dict_under(state, "module"));
    return;
  }
  expected.push_back("quant.scale");
  expected.push_back("quant.zero_point");
  state.check_keys(expected, name());
  const Tensor& scale = state.at("quant.scale").as<Tensor>("quant.scale");
  const IntTensor& zero_point = state.at("quant.zero_point").as<IntTensor>("quant.zero_point");
  if (scale.numel() != 1 || zero_point.values.size() != 1)
    throw Error("state_dict['quant.scale'] and ['quant.zero_point'] must hold one value each");
  const QuantParams q = QuantParams::per_tensor(DType::QUInt8, scale.data[0], zero_point.values[0]);
  check_output_qparams(q);
  module_->load_state_dict(state_dict_under(state, "module"));  // strict; unchanged on failure
  output_qparams_ = q;
}

}  // namespace qconform
