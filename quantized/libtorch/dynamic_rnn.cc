#include "quantized/libtorch/dynamic_rnn.h"

#include "core/error.h"
#include "core/quantize.h"
#include "quantized/dynamic/rnn.h"
#include "quantized/libtorch/aten_bridge.h"
#include "core/float/rnn_runner.h"
#include "reference/rnn.h"

namespace qconform {
namespace {

c10::IValue optional_tensor(const std::optional<Tensor>& t) {
  return t ? c10::IValue(libtorch::to_aten(*t)) : c10::IValue(at::Tensor());
}

class LibTorchDynamicRNN : public RnnModule {
 public:
  LibTorchDynamicRNN(RnnOptions options, std::vector<QuantizedRnnWeights> weights, EngineProfile engine,
                     LibTorchRnnCalls calls)
      : RnnModule(std::move(options), RnnInputRules::Dynamic), engine_(engine), calls_(calls) {
    prepack(std::move(weights));
  }

  std::string name() const override { return "DynamicQuantized" + options_.float_name(); }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }

  StateDict state_dict() const override { return dynamic_rnn_state_dict(options_, weights_, version_); }
  void load_state_dict(const StateDict& state) override {
    int64_t version = DynamicQuantizedRNN::kVersion;
    auto weights = parse_dynamic_rnn_state_dict(options_, state, name(), &version);
    prepack(std::move(weights));
    version_ = version;
  }

 protected:
  RnnResult run(const RnnCall& call) override {
    libtorch::EngineGuard guard(engine_);
    const int64_t H = options_.hidden_size, B = call.batch, sets = options_.parameter_sets();
    const bool lstm = options_.mode == RnnMode::LSTM;
    const at::Tensor h0 = libtorch::to_aten(Tensor(Shape{sets, B, H}, call.h0));
    const at::Tensor c0 = lstm ? libtorch::to_aten(Tensor(Shape{sets, B, H}, call.c0)) : at::Tensor();
    if (calls_ == LibTorchRnnCalls::FreshPrepackPerProjection && !options_.cell) return run_per_projection(call);
    RnnResult result;
    if (options_.cell) {
      const at::Tensor x = libtorch::to_aten(Tensor(Shape{B, options_.input_size}, call.data_values()));
      const at::Tensor h = h0.view({B, H}), c = lstm ? c0.view({B, H}) : at::Tensor();
      const QuantizedRnnWeights& w = weights_[0];
      if (lstm) {
        auto out = libtorch::call_op("quantized::quantized_lstm_cell_dynamic", "",
                                     {x, c10::List<at::Tensor>({h, c}), packed_ih_[0], packed_hh_[0],
                                      optional_tensor(w.b_ih), optional_tensor(w.b_hh)});
        result.h_n = libtorch::from_aten(out[0].toTensor()).data;
        result.c_n = libtorch::from_aten(out[1].toTensor()).data;
      } else {
        const char* op = options_.mode == RnnMode::GRU           ? "quantized::quantized_gru_cell_dynamic"
                         : options_.nonlinearity == "relu"        ? "quantized::quantized_rnn_relu_cell_dynamic"
                                                                  : "quantized::quantized_rnn_tanh_cell_dynamic";
        auto out = libtorch::call_op(op, "", {x, h, packed_ih_[0], packed_hh_[0], optional_tensor(w.b_ih),
                                              optional_tensor(w.b_hh)});
        result.h_n = libtorch::from_aten(out[0].toTensor()).data;
      }
      return result;
    }
    c10::impl::GenericList params(cell_params_.front().type());
    for (const auto& p : cell_params_) params.push_back(p);
    const bool packed = call.packed;
    at::Tensor data = libtorch::to_aten(Tensor(packed ? Shape{call.rows, options_.input_size}
                                                      : Shape{call.seq_len, B, options_.input_size},
                                               call.data_values()));
    const at::Tensor batch_sizes = at::tensor(call.batch_sizes, at::kLong);
    const c10::IValue dtype = static_cast<int64_t>(fp16() ? at::kHalf : at::kQInt8);
    std::vector<c10::IValue> out;
    if (lstm) {
      const c10::List<at::Tensor> hx({h0, c0});
      out = packed ? libtorch::call_op("aten::quantized_lstm", "data",
                                       {data, batch_sizes, hx, params, options_.bias, options_.num_layers,
                                        options_.dropout, false, options_.bidirectional, dtype, true})
                   : libtorch::call_op("aten::quantized_lstm", "input",
                                       {data, hx, params, options_.bias, options_.num_layers, options_.dropout,
                                        false, options_.bidirectional, false, dtype, true});
    } else {
      out = packed ? libtorch::call_op("aten::quantized_gru", "data",
                                       {data, batch_sizes, h0, params, options_.bias, options_.num_layers,
                                        options_.dropout, false, options_.bidirectional})
                   : libtorch::call_op("aten::quantized_gru", "input",
                                       {data, h0, params, options_.bias, options_.num_layers, options_.dropout,
                                        false, options_.bidirectional, false});
    }
    result.output = libtorch::from_aten(out[0].toTensor().contiguous()).data;
    result.h_n = libtorch::from_aten(out[1].toTensor().contiguous()).data;
    if (lstm) result.c_n = libtorch::from_aten(out[2].toTensor().contiguous()).data;
    return result;
  }

 private:
  // The harness's recurrence (core/float/rnn_runner.h, ATen's call order) around LibTorch's
  // dynamic linear ops, each call on a weight prepacked for that call alone.
  RnnResult run_per_projection(const RnnCall& call) {
    struct Projections {
      const LibTorchDynamicRNN& m;
      void project(const QTensor& w, const std::optional<Tensor>& b, bool reduce_range, const float* x,
                   int64_t rows, int64_t in, float* out) const {
        const at::Tensor input = libtorch::to_aten(Tensor(Shape{rows, in}, std::vector<float>(x, x + rows * in)));
        const c10::IValue packed = m.prepack_one(w, b);
        const at::Tensor y =
            w.qparams.dtype == DType::Float16
                ? libtorch::call_op("quantized::linear_dynamic_fp16", "", {input, packed})[0].toTensor()
                : libtorch::call_op("quantized::linear_dynamic", "", {input, packed, reduce_range})[0].toTensor();
        const std::vector<float> values = libtorch::from_aten(y.contiguous()).data;
        std::copy(values.begin(), values.end(), out);
      }
      void project_input(int64_t set, const float* x, int64_t rows, int64_t in, float* out) const {
        const QuantizedRnnWeights& w = m.weights_[set];
        project(w.w_ih, w.b_ih, w.reduce_range, x, rows, in, out);
      }
      void project_hidden(int64_t set, const float* h, int64_t rows, float* out) const {
        const QuantizedRnnWeights& w = m.weights_[set];
        project(w.w_hh, w.b_hh, w.reduce_range, h, rows, m.options_.hidden_size, out);
      }
    } projections{*this};
    auto run = run_rnn<float>(options_, projections, call.data, call.rows, call.batch_sizes, call.h0, call.c0);
    return {std::move(run.output), std::move(run.h_n), std::move(run.c_n)};
  }

  bool fp16() const { return weights_.front().w_ih.qparams.dtype == DType::Float16; }

  c10::IValue prepack_one(const QTensor& w, const std::optional<Tensor>& b) const {
    const c10::IValue bias = b ? c10::IValue(libtorch::to_aten(*b)) : c10::IValue();
    if (w.qparams.dtype == DType::Float16)
      return libtorch::call_op("quantized::linear_prepack_fp16", "", {libtorch::to_aten(dequantize(w)), bias})[0];
    return libtorch::call_op("quantized::linear_prepack", "", {libtorch::to_aten(w), bias})[0];
  }

  void prepack(std::vector<QuantizedRnnWeights> weights) {
    check_quantized_rnn_weights(options_, weights, name());
    libtorch::EngineGuard guard(engine_);
    std::vector<c10::IValue> ih, hh, cells;
    for (const auto& w : weights) {
      ih.push_back(prepack_one(w.w_ih, w.b_ih));
      hh.push_back(prepack_one(w.w_hh, w.b_hh));
      if (options_.cell) continue;
      if (w.w_ih.qparams.dtype == DType::Float16)
        cells.push_back(libtorch::call_op("quantized::make_quantized_cell_params_fp16", "", {ih.back(), hh.back()})[0]);
      else
        cells.push_back(libtorch::call_op("quantized::make_quantized_cell_params_dynamic", "",
                                          {ih.back(), hh.back(), optional_tensor(w.b_ih), optional_tensor(w.b_hh),
                                           w.reduce_range})[0]);
    }
    weights_ = std::move(weights);  // replaced only after every prepack succeeded
    packed_ih_ = std::move(ih);
    packed_hh_ = std::move(hh);
    cell_params_ = std::move(cells);
  }

  EngineProfile engine_;
  LibTorchRnnCalls calls_;
  std::vector<QuantizedRnnWeights> weights_;
  std::vector<c10::IValue> packed_ih_, packed_hh_, cell_params_;
  int64_t version_ = DynamicQuantizedRNN::kVersion;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_dynamic_rnn(const RnnOptions& options,
                                                  const std::vector<QuantizedRnnWeights>& weights, EngineProfile engine,
                                                  LibTorchRnnCalls calls) {
  return std::make_unique<LibTorchDynamicRNN>(options, weights, engine, calls);
}

std::unique_ptr<Module> libtorch_dynamic_rnn_from_float(const FloatRNN& float_module, EngineProfile engine,
                                                        LibTorchRnnCalls calls) {
  // The weight quantization is the harness's (bit-exact with PyTorch's, tests/
  // test_quantize_libtorch.cc); prepacking, GEMMs and gates are LibTorch's.
  return make_libtorch_dynamic_rnn(float_module.options(),
                                   quantize_rnn_weights(float_module, "DynamicQuantized" + float_module.options().float_name()),
                                   engine, calls);
}

std::unique_ptr<Module> libtorch_dynamic_rnn_from_reference(const ReferenceRNN& reference, EngineProfile engine) {
  return make_libtorch_dynamic_rnn(reference.options(), reference_rnn_weights(reference), engine);
}

}  // namespace qconform
