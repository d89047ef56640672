#pragma once
// torch.ao.nn.quantized.dynamic's recurrent modules: DynamicQuantizedLSTM, ...GRU,
// ...RNNCell, ...LSTMCell, ...GRUCell, the true-integer implementation.
//
// Every gate projection is one dynamic quantized linear call (DynamicQuantizedLinear::
// apply_dynamic, i.e. LinearPackedParamsBase::apply_dynamic): activations quantized to u8
// with qparams chosen from that call's data, u8 x s8 -> int32, dequantized with the bias
// added; the gates are float (core/float/rnn_runner.h). ATen's call pattern is kept: one
// input projection per layer and direction for all time steps, one hidden projection per
// step on the active rows.
//
// reduce_range: LSTM and GRU modules of version 2 build their cell params with
// reduce_range=True (7-bit activations where the engine honours it), version-1 modules with
// False, so engines that sum u8 x s8 pairs in int16 (onednn) can saturate there, as
// LibTorch's do. The cells always call with reduce_range=True (ATen's
// DEFINE_QUANTIZED_RNN_CELL_DYNAMIC; measured: LibTorch's onednn cell equals
// linear_dynamic(..., reduce_range=True) exactly and differs from False by 0.035).
//
// state_dict, PyTorch's layout:
//   LSTM/GRU: `_all_weight_values.<i>.param` per parameter set, versions {"": 2,
//             "_all_weight_values": 1, "_all_weight_values.<i>": 1}. The harness stores
//             CellParams as the tuple ((w_ih, b_ih), (w_hh, b_hh), reduce_range) for qint8
//             weights (PyTorch's "quantized_dynamic" serialization) and ((w_ih, b_ih),
//             (w_hh, b_hh)) for float16 ("quantized_fp16", weights as float32 tensors); a
//             qint8 tuple without reduce_range is read as reduce_range=False.
//   cells:    `_packed_weight_ih`, `_packed_weight_hh`, each (weight, bias), version 1.
#include <map>
#include <memory>
#include <vector>

#include "core/float/rnn.h"
#include "quantized/dynamic/linear.h"

namespace qconform {

class ReferenceRNN;

// One parameter set in integer form.
struct QuantizedRnnWeights {
  QTensor w_ih, w_hh;  // qint8 (per-tensor or per-channel) or float16
  std::optional<Tensor> b_ih, b_hh;
  bool reduce_range = true;
};

class DynamicQuantizedRNN : public RnnModule {
 public:
  static constexpr int64_t kVersion = 2;  // nnqd.RNNBase._version

  // Throws Error with the engine's own message if the engine rejects the weights.
  DynamicQuantizedRNN(RnnOptions options, std::vector<QuantizedRnnWeights> weights, EngineProfile engine);

  // nnqd.RNNBase/RNNCellBase.from_float: the qconfig's weight observer (default_dynamic_
  // qconfig's when none), one per weight; dtype qint8 or float16; bias=False refused.
  static std::unique_ptr<DynamicQuantizedRNN> from_float(const FloatRNN& float_module, EngineProfile engine);
  // from_reference: the reference module's integer weights, unchanged (LSTM and cells;
  // nnqd.GRU has no from_reference in PyTorch 1.13).
  static std::unique_ptr<DynamicQuantizedRNN> from_reference(const ReferenceRNN& reference, EngineProfile engine);

  std::string name() const override { return "DynamicQuantized" + options_.float_name(); }
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  // get_weight() / get_bias(): PyTorch's names ("weight_ih_l0", "bias_hh", ...).
  std::map<std::string, QTensor> get_weight() const;
  std::map<std::string, std::optional<Tensor>> get_bias() const;
  const std::vector<QuantizedRnnWeights>& weights() const { return weights_; }
  int64_t version() const { return version_; }

 protected:
  RnnResult run(const RnnCall& call) override;

 private:
  void set_weights(std::vector<QuantizedRnnWeights> weights);
  std::vector<QuantizedRnnWeights> weights_;
  std::vector<std::unique_ptr<DynamicQuantizedLinear>> ih_, hh_;  // prepacked, one per set
  EngineProfile engine_;
  int64_t version_ = kVersion;
};

// The state_dict of the dynamic RNN modules, shared with the LibTorch implementation.
StateDict dynamic_rnn_state_dict(const RnnOptions& options, const std::vector<QuantizedRnnWeights>& weights,
                                 int64_t version);
// Strict; throws Error naming the key. Returns the weights and sets *version.
std::vector<QuantizedRnnWeights> parse_dynamic_rnn_state_dict(const RnnOptions& options, const StateDict& state,
                                                              const std::string& module_name, int64_t* version);
// from_float's weights: observed and quantized per weight; reduce_range as version 2 sets it.
std::vector<QuantizedRnnWeights> quantize_rnn_weights(const FloatRNN& float_module, const std::string& module_name);
// from_reference's weights; refuses the sequence GRU, which has no from_reference in PyTorch.
std::vector<QuantizedRnnWeights> reference_rnn_weights(const ReferenceRNN& reference);
// One dtype (qint8 or float16) throughout and PyTorch's shapes; Error names the module.
void check_quantized_rnn_weights(const RnnOptions& options, const std::vector<QuantizedRnnWeights>& weights,
                                 const std::string& module_name);

}  // namespace qconform
