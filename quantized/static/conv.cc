#include "quantized/static/conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "core/error.h"
#include "quantized/kernels/channels_last.h"
#include "quantized/kernels/threads.h"
#include "quantized/static/linear.h"
#include "reference/conv.h"
#include "reference/static.h"

namespace qconform {
namespace {

// qnnpack runs 1x1, stride-1, unpadded convolutions as its GEMM, the rest (transposed ones
// included) on its convolution path; they differ in an overflowing int32 bias
// (static_gemm.h (2a)).
kernels::BiasOverflow bias_overflow_of(const ConvOptions& o) {
  bool pointwise = !o.transposed;
  for (int64_t d = 0; d < o.spatial_dims; ++d)
    pointwise = pointwise && o.kernel_size[d] == 1 && o.stride[d] == 1 && o.padding[d] == 0;
  return pointwise ? kernels::BiasOverflow::Saturate : kernels::BiasOverflow::IntegerIndefinite;
}

}  // namespace

std::string quantized_conv_extra_repr(const ConvOptions& o, double scale, int64_t zero_point) {
  std::ostringstream qparams;  // nnq's extra_repr puts them right after the stride
  qparams << ", scale=" << scale << ", zero_point=" << zero_point;
  return conv_extra_repr(o, qparams.str());
}

QuantizedConv::QuantizedConv(ConvOptions options, QTensor weight, std::optional<Tensor> bias, double scale,
                             int64_t zero_point, EngineProfile engine, bool fused_relu)
    : options_(std::move(options)), engine_(engine), fused_relu_(fused_relu) {
  const EngineOpRule& rule = engine_rule(engine.engine, EngineOp::StaticConv);
  if (rule.requantization == Requantization::NotModelled)
    throw Error(name() + ": no integer implementation on " + engine.label() +
                " (its requantization is not modelled; see `qconform engines`)");
  if (options_.transposed && options_.spatial_dims == 3 && !rule.conv_transpose3d_rejection.empty())
    throw Error(rule.conv_transpose3d_rejection);
  set_parameters(std::move(weight), std::move(bias), scale, zero_point);
}

std::string QuantizedConv::name() const {
  return "Quantized" + options_.float_name(fused_relu_);
}

void QuantizedConv::set_parameters(QTensor weight, std::optional<Tensor> bias, double scale, int64_t zero_point) {
  // nnq's set_weight_bias takes a bias or None whatever the constructor's bias flag said.
  ConvOptions options = options_;
  options.bias = bias.has_value();
  check_conv_parameters(options, weight.sizes, bias, name());
  validate(weight.qparams, weight.sizes);
  validate(QuantParams::per_tensor(DType::QUInt8, scale, zero_point));  // the output qparams
  std::optional<std::string> refused_at_forward;
  const EngineOpRule& rule = engine_rule(engine_.engine, EngineOp::StaticConv);
  // The engine checks output_padding before the weights; float16 weights never reach it.
  if (options.transposed && weight.qparams.dtype != DType::Float16)
    if (auto refused = output_padding_rejection(rule, options.output_padding_or_zeros())) throw Error(*refused);
  if (auto rejection = weight_rejection(engine_.engine, EngineOp::StaticConv, weight.qparams)) {
    if (rejection->step == RejectionStep::Prepack) throw Error(rejection->message);
    refused_at_forward = rejection->message;
  }
  if (options.transposed && weight.qparams.per_channel())
    throw Error(name() + ": per-channel weights are not supported for transposed convolutions (PyTorch 1.13 "
                "refuses a per-channel weight observer for " + options.float_name(false) + " at prepare)");
  const int64_t out_per_group = options_.out_channels / options_.groups;
  const int64_t patch = weight.numel() / options_.out_channels;
  // A transposed convolution runs as its stride-1 equivalent (core/float/conv.h).
  const std::vector<int32_t> rows = options.transposed ? stride1_weight(options, weight.values) : weight.values;
  if (patch > kernels::kMaxDynamicLinearK)
    throw Error(name() + ": a patch of " + std::to_string(patch) + " values exceeds the int32 accumulator bound of " +
                std::to_string(kernels::kMaxDynamicLinearK));
  const int64_t in_per_group = options_.in_channels / options_.groups;
  const int64_t kernel_volume = patch / in_per_group, paired = paired_width(in_per_group, kernel_volume);
  const bool pairs = conv_sums_int16_pairs(rule, engine_, options.transposed,
                                           options_.groups, in_per_group, out_per_group);
  if (pairs && paired > kernels::kMaxDynamicLinearK)
    throw Error(name() + ": a patch of " + std::to_string(paired) + " values (channels padded to pairs) exceeds the "
                "int32 accumulator bound of " + std::to_string(kernels::kMaxDynamicLinearK));
  std::vector<kernels::StaticLinearWeights> groups(options_.groups), paired_groups(pairs ? options_.groups : 0);
  // Paired sums read channels-last where a pair is two adjacent bytes of every run: an even
  // count of channels per group (a run is whole pixels, or one pixel's group), and symmetric
  // weights (the saturating tile's zero-point term has no weight zero point).
  // With one group an odd count is read from pixels widened by a zero byte (run_channels_last),
  // so that every pixel starts on an even byte: the network's stem, 3 channels. Per kernel
  // position the weights' sums, and the largest |w0 + w1| of a pair, serve the padding
  // (run_channels_last).
  bool symmetric = true;
  for (int64_t n = 0; n < options_.out_channels; ++n) symmetric = symmetric && weight.qparams.zero_point(n) == 0;
  const bool channels_last = !options.transposed && (!pairs || ((in_per_group % 2 == 0 || options_.groups == 1) && symmetric));
  const bool widened = channels_last && pairs && in_per_group % 2 == 1;
  const int64_t run_channels = in_per_group + (widened ? 1 : 0);  // a pixel's bytes in a run
  std::vector<kernels::StaticLinearWeights> channels_last_groups(channels_last ? options_.groups : 0);
  std::vector<std::vector<int32_t>> pair_position_sums(channels_last && pairs ? options_.groups : 0);
  int32_t pair_weight_bound = 0;
  PatchRuns runs;
  runs.kernel_rows = options_.spatial_dims == 2 && options_.groups == 1 && options_.dilation[1] == 1;
  runs.count = runs.kernel_rows ? options_.kernel_size[0] : kernel_volume;
  runs.bytes = runs.kernel_rows ? options_.kernel_size[1] * run_channels : run_channels;
  runs.pixel = options_.in_channels + (widened ? 1 : 0);
  runs.quads = (runs.bytes + 3) / 4;
  for (int64_t g = 0; g < options_.groups; ++g) {
    kernels::StaticLinearWeights& packed = groups[g];
    packed.integers.out_features = out_per_group;
    packed.integers.in_features = patch;
    packed.integers.values.assign(rows.begin() + g * out_per_group * patch, rows.begin() + (g + 1) * out_per_group * patch);
    for (int64_t n = g * out_per_group; n < (g + 1) * out_per_group; ++n) {
      packed.scales.push_back(weight.qparams.scale(n));
      packed.integers.zero_points.push_back(static_cast<int32_t>(weight.qparams.zero_point(n)));
    }
    kernels::pack_weights(packed.integers);  // the SIMD paths' layouts (dynamic_gemm.h)
    if (channels_last) {
      // K reordered (channel c at kernel position k: c * volume + k -> k * channels + c), which
      // the runs cut into pieces of runs.bytes, each padded with zeros to whole quads.
      kernels::StaticLinearWeights& reordered = channels_last_groups[g];
      reordered = packed;
      const int64_t padded = runs.count * runs.quads * 4;
      reordered.integers.in_features = padded;
      reordered.integers.values.assign(out_per_group * padded, 0);
      for (int64_t n = 0; n < out_per_group; ++n)
        for (int64_t c = 0; c < in_per_group; ++c)
          for (int64_t k = 0; k < kernel_volume; ++k) {
            const int64_t at = k * run_channels + c;  // channels-last K (a widened pixel's last byte: weight 0)
            reordered.integers.values[n * padded + at / runs.bytes * runs.quads * 4 + at % runs.bytes] =
                packed.integers.values[n * patch + c * kernel_volume + k];
          }
      kernels::pack_weights(reordered.integers);
      if (pairs) {
        std::vector<int32_t>& sums = pair_position_sums[g];
        sums.assign(kernel_volume * out_per_group, 0);
        for (int64_t n = 0; n < out_per_group; ++n)
          for (int64_t k = 0; k < kernel_volume; ++k)
            for (int64_t c = 0; c < in_per_group; c += 2) {
              const int32_t* row = packed.integers.values.data() + n * patch;
              const int32_t pair = row[c * kernel_volume + k] + (c + 1 < in_per_group ? row[(c + 1) * kernel_volume + k] : 0);
              sums[k * out_per_group + n] += pair;
              pair_weight_bound = std::max(pair_weight_bound, std::abs(pair));
            }
      }
    }
    if (!pairs) continue;
    kernels::StaticLinearWeights& reordered = paired_groups[g];
    reordered = packed;
    reordered.integers.in_features = paired;
    reordered.integers.values.assign(out_per_group * paired, 0);
    for (int64_t n = 0; n < out_per_group; ++n)
      to_channel_pairs<int32_t>(in_per_group, kernel_volume, packed.integers.values.data() + n * patch, 0,
                                reordered.integers.values.data() + n * paired);
    kernels::pack_weights(reordered.integers);
  }
  options_ = std::move(options);
  weight_ = std::move(weight);
  bias_ = std::move(bias);
  scale_ = scale;
  zero_point_ = zero_point;
  groups_ = std::move(groups);
  paired_groups_ = std::move(paired_groups);
  channels_last_groups_ = std::move(channels_last_groups);
  pair_position_sums_ = std::move(pair_position_sums);
  pair_weight_bound_ = pair_weight_bound;
  runs_ = runs;
  refused_at_forward_ = std::move(refused_at_forward);
}

std::unique_ptr<QuantizedConv> QuantizedConv::from_float(const FloatConv& float_conv, EngineProfile engine) {
  const QuantParams out = calibrated_output_qparams(float_conv);
  return std::make_unique<QuantizedConv>(float_conv.options(), quantize_static_weight(float_conv.weight(), float_conv),
                                         float_conv.bias(), out.scale(), out.zero_point(), engine,
                                         float_conv.fused_relu);
}

std::unique_ptr<QuantizedConv> QuantizedConv::from_reference(const StaticReference& reference, EngineProfile engine) {
  const auto& conv = dynamic_cast<const ReferenceConv&>(reference.module());
  return std::make_unique<QuantizedConv>(conv.options(), conv.get_quantized_weight(), conv.bias(),
                                         reference.output_qparams().scale(), reference.output_qparams().zero_point(),
                                         engine, conv.fused_relu);
}

std::string QuantizedConv::extra_repr() const { return quantized_conv_extra_repr(options_, scale_, zero_point_); }

ModuleOutput QuantizedConv::forward(const ModuleInput& input) {
  const auto* x = std::get_if<QTensor>(&input.input);
  if (!x) throw Error(name() + ": expects a quantized (quint8) input tensor");
  if (x->qparams.dtype != DType::QUInt8 || x->qparams.per_channel())
    throw Error(name() + ": expects a quint8 per-tensor input, got " + x->qparams.to_string());
  // 1. The patches of the input, padded with the input zero point (real zero); a transposed
  //    convolution's input is first stretched with it (core/float/conv.h). An engine that
  //    sums int16 pairs skips where the kernel meets no input value: those read kAbsentInput.
  if (!channels_last_groups_.empty() && !refused_at_forward_) {
    const ConvGeometry g = ConvGeometry::make(options_, x->sizes, name());
    QTensor y{g.output_shape(), std::vector<int32_t>(g.batch * g.out_channels * g.positions()),
              QuantParams::per_tensor(DType::QUInt8, scale_, zero_point_)};
    if (forward_from_channels_last(*x, g, y)) return {std::move(y), std::nullopt};
  }
  const bool pairs = !paired_groups_.empty();
  const int32_t x_zero_point = static_cast<int32_t>(x->qparams.zero_point());
  const int32_t pad = pairs ? kAbsentInput : x_zero_point;
  Shape stretched_shape;
  const std::vector<int32_t> stretched =
      options_.transposed ? stretch_input<int32_t>(options_, x->sizes, x->values.data(), pad, &stretched_shape, name())
                          : std::vector<int32_t>();
  const ConvGeometry g = options_.transposed
                             ? ConvGeometry::make(options_.stride1_equivalent(), stretched_shape, name())
                             : ConvGeometry::make(options_, x->sizes, name());
  const int32_t* values = options_.transposed ? stretched.data() : x->values.data();
  if (refused_at_forward_) throw Error(*refused_at_forward_);
  const EngineOpRule& rule = engine_rule(engine_.engine, EngineOp::StaticConv);
  const int64_t positions = g.positions(), out_per_group = g.out_channels / g.groups;
  QTensor y{g.output_shape(), std::vector<int32_t>(g.batch * g.out_channels * positions),
            QuantParams::per_tensor(DType::QUInt8, scale_, zero_point_)};
  std::vector<int32_t> patches(positions * g.patch()), out(positions * out_per_group);
  const int64_t paired = pairs ? paired_groups_[0].integers.in_features : 0;
  std::vector<int32_t> pair_values(positions * paired), present(positions * paired);
  const auto bias_overflow = bias_overflow_of(options_);
  const kernels::StaticOutput output{scale_, static_cast<int32_t>(zero_point_), fused_relu_};
  for (int64_t image = 0; image < g.batch; ++image)
    for (int64_t group = 0; group < g.groups; ++group) {
      im2col<int32_t>(g, values, image, group, pad, patches.data());
      const float* bias = bias_ ? bias_->data.data() + group * out_per_group : nullptr;
      if (pairs) {
        // 2'. acc = sum of sat16(pair sums of x * w) - x_zp * sum of w where an input value
        //     is: the paired sums over the raw values, the zero-point term over `present`.
        channel_pair_patches(g, patches.data(), pair_values.data(), present.data());
        const kernels::StaticLinearWeights& w = paired_groups_[group];
        std::vector<int32_t> acc(positions * out_per_group), counted(acc.size());
        kernels::fast_accumulators({pair_values.data(), positions, 1.0f, 0, kernels::Accumulation::PairwiseInt16Saturation},
                                   w.integers, acc.data());
        kernels::fast_accumulators({present.data(), positions, 1.0f, 0}, w.integers, counted.data());
        for (size_t i = 0; i < acc.size(); ++i) acc[i] -= x_zero_point * counted[i];
        kernels::static_requantize(acc, positions,
                                   kernels::make_requantizer(x->qparams.scale(), w, bias, output, rule.requantization,
                                                             bias_overflow),
                                   out_per_group, out.data());
      } else {
        // 2-3. One static Linear over them, summed exactly.
        const kernels::DynamicLinearActivation activation{patches.data(), positions,
                                                          static_cast<float>(x->qparams.scale()), x_zero_point};
        kernels::static_linear(activation, x->qparams.scale(), groups_[group], bias, output, rule.requantization,
                               out.data(), bias_overflow);
      }
      for (int64_t j = 0; j < out_per_group; ++j) {
        int32_t* channel = y.values.data() + (image * g.out_channels + group * out_per_group + j) * positions;
        for (int64_t p = 0; p < positions; ++p) channel[p] = out[p * out_per_group + j];
      }
    }
  return {std::move(y), std::nullopt};
}

bool QuantizedConv::forward_from_channels_last(const QTensor& x, const ConvGeometry& g, QTensor& y) const {
  // The same steps as forward's loop (patches padded with the input zero point, one exact
  // static Linear over them), faster: the input goes to u8 channels-last once, so that a
  // patch is a few runs of bytes read where they lie (runs_); the weights' K is in that order
  // (channels_last_groups_). Exact int32 sums do not depend on the order of K.
  const int64_t in_plane = g.in_plane();
  const int32_t x_zero_point = static_cast<int32_t>(x.qparams.zero_point());
  thread_local std::vector<uint8_t> nhwc;
  nhwc.resize(g.batch * in_plane * g.in_channels);
  // Every image to u8 channels-last, watching the values' range.
  int32_t largest = 0, smallest = 0;
  for (int64_t image = 0; image < g.batch; ++image) {
    const int64_t offset = image * in_plane * g.in_channels;
    const kernels::ValueRange range =
        kernels::to_u8_channels_last(x.values.data() + offset, g.in_channels, in_plane, nhwc.data() + offset);
    largest = std::max(largest, range.largest);
    smallest = std::min(smallest, range.smallest);
  }
  // Values no quint8 tensor holds, or a host without a u8 path for them: the loop.
  // avx2-int8 (hosts without VNNI) is exact only on 7-bit values, the padding's included;
  // paired sums take it on any bytes.
  const bool seven_bit = largest <= 127 && x_zero_point <= 127;
  const bool supported = pairs_read_channels_last() ? kernels::u8_pair_rows_supported() : kernels::u8_rows_supported(seven_bit);
  if (smallest < 0 || largest > 255 || !supported) return false;
  run_channels_last(nhwc.data(), g, x.qparams.scale(), x_zero_point, seven_bit, {y.values.data(), nullptr});
  return true;
}

std::optional<U8ChannelsLast> QuantizedConv::channels_last_output(const std::vector<U8ChannelsLast>& x) const {
  if (x.size() != 1 || channels_last_groups_.empty() || refused_at_forward_ || options_.spatial_dims != 2 ||
      x[0].sizes.size() != 4 || x[0].zero_point < 0 || x[0].zero_point > 255)
    return std::nullopt;
  const ConvGeometry g = ConvGeometry::make(options_, x[0].sizes, name());
  if (pairs_read_channels_last()) {
    if (!kernels::u8_pair_rows_supported()) return std::nullopt;
  } else if (!kernels::u8_rows_supported(false)) {  // avx2-int8: exact only on 7-bit values (as forward)
    const int64_t n = numel_of(x[0].sizes);
    const bool seven_bit = x[0].zero_point <= 127 && std::all_of(x[0].bytes, x[0].bytes + n, [](uint8_t v) { return v <= 127; });
    if (!kernels::u8_rows_supported(seven_bit)) return std::nullopt;
  }
  return U8ChannelsLast{g.output_shape(), scale_, zero_point_, nullptr};
}

void QuantizedConv::forward_channels_last(const std::vector<U8ChannelsLast>& x, uint8_t* y) const {
  if (!channels_last_output(x)) throw std::logic_error(name() + ": forward_channels_last on operands it does not take");
  const ConvGeometry g = ConvGeometry::make(options_, x[0].sizes, name());
  const bool seven_bit = !kernels::u8_rows_supported(false);  // (checked by channels_last_output)
  run_channels_last(x[0].bytes, g, x[0].scale, static_cast<int32_t>(x[0].zero_point), seven_bit, {nullptr, y});
}

void QuantizedConv::mend_pair_zero_point_terms(const ConvGeometry& g, int64_t group, int64_t p0, int64_t rows,
                                               int32_t x_zero_point, int32_t* acc) const {
  // The tile's term is -x_zp sum_k wq[n][k] over the whole kernel; the engine's counts only
  // the positions that meet an input value (2'), so each position outside the input gives
  // back x_zp sum_c wq[n][c][k]. Most rows meet none and are left as they are.
  const int64_t out_per_group = g.out_channels / g.groups, dims = static_cast<int64_t>(g.in_size.size());
  const int64_t volume = g.patch() / (g.in_channels / g.groups);
  const std::vector<int32_t>& sums = pair_position_sums_[group];
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rest = p0 + r, start[8];
    bool interior = true;
    for (int64_t d = dims - 1; d >= 0; --d) {
      start[d] = rest % g.out_size[d] * g.stride[d] - g.padding[d];
      rest /= g.out_size[d];
      interior = interior && start[d] >= 0 && start[d] + (g.kernel[d] - 1) * g.dilation[d] < g.in_size[d];
    }
    if (interior) continue;
    int32_t* row = acc + r * out_per_group;
    for (int64_t k = 0; k < volume; ++k) {
      int64_t kr = k;
      bool inside = true;
      for (int64_t d = dims - 1; d >= 0; --d) {
        const int64_t coordinate = start[d] + kr % g.kernel[d] * g.dilation[d];
        kr /= g.kernel[d];
        inside = inside && coordinate >= 0 && coordinate < g.in_size[d];
      }
      if (inside) continue;
      const int32_t* position = sums.data() + k * out_per_group;
      for (int64_t n = 0; n < out_per_group; ++n)  // wrapping, as the tile's: the exact sum fits
        row[n] = static_cast<int32_t>(static_cast<uint32_t>(row[n]) +
                                      static_cast<uint32_t>(x_zero_point) * static_cast<uint32_t>(position[n]));
    }
  }
}

void QuantizedConv::run_channels_last(const uint8_t* images, const ConvGeometry& g, double x_scale,
                                      int32_t x_zero_point, bool seven_bit, OutputPlace y) const {
  const int64_t channels = g.in_channels / g.groups, in_plane = g.in_plane(), positions = g.positions();
  const int64_t out_per_group = g.out_channels / g.groups, dims = static_cast<int64_t>(g.in_size.size());
  const int64_t run_span = runs_.quads * 4;  // bytes a run's quads read
  if (runs_.pixel != g.in_channels) {
    // Pixels widened by a zero byte (paired sums on an odd count of channels, set_parameters);
    // the weights are zero there, and a pair of the last channel and it sums that channel alone.
    thread_local std::vector<uint8_t> widened;
    widened.assign(g.batch * in_plane * runs_.pixel, 0);
    for (int64_t p = 0; p < g.batch * in_plane; ++p)
      std::memcpy(widened.data() + p * runs_.pixel, images + p * g.in_channels, g.in_channels);
    images = widened.data();
  }
  const int64_t image_bytes = in_plane * runs_.pixel, readable = g.batch * image_bytes;
  // Padding reads the input zero point (real zero); past a run's bytes the weights are zero.
  // Paired sums skip the positions that meet no input value instead (2'). Padding that reads
  // x_zp gives the same sums wherever no pair of padding can saturate, |x_zp (w0 + w1)| <=
  // 32767 for every pair of weights (always for x_zp <= 127; ReLU outputs have x_zp = 0): its
  // pair sums, x_zp (w0 + w1), then cancel in the zero-point term, which counts every K. Else
  // the padding is 0, which adds nothing to a pair's sum, and the zero-point term is mended
  // per row, after the int32 sums, before requantizing (the tiles cannot do that in registers).
  // (The calling thread's buffer: the kernel threads read it through `padding`, not by name,
  // which would be their own thread_local.)
  const bool pairs = pairs_read_channels_last();
  const bool mend = pairs && int64_t{x_zero_point} * pair_weight_bound_ > 32767;
  const uint8_t pad_byte = mend ? 0 : static_cast<uint8_t>(x_zero_point);
  thread_local std::vector<uint8_t> zero_run;
  zero_run.assign(run_span, pad_byte);
  const uint8_t* const padding = zero_run.data();
  // Where each run of output positions p0 .. p0 + rows - 1 starts (at[r * count + s]),
  // `source` being the offset of the image's group's first channel: in the input itself where
  // the run and the quads it reads lie inside it, else a copy in `scratch` with the padding's
  // zero points, or `padding` for a run wholly outside.
  const auto place_runs = [&](int64_t source, int64_t p0, int64_t rows, uint8_t* scratch, const uint8_t** at) {
    const int64_t count = runs_.count;
    if (runs_.kernel_rows) {
      // The geometry in locals (the loop writes through pointers the compiler cannot tell
      // from the vectors'), the position's coordinates stepped rather than divided.
      const int64_t height = g.in_size[0], width = g.in_size[1], out_width = g.out_size[1];
      const int64_t stride_h = g.stride[0], stride_w = g.stride[1], pad_h = g.padding[0], pad_w = g.padding[1];
      const int64_t dilation_h = g.dilation[0], kernel_w = g.kernel[1], pixel = runs_.pixel;
      const int64_t last_readable = readable - run_span;  // a run may start up to here
      int64_t oh = p0 / out_width, ow = p0 % out_width;
      const int64_t row_step = dilation_h * width * pixel;  // from one kernel row's run to the next
      // A position whose patch reaches the padding or the input's last bytes, run by run.
      const auto place_border_runs = [&](int64_t first, int64_t w0, int64_t h0, bool columns_inside,
                                         uint8_t* scratch_runs, const uint8_t** runs) {
        for (int64_t kh = 0; kh < count; ++kh) {
          const int64_t ih = h0 + kh * dilation_h, from = first + kh * row_step;
          if (ih < 0 || ih >= height) {
            runs[kh] = padding;
          } else if (columns_inside && from <= last_readable) {
            runs[kh] = images + from;
          } else {
            // The columns inside, side by side in the input (one group: a pixel is the run's
            // channels), in one copy; the zero point around them.
            uint8_t* run = scratch_runs + kh * run_span;
            const int64_t first_kw = std::max<int64_t>(0, -w0), end_kw = std::min(kernel_w, width - w0);
            std::memset(run, pad_byte, run_span);
            if (first_kw < end_kw)
              std::memcpy(run + first_kw * pixel, images + from + first_kw * pixel, (end_kw - first_kw) * pixel);
            runs[kh] = run;
          }
        }
      };
      for (int64_t r = 0; r < rows; ++r, at += count, scratch += count * run_span) {
        const int64_t w0 = ow * stride_w - pad_w, h0 = oh * stride_h - pad_h;
        const bool columns_inside = w0 >= 0 && w0 + kernel_w <= width;
        const int64_t first = source + (h0 * width + w0) * pixel;
        if (columns_inside && h0 >= 0 && h0 + (count - 1) * dilation_h < height &&
            first + (count - 1) * row_step <= last_readable) {  // the whole patch inside: most positions
          for (int64_t kh = 0; kh < count; ++kh) at[kh] = images + first + kh * row_step;
        } else {
          place_border_runs(first, w0, h0, columns_inside, scratch, at);
        }
        if (++ow == out_width) {
          ow = 0;
          ++oh;
        }
      }
      return;
    }
    for (int64_t r = 0; r < rows; ++r, at += count, scratch += count * run_span) {
      int64_t rest = p0 + r, start[8], kernel_at[8];
      for (int64_t d = dims - 1; d >= 0; --d) {
        start[d] = rest % g.out_size[d] * g.stride[d] - g.padding[d];
        rest /= g.out_size[d];
      }
      for (int64_t k = 0; k < count; ++k) {
        int64_t kr = k, offset = 0;
        bool inside = true;
        for (int64_t d = dims - 1; d >= 0; --d) {
          kernel_at[d] = kr % g.kernel[d];
          kr /= g.kernel[d];
        }
        for (int64_t d = 0; d < dims; ++d) {
          const int64_t coordinate = start[d] + kernel_at[d] * g.dilation[d];
          inside = inside && coordinate >= 0 && coordinate < g.in_size[d];
          offset = offset * g.in_size[d] + coordinate;
        }
        const int64_t from = source + offset * runs_.pixel;
        if (!inside) {
          at[k] = padding;
        } else if (from + run_span <= readable) {
          at[k] = images + from;
        } else {  // the last pixel's group: its quads would read past the input
          uint8_t* run = scratch + k * run_span;
          std::memcpy(run, images + from, runs_.bytes);
          at[k] = run;
        }
      }
    }
  };
  // Positions in blocks of about 16384 outputs (their run pointers, and the int32 sums where
  // the tiles cannot requantize, stay in L1-L2); the blocks are the units the kernel threads
  // share (each writes its own outputs).
  const int64_t block = std::max<int64_t>(16, 16384 / out_per_group / 8 * 8);
  const int64_t blocks = (positions + block - 1) / block;
  // (2)-(3) of the requantization once per group; the tiles apply (4)-(6) in their registers.
  const kernels::StaticOutput output{scale_, static_cast<int32_t>(zero_point_), fused_relu_};
  const EngineOpRule& rule = engine_rule(engine_.engine, EngineOp::StaticConv);
  std::vector<kernels::Requantizer> requantizers;
  for (int64_t group = 0; group < g.groups; ++group)
    requantizers.push_back(kernels::make_requantizer(x_scale, channels_last_groups_[group],
                                                     bias_ ? bias_->data.data() + group * out_per_group : nullptr,
                                                     output, rule.requantization, bias_overflow_of(options_)));
  const auto run_block = [&](int64_t unit) {
    const int64_t image = unit / (g.groups * blocks), group = unit / blocks % g.groups, p0 = unit % blocks * block;
    const int64_t rows = std::min(block, positions - p0);
    thread_local std::vector<const uint8_t*> at;
    thread_local std::vector<uint8_t> scratch, bytes;
    thread_local std::vector<int32_t> acc, out;
    at.resize(rows * runs_.count);
    scratch.resize(rows * runs_.count * run_span);
    const int64_t source = image * image_bytes + group * channels;
    place_runs(source, p0, rows, scratch.data(), at.data());
    const kernels::StaticLinearWeights& w = channels_last_groups_[group];
    const kernels::Requantizer& requantizer = requantizers[group];
    const kernels::U8Rows patches{at.data(), rows, runs_.count, runs_.quads, runs_.bytes, x_zero_point, seven_bit,
                                  pairs ? kernels::Accumulation::PairwiseInt16Saturation : kernels::Accumulation::Exact};
    // The outputs as u8 rows, each position's channels side by side: in place on the byte
    // path, else in a block of their own that is then widened to channel-major.
    uint8_t* rows_out = nullptr;
    int64_t stride = g.out_channels;
    if (y.channels_last) {
      rows_out = y.channels_last + (image * positions + p0) * g.out_channels + group * out_per_group;
    } else {
      bytes.resize(rows * out_per_group);
      rows_out = bytes.data();
      stride = out_per_group;
    }
    if (mend || !kernels::u8_requantized(patches, w, requantizer, rows_out, stride)) {
      // Paired sums, whose zero-point term depends on the row, and a requantization the tiles
      // do not take (a scale that makes a lane NaN): the int32 sums, then the scalar steps.
      acc.resize(rows * out_per_group);
      out.resize(rows * out_per_group);
      if (!kernels::u8_accumulators(patches, w.integers, acc.data()))
        throw std::logic_error(name() + ": the u8 rows were refused after u8_rows_supported took them");
      if (mend) mend_pair_zero_point_terms(g, group, p0, rows, x_zero_point, acc.data());
      kernels::static_requantize(acc, rows, requantizer, out_per_group, out.data());
      kernels::narrow_to_u8(out.data(), rows, out_per_group, rows_out, stride);  // values in [0, 255]
    }
    if (y.channel_major)  // back to channel-major, widened
      for (int64_t j = 0; j < out_per_group; ++j) {
        int32_t* plane = y.channel_major + (image * g.out_channels + group * out_per_group + j) * positions + p0;
        for (int64_t r = 0; r < rows; ++r) plane[r] = bytes[r * out_per_group + j];
      }
  };
  kernels::parallel_for(g.batch * g.groups * blocks, run_block);
}

StateDict conv_state_dict(const ConvStateParameters& p) {
  StateDict state;
  state.set("weight", p.weight);
  state.set("bias", p.bias ? StateValue(*p.bias) : StateValue(NoneValue{}));
  state.set("scale", Tensor(Shape{}, {static_cast<float>(p.scale)}));  // torch.tensor(float): float32
  state.set("zero_point", IntTensor{{}, {p.zero_point}, false});
  state.versions[""] = QuantizedConv::kVersion;
  return state;
}

ConvStateParameters parse_conv_state_dict(const StateDict& state, const std::string& module_name) {
  state.check_keys({"weight", "bias", "scale", "zero_point"}, module_name);
  ConvStateParameters p;
  p.weight = state.at("weight").as<QTensor>("weight");
  if (!state.at("bias").is<NoneValue>()) p.bias = state.at("bias").as<Tensor>("bias");
  const Tensor& scale = state.at("scale").as<Tensor>("scale");
  const IntTensor& zero_point = state.at("zero_point").as<IntTensor>("zero_point");
  if (scale.data.size() != 1 || zero_point.values.size() != 1)
    throw Error(module_name + ": state_dict['scale'] and state_dict['zero_point'] must hold one value each");
  p.scale = scale.data[0];
  p.zero_point = zero_point.values[0];
  return p;
}

StateDict QuantizedConv::state_dict() const {
  // What the engine's unpack gives, as nnq.ConvNd._weight_bias reads it from there.
  const EngineOpRule& rule = engine_rule(engine_.engine, EngineOp::StaticConv);
  if (options_.spatial_dims == 3 && !rule.conv3d_unpack_rejection.empty()) throw Error(rule.conv3d_unpack_rejection);
  std::optional<Tensor> bias = bias_;
  if (!bias && rule.unpacks_missing_bias_as_zeros) bias = Tensor(Shape{options_.out_channels});
  return conv_state_dict({weight_, bias, scale_, zero_point_});
}

void QuantizedConv::load_state_dict(const StateDict& state) {
  ConvStateParameters p = parse_conv_state_dict(state, name());
  if (p.weight.sizes != weight_.sizes)
    throw Error("size mismatch for weight: copying a param with shape " + shape_to_string(p.weight.sizes) +
                ", the shape in current model is " + shape_to_string(weight_.sizes) + ".");
  set_parameters(std::move(p.weight), std::move(p.bias), p.scale, p.zero_point);
}

}  // namespace qconform
