#pragma once
// torch.nn's MaxPool2d, AvgPool2d and AdaptiveAvgPool2d as float modules: what a static case
// calibrates, what the reference runs between dequantize and quantize, and what the eager
// flow leaves in place (PyTorch 1.13 converts none of them: the float module runs on the
// quantized tensor). The windows are PyTorch's (pooling_output_shape, the average's divisor,
// the adaptive bins), defined once here for the float and the integer implementations.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/module.h"

namespace qconform {

enum class PoolingOp { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d };

// A torch.nn size argument as the user gave it: one int for both spatial dimensions or a
// pair (the repr prints what was given: "kernel_size=3" or "kernel_size=(3, 2)").
struct SizeArg {
  int64_t h = 1;
  int64_t w = 1;
  bool pair = false;
  static SizeArg both(int64_t v) { return {v, v, false}; }
  static SizeArg of(int64_t h, int64_t w) { return {h, w, true}; }
  std::string repr() const;  // "3", "(3, 2)"
  bool operator==(const SizeArg& o) const { return h == o.h && w == o.w && pair == o.pair; }
};

// AdaptiveAvgPool2d's output_size: a dimension left None keeps the input's size.
struct OutputSizeArg {
  std::optional<int64_t> h = 1;
  std::optional<int64_t> w = 1;
  bool pair = false;
  std::string repr() const;  // "7", "(1, 1)", "(None, 3)"
};

struct PoolingOptions {
  PoolingOp op = PoolingOp::MaxPool2d;
  SizeArg kernel_size = SizeArg::both(2);
  std::optional<SizeArg> stride;             // None: the kernel size (torch.nn's default)
  SizeArg padding = SizeArg::both(0);
  SizeArg dilation = SizeArg::both(1);       // MaxPool2d
  bool ceil_mode = false;                    // MaxPool2d, AvgPool2d
  bool count_include_pad = true;             // AvgPool2d
  std::optional<int64_t> divisor_override;   // AvgPool2d
  OutputSizeArg output_size;                 // AdaptiveAvgPool2d

  std::string float_name() const;  // "MaxPool2d", ...
  // torch.nn's extra_repr: "kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False",
  // "kernel_size=3, stride=2, padding=1", "output_size=(1, 1)".
  std::string extra_repr() const;
  SizeArg effective_stride() const { return stride ? *stride : kernel_size; }
};

// One spatial dimension of a windowed pooling (MaxPool2d, AvgPool2d).
struct PoolDim {
  int64_t kernel;
  int64_t stride;
  int64_t pad;
  int64_t dilation;
  bool ceil_mode;
};
PoolDim pool_dim_h(const PoolingOptions& options);
PoolDim pool_dim_w(const PoolingOptions& options);

// ATen's pooling_output_shape: floor((in + 2 pad - dilation (kernel - 1) - 1 + (ceil ?
// stride - 1 : 0)) / stride) + 1, less one where ceil mode would start a window beyond the
// input and its left padding. May be < 1 (callers refuse or return an empty tensor, as the
// path they model does).
int64_t pooled_size(const PoolDim& dim, int64_t input);
// pooled_size after ATen's pooling_output_shape checks, with its messages: a non-zero stride,
// a padding from 0 to half the kernel. Every path (float, ATen's, QNNPACK's) runs them.
int64_t checked_pooled_size(const PoolDim& dim, int64_t input);

// One output position's window along one dimension, clipped to the input: elements
// begin, begin + step, ... < end. `extent` is the average's unclipped length
// (min(start + kernel, input + pad) - start: count_include_pad's divisor counts it).
struct Window1d {
  int64_t begin;
  int64_t end;
  int64_t step;
  int64_t extent;
};
Window1d max_window(const PoolDim& dim, int64_t input, int64_t out_index);
Window1d avg_window(const PoolDim& dim, int64_t input, int64_t out_index);
// AdaptiveAvgPool2d's bin: [floor(o in / out), ceil((o + 1) in / out)).
Window1d adaptive_window(int64_t input, int64_t output, int64_t out_index);
// AvgPool2d's divisor for a window: divisor_override, or the padded window's area
// (count_include_pad), or the in-bounds area.
int64_t avg_divisor(const PoolingOptions& options, const Window1d& h, const Window1d& w);

// The (N, C, H, W) (or (C, H, W)) output shape of the op on `input`, with the float
// module's checks and PyTorch's messages (Error otherwise). The quantized paths check
// differently: quantized/kernels/pooling.h.
Shape float_pooled_shape(const PoolingOptions& options, const Shape& input);
// AdaptiveAvgPool2d's output (h, w) for an input of (h, w): None keeps the input's.
std::pair<int64_t, int64_t> adaptive_output_size(const OutputSizeArg& size, int64_t in_h, int64_t in_w);

// The op in float, as ATen's CPU kernels define it (max propagates NaN; averages sum in
// float and divide once; the adaptive bins divide by their height, then their width).
Tensor float_pool(const PoolingOptions& options, const Tensor& x);

class FloatPooling : public Module {
 public:
  explicit FloatPooling(PoolingOptions options) : options_(std::move(options)) {}
  std::string name() const override { return options_.float_name(); }
  std::string extra_repr() const override { return options_.extra_repr(); }
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override { return {}; }  // no parameters or buffers
  void load_state_dict(const StateDict& state) override;
  const PoolingOptions& options() const { return options_; }

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  PoolingOptions options_;
};

}  // namespace qconform
