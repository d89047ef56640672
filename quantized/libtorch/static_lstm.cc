#include "quantized/libtorch/static_lstm.h"

#include "core/error.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/static/lstm.h"
#include "reference/static_lstm.h"

namespace qconform {
namespace {

class LibTorchStaticLSTM : public Module {
 public:
  LibTorchStaticLSTM(RnnOptions options, std::vector<StaticLstmCell> cells, EngineProfile engine,
                     bool fresh_prepack = false)
      : options_(std::move(options)), engine_(engine), fresh_prepack_(fresh_prepack) {
    set_cells(std::move(cells));
  }

  std::string name() const override { return options_.cell ? "QuantizableLSTMCell" : "QuantizedLSTM"; }
  std::string kind_name() const override { return options_.cell ? "LSTMCell" : "LSTM"; }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }

  // The weights as LibTorch's packed params give them back (linear_unpack).
  StateDict state_dict() const override {
    libtorch::EngineGuard guard(engine_);
    std::vector<StaticLstmCell> cells = cells_;
    for (size_t set = 0; set < cells.size(); ++set)
      for (auto [packed, weight, bias] : {std::tuple{&packed_ih_[set], &cells[set].w_ih, &cells[set].b_ih},
                                          {&packed_hh_[set], &cells[set].w_hh, &cells[set].b_hh}}) {
        auto unpacked = libtorch::call_op("quantized::linear_unpack", "", {*packed});
        *weight = libtorch::from_aten_quantized(unpacked[0].toTensor());
        *bias = unpacked[1].isNone() ? std::nullopt : std::optional<Tensor>(libtorch::from_aten(unpacked[1].toTensor()));
      }
    // LibTorch's unpack already gives what it gives for a missing bias.
    return static_lstm_state_dict(options_, cells, /*missing_bias_as_zeros=*/false);
  }
  void load_state_dict(const StateDict& state) override {
    set_cells(parse_static_lstm_state_dict(options_, state, name()));
  }

  // LSTMCell.forward of the quantized module.
  std::pair<at::Tensor, at::Tensor> cell(int64_t set, const at::Tensor& x, const at::Tensor& h, const at::Tensor& c) {
    const StaticLstmCellQParams& q = cells_[set].qparams;
    const auto linear = [&](const at::Tensor& in, const c10::IValue& packed, LstmPoint p) {
      // The history-free variant: this call alone on a weight packed for it.
      const c10::IValue weight = fresh_prepack_ ? repack(packed) : packed;
      return libtorch::call_op("quantized::linear", "", {in, weight, q[p].scale(), q[p].zero_point()})[0].toTensor();
    };
    const auto binary = [&](const char* op, const at::Tensor& a, const at::Tensor& b, LstmPoint p) {
      return libtorch::call_op(op, "", {a, b, q[p].scale(), q[p].zero_point()})[0].toTensor();
    };
    // The op's own qparams, requantized where the point holds others (the seed's observers).
    const auto point = [&](at::Tensor y, LstmPoint p) {
      if (y.q_scale() == q[p].scale() && y.q_zero_point() == q[p].zero_point()) return y;
      return at::quantize_per_tensor(y.dequantize(), q[p].scale(), q[p].zero_point(), at::kQUInt8);
    };
    const at::Tensor igates = linear(x, packed_ih_[set], LstmPoint::IGates);
    const at::Tensor hgates = linear(h, packed_hh_[set], LstmPoint::HGates);
    const at::Tensor gates = binary("quantized::add", igates, hgates, LstmPoint::Gates);
    const std::vector<at::Tensor> chunks = gates.chunk(4, 1);
    const at::Tensor input_gate = point(at::sigmoid(chunks[0]), LstmPoint::InputGate);
    const at::Tensor forget_gate = point(at::sigmoid(chunks[1]), LstmPoint::ForgetGate);
    const at::Tensor cell_gate = point(at::tanh(chunks[2]), LstmPoint::CellGate);
    const at::Tensor out_gate = point(at::sigmoid(chunks[3]), LstmPoint::OutputGate);
    const at::Tensor fgate_cx = binary("quantized::mul", forget_gate, c, LstmPoint::FgateCx);
    const at::Tensor igate_cgate = binary("quantized::mul", input_gate, cell_gate, LstmPoint::IgateCgate);
    const at::Tensor cy = binary("quantized::add", fgate_cx, igate_cgate, LstmPoint::CellState);
    const at::Tensor tanh_cy = point(at::tanh(cy), LstmPoint::TanhCell);
    return {binary("quantized::mul", out_gate, tanh_cy, LstmPoint::Hidden), cy};
  }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const QTensor& x = expect_static_lstm_input(input, options_, name());
    libtorch::EngineGuard guard(engine_);
    struct Ops {
      LibTorchStaticLSTM* module;
      at::Tensor zeros(int64_t rows, int64_t cols) const {
        return at::quantize_per_tensor(at::zeros({rows, cols}), 1.0, 0, at::kQUInt8);
      }
      at::Tensor step(const at::Tensor& seq, int64_t t) const { return seq[t]; }
      std::pair<at::Tensor, at::Tensor> cell(int64_t set, const at::Tensor& xt, const at::Tensor& h,
                                             const at::Tensor& c) const {
        return module->cell(set, xt, h, c);
      }
      at::Tensor stack(const std::vector<at::Tensor>& parts) const { return at::stack(parts, 0); }
      at::Tensor cat_features(const at::Tensor& a, const at::Tensor& b) const { return at::cat({a, b}, a.dim() - 1); }
      at::Tensor flatten_layers(const at::Tensor& s) const { return s.reshape({-1, s.size(-2), s.size(-1)}); }
    } ops{this};
    at::Tensor seq = libtorch::to_aten(x);
    if (options_.batch_first) seq = seq.transpose(0, 1);
    try {
      if (options_.cell) {  // LSTMCell.forward(x, None): initialize_hidden(batch, is_quantized=True)
        const at::Tensor zeros = ops.zeros(seq.size(0), options_.hidden_size);
        auto [h, c] = cell(0, seq, zeros, zeros);
        const QTensor hq = libtorch::from_aten_quantized(h.contiguous());
        return {hq, std::nullopt, QuantizedHiddenState{hq, libtorch::from_aten_quantized(c.contiguous())}};
      }
      StaticLstmRun<at::Tensor> run = run_static_lstm(options_, ops, seq, seq.size(0), seq.size(1));
      if (options_.batch_first) run.output = run.output.transpose(0, 1);
      return {libtorch::from_aten_quantized(run.output.contiguous()), std::nullopt,
              QuantizedHiddenState{libtorch::from_aten_quantized(run.h_n.contiguous()),
                                   libtorch::from_aten_quantized(run.c_n.contiguous())}};
    } catch (const c10::Error& e) {
      throw Error(libtorch::first_line(e.what()));
    }
  }

 private:
  void set_cells(std::vector<StaticLstmCell> cells) {
    check_static_lstm_cells(options_, cells, name());
    // Float16 has no static prepack: the engine table's refusal, as the integer module's.
    for (const StaticLstmCell& cell : cells)
      if (cell.w_ih.qparams.dtype == DType::Float16)
        if (auto rejection = weight_rejection(engine_.engine, EngineOp::StaticLSTM, cell.w_ih.qparams))
          throw Error(rejection->message);
    libtorch::EngineGuard guard(engine_);
    std::vector<c10::IValue> packed_ih, packed_hh;
    const auto prepack = [](const QTensor& w, const std::optional<Tensor>& b) {
      const c10::IValue bias = b ? c10::IValue(libtorch::to_aten(*b)) : c10::IValue();
      return libtorch::call_op("quantized::linear_prepack", "", {libtorch::to_aten(w), bias})[0];
    };
    for (const StaticLstmCell& cell : cells) {
      packed_ih.push_back(prepack(cell.w_ih, cell.b_ih));
      packed_hh.push_back(prepack(cell.w_hh, cell.b_hh));
    }
    cells_ = std::move(cells);
    packed_ih_ = std::move(packed_ih);
    packed_hh_ = std::move(packed_hh);
  }

  static c10::IValue repack(const c10::IValue& packed) {
    auto unpacked = libtorch::call_op("quantized::linear_unpack", "", {packed});
    return libtorch::call_op("quantized::linear_prepack", "", {unpacked[0], unpacked[1]})[0];
  }

  RnnOptions options_;
  EngineProfile engine_;
  bool fresh_prepack_;
  std::vector<StaticLstmCell> cells_;
  std::vector<c10::IValue> packed_ih_, packed_hh_;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_static_lstm(const RnnOptions& options, std::vector<StaticLstmCell> cells,
                                                  EngineProfile engine, bool fresh_prepack) {
  return std::make_unique<LibTorchStaticLSTM>(options, std::move(cells), engine, fresh_prepack);
}

std::unique_ptr<Module> libtorch_static_lstm_from_observed(const ObservedLSTM& observed, EngineProfile engine,
                                                           bool fresh_prepack) {
  auto module = make_libtorch_static_lstm(observed.options(), static_lstm_cells(observed), engine, fresh_prepack);
  module->copy_hooks_from(observed);
  return module;
}

std::unique_ptr<Module> libtorch_static_lstm_from_reference(const ReferenceStaticLSTM& reference, EngineProfile engine) {
  auto module = make_libtorch_static_lstm(reference.options(), reference.cells(), engine);
  module->copy_hooks_from(reference);
  return module;
}

}  // namespace qconform

