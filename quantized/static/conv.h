#pragma once
// torch.ao.nn.quantized.Conv{1,2,3}d ("QuantizedConv{n}d") and intrinsic ConvReLU{n}d
// ("QuantizedConvReLU{n}d"): the true-integer static implementation. Each output element is
// a static Linear over the patch its kernel covers (core/float/conv.h), so the kernel is
// static_linear's (quantized/kernels/static_gemm.h) in the same step order:
//
//   1. patches: im2col of the quint8 input, padded with the input zero point (real zero)
//   2. acc = sum_k (xq - x_zp)(wq - w_zp)                     int32, per group's weights
//   3. requantize with the output scale and zero point by the engine's rule
//
// Measured on qnnpack (1-d, 2-d, 3-d; groups, depthwise, dilation, stride, padding,
// per-channel, ReLU): 300 of 300 random configurations bit-exact with quantized::conv{n}d
// (docs/numerics.md).
#include <memory>
#include <optional>

#include "core/float/conv.h"
#include "core/module.h"
#include "quantized/kernels/static_gemm.h"

namespace qconform {

class StaticReference;

class QuantizedConv : public Module, public ChannelsLastBytesForward {
 public:
  static constexpr int64_t kVersion = 1;  // nnq.Conv{n}d keeps torch.nn.Module's default

  // Throws Error with the engine's own message if the engine rejects these weights at prepack.
  QuantizedConv(ConvOptions options, QTensor weight, std::optional<Tensor> bias, double scale, int64_t zero_point,
                EngineProfile engine, bool fused_relu = false);

  // from_float: weight observer from the qconfig, output qparams from activation_post_process.
  static std::unique_ptr<QuantizedConv> from_float(const FloatConv& float_conv, EngineProfile engine);
  // from_reference: the reference module's integer weight and output qparams, unchanged.
  static std::unique_ptr<QuantizedConv> from_reference(const StaticReference& reference, EngineProfile engine);

  std::string name() const override;  // "QuantizedConv2d", "QuantizedConvReLU2d"
  std::string extra_repr() const override;
  Implementation implementation() const override { return Implementation::Quantized; }
  std::optional<EngineProfile> engine() const override { return engine_; }
  // nnq.ConvNd._save_to_state_dict: weight (qint8), bias (float or None), scale, zero_point.
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const ConvOptions& options() const { return options_; }
  const QTensor& weight() const { return weight_; }
  const std::optional<Tensor>& bias() const { return bias_; }
  double scale() const { return scale_; }
  int64_t zero_point() const { return zero_point_; }

  // A 2-d convolution's input as LibTorch holds it: forward's channels-last path without the
  // conversions (none for transposed and int16-pair convolutions, and on a host whose exact u8
  // path does not take these values).
  std::optional<U8ChannelsLast> channels_last_output(const std::vector<U8ChannelsLast>& x) const override;
  void forward_channels_last(const std::vector<U8ChannelsLast>& x, uint8_t* y) const override;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  void set_parameters(QTensor weight, std::optional<Tensor> bias, double scale, int64_t zero_point);
  ConvOptions options_;
  QTensor weight_;
  std::optional<Tensor> bias_;
  double scale_ = 1.0;
  int64_t zero_point_ = 0;
  EngineProfile engine_;
  bool fused_relu_;
  std::vector<kernels::StaticLinearWeights> groups_;  // each group's rows, as static_linear takes them
  // Where the engine sums int16 pairs channels-last (conv_sums_int16_pairs): the same rows in
  // that order (core/float/conv.h to_channel_pairs); empty otherwise.
  std::vector<kernels::StaticLinearWeights> paired_groups_;
  // How the channels-last path reads a patch in its u8 input (kernels::U8Rows's segments):
  // per kernel row, kernel width x channels bytes side by side (2-d, one group, undilated
  // rows: a network's stem reads 7 runs of 21 bytes), else per kernel position a group's
  // channels; each run padded to whole quads.
  struct PatchRuns {
    bool kernel_rows = false;
    int64_t count = 0;  // runs per patch
    int64_t bytes = 0;  // activations per run
    int64_t quads = 0;  // ceil(bytes / 4)
    int64_t pixel = 0;  // bytes per pixel of the image read: the input channels, + 1 where widened
  };
  PatchRuns runs_;
  // The same rows with K in the runs' order (channels-last: per kernel position, the group's
  // channels), zero where a run is padded; empty for transposed convolutions, and for paired
  // ones unless a group's channels are even (then a pair is two adjacent bytes of a run, as in
  // paired_groups_' order) and the weights symmetric.
  std::vector<kernels::StaticLinearWeights> channels_last_groups_;
  // Paired and channels-last: per group, per kernel position k, per output channel n,
  // sum_c wq[n][c][k]; what a patch's absent positions take out of the zero-point term.
  std::vector<std::vector<int32_t>> pair_position_sums_;
  int32_t pair_weight_bound_ = 0;  // the largest |wq[c] + wq[c + 1]| of a pair at one position
  bool pairs_read_channels_last() const { return !pair_position_sums_.empty(); }
  // Forward's fast path: true when it computed every output (else forward takes the im2col loop).
  bool forward_from_channels_last(const QTensor& x, const ConvGeometry& g, QTensor& y) const;
  // Where the channels-last path writes its outputs: QTensor's int32 channel-major values, or
  // u8 bytes in N, H, W, C order.
  struct OutputPlace {
    int32_t* channel_major = nullptr;
    uint8_t* channels_last = nullptr;
  };
  // The channels-last path on u8 images (N, H, W, C), whatever they came from.
  void run_channels_last(const uint8_t* images, const ConvGeometry& g, double x_scale, int32_t x_zero_point,
                         bool seven_bit, OutputPlace y) const;
  // Paired sums read channels-last: adds back, to the int32 sums of positions p0 .. p0 + rows - 1
  // of `group`, the zero-point term of the kernel positions that meet no input value.
  void mend_pair_zero_point_terms(const ConvGeometry& g, int64_t group, int64_t p0, int64_t rows,
                                  int32_t x_zero_point, int32_t* acc) const;
  std::optional<std::string> refused_at_forward_;
};

// nnq.ConvNd's state_dict (weight, bias or None, scale, zero_point; version 1), and back: the
// parameters of a state_dict, checked for keys and kinds (module_name for messages).
struct ConvStateParameters {
  QTensor weight;
  std::optional<Tensor> bias;
  double scale = 1.0;
  int64_t zero_point = 0;
};
StateDict conv_state_dict(const ConvStateParameters& parameters);
ConvStateParameters parse_conv_state_dict(const StateDict& state, const std::string& module_name);

// "2, 4, kernel_size=(3, 3), stride=(1, 1), scale=1.0, zero_point=0, ..." (nnq's extra_repr).
std::string quantized_conv_extra_repr(const ConvOptions& options, double scale, int64_t zero_point);

}  // namespace qconform
