#pragma once
// The statically quantized LSTM of PyTorch 1.13 (torch.ao.nn.quantizable.LSTM, prepared and
// converted to torch.ao.nn.quantized.LSTM): what its three implementations share.
//
// Prepare swaps nn.LSTM for the quantizable LSTM (the default custom-module config), whose
// cells are built of parts that each quantize their output. Per cell (layer l, direction d,
// index l * directions + d), in forward order, with x_t the step's input and (h, c) the state:
//
//   point         op                                        qparams of its output
//   igates        Linear(x_t): quantized::linear            observed
//   hgates        Linear(h):   quantized::linear            observed
//   gates         add(igates, hgates): quantized::add       observed (linear_output in the seed)
//   input_gate    sigmoid(gates[:, 0:H])                    fixed: 1/256, 0  (seed: sigmoid)
//   forget_gate   sigmoid(gates[:, H:2H])                   fixed: 1/256, 0
//   cell_gate     tanh(gates[:, 2H:3H])                     fixed: 2/256, 128 (seed: tanh)
//   output_gate   sigmoid(gates[:, 3H:4H])                  fixed: 1/256, 0
//   fgate_cx      mul(forget_gate, c): quantized::mul       observed (cell_state)
//   igate_cgate   mul(input_gate, cell_gate)                observed (cell_state)
//   cell_state    add(fgate_cx, igate_cgate) = c'           observed (cell_state)
//   tanh_cell     tanh(c')                                  fixed: 2/256, 128
//   hidden        mul(output_gate, tanh_cell) = h'          observed (hidden_state)
//
// The sequence around the cells (quantizable/modules/rnn.py), on quantized tensors:
//   - the initial state, when none is given, is zeros quantized with scale 1.0, zero point 0;
//   - a direction's outputs are stacked over time (one qparams: its `hidden` point's);
//   - the reverse direction runs on the flipped sequence and is flipped back;
//   - torch.cat and torch.stack of quantized tensors take the FIRST tensor's qparams and
//     requantize the others to them (quantized_cat_impl: dequantize, concatenate, quantize).
//     The two directions' outputs are concatenated (the reverse one changes grid); each
//     bidirectional layer stacks its (h_fw, h_bw) and (c_fw, c_bw), then the LSTM stacks the
//     layers' states: a deeper layer's final state is requantized once or twice;
//   - batch_first transposes in and out.
// PyTorch 1.13 fixes the sigmoid and tanh qparams (the ops' own); the seed's lstm_utils.py
// (PyTorch 2's FX flow) lets an observer choose them, which then means the op's fixed output
// requantized to the chosen qparams (StaticLstmCellQParams may hold any).
#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/float/rnn.h"
#include "core/observers.h"
#include "core/qconfig.h"

namespace qconform {

enum class LstmPoint {
  IGates, HGates, Gates, InputGate, ForgetGate, CellGate, OutputGate, FgateCx, IgateCgate, CellState, TanhCell, Hidden
};
constexpr int kLstmPoints = 12;
// The quantizable cell's attribute that produces the point ("igates", "fgate_cx_igate_cgate",
// "ogate_cy", ...; the sigmoid and tanh points are named as in PyTorch 2's cell).
std::string to_string(LstmPoint point);
// The points whose qparams PyTorch 1.13 fixes (the sigmoid and tanh outputs).
bool fixed_in_pytorch(LstmPoint point);
// sigmoid: (1/256, 0); tanh: (2/256, 128) (quint8, as ATen's quantized sigmoid and tanh).
QuantParams fixed_lstm_qparams(LstmPoint point);

// The output qparams of every point of one cell.
struct StaticLstmCellQParams {
  std::array<QuantParams, kLstmPoints> points;
  StaticLstmCellQParams();  // the fixed ones set, the observed ones (1.0, 0) until observed
  const QuantParams& operator[](LstmPoint p) const { return points[static_cast<size_t>(p)]; }
  QuantParams& operator[](LstmPoint p) { return points[static_cast<size_t>(p)]; }
  bool operator==(const StaticLstmCellQParams& other) const { return points == other.points; }
};

// The observer constructors of the seed's _get_lstm_with_individually_observed_parts, each
// replacing the qconfig's activation observer at its points (unset: the qconfig's, or for
// sigmoid and tanh PyTorch 1.13's fixed qparams):
//   linear_output  gates;  sigmoid  input, forget and output gate;  tanh  cell_gate;
//   cell_state     fgate_cx, igate_cgate, cell_state;  hidden_state  hidden.
struct LstmPartObservers {
  std::optional<ObserverFactory> linear_output, sigmoid, tanh, cell_state, hidden_state;
};

// A lone cell (options.cell: torch.ao.nn.quantizable.LSTMCell, "QuantizableLSTMCell", made by
// its from_float and prepared) takes (batch, features) and gives (h', c'); PyTorch 1.13's
// custom-module config has no entry for nn.LSTMCell, so no eager flow reaches it.
//
// The quantizable LSTM after prepare (torch.ao.nn.quantizable.LSTM, "QuantizableLSTM"): the
// float recurrence in the cell's operation order, with an observer at every point and a
// weight observer per Linear; calibration runs it on float inputs (seq, batch, features),
// or (batch, seq, features) when batch_first. No packed or unbatched inputs: the quantizable
// module takes neither.
class ObservedLSTM : public Module {
 public:
  // nn.LSTM's options and parameters with the qconfig prepare propagated (Error without one,
  // with proj_size, or for a cell), observers per `parts`.
  ObservedLSTM(RnnOptions options, std::vector<RnnParameters> parameters, QConfig qconfig,
               const LstmPartObservers& parts = {});
  std::string name() const override { return options_.cell ? "QuantizableLSTMCell" : "QuantizableLSTM"; }
  std::string kind_name() const override { return options_.cell ? "LSTMCell" : "LSTM"; }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override;  // the float parameters under PyTorch's layer keys
  void load_state_dict(const StateDict& state) override;

  const RnnOptions& options() const { return options_; }
  const std::vector<RnnParameters>& parameters() const { return parameters_; }
  // Each cell's output qparams, from its observers (Error naming the cell and point while
  // a point has seen nothing). Its weights are quantized by the qconfig's weight observer
  // (reference/static_lstm.h static_lstm_cells).
  StaticLstmCellQParams cell_qparams(int64_t set) const;
  const Observer& observer(int64_t set, LstmPoint point) const;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  RnnOptions options_;
  std::vector<RnnParameters> parameters_;
  std::vector<std::array<std::shared_ptr<Observer>, kLstmPoints>> observers_;
};

// prepare's swap (float_to_observed_custom_module_class: nn.LSTM -> quantizable LSTM).
std::unique_ptr<ObservedLSTM> prepare_static_lstm(const FloatRNN& lstm, const LstmPartObservers& parts = {});

// The parameters of one converted cell, shared by the implementations' constructors.
struct StaticLstmCell {
  QTensor w_ih, w_hh;  // qint8 (per-tensor or per-channel along the gate rows); engines check the dtype
  std::optional<Tensor> b_ih, b_hh;
  StaticLstmCellQParams qparams;
};
// Shapes and qparams against the options; Error names the module, cell and what is wrong.
void check_static_lstm_cells(const RnnOptions& options, const std::vector<StaticLstmCell>& cells,
                             const std::string& module_name);

// The prefix of a cell's keys in torch.ao.nn.quantized.LSTM's state_dict,
// "layers.{l}.layer_{fw,bw}.cell." (none for a lone cell), and the cell's name in messages.
std::string static_lstm_cell_prefix(const RnnOptions& options, int64_t set);
std::string static_lstm_cell_name(const RnnOptions& options, int64_t set);

// --- the sequence around the cells, written once for the quantized implementations --------
//
// State is the value carried between cells (QTensor for the reference and integer forms; the
// oracles' bound type carries an error with it). Ops provides, for State:
//   State zeros(int64_t rows, int64_t cols)               scale 1.0, zero point 0
//   State step(const State& x, int64_t t)                 x[t] of a (T, B, F) sequence
//   std::pair<State, State> cell(int64_t set, const State& x_t, const State& h, const State& c)
//   State stack(const std::vector<State>& parts)          torch.stack(parts, 0), first's qparams
//   State cat_features(const State& a, const State& b)    torch.cat([a, b], -1), a's qparams
//   State flatten_layers(const State& s)                  (L, D, B, H) -> (L * D, B, H)
// The input is (T, B, F), already time-major; returns the output (T, B, D * H) and h_n, c_n
// (L * D, B, H).
template <typename State>
struct StaticLstmRun {
  State output, h_n, c_n;
};

template <typename State, typename Ops>
StaticLstmRun<State> run_static_lstm(const RnnOptions& o, Ops& ops, State x, int64_t steps, int64_t batch) {
  std::vector<State> h_layers, c_layers;
  for (int64_t layer = 0; layer < o.num_layers; ++layer) {
    std::vector<State> directions, h_final, c_final;
    for (int64_t d = 0; d < o.directions(); ++d) {
      const int64_t set = layer * o.directions() + d;
      State h = ops.zeros(batch, o.hidden_size), c = ops.zeros(batch, o.hidden_size);
      std::vector<State> outputs(steps);
      for (int64_t i = 0; i < steps; ++i) {
        const int64_t t = d == 0 ? i : steps - 1 - i;  // x.flip(0), and the result flipped back
        std::tie(h, c) = ops.cell(set, ops.step(x, t), h, c);
        outputs[t] = h;
      }
      directions.push_back(ops.stack(outputs));
      h_final.push_back(h);
      c_final.push_back(c);
    }
    const bool both = directions.size() == 2;
    x = both ? ops.cat_features(directions[0], directions[1]) : directions[0];
    h_layers.push_back(both ? ops.stack(h_final) : h_final[0]);
    c_layers.push_back(both ? ops.stack(c_final) : c_final[0]);
  }
  if (o.bidirectional) return {x, ops.flatten_layers(ops.stack(h_layers)), ops.flatten_layers(ops.stack(c_layers))};
  return {x, ops.stack(h_layers), ops.stack(c_layers)};
}

// The sequence operations on quantized tensors, as ATen computes them (the reference and
// integer implementations share them: they move or requantize integers, the same in both).
// Requantizing is quantized_cat_impl's: dequantize (core/quantize.h), then quantize.
struct QuantizedSequenceOps {
  QTensor zeros(int64_t rows, int64_t cols) const;
  QTensor step(const QTensor& x, int64_t t) const;
  QTensor stack(const std::vector<QTensor>& parts) const;
  QTensor cat_features(const QTensor& a, const QTensor& b) const;
  QTensor flatten_layers(const QTensor& s) const;
};
// `q` on the grid of `qparams` (the integers unchanged when the qparams are equal).
QTensor requantized(const QTensor& q, const QuantParams& qparams);
// One cell's call on the quantized implementations' QTensors: (h', c') from x (B, F) and the
// zero state (scale 1.0, zero point 0), as LSTMCell.forward with hidden None; the output is h'.
template <typename Ops>
ModuleOutput run_static_lstm_cell(Ops& ops, const QTensor& x, int64_t hidden_size) {
  const QTensor zeros = ops.zeros(x.sizes[0], hidden_size);
  auto [h, c] = ops.cell(0, x, zeros, zeros);
  return {h, std::nullopt, QuantizedHiddenState{h, c}};
}
// Time-major (T, B, F) from the caller's layout and back (batch_first swaps the first two).
QTensor to_time_major(const QTensor& x, bool batch_first);
QTensor from_time_major(const QTensor& x, bool batch_first);

// A whole call of a quantized implementation (`ops` as run_static_lstm's, on QTensors): a lone
// cell's one step, or the sequence in the caller's layout, with (h_n, c_n).
template <typename Ops>
ModuleOutput run_static_lstm_call(const RnnOptions& o, Ops& ops, const QTensor& given) {
  if (o.cell) return run_static_lstm_cell(ops, given, o.hidden_size);
  const QTensor x = to_time_major(given, o.batch_first);
  const StaticLstmRun<QTensor> run = run_static_lstm(o, ops, x, x.sizes[0], x.sizes[1]);
  return {from_time_major(run.output, o.batch_first), std::nullopt, QuantizedHiddenState{run.h_n, run.c_n}};
}

}  // namespace qconform
