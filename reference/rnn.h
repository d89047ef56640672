#pragma once
// torch.ao.nn.quantized.reference's recurrent modules: "QuantizedLSTM(Reference)",
// "QuantizedLSTMCell(Reference)", "QuantizedGRUCell(Reference)", "QuantizedRNNCell(Reference)",
// and "QuantizedGRU(Reference)", which PyTorch 1.13 lacks and the harness adds on the same
// pattern (its from_reference is absent, as nnqd.GRU has none).
//
//   every weight W  ->  dequantize(quantize(W, qparams of W))           (float16: round to half)
//   forward         =   the float recurrence (core/float/rnn_runner.h) with those weights,
//                       biases unquantized, activations never quantized
//
// state_dict as PyTorch's: the float parameters, then per weight `<name>_scale`,
// `<name>_zero_point`, `<name>_axis` (absent for float16 weights, whose qscheme is None);
// qscheme and dtype are constructor arguments, not state.
#include <memory>
#include <utility>
#include <vector>

#include "core/float/rnn.h"

namespace qconform {

// The qparams of weight_ih and weight_hh of one parameter set.
struct RnnWeightQParams {
  QuantParams ih, hh;
};

class ReferenceRNN : public RnnModule {
 public:
  ReferenceRNN(RnnOptions options, std::vector<RnnParameters> parameters,
               std::vector<RnnWeightQParams> weight_qparams);

  // convert(is_reference=True) of the dynamic flow: one weight observer from the float
  // module's qconfig (default_dynamic_qconfig's when it has none) per weight, as
  // nnqd.RNNBase.from_float observes each; the dtype must be qint8 or float16.
  static std::unique_ptr<ReferenceRNN> from_float(const FloatRNN& float_module);

  std::string name() const override { return "Quantized" + options_.float_name() + "(Reference)"; }
  Implementation implementation() const override { return Implementation::Reference; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const std::vector<RnnParameters>& parameters() const { return parameters_; }
  const std::vector<RnnWeightQParams>& weight_qparams() const { return weight_qparams_; }
  // get_weight_ih/get_weight_hh (fake-quantized), and the integer weights handed to
  // from_reference (get_quantized_weight_bias_dict / get_quantized_weight_ih).
  const std::vector<RnnParameters>& fake_quantized_parameters() const { return fake_quantized_; }
  QTensor get_quantized_weight_ih(int64_t set) const;
  QTensor get_quantized_weight_hh(int64_t set) const;
  DType weight_dtype() const { return weight_qparams_.at(0).ih.dtype; }

 protected:
  RnnResult run(const RnnCall& call) override;

 private:
  std::vector<RnnParameters> parameters_;
  std::vector<RnnWeightQParams> weight_qparams_;
  std::vector<RnnParameters> fake_quantized_;  // cached: the weights do not change between calls
};

// The dynamic RNN modules' weight dtype rule (nnqd.RNNBase/RNNCellBase.from_float): the
// observer's dtype must be qint8 or float16, else "Unsupported dtype for dynamic RNN
// quantization: <dtype>".
void check_dynamic_rnn_weight_dtype(DType dtype);
// The weight qparams of every parameter set, from the float module's qconfig.
std::vector<RnnWeightQParams> observe_rnn_weights(const FloatRNN& float_module);

}  // namespace qconform
