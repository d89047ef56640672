// The quantized normalizations: the integer models of ATen's kernels against LibTorch where
// the model's details decide the answer, under whichever ATen build this process dispatches
// to (ctest runs this program again with ATEN_CPU_CAPABILITY=default and avx512).
//
// A random case rarely shows whether ATen fused a product and a sum (one rounding) or not
// (two): parameters are searched for where the two forms give different integers, and
// LibTorch must give the form of its build there. LibTorch's channels-last GroupNorm kernel
// is held to its own arithmetic (a folded bias, float sums per thread on large maps) and its
// batch-index wrap is shown to be what the kind reports as LibTorch's defect.
#define BOOST_TEST_MODULE test_normalization
#include <boost/test/unit_test.hpp>

#include <random>

#include "core/cpu.h"
#include "core/quantize.h"
#include "quantized/kernels/normalization.h"
#include "quantized/libtorch/engine.h"
#include "quantized/libtorch/static_batchnorm.h"
#include "quantized/libtorch/static_normalization.h"
#include "quantized/static/batchnorm.h"
#include "quantized/static/normalization.h"
#include "tests/support.h"

using namespace qconform;

namespace {

QTensor random_quint8(const Shape& shape, std::mt19937_64& rng, double scale, int64_t zero_point) {
  QTensor q{shape, std::vector<int32_t>(numel_of(shape)), QuantParams::per_tensor(DType::QUInt8, scale, zero_point)};
  std::uniform_int_distribution<int32_t> level(0, 255);
  for (int32_t& v : q.values) v = level(rng);
  return q;
}

Tensor random_vector(int64_t n, std::mt19937_64& rng, float magnitude = 1.0f) {
  std::normal_distribution<float> normal(0.0f, magnitude);
  Tensor t({n});
  for (float& v : t.data) v = normal(rng);
  return t;
}

QTensor run(Module& m, const QTensor& x) { return std::get<QTensor>(m(ModuleInput{x, std::nullopt}).output); }

int64_t differing(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  int64_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

const AtenCapability kHere = aten_cpu_capability();
// The other rounding form than this build's: one FMA against a product and a sum.
const AtenCapability kOtherForm = kHere == AtenCapability::Default ? AtenCapability::Avx2 : AtenCapability::Default;

}  // namespace

BOOST_AUTO_TEST_CASE(batch_norm_takes_its_builds_rounding_form_where_the_forms_part) {
  BOOST_TEST_MESSAGE("ATen capability here: " << to_string(kHere));
  std::mt19937_64 rng(20261206);
  std::uniform_real_distribution<double> scale(0.005, 0.1);
  std::uniform_int_distribution<int32_t> level(0, 255);
  int64_t parted = 0, cases = 0;
  for (int trial = 0; trial < 4000 && parted < 20; ++trial) {
    BatchNormOptions o;
    o.num_features = 40;  // vector channels and scalar ones on every build
    BatchNormState s;
    s.weight = random_vector(40, rng);
    s.bias = random_vector(40, rng);
    s.running_mean = random_vector(40, rng);
    s.running_var = random_vector(40, rng);
    for (float& v : s.running_var->data) v = std::abs(v) + 0.1f;
    const QTensor x = random_quint8({1, 40, 16, 16}, rng, scale(rng), level(rng));
    const QuantParams out = QuantParams::per_tensor(DType::QUInt8, static_cast<float>(scale(rng)), level(rng));
    const kernels::BatchNormAffine affine = kernels::batch_norm_affine(
        s.weight->data, s.bias->data, s.running_mean->data, s.running_var->data, o.eps, x.qparams.scale(), out.scale());
    std::vector<int32_t> here(x.values.size()), other(x.values.size());
    kernels::static_batch_norm(x.values.data(), 1, 40, 256, x.qparams.zero_point(), out.zero_point(), affine, false,
                               kHere, here.data());
    kernels::static_batch_norm(x.values.data(), 1, 40, 256, x.qparams.zero_point(), out.zero_point(), affine, false,
                               kOtherForm, other.data());
    const int64_t parts = differing(here, other);
    if (parts == 0) continue;
    parted += parts;
    ++cases;
    QuantizedBatchNorm integer(o, s, out, Engine::ONEDNN, false);
    auto libtorch = make_libtorch_batch_norm(o, s, out, Engine::ONEDNN, false);
    const QTensor a = run(integer, x), b = run(*libtorch, x);
    BOOST_TEST((a.values == here), "the module computes the kernel's integers");
    BOOST_TEST_REQUIRE(differing(a.values, b.values) == 0,
                       "trial " << trial << ": integer and LibTorch differ on " << differing(a.values, b.values)
                                << " elements (seed 20261206)");
  }
  BOOST_TEST_MESSAGE(parted << " elements in " << cases << " cases where the two rounding forms part");
  BOOST_TEST(parted >= 20, "too few elements where the forms part to tell them apart");
}

BOOST_AUTO_TEST_CASE(group_and_layer_norm_take_their_builds_rounding_form_where_the_forms_part) {
  std::mt19937_64 rng(20261207);
  std::uniform_real_distribution<double> scale(0.005, 0.1);
  std::uniform_int_distribution<int32_t> level(0, 255);
  for (NormOp op : {NormOp::GroupNorm, NormOp::LayerNorm, NormOp::InstanceNorm}) {
    int64_t parted = 0;
    for (int trial = 0; trial < 60000 && parted < 10; ++trial) {
      NormalizationOptions o;
      o.op = op;
      Shape shape{2, 4, 9, 10};
      if (op == NormOp::LayerNorm) o.normalized_shape = {9, 10};
      if (op == NormOp::GroupNorm) o.num_groups = 2;
      o.num_channels = 4;
      const Shape p = o.parameter_shape();
      Tensor gamma(p), beta(p);
      std::normal_distribution<float> normal;
      for (float& v : gamma.data) v = normal(rng);
      for (float& v : beta.data) v = normal(rng);
      const QTensor x = random_quint8(shape, rng, scale(rng), level(rng));
      std::uniform_real_distribution<double> out_scale(0.02, 0.08);
      const QuantParams out = QuantParams::per_tensor(DType::QUInt8, static_cast<float>(out_scale(rng)), 128);
      const NormalizationGroups g = normalization_groups(o, shape, "test");
      const kernels::NormalizeQParams qp{static_cast<float>(x.qparams.scale()), static_cast<int32_t>(x.qparams.zero_point()),
                                         static_cast<float>(out.scale()), static_cast<int32_t>(out.zero_point())};
      std::vector<int32_t> here(x.values.size()), other(x.values.size());
      kernels::static_normalize(x.values.data(), g, shape, gamma.data.data(), beta.data.data(), o.eps, qp, kHere,
                                here.data());
      kernels::static_normalize(x.values.data(), g, shape, gamma.data.data(), beta.data.data(), o.eps, qp, kOtherForm,
                                other.data());
      const int64_t parts = differing(here, other);
      if (parts == 0) continue;
      parted += parts;
      QuantizedNormalization integer(o, gamma, beta, out, Engine::QNNPACK);
      auto libtorch = make_libtorch_normalization(o, gamma, beta, out, Engine::QNNPACK);
      const QTensor a = run(integer, x), b = run(*libtorch, x);
      BOOST_TEST((a.values == here));
      BOOST_TEST_REQUIRE(differing(a.values, b.values) == 0, o.float_name() << " trial " << trial << ": "
                                                                 << differing(a.values, b.values)
                                                                 << " elements differ (seed 20261207)");
    }
    NormalizationOptions named;
    named.op = op;
    BOOST_TEST_MESSAGE(named.float_name() << ": " << parted << " elements where the two rounding forms part");
    BOOST_TEST(parted >= 10, named.float_name() << ": too few elements where the forms part");
  }
}

// A constant group normalizes to 0 exactly in the contiguous kernel; the channels-last one
// folds the mean into its bias, and its d g' + (-g' mean) leaves g' d's rounding: on a tiny
// output scale that shows as levels, which LibTorch must give and the model must predict.
BOOST_AUTO_TEST_CASE(channels_last_group_norm_folds_the_mean_into_its_bias) {
  std::mt19937_64 rng(20261208);
  int64_t folded_nonzero = 0;
  for (int trial = 0; trial < 40; ++trial) {
    NormalizationOptions o;
    o.op = NormOp::GroupNorm;
    o.num_groups = 1;
    o.num_channels = 1;  // one channel: LibTorch's contiguous tensor is channels-last too
    std::uniform_int_distribution<int32_t> level(0, 255);
    QTensor x{{1, 1, 8, 1}, std::vector<int32_t>(8, level(rng)),
              QuantParams::per_tensor(DType::QUInt8, 0.01 + 0.001 * trial, level(rng))};
    const QuantParams out = QuantParams::per_tensor(DType::QUInt8, 1.0 / (1 << 23), 128);
    const Tensor gamma = random_vector(1, rng), beta({1}, {0.0f});
    QuantizedNormalization integer(o, gamma, beta, out, Engine::QNNPACK);
    auto libtorch = make_libtorch_normalization(o, gamma, beta, out, Engine::QNNPACK);
    const QTensor a = run(integer, x), b = run(*libtorch, x);
    BOOST_TEST((a.values == b.values), "trial " << trial << ": " << a.values[0] << " vs LibTorch's " << b.values[0]);
    folded_nonzero += a.values[0] != 128;
  }
  // With FMAs (AVX2, AVX-512 builds) the residual is d g' - round(mean g'); without (the
  // default build) both products round alike and cancel.
  if (kHere == AtenCapability::Default)
    BOOST_TEST(folded_nonzero == 0);
  else
    BOOST_TEST(folded_nonzero > 10, "the folded bias should leave a residual in most trials");
}

// From 512 pixels the channels-last kernel sums q and q^2 in float per thread: with values near
// 255 the sum of squares passes 2^24 and rounds, differently for one and two threads.
BOOST_AUTO_TEST_CASE(channels_last_group_norm_sums_in_float_per_thread_on_large_maps) {
  std::mt19937_64 rng(20261209);
  NormalizationOptions o;
  o.op = NormOp::InstanceNorm;
  o.num_channels = 1;
  std::uniform_int_distribution<int32_t> high(200, 255);
  QTensor x{{2, 1, 40, 40}, std::vector<int32_t>(3200), QuantParams::per_tensor(DType::QUInt8, 0.02, 30)};
  for (int32_t& v : x.values) v = high(rng);
  const QuantParams out = QuantParams::per_tensor(DType::QUInt8, 0.002, 128);
  const int before = libtorch_threads();
  for (int threads : {1, 2}) {
    set_libtorch_threads(threads);
    auto libtorch = make_libtorch_normalization(o, std::nullopt, std::nullopt, out, Engine::QNNPACK);
    const QTensor b = run(*libtorch, x);
    QuantizedNormalization integer(o, std::nullopt, std::nullopt, out, Engine::QNNPACK);
    BOOST_TEST(aten_intra_op_threads() == threads);
    const QTensor a = run(integer, x);
    BOOST_TEST(differing(a.values, b.values) == 0, threads << " thread(s): " << differing(a.values, b.values)
                                                           << " elements differ");
  }
  set_libtorch_threads(before);
}

BOOST_AUTO_TEST_CASE(channels_last_group_norm_leaves_samples_past_the_group_size_unwritten) {
  // (2, 3, 1, 1) in 3 groups: one element per group, so samples from 1 on wrap to sample 0.
  NormalizationOptions o;
  o.op = NormOp::GroupNorm;
  o.num_groups = 3;
  o.num_channels = 3;
  const QTensor x{{2, 3, 1, 1}, {10, 200, 90, 40, 250, 7}, QuantParams::per_tensor(DType::QUInt8, 0.05, 100)};
  const NormalizationGroups g = normalization_groups(o, x.sizes, "test");
  BOOST_TEST(kernels::nhwc_unwritten_samples(g, x.sizes) == 1);
  const Tensor gamma({3}, {1.0f, -2.0f, 0.5f}), beta({3}, {0.1f, -0.2f, 0.3f});
  const QuantParams out = QuantParams::per_tensor(DType::QUInt8, 0.01, 128);
  QuantizedNormalization integer(o, gamma, beta, out, Engine::QNNPACK);
  const QTensor a = run(integer, x);
  // One element per group: the normalized value is 0, the output beta, for every sample.
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      BOOST_TEST(a.values[n * 3 + c] == quantize(Tensor({1}, {beta.data[c]}), out).values[0]);
  auto libtorch = make_libtorch_normalization(o, gamma, beta, out, Engine::QNNPACK);
  const QTensor b = run(*libtorch, x);
  BOOST_TEST((std::vector<int32_t>(b.values.begin(), b.values.begin() + 3) ==
              std::vector<int32_t>(a.values.begin(), a.values.begin() + 3)),
             "sample 0, which LibTorch writes");
}

BOOST_AUTO_TEST_CASE(refusals_carry_libtorchs_messages) {
  const auto both = [](Module& integer, Module& libtorch, const QTensor& x, const std::string& message) {
    for (Module* m : {&integer, &libtorch}) testing::expect_error([&] { run(*m, x); }, message);
  };
  std::mt19937_64 rng(5);
  {
    BatchNormOptions o;
    o.num_features = 3;
    BatchNormState s{Tensor({3}, {1, 1, 1}), Tensor({3}, {0, 0, 0}), Tensor({3}, {0, 0, 0}), Tensor({3}, {1, 1, 1}), 0};
    const QuantParams out = QuantParams::per_tensor(DType::QUInt8, 0.1, 3);
    QuantizedBatchNorm integer(o, s, out, Engine::QNNPACK, false);
    auto libtorch = make_libtorch_batch_norm(o, s, out, Engine::QNNPACK, false);
    both(integer, *libtorch, random_quint8({3, 4, 5}, rng, 0.1, 128), "Expecting the input tensor of rank 4.");
    both(integer, *libtorch, random_quint8({2, 4, 4, 5}, rng, 0.1, 128), "Expect weight size to match C");
    BatchNormState no_weight = s;
    no_weight.weight.reset();
    QuantizedBatchNorm integer2(o, no_weight, out, Engine::QNNPACK, false);
    auto libtorch2 = make_libtorch_batch_norm(o, no_weight, out, Engine::QNNPACK, false);
    both(integer2, *libtorch2, random_quint8({2, 3, 4, 5}, rng, 0.1, 128), "Weight must be provided");
  }
  {
    NormalizationOptions o;
    o.op = NormOp::LayerNorm;
    o.normalized_shape = {3, 4};
    const QuantParams out = QuantParams::per_tensor(DType::QUInt8, 0.1, 3);
    const Tensor w({3, 4}, std::vector<float>(12, 1.0f)), b({3, 4}, std::vector<float>(12, 0.0f));
    QuantizedNormalization integer(o, w, b, out, Engine::QNNPACK);
    auto libtorch = make_libtorch_normalization(o, w, b, out, Engine::QNNPACK);
    both(integer, *libtorch, random_quint8({2, 4, 3, 5}, rng, 0.1, 128),
         "Given normalized_shape=[3, 4], expected input with shape [*, 3, 4], but got input of size[2, 4, 3, 5]");
  }
  {
    NormalizationOptions o;
    o.op = NormOp::GroupNorm;
    o.num_groups = 2;
    o.num_channels = 4;
    const QuantParams out = QuantParams::per_tensor(DType::QUInt8, 0.1, 3);
    const Tensor w({4}, std::vector<float>(4, 1.0f)), b({4}, std::vector<float>(4, 0.0f));
    QuantizedNormalization integer(o, w, b, out, Engine::QNNPACK);
    auto libtorch = make_libtorch_normalization(o, w, b, out, Engine::QNNPACK);
    both(integer, *libtorch, random_quint8({4, 5}, rng, 0.1, 128), "Expected normalized_shape to be at least 3-dimensional");
    both(integer, *libtorch, random_quint8({2, 5, 3, 3}, rng, 0.1, 128), "Expected channels to be divisible by groups");
    both(integer, *libtorch, random_quint8({2, 6, 3, 3}, rng, 0.1, 128), "Unexpected size of gamma");
  }
}
