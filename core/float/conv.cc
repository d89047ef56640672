#include "core/float/conv.h"

#include <Eigen/Core>
#include <sstream>

#include "core/error.h"
#include "core/float/parameters.h"

namespace qconform {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

int64_t product(const std::vector<int64_t>& values) {
  int64_t p = 1;
  for (int64_t v : values) p *= v;
  return p;
}

std::string joined_sizes(const std::vector<int64_t>& values) {  // "2 x 2"
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? " x " : "") + std::to_string(values[i]);
  return out;
}

}  // namespace

std::string tuple_string(const std::vector<int64_t>& values) {
  std::string out = "(";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out + (values.size() == 1 ? ",)" : ")");
}

void ConvOptions::validate(const std::string& module_name) const {
  if (spatial_dims < 1 || spatial_dims > 3)
    throw Error(module_name + ": spatial_dims must be 1, 2 or 3, got " + std::to_string(spatial_dims));
  for (const auto* field : {&kernel_size, &stride, &padding, &dilation})
    if (static_cast<int64_t>(field->size()) != spatial_dims)
      throw Error(module_name + ": kernel_size, stride, padding and dilation need " + std::to_string(spatial_dims) +
                  " entries each");
  if (in_channels <= 0 || out_channels <= 0 || groups <= 0)
    throw Error(module_name + ": in_channels, out_channels and groups must be positive");
  // torch.nn.modules.conv._ConvNd.__init__ (and nnq's _init), in its order.
  if (in_channels % groups != 0) throw Error("in_channels must be divisible by groups");
  if (out_channels % groups != 0) throw Error("out_channels must be divisible by groups");
  for (int64_t d = 0; d < spatial_dims; ++d) {
    if (kernel_size[d] <= 0 || stride[d] <= 0 || dilation[d] <= 0 || padding[d] < 0)
      throw Error(module_name + ": kernel_size, stride and dilation must be positive and padding non-negative, got "
                  "kernel_size=" + tuple_string(kernel_size) + ", stride=" + tuple_string(stride) +
                  ", padding=" + tuple_string(padding) + ", dilation=" + tuple_string(dilation));
  }
  if (padding_mode != "zeros") {
    if (transposed)  // nnq._ConvTransposeNd
      throw Error("Only \"zeros\" padding mode is supported for " + float_name(false));
    throw Error("'padding_mode' " + padding_mode + " is not supported by quantized convolution");
  }
  if (transposed) {
    if (!output_padding.empty() && static_cast<int64_t>(output_padding.size()) != spatial_dims)
      throw Error(module_name + ": output_padding needs " + std::to_string(spatial_dims) + " entries");
    const std::vector<int64_t> op = output_padding_or_zeros();
    for (int64_t d = 0; d < spatial_dims; ++d)
      if (op[d] < 0 || (op[d] >= stride[d] && op[d] >= dilation[d]))  // at::native's conv_transpose check
        throw Error(module_name + ": output padding must be smaller than either stride or dilation, got "
                    "output_padding=" + tuple_string(op) + ", stride=" + tuple_string(stride) +
                    ", dilation=" + tuple_string(dilation));
  } else if (!output_padding.empty() && output_padding != std::vector<int64_t>(spatial_dims, 0)) {
    throw Error(module_name + ": output_padding is for transposed convolutions only");
  }
}

std::vector<int64_t> ConvOptions::output_padding_or_zeros() const {
  return output_padding.empty() ? std::vector<int64_t>(spatial_dims, 0) : output_padding;
}

ConvOptions ConvOptions::stride1_equivalent() const {
  ConvOptions o = *this;
  o.transposed = false;
  o.output_padding.clear();
  o.stride.assign(spatial_dims, 1);
  o.padding.assign(spatial_dims, 0);
  return o;
}

void check_transposed_input(const ConvOptions& o, const Shape& input, const std::string& module_name) {
  static const char* kLayouts[] = {"", "(N, C, L)", "(N, C, H, W)", "(N, C, T, H, W)"};
  if (static_cast<int64_t>(input.size()) != o.spatial_dims + 2)  // nnq.ConvTranspose{n}d.forward
    throw Error(module_name + ": Input shape must be `" + kLayouts[o.spatial_dims] + "`! got " +
                shape_to_string(input));
  if (input[1] != o.in_channels)
    throw Error(module_name + ": Given transposed=1, weight of size " + shape_to_string(o.weight_shape()) +
                ", expected input" + shape_to_string(input) + " to have " + std::to_string(o.in_channels) +
                " channels, but got " + std::to_string(input[1]) + " channels instead");
  const std::vector<int64_t> op = o.output_padding_or_zeros();
  for (int64_t d = 0; d < o.spatial_dims; ++d) {
    const int64_t out = (input[2 + d] - 1) * o.stride[d] - 2 * o.padding[d] + o.dilation[d] * (o.kernel_size[d] - 1) +
                        op[d] + 1;
    if (out < 1)
      throw Error(module_name + ": the output would have size " + std::to_string(out) + " in spatial dim " +
                  std::to_string(d) + " for input " + shape_to_string(input) + " (Output size is too small)");
  }
}

std::string ConvOptions::float_name(bool relu) const {
  if (transposed) return "ConvTranspose" + std::to_string(spatial_dims) + "d";
  return std::string(relu ? "ConvReLU" : "Conv") + std::to_string(spatial_dims) + "d";
}

Shape ConvOptions::weight_shape() const {
  Shape shape = transposed ? Shape{in_channels, out_channels / groups} : Shape{out_channels, in_channels / groups};
  shape.insert(shape.end(), kernel_size.begin(), kernel_size.end());
  return shape;
}

ConvGeometry ConvGeometry::make(const ConvOptions& o, const Shape& input, const std::string& module_name) {
  static const char* kLayouts[] = {"", "(N, C, L)", "(N, C, H, W)", "(N, C, D, H, W)"};
  if (static_cast<int64_t>(input.size()) != o.spatial_dims + 2)  // nnq.Conv{n}d.forward
    throw Error(module_name + ": Input shape must be `" + kLayouts[o.spatial_dims] + "`! got " +
                shape_to_string(input));
  if (input[1] != o.in_channels) {
    Shape weight = o.weight_shape();
    throw Error(module_name + ": Given groups=" + std::to_string(o.groups) + ", weight of size " +
                shape_to_string(weight) + ", expected input" + shape_to_string(input) + " to have " +
                std::to_string(o.in_channels) + " channels, but got " + std::to_string(input[1]) +
                " channels instead");
  }
  ConvGeometry g;
  g.batch = input[0];
  g.in_channels = o.in_channels;
  g.out_channels = o.out_channels;
  g.groups = o.groups;
  g.kernel = o.kernel_size;
  g.stride = o.stride;
  g.padding = o.padding;
  g.dilation = o.dilation;
  g.in_size.assign(input.begin() + 2, input.end());
  std::vector<int64_t> padded, dilated;
  for (int64_t d = 0; d < o.spatial_dims; ++d) {
    padded.push_back(g.in_size[d] + 2 * g.padding[d]);
    dilated.push_back(g.dilation[d] * (g.kernel[d] - 1) + 1);
  }
  for (int64_t d = 0; d < o.spatial_dims; ++d)
    if (padded[d] < dilated[d])  // at::native's check_shape_forward
      throw Error(module_name + ": Calculated padded input size per channel: (" + joined_sizes(padded) +
                  "). Kernel size: (" + joined_sizes(dilated) + "). Kernel size can't be greater than actual input size");
  for (int64_t d = 0; d < o.spatial_dims; ++d) g.out_size.push_back((padded[d] - dilated[d]) / g.stride[d] + 1);
  return g;
}

int64_t ConvGeometry::positions() const { return product(out_size); }
int64_t ConvGeometry::patch() const { return in_channels / groups * product(kernel); }
int64_t ConvGeometry::in_plane() const { return product(in_size); }

void channel_pair_patches(const ConvGeometry& g, const int32_t* rows, int32_t* values, int32_t* present) {
  const int64_t channels = g.in_channels / g.groups, kernel_volume = g.patch() / channels;
  const int64_t width = paired_width(channels, kernel_volume);
  for (int64_t p = 0; p < g.positions(); ++p) {
    int32_t* v = values + p * width;
    int32_t* m = present + p * width;
    to_channel_pairs<int32_t>(channels, kernel_volume, rows + p * g.patch(), kAbsentInput, v);
    for (int64_t k = 0; k < width; ++k) {
      m[k] = v[k] == kAbsentInput ? 0 : 1;
      v[k] *= m[k];
    }
  }
}

Shape ConvGeometry::output_shape() const {
  Shape shape{batch, out_channels};
  shape.insert(shape.end(), out_size.begin(), out_size.end());
  return shape;
}

void check_conv_parameters(const ConvOptions& options, const Shape& weight, const std::optional<Tensor>& bias,
                           const std::string& module_name) {
  options.validate(module_name);
  if (weight != options.weight_shape())
    throw Error(module_name + ": weight must have shape " + shape_to_string(options.weight_shape()) + ", got " +
                shape_to_string(weight));
  if (bias.has_value() != options.bias)
    throw Error(module_name + (options.bias ? ": bias=True but no bias was given" : ": bias=False but a bias was given"));
  if (bias && bias->sizes != Shape{options.out_channels})
    throw Error(module_name + ": bias must have shape [" + std::to_string(options.out_channels) + "], got " +
                shape_to_string(bias->sizes));
}

Tensor float_conv(const ConvOptions& options, const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                  bool relu, const std::string& module_name) {
  if (options.transposed) {
    Shape stretched_shape;
    std::vector<float> values = stretch_input<float>(options, x.sizes, x.data.data(), 0.0f, &stretched_shape, module_name);
    const Tensor stretched(stretched_shape, std::move(values));
    const ConvOptions equivalent = options.stride1_equivalent();
    return float_conv(equivalent, stretched, Tensor(equivalent.weight_shape(), stride1_weight(options, weight.data)),
                      bias, relu, module_name);
  }
  const ConvGeometry g = ConvGeometry::make(options, x.sizes, module_name);
  Tensor y(g.output_shape());
  const int64_t positions = g.positions(), patch = g.patch(), out_per_group = g.out_channels / g.groups;
  std::vector<float> patches(positions * patch);
  RowMajor products(positions, out_per_group);
  for (int64_t image = 0; image < g.batch; ++image)
    for (int64_t group = 0; group < g.groups; ++group) {
      im2col<float>(g, x.data.data(), image, group, 0.0f, patches.data());
      Eigen::Map<const RowMajor> pm(patches.data(), positions, patch);
      Eigen::Map<const RowMajor> wm(weight.data.data() + group * out_per_group * patch, out_per_group, patch);
      products.noalias() = pm * wm.transpose();
      for (int64_t j = 0; j < out_per_group; ++j) {
        const int64_t channel = group * out_per_group + j;
        float* out = y.data.data() + (image * g.out_channels + channel) * positions;
        const float b = bias ? bias->data[channel] : 0.0f;
        for (int64_t p = 0; p < positions; ++p) {
          const float v = products(p, j) + b;
          out[p] = relu && v < 0.0f ? 0.0f : v;
        }
      }
    }
  return y;
}

std::string conv_extra_repr(const ConvOptions& o, const std::string& after_stride) {
  std::ostringstream out;
  out << o.in_channels << ", " << o.out_channels << ", kernel_size=" << tuple_string(o.kernel_size)
      << ", stride=" << tuple_string(o.stride) << after_stride;
  if (o.padding != std::vector<int64_t>(o.spatial_dims, 0)) out << ", padding=" << tuple_string(o.padding);
  if (o.dilation != std::vector<int64_t>(o.spatial_dims, 1)) out << ", dilation=" << tuple_string(o.dilation);
  if (o.transposed && o.output_padding_or_zeros() != std::vector<int64_t>(o.spatial_dims, 0))
    out << ", output_padding=" << tuple_string(o.output_padding_or_zeros());
  if (o.groups != 1) out << ", groups=" << o.groups;
  if (!o.bias) out << ", bias=False";
  return out.str();
}

FloatConv::FloatConv(ConvOptions options, Tensor weight, std::optional<Tensor> bias)
    : options_(std::move(options)), weight_(std::move(weight)), bias_(std::move(bias)) {
  check_conv_parameters(options_, weight_.sizes, bias_, name());
}

std::string FloatConv::extra_repr() const { return conv_extra_repr(options_); }

ModuleOutput FloatConv::forward(const ModuleInput& input) {
  return {float_conv(options_, expect_tensor(input, name()), weight_, bias_, fused_relu, name()), std::nullopt};
}

StateDict FloatConv::state_dict() const { return weight_bias_state_dict(weight_, bias_); }

void FloatConv::load_state_dict(const StateDict& state) {
  WeightAndBias loaded = read_weight_bias(state, weight_.sizes, bias_.has_value(), {}, name());
  check_conv_parameters(options_, loaded.weight.sizes, loaded.bias, name());
  weight_ = std::move(loaded.weight);
  bias_ = std::move(loaded.bias);
}

}  // namespace qconform
