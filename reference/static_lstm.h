#pragma once
// The reference statically quantized LSTM, "QuantizedLSTM(Reference)": the specification the
// integer LSTM is measured against. Every point of a cell (core/float/static_lstm.h) is
//
//   q_point = quantize(f(dequantize(operands)), qparams_point)
//
// with f in float: the Linears as torch.ao.nn.quantized.reference.Linear (fake-quantized
// weights, float bias), add and mul as float + and *, sigmoid and tanh rounded from double.
// Between cells the values are quantized tensors, so the sequence around them (stacks,
// the two directions' concatenation and their requantization) is the integer one.
#include <memory>
#include <vector>

#include "core/float/static_lstm.h"
#include "core/module.h"

namespace qconform {

class ReferenceLinear;

// The converted cells of a calibrated quantizable LSTM: weights quantized by the qconfig's
// weight observer (per-channel along the gate rows, or per-tensor), output qparams from the
// point observers. Error names the cell and point a calibration did not reach.
std::vector<StaticLstmCell> static_lstm_cells(const ObservedLSTM& observed);

// The quantized input of a static LSTM call, (T, B, F) ((B, T, F) batch_first), or a cell's
// (B, F); Error naming the module otherwise.
const QTensor& expect_static_lstm_input(const ModuleInput& input, const RnnOptions& options,
                                        const std::string& module_name);

class ReferenceStaticLSTM : public Module {
 public:
  ReferenceStaticLSTM(RnnOptions options, std::vector<StaticLstmCell> cells);
  ~ReferenceStaticLSTM() override;
  static std::unique_ptr<ReferenceStaticLSTM> from_observed(const ObservedLSTM& observed);

  std::string name() const override {
    return options_.cell ? "QuantizedLSTMCell(Reference)" : "QuantizedLSTM(Reference)";
  }
  std::string kind_name() const override { return options_.cell ? "LSTMCell" : "LSTM"; }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Reference; }
  // Per cell (static_lstm_cell_prefix): igates and hgates as reference Linears (weight, bias,
  // weight_qscheme, weight_dtype, weight_scale, weight_zero_point, weight_axis) with their
  // output "scale" and "zero_point", then every other point's "scale" and "zero_point".
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const RnnOptions& options() const { return options_; }
  const std::vector<StaticLstmCell>& cells() const { return cells_; }
  // One cell step, for the oracles' bounds: (h', c') from x_t, h, c.
  std::pair<QTensor, QTensor> cell(int64_t set, const QTensor& x, const QTensor& h, const QTensor& c) const;
  // igates or hgates of one cell on `in` (x_t or h): the reference Linear, quantized.
  QTensor linear_point(int64_t set, LstmPoint which, const QTensor& in) const;
  // The float value of `point` before its quantization, as the step computes it (the
  // oracles' bounds need it); `operands` are the point's dequantized operands.
  static Tensor point_value(LstmPoint point, const std::vector<Tensor>& operands);

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  void set_cells(std::vector<StaticLstmCell> cells);
  RnnOptions options_;
  std::vector<StaticLstmCell> cells_;
  std::vector<std::unique_ptr<ReferenceLinear>> igates_, hgates_;
};

}  // namespace qconform
