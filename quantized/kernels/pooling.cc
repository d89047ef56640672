#include "quantized/kernels/pooling.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace qconform::kernels {
namespace {

int64_t clamp_u8(int64_t v) { return std::min<int64_t>(std::max<int64_t>(v, 0), 255); }

// An (N, C, H, W) tensor that is also channels-last contiguous (c10's rule: dimensions of
// size 1 do not constrain strides).
bool channels_last_contiguous(const Shape& input) {
  return input.size() == 4 && (input[1] == 1 || input[2] * input[3] == 1);
}

std::string spatial_text(int64_t c, int64_t h, int64_t w) {
  return "(" + std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w) + ")";
}

void check_rank(const Shape& input, const std::string& message) {
  if (input.size() != 3 && input.size() != 4) throw Error(message);
}

}  // namespace

std::string to_string(PoolingKernel kernel) {
  switch (kernel) {
    case PoolingKernel::Max: return "max";
    case PoolingKernel::QnnpackMax: return "qnnpack-max";
    case PoolingKernel::AvgNchw: return "avg-nchw";
    case PoolingKernel::AvgNhwc: return "avg-nhwc";
    case PoolingKernel::AvgQnnpack: return "qnnpack-avg";
    case PoolingKernel::AdaptiveNchw: return "adaptive-nchw";
    case PoolingKernel::AdaptiveNhwc: return "adaptive-nhwc";
    case PoolingKernel::AdaptiveQnnpack: return "qnnpack-adaptive";
  }
  return "?";
}

PoolingKernel pooling_kernel(const PoolingOptions& o, Engine engine, const Shape& input, bool channels_last) {
  const bool qnnpack = engine == Engine::QNNPACK;  // and the input is quint8 (the harness's activations)
  switch (o.op) {
    case PoolingOp::MaxPool2d: return qnnpack && !o.ceil_mode ? PoolingKernel::QnnpackMax : PoolingKernel::Max;
    case PoolingOp::AvgPool2d:
      // quantized_avg_pool2d: QNNPACK whenever the engine is qnnpack (ceil mode aside).
      if (qnnpack && !o.ceil_mode) return PoolingKernel::AvgQnnpack;
      return channels_last || channels_last_contiguous(input) ? PoolingKernel::AvgNhwc : PoolingKernel::AvgNchw;
    case PoolingOp::AdaptiveAvgPool2d: {
      if (qnnpack && input.size() >= 2) {
        const int64_t h = input[input.size() - 2], w = input.back();
        const auto [oh, ow] = adaptive_output_size(o.output_size, h, w);
        // enable_qnnpack_for_ada_avgpool: not the identity, and evenly divisible. An output
        // size of 0 is taken here too (LibTorch then divides by it; the shape check refuses).
        if (oh == 0 || ow == 0) return PoolingKernel::AdaptiveQnnpack;
        if (oh > 0 && ow > 0 && !(h == oh && w == ow) && h % oh == 0 && w % ow == 0)
          return PoolingKernel::AdaptiveQnnpack;
      }
      return channels_last || channels_last_contiguous(input) ? PoolingKernel::AdaptiveNhwc : PoolingKernel::AdaptiveNchw;
    }
  }
  return PoolingKernel::Max;
}

Shape quantized_pooled_shape(const PoolingOptions& o, PoolingKernel kernel, const Shape& input) {
  const PoolDim dh = pool_dim_h(o), dw = pool_dim_w(o);
  const auto spatial = [&](int64_t oh, int64_t ow) {
    Shape out(input.begin(), input.end() - 2);
    out.push_back(oh);
    out.push_back(ow);
    return out;
  };
  const int64_t c = input.size() >= 3 ? input[input.size() - 3] : 0;
  const int64_t h = input.size() >= 2 ? input[input.size() - 2] : 0, w = input.empty() ? 0 : input.back();
  switch (kernel) {
    case PoolingKernel::QnnpackMax: {  // qnnpack_maxpool2d, in its order
      if (dh.kernel <= 0 || dw.kernel <= 0) throw Error("qnnpack_maxpool2d(): kernel_size should be greater than zero.");
      if (dh.stride <= 0 || dw.stride <= 0) throw Error("qnnpack_maxpool2d(): strides should be greater than zero.");
      if (input.size() != 4)
        throw Error("qnnpack_maxpool2d(): Expected input to be 4-dimensional: got " + std::to_string(input.size()));
      const int64_t oh = checked_pooled_size(dh, h), ow = checked_pooled_size(dw, w);
      if (oh <= 0 || ow <= 0) throw Error("qnnpack_maxpool2d(): the resulting output Tensor size should be >= 0");
      // QNNPACK's operator refuses a zero dilation and a single-element window.
      if (dh.dilation <= 0 || dw.dilation <= 0 || dh.kernel * dw.kernel == 1)
        throw Error("failed to create QNNPACK MaxPool operator");
      return spatial(oh, ow);
    }
    case PoolingKernel::Max: {  // q_maxpool_2d, in its order
      if (dh.kernel <= 0 || dw.kernel <= 0) throw Error("kernel_size should be greater than zero.");
      if (dh.stride <= 0 || dw.stride <= 0) throw Error("strides should be greater than zero.");
      if (dh.dilation <= 0 || dw.dilation <= 0)
        throw Error("dilation should be greater than zero. Got (" + std::to_string(dh.dilation) + ", " +
                    std::to_string(dw.dilation) + ")");
      check_rank(input, "Expecting the input tensor of rank 3 or 4.");
      if (dh.pad > dh.kernel / 2 || dw.pad > dw.kernel / 2)
        throw Error("padding should be smaller than half of kernel_size.");
      const int64_t oh = checked_pooled_size(dh, h), ow = checked_pooled_size(dw, w);
      if (oh <= 0 || ow <= 0)
        throw Error("Given input size: " + spatial_text(c, h, w) + ". Calculated output size: " +
                    spatial_text(c, oh, ow) + ". Output size is too small.");
      return spatial(oh, ow);
    }
    case PoolingKernel::AvgQnnpack: {  // qnnpack_avg_pool2d, in its order
      if (input.size() != 4)
        throw Error("qnnpack_avg_pool2d(): Expected input to be 4-dimensional: got " + std::to_string(input.size()));
      const int64_t oh = checked_pooled_size(dh, h), ow = checked_pooled_size(dw, w);
      if (oh <= 0 || ow <= 0) throw Error("qnnpack_avg_pool2d(): the resulting output Tensor size should be >= 0");
      // QNNPACK's operator: "1x1 pooling is meaningless".
      if (dh.kernel * dw.kernel == 1) throw Error("failed to create QNNPACK Average Pooling operator");
      return spatial(oh, ow);
    }
    case PoolingKernel::AvgNchw:
    case PoolingKernel::AvgNhwc: {  // q_avg_pool2d: no check on the output's size (it may be empty)
      if (o.divisor_override && *o.divisor_override == 0) throw Error("divisor must be not zero");
      check_rank(input, "avg_pool2d: expected a 3D or 4D input");
      const int64_t oh = checked_pooled_size(dh, h), ow = checked_pooled_size(dw, w);
      // LibTorch goes on with a zero or negative kernel and divides by zero; refused here.
      if (dh.kernel <= 0 || dw.kernel <= 0) throw Error("avg_pool2d: kernel_size should be greater than zero");
      return spatial(std::max<int64_t>(oh, 0), std::max<int64_t>(ow, 0));
    }
    case PoolingKernel::AdaptiveNchw:
    case PoolingKernel::AdaptiveNhwc:
    case PoolingKernel::AdaptiveQnnpack: {
      const auto [oh, ow] = adaptive_output_size(o.output_size, h, w);
      if (oh < 0 || ow < 0)
        throw Error("adaptive_avg_pool2d: elements of output_size must be greater than or equal to 0 but received {" +
                    std::to_string(oh) + ", " + std::to_string(ow) + "}");
      for (size_t d = 1; d < input.size(); ++d)
        if (input[d] <= 0)
          throw Error("adaptive_avg_pooling2d(): expected input to have non-empty spatial dimensions, but input has "
                      "sizes " + shape_to_string(input) + " with dimension " + std::to_string(d) + " being empty");
      check_rank(input, "non-empty 3D or 4D (batch mode) tensor expected for input");
      if (kernel == PoolingKernel::AdaptiveQnnpack) {
        if (oh == 0 || ow == 0)
          throw Error("adaptive_avg_pool2d: an output_size of 0 on qnnpack: LibTorch 1.13 takes the input size modulo "
                      "it (a division by zero, SIGFPE); refused");
        if (input.size() != 4)
          throw Error("qnnpack_avg_pool2d(): Expected input to be 4-dimensional: got " + std::to_string(input.size()));
      }
      return spatial(oh, ow);
    }
  }
  return input;
}

namespace {

// Each output index's max_window along one dimension, worked out once per call.
std::vector<Window1d> max_windows(const PoolDim& dim, int64_t input, int64_t outputs) {
  std::vector<Window1d> windows(static_cast<size_t>(outputs));
  for (int64_t o = 0; o < outputs; ++o) windows[o] = max_window(dim, input, o);
  return windows;
}

// q_maxpool_2d's window maximum, taken in passes: a maximum is the maximum of its columns'
// maxima, so each output row first takes, at every input column, the maximum over its
// window's rows; then, for every column s where a whole window of columns fits, the maximum
// of the kernel's columns from s (both on Eigen's vectors: GCC leaves such loops scalar at
// -O2); an output whose window is whole reads its start's, one clipped by the input's edges
// takes its own columns. The windows (max_window) are worked out once per output row and
// column; 0, quint8's lowest, starts every maximum, as it does on both of ATen's paths (an
// empty window gives 0).
void max_pool_separable(const int32_t* x, int64_t planes, int64_t h, int64_t w, const PoolDim& dh, const PoolDim& dw,
                        int64_t oh, int64_t ow, int32_t* y) {
  using Row = Eigen::Array<int32_t, Eigen::Dynamic, 1>;
  using ConstRow = Eigen::Map<const Row>;
  const std::vector<Window1d> rows_of = max_windows(dh, h, oh), columns_of = max_windows(dw, w, ow);
  const int64_t span = (dw.kernel - 1) * dw.dilation;      // a whole window covers [s, s + span]
  const int64_t starts = std::max<int64_t>(0, w - span);  // the columns s where one fits
  const auto whole = [&](const Window1d& ww) { return ww.begin >= 0 && ww.begin + span < w && ww.end > ww.begin + span; };
  Row column_maxima(w), window_maxima(starts);
  for (int64_t p = 0; p < planes; ++p) {
    const int32_t* in = x + p * h * w;
    int32_t* out = y + p * oh * ow;
    for (int64_t i = 0; i < oh; ++i) {
      const Window1d& wh = rows_of[i];
      column_maxima.setZero();
      for (int64_t a = wh.begin; a < wh.end; a += wh.step) column_maxima = column_maxima.max(ConstRow(in + a * w, w));
      window_maxima.setZero();
      for (int64_t t = 0; t < dw.kernel; ++t)
        window_maxima = window_maxima.max(ConstRow(column_maxima.data() + t * dw.dilation, starts));
      for (int64_t j = 0; j < ow; ++j) {
        const Window1d& ww = columns_of[j];
        if (whole(ww)) {
          out[i * ow + j] = window_maxima[ww.begin];
          continue;
        }
        int32_t best = 0;
        for (int64_t e = ww.begin; e < ww.end; e += ww.step) best = std::max(best, column_maxima[e]);
        out[i * ow + j] = best;
      }
    }
  }
}

}  // namespace

void quantized_pool(const PoolingOptions& o, PoolingKernel kernel, const int32_t* x, const Shape& input,
                    double scale, int32_t zp, int32_t* y, const Shape& output) {
  const int64_t n = input.size() == 4 ? input[0] : 1;
  const int64_t c = input[input.size() - 3], h = input[input.size() - 2], w = input.back();
  const int64_t oh = output[output.size() - 2], ow = output.back();
  PoolDim dh = pool_dim_h(o), dw = pool_dim_w(o);
  if (kernel == PoolingKernel::AdaptiveQnnpack) {  // AvgQnnpack with kernel = stride = in / out
    dh = {h / oh, h / oh, 0, 1, false};
    dw = {w / ow, w / ow, 0, 1, false};
  }
  const float zero_point = static_cast<float>(zp);
  if (kernel == PoolingKernel::Max) {
    max_pool_separable(x, n * c, h, w, dh, dw, oh, ow, y);
    return;
  }
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      const int32_t* in = x + (b * c + ch) * h * w;
      int32_t* out = y + (b * c + ch) * oh * ow;
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          int32_t& result = out[i * ow + j];
          switch (kernel) {
            case PoolingKernel::QnnpackMax: {
              // Every tap, its row and column clamped to the input: QNNPACK points a padding
              // tap at the nearest input element.
              int32_t best = 0;
              for (int64_t a = 0; a < dh.kernel; ++a)
                for (int64_t e = 0; e < dw.kernel; ++e) {
                  const int64_t r = std::clamp<int64_t>(i * dh.stride - dh.pad + a * dh.dilation, 0, h - 1);
                  const int64_t col = std::clamp<int64_t>(j * dw.stride - dw.pad + e * dw.dilation, 0, w - 1);
                  best = std::max(best, in[r * w + col]);
                }
              result = best;
              break;
            }
            case PoolingKernel::Max: break;  // max_pool_separable, above
            case PoolingKernel::AvgNchw:
            case PoolingKernel::AvgNhwc: {
              const Window1d wh = avg_window(dh, h, i), ww = avg_window(dw, w, j);
              // 1. acc = sum_W q - |W| z
              int32_t acc = 0;
              for (int64_t a = wh.begin; a < wh.end; ++a)
                for (int64_t e = ww.begin; e < ww.end; ++e) acc += in[a * w + e];
              acc -= static_cast<int32_t>((wh.end - wh.begin) * (ww.end - ww.begin)) * zp;
              // 2. m = float(1 / d): the scales are equal, so s / s / d rounds as 1 / d does.
              const float m = static_cast<float>(1.0 / static_cast<double>(avg_divisor(o, wh, ww)));
              const float a = static_cast<float>(acc);
              if (kernel == PoolingKernel::AvgNchw) {
                // 3. nearbyint(float(acc) * m + z), a float product and a float sum
                result = static_cast<int32_t>(clamp_u8(static_cast<int64_t>(std::nearbyint(a * m + zero_point))));
              } else {
                // 3. rint(float(acc) * m), then + z
                result = static_cast<int32_t>(clamp_u8(static_cast<int64_t>(std::nearbyint(a * m)) + zp));
              }
              break;
            }
            case PoolingKernel::AvgQnnpack:
            case PoolingKernel::AdaptiveQnnpack: {
              // 1. acc = sum over the kernel's taps of (q - z); padding taps hold z: 0
              const int64_t start_h = i * dh.stride - dh.pad, start_w = j * dw.stride - dw.pad;
              int32_t acc = 0;
              for (int64_t a = std::max<int64_t>(start_h, 0); a < std::min(start_h + dh.kernel, h); ++a)
                for (int64_t e = std::max<int64_t>(start_w, 0); e < std::min(start_w + dw.kernel, w); ++e)
                  acc += in[a * w + e] - zp;
              // 2. scale = s / (s kH kW), in float (QNNPACK's input / (output * pooling size))
              const float s = static_cast<float>(scale);
              const float qnnpack_scale = s / (s * static_cast<float>(dh.kernel * dw.kernel));
              // 3. round to nearest even, add z, clamp
              result = static_cast<int32_t>(
                  clamp_u8(static_cast<int64_t>(std::nearbyint(static_cast<float>(acc) * qnnpack_scale)) + zp));
              break;
            }
            case PoolingKernel::AdaptiveNchw: {
              const Window1d wh = adaptive_window(h, oh, i), ww = adaptive_window(w, ow, j);
              int64_t sum = 0;
              for (int64_t a = wh.begin; a < wh.end; ++a)
                for (int64_t e = ww.begin; e < ww.end; ++e) sum += in[a * w + e];
              // r = (1 / kH) / kW in float; the raw integers' mean is already on the output grid
              const float r = (1.0f / static_cast<float>(wh.end - wh.begin)) / static_cast<float>(ww.end - ww.begin);
              result = static_cast<int32_t>(std::nearbyint(static_cast<float>(sum) * r));
              break;
            }
            case PoolingKernel::AdaptiveNhwc: {
              const Window1d wh = adaptive_window(h, oh, i), ww = adaptive_window(w, ow, j);
              const int64_t size = (wh.end - wh.begin) * (ww.end - ww.begin);
              int32_t acc = -static_cast<int32_t>(size) * zp;
              for (int64_t a = wh.begin; a < wh.end; ++a)
                for (int64_t e = ww.begin; e < ww.end; ++e) acc += in[a * w + e];
              const float m = 1.0f / static_cast<float>(size);
              result = static_cast<int32_t>(clamp_u8(zp + static_cast<int64_t>(std::nearbyint(static_cast<float>(acc) * m))));
              break;
            }
          }
        }
    }
}

void max_pool_channels_last(const PoolingOptions& o, const uint8_t* x, const Shape& input, uint8_t* y,
                            const Shape& output) {
  // max_pool_separable's passes with a position's C channels in place of one value: per
  // output row, each input column's maximum over the window's rows, then per output column
  // the maximum of its window's columns; 0 starts every maximum.
  const int64_t n = input[0], c = input[1], h = input[2], w = input[3], oh = output[2], ow = output[3];
  const PoolDim dh = pool_dim_h(o), dw = pool_dim_w(o);
  const std::vector<Window1d> rows_of = max_windows(dh, h, oh), columns_of = max_windows(dw, w, ow);
  std::vector<uint8_t> column_maxima(static_cast<size_t>(w * c));
  for (int64_t image = 0; image < n; ++image) {
    const uint8_t* in = x + image * h * w * c;
    for (int64_t i = 0; i < oh; ++i) {
      const Window1d& wh = rows_of[i];
      std::fill(column_maxima.begin(), column_maxima.end(), uint8_t{0});
      for (int64_t a = wh.begin; a < wh.end; a += wh.step) {
        const uint8_t* row = in + a * w * c;
        for (int64_t e = 0; e < w * c; ++e) column_maxima[e] = std::max(column_maxima[e], row[e]);
      }
      for (int64_t j = 0; j < ow; ++j) {
        const Window1d& ww = columns_of[j];
        uint8_t* out = y + ((image * oh + i) * ow + j) * c;
        std::fill(out, out + c, uint8_t{0});
        for (int64_t e = ww.begin; e < ww.end; e += ww.step) {
          const uint8_t* column = column_maxima.data() + e * c;
          for (int64_t k = 0; k < c; ++k) out[k] = std::max(out[k], column[k]);
        }
      }
    }
  }
}

}  // namespace qconform::kernels
