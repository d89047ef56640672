#include "quantized/static/lstm.h"

#include <algorithm>

#include "core/error.h"
#include "core/quantize.h"
#include "quantized/dynamic/linear.h"
#include "quantized/kernels/elementwise.h"
#include "quantized/kernels/functional.h"
#include "quantized/static/functional.h"
#include "quantized/static/linear.h"
#include "reference/static_lstm.h"

namespace qconform {

// The points torch.ao.nn.quantized.LSTM keeps as QFunctional modules, in its cell's order.
static constexpr LstmPoint kFunctionalPoints[] = {LstmPoint::Gates, LstmPoint::FgateCx, LstmPoint::IgateCgate,
                                                  LstmPoint::CellState, LstmPoint::Hidden};

StateDict static_lstm_state_dict(const RnnOptions& options, const std::vector<StaticLstmCell>& cells,
                                 bool missing_bias_as_zeros) {
  StateDict state;
  for (int64_t set = 0; set < options.parameter_sets(); ++set) {
    const StaticLstmCell& cell = cells.at(set);
    const std::string prefix = static_lstm_cell_prefix(options, set);
    for (int i = 0; i < kLstmPoints; ++i) {
      const auto point = static_cast<LstmPoint>(i);
      if (fixed_in_pytorch(point) && !(cell.qparams[point] == fixed_lstm_qparams(point)))
        throw Error("QuantizedLSTM: " + prefix + to_string(point) + " has qparams " +
                    cell.qparams[point].to_string() + ", but torch.ao.nn.quantized.LSTM's state_dict holds no " +
                    "sigmoid or tanh qparams (PyTorch 1.13 fixes them): such a module cannot be saved");
    }
    for (auto [point, weight, bias] : {std::tuple{LstmPoint::IGates, &cell.w_ih, &cell.b_ih},
                                       {LstmPoint::HGates, &cell.w_hh, &cell.b_hh}}) {
      std::optional<Tensor> saved_bias = *bias;
      if (!saved_bias && missing_bias_as_zeros) saved_bias = Tensor(Shape{weight->sizes[0]});
      PackedLinearParams params{*weight, saved_bias, QuantizedLinear::kVersion};
      params.scale = cell.qparams[point].scale();
      params.zero_point = cell.qparams[point].zero_point();
      const StateDict part = prefixed_state_dict(packed_linear_state_dict(params), prefix + to_string(point));
      for (const auto& [key, value] : part.entries()) state.set(key, value);
      for (const auto& [key, version] : part.versions) state.versions[key] = version;
    }
    for (LstmPoint point : kFunctionalPoints) {
      const std::string at = prefix + to_string(point);
      const StateDict part = prefixed_state_dict(functional_state_dict(cell.qparams[point]), at);
      for (const auto& [key, value] : part.entries()) state.set(key, value);
      state.versions[at] = 1;
      state.versions[at + ".activation_post_process"] = 1;  // the Identity convert leaves
    }
    // _metadata of the containers: "layers", "layers.{l}", "layers.{l}.layer_{fw,bw}", the cell.
    if (!options.cell) {
      const std::string layer = "layers." + std::to_string(set / options.directions());
      const std::string cell = prefix.substr(0, prefix.size() - 1);  // without the final "."
      for (const std::string& container : {std::string("layers"), layer, cell.substr(0, cell.size() - 5), cell})
        state.versions[container] = 1;
    }
  }
  state.versions[""] = 1;
  return state;
}

std::vector<StaticLstmCell> parse_static_lstm_state_dict(const RnnOptions& options, const StateDict& state,
                                                         const std::string& module_name) {
  std::vector<std::string> keys;
  for (int64_t set = 0; set < options.parameter_sets(); ++set) {
    const std::string prefix = static_lstm_cell_prefix(options, set);
    for (const char* linear : {"igates", "hgates"})
      for (const char* key : {"scale", "zero_point", "_packed_params.dtype", "_packed_params._packed_params"})
        keys.push_back(prefix + linear + "." + key);
    for (LstmPoint point : kFunctionalPoints)
      for (const char* key : {"scale", "zero_point"}) keys.push_back(prefix + to_string(point) + "." + key);
  }
  state.check_keys(keys, module_name);
  std::vector<StaticLstmCell> cells;
  for (int64_t set = 0; set < options.parameter_sets(); ++set) {
    const std::string prefix = static_lstm_cell_prefix(options, set);
    StaticLstmCell cell;
    for (LstmPoint point : {LstmPoint::IGates, LstmPoint::HGates}) {
      const std::string at = prefix + to_string(point);
      PackedLinearParams params = parse_packed_linear_state_dict(state_dict_under(state, at), module_name + "." + at);
      (point == LstmPoint::IGates ? cell.w_ih : cell.w_hh) = params.weight;
      const bool all_zero = params.bias && std::all_of(params.bias->data.begin(), params.bias->data.end(),
                                                       [](float v) { return v == 0.0f; });
      if (!options.bias && all_zero) params.bias.reset();  // qnnpack's unpack of no bias
      (point == LstmPoint::IGates ? cell.b_ih : cell.b_hh) = params.bias;
      cell.qparams[point] = QuantParams::per_tensor(DType::QUInt8, params.scale, params.zero_point);
    }
    for (LstmPoint point : kFunctionalPoints)
      cell.qparams[point] = parse_functional_state_dict(state_dict_under(state, prefix + to_string(point)));
    cells.push_back(std::move(cell));
  }
  check_static_lstm_cells(options, cells, module_name);
  return cells;
}

QuantizedStaticLSTM::QuantizedStaticLSTM(RnnOptions options, std::vector<StaticLstmCell> cells, EngineProfile engine)
    : options_(std::move(options)), engine_(engine) {
  set_cells(std::move(cells));
}

QuantizedStaticLSTM::~QuantizedStaticLSTM() = default;

void QuantizedStaticLSTM::set_cells(std::vector<StaticLstmCell> cells) {
  check_static_lstm_cells(options_, cells, name());
  std::vector<std::unique_ptr<QuantizedLinear>> igates, hgates;
  for (const StaticLstmCell& cell : cells) {
    const auto linear = [&](const QTensor& w, const std::optional<Tensor>& b, LstmPoint point) {
      return std::make_unique<QuantizedLinear>(w, b, cell.qparams[point].scale(), cell.qparams[point].zero_point(),
                                               engine_);
    };
    igates.push_back(linear(cell.w_ih, cell.b_ih, LstmPoint::IGates));
    hgates.push_back(linear(cell.w_hh, cell.b_hh, LstmPoint::HGates));
  }
  cells_ = std::move(cells);
  igates_ = std::move(igates);
  hgates_ = std::move(hgates);
}

std::unique_ptr<QuantizedStaticLSTM> QuantizedStaticLSTM::from_observed(const ObservedLSTM& observed,
                                                                        EngineProfile engine) {
  auto module = std::make_unique<QuantizedStaticLSTM>(observed.options(), static_lstm_cells(observed), engine);
  module->copy_hooks_from(observed);
  return module;
}

std::unique_ptr<QuantizedStaticLSTM> QuantizedStaticLSTM::from_reference(const ReferenceStaticLSTM& reference,
                                                                         EngineProfile engine) {
  auto module = std::make_unique<QuantizedStaticLSTM>(reference.options(), reference.cells(), engine);
  module->copy_hooks_from(reference);
  return module;
}

namespace {

kernels::AffineQParams affine(const QuantParams& q) { return {q.scale(), static_cast<int32_t>(q.zero_point())}; }

QTensor like(const QTensor& shape_of, const QuantParams& q) {
  return QTensor{shape_of.sizes, std::vector<int32_t>(shape_of.values.size()), q};
}

}  // namespace

std::pair<QTensor, QTensor> QuantizedStaticLSTM::cell(int64_t set, const QTensor& x, const QTensor& h,
                                                      const QTensor& c) {
  const StaticLstmCellQParams& q = cells_.at(set).qparams;
  const bool qnnpack = engine_.engine == Engine::QNNPACK;
  const kernels::AtenVectorLoop loop = kernels::AtenVectorLoop::of();
  const int64_t B = x.sizes[0], H = options_.hidden_size;
  // A point's op gives its own qparams (sigmoid, tanh); other qparams requantize it.
  const auto at_point = [&](QTensor y, LstmPoint point) { return requantized(y, q[point]); };
  const auto add = [&](const QTensor& a, const QTensor& b, LstmPoint point) {
    QTensor y = like(a, q[point]);
    const int64_t n = static_cast<int64_t>(y.values.size());
    if (qnnpack)
      kernels::qnnpack_add(a.values.data(), b.values.data(), n, affine(a.qparams), affine(b.qparams), affine(q[point]),
                           false, y.values.data());
    else
      kernels::aten_add(a.values.data(), b.values.data(), n, affine(a.qparams), affine(b.qparams), affine(q[point]),
                        false, loop, y.values.data());
    return y;
  };
  const auto mul = [&](const QTensor& a, const QTensor& b, LstmPoint point) {
    QTensor y = like(a, q[point]);
    kernels::aten_mul(a.values.data(), b.values.data(), static_cast<int64_t>(y.values.size()), affine(a.qparams),
                      affine(b.qparams), affine(q[point]), y.values.data());
    return y;
  };
  // sigmoid or tanh of columns [column, column + width) of every row of `in`.
  const auto activation = [&](ActivationOp op, const QTensor& in, int64_t column, int64_t width, LstmPoint point) {
    ActivationOptions options;
    options.op = op;
    const QuantParams own = fixed_lstm_qparams(op == ActivationOp::Sigmoid ? LstmPoint::InputGate : LstmPoint::CellGate);
    const int64_t rows = in.sizes[0], stride = in.sizes[1];
    QTensor y{{rows, width}, std::vector<int32_t>(rows * width), own};
    for (int64_t b = 0; b < rows; ++b) {
      const int32_t* row = in.values.data() + b * stride + column;
      int32_t* out = y.values.data() + b * width;
      if (qnnpack)  // QNNPACK makes the chunk contiguous and looks every element up
        kernels::qnnpack_table_activation(options, row, width, affine(in.qparams), affine(own), out);
      else
        kernels::static_activation(options, row, width, affine(in.qparams), affine(own), loop, out);
    }
    return at_point(std::move(y), point);
  };
  const QTensor ig = std::get<QTensor>((*igates_[set])(ModuleInput{x, std::nullopt}).output);
  const QTensor hg = std::get<QTensor>((*hgates_[set])(ModuleInput{h, std::nullopt}).output);
  const QTensor gates = add(ig, hg, LstmPoint::Gates);
  const QTensor in = activation(ActivationOp::Sigmoid, gates, 0, H, LstmPoint::InputGate);
  const QTensor forget = activation(ActivationOp::Sigmoid, gates, H, H, LstmPoint::ForgetGate);
  const QTensor cell_gate = activation(ActivationOp::Tanh, gates, 2 * H, H, LstmPoint::CellGate);
  const QTensor out = activation(ActivationOp::Sigmoid, gates, 3 * H, H, LstmPoint::OutputGate);
  const QTensor fc = mul(forget, c, LstmPoint::FgateCx);
  const QTensor igc = mul(in, cell_gate, LstmPoint::IgateCgate);
  const QTensor cy = add(fc, igc, LstmPoint::CellState);
  // tanh(c') on the contiguous (B, H): one row of B * H for ATen's loop.
  const QTensor flat_cy{{1, B * H}, cy.values, cy.qparams};
  QTensor tanh_cy = activation(ActivationOp::Tanh, flat_cy, 0, B * H, LstmPoint::TanhCell);
  tanh_cy.sizes = {B, H};
  return {mul(out, tanh_cy, LstmPoint::Hidden), cy};
}

namespace {

struct IntegerOps : QuantizedSequenceOps {
  QuantizedStaticLSTM* module;
  std::pair<QTensor, QTensor> cell(int64_t set, const QTensor& x, const QTensor& h, const QTensor& c) const {
    return module->cell(set, x, h, c);
  }
};

}  // namespace

ModuleOutput QuantizedStaticLSTM::forward(const ModuleInput& input) {
  const QTensor& given = expect_static_lstm_input(input, options_, name());
  IntegerOps ops;
  ops.module = this;
  return run_static_lstm_call(options_, ops, given);
}

StateDict QuantizedStaticLSTM::state_dict() const {
  return static_lstm_state_dict(options_, cells_,
                                engine_rule(engine_.engine, EngineOp::StaticLSTM).unpacks_missing_bias_as_zeros);
}

void QuantizedStaticLSTM::load_state_dict(const StateDict& state) {
  set_cells(parse_static_lstm_state_dict(options_, state, name()));
}

}  // namespace qconform

