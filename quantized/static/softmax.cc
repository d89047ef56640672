#include "quantized/static/softmax.h"

#include "core/error.h"
#include "core/float/activation.h"
#include "quantized/kernels/softmax.h"
#include "quantized/static/linear.h"
#include "reference/static.h"

namespace qconform {

QuantizedSoftmax::QuantizedSoftmax(std::optional<int64_t> dim, QuantParams output, EngineProfile engine)
    : dim_(dim), output_(std::move(output)), engine_(engine) {
  validate(output_);
  if (output_.dtype != DType::QUInt8 || output_.per_channel())
    throw Error("QuantizedSoftmax: the output qparams must be quint8 per-tensor, got " + output_.to_string());
}

std::unique_ptr<QuantizedSoftmax> QuantizedSoftmax::from_float(const FloatSoftmax& float_module, EngineProfile engine) {
  // nnq.Softmax.from_float: float(scale), int(zero_point) of the observer's qparams.
  const QuantParams q = calibrated_output_qparams(float_module);
  return std::make_unique<QuantizedSoftmax>(float_module.dim(), q, engine);
}

std::unique_ptr<QuantizedSoftmax> QuantizedSoftmax::from_reference(const StaticReference& reference,
                                                                   EngineProfile engine) {
  const auto& softmax = dynamic_cast<const FloatSoftmax&>(reference.module());
  return std::make_unique<QuantizedSoftmax>(softmax.dim(), reference.output_qparams(), engine);
}

std::string QuantizedSoftmax::extra_repr() const { return "dim=" + (dim_ ? std::to_string(*dim_) : std::string("None")); }

ModuleOutput QuantizedSoftmax::forward(const ModuleInput& input) {
  const auto* x = std::get_if<QTensor>(&input.input);
  if (!x) throw Error(name() + ": expects a quantized input tensor");
  const int64_t dim = softmax_dim(dim_, x->dim());  // PyTorch's message when out of range
  if (x->qparams.dtype != DType::QUInt8 || x->qparams.per_channel())
    throw Error(name() + ": the integer model covers quint8 per-tensor inputs, got " + x->qparams.to_string());
  QTensor y{x->sizes, std::vector<int32_t>(x->values.size()), output_};
  if (engine_.engine == Engine::QNNPACK && kernels::softmax_takes_qnnpack(x->qparams, output_, x->dim())) {
    // LibTorch 1.13's qsoftmax_qnnpack moves a dimension that is not innermost to the end by
    // indexing a std::vector with the dim as given: a negative one throws std::out_of_range
    // there (PyTorch: IndexError). The same refusal, in the same words.
    int64_t after = 1;
    for (size_t k = static_cast<size_t>(dim) + 1; k < x->sizes.size(); ++k) after *= x->sizes[k];
    const int64_t given = dim_ ? *dim_ : dim;
    if (after != 1 && given < 0)
      throw Error("vector::_M_range_check: __n (which is " + std::to_string(static_cast<uint64_t>(given)) +
                  ") >= this->size() (which is " + std::to_string(x->dim()) + ")");
    kernels::qnnpack_softmax(*x, dim, y.values.data());
  }
  else
    kernels::aten_softmax(*x, dim, output_, y.values.data());
  return {std::move(y), std::nullopt};
}

}  // namespace qconform
