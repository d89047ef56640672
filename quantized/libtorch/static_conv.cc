#include "quantized/libtorch/static_conv.h"

#include <cstring>

#include "core/error.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/static/conv.h"
#include "quantized/static/linear.h"
#include "reference/conv.h"
#include "reference/static.h"

namespace qconform {
namespace {

class LibTorchStaticConv : public Module, public ChannelsLastBytesForward {
 public:
  LibTorchStaticConv(ConvOptions options, const QTensor& weight, const std::optional<Tensor>& bias, double scale,
                     int64_t zero_point, EngineProfile engine, bool fused_relu)
      : options_(std::move(options)), engine_(engine), fused_relu_(fused_relu) {
    prepack(weight, bias, scale, zero_point);
  }

  std::string name() const override { return "Quantized" + options_.float_name(fused_relu_); }
  std::string extra_repr() const override {
    return quantized_conv_extra_repr(options_, scale_, zero_point_) + ", engine=" + engine_.label();
  }
  Implementation implementation() const override { return Implementation::LibTorch; }
  std::optional<EngineProfile> engine() const override { return engine_; }

  StateDict state_dict() const override {
    libtorch::EngineGuard guard(engine_);
    // What each nnq module's _weight_bias calls: Conv{2,3}d self._packed_params.unpack();
    // Conv1d quantized::conv1d_unpack (it drops the 2-d kernel's extra dimension);
    // ConvTranspose1d quantized::conv_transpose1d_unpack; ConvTranspose{2,3}d
    // quantized::conv{2,3}d_unpack.
    const int64_t n = options_.spatial_dims;
    std::vector<c10::IValue> unpacked;
    if (options_.transposed)
      unpacked = libtorch::call_op(n == 1 ? "quantized::conv_transpose1d_unpack"
                                   : n == 2 ? "quantized::conv2d_unpack"
                                            : "quantized::conv3d_unpack",
                                   "", {packed_});
    else if (n == 1)
      unpacked = libtorch::call_op("quantized::conv1d_unpack", "", {packed_});
    else
      unpacked = libtorch::call_method(packed_, "unpack")[0].toTuple()->elements().vec();
    std::optional<Tensor> bias;
    if (!unpacked[1].isNone()) bias = libtorch::from_aten(unpacked[1].toTensor());
    return conv_state_dict({libtorch::from_aten_quantized(unpacked[0].toTensor()), bias, scale_, zero_point_});
  }

  void load_state_dict(const StateDict& state) override {
    const ConvStateParameters p = parse_conv_state_dict(state, name());
    prepack(p.weight, p.bias, p.scale, p.zero_point);
  }

  // A 2-d convolution on channels-last bytes, as the integer module's (the bench times both
  // so): the input wrapped without a copy, the op's output bytes copied out.
  std::optional<U8ChannelsLast> channels_last_output(const std::vector<U8ChannelsLast>& x) const override {
    if (x.size() != 1 || options_.transposed || options_.spatial_dims != 2 || x[0].sizes.size() != 4)
      return std::nullopt;
    return U8ChannelsLast{ConvGeometry::make(options_, x[0].sizes, name()).output_shape(), scale_, zero_point_, nullptr};
  }
  void forward_channels_last(const std::vector<U8ChannelsLast>& x, uint8_t* y) const override {
    libtorch::EngineGuard guard(engine_);
    const std::string op = "quantized::conv2d" + std::string(fused_relu_ ? "_relu" : "");
    const at::Tensor out = libtorch::call_op(op.c_str(), "new", {libtorch::wrap_channels_last(x[0]), packed_, scale_,
                                                                 zero_point_})[0].toTensor()
                               .contiguous(at::MemoryFormat::ChannelsLast);
    std::memcpy(y, out.data_ptr(), static_cast<size_t>(out.numel()));
  }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const auto* x = std::get_if<QTensor>(&input.input);
    if (!x) throw Error(name() + ": expects a quantized (quint8) input tensor");
    if (options_.transposed) check_transposed_input(options_, x->sizes, name());  // the Python wrapper's checks
    else ConvGeometry::make(options_, x->sizes, name());
    libtorch::EngineGuard guard(engine_);
    const int64_t n = options_.spatial_dims;
    const std::string op = options_.transposed ? "quantized::conv_transpose" + std::to_string(n) + "d"
                                               : "quantized::conv" + std::to_string(n) + "d" + (fused_relu_ ? "_relu" : "");
    auto out = libtorch::call_op(op.c_str(), n == 1 || options_.transposed ? "" : "new",
                                 {libtorch::to_aten(*x), packed_, scale_, zero_point_});
    return {libtorch::from_aten_quantized(out[0].toTensor()), std::nullopt};
  }

 private:
  void prepack(const QTensor& weight, const std::optional<Tensor>& bias, double scale, int64_t zero_point) {
    ConvOptions options = options_;  // nnq's set_weight_bias takes a bias or None either way
    options.bias = bias.has_value();
    check_conv_parameters(options, weight.sizes, bias, name());
    // Float16 has no static prepack: the engine table's refusal, as the integer module's.
    if (auto rejection = weight_rejection(engine_.engine, EngineOp::StaticConv, weight.qparams))
      if (weight.qparams.dtype == DType::Float16) throw Error(rejection->message);
    libtorch::EngineGuard guard(engine_);
    const c10::IValue b = bias ? c10::IValue(libtorch::to_aten(*bias)) : c10::IValue();
    const std::string n = std::to_string(options_.spatial_dims);
    if (options_.transposed)
      packed_ = libtorch::call_op(("quantized::conv_transpose" + n + "d_prepack").c_str(), "",
                                  {libtorch::to_aten(weight), b, options_.stride, options_.padding,
                                   options_.output_padding_or_zeros(), options_.dilation, options_.groups})[0];
    else
      packed_ = libtorch::call_op(("quantized::conv" + n + "d_prepack").c_str(), "",
                                  {libtorch::to_aten(weight), b, options_.stride, options_.padding, options_.dilation,
                                   options_.groups})[0];
    options_ = options;
    scale_ = scale;
    zero_point_ = zero_point;
  }

  ConvOptions options_;
  EngineProfile engine_;
  bool fused_relu_;
  double scale_ = 1.0;
  int64_t zero_point_ = 0;
  c10::IValue packed_;
};

}  // namespace

std::unique_ptr<Module> make_libtorch_static_conv(const ConvOptions& options, const QTensor& weight,
                                                  const std::optional<Tensor>& bias, double scale,
                                                  int64_t zero_point, EngineProfile engine, bool fused_relu) {
  return std::make_unique<LibTorchStaticConv>(options, weight, bias, scale, zero_point, engine, fused_relu);
}

std::unique_ptr<Module> libtorch_static_conv_from_float(const FloatConv& float_conv, EngineProfile engine) {
  const QuantParams out = calibrated_output_qparams(float_conv);
  return make_libtorch_static_conv(float_conv.options(), quantize_static_weight(float_conv.weight(), float_conv),
                                   float_conv.bias(), out.scale(), out.zero_point(), engine, float_conv.fused_relu);
}

std::unique_ptr<Module> libtorch_static_conv_from_reference(const StaticReference& reference, EngineProfile engine) {
  const auto& conv = dynamic_cast<const ReferenceConv&>(reference.module());
  return make_libtorch_static_conv(conv.options(), conv.get_quantized_weight(), conv.bias(),
                                   reference.output_qparams().scale(), reference.output_qparams().zero_point(), engine,
                                   conv.fused_relu);
}

}  // namespace qconform
