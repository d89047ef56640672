// Quantized pooling: the integer model of ATen's and QNNPACK's kernels against LibTorch on
// inputs where the model's details decide the answer, LibTorch's known defects shown against
// PyTorch's float modules, refusals with LibTorch's messages on each path, and the modules'
// PyTorch reprs.
//
// Random cases seldom land where two plausible models differ (a rounding tie, a reciprocal
// that rounds back to another float), so each test searches for such inputs, checks that the
// alternatives really differ there, and holds LibTorch to the model.
#define BOOST_TEST_MODULE test_pooling
#include <boost/test/unit_test.hpp>

#include <array>
#include <cmath>
#include <random>

#include "core/quantize.h"
#include "quantized/kernels/pooling.h"
#include "quantized/libtorch/static_pooling.h"
#include "quantized/static/pooling.h"
#include "reference/pooling.h"
#include "reference/static.h"
#include "tests/support.h"

using namespace qconform;

namespace {

QTensor run(Module& module, const QTensor& x) { return std::get<QTensor>(module(ModuleInput{x, std::nullopt}).output); }

QTensor run_libtorch(const PoolingOptions& o, Engine engine, const QTensor& x) {
  auto libtorch = make_libtorch_static_pooling(o, engine);
  return run(*libtorch, x);
}

std::string outcome(const std::function<QTensor()>& call) {
  try {
    call();
    return "accepted";
  } catch (const Error& e) {
    return e.what();
  }
}

// PyTorch's own answer by its definition: the float module on the dequantized input,
// quantized with the input's qparams (the reference).
QTensor by_definition(const PoolingOptions& o, const QTensor& x) {
  auto reference = StaticReference::keeping_input_qparams(std::make_unique<ReferencePooling>(o));
  return run(*reference, x);
}

PoolingOptions avg(int64_t kh, int64_t kw) {
  PoolingOptions o;
  o.op = PoolingOp::AvgPool2d;
  o.kernel_size = SizeArg::of(kh, kw);
  return o;
}

}  // namespace

// QNNPACK's average: float(acc) * (s / (s kH kW)), rounded to even, then + z. Where that
// scale is another float than 1 / (kH kW), a tie tells the two apart.
BOOST_AUTO_TEST_CASE(qnnpacks_average_scales_by_s_over_s_times_the_area) {
  std::mt19937_64 rng(20261206);
  std::uniform_real_distribution<double> scales(0.001, 0.2);
  int found = 0, tries = 0;
  for (; found < 20 && tries < 20000; ++tries) {
    const int64_t kh = 1 + static_cast<int64_t>(rng() % 4), kw = 1 + static_cast<int64_t>(rng() % 4), area = kh * kw;
    if (area % 2) continue;  // an exact tie needs an even area
    const float s = static_cast<float>(scales(rng));
    const float qnnpack = s / (s * static_cast<float>(area)), plain = 1.0f / static_cast<float>(area);
    if (qnnpack == plain) continue;
    const int32_t zp = static_cast<int32_t>(rng() % 128);
    for (int32_t acc = area / 2; acc + area * zp <= 255 * area && found < 20; acc += area) {
      const int64_t ours = std::llrint(static_cast<float>(acc) * qnnpack), other = std::llrint(static_cast<float>(acc) * plain);
      if (ours == other || ours + zp > 255) continue;
      // acc + area z spread over the window, each element within [0, 255].
      QTensor x{Shape{1, 1, kh, kw}, std::vector<int32_t>(area, zp), QuantParams::per_tensor(DType::QUInt8, s, zp)};
      int32_t rest = acc;
      for (auto& q : x.values) {
        const int32_t add = std::min(rest, 255 - q);
        q += add;
        rest -= add;
      }
      ++found;
      QuantizedPooling integer(avg(kh, kw), Engine::QNNPACK);
      const QTensor expected = run(integer, x), theirs = run_libtorch(avg(kh, kw), Engine::QNNPACK, x);
      BOOST_TEST(expected.values.at(0) == ours + zp);
      BOOST_TEST(theirs.values == expected.values, "kernel " << kh << "x" << kw << ", s = " << s << ", z = " << zp
                                                             << ", acc = " << acc << ": s / (s area) gives "
                                                             << ours + zp << ", 1 / area " << other + zp
                                                             << "; LibTorch " << theirs.values.at(0));
    }
  }
  BOOST_TEST_MESSAGE(found << " ties where QNNPACK's scale decides, in " << tries << " draws");
  BOOST_TEST(found > 0);
}

// ATen's two average kernels put the zero point on either side of the rounding: NCHW rounds
// float(acc) * m + z, NHWC (taken by an input that is channels-last contiguous too, C = 1)
// rounds float(acc) * m and adds z. At a tie with an odd z they part.
BOOST_AUTO_TEST_CASE(nchw_and_nhwc_averages_round_either_side_of_the_zero_point) {
  std::mt19937_64 rng(3);
  for (int64_t channels : {1, 3}) {
    const kernels::PoolingKernel path = channels == 1 ? kernels::PoolingKernel::AvgNhwc : kernels::PoolingKernel::AvgNchw;
    const kernels::PoolingKernel other = channels == 1 ? kernels::PoolingKernel::AvgNchw : kernels::PoolingKernel::AvgNhwc;
    int differing = 0;
    for (int trial = 0; trial < 100; ++trial) {
      PoolingOptions o = avg(2, 1 + static_cast<int64_t>(rng() % 2));  // areas 2 and 4: exact ties
      const int32_t zp = 1 + 2 * static_cast<int32_t>(rng() % 100);    // odd
      QTensor x{Shape{1, channels, 4, 4}, std::vector<int32_t>(channels * 16), QuantParams::per_tensor(DType::QUInt8, 0.1, zp)};
      for (auto& q : x.values) q = static_cast<int32_t>(rng() % 256);
      BOOST_REQUIRE(to_string(kernels::pooling_kernel(o, Engine::ONEDNN, x.sizes, x.channels_last)) == to_string(path));
      const Shape out = kernels::quantized_pooled_shape(o, path, x.sizes);
      std::vector<int32_t> other_rule(numel_of(out));
      kernels::quantized_pool(o, other, x.values.data(), x.sizes, 0.1, zp, other_rule.data(), out);
      QuantizedPooling integer(o, Engine::ONEDNN);
      const QTensor ours = run(integer, x), theirs = run_libtorch(o, Engine::ONEDNN, x);
      BOOST_TEST(theirs.values == ours.values, to_string(path) << ", kernel " << o.kernel_size.repr() << ", z = " << zp);
      differing += ours.values != other_rule;
    }
    BOOST_TEST_MESSAGE(to_string(path) << ": " << differing << " of 100 inputs where " << to_string(other)
                                       << "'s rule would differ");
    BOOST_TEST(differing > 0);
  }
}

// ATen's NCHW adaptive average rounds the raw integers' mean (no zero point subtracted):
// nearbyint(sum * ((1 / kH) / kW)). Subtracting the zero point first, as its NHWC kernel
// does, moves ties to the other neighbour when z is odd.
BOOST_AUTO_TEST_CASE(nchw_adaptive_average_rounds_the_raw_integers_mean) {
  std::mt19937_64 rng(7);
  int differing = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t h = 1 + static_cast<int64_t>(rng() % 5), w = 2 + static_cast<int64_t>(rng() % 5);
    PoolingOptions o;
    o.op = PoolingOp::AdaptiveAvgPool2d;
    o.output_size = {1 + static_cast<int64_t>(rng() % h), 1 + static_cast<int64_t>(rng() % w), true};
    const int32_t zp = 1 + 2 * static_cast<int32_t>(rng() % 100);  // odd
    QTensor x{Shape{1, 2, h, w}, std::vector<int32_t>(2 * h * w), QuantParams::per_tensor(DType::QUInt8, 0.1, zp)};
    for (auto& q : x.values) q = static_cast<int32_t>(rng() % 256);
    BOOST_REQUIRE(to_string(kernels::pooling_kernel(o, Engine::ONEDNN, x.sizes, x.channels_last)) == "adaptive-nchw");
    const Shape out = kernels::quantized_pooled_shape(o, kernels::PoolingKernel::AdaptiveNchw, x.sizes);
    std::vector<int32_t> nhwc_rule(numel_of(out));
    kernels::quantized_pool(o, kernels::PoolingKernel::AdaptiveNhwc, x.values.data(), x.sizes, 0.1, zp,
                            nhwc_rule.data(), out);
    QuantizedPooling integer(o, Engine::ONEDNN);
    const QTensor ours = run(integer, x), theirs = run_libtorch(o, Engine::ONEDNN, x);
    BOOST_TEST(theirs.values == ours.values, "input " << h << "x" << w << " -> " << o.output_size.repr());
    differing += ours.values != nhwc_rule;
  }
  BOOST_TEST_MESSAGE(differing << " of 300 inputs where subtracting the zero point first would differ");
  BOOST_TEST(differing > 0);
}

// qnnpack counts padding and divides by the kernel's area whatever count_include_pad=False
// and divisor_override say: the model and LibTorch agree, and both differ from PyTorch's
// definition (the agreement oracle classes this engine-deviation against the reference).
BOOST_AUTO_TEST_CASE(qnnpacks_average_ignores_count_include_pad_and_divisor_override) {
  std::mt19937_64 rng(11);
  QTensor x{Shape{1, 3, 5, 6}, std::vector<int32_t>(90), QuantParams::per_tensor(DType::QUInt8, 0.1, 10)};
  for (auto& q : x.values) q = static_cast<int32_t>(rng() % 60);
  PoolingOptions exclude = avg(3, 3), divided = avg(3, 3), plain = avg(3, 3);
  for (PoolingOptions* o : {&exclude, &divided, &plain}) {
    o->stride = SizeArg::of(2, 2);
    o->padding = SizeArg::of(1, 1);
  }
  exclude.count_include_pad = false;
  divided.divisor_override = 5;
  for (const PoolingOptions& o : {exclude, divided}) {
    QuantizedPooling integer(o, Engine::QNNPACK), as_plain(plain, Engine::QNNPACK);
    const QTensor ours = run(integer, x), theirs = run_libtorch(o, Engine::QNNPACK, x);
    BOOST_TEST(theirs.values == ours.values);
    BOOST_TEST(ours.values == run(as_plain, x).values);  // what it ignores changes nothing
    BOOST_TEST(ours.values != by_definition(o, x).values);
    QuantizedPooling generic(o, Engine::ONEDNN);  // ATen's kernel honours both
    const QTensor defined = run(generic, x);
    BOOST_TEST(run_libtorch(o, Engine::ONEDNN, x).values == defined.values);
    int64_t far = 0;
    const QTensor reference = by_definition(o, x);
    for (size_t i = 0; i < defined.values.size(); ++i) far += std::abs(defined.values[i] - reference.values[i]) > 1;
    BOOST_TEST(far == 0);
  }
}

// QNNPACK's max pooling points a padding tap at the nearest input element. Without dilation
// that element is in the window anyway; with it, it need not be.
BOOST_AUTO_TEST_CASE(qnnpacks_max_pooling_reads_the_nearest_element_for_padding) {
  PoolingOptions o;
  o.op = PoolingOp::MaxPool2d;
  o.kernel_size = SizeArg::of(3, 1);
  o.padding = SizeArg::of(1, 0);
  o.dilation = SizeArg::of(2, 1);
  // Rows 0..2; the window of the one output holds rows -1, 1, 3: row 1 alone is in the input.
  const QTensor x{Shape{1, 1, 3, 1}, {111, 103, 119}, QuantParams::per_tensor(DType::QUInt8, 0.05, 101)};
  QuantizedPooling qnnpack(o, Engine::QNNPACK), generic(o, Engine::ONEDNN);
  BOOST_TEST(run(qnnpack, x).values == std::vector<int32_t>{119});  // rows 0 and 2 stand in for -1 and 3
  BOOST_TEST(run_libtorch(o, Engine::QNNPACK, x).values == std::vector<int32_t>{119});
  BOOST_TEST(run(generic, x).values == std::vector<int32_t>{103});
  BOOST_TEST(run_libtorch(o, Engine::ONEDNN, x).values == std::vector<int32_t>{103});
  BOOST_TEST(by_definition(o, x).values == std::vector<int32_t>{103});
}

// ATen's NHWC kernels take an (N, C, 1, 1) input (channels-last contiguous too) but write
// channels-last order into the NCHW output they allocate: LibTorch's answer scrambles
// channels and positions once the output has more than one position. The integer side gives
// PyTorch's answer; the kinds class LibTorch's as engine-defect.
BOOST_AUTO_TEST_CASE(libtorchs_nhwc_kernels_scramble_an_nchw_output) {
  const QTensor x{Shape{1, 2, 1, 1}, {157, 107}, QuantParams::per_tensor(DType::QUInt8, 0.01, 127)};
  PoolingOptions adaptive;
  adaptive.op = PoolingOp::AdaptiveAvgPool2d;
  adaptive.output_size = {1, 2, true};
  QuantizedPooling integer(adaptive, Engine::ONEDNN);
  const std::vector<int32_t> defined{157, 157, 107, 107};
  BOOST_TEST(by_definition(adaptive, x).values == defined);
  BOOST_TEST(run(integer, x).values == defined);
  BOOST_TEST(run_libtorch(adaptive, Engine::ONEDNN, x).values == (std::vector<int32_t>{157, 107, 157, 107}));
}

// Each path checks its own way, with its own words: the integer side refuses what LibTorch
// refuses, with LibTorch's message (its assertion prefixes aside).
BOOST_AUTO_TEST_CASE(refusals_match_libtorchs_on_each_path) {
  const QTensor x{Shape{1, 2, 5, 5}, std::vector<int32_t>(50, 12), QuantParams::per_tensor(DType::QUInt8, 0.1, 10)};
  struct Invalid {
    std::string what;
    PoolingOptions options;
  };
  std::vector<Invalid> invalid;
  const auto windowed = [](PoolingOp op, int64_t k, int64_t pad, std::optional<int64_t> stride, int64_t dilation) {
    PoolingOptions o;
    o.op = op;
    o.kernel_size = SizeArg::both(k);
    o.padding = SizeArg::both(pad);
    if (stride) o.stride = SizeArg::both(*stride);
    o.dilation = SizeArg::both(dilation);
    return o;
  };
  for (PoolingOp op : {PoolingOp::MaxPool2d, PoolingOp::AvgPool2d}) {
    invalid.push_back({"padding beyond half the kernel", windowed(op, 3, 2, std::nullopt, 1)});
    invalid.push_back({"negative padding", windowed(op, 2, -1, std::nullopt, 1)});
    invalid.push_back({"zero stride", windowed(op, 2, 0, 0, 1)});
    invalid.push_back({"a kernel beyond the input", windowed(op, 7, 0, std::nullopt, 1)});
    invalid.push_back({"a 1 x 1 window", windowed(op, 1, 0, std::nullopt, 1)});
  }
  invalid.push_back({"zero dilation", windowed(PoolingOp::MaxPool2d, 3, 0, std::nullopt, 0)});
  PoolingOptions divisor = windowed(PoolingOp::AvgPool2d, 2, 0, std::nullopt, 1);
  divisor.divisor_override = 0;
  invalid.push_back({"a zero divisor", divisor});
  PoolingOptions negative;
  negative.op = PoolingOp::AdaptiveAvgPool2d;
  negative.output_size = {2, -1, true};
  invalid.push_back({"a negative output size", negative});
  int refused = 0;
  for (const Invalid& c : invalid)
    for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
      QuantizedPooling integer(c.options, engine);
      const std::string ours = outcome([&] { return run(integer, x); });
      const std::string theirs = outcome([&] { return run_libtorch(c.options, engine, x); });
      BOOST_TEST(ours == theirs, c.options.float_name() << " with " << c.what << " on " << to_string(engine)
                                                       << ": integer \"" << ours << "\", LibTorch \"" << theirs << "\"");
      refused += ours != "accepted";
    }
  BOOST_TEST_MESSAGE(refused << " of " << 2 * invalid.size() << " refused by both sides alike");
  BOOST_TEST(refused >= static_cast<int>(2 * invalid.size()) - 4);  // some paths accept (an empty output)
  // A zero output size on qnnpack: LibTorch would divide by it (SIGFPE); both sides refuse first.
  PoolingOptions zero;
  zero.op = PoolingOp::AdaptiveAvgPool2d;
  zero.output_size = {0, 0, false};
  QuantizedPooling integer(zero, Engine::QNNPACK);
  testing::expect_error([&] { run(integer, x); }, "SIGFPE");
  testing::expect_error([&] { run_libtorch(zero, Engine::QNNPACK, x); }, "SIGFPE");
}

// torch.nn's reprs, as PyTorch 1.13 prints them (the arguments as given).
BOOST_AUTO_TEST_CASE(modules_print_as_torch_nn_does) {
  PoolingOptions max;
  max.kernel_size = SizeArg::both(3);
  max.stride = SizeArg::both(2);
  max.padding = SizeArg::both(1);
  BOOST_TEST(QuantizedPooling(max, Engine::QNNPACK).repr() ==
             "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)");
  max.kernel_size = SizeArg::of(3, 2);
  max.stride.reset();
  max.padding = SizeArg::both(0);
  BOOST_TEST(FloatPooling(max).repr() ==
             "MaxPool2d(kernel_size=(3, 2), stride=(3, 2), padding=0, dilation=1, ceil_mode=False)");
  PoolingOptions average = avg(3, 3);
  average.kernel_size = SizeArg::both(3);
  average.stride = SizeArg::both(2);
  average.padding = SizeArg::both(1);
  average.count_include_pad = false;
  BOOST_TEST(make_libtorch_static_pooling(average, Engine::ONEDNN)->repr() == "AvgPool2d(kernel_size=3, stride=2, padding=1)");
  PoolingOptions adaptive;
  adaptive.op = PoolingOp::AdaptiveAvgPool2d;
  adaptive.output_size = {std::nullopt, 3, true};
  BOOST_TEST(FloatPooling(adaptive).repr() == "AdaptiveAvgPool2d(output_size=(None, 3))");
  adaptive.output_size = {7, 7, false};
  BOOST_TEST(FloatPooling(adaptive).repr() == "AdaptiveAvgPool2d(output_size=7)");
  BOOST_TEST(QuantizedPooling(adaptive, Engine::ONEDNN).state_dict().keys().empty());
}

// A model's convolutions leave their outputs channels-last, and ATen's average pooling then
// takes its NHWC kernels whatever the shape (found replaying MobileNetV3 on onednn: a global
// average over 14 x 14 one quantum off with the NCHW kernel). The input's memory format is
// part of the call: the integer model, told it, gives LibTorch's integers, and the NCHW
// kernel would not (at least one of these random global averages ties apart).
BOOST_AUTO_TEST_CASE(channels_last_inputs_take_atens_nhwc_kernels) {
  std::mt19937 random(11);
  int parted = 0;
  for (int trial = 0; trial < 40; ++trial) {
    for (PoolingOp op : {PoolingOp::AdaptiveAvgPool2d, PoolingOp::AvgPool2d}) {
      PoolingOptions o = op == PoolingOp::AvgPool2d ? avg(3, 3) : PoolingOptions{};
      o.op = op;
      QTensor x{Shape{1, 24, 14, 14}, std::vector<int32_t>(24 * 196), QuantParams::per_tensor(DType::QUInt8, 0.05, 7)};
      for (int32_t& v : x.values) v = static_cast<int32_t>(random() % 256);
      x.channels_last = true;
      QTensor nchw = x;
      nchw.channels_last = false;
      QuantizedPooling integer(o, Engine::ONEDNN);
      const QTensor theirs = run_libtorch(o, Engine::ONEDNN, x);
      if (op == PoolingOp::AvgPool2d) BOOST_TEST(theirs.channels_last, "ATen keeps the memory format");
      BOOST_TEST(run(integer, x).values == theirs.values);
      if (run(integer, nchw).values != theirs.values) ++parted;
    }
  }
  BOOST_TEST(parted > 0, "no case tells the NCHW kernel from the NHWC one");
}

// The max pool on channels-last bytes (the model replay's path) gives forward's integers:
// kernels, strides, padding, dilation and ceil_mode drawn at random, fewer and more than 16
// channels, on each engine; where the engine's kernel is QNNPACK's, the path declines.
BOOST_AUTO_TEST_CASE(max_pool_on_channels_last_bytes_gives_forwards_integers) {
  std::mt19937_64 rng(20261207);
  const auto draw = [&](int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng() % (hi - lo + 1)); };
  int compared = 0;
  for (int trial = 0; trial < 300; ++trial) {
    PoolingOptions o;
    o.kernel_size = SizeArg::of(draw(1, 4), draw(1, 4));
    o.stride = SizeArg::of(draw(1, 3), draw(1, 3));
    o.padding = SizeArg::of(draw(0, o.kernel_size.h / 2), draw(0, o.kernel_size.w / 2));
    o.dilation = SizeArg::of(draw(1, 2), draw(1, 2));
    o.ceil_mode = draw(0, 1) == 1;
    const Engine engine = std::array{Engine::ONEDNN, Engine::FBGEMM, Engine::QNNPACK}[draw(0, 2)];
    const Shape shape{draw(1, 2), draw(1, 40), draw(1, 12), draw(1, 12)};
    const int64_t n = numel_of(shape), c = shape[1], hw = shape[2] * shape[3];
    std::vector<uint8_t> bytes(n);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
    QTensor x{shape, std::vector<int32_t>(n), QuantParams::per_tensor(DType::QUInt8, 0.05, draw(0, 255))};
    for (int64_t m = 0; m < shape[0]; ++m)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t k = 0; k < hw; ++k) x.values[(m * c + ch) * hw + k] = bytes[(m * hw + k) * c + ch];
    x.channels_last = true;
    QuantizedPooling pool(o, engine);
    const std::vector<U8ChannelsLast> operands{{shape, x.qparams.scale(), x.qparams.zero_point(), bytes.data()}};
    std::optional<U8ChannelsLast> output;
    try {
      output = pool.channels_last_output(operands);
    } catch (const Error& e) {  // sizes the op refuses: forward refuses them alike
      BOOST_TEST(outcome([&] { return run(pool, x); }) == std::string(e.what()), "trial " << trial);
      continue;
    }
    const bool max_kernel = kernels::pooling_kernel(o, engine, shape, true) == kernels::PoolingKernel::Max;
    BOOST_TEST(output.has_value() == max_kernel, "trial " << trial);
    if (!output) continue;
    const QTensor expected = run(pool, x);
    BOOST_TEST(output->sizes == expected.sizes, "trial " << trial);
    BOOST_TEST(output->zero_point == expected.qparams.zero_point());
    const int64_t oc = expected.sizes[1], ohw = expected.sizes[2] * expected.sizes[3];
    std::vector<uint8_t> y(expected.values.size());
    pool.forward_channels_last(operands, y.data());
    int64_t differ = 0;
    for (int64_t m = 0; m < expected.sizes[0]; ++m)
      for (int64_t ch = 0; ch < oc; ++ch)
        for (int64_t k = 0; k < ohw; ++k) differ += y[(m * ohw + k) * oc + ch] != expected.values[(m * oc + ch) * ohw + k];
    BOOST_TEST(differ == 0, "trial " << trial << " (" << o.extra_repr() << ", " << shape_to_string(shape) << ", "
                                     << to_string(engine) << "): " << differ << " outputs differ from forward");
    ++compared;
  }
  BOOST_TEST_MESSAGE(compared << " of 300 drawn max pools compared");
  BOOST_TEST(compared > 100);
}
