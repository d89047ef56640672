#pragma once
// LibTorch's own dynamic recurrent modules behind the shared interface: the cell params
// built with quantized::make_quantized_cell_params_dynamic / _fp16 and run with
// aten::quantized_lstm / aten::quantized_gru (tensor and packed-sequence overloads), and
// the cells with quantized::quantized_{lstm,gru,rnn_tanh,rnn_relu}_cell_dynamic — what
// nnqd.LSTM/GRU/...Cell.forward call. The Python wrappers' checks, hidden defaults and
// permutations are the harness's (core/float/rnn.h), identical for every implementation.
// No ATen in this header.
#include <memory>

#include "core/float/rnn.h"

namespace qconform {

class ReferenceRNN;
struct QuantizedRnnWeights;

// Prepacks on `engine`; throws Error with LibTorch's own message if the engine refuses.
std::unique_ptr<Module> make_libtorch_dynamic_rnn(const RnnOptions& options,
                                                  const std::vector<QuantizedRnnWeights>& weights, Engine engine);
std::unique_ptr<Module> libtorch_dynamic_rnn_from_float(const FloatRNN& float_module, Engine engine);
std::unique_ptr<Module> libtorch_dynamic_rnn_from_reference(const ReferenceRNN& reference, Engine engine);

}  // namespace qconform
