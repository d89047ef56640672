// XNNPACK as a qconform plug-in: its int8 fully-connected, convolution and deconvolution
// operators implement static.Linear, LinearReLU, Conv2d, ConvReLU2d and ConvTranspose2d, and
// qconform's oracles check them against the reference and LibTorch's qnnpack.
//
// PyTorch's static modules take quint8 activations and qint8 weights. XNNPACK (Debian's
// 2022-02 snapshot) offers:
//   qu8 (fully connected, convolution): quint8 activations, uint8 weights with a zero point:
//       a qint8 weight q with zero point z becomes q + 128 with zero point z + 128, exactly;
//   qc8 (convolution only): int8 activations, int8 weights with one scale per output
//       channel (zero point 0): a quint8 activation q with zero point z becomes q - 128 with
//       z - 128, exactly, and the output the other way.
// Per-channel Linear weights have no XNNPACK operator here: declined (PluginDeclines).
// Steps of one call (every operator requantizes in fp32: acc * (s_x s_w / s_y), rounded to
// nearest even, + z_y, clamped):
//   1. bias_q = clamp(nearbyint(bias / (s_x s_w))) to int32 per output channel, as PyTorch's
//      qnnpack quantizes it;
//   2. the operator created for the call's input qparams (they are known only then), set
//      up on NHWC data (PyTorch's NCHW converted), run, deleted;
//   3. the output back to NCHW, with the module's output qparams.
#include <xnnpack.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/quantize.h"
#include "oracles/plugin.h"
#include "properties/plugin_test.h"

using namespace qconform;

namespace {

void check(xnn_status status, const std::string& what) {
  if (status == xnn_status_invalid_parameter || status == xnn_status_unsupported_parameter)
    throw PluginDeclines("XNNPACK refuses the " + what + " (status " + std::to_string(status) + ")");
  if (status != xnn_status_success) throw Error("XNNPACK: " + what + " failed (status " + std::to_string(status) + ")");
}

struct Operator {
  xnn_operator_t op = nullptr;
  ~Operator() {
    if (op) xnn_delete_operator(op);
  }
};

// The input zero point the kernel is given; the wrong variant of this test ignores it.
int32_t input_zero_point(const QuantParams& q) {
#ifdef XNNPACK_ENGINE_DROP_INPUT_ZERO_POINT
  return q.zero_point() == 0 ? 0 : 0;
#else
  return static_cast<int32_t>(q.zero_point());
#endif
}

std::vector<int32_t> quantized_bias(const StateValue& bias, int64_t channels, double input_scale,
                                    const std::vector<double>& weight_scales) {
  std::vector<int32_t> out(channels, 0);
  if (bias.is<NoneValue>()) return out;
  const Tensor& b = bias.as<Tensor>("bias");
  for (int64_t c = 0; c < channels; ++c) {
    // quantize_per_tensor(bias, s_x s_w, 0, torch.qint32), as PyTorch's qnnpack does: rounded
    // to nearest even and clamped to int32 (a tiny activation scale makes it overflow).
    const double scale = input_scale * weight_scales[weight_scales.size() == 1 ? 0 : c];
    const double q = std::nearbyint(b.data[c] / scale);
    out[c] = static_cast<int32_t>(std::clamp<double>(q, INT32_MIN, INT32_MAX));
  }
  return out;
}

// A buffer for an operator's input: XNNPACK may read up to XNN_EXTRA_BYTES past the data it is
// given (xnnpack.h), and where the data ends at the end of a mapped page that read faults
// (seen under AddressSanitizer, whose heap puts allocations there: a deconvolution read 16
// bytes past an unpadded input).
std::vector<uint8_t> input_buffer(size_t bytes) { return std::vector<uint8_t>(bytes + XNN_EXTRA_BYTES); }

QTensor input_of(const ModuleInput& input, const std::string& name) {
  const auto* x = std::get_if<QTensor>(&input.input);
  if (!x || x->qparams.dtype != DType::QUInt8 || x->qparams.per_channel())
    throw Error(name + ": expects a quint8 per-tensor input");
  return *x;
}

class XnnpackModule : public Module {
 public:
  XnnpackModule(ModuleSpec spec, bool relu) : spec_(std::move(spec)), relu_(relu) {}
  Implementation implementation() const override { return Implementation::Plugin; }
  StateDict state_dict() const override { return {}; }
  void load_state_dict(const StateDict&) override { throw Error(name() + ": load_state_dict is not supported"); }

 protected:
  QuantParams output_qparams() const {
    return QuantParams::per_tensor(DType::QUInt8, spec_.number("scale"), spec_.integer("zero_point"));
  }
  ModuleSpec spec_;
  bool relu_;
};

class XnnpackLinear : public XnnpackModule {
 public:
  using XnnpackModule::XnnpackModule;
  std::string name() const override { return relu_ ? "XnnpackLinearReLU" : "XnnpackLinear"; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const QTensor x = input_of(input, name());
    const QTensor& w = spec_.parameters.at("weight").as<QTensor>("weight");
    if (w.qparams.per_channel()) throw PluginDeclines("XNNPACK's qu8 fully connected takes one weight scale");
    const int64_t in = spec_.integer("in_features"), out_features = spec_.integer("out_features");
    if (x.sizes.empty() || x.sizes.back() != in) throw Error(name() + ": input's last dimension is not in_features");
    const int64_t batch = x.numel() / in;
    std::vector<uint8_t> kernel(w.values.size()), data = input_buffer(x.values.size());
    for (size_t i = 0; i < kernel.size(); ++i) kernel[i] = static_cast<uint8_t>(w.values[i] + 128);
    for (size_t i = 0; i < x.values.size(); ++i) data[i] = static_cast<uint8_t>(x.values[i]);
    const std::vector<int32_t> bias =
        quantized_bias(spec_.parameters.at("bias"), out_features, x.qparams.scale(), w.qparams.scales);
    const QuantParams y = output_qparams();
    Operator op;
    check(xnn_create_fully_connected_nc_qu8(
              in, out_features, in, out_features, static_cast<uint8_t>(input_zero_point(x.qparams)),
              static_cast<float>(x.qparams.scale()), static_cast<uint8_t>(w.qparams.zero_point() + 128),
              static_cast<float>(w.qparams.scale()), kernel.data(), bias.data(),
              static_cast<uint8_t>(y.zero_point()), static_cast<float>(y.scale()),
              static_cast<uint8_t>(relu_ ? y.zero_point() : 0), 255, 0, &op.op),
          "fully connected operator");
    std::vector<uint8_t> result(batch * out_features);
    check(xnn_setup_fully_connected_nc_qu8(op.op, batch, data.data(), result.data(), nullptr), "setup");
    check(xnn_run_operator(op.op, nullptr), "run");
    Shape shape = x.sizes;
    shape.back() = out_features;
    return {QTensor{shape, std::vector<int32_t>(result.begin(), result.end()), y}, std::nullopt};
  }
};

class XnnpackConv2d : public XnnpackModule {
 public:
  using XnnpackModule::XnnpackModule;
  std::string name() const override { return relu_ ? "XnnpackConvReLU2d" : "XnnpackConv2d"; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const QTensor x = input_of(input, name());
    const QTensor& w = spec_.parameters.at("weight").as<QTensor>("weight");
    if (spec_.flag("transposed")) throw PluginDeclines("a transposed convolution");
    if (x.sizes.size() != 4) throw PluginDeclines("an unbatched input (XNNPACK takes NHWC batches)");
    const auto k = spec_.integers("kernel_size"), stride = spec_.integers("stride"),
               padding = spec_.integers("padding"), dilation = spec_.integers("dilation");
    const int64_t groups = spec_.integer("groups"), c_in = spec_.integer("in_channels"),
                  c_out = spec_.integer("out_channels");
    const int64_t n = x.sizes[0], h = x.sizes[2], wd = x.sizes[3];
    if (x.sizes[1] != c_in) throw Error(name() + ": the input has " + std::to_string(x.sizes[1]) + " channels");
    const int64_t oh = (h + 2 * padding[0] - dilation[0] * (k[0] - 1) - 1) / stride[0] + 1;
    const int64_t ow = (wd + 2 * padding[1] - dilation[1] * (k[1] - 1) - 1) / stride[1] + 1;
    if (oh <= 0 || ow <= 0) throw PluginDeclines("an output without positions");
    const int64_t gi = c_in / groups, go = c_out / groups, kk = k[0] * k[1];
    const bool per_channel = w.qparams.per_channel();
    const int shift = per_channel ? -128 : 0;  // qc8 takes int8 activations
    // NCHW -> NHWC input; OIHW -> OHWI weights (XNNPACK's layout per group).
    std::vector<uint8_t> data = input_buffer(x.values.size());
    for (int64_t b = 0; b < n; ++b)
      for (int64_t c = 0; c < c_in; ++c)
        for (int64_t p = 0; p < h * wd; ++p)
          data[(b * h * wd + p) * c_in + c] = static_cast<uint8_t>(x.values[(b * c_in + c) * h * wd + p] + shift);
    std::vector<uint8_t> kernel(w.values.size());
    for (int64_t o = 0; o < c_out; ++o)
      for (int64_t i = 0; i < gi; ++i)
        for (int64_t t = 0; t < kk; ++t)
          kernel[(o * kk + t) * gi + i] = static_cast<uint8_t>(w.values[(o * gi + i) * kk + t] + (per_channel ? 0 : 128));
    const std::vector<int32_t> bias = quantized_bias(spec_.parameters.at("bias"), c_out, x.qparams.scale(),
                                                     w.qparams.scales);
    const QuantParams y = output_qparams();
    const int32_t x_zero = input_zero_point(x.qparams), y_zero = static_cast<int32_t>(y.zero_point());
    std::vector<uint8_t> result(n * oh * ow * c_out);
    Operator op;
    const auto p = [](int64_t v) { return static_cast<uint32_t>(v); };
    if (per_channel) {
      if (w.qparams.axis != 0) throw PluginDeclines("per-channel weights along another axis than 0");
      std::vector<float> scales(w.qparams.scales.begin(), w.qparams.scales.end());
      for (int64_t o = 0; o < c_out; ++o)
        if (w.qparams.zero_points[o] != 0) throw PluginDeclines("qc8 takes weight zero points of 0");
      check(xnn_create_convolution2d_nhwc_qc8(
                p(padding[0]), p(padding[1]), p(padding[0]), p(padding[1]), p(k[0]), p(k[1]), p(stride[0]), p(stride[1]),
                p(dilation[0]), p(dilation[1]), p(groups), gi, go, c_in, c_out, static_cast<int8_t>(x_zero - 128),
                static_cast<float>(x.qparams.scale()), scales.data(), reinterpret_cast<const int8_t*>(kernel.data()),
                bias.data(), static_cast<int8_t>(y_zero - 128), static_cast<float>(y.scale()),
                static_cast<int8_t>(relu_ ? y_zero - 128 : -128), 127, 0, &op.op),
            "qc8 convolution operator");
      check(xnn_setup_convolution2d_nhwc_qc8(op.op, n, h, wd, reinterpret_cast<const int8_t*>(data.data()),
                                             reinterpret_cast<int8_t*>(result.data()), nullptr),
            "setup");
    } else {
      check(xnn_create_convolution2d_nhwc_qu8(
                p(padding[0]), p(padding[1]), p(padding[0]), p(padding[1]), p(k[0]), p(k[1]), p(stride[0]), p(stride[1]),
                p(dilation[0]), p(dilation[1]), p(groups), gi, go, c_in, c_out, static_cast<uint8_t>(x_zero),
                static_cast<float>(x.qparams.scale()), static_cast<uint8_t>(w.qparams.zero_point() + 128),
                static_cast<float>(w.qparams.scale()), kernel.data(), bias.data(), static_cast<uint8_t>(y_zero),
                static_cast<float>(y.scale()), static_cast<uint8_t>(relu_ ? y_zero : 0), 255, 0, &op.op),
            "qu8 convolution operator");
      check(xnn_setup_convolution2d_nhwc_qu8(op.op, n, h, wd, data.data(), result.data(), nullptr), "setup");
    }
    check(xnn_run_operator(op.op, nullptr), "run");
    QTensor out{Shape{n, c_out, oh, ow}, std::vector<int32_t>(result.size()), y};
    for (int64_t b = 0; b < n; ++b)
      for (int64_t c = 0; c < c_out; ++c)
        for (int64_t q = 0; q < oh * ow; ++q)
          out.values[(b * c_out + c) * oh * ow + q] =
              (per_channel ? static_cast<int8_t>(result[(b * oh * ow + q) * c_out + c]) + 128
                           : result[(b * oh * ow + q) * c_out + c]);
    return {out, std::nullopt};
  }
};

// PyTorch's ConvTranspose2d as XNNPACK's qu8 deconvolution: the same scatter, the padding
// cropped from each side, output_padding as the setup's adjustment; weights (in, out / g, kH,
// kW) to XNNPACK's (g, out / g, kH, kW, in / g). Per-channel weights do not arise (PyTorch
// refuses them for transposed convolutions).
class XnnpackConvTranspose2d : public XnnpackModule {
 public:
  using XnnpackModule::XnnpackModule;
  std::string name() const override { return "XnnpackConvTranspose2d"; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const QTensor x = input_of(input, name());
    const QTensor& w = spec_.parameters.at("weight").as<QTensor>("weight");
    if (x.sizes.size() != 4) throw PluginDeclines("an unbatched input (XNNPACK takes NHWC batches)");
    if (w.qparams.per_channel()) throw PluginDeclines("per-channel weights");
    const auto k = spec_.integers("kernel_size"), stride = spec_.integers("stride"),
               padding = spec_.integers("padding"), dilation = spec_.integers("dilation"),
               adjustment = spec_.integers("output_padding");
    const int64_t groups = spec_.integer("groups"), c_in = spec_.integer("in_channels"),
                  c_out = spec_.integer("out_channels");
    const int64_t n = x.sizes[0], h = x.sizes[2], wd = x.sizes[3];
    if (x.sizes[1] != c_in) throw Error(name() + ": the input has " + std::to_string(x.sizes[1]) + " channels");
    const int64_t oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (k[0] - 1) + adjustment[0] + 1;
    const int64_t ow = (wd - 1) * stride[1] - 2 * padding[1] + dilation[1] * (k[1] - 1) + adjustment[1] + 1;
    if (oh <= 0 || ow <= 0) throw PluginDeclines("an output without positions");
    // Measured: this XNNPACK's deconvolution setup crashes (SIGSEGV) on some outputs smaller
    // than the stride with padding cropped (k 3, stride 3, padding 1 on a 1x1 input); every
    // crash of a probe over kernels 1-8, strides 1-7, paddings 0-4 and inputs 1-6 had both.
    if ((padding[0] > 0 && oh < stride[0]) || (padding[1] > 0 && ow < stride[1]))
      throw PluginDeclines("an output smaller than the stride with padding, on which XNNPACK's deconvolution "
                           "setup crashes");
    const int64_t gi = c_in / groups, go = c_out / groups, kk = k[0] * k[1];
    std::vector<uint8_t> data = input_buffer(x.values.size());
    for (int64_t b = 0; b < n; ++b)
      for (int64_t c = 0; c < c_in; ++c)
        for (int64_t p = 0; p < h * wd; ++p) data[(b * h * wd + p) * c_in + c] = static_cast<uint8_t>(x.values[(b * c_in + c) * h * wd + p]);
    std::vector<uint8_t> kernel(w.values.size());
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t i = 0; i < gi; ++i)
        for (int64_t o = 0; o < go; ++o)
          for (int64_t t = 0; t < kk; ++t)
            kernel[((g * go + o) * kk + t) * gi + i] = static_cast<uint8_t>(w.values[((g * gi + i) * go + o) * kk + t] + 128);
    const std::vector<int32_t> bias = quantized_bias(spec_.parameters.at("bias"), c_out, x.qparams.scale(),
                                                     w.qparams.scales);
    const QuantParams y = output_qparams();
    const auto p = [](int64_t v) { return static_cast<uint32_t>(v); };
    Operator op;
    check(xnn_create_deconvolution2d_nhwc_qu8(
              p(padding[0]), p(padding[1]), p(padding[0]), p(padding[1]), p(k[0]), p(k[1]), p(stride[0]), p(stride[1]),
              p(dilation[0]), p(dilation[1]), p(groups), gi, go, c_in, c_out,
              static_cast<uint8_t>(input_zero_point(x.qparams)), static_cast<float>(x.qparams.scale()),
              static_cast<uint8_t>(w.qparams.zero_point() + 128), static_cast<float>(w.qparams.scale()), kernel.data(),
              bias.data(), static_cast<uint8_t>(y.zero_point()), static_cast<float>(y.scale()), 0, 255, 0, &op.op),
          "qu8 deconvolution operator");
    std::vector<uint8_t> result(n * oh * ow * c_out);
    check(xnn_setup_deconvolution2d_nhwc_qu8(op.op, n, h, wd, p(adjustment[0]), p(adjustment[1]), data.data(),
                                             result.data(), nullptr),
          "setup");
    check(xnn_run_operator(op.op, nullptr), "run");
    QTensor out{Shape{n, c_out, oh, ow}, std::vector<int32_t>(result.size()), y};
    for (int64_t b = 0; b < n; ++b)
      for (int64_t c = 0; c < c_out; ++c)
        for (int64_t q = 0; q < oh * ow; ++q) out.values[(b * c_out + c) * oh * ow + q] = result[(b * oh * ow + q) * c_out + c];
    return {out, std::nullopt};
  }
};

Plugin xnnpack_plugin() {
  Plugin plugin;
  plugin.name = "xnnpack";
  plugin.description = "XNNPACK (Debian's libxnnpack, 2022-02): qu8 fully connected, convolution and deconvolution, "
                       "qc8 convolution";
  // XNNPACK descends from QNNPACK: exact int32 sums, the bias rounded to int32, one float
  // multiplier; the bounds take qnnpack's engine-table row.
  plugin.numerics_like = Engine::QNNPACK;
  for (const char* kind : {"static.Linear", "static.LinearReLU"})
    plugin.kinds.push_back({kind, [relu = std::string(kind) == "static.LinearReLU"](const ModuleSpec& spec) {
                              return std::make_unique<XnnpackLinear>(spec, relu);
                            }});
  for (const char* kind : {"static.Conv2d", "static.ConvReLU2d"})
    plugin.kinds.push_back({kind, [relu = std::string(kind) == "static.ConvReLU2d"](const ModuleSpec& spec) {
                              return std::make_unique<XnnpackConv2d>(spec, relu);
                            }});
  plugin.kinds.push_back({"static.ConvTranspose2d", [](const ModuleSpec& spec) {
                            return std::make_unique<XnnpackConvTranspose2d>(spec, false);
                          }});
  plugin.compare_with = {Side{Implementation::LibTorch, EngineProfile(Engine::QNNPACK)},
                         Side{Implementation::Quantized, EngineProfile(Engine::QNNPACK)}};
  const SidePattern xnnpack{Implementation::Plugin, std::nullopt, "xnnpack"};
  for (const auto& [other, id] : {std::pair<SidePattern, const char*>{{Implementation::LibTorch, Engine::QNNPACK},
                                                                      "xnnpack.static.vs-libtorch-qnnpack"},
                                  {{Implementation::Quantized, Engine::QNNPACK}, "xnnpack.static.vs-integer-qnnpack"}})
    plugin.tolerance_rows.push_back(
        {id, Family::Static, Structure::Reduction, xnnpack, other, false, BoundKind::OutputQuanta, 0,
         "XNNPACK and PyTorch's QNNPACK take the same integers (qint8 weights shifted to uint8 with their zero point, "
         "or activations shifted to int8 for qc8: exact), sum them exactly in int32 and round the bias to int32 the "
         "same way; both requantize in fp32, but not with the same float steps, and where acc * s_x s_w / s_y lies "
         "within float rounding of a half-quantum tie they round apart by one quantum (measured, deep profile on an "
         "AMD EPYC with avx512_vnni: 2 elements apart in the 10,000 cases of these two pairs; every other output identical). Where "
         "bias / (s_x s_w) leaves int32 (a constant input calibrates to s_x = 1.19e-7), this plug-in saturates the "
         "bias as quantize_per_tensor does while QNNPACK's convolution path gives INT32_MIN for either sign "
         "(docs/numerics.md): no bound there, classed accumulator-overflow. The output-quanta bound (1 quantum plus "
         "the float rounding of a K-term sum) holds both."});
  return plugin;
}

}  // namespace

int main(int argc, char** argv) {
  if (xnn_initialize(nullptr) != xnn_status_success) {
    std::fprintf(stderr, "XNNPACK does not initialize on this CPU\n");
    return 2;
  }
  register_plugin(xnnpack_plugin());
  return plugin_test_main(argc, argv);
}
