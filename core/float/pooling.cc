#include "core/float/pooling.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/python_text.h"

namespace qconform {

std::string SizeArg::repr() const { return pair ? python_tuple({h, w}) : std::to_string(h); }

std::string OutputSizeArg::repr() const {
  const auto one = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : std::string("None"); };
  return pair ? "(" + one(h) + ", " + one(w) + ")" : one(h);
}

std::string PoolingOptions::float_name() const {
  switch (op) {
    case PoolingOp::MaxPool2d: return "MaxPool2d";
    case PoolingOp::AvgPool2d: return "AvgPool2d";
    case PoolingOp::AdaptiveAvgPool2d: return "AdaptiveAvgPool2d";
  }
  return "?";
}

std::string PoolingOptions::extra_repr() const {
  const std::string windowed = "kernel_size=" + kernel_size.repr() + ", stride=" + effective_stride().repr() +
                               ", padding=" + padding.repr();
  switch (op) {
    case PoolingOp::MaxPool2d:
      return windowed + ", dilation=" + dilation.repr() + ", ceil_mode=" + python_bool(ceil_mode);
    case PoolingOp::AvgPool2d: return windowed;  // nn.AvgPool2d prints no more
    case PoolingOp::AdaptiveAvgPool2d: return "output_size=" + output_size.repr();
  }
  return "";
}

PoolDim pool_dim_h(const PoolingOptions& o) {
  return {o.kernel_size.h, o.effective_stride().h, o.padding.h, o.dilation.h, o.ceil_mode};
}
PoolDim pool_dim_w(const PoolingOptions& o) {
  return {o.kernel_size.w, o.effective_stride().w, o.padding.w, o.dilation.w, o.ceil_mode};
}

namespace {

// Division rounding towards negative infinity (ATen's div_rtn).
int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b, r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? q - 1 : q;
}

std::string spatial_text(int64_t c, int64_t h, int64_t w) {
  return "(" + std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w) + ")";
}

void check_input_rank(const Shape& input, const std::string& op) {
  if (input.size() != 3 && input.size() != 4)
    throw Error(op + ": expected a 3D (C, H, W) or 4D (N, C, H, W) input, got " + shape_to_string(input));
  for (size_t d = input.size() - 3; d < input.size(); ++d)
    if (input[d] <= 0)
      throw Error(op + ": expected non-empty channel and spatial dimensions, got " + shape_to_string(input));
}

}  // namespace

int64_t pooled_size(const PoolDim& d, int64_t input) {
  int64_t out = floor_div(input + 2 * d.pad - d.dilation * (d.kernel - 1) - 1 + (d.ceil_mode ? d.stride - 1 : 0),
                          d.stride) + 1;
  if (d.ceil_mode && (out - 1) * d.stride >= input + d.pad) --out;
  return out;
}

int64_t checked_pooled_size(const PoolDim& d, int64_t input) {
  if (d.stride == 0) throw Error("stride should not be zero");
  if (d.pad < 0) throw Error("pad must be non-negative, but got pad: " + std::to_string(d.pad));
  if (d.pad > d.kernel / 2)
    throw Error("pad should be at most half of kernel size, but got pad=" + std::to_string(d.pad) +
                " and kernel_size=" + std::to_string(d.kernel));
  return pooled_size(d, input);
}

Window1d max_window(const PoolDim& d, int64_t input, int64_t o) {
  if (d.dilation <= 0) throw Error("max_window: dilation must be positive (checked before the windows)");
  int64_t begin = o * d.stride - d.pad;
  const int64_t end = std::min(begin + (d.kernel - 1) * d.dilation + 1, input);
  while (begin < 0) begin += d.dilation;  // the first tap inside the input
  return {begin, std::max(begin, end), d.dilation, 0};
}

Window1d avg_window(const PoolDim& d, int64_t input, int64_t o) {
  const int64_t start = o * d.stride - d.pad;
  const int64_t padded_end = std::min(start + d.kernel, input + d.pad);
  return {std::max<int64_t>(start, 0), std::min(padded_end, input), 1, padded_end - start};
}

Window1d adaptive_window(int64_t input, int64_t output, int64_t o) {
  const int64_t begin = o * input / output;
  const int64_t end = ((o + 1) * input + output - 1) / output;
  return {begin, end, 1, end - begin};
}

int64_t avg_divisor(const PoolingOptions& o, const Window1d& h, const Window1d& w) {
  if (o.divisor_override) return *o.divisor_override;
  return o.count_include_pad ? h.extent * w.extent : (h.end - h.begin) * (w.end - w.begin);
}

std::pair<int64_t, int64_t> adaptive_output_size(const OutputSizeArg& size, int64_t in_h, int64_t in_w) {
  return {size.h.value_or(in_h), size.w.value_or(in_w)};
}

Shape float_pooled_shape(const PoolingOptions& o, const Shape& input) {
  const std::string op = o.op == PoolingOp::MaxPool2d   ? "max_pool2d"
                         : o.op == PoolingOp::AvgPool2d ? "avg_pool2d"
                                                        : "adaptive_avg_pool2d";
  check_input_rank(input, op);
  const int64_t c = input[input.size() - 3], h = input[input.size() - 2], w = input[input.size() - 1];
  Shape out(input.begin(), input.end() - 2);
  if (o.op == PoolingOp::AdaptiveAvgPool2d) {
    const auto [oh, ow] = adaptive_output_size(o.output_size, h, w);
    if (oh < 0 || ow < 0)
      throw Error("adaptive_avg_pool2d: elements of output_size must be greater than or equal to 0 but received {" +
                  std::to_string(oh) + ", " + std::to_string(ow) + "}");
    out.push_back(oh);
    out.push_back(ow);
    return out;
  }
  const PoolDim dh = pool_dim_h(o), dw = pool_dim_w(o);
  if (o.op == PoolingOp::AvgPool2d && o.divisor_override && *o.divisor_override == 0)
    throw Error("divisor must be not zero");
  const int64_t oh = checked_pooled_size(dh, h), ow = checked_pooled_size(dw, w);
  if (dh.kernel <= 0 || dw.kernel <= 0)
    throw Error("kernel size should be greater than zero, but got kH: " + std::to_string(dh.kernel) +
                " kW: " + std::to_string(dw.kernel));
  if (dh.stride <= 0 || dw.stride <= 0)
    throw Error("stride should be greater than zero, but got dH: " + std::to_string(dh.stride) +
                " dW: " + std::to_string(dw.stride));
  if (dh.dilation <= 0 || dw.dilation <= 0)
    throw Error("dilation should be greater than zero, but got dilationH: " + std::to_string(dh.dilation) +
                " dilationW: " + std::to_string(dw.dilation));
  if (oh < 1 || ow < 1)
    throw Error("Given input size: " + spatial_text(c, h, w) + ". Calculated output size: " + spatial_text(c, oh, ow) +
                ". Output size is too small");
  out.push_back(oh);
  out.push_back(ow);
  return out;
}

Tensor float_pool(const PoolingOptions& o, const Tensor& x) {
  const Shape out_shape = float_pooled_shape(o, x.sizes);
  const int64_t planes = numel_of(Shape(x.sizes.begin(), x.sizes.end() - 2));
  const int64_t h = x.sizes[x.sizes.size() - 2], w = x.sizes.back();
  const int64_t oh = out_shape[out_shape.size() - 2], ow = out_shape.back();
  Tensor y(out_shape);
  const PoolDim dh = pool_dim_h(o), dw = pool_dim_w(o);
  for (int64_t p = 0; p < planes; ++p) {
    const float* in = x.data.data() + p * h * w;
    float* out = y.data.data() + p * oh * ow;
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        float& result = out[i * ow + j];
        switch (o.op) {
          case PoolingOp::MaxPool2d: {
            const Window1d wh = max_window(dh, h, i), ww = max_window(dw, w, j);
            float best = -std::numeric_limits<float>::infinity();
            for (int64_t a = wh.begin; a < wh.end; a += wh.step)
              for (int64_t b = ww.begin; b < ww.end; b += ww.step) {
                const float v = in[a * w + b];
                if (v > best || std::isnan(v)) best = v;  // ATen: NaN wins
                if (std::isnan(best)) break;
              }
            result = best;
            break;
          }
          case PoolingOp::AvgPool2d: {
            const Window1d wh = avg_window(dh, h, i), ww = avg_window(dw, w, j);
            float sum = 0.0f;
            for (int64_t a = wh.begin; a < wh.end; ++a)
              for (int64_t b = ww.begin; b < ww.end; ++b) sum += in[a * w + b];
            result = sum / static_cast<float>(avg_divisor(o, wh, ww));
            break;
          }
          case PoolingOp::AdaptiveAvgPool2d: {
            const Window1d wh = adaptive_window(h, oh, i), ww = adaptive_window(w, ow, j);
            float sum = 0.0f;
            for (int64_t a = wh.begin; a < wh.end; ++a)
              for (int64_t b = ww.begin; b < ww.end; ++b) sum += in[a * w + b];
            result = sum / static_cast<float>(wh.end - wh.begin) / static_cast<float>(ww.end - ww.begin);
            break;
          }
        }
      }
  }
  return y;
}

void FloatPooling::load_state_dict(const StateDict& state) { state.check_keys({}, name()); }

ModuleOutput FloatPooling::forward(const ModuleInput& input) {
  return {float_pool(options_, expect_tensor(input, name())), std::nullopt};
}

}  // namespace qconform
