#pragma once
// torch.ao.nn.quantized.LSTM, "QuantizedLSTM": the true-integer statically quantized LSTM.
// Each cell (core/float/static_lstm.h) on quint8 tensors, as PyTorch 1.13's converted module
// calls LibTorch's ops, and each op as that engine computes it:
//
//   1. igates = quantized::linear(x_t), hgates = quantized::linear(h)   QuantizedLinear
//                                        (quantized/kernels/static_gemm.h, per engine and path)
//   2. gates  = quantized::add(igates, hgates)        QNNPACK's fixed-point add on qnnpack,
//                                                     ATen's kernel elsewhere (kernels/functional.h)
//   3. sigmoid / tanh of the four chunks              on qnnpack QNNPACK's lookup tables; else
//                                                     ATen's kernel per row of the chunk (a chunk
//                                                     is a strided view: ATen's vectorised loop
//                                                     restarts at every row) (kernels/elementwise.h)
//   4. fgate_cx = quantized::mul(f, c), igate_cgate = quantized::mul(i, g)   ATen's qmul
//   5. c' = quantized::add(fgate_cx, igate_cgate)     as 2.
//   6. tanh(c')                                       as 3., on the whole contiguous (B, H)
//   7. h' = quantized::mul(o, tanh(c'))               as 4.
// A point whose qparams differ from the op's own (the seed's custom sigmoid or tanh
// observers) is the op's output requantized to them. The sequence around the cells is the
// reference's (QuantizedSequenceOps): the same integer moves and requantizations.
#include <memory>
#include <vector>

#include "core/float/static_lstm.h"
#include "core/module.h"

namespace qconform {

class QuantizedLinear;
class ReferenceStaticLSTM;

// The state_dict of torch.ao.nn.quantized.LSTM, shared with LibTorch's module: per cell
// (static_lstm_cell_prefix) igates and hgates as nnq.Linear (scale, zero_point,
// _packed_params.dtype, _packed_params._packed_params; version 3), then gates, fgate_cx,
// igate_cgate, fgate_cx_igate_cgate and ogate_cy as QFunctional (scale, zero_point; their
// Identity activation_post_process holds nothing). Sigmoid and tanh qparams are not in it:
// PyTorch 1.13 fixes them, and a module holding others refuses to save (Error says why).
// Loading is strict and checks every cell before anything changes (Error names the key).
// `missing_bias_as_zeros`: the engine unpacks a Linear without bias with a zero bias
// (qnnpack), which PyTorch then saves; reading, an all-zero bias of a bias=False LSTM is none.
StateDict static_lstm_state_dict(const RnnOptions& options, const std::vector<StaticLstmCell>& cells,
                                 bool missing_bias_as_zeros);
std::vector<StaticLstmCell> parse_static_lstm_state_dict(const RnnOptions& options, const StateDict& state,
                                                         const std::string& module_name);

class QuantizedStaticLSTM : public Module {
 public:
  QuantizedStaticLSTM(RnnOptions options, std::vector<StaticLstmCell> cells, EngineProfile engine);
  ~QuantizedStaticLSTM() override;
  static std::unique_ptr<QuantizedStaticLSTM> from_observed(const ObservedLSTM& observed, EngineProfile engine);
  static std::unique_ptr<QuantizedStaticLSTM> from_reference(const ReferenceStaticLSTM& reference,
                                                             EngineProfile engine);

  // A lone cell keeps its quantizable class's name after convert, as PyTorch's does.
  std::string name() const override { return options_.cell ? "QuantizableLSTMCell" : "QuantizedLSTM"; }
  std::string kind_name() const override { return options_.cell ? "LSTMCell" : "LSTM"; }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  std::pair<QTensor, QTensor> cell(int64_t set, const QTensor& x, const QTensor& h, const QTensor& c);

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  void set_cells(std::vector<StaticLstmCell> cells);
  RnnOptions options_;
  std::vector<StaticLstmCell> cells_;
  EngineProfile engine_;
  std::vector<std::unique_ptr<QuantizedLinear>> igates_, hgates_;
};

}  // namespace qconform
