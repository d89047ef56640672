#pragma once
// LibTorch's own quantized Embedding and EmbeddingBag behind the shared interface: the
// weight packed by quantized::embedding_bag_prepack, looked up by quantized::embedding_byte /
// embedding_4bit / embedding_bag_byte / embedding_bag_4bit, with the nnq modules' arguments
// (mode 0, pruned_weights False). No ATen in this header.
#include <memory>

#include "core/float/embedding.h"
#include "core/module.h"

namespace qconform {

class ReferenceEmbedding;

std::unique_ptr<Module> make_libtorch_embedding(const EmbeddingOptions& options, const QTensor& weight,
                                                EngineProfile engine);
std::unique_ptr<Module> libtorch_embedding_from_float(const FloatEmbedding& float_module, EngineProfile engine);
std::unique_ptr<Module> libtorch_embedding_from_reference(const ReferenceEmbedding& reference, EngineProfile engine);

}  // namespace qconform
