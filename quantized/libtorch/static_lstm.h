#pragma once
// LibTorch's own statically quantized LSTM: torch.ao.nn.quantized.LSTM's forward
// (quantizable/modules/rnn.py) written with the same ATen calls on quantized tensors:
// quantized::linear on prepacked weights, quantized::add and quantized::mul, aten::sigmoid
// and aten::tanh on the gate chunks (strided views, as Tensor.chunk gives them), torch.stack,
// torch.cat and flip. On qnnpack and onednn. No ATen here.
#include <memory>

#include "core/float/static_lstm.h"
#include "core/module.h"

namespace qconform {

class ReferenceStaticLSTM;

// `fresh_prepack`: every quantized::linear call on a weight prepacked for that call alone
// (onednn answers a packed weight's later calls with an earlier call's qparams in some
// LSTMs, docs/numerics.md): the history-free answer the agreement oracle asks for when
// LibTorch disagrees.
std::unique_ptr<Module> make_libtorch_static_lstm(const RnnOptions& options, std::vector<StaticLstmCell> cells,
                                                  EngineProfile engine, bool fresh_prepack = false);
std::unique_ptr<Module> libtorch_static_lstm_from_observed(const ObservedLSTM& observed, EngineProfile engine,
                                                           bool fresh_prepack = false);
std::unique_ptr<Module> libtorch_static_lstm_from_reference(const ReferenceStaticLSTM& reference, EngineProfile engine);

}  // namespace qconform
