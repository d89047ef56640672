// static.MaxPool2d, static.AvgPool2d, static.AdaptiveAvgPool2d: random cases and bounds
// (torch.nn's pooling modules, which PyTorch 1.13's eager convert leaves in place to run on
// quantized tensors).
#include "oracles/kinds/families.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/float/pooling.h"
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/kernels/pooling.h"
#include "quantized/libtorch/static_pooling.h"
#include "quantized/static/pooling.h"
#include "reference/pooling.h"
#include "reference/static.h"

namespace qconform::kinds {
namespace {

// The module of a case. Windowed pooling: a kernel of 1 to 4 per dimension, padding up to
// half of it, the stride None or 1 to 3, and an input from one element up to a few windows
// beyond the (dilated) kernel, so that windows clip at every edge and both layouts' kernels
// run (a 1 x 1 input is also channels-last contiguous). Adaptive pooling: output sizes 1 to
// 4 or None, inputs that divide evenly into them (QNNPACK's path) or not.
PoolingOptions case_options(PoolingOp op, const CaseConfig& config) {
  PoolingOptions o;
  o.op = op;
  const bool pair = config.get("pair_arguments") != 0;
  if (op == PoolingOp::AdaptiveAvgPool2d) {
    const int64_t h = config.get("output_h"), w = config.get("output_w");
    if (pair || h == 0)
      o.output_size = {h == 0 ? std::nullopt : std::optional<int64_t>(h), w, true};
    else
      o.output_size = {w, w, false};
    return o;
  }
  int64_t kh = config.get("kernel_h"), kw = config.get("kernel_w");
  if (!pair) kw = kh;
  // QNNPACK refuses a single-element window (tested on its own, tests/test_pooling.cc).
  if (kh * kw == 1) kw = 2;
  o.kernel_size = kh == kw && !pair ? SizeArg::both(kh) : SizeArg::of(kh, kw);
  if (const int64_t s = config.get("stride"); s > 0) o.stride = o.kernel_size.pair ? SizeArg::of(s, s) : SizeArg::both(s);
  const int64_t ph = std::min(config.get("pad_h"), kh / 2), pw = std::min(config.get("pad_w"), kw / 2);
  o.padding = ph == pw && !pair ? SizeArg::both(ph) : SizeArg::of(ph, pw);
  o.ceil_mode = config.get("ceil_mode") != 0;
  if (op == PoolingOp::MaxPool2d) {
    const int64_t d = config.get("dilation");
    o.dilation = pair ? SizeArg::of(d, 1) : SizeArg::both(d);
  } else {
    o.count_include_pad = config.get("count_include_pad") != 0;
    if (const int64_t d = config.get("divisor"); d > 0) o.divisor_override = d;
  }
  return o;
}

Shape case_input_shape(const PoolingOptions& o, const CaseConfig& config) {
  const int64_t n = config.get("batch"), c = config.get("channels");
  if (o.op == PoolingOp::AdaptiveAvgPool2d) {
    const bool divisible = config.get("divisible") != 0;
    const auto size = [&](const std::optional<int64_t>& out, int64_t extra) {
      return out && divisible ? *out * (1 + extra % 3) : 1 + extra;  // None: any size
    };
    return {n, c, size(o.output_size.h, config.get("extra_h")), size(o.output_size.w, config.get("extra_w"))};
  }
  // At least the dilated kernel less its padding, and no window without an input element
  // (dilation can leave one on padding alone: PyTorch's float max is -inf there, which no
  // observer downstream can take).
  const auto size = [&](const PoolDim& d, int64_t extra) {
    int64_t in = std::max<int64_t>(1, d.dilation * (d.kernel - 1) + 1 - 2 * d.pad + extra);
    const auto empty_window = [&] {
      const int64_t out = pooled_size(d, in);
      for (int64_t i = 0; i < out; ++i) {
        const Window1d win = o.op == PoolingOp::MaxPool2d ? max_window(d, in, i) : avg_window(d, in, i);
        if (win.begin >= win.end) return true;
      }
      return false;
    };
    while (empty_window()) ++in;
    return in;
  };
  return {n, c, size(pool_dim_h(o), config.get("extra_h")), size(pool_dim_w(o), config.get("extra_w"))};
}

Case make_pooling_case(const CaseConfig& config, PoolingOp op) {
  std::mt19937_64 rng(config.data_seed);
  const PoolingOptions options = case_options(op, config);
  const Tensor x = random_input(case_input_shape(options, config), config.style, rng);
  Case c = calibrated_static_case(std::make_unique<FloatPooling>(options), config, x);
  // Held channels-last, as a model's convolutions leave it: ATen's NHWC kernels.
  auto& q = std::get<QTensor>(c.input.input);
  if (config.get("channels_last") && q.sizes.size() == 4) q.channels_last = true;
  return c;
}

const PoolingOptions& reference_options(const Module& reference) {
  const auto& wrapper = dynamic_cast<const StaticReference&>(reference);
  return dynamic_cast<const FloatPooling&>(wrapper.module()).options();
}

// Per output element, in quanta of the input's scale: K the window's in-bounds elements
// and M = sum |x| / divisor (max pooling: M = |max|, K = 0: one value is picked, exactly).
std::vector<OutputSensitivity> pooling_sensitivity(const Module& reference, const ModuleInput& input) {
  const PoolingOptions& o = reference_options(reference);
  const auto& xq = std::get<QTensor>(input.input);
  const Tensor x = dequantize(xq);
  const Shape out = float_pooled_shape(o, x.sizes);
  const int64_t h = x.sizes[x.sizes.size() - 2], w = x.sizes.back();
  const int64_t oh = out[out.size() - 2], ow = out.back();
  const int64_t planes = numel_of(out) / std::max<int64_t>(oh * ow, 1);
  const PoolDim dh = pool_dim_h(o), dw = pool_dim_w(o);
  std::vector<OutputSensitivity> result(numel_of(out));
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        OutputSensitivity& s = result[(p * oh + i) * ow + j];
        s.output_scale = xq.qparams.scale();
        const float* plane = x.data.data() + p * h * w;
        Window1d wh{}, ww{};
        double divisor = 1;
        switch (o.op) {
          case PoolingOp::MaxPool2d: wh = max_window(dh, h, i), ww = max_window(dw, w, j); break;
          case PoolingOp::AvgPool2d:
            wh = avg_window(dh, h, i), ww = avg_window(dw, w, j);
            divisor = static_cast<double>(avg_divisor(o, wh, ww));
            break;
          case PoolingOp::AdaptiveAvgPool2d:
            wh = adaptive_window(h, oh, i), ww = adaptive_window(w, ow, j);
            divisor = static_cast<double>((wh.end - wh.begin) * (ww.end - ww.begin));
            break;
        }
        double sum = 0, largest = 0;
        int64_t count = 0;
        for (int64_t a = wh.begin; a < wh.end; a += wh.step)
          for (int64_t b = ww.begin; b < ww.end; b += ww.step) {
            sum += std::abs(plane[a * w + b]);
            largest = std::max(largest, std::abs(static_cast<double>(plane[a * w + b])));
            ++count;
          }
        const bool max = o.op == PoolingOp::MaxPool2d;
        s.terms = max ? 0 : count;
        s.magnitude = max ? largest : sum / std::abs(divisor);
      }
  return result;
}

// LibTorch 1.13's pooling answers that are wrong by PyTorch's own definition (measured:
// tests/test_pooling.cc shows each against the float module). The integer implementation
// computes PyTorch's answer there; LibTorch's is classed engine-defect, not compared.
std::optional<std::string> pooling_libtorch_defect(const Module& reference, const ModuleInput& input, Engine engine) {
  const PoolingOptions& o = reference_options(reference);
  const QTensor& x = std::get<QTensor>(input.input);
  const Shape& in = x.sizes;
  const kernels::PoolingKernel kernel = kernels::pooling_kernel(o, engine, in, x.channels_last);
  const Shape out = float_pooled_shape(o, in);
  const int64_t oh = out[out.size() - 2], ow = out.back();
  // ATen's max pooling has an NHWC kernel too (the same integer max, so not modelled apart).
  const bool nhwc = kernel == kernels::PoolingKernel::AvgNhwc || kernel == kernels::PoolingKernel::AdaptiveNhwc ||
                    (kernel == kernels::PoolingKernel::Max && in.size() == 4 && in[2] * in[3] == 1);
  if (nhwc && in[1] > 1 && oh * ow > 1)
    return "ATen's NHWC pooling kernel runs on an (N, C, 1, 1) input because it is channels-last contiguous too, "
           "but the output it allocates is NCHW and it writes channels-last order into it: channels and positions "
           "are scrambled wherever the output has more than one position";
  return std::nullopt;
}

// Configurations PyTorch refuses, derived from a case (each path with its own words).
std::vector<RefusalCase> pooling_refusals(const CaseConfig& config, PoolingOp op) {
  const auto variant = [&](const std::string& name, const std::function<void(PoolingOptions&)>& change) {
    Case c = make_pooling_case(config, op);
    PoolingOptions o = dynamic_cast<const FloatPooling&>(*c.float_module).options();
    change(o);
    auto module = std::make_unique<FloatPooling>(o);
    module->qconfig = c.float_module->qconfig;
    return RefusalCase{name, Case{std::move(module), c.input}};
  };
  std::vector<RefusalCase> cases;
  if (op == PoolingOp::AdaptiveAvgPool2d) {
    cases.push_back(variant("a negative output size", [](PoolingOptions& o) { o.output_size = {2, -1, true}; }));
    return cases;
  }
  cases.push_back(variant("padding beyond half the kernel", [](PoolingOptions& o) {
    o.padding = SizeArg::of(o.kernel_size.h / 2 + 1, o.padding.w);
  }));
  cases.push_back(variant("a negative padding", [](PoolingOptions& o) { o.padding = SizeArg::of(-1, o.padding.w); }));
  cases.push_back(variant("a zero stride", [](PoolingOptions& o) { o.stride = SizeArg::of(0, 1); }));
  if (op == PoolingOp::MaxPool2d)
    cases.push_back(variant("a zero dilation", [](PoolingOptions& o) { o.dilation = SizeArg::both(0); }));
  return cases;
}

// Fixtures: torch.nn's arguments as the archive held them (an int or a tuple).
SizeArg spec_size(const ModuleSpec& spec, const std::string& key) {
  const nlohmann::json& v = (*spec.config).at(key);
  if (v.is_number_integer()) return SizeArg::both(v.get<int64_t>());
  const std::vector<int64_t> pair = spec.integers(key);
  if (pair.size() != 2) throw Error(spec.kind + " fixture: " + key + " must be an int or a pair of ints");
  return SizeArg::of(pair[0], pair[1]);
}

PoolingOptions spec_options(PoolingOp op, const ModuleSpec& spec) {
  PoolingOptions o;
  o.op = op;
  if (op == PoolingOp::AdaptiveAvgPool2d) {
    const nlohmann::json& v = (*spec.config).at("output_size");
    const auto one = [](const nlohmann::json& e) { return e.is_null() ? std::nullopt : std::optional<int64_t>(e.get<int64_t>()); };
    if (v.is_array() && v.size() == 2) o.output_size = {one(v[0]), one(v[1]), true};
    else o.output_size = {one(v), one(v), false};
    return o;
  }
  o.kernel_size = spec_size(spec, "kernel_size");
  o.stride = spec_size(spec, "stride");
  o.padding = spec_size(spec, "padding");
  o.ceil_mode = spec.flag("ceil_mode");
  if (op == PoolingOp::MaxPool2d) {
    o.dilation = spec_size(spec, "dilation");
  } else {
    o.count_include_pad = spec.flag("count_include_pad");
    const nlohmann::json& d = (*spec.config).at("divisor_override");
    if (!d.is_null()) o.divisor_override = d.get<int64_t>();
  }
  return o;
}

}  // namespace

ModuleKind static_pooling_kind(PoolingOp op) {
  ModuleKind kind;
  PoolingOptions named;
  named.op = op;
  kind.float_name = named.float_name();
  kind.key = "static." + kind.float_name;
  kind.family = Family::Static;
  kind.engine_op = EngineOp::StaticPooling;
  kind.structure = Structure::Pooling;
  const std::vector<Engine> engines = static_engines(EngineOp::StaticPooling);
  kind.implementations.push_back({Implementation::Reference, kind.float_name + "(Reference)", {},
                                  [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
                                    return StaticReference::keeping_input_qparams(std::make_unique<ReferencePooling>(
                                        dynamic_cast<const FloatPooling&>(m).options()));
                                  },
                                  nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, kind.float_name, engines,
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedPooling::from_float(dynamic_cast<const FloatPooling&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedPooling::from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  kind.implementations.push_back(
      {Implementation::LibTorch, kind.float_name, engines,
       [](const Module& m, const EngineProfile& e) {
         return libtorch_static_pooling_from_float(dynamic_cast<const FloatPooling&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) {
         return libtorch_static_pooling_from_reference(dynamic_cast<const StaticReference&>(r), e);
       }});
  kind.case_parameters = {
      {"batch", 1, 2, "images"},
      {"channels", 1, 20, "channels (1: channels-last contiguous too; 8 and 16: ATen's NHWC vector blocks)"},
      {"extra_h", 0, 5, "input rows beyond the dilated kernel less its padding (adaptive: the input's rows)"},
      {"extra_w", 0, 5, "input columns likewise"},
      {"pair_arguments", 0, 1, "1: sizes given as (h, w) pairs, else one int for both"},
      {"full_range", 0, 1, "1: activations observed on all 8 bits, else 7 (default_qconfig)"},
      {"channels_last", 0, 1, "1: the input held channels-last (as convolutions leave it: ATen's NHWC kernels)"},
  };
  if (op == PoolingOp::AdaptiveAvgPool2d) {
    kind.case_parameters.push_back({"output_h", 0, 4, "output rows (0: None, the input's)"});
    kind.case_parameters.push_back({"output_w", 1, 4, "output columns"});
    kind.case_parameters.push_back({"divisible", 0, 1, "1: the input a multiple of the output (QNNPACK's path)"});
  } else {
    kind.case_parameters.push_back({"kernel_h", 1, 4, "kernel rows"});
    kind.case_parameters.push_back({"kernel_w", 1, 4, "kernel columns (pairs only)"});
    kind.case_parameters.push_back({"stride", 0, 3, "stride (0: None, the kernel size)"});
    kind.case_parameters.push_back({"pad_h", 0, 2, "padding rows, at most half the kernel"});
    kind.case_parameters.push_back({"pad_w", 0, 2, "padding columns, at most half the kernel"});
    kind.case_parameters.push_back({"ceil_mode", 0, 1, "1: ceil_mode=True"});
    if (op == PoolingOp::MaxPool2d) {
      kind.case_parameters.push_back({"dilation", 1, 2, "dilation (rows; columns too unless pairs)"});
    } else {
      kind.case_parameters.push_back({"count_include_pad", 0, 1, "count_include_pad"});
      kind.case_parameters.push_back({"divisor", 0, 6, "divisor_override (0: None)"});
    }
  }
  kind.make_case = [op](const CaseConfig& config) { return make_pooling_case(config, op); };
  kind.observed_at_prepare = false;  // not in PyTorch's mappings: the float module stays
  kind.refusal_cases = [op](const CaseConfig& config) { return pooling_refusals(config, op); };
  kind.reference_from_spec = [op](const ModuleSpec& spec) -> std::unique_ptr<Module> {
    return StaticReference::keeping_input_qparams(std::make_unique<ReferencePooling>(spec_options(op, spec)));
  };
  kind.quantized_from_spec = [op](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    return std::make_unique<QuantizedPooling>(spec_options(op, spec), engine);
  };
  kind.sensitivity = pooling_sensitivity;
  kind.libtorch_defect = [](const Module& reference, const ModuleInput& input, Engine engine, const std::string&) {
    return pooling_libtorch_defect(reference, input, engine);
  };
  if (op == PoolingOp::MaxPool2d)
    kind.engine_deviation = [](const Module& reference, Engine engine) -> std::optional<std::string> {
      const PoolingOptions& o = reference_options(reference);
      const bool dilated_padding = (o.dilation.h > 1 && o.padding.h > 0) || (o.dilation.w > 1 && o.padding.w > 0);
      if (engine != Engine::QNNPACK || o.ceil_mode || !dilated_padding) return std::nullopt;
      return "qnnpack's max pooling (QNNPACK's operator) reads the nearest input element for a tap in the padding, "
             "which with dilation need not be in the window";
    };
  if (op == PoolingOp::AvgPool2d)
    kind.engine_deviation = [](const Module& reference, Engine engine) -> std::optional<std::string> {
      const PoolingOptions& o = reference_options(reference);
      if (engine != Engine::QNNPACK || o.ceil_mode || (o.count_include_pad && !o.divisor_override)) return std::nullopt;
      return "qnnpack's average pooling (QNNPACK's operator) counts padding and divides by the kernel's area "
             "whatever count_include_pad=False and divisor_override say";
    };
  return kind;
}

}  // namespace qconform::kinds
