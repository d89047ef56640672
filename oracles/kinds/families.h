#pragma once
// Each module family's kinds, built by the file of that name beside this header: its case
// builder, bound terms and fixture readers (oracles/kinds/registry.cc lists every kind once).
// A new family is a new file here and one line per kind in that list.
#include <cstdint>

#include "core/float/activation.h"
#include "core/float/functional.h"
#include "core/float/normalization.h"
#include "core/float/pooling.h"
#include "core/float/rnn.h"
#include "core/module_kind.h"

namespace qconform::kinds {

ModuleKind dynamic_linear_kind(bool relu);                               // dynamic_linear.cc
ModuleKind dynamic_rnn_kind(RnnMode mode, bool cell);                    // dynamic_rnn.cc
ModuleKind static_linear_kind(bool relu);                                // static_linear.cc
ModuleKind static_conv_kind(int64_t dims, bool relu, bool transposed);  // static_conv.cc
ModuleKind static_activation_kind(ActivationOp op);                      // static_activation.cc
ModuleKind static_pooling_kind(PoolingOp op);                            // static_pooling.cc
ModuleKind static_functional_kind(FunctionalOp op);                      // static_functional.cc
ModuleKind static_stub_kind(bool quantize_stub);  // static.Quantize, static.DeQuantize: static_quantize.cc
ModuleKind static_softmax_kind();                                         // static_softmax.cc
ModuleKind static_batch_norm_kind(int64_t dims, bool relu);              // static_normalization.cc
ModuleKind static_norm_kind(NormOp op, int64_t dims);                     // static_normalization.cc
ModuleKind weight_only_embedding_kind(bool bag);                          // weight_only_embedding.cc
ModuleKind static_lstm_kind(bool cell);                                   // static_lstm.cc

}  // namespace qconform::kinds
