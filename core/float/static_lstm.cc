#include "core/float/static_lstm.h"

#include <cmath>

#include "core/error.h"
#include "core/float/rnn_runner.h"
#include "core/quantize.h"

namespace qconform {

std::string to_string(LstmPoint point) {
  switch (point) {
    case LstmPoint::IGates: return "igates";
    case LstmPoint::HGates: return "hgates";
    case LstmPoint::Gates: return "gates";
    case LstmPoint::InputGate: return "input_gate";
    case LstmPoint::ForgetGate: return "forget_gate";
    case LstmPoint::CellGate: return "cell_gate";
    case LstmPoint::OutputGate: return "output_gate";
    case LstmPoint::FgateCx: return "fgate_cx";
    case LstmPoint::IgateCgate: return "igate_cgate";
    case LstmPoint::CellState: return "fgate_cx_igate_cgate";
    case LstmPoint::TanhCell: return "tanh_cy";
    case LstmPoint::Hidden: return "ogate_cy";
  }
  return "?";
}

bool fixed_in_pytorch(LstmPoint point) {
  switch (point) {
    case LstmPoint::InputGate:
    case LstmPoint::ForgetGate:
    case LstmPoint::CellGate:
    case LstmPoint::OutputGate:
    case LstmPoint::TanhCell: return true;
    default: return false;
  }
}

QuantParams fixed_lstm_qparams(LstmPoint point) {
  const bool tanh = point == LstmPoint::CellGate || point == LstmPoint::TanhCell;
  if (!fixed_in_pytorch(point)) throw Error("LSTM point " + to_string(point) + " has observed qparams, not fixed ones");
  return tanh ? QuantParams::per_tensor(DType::QUInt8, 2.0 / 256.0, 128)
              : QuantParams::per_tensor(DType::QUInt8, 1.0 / 256.0, 0);
}

StaticLstmCellQParams::StaticLstmCellQParams() {
  for (int i = 0; i < kLstmPoints; ++i) {
    const auto p = static_cast<LstmPoint>(i);
    points[i] = fixed_in_pytorch(p) ? fixed_lstm_qparams(p) : QuantParams::per_tensor(DType::QUInt8, 1.0, 0);
  }
}

namespace {

std::unique_ptr<Observer> point_observer(LstmPoint point, const QConfig& qconfig, const LstmPartObservers& parts) {
  const auto pick = [&](const std::optional<ObserverFactory>& part) { return part ? (*part)() : qconfig.activation(); };
  switch (point) {
    case LstmPoint::Gates: return pick(parts.linear_output);
    case LstmPoint::InputGate:
    case LstmPoint::ForgetGate:
    case LstmPoint::OutputGate:
      if (parts.sigmoid) return (*parts.sigmoid)();
      break;
    case LstmPoint::CellGate:
      if (parts.tanh) return (*parts.tanh)();
      break;
    case LstmPoint::FgateCx:
    case LstmPoint::IgateCgate:
    case LstmPoint::CellState: return pick(parts.cell_state);
    case LstmPoint::Hidden: return pick(parts.hidden_state);
    default: break;
  }
  if (fixed_in_pytorch(point)) {
    const QuantParams q = fixed_lstm_qparams(point);
    return std::make_unique<FixedQParamsObserver>(static_cast<float>(q.scale()), q.zero_point());
  }
  return qconfig.activation();
}

}  // namespace

ObservedLSTM::ObservedLSTM(RnnOptions options, std::vector<RnnParameters> parameters, QConfig qconfig,
                           const LstmPartObservers& parts)
    : options_(std::move(options)), parameters_(std::move(parameters)) {
  if (options_.mode != RnnMode::LSTM)
    throw Error("QuantizableLSTM: prepares nn.LSTM and nn.LSTMCell only, not " + options_.float_name());
  if (options_.proj_size != 0) throw Error("QuantizableLSTM: proj_size is not supported by the quantizable LSTM");
  check_rnn_parameters(options_, parameters_, name());
  if (qconfig.is_dynamic())
    throw Error("QuantizableLSTM: a static qconfig is needed (got " + qconfig.name +
                ", a dynamic one: use quantize_dynamic for dynamic.LSTM)");
  this->qconfig = qconfig;
  observers_.resize(options_.parameter_sets());
  for (auto& cell : observers_)
    for (int i = 0; i < kLstmPoints; ++i) cell[i] = point_observer(static_cast<LstmPoint>(i), qconfig, parts);
}

std::unique_ptr<ObservedLSTM> prepare_static_lstm(const FloatRNN& lstm, const LstmPartObservers& parts) {
  if (!lstm.qconfig) throw Error("QuantizableLSTM: the float LSTM has no qconfig (prepare propagates one first)");
  auto observed = std::make_unique<ObservedLSTM>(lstm.options(), lstm.parameters(), *lstm.qconfig, parts);
  observed->copy_hooks_from(lstm);
  return observed;
}

const Observer& ObservedLSTM::observer(int64_t set, LstmPoint point) const {
  return *observers_.at(set)[static_cast<size_t>(point)];
}

StaticLstmCellQParams ObservedLSTM::cell_qparams(int64_t set) const {
  StaticLstmCellQParams q;
  for (int i = 0; i < kLstmPoints; ++i) {
    try {
      q.points[i] = as_tensor_qparams(observers_.at(set)[i]->calculate_qparams());
    } catch (const Error& e) {
      throw Error(name() + ": " + static_lstm_cell_prefix(options_, set) + to_string(static_cast<LstmPoint>(i)) +
                  ": " + e.what() + " (calibrate the prepared LSTM before converting it)");
    }
  }
  return q;
}

StateDict ObservedLSTM::state_dict() const {
  StateDict state;
  for (int64_t set = 0; set < options_.parameter_sets(); ++set) {
    const std::string cell = static_lstm_cell_prefix(options_, set);
    const RnnParameters& p = parameters_[set];
    state.set(cell + "igates.weight", p.w_ih);
    if (p.b_ih) state.set(cell + "igates.bias", *p.b_ih);
    state.set(cell + "hgates.weight", p.w_hh);
    if (p.b_hh) state.set(cell + "hgates.bias", *p.b_hh);
  }
  state.versions[""] = 1;
  return state;
}

void ObservedLSTM::load_state_dict(const StateDict& state) {
  state.check_keys(state_dict().keys(), name());
  std::vector<RnnParameters> parameters;
  for (int64_t set = 0; set < options_.parameter_sets(); ++set) {
    const std::string cell = static_lstm_cell_prefix(options_, set);
    const auto tensor = [&](const std::string& key) { return state.at(key).as<Tensor>(key); };
    RnnParameters p{tensor(cell + "igates.weight"), tensor(cell + "hgates.weight"), std::nullopt, std::nullopt};
    if (options_.bias) {
      p.b_ih = tensor(cell + "igates.bias");
      p.b_hh = tensor(cell + "hgates.bias");
    }
    parameters.push_back(std::move(p));
  }
  check_rnn_parameters(options_, parameters, name());
  parameters_ = std::move(parameters);
}

// The quantizable cell in float, its operations in its order (igates + hgates, then the
// chunks), every point's value shown to its observer.
ModuleOutput ObservedLSTM::forward(const ModuleInput& input) {
  const Tensor& given = expect_tensor(input, name());
  if (options_.cell && given.dim() != 2)
    throw Error(name() + ": expects a (batch, features) input, got " + shape_to_string(given.sizes));
  // A cell's call is one step of a one-layer sequence.
  const Tensor x = options_.cell ? Tensor({1, given.size(0), given.size(1)}, given.data) : given;
  if (x.dim() != 3)
    throw Error(name() + ": expects a (seq, batch, features) input" + std::string(options_.batch_first ? " (batch_first: (batch, seq, features))" : "") +
                ", got " + shape_to_string(x.sizes));
  // A cell is calibrated step by step, on the states it will see: (h, c) of (batch, hidden).
  if (input.hidden && !options_.cell)
    throw Error(name() + ": an initial state is not supported by the harness's static LSTM");
  if (input.hidden && (!input.hidden->c || input.hidden->h.sizes != Shape{given.size(0), options_.hidden_size} ||
                       input.hidden->c->sizes != input.hidden->h.sizes))
    throw Error(name() + ": a cell's state is (h, c), each (batch, hidden_size)");
  if (x.size(2) != options_.input_size)
    throw Error(name() + ": input.size(-1) must be equal to input_size. Expected " + std::to_string(options_.input_size) +
                ", got " + std::to_string(x.size(2)));
  const int64_t T = options_.batch_first ? x.size(1) : x.size(0);
  const int64_t B = options_.batch_first ? x.size(0) : x.size(1);
  const int64_t H = options_.hidden_size, D = options_.directions();
  // Time-major rows.
  std::vector<float> layer_input(T * B * x.size(2));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t f = 0; f < x.size(2); ++f)
        layer_input[(t * B + b) * x.size(2) + f] =
            x.data[(options_.batch_first ? b * T + t : t * B + b) * x.size(2) + f];
  std::vector<float> h_n(options_.parameter_sets() * B * H), c_n(h_n.size());
  int64_t features = options_.input_size;
  const auto observe = [&](int64_t set, LstmPoint p, const std::vector<float>& v, const Shape& shape) {
    observers_[set][static_cast<size_t>(p)]->observe(Tensor(shape, v));
  };
  for (int64_t layer = 0; layer < options_.num_layers; ++layer) {
    std::vector<float> output(T * B * D * H);
    for (int64_t d = 0; d < D; ++d) {
      const int64_t set = layer * D + d;
      const RnnParameters& p = parameters_[set];
      std::vector<float> h(B * H, 0.0f), c(B * H, 0.0f), gi(B * 4 * H), gh(B * 4 * H);
      if (input.hidden) {
        h = input.hidden->h.data;
        c = input.hidden->c->data;
      }
      for (int64_t i = 0; i < T; ++i) {
        const int64_t t = d == 0 ? i : T - 1 - i;
        float_projection(layer_input.data() + t * B * features, B, features, p.w_ih, p.b_ih, gi.data());
        float_projection(h.data(), B, H, p.w_hh, p.b_hh, gh.data());
        observe(set, LstmPoint::IGates, gi, {B, 4 * H});
        observe(set, LstmPoint::HGates, gh, {B, 4 * H});
        std::vector<float> gates(B * 4 * H);
        for (size_t k = 0; k < gates.size(); ++k) gates[k] = gi[k] + gh[k];
        observe(set, LstmPoint::Gates, gates, {B, 4 * H});
        std::vector<float> in(B * H), forget(B * H), cell(B * H), out(B * H), fc(B * H), ig(B * H), th(B * H);
        for (int64_t b = 0; b < B; ++b)
          for (int64_t j = 0; j < H; ++j) {
            const float* g = gates.data() + b * 4 * H;
            in[b * H + j] = rnn_sigmoid(g[j]);
            forget[b * H + j] = rnn_sigmoid(g[H + j]);
            cell[b * H + j] = rnn_tanh(g[2 * H + j]);
            out[b * H + j] = rnn_sigmoid(g[3 * H + j]);
          }
        for (int64_t k = 0; k < B * H; ++k) {
          fc[k] = forget[k] * c[k];
          ig[k] = in[k] * cell[k];
          c[k] = fc[k] + ig[k];
          th[k] = rnn_tanh(c[k]);
          h[k] = out[k] * th[k];
        }
        for (auto [point, values] : {std::pair{LstmPoint::InputGate, &in}, {LstmPoint::ForgetGate, &forget},
                                     {LstmPoint::CellGate, &cell}, {LstmPoint::OutputGate, &out},
                                     {LstmPoint::FgateCx, &fc}, {LstmPoint::IgateCgate, &ig},
                                     {LstmPoint::CellState, &c}, {LstmPoint::TanhCell, &th}, {LstmPoint::Hidden, &h}})
          observe(set, point, *values, {B, H});
        for (int64_t b = 0; b < B; ++b)
          std::copy(h.begin() + b * H, h.begin() + (b + 1) * H, output.begin() + ((t * B + b) * D + d) * H);
      }
      std::copy(h.begin(), h.end(), h_n.begin() + set * B * H);
      std::copy(c.begin(), c.end(), c_n.begin() + set * B * H);
    }
    layer_input = std::move(output);
    features = D * H;
  }
  Tensor y(options_.batch_first ? Shape{B, T, D * H} : Shape{T, B, D * H});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t f = 0; f < D * H; ++f)
        y.data[(options_.batch_first ? b * T + t : t * B + b) * D * H + f] = layer_input[(t * B + b) * D * H + f];
  if (options_.cell) return {Tensor({B, H}, h_n), HiddenState{Tensor({B, H}, h_n), Tensor({B, H}, c_n)}};
  const Shape state_shape{options_.parameter_sets(), B, H};
  return {y, HiddenState{Tensor(state_shape, h_n), Tensor(state_shape, c_n)}};
}

std::string static_lstm_cell_prefix(const RnnOptions& options, int64_t set) {
  if (options.cell) return "";
  return "layers." + std::to_string(set / options.directions()) + ".layer_" +
         (set % options.directions() ? "bw" : "fw") + ".cell.";
}

std::string static_lstm_cell_name(const RnnOptions& options, int64_t set) {
  const std::string prefix = static_lstm_cell_prefix(options, set);
  return prefix.empty() ? "the cell" : prefix.substr(0, prefix.size() - 1);
}

void check_static_lstm_cells(const RnnOptions& options, const std::vector<StaticLstmCell>& cells,
                             const std::string& module_name) {
  options.validate();
  if (options.mode != RnnMode::LSTM || options.proj_size != 0)
    throw Error(module_name + ": a statically quantized LSTM has LSTM options without proj_size");
  if (static_cast<int64_t>(cells.size()) != options.parameter_sets())
    throw Error(module_name + ": expected " + std::to_string(options.parameter_sets()) + " cells, got " +
                std::to_string(cells.size()));
  for (int64_t set = 0; set < options.parameter_sets(); ++set) {
    const StaticLstmCell& cell = cells[set];
    const std::string where = module_name + ": " + static_lstm_cell_name(options, set);
    const auto check_weight = [&](const QTensor& w, const Shape& want, const std::string& linear) {
      if (w.sizes != want)
        throw Error(where + ": " + linear + ": weight has shape " + shape_to_string(w.sizes) + ", expected " +
                    shape_to_string(want));
    };
    check_weight(cell.w_ih, {options.gate_size(), options.layer_input_size(set / options.directions())}, "igates");
    check_weight(cell.w_hh, {options.gate_size(), options.hidden_size}, "hgates");
    if (cell.b_ih.has_value() != options.bias || cell.b_hh.has_value() != options.bias)
      throw Error(where + ": bias=" + std::string(options.bias ? "True" : "False") + " but the biases are " +
                  (options.bias ? "missing" : "given"));
    for (const auto* b : {&cell.b_ih, &cell.b_hh})
      if (*b && (*b)->sizes != Shape{options.gate_size()})
        throw Error(where + ": bias has shape " + shape_to_string((*b)->sizes) + ", expected [" +
                    std::to_string(options.gate_size()) + "]");
    for (int i = 0; i < kLstmPoints; ++i) {
      const QuantParams& q = cell.qparams.points[i];
      if (q.dtype != DType::QUInt8 || q.per_channel())
        throw Error(where + ": " + to_string(static_cast<LstmPoint>(i)) + ": output qparams must be quint8 per-tensor, got " +
                    q.to_string());
      validate(q);
    }
  }
}

QTensor requantized(const QTensor& q, const QuantParams& qparams) {
  if (q.qparams == qparams) return q;
  return quantize(dequantize(q), qparams);
}

QTensor QuantizedSequenceOps::zeros(int64_t rows, int64_t cols) const {
  // torch.quantize_per_tensor(torch.zeros(...), scale=1.0, zero_point=0, dtype=torch.quint8)
  return QTensor{{rows, cols}, std::vector<int32_t>(rows * cols, 0), QuantParams::per_tensor(DType::QUInt8, 1.0, 0)};
}

QTensor QuantizedSequenceOps::step(const QTensor& x, int64_t t) const {
  const int64_t n = x.sizes[1] * x.sizes[2];
  return QTensor{{x.sizes[1], x.sizes[2]},
                 std::vector<int32_t>(x.values.begin() + t * n, x.values.begin() + (t + 1) * n), x.qparams};
}

QTensor QuantizedSequenceOps::stack(const std::vector<QTensor>& parts) const {
  QTensor out{parts.at(0).sizes, {}, parts[0].qparams};
  out.sizes.insert(out.sizes.begin(), static_cast<int64_t>(parts.size()));
  for (const QTensor& part : parts) {
    const QTensor same = requantized(part, out.qparams);
    out.values.insert(out.values.end(), same.values.begin(), same.values.end());
  }
  return out;
}

QTensor QuantizedSequenceOps::cat_features(const QTensor& a, const QTensor& b) const {
  const QTensor b_same = requantized(b, a.qparams);
  const int64_t fa = a.sizes.back(), fb = b.sizes.back(), rows = a.numel() / fa;
  QTensor out{a.sizes, {}, a.qparams};
  out.sizes.back() = fa + fb;
  out.values.reserve(rows * (fa + fb));
  for (int64_t r = 0; r < rows; ++r) {
    out.values.insert(out.values.end(), a.values.begin() + r * fa, a.values.begin() + (r + 1) * fa);
    out.values.insert(out.values.end(), b_same.values.begin() + r * fb, b_same.values.begin() + (r + 1) * fb);
  }
  return out;
}

QTensor QuantizedSequenceOps::flatten_layers(const QTensor& s) const {
  QTensor out = s;
  out.sizes = {s.sizes[0] * s.sizes[1], s.sizes[2], s.sizes[3]};
  return out;
}

namespace {
QTensor swap_first_two(const QTensor& x) {
  const int64_t a = x.sizes[0], b = x.sizes[1], f = x.sizes[2];
  QTensor out{{b, a, f}, std::vector<int32_t>(x.values.size()), x.qparams};
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      std::copy(x.values.begin() + (i * b + j) * f, x.values.begin() + (i * b + j + 1) * f,
                out.values.begin() + (j * a + i) * f);
  return out;
}
}  // namespace

QTensor to_time_major(const QTensor& x, bool batch_first) { return batch_first ? swap_first_two(x) : x; }
QTensor from_time_major(const QTensor& x, bool batch_first) { return batch_first ? swap_first_two(x) : x; }

}  // namespace qconform
