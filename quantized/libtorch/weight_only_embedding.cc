#include "quantized/libtorch/weight_only_embedding.h"

#include "core/error.h"
#include "core/quantize.h"
#include "quantized/kernels/embedding.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/weight_only/embedding.h"
#include "reference/embedding.h"

namespace qconform {
namespace {

at::Tensor index_tensor(const IntTensor& t) {
  at::Tensor out = at::tensor(t.values, at::kLong).reshape(t.sizes);
  return t.is_int32 ? out.to(at::kInt) : out;
}

// The quantized weight LibTorch packs: the harness's integers, requantized from their own
// dequantized values with the same float qparams (the one way to build a quint4x2 tensor;
// (q - z) s / s + z rounds back to q).
at::Tensor quantized_weight(const QTensor& weight) {
  const QuantParams& qp = weight.qparams;
  const at::Tensor values = libtorch::to_aten(dequantize(weight));
  std::vector<float> scales(qp.scales.begin(), qp.scales.end()), zero_points(qp.zero_points.begin(),
                                                                               qp.zero_points.end());
  return at::quantize_per_channel(values, at::tensor(scales), at::tensor(zero_points), 0,
                                  qp.dtype == DType::QUInt8 ? at::kQUInt8 : at::kQUInt4x2);
}

class LibTorchEmbedding : public Module {
 public:
  LibTorchEmbedding(EmbeddingOptions options, QTensor weight, EngineProfile engine)
      : options_(options), weight_(std::move(weight)), engine_(engine) {
    libtorch::EngineGuard guard(engine_);
    options_.validate();
    pack();
  }

  std::string name() const override { return "Quantized" + options_.float_name(); }
  std::string extra_repr() const override { return weight_only_embedding_extra_repr(options_, weight_); }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  StateDict state_dict() const override { return weight_only_embedding_state_dict(weight_); }
  void load_state_dict(const StateDict& state) override {
    weight_ = load_weight_only_embedding_state_dict(state, options_, name());
    pack();
  }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    libtorch::EngineGuard guard(engine_);
    const bool byte = weight_.qparams.dtype == DType::QUInt8;
    if (!options_.bag) {
      const auto* indices = std::get_if<IntTensor>(&input.input);
      if (!indices) throw Error(name() + ": expects integer indices (an index tensor)");
      if (const auto crash = kernels::embedding_call_crashes_libtorch(*indices, nullptr, false, true)) throw Error(*crash);
      const auto out = libtorch::call_op(byte ? "quantized::embedding_byte" : "quantized::embedding_4bit", "",
                                         {packed_, index_tensor(*indices), false});
      return {libtorch::from_aten(out.at(0).toTensor()), std::nullopt};
    }
    const BagCall call = bag_operands(input, name());
    if (const auto crash = kernels::embedding_call_crashes_libtorch(*call.indices, call.offsets,
                                                                    options_.include_last_offset, false))
      throw Error(*crash);
    const c10::IValue offsets = call.offsets ? c10::IValue(index_tensor(*call.offsets)) : c10::IValue();
    const c10::IValue weights =
        call.per_sample_weights ? c10::IValue(libtorch::to_aten(*call.per_sample_weights)) : c10::IValue();
    const c10::IValue mapping =
        call.compressed_indices_mapping ? c10::IValue(index_tensor(*call.compressed_indices_mapping)) : c10::IValue();
    if (options_.pruned_weights && call.compressed_indices_mapping && call.compressed_indices_mapping->is_int32) {
      // A mapped row outside the weight: LibTorch reads past it; refused as the integer side does.
      const auto& m = call.compressed_indices_mapping->values;
      if (!(m.size() == 1 && m[0] == 0))
        for (int64_t u : call.indices->values)
          if (u >= 0 && u < static_cast<int64_t>(m.size()) && (m[u] < -1 || m[u] >= options_.num_embeddings))
            throw Error("compressed_indices_mapping maps to row " + std::to_string(m[u]) + " of " +
                        std::to_string(options_.num_embeddings) + " (LibTorch would read past its weight)");
    }
    const auto out = libtorch::call_op(
        byte ? "quantized::embedding_bag_byte" : "quantized::embedding_bag_4bit", "",
        {packed_, index_tensor(*call.indices), offsets, false, int64_t{0}, options_.pruned_weights, weights, mapping,
         options_.include_last_offset});
    return {libtorch::from_aten(out.at(0).toTensor()), std::nullopt};
  }

 private:
  void pack() { packed_ = libtorch::call_op("quantized::embedding_bag_prepack", "", {quantized_weight(weight_)}).at(0); }

  EmbeddingOptions options_;
  QTensor weight_;
  EngineProfile engine_;
  c10::IValue packed_;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_embedding(const EmbeddingOptions& options, const QTensor& weight,
                                                EngineProfile engine) {
  return std::make_unique<LibTorchEmbedding>(options, weight, engine);
}

std::unique_ptr<Module> libtorch_embedding_from_float(const FloatEmbedding& float_module, EngineProfile engine) {
  return make_libtorch_embedding(float_module.options(), weight_only_embedding_weight(float_module), engine);
}

std::unique_ptr<Module> libtorch_embedding_from_reference(const ReferenceEmbedding& reference, EngineProfile engine) {
  return make_libtorch_embedding(reference.options(), reference.get_quantized_weight(), engine);
}

}  // namespace qconform
