#pragma once
// Convolution shared by every implementation: the options of torch.nn.Conv{1,2,3}d, the
// geometry of one call (PyTorch's checks and messages, output sizes), the patch gathering
// (im2col) that turns a convolution into one matrix product per group, and the float
// module the conversions start from (torch.nn.Conv{n}d, torch.nn.intrinsic.ConvReLU{n}d).
//
// For output position p of group g and output channel n of that group:
//
//   y[n][p] = sum_k  W[n][k] * patch_p[k] + b[n]      k over (input channel of g, kernel offset)
//
// where patch_p holds the input values the kernel covers at p (the pad value where it hangs
// over the edge: 0 in float, the input zero point in integers, i.e. real zero either way).
// W's row layout (C_in / groups, k_1, ..., k_d) is PyTorch's weight layout, so a weight row is
// the k-vector as stored.
//
// A transposed convolution (torch.nn.ConvTranspose{n}d) is computed as the regular one that
// equals it: the input stretched by the stride (stride - 1 pad values between neighbours),
// padded with dilation * (kernel - 1) - padding values on each side (output_padding more at
// the end; a negative amount crops), then a stride-1 convolution with each kernel flipped in
// every spatial dimension and each group's input and output channel roles swapped:
//
//   out = (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/module.h"

namespace qconform {

struct ConvOptions {
  int64_t spatial_dims = 2;  // 1, 2 or 3
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  std::vector<int64_t> kernel_size, stride, padding, dilation;  // one per spatial dim
  int64_t groups = 1;
  bool bias = true;
  std::string padding_mode = "zeros";  // the only mode quantized convolution supports
  bool transposed = false;
  std::vector<int64_t> output_padding;  // transposed only; one per spatial dim (empty: zeros)

  // Throws Error with PyTorch's message for the first rule broken ("in_channels must be
  // divisible by groups", "'padding_mode' reflect is not supported by quantized convolution").
  void validate(const std::string& module_name) const;
  std::string float_name(bool relu) const;  // "Conv2d", "ConvReLU2d", "ConvTranspose2d"
  Shape weight_shape() const;               // (out, in / groups, k...); transposed (in, out / groups, k...)
  std::vector<int64_t> output_padding_or_zeros() const;
  // Transposed only: the stride-1 convolution that computes it over the stretched input.
  ConvOptions stride1_equivalent() const;
};

// One call's sizes: the input (N, C, spatial...) against the options.
struct ConvGeometry {
  int64_t batch = 0, in_channels = 0, out_channels = 0, groups = 1;
  std::vector<int64_t> in_size, out_size, kernel, stride, padding, dilation;

  // Throws Error naming the module when the input's rank or channel count is wrong, or the
  // padded input is smaller than the dilated kernel (PyTorch's wording).
  static ConvGeometry make(const ConvOptions& options, const Shape& input, const std::string& module_name);
  int64_t positions() const;   // output positions per image: prod(out_size)
  int64_t patch() const;       // K = in_channels / groups * prod(kernel)
  int64_t in_plane() const;    // prod(in_size)
  Shape output_shape() const;  // (N, out_channels, out_size...)
};

// The patches of image `image` for group `group`: positions() rows of patch() values, row p
// in the weight row's order; positions outside the input read `pad`.
template <typename T>
void im2col(const ConvGeometry& g, const T* input, int64_t image, int64_t group, T pad, T* patches) {
  const int64_t dims = static_cast<int64_t>(g.in_size.size());
  const int64_t channels = g.in_channels / g.groups;
  int64_t kernel_volume = 1;
  for (int64_t k : g.kernel) kernel_volume *= k;
  const T* base = input + (image * g.in_channels + group * channels) * g.in_plane();
  std::vector<int64_t> out_at(dims, 0), kernel_at(dims, 0);
  for (int64_t p = 0; p < g.positions(); ++p) {
    int64_t rest = p;  // output position p -> its coordinates
    for (int64_t d = dims - 1; d >= 0; --d) {
      out_at[d] = rest % g.out_size[d];
      rest /= g.out_size[d];
    }
    T* row = patches + p * g.patch();
    for (int64_t k = 0; k < kernel_volume; ++k) {
      int64_t kr = k;
      for (int64_t d = dims - 1; d >= 0; --d) {
        kernel_at[d] = kr % g.kernel[d];
        kr /= g.kernel[d];
      }
      int64_t offset = 0;
      bool inside = true;
      for (int64_t d = 0; d < dims; ++d) {
        const int64_t at = out_at[d] * g.stride[d] - g.padding[d] + kernel_at[d] * g.dilation[d];
        inside = inside && at >= 0 && at < g.in_size[d];
        offset = offset * g.in_size[d] + at;
      }
      for (int64_t c = 0; c < channels; ++c)
        row[c * kernel_volume + k] = inside ? base[c * g.in_plane() + offset] : pad;
    }
  }
}

// The reduction in the order of engines that sum int16 pairs channels-last (core/engines.h,
// grouped_conv_pairs_channel_multiple): per kernel position, the group's channels padded to
// an even count, so that a pair is two adjacent channels at one position. paired_width() is
// a row's length in that order, for `channels` per group and a kernel of `kernel_volume`.
inline int64_t paired_width(int64_t channels, int64_t kernel_volume) { return kernel_volume * (channels + channels % 2); }
// One weight (or float patch) row from im2col's order into it, `fill` for the padding channel.
template <typename T>
void to_channel_pairs(int64_t channels, int64_t kernel_volume, const T* row, T fill, T* out) {
  const int64_t padded = channels + channels % 2;
  for (int64_t k = 0; k < kernel_volume; ++k)
    for (int64_t c = 0; c < padded; ++c) out[k * padded + c] = c < channels ? row[c * kernel_volume + k] : fill;
}
// Integer patches for those engines, which skip the kernel positions that meet no input
// value: `rows` (positions() of them) were read by im2col with pad = kAbsentInput (and a
// transposed input stretched with it). `values` gets each input value and 0 where none is;
// `present` 1 where one is and 0 elsewhere, so that the zero-point term counts only those.
constexpr int32_t kAbsentInput = -1;  // no quint8 value
void channel_pair_patches(const ConvGeometry& g, const int32_t* rows, int32_t* values, int32_t* present);

// Transposed only: the input (N, C, spatial...) stretched and padded for stride1_equivalent()
// (pad where no input value lands), and its shape. Checks the input's rank and channels with
// PyTorch's messages first.
template <typename T>
std::vector<T> stretch_input(const ConvOptions& o, const Shape& input, const T* x, T pad, Shape* stretched,
                             const std::string& module_name);
// Transposed only: the weight rows of stride1_equivalent(), (out, in / groups, k...), from the
// transposed weight (in, out / groups, k...): channel roles swapped per group, kernel flipped.
template <typename T>
std::vector<T> stride1_weight(const ConvOptions& o, const std::vector<T>& transposed_weight);
// Transposed only: throws Error naming the module when the input does not fit (rank,
// channels, an output size below 1).
void check_transposed_input(const ConvOptions& o, const Shape& input, const std::string& module_name);

// Checks a weight and bias against the options (shapes), naming the module.
void check_conv_parameters(const ConvOptions& options, const Shape& weight, const std::optional<Tensor>& bias,
                           const std::string& module_name);

// y = conv(x, weight) + bias in float (one Eigen product per image and group), relu if asked.
Tensor float_conv(const ConvOptions& options, const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                  bool relu, const std::string& module_name);

// torch.nn.Conv{n}d (and nni.ConvReLU{n}d when fused_relu): "weight", "bias" in its state_dict.
class FloatConv : public Module {
 public:
  FloatConv(ConvOptions options, Tensor weight, std::optional<Tensor> bias);
  std::string name() const override { return options_.float_name(fused_relu); }
  std::string extra_repr() const override;
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const ConvOptions& options() const { return options_; }
  const Tensor& weight() const { return weight_; }
  const std::optional<Tensor>& bias() const { return bias_; }
  bool fused_relu = false;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  ConvOptions options_;
  Tensor weight_;
  std::optional<Tensor> bias_;
};

template <typename T>
std::vector<T> stretch_input(const ConvOptions& o, const Shape& input, const T* x, T pad, Shape* stretched,
                             const std::string& module_name) {
  check_transposed_input(o, input, module_name);
  const int64_t dims = o.spatial_dims;
  const std::vector<int64_t> output_padding = o.output_padding_or_zeros();
  std::vector<int64_t> lead(dims), in(dims), size(dims);  // lead: stretched index of input 0
  *stretched = {input[0], input[1]};
  int64_t plane = 1, in_plane = 1;
  for (int64_t d = 0; d < dims; ++d) {
    in[d] = input[2 + d];
    lead[d] = o.dilation[d] * (o.kernel_size[d] - 1) - o.padding[d];
    size[d] = (in[d] - 1) * o.stride[d] + 1 + 2 * lead[d] + output_padding[d];
    stretched->push_back(size[d]);
    plane *= size[d];
    in_plane *= in[d];
  }
  std::vector<T> out(input[0] * input[1] * plane, pad);
  std::vector<int64_t> at(dims, 0);
  for (int64_t i = 0; i < in_plane; ++i) {  // each input position -> its stretched position
    int64_t rest = i, target = 0;
    bool inside = true;
    for (int64_t d = dims - 1; d >= 0; --d) {
      at[d] = rest % in[d];
      rest /= in[d];
    }
    for (int64_t d = 0; d < dims; ++d) {
      const int64_t j = at[d] * o.stride[d] + lead[d];
      inside = inside && j >= 0 && j < size[d];  // a negative lead crops
      target = target * size[d] + j;
    }
    if (!inside) continue;
    for (int64_t nc = 0; nc < input[0] * input[1]; ++nc) out[nc * plane + target] = x[nc * in_plane + i];
  }
  return out;
}

template <typename T>
std::vector<T> stride1_weight(const ConvOptions& o, const std::vector<T>& w) {
  const int64_t in_g = o.in_channels / o.groups, out_g = o.out_channels / o.groups;
  int64_t kernel = 1;
  for (int64_t k : o.kernel_size) kernel *= k;
  std::vector<T> out(w.size());
  for (int64_t g = 0; g < o.groups; ++g)
    for (int64_t i = 0; i < in_g; ++i)
      for (int64_t j = 0; j < out_g; ++j)
        for (int64_t k = 0; k < kernel; ++k)  // flipping every dim reverses the flat kernel index
          out[((g * out_g + j) * in_g + i) * kernel + (kernel - 1 - k)] = w[((g * in_g + i) * out_g + j) * kernel + k];
  return out;
}

// "16, 33, kernel_size=(3, 3), stride=(1, 1), ..." as torch.nn.Conv's extra_repr prints it.
// `after_stride`: what a quantized module prints there (", scale=..., zero_point=...").
std::string conv_extra_repr(const ConvOptions& options, const std::string& after_stride = "");
std::string tuple_string(const std::vector<int64_t>& values);  // "(1, 2)", "(3,)"

}  // namespace qconform
