#include "quantized/static/functional.h"

#include <stdexcept>

#include "core/error.h"
#include "core/python_text.h"
#include "quantized/kernels/functional.h"
#include "quantized/static/linear.h"
#include "reference/static.h"

namespace qconform {
namespace {

kernels::AffineQParams affine(const QuantParams& q) { return {q.scale(), static_cast<int32_t>(q.zero_point())}; }

// PyTorch's checks of the op's operands, in its order and words (qadd.cpp's and qmul.cpp's
// check_inputs keep their spelling), then what the model covers.
void check_operands(const FunctionalOptions& o, const std::vector<const QTensor*>& x, const std::string& name) {
  const auto per_tensor = [](const QTensor* q) { return !q->qparams.per_channel(); };
  if (o.op == FunctionalOp::Cat) {
    // quantized::cat checks the first operand, then the path it takes checks the rest its way.
    if (x[0]->qparams.per_channel()) throw Error("Only per-tensor quantization is supported in 'cat'!");
    if (kernels::cat_takes_nhwc_kernel(x, o.dim))
      kernels::check_nhwc_cat(x);
    else
      for (const QTensor* q : x) {
        if (q->qparams.dtype != x[0]->qparams.dtype) throw Error("All dtypes must be the same.");
        if (q->qparams.qscheme != x[0]->qparams.qscheme) throw Error("Quantization schemes must be the same.");
      }
  } else if (o.op == FunctionalOp::Matmul) {  // qmatmul.cpp's check_inputs, in its order
    if (x[1]->qparams.dtype != x[0]->qparams.dtype) throw Error("MatMul operands should have same data type.");
    if (!per_tensor(x[0])) throw Error("Only per-tensor quantization is suported in Matmul.");
    if (x[1]->qparams.qscheme != x[0]->qparams.qscheme)
      throw Error("Both inputs to Matmul must have the same quantization scheme.");
    matmul_shape(x[0]->sizes, x[1]->sizes, name);  // at::matmul's messages where the sizes do not fit
  } else if (o.with_scalar()) {
    if (o.op == FunctionalOp::AddScalar && !per_tensor(x[0]))
      throw Error("Only per tensor quantization is supported in Add.");
  } else {
    const bool add = o.op != FunctionalOp::Mul;
    if (!per_tensor(x[0]))
      throw Error(add ? "Only per tensor quantization is suported in Add." : "Only per tensor quantization is supported in Mul.");
    if (x[1]->qparams.qscheme != x[0]->qparams.qscheme)
      throw Error(add ? "Both inputs to Add must have the same quantization shceme."
                      : "Both inputs to Mul must have the same quantization shceme.");
    if (x[1]->qparams.dtype != x[0]->qparams.dtype)
      throw Error(add ? "Add operands should have same data type." : "Mul operands should have same data type.");
    const Shape shape = broadcast_shape(x[0]->sizes, x[1]->sizes);  // PyTorch's message when they do not fit
    // mul's per-element arithmetic is the same in ATen's vector and scalar loops, so the
    // element order a broadcast gives does not matter; add's loops differ (see kernels).
    if (add && (x[0]->sizes != x[1]->sizes || shape != x[0]->sizes))
      throw Error(name + "." + o.method() + ": operands of shapes " + shape_to_string(x[0]->sizes) + " and " +
                  shape_to_string(x[1]->sizes) + " broadcast; the integer model covers operands of one shape");
  }
  for (const QTensor* q : x)
    if (q->qparams.dtype != DType::QUInt8)
      throw Error(name + "." + o.method() + ": the integer model covers quint8 operands, got " + q->qparams.to_string());
}

}  // namespace

std::vector<const QTensor*> functional_operands(const ModuleInput& input, const std::string& module_name) {
  std::vector<const QTensor*> operands;
  const auto add = [&](const Value& v) {
    const auto* q = std::get_if<QTensor>(&v);
    if (!q) throw Error(module_name + ": expects quantized operands");
    operands.push_back(q);
  };
  add(input.input);
  for (const Value& v : input.others) add(v);
  return operands;
}

std::optional<U8ChannelsLast> QuantizedFunctional::channels_last_output(const std::vector<U8ChannelsLast>& x) const {
  const bool add = options_.op == FunctionalOp::Add || options_.op == FunctionalOp::AddRelu;
  if (!add || x.size() != 2 || x[0].sizes != x[1].sizes) return std::nullopt;
  return U8ChannelsLast{x[0].sizes, output_.scale(), output_.zero_point(), nullptr};
}

void QuantizedFunctional::forward_channels_last(const std::vector<U8ChannelsLast>& x, uint8_t* y) const {
  if (!channels_last_output(x)) throw std::logic_error(name() + ": forward_channels_last on operands it does not take");
  const bool relu = options_.op == FunctionalOp::AddRelu;
  const kernels::AffineQParams qa{x[0].scale, static_cast<int32_t>(x[0].zero_point)};
  const kernels::AffineQParams qb{x[1].scale, static_cast<int32_t>(x[1].zero_point)};
  const int64_t n = numel_of(x[0].sizes);
  // As forward: QNNPACK's operator on qnnpack, else ATen's loops over memory order.
  if (engine_.engine == Engine::QNNPACK)
    kernels::qnnpack_add_u8(x[0].bytes, x[1].bytes, n, qa, qb, affine(output_), relu, y);
  else
    kernels::aten_add_u8(x[0].bytes, x[1].bytes, n, qa, qb, affine(output_), relu, kernels::AtenVectorLoop::of(), y);
}

StateDict functional_state_dict(const QuantParams& output) {
  StateDict state;  // QFunctional._save_to_state_dict: torch.tensor(scale), torch.tensor(zero_point)
  state.set("scale", Tensor(Shape{}, {static_cast<float>(output.scale())}));
  state.set("zero_point", IntTensor{{}, {output.zero_point()}, false});
  return state;
}

QuantParams parse_functional_state_dict(const StateDict& state) {
  state.check_keys({"scale", "zero_point"}, "QFunctional");
  const Tensor& scale = state.at("scale").as<Tensor>("scale");
  const IntTensor& zero_point = state.at("zero_point").as<IntTensor>("zero_point");
  if (scale.numel() != 1 || zero_point.values.size() != 1)
    throw Error("state_dict['scale'] and state_dict['zero_point'] must hold one value each");
  const QuantParams q = QuantParams::per_tensor(DType::QUInt8, scale.data[0], zero_point.values[0]);
  validate(q);
  return q;
}

std::string functional_extra_repr(const QuantParams& output) {
  return "scale=" + python_float(output.scale()) + ", zero_point=" + std::to_string(output.zero_point());
}

QuantParams functional_output_qparams(const FloatFunctionalOp& float_module) {
  return calibrated_output_qparams(float_module);
}

QuantParams functional_output_qparams(const StaticReference& reference) {
  // The scalar ops' reference derives its qparams per call; QFunctional keeps the
  // unobserved observer's, as from_float does.
  const auto& op = dynamic_cast<const FloatFunctionalOp&>(reference.module());
  return observes_output(op.options().op) ? reference.output_qparams() : QuantParams::per_tensor(DType::QUInt8, 1.0, 0);
}

QuantizedFunctional::QuantizedFunctional(FunctionalOptions options, QuantParams output, EngineProfile engine)
    : options_(options), output_(std::move(output)), engine_(engine) {
  validate(output_);
  if (output_.dtype != DType::QUInt8 || output_.per_channel())
    throw Error("QFunctional: the output qparams must be quint8 per-tensor, got " + output_.to_string());
}

std::unique_ptr<QuantizedFunctional> QuantizedFunctional::from_float(const FloatFunctionalOp& float_module,
                                                                     EngineProfile engine) {
  return std::make_unique<QuantizedFunctional>(float_module.options(), functional_output_qparams(float_module), engine);
}

std::unique_ptr<QuantizedFunctional> QuantizedFunctional::from_reference(const StaticReference& reference,
                                                                         EngineProfile engine) {
  const auto& op = dynamic_cast<const FloatFunctionalOp&>(reference.module());
  return std::make_unique<QuantizedFunctional>(op.options(), functional_output_qparams(reference), engine);
}

std::string QuantizedFunctional::extra_repr() const { return functional_extra_repr(output_); }

StateDict QuantizedFunctional::state_dict() const { return functional_state_dict(output_); }

void QuantizedFunctional::load_state_dict(const StateDict& state) { output_ = parse_functional_state_dict(state); }

ModuleOutput QuantizedFunctional::forward(const ModuleInput& input) {
  const std::vector<const QTensor*> x = functional_operands(input, name());
  const size_t expected = options_.op == FunctionalOp::Cat ? x.size() : options_.binary() ? 2 : 1;
  if (x.size() != expected || x.empty())
    throw Error(name() + "." + options_.method() + ": takes " + std::to_string(expected) + " operand(s), got " +
                std::to_string(x.size()));
  check_operands(options_, x, name());
  const kernels::AtenVectorLoop loop = kernels::AtenVectorLoop::of();
  if (options_.op == FunctionalOp::Cat) return {kernels::cat(x, options_.dim, output_, loop), std::nullopt};
  if (options_.op == FunctionalOp::Matmul) return {kernels::matmul(*x[0], *x[1], output_), std::nullopt};
  const QuantParams out = options_.with_scalar() ? scalar_op_output_qparams(options_, x[0]->qparams) : output_;
  QTensor y{x[0]->sizes, std::vector<int32_t>(x[0]->values.size()), out};
  const int64_t n = static_cast<int64_t>(y.values.size());
  if (options_.op == FunctionalOp::Mul && x[0]->sizes != x[1]->sizes) {  // broadcast (checked above)
    const Shape shape = broadcast_shape(x[0]->sizes, x[1]->sizes);
    std::vector<int32_t> a(numel_of(shape)), b(a.size());
    for (int64_t i = 0; i < static_cast<int64_t>(a.size()); ++i) {
      a[i] = x[0]->values[broadcast_index(shape, x[0]->sizes, i)];
      b[i] = x[1]->values[broadcast_index(shape, x[1]->sizes, i)];
    }
    y = QTensor{shape, std::vector<int32_t>(a.size()), out};
    kernels::aten_mul(a.data(), b.data(), static_cast<int64_t>(a.size()), affine(x[0]->qparams), affine(x[1]->qparams),
                      affine(out), y.values.data());
    return {std::move(y), std::nullopt};
  }
  switch (options_.op) {
    case FunctionalOp::Add:
    case FunctionalOp::AddRelu: {
      const bool relu = options_.op == FunctionalOp::AddRelu;
      // quantized::add: QNNPACK's operator on the qnnpack engine (quint8, one shape).
      if (engine_.engine == Engine::QNNPACK) {
        kernels::qnnpack_add(x[0]->values.data(), x[1]->values.data(), n, affine(x[0]->qparams),
                             affine(x[1]->qparams), affine(out), relu, y.values.data());
      } else if (x[0]->channels_last && x[1]->channels_last) {
        // ATen walks both in memory order; its output is held as the first operand is
        // (suggest_memory_format).
        kernels::aten_add_channels_last(x[0]->values.data(), x[1]->values.data(), x[0]->sizes, affine(x[0]->qparams),
                                        affine(x[1]->qparams), affine(out), relu, loop, y.values.data());
        y.channels_last = true;
      } else {
        kernels::aten_add(x[0]->values.data(), x[1]->values.data(), n, affine(x[0]->qparams), affine(x[1]->qparams),
                          affine(out), relu, loop, y.values.data());
      }
      break;
    }
    case FunctionalOp::Mul:
      kernels::aten_mul(x[0]->values.data(), x[1]->values.data(), n, affine(x[0]->qparams), affine(x[1]->qparams),
                        affine(out), y.values.data());
      break;
    case FunctionalOp::AddScalar:
    case FunctionalOp::MulScalar:
      kernels::scalar_op(options_, x[0]->values.data(), n, affine(x[0]->qparams), affine(out), y.values.data());
      break;
    case FunctionalOp::Cat:
    case FunctionalOp::Matmul: break;
  }
  return {std::move(y), std::nullopt};
}

}  // namespace qconform
