#include "reference/static_lstm.h"

#include <cmath>

#include "core/error.h"
#include "core/quantize.h"
#include "reference/linear.h"
#include "reference/weight_qparams.h"

namespace qconform {

std::vector<StaticLstmCell> static_lstm_cells(const ObservedLSTM& observed) {
  const QConfig& qconfig = observed.qconfig.value();
  std::vector<StaticLstmCell> cells;
  for (int64_t set = 0; set < observed.options().parameter_sets(); ++set) {
    const RnnParameters& p = observed.parameters()[set];
    // nnq.Linear.from_float on igates and hgates: the qconfig's weight observer, once each.
    const auto weight = [&](const Tensor& w) { return quantize(w, observe_weight(qconfig.weight, w)); };
    cells.push_back({weight(p.w_ih), weight(p.w_hh), p.b_ih, p.b_hh, observed.cell_qparams(set)});
  }
  check_static_lstm_cells(observed.options(), cells, "QuantizedLSTM");
  return cells;
}

const QTensor& expect_static_lstm_input(const ModuleInput& input, const RnnOptions& options,
                                        const std::string& module_name) {
  const auto* x = std::get_if<QTensor>(&input.input);
  if (!x) throw Error(module_name + ": expects a quantized (quint8) input tensor");
  if (input.hidden) throw Error(module_name + ": an initial state is not supported by the harness's static LSTM");
  if (x->qparams.dtype != DType::QUInt8 || x->qparams.per_channel())
    throw Error(module_name + ": expects a quint8 per-tensor input, got " + x->qparams.to_string());
  if (options.cell && x->dim() != 2)
    throw Error(module_name + ": expects a (batch, features) input, got " + shape_to_string(x->sizes));
  if (!options.cell && x->dim() != 3)
    throw Error(module_name + ": expects a (seq, batch, features) input" +
                std::string(options.batch_first ? " (batch_first: (batch, seq, features))" : "") + ", got " +
                shape_to_string(x->sizes));
  if (x->sizes.back() != options.input_size)
    throw Error(module_name + ": input.size(-1) must be equal to input_size. Expected " +
                std::to_string(options.input_size) + ", got " + std::to_string(x->sizes.back()));
  return *x;
}

ReferenceStaticLSTM::ReferenceStaticLSTM(RnnOptions options, std::vector<StaticLstmCell> cells)
    : options_(std::move(options)) {
  set_cells(std::move(cells));
}

ReferenceStaticLSTM::~ReferenceStaticLSTM() = default;

void ReferenceStaticLSTM::set_cells(std::vector<StaticLstmCell> cells) {
  check_static_lstm_cells(options_, cells, name());
  std::vector<std::unique_ptr<ReferenceLinear>> igates, hgates;
  for (const StaticLstmCell& cell : cells) {
    // The dequantized integers with their qparams: fake-quantization gives them back.
    igates.push_back(std::make_unique<ReferenceLinear>(dequantize(cell.w_ih), cell.b_ih, cell.w_ih.qparams));
    hgates.push_back(std::make_unique<ReferenceLinear>(dequantize(cell.w_hh), cell.b_hh, cell.w_hh.qparams));
  }
  cells_ = std::move(cells);
  igates_ = std::move(igates);
  hgates_ = std::move(hgates);
}

std::unique_ptr<ReferenceStaticLSTM> ReferenceStaticLSTM::from_observed(const ObservedLSTM& observed) {
  auto module = std::make_unique<ReferenceStaticLSTM>(observed.options(), static_lstm_cells(observed));
  module->copy_hooks_from(observed);
  return module;
}

Tensor ReferenceStaticLSTM::point_value(LstmPoint point, const std::vector<Tensor>& operands) {
  Tensor y(operands.at(0).sizes);
  const auto& a = operands[0].data;
  for (size_t i = 0; i < y.data.size(); ++i) {
    switch (point) {
      case LstmPoint::Gates:
      case LstmPoint::CellState: y.data[i] = a[i] + operands.at(1).data[i]; break;
      case LstmPoint::FgateCx:
      case LstmPoint::IgateCgate:
      case LstmPoint::Hidden: y.data[i] = a[i] * operands.at(1).data[i]; break;
      case LstmPoint::InputGate:
      case LstmPoint::ForgetGate:
      case LstmPoint::OutputGate: y.data[i] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(a[i])))); break;
      case LstmPoint::CellGate:
      case LstmPoint::TanhCell: y.data[i] = static_cast<float>(std::tanh(static_cast<double>(a[i]))); break;
      case LstmPoint::IGates:
      case LstmPoint::HGates: throw Error("point_value: the Linears' points are the reference Linears' outputs");
    }
  }
  return y;
}

namespace {

// Columns [k H, (k + 1) H) of a (B, 4H) tensor: gates.chunk(4, 1)[k].
Tensor chunk(const Tensor& gates, int64_t k) {
  const int64_t B = gates.size(0), H = gates.size(1) / 4;
  Tensor out({B, H});
  for (int64_t b = 0; b < B; ++b)
    std::copy(gates.data.begin() + b * 4 * H + k * H, gates.data.begin() + b * 4 * H + (k + 1) * H,
              out.data.begin() + b * H);
  return out;
}

}  // namespace

QTensor ReferenceStaticLSTM::linear_point(int64_t set, LstmPoint which, const QTensor& in) const {
  ReferenceLinear& linear = which == LstmPoint::IGates ? *igates_.at(set) : *hgates_.at(set);
  return quantize(linear(dequantize(in)), cells_.at(set).qparams[which]);
}

std::pair<QTensor, QTensor> ReferenceStaticLSTM::cell(int64_t set, const QTensor& x, const QTensor& h,
                                                      const QTensor& c) const {
  const StaticLstmCellQParams& q = cells_.at(set).qparams;
  const auto at = [&](LstmPoint p, const std::vector<Tensor>& operands) {
    return quantize(point_value(p, operands), q[p]);
  };
  const QTensor ig = linear_point(set, LstmPoint::IGates, x);
  const QTensor hg = linear_point(set, LstmPoint::HGates, h);
  const Tensor gates = dequantize(at(LstmPoint::Gates, {dequantize(ig), dequantize(hg)}));
  const Tensor in = dequantize(at(LstmPoint::InputGate, {chunk(gates, 0)}));
  const Tensor forget = dequantize(at(LstmPoint::ForgetGate, {chunk(gates, 1)}));
  const Tensor cell = dequantize(at(LstmPoint::CellGate, {chunk(gates, 2)}));
  const Tensor out = dequantize(at(LstmPoint::OutputGate, {chunk(gates, 3)}));
  const Tensor fc = dequantize(at(LstmPoint::FgateCx, {forget, dequantize(c)}));
  const Tensor igc = dequantize(at(LstmPoint::IgateCgate, {in, cell}));
  const QTensor cy = at(LstmPoint::CellState, {fc, igc});
  const Tensor tanh_cy = dequantize(at(LstmPoint::TanhCell, {dequantize(cy)}));
  return {at(LstmPoint::Hidden, {out, tanh_cy}), cy};
}

namespace {

struct ReferenceOps : QuantizedSequenceOps {
  const ReferenceStaticLSTM* module;
  std::pair<QTensor, QTensor> cell(int64_t set, const QTensor& x, const QTensor& h, const QTensor& c) const {
    return module->cell(set, x, h, c);
  }
};

void save_point(StateDict* state, const std::string& prefix, const QuantParams& q) {
  state->set(prefix + ".scale", Tensor(Shape{}, {static_cast<float>(q.scale())}));
  state->set(prefix + ".zero_point", IntTensor{{}, {q.zero_point()}, false});
}

QuantParams load_point(const StateDict& state, const std::string& prefix) {
  const Tensor& scale = state.at(prefix + ".scale").as<Tensor>(prefix + ".scale");
  const IntTensor& zero_point = state.at(prefix + ".zero_point").as<IntTensor>(prefix + ".zero_point");
  if (scale.numel() != 1 || zero_point.values.size() != 1)
    throw Error("state_dict['" + prefix + ".scale'] and ['" + prefix + ".zero_point'] must hold one value each");
  const QuantParams q = QuantParams::per_tensor(DType::QUInt8, scale.data[0], zero_point.values[0]);
  validate(q);
  return q;
}

}  // namespace

ModuleOutput ReferenceStaticLSTM::forward(const ModuleInput& input) {
  const QTensor& given = expect_static_lstm_input(input, options_, name());
  ReferenceOps ops;
  ops.module = this;
  return run_static_lstm_call(options_, ops, given);
}

StateDict ReferenceStaticLSTM::state_dict() const {
  StateDict state;
  for (int64_t set = 0; set < options_.parameter_sets(); ++set) {
    const std::string cell = static_lstm_cell_prefix(options_, set);
    const StaticLstmCellQParams& q = cells_[set].qparams;
    for (auto [linear, point] : {std::pair{igates_[set].get(), LstmPoint::IGates}, {hgates_[set].get(), LstmPoint::HGates}}) {
      const std::string prefix = cell + to_string(point);
      const StateDict part = linear->state_dict();
      for (const auto& [key, value] : part.entries()) state.set(prefix + "." + key, value);
      save_point(&state, prefix, q[point]);
    }
    for (int i = 0; i < kLstmPoints; ++i) {
      const auto point = static_cast<LstmPoint>(i);
      if (point != LstmPoint::IGates && point != LstmPoint::HGates)
        save_point(&state, cell + to_string(point), q[point]);
    }
  }
  state.versions[""] = 1;
  return state;
}

void ReferenceStaticLSTM::load_state_dict(const StateDict& state) {
  state.check_keys(state_dict().keys(), name());
  std::vector<StaticLstmCell> cells;
  for (int64_t set = 0; set < options_.parameter_sets(); ++set) {
    const std::string cell = static_lstm_cell_prefix(options_, set);
    StaticLstmCell loaded;
    for (auto [linear, point] : {std::pair{igates_[set].get(), LstmPoint::IGates}, {hgates_[set].get(), LstmPoint::HGates}}) {
      const std::string prefix = cell + to_string(point);
      ReferenceLinear copy(linear->weight(), linear->bias(), linear->weight_qparams());
      StateDict part;
      for (const auto& key : copy.state_dict().keys()) part.set(key, state.at(prefix + "." + key));
      copy.load_state_dict(part);
      (point == LstmPoint::IGates ? loaded.w_ih : loaded.w_hh) = copy.get_quantized_weight();
      (point == LstmPoint::IGates ? loaded.b_ih : loaded.b_hh) = copy.bias();
    }
    for (int i = 0; i < kLstmPoints; ++i) {
      const auto point = static_cast<LstmPoint>(i);
      loaded.qparams[point] = load_point(state, cell + to_string(point));
    }
    cells.push_back(std::move(loaded));
  }
  set_cells(std::move(cells));
}

}  // namespace qconform

