// static.Conv{1,2,3}d, static.ConvReLU{1,2,3}d and static.ConvTranspose{1,2,3}d: random cases,
// bounds (with the int16 pair order of the engines that sum pairs) and fixture readers
// (torch.ao.nn.quantized.Conv*d / ConvTranspose*d, torch.ao.nn.intrinsic.quantized.ConvReLU*d).
#include <nlohmann/json.hpp>

#include "oracles/kinds/families.h"

#include <algorithm>
#include <random>
#include "core/error.h"
#include "core/float/conv.h"
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/kernels/dynamic_gemm.h"
#include "quantized/libtorch/static_conv.h"
#include "quantized/static/conv.h"
#include "quantized/static/linear.h"
#include "reference/conv.h"
#include "reference/static.h"

namespace qconform::kinds {
namespace {

// A case's convolution. Transposed: output_padding below max(stride, dilation) as PyTorch
// requires, and the padding no larger than keeps one output position (the input size is
// 1 + extra_size there).
ConvOptions conv_options(const CaseConfig& config, int64_t dims, bool transposed) {
  ConvOptions o;
  o.spatial_dims = dims;
  o.transposed = transposed;
  o.groups = config.get("groups");
  o.in_channels = o.groups * config.get("in_per_group");
  o.out_channels = o.groups * config.get("out_per_group");
  o.kernel_size.assign(dims, config.get("kernel"));
  o.stride.assign(dims, config.get("stride"));
  o.padding.assign(dims, config.get("padding"));
  o.dilation.assign(dims, config.get("dilation"));
  o.bias = config.get("bias") != 0;
  if (transposed) {
    const int64_t stride = o.stride[0], dilation = o.dilation[0], kernel = o.kernel_size[0];
    const int64_t output_padding = std::min(config.get("output_padding"), std::max(stride, dilation) - 1);
    const int64_t in = 1 + config.get("extra_size");
    const int64_t padding =
        std::min(config.get("padding"), ((in - 1) * stride + dilation * (kernel - 1) + output_padding) / 2);
    o.output_padding.assign(dims, output_padding);
    o.padding.assign(dims, padding);
  }
  return o;
}

// Per output element (image, channel, position), flatten_output's order: the static block
// sensitivity of each image and group over its patches.
std::vector<OutputSensitivity> static_conv_sensitivity(const Module& module, const ModuleInput& input) {
  const auto& wrapper = dynamic_cast<const StaticReference&>(module);
  const auto& reference = dynamic_cast<const ReferenceConv&>(wrapper.module());
  const ConvOptions& o = reference.options();
  QTensor xq = std::get<QTensor>(input.input);
  QTensor wq = reference.get_quantized_weight();
  Tensor w = reference.get_weight();
  const int32_t x_zero_point = static_cast<int32_t>(xq.qparams.zero_point());
  // Integers are read with kAbsentInput where no input value is (padding, a transposed
  // input's gaps): the int16-pair-summing engines skip those, everyone else reads x_zp.
  const auto absent_as_zero_point = [x_zero_point](std::vector<int32_t> values) {
    std::replace(values.begin(), values.end(), kAbsentInput, x_zero_point);
    return values;
  };
  if (o.transposed) {  // the stride-1 convolution that computes it (core/float/conv.h)
    Shape stretched;
    xq.values = stretch_input<int32_t>(o, xq.sizes, xq.values.data(), kAbsentInput, &stretched, reference.name());
    xq.sizes = stretched;
    wq = QTensor{o.stride1_equivalent().weight_shape(), stride1_weight(o, wq.values), wq.qparams};
    w = Tensor(o.stride1_equivalent().weight_shape(), stride1_weight(o, w.data));
  }
  const Tensor x = dequantize(QTensor{xq.sizes, absent_as_zero_point(xq.values), xq.qparams});  // gaps: real 0
  const ConvGeometry g = ConvGeometry::make(o.transposed ? o.stride1_equivalent() : o, xq.sizes, reference.name());
  const int64_t positions = g.positions(), patch = g.patch(), out_per_group = g.out_channels / g.groups;
  const int64_t in_per_group = g.in_channels / g.groups, kernel_volume = patch / in_per_group;
  // What int16 pairs lose, in the order and with the skipped positions of the engine that
  // sums them (onednn: engines.h grouped_conv_pairs_channel_multiple; measured there): zero
  // where that engine sums this convolution exactly. The exact sums, magnitudes and L1 norms
  // do not depend on the order.
  bool pairs = false;
  for (Engine e : all_engines())
    for (const EngineProfile& profile : engine_profiles(e))
      pairs = pairs || conv_sums_int16_pairs(engine_rule(e, EngineOp::StaticConv), profile, o.transposed, o.groups,
                                             in_per_group, out_per_group);
  const int64_t paired = paired_width(in_per_group, kernel_volume);
  // Per group, once: the float weight rows, and the integer rows in the paired order.
  std::vector<Tensor> w_groups;
  std::vector<kernels::DynamicLinearWeights> paired_weights;
  for (int64_t group = 0; group < g.groups; ++group) {
    w_groups.emplace_back(Shape{out_per_group, patch},
                          std::vector<float>(w.data.begin() + group * out_per_group * patch,
                                             w.data.begin() + (group + 1) * out_per_group * patch));
    if (!pairs) continue;
    kernels::DynamicLinearWeights& rows = paired_weights.emplace_back(kernels::DynamicLinearWeights{
        out_per_group, paired, std::vector<int32_t>(out_per_group * paired), {}, std::vector<int32_t>(out_per_group, 0),
        {}});
    for (int64_t j = 0; j < out_per_group; ++j)
      to_channel_pairs<int32_t>(in_per_group, kernel_volume, wq.values.data() + (group * out_per_group + j) * patch, 0,
                                rows.values.data() + j * paired);
  }
  std::vector<OutputSensitivity> result(g.batch * g.out_channels * positions);
  Tensor patches(Shape{positions, patch});
  std::vector<int32_t> marked_patches(positions * patch);
  std::vector<int32_t> pair_values(positions * paired), present(positions * paired);
  std::vector<int64_t> loss(positions * out_per_group, 0);
  for (int64_t image = 0; image < g.batch; ++image)
    for (int64_t group = 0; group < g.groups; ++group) {
      im2col<float>(g, x.data.data(), image, group, 0.0f, patches.data.data());
      im2col<int32_t>(g, xq.values.data(), image, group, kAbsentInput, marked_patches.data());
      if (pairs) {
        channel_pair_patches(g, marked_patches.data(), pair_values.data(), present.data());
        // The zero-point term is exact on both sides: the raw values' sums differ by the loss.
        kernels::DynamicLinearActivation raw{pair_values.data(), positions, 1.0f, 0};
        const auto exact = kernels::dynamic_linear_accumulators(raw, paired_weights[group]);
        raw.accumulation = kernels::Accumulation::PairwiseInt16Saturation;
        const auto saturated = kernels::dynamic_linear_accumulators(raw, paired_weights[group]);
        for (size_t i = 0; i < loss.size(); ++i) loss[i] = std::abs(int64_t{exact[i]} - saturated[i]);
      }
      const auto block = static_block_sensitivity(patches, absent_as_zero_point(marked_patches), xq.qparams,
                                                  w_groups[group], wq,
                                                  group * out_per_group, reference.bias(),
                                                  wrapper.output_qparams().scale(), &loss);
      for (int64_t p = 0; p < positions; ++p) {
        // No input value under the kernel: the output is the bias alone.
        const int32_t* row = marked_patches.data() + p * patch;
        const bool unreached = o.transposed && std::all_of(row, row + patch, [](int32_t v) { return v == kAbsentInput; });
        for (int64_t j = 0; j < out_per_group; ++j) {
          OutputSensitivity& s = result[(image * g.out_channels + group * out_per_group + j) * positions + p];
          s = block[p * out_per_group + j];
          s.unreached = unreached;
        }
      }
    }
  return result;
}

// A calibrated float Conv{n}d (or ConvReLU{n}d, ConvTranspose{n}d): spatial sizes from the
// dilated kernel minus the padding (down to the kernel size itself) up to a few positions
// more; a transposed convolution's input has 1 + extra_size positions.
Case make_static_conv_case(const CaseConfig& config, int64_t dims, bool relu, bool transposed) {
  std::mt19937_64 rng(config.data_seed);
  const ConvOptions o = conv_options(config, dims, transposed);
  const Shape weight_shape = o.weight_shape();
  const bool per_channel = has_parameter(config, "per_channel") && config.get("per_channel") != 0;
  Tensor flat = random_weight(weight_shape[0], numel_of(weight_shape) / weight_shape[0], per_channel, rng);
  auto module = std::make_unique<FloatConv>(o, Tensor(weight_shape, std::move(flat.data)), random_bias(config, o.out_channels, rng));
  module->fused_relu = relu;
  Shape input_shape{config.get("batch"), o.in_channels};
  for (int64_t d = 0; d < dims; ++d) {
    const int64_t dilated = o.dilation[d] * (o.kernel_size[d] - 1) + 1;
    input_shape.push_back((transposed ? 1 : std::max<int64_t>(1, dilated - 2 * o.padding[d])) + config.get("extra_size"));
  }
  const Tensor x = random_input(input_shape, config.style, rng);
  return calibrated_static_case(std::move(module), config, x);
}

// A convolution's constructor arguments from a fixture (nnq.Conv's attributes).
ConvOptions spec_conv_options(const ModuleSpec& spec, const std::string& float_name) {
  ConvOptions o;
  o.in_channels = spec.integer("in_channels");
  o.out_channels = spec.integer("out_channels");
  o.kernel_size = spec.integers("kernel_size");
  o.stride = spec.integers("stride");
  o.padding = spec.integers("padding");
  o.dilation = spec.integers("dilation");
  o.groups = spec.integer("groups");
  o.padding_mode = spec.text("padding_mode");
  o.transposed = spec.flag("transposed");
  o.spatial_dims = static_cast<int64_t>(o.kernel_size.size());
  if (o.transposed) o.output_padding = spec.integers("output_padding");
  o.bias = !spec.parameters.at("bias").is<NoneValue>();
  for (const auto* v : {&o.stride, &o.padding, &o.dilation})
    if (static_cast<int64_t>(v->size()) != o.spatial_dims)
      throw Error(spec.kind + " fixture: kernel_size, stride, padding and dilation must have one entry per spatial dimension");
  o.validate(float_name);
  return o;
}

// A convolution's integer weight from a fixture, against the shape its arguments imply.
QTensor spec_conv_weight(const ModuleSpec& spec, const ConvOptions& o) {
  QTensor w = spec_weight(spec, "weight");
  check_spec_shape(spec, "weight", w.sizes, o.weight_shape());
  return w;
}

}  // namespace

ModuleKind static_conv_kind(int64_t dims, bool relu, bool transposed) {
  ModuleKind kind;
  const std::string suffix = std::to_string(dims) + "d";
  kind.float_name = std::string(transposed ? "ConvTranspose" : relu ? "ConvReLU" : "Conv") + suffix;
  kind.key = "static." + kind.float_name;
  kind.family = Family::Static;
  kind.engine_op = EngineOp::StaticConv;
  const std::string integer_name = "Quantized" + kind.float_name;
  kind.implementations.push_back(
      {Implementation::Reference, std::string(transposed ? "QuantizedConvTranspose" : "QuantizedConv") + suffix + "(Reference)", {},
       [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
         return std::make_unique<StaticReference>(ReferenceConv::from_float(dynamic_cast<const FloatConv&>(m)),
                                                  calibrated_output_qparams(m));
       },
       nullptr});
  // Engines with modelled requantization; qnnpack has no 3-d transposed convolution (engine table).
  std::vector<Engine> engines;
  for (Engine e : static_engines(EngineOp::StaticConv))
    if (!(transposed && dims == 3 && !engine_rule(e, EngineOp::StaticConv).conv_transpose3d_rejection.empty()))
      engines.push_back(e);
  if (!engines.empty()) {
    kind.implementations.push_back(
        {Implementation::Quantized, integer_name, engines,
         [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
           return QuantizedConv::from_float(dynamic_cast<const FloatConv&>(m), e);
         },
         [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
           return QuantizedConv::from_reference(dynamic_cast<const StaticReference&>(r), e);
         }});
    kind.implementations.push_back(
        {Implementation::LibTorch, integer_name, engines,
         [](const Module& m, const EngineProfile& e) { return libtorch_static_conv_from_float(dynamic_cast<const FloatConv&>(m), e); },
         [](const Module& r, const EngineProfile& e) {
           return libtorch_static_conv_from_reference(dynamic_cast<const StaticReference&>(r), e);
         }});
  }
  kind.case_parameters = {
      {"batch", 1, 4, "images"},
      {"groups", 1, 4, "groups (channels = groups x per-group channels, up to 16)"},
      {"in_per_group", 1, 4, "input channels per group"},
      {"out_per_group", 1, 4, "output channels per group"},
      {"kernel", 1, dims == 3 ? 3 : 5, "kernel size, every spatial dim"},
      {"stride", 1, 3, "stride, every spatial dim"},
      {"padding", 0, 2, "zero padding, every spatial dim"},
      {"dilation", 1, 2, "dilation, every spatial dim"},
      {"extra_size", 0, dims == 3 ? 2 : 4, "input size beyond the smallest the kernel allows"},
      {"bias", 0, 1, "1: with bias"},
      {"full_range", 0, 1, "1: activations observed on all 8 bits, else 7 (default_qconfig)"},
  };
  if (transposed) {
    kind.case_parameters.push_back(
        {"output_padding", 0, 2, "extra output positions at the end (kept below max(stride, dilation))"});
    kind.per_channel_weights = false;  // PyTorch refuses per-channel weight observers for ConvTranspose
    kind.engine_config_rule = [](const Module& reference, Engine engine) -> std::optional<std::string> {
      const auto& conv = dynamic_cast<const ReferenceConv&>(dynamic_cast<const StaticReference&>(reference).module());
      return output_padding_rejection(engine_rule(engine, EngineOp::StaticConv), conv.options().output_padding_or_zeros());
    };
  } else {
    kind.case_parameters.push_back(
        {"per_channel", 0, 1, "1: default_per_channel_weight_observer, else default_weight_observer"});
  }
  kind.make_case = [dims, relu, transposed](const CaseConfig& config) {
    return make_static_conv_case(config, dims, relu, transposed);
  };
  kind.libtorch_defect = [](const Module& reference, const ModuleInput& input, Engine engine,
                            const std::string& onednn_isa) -> std::optional<std::string> {
    const ConvOptions& o =
        dynamic_cast<const ReferenceConv&>(dynamic_cast<const StaticReference&>(reference).module()).options();
    const auto* x = std::get_if<QTensor>(&input.input);
    if (!x) return std::nullopt;
    const int64_t kernel_volume = numel_of(o.kernel_size);
    return libtorch_conv_defect(engine_rule(engine, EngineOp::StaticConv), onednn_isa,
                                {o.transposed, o.spatial_dims, o.groups, o.in_channels / o.groups, o.out_channels,
                                 kernel_volume, static_cast<int64_t>(x->qparams.zero_point())});
  };
  kind.sensitivity = static_conv_sensitivity;
  kind.weight_shape = [](const Module& reference) {
    const auto& conv = dynamic_cast<const ReferenceConv&>(dynamic_cast<const StaticReference&>(reference).module());
    return conv.weight().sizes;
  };
  kind.with_weight_qparams = [](const Module& reference, const QuantParams& qparams) -> std::unique_ptr<Module> {
    const auto& wrapper = dynamic_cast<const StaticReference&>(reference);
    const auto& conv = dynamic_cast<const ReferenceConv&>(wrapper.module());
    auto module = std::make_unique<ReferenceConv>(conv.options(), conv.weight(), conv.bias(), qparams);
    module->fused_relu = conv.fused_relu;
    return std::make_unique<StaticReference>(std::move(module), wrapper.output_qparams());
  };
  kind.reference_from_spec = [relu, name = kind.float_name](const ModuleSpec& spec) -> std::unique_ptr<Module> {
    const ConvOptions o = spec_conv_options(spec, name);
    const QTensor w = spec_conv_weight(spec, o);
    auto module = std::make_unique<ReferenceConv>(o, dequantize(w), spec_bias(spec, "bias"), w.qparams);
    module->fused_relu = relu;
    return std::make_unique<StaticReference>(std::move(module), spec_output_qparams(spec));
  };
  kind.quantized_from_spec = [relu, name = kind.float_name](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    const ConvOptions o = spec_conv_options(spec, name);
    const QuantParams out = spec_output_qparams(spec);
    return std::make_unique<QuantizedConv>(o, spec_conv_weight(spec, o), spec_bias(spec, "bias"), out.scale(), out.zero_point(), engine, relu);
  };
  kind.spec_from_reference = [key = kind.key](const Module& reference) {
    const auto& wrapper = dynamic_cast<const StaticReference&>(reference);
    const auto& conv = dynamic_cast<const ReferenceConv&>(wrapper.module());
    const ConvOptions& o = conv.options();
    ModuleSpec spec = output_qparams_spec(wrapper.output_qparams());
    spec.kind = key;
    nlohmann::json& c = *spec.config;
    c["in_channels"] = o.in_channels;
    c["out_channels"] = o.out_channels;
    c["kernel_size"] = o.kernel_size;
    c["stride"] = o.stride;
    c["padding"] = o.padding;
    c["dilation"] = o.dilation;
    c["groups"] = o.groups;
    c["padding_mode"] = o.padding_mode;
    c["transposed"] = o.transposed;
    c["output_padding"] = o.output_padding_or_zeros();
    spec.parameters.set("weight", conv.get_quantized_weight());
    spec.parameters.set("bias", conv.bias() ? StateValue(*conv.bias()) : StateValue(NoneValue{}));
    return spec;
  };
  return kind;
}

}  // namespace qconform::kinds
