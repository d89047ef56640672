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

// How the LSTM/GRU forward reaches LibTorch.
//   WholeOp: aten::quantized_lstm / quantized_gru, as nnqd.LSTM/GRU do.
//   FreshPrepackPerProjection: the same recurrence with each gate projection a separate
//     quantized::linear_dynamic call on a weight prepacked for that call alone, so every
//     call takes the path of a packed weight's first call. PyTorch 1.13's onednn kernel
//     answers a later call on the same packed weight with another input shape through a
//     different primitive, which can apply the zero point of an earlier call (measured:
//     docs/numerics.md, "onednn: answers that depend on earlier calls"); the agreement
//     oracle uses this mode to tell that LibTorch defect from a real disagreement.
// Cells make one call per packed weight either way.
enum class LibTorchRnnCalls { WholeOp, FreshPrepackPerProjection };

// Prepacks on `engine`; throws Error with LibTorch's own message if the engine refuses.
std::unique_ptr<Module> make_libtorch_dynamic_rnn(const RnnOptions& options,
                                                  const std::vector<QuantizedRnnWeights>& weights, EngineProfile engine,
                                                  LibTorchRnnCalls calls = LibTorchRnnCalls::WholeOp);
std::unique_ptr<Module> libtorch_dynamic_rnn_from_float(const FloatRNN& float_module, EngineProfile engine,
                                                        LibTorchRnnCalls calls = LibTorchRnnCalls::WholeOp);
std::unique_ptr<Module> libtorch_dynamic_rnn_from_reference(const ReferenceRNN& reference, EngineProfile engine);

}  // namespace qconform
