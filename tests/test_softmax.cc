// nnq.Softmax: QNNPACK's soft-argmax modelled bit for bit (LibTorch's qnnpack takes it where
// ATen's float softmax would round otherwise), ATen's float path within its stated bound,
// refusals with PyTorch's words (a missing dim; LibTorch's own out-of-range index on qnnpack),
// and the module's repr.
#define BOOST_TEST_MODULE test_softmax
#include <boost/test/unit_test.hpp>

#include <random>

#include "quantized/kernels/softmax.h"
#include "quantized/libtorch/static_softmax.h"
#include "quantized/static/softmax.h"
#include "tests/support.h"

using namespace qconform;

namespace {

QTensor call(Module& m, const QTensor& x) { return std::get<QTensor>(m(ModuleInput{x, std::nullopt}).output); }

std::string outcome(Module& m, const QTensor& x) {
  try {
    call(m, x);
    return "accepted";
  } catch (const Error& e) {
    return e.what();
  }
}

QTensor random_rows(std::mt19937_64& rng, int64_t rows, int64_t channels) {
  std::uniform_real_distribution<double> scale(0.01, 0.3);
  std::uniform_int_distribution<int32_t> level(0, 255);
  QTensor x{Shape{rows, channels}, std::vector<int32_t>(rows * channels),
            QuantParams::per_tensor(DType::QUInt8, scale(rng), level(rng))};
  for (auto& v : x.values) v = level(rng);
  return x;
}

const QuantParams kQnnpackOutput = QuantParams::per_tensor(DType::QUInt8, 1.0 / 256.0, 0);

}  // namespace

BOOST_AUTO_TEST_CASE(qnnpacks_soft_argmax_is_modelled_bit_for_bit) {
  std::mt19937_64 rng(2);
  int64_t elements = 0, parted = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t channels = 2 + static_cast<int64_t>(rng() % 40);
    const QTensor x = random_rows(rng, 64, channels);
    QuantizedSoftmax integer(1, kQnnpackOutput, Engine::QNNPACK);
    auto libtorch = make_libtorch_softmax(1, kQnnpackOutput, Engine::QNNPACK);
    const QTensor ours = call(integer, x), theirs = call(*libtorch, x);
    BOOST_TEST(theirs.values == ours.values, "trial " << trial << ", " << channels << " channels");
    std::vector<int32_t> float_path(x.values.size());
    kernels::aten_softmax(x, 1, kQnnpackOutput, float_path.data());
    for (size_t i = 0; i < float_path.size(); ++i) parted += float_path[i] != ours.values[i];
    elements += static_cast<int64_t>(x.values.size());
  }
  BOOST_TEST_MESSAGE(parted << " of " << elements << " elements where ATen's float softmax would give another level");
  BOOST_TEST(parted > 0);
}

// ATen's float path: reported, and held to the tolerance row's bound (one quantum).
BOOST_AUTO_TEST_CASE(aten_float_path_stays_within_a_quantum) {
  std::mt19937_64 rng(3);
  int64_t elements = 0, differing = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t channels = 2 + static_cast<int64_t>(rng() % 40);
    const QTensor x = random_rows(rng, 16, channels);
    const QuantParams out = QuantParams::per_tensor(DType::QUInt8, 1.0 / 255.0, 0);  // MinMax's over [0, 1]
    for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
      QuantizedSoftmax integer(1, out, engine);
      auto libtorch = make_libtorch_softmax(1, out, engine);
      const QTensor ours = call(integer, x), theirs = call(*libtorch, x);
      for (size_t i = 0; i < ours.values.size(); ++i) {
        BOOST_TEST(std::abs(ours.values[i] - theirs.values[i]) <= 1);
        differing += ours.values[i] != theirs.values[i];
      }
      elements += static_cast<int64_t>(ours.values.size());
    }
  }
  BOOST_TEST_MESSAGE(differing << " of " << elements << " elements one level apart from ATen's float softmax");
}

BOOST_AUTO_TEST_CASE(refusals_match_libtorchs) {
  std::mt19937_64 rng(4);
  QTensor x{Shape{2, 3, 4, 5}, std::vector<int32_t>(120, 9), QuantParams::per_tensor(DType::QUInt8, 0.1, 3)};
  for (auto& v : x.values) v = static_cast<int32_t>(rng() % 256);
  struct Refusal {
    int64_t dim;
    QuantParams out;
    Engine engine;
    std::string message;
  };
  const QuantParams observed = QuantParams::per_tensor(DType::QUInt8, 1.0 / 255.0, 0);
  for (const Refusal& r :
       {Refusal{5, observed, Engine::ONEDNN, "Dimension out of range (expected to be in range of [-4, 3], but got 5)"},
        Refusal{5, kQnnpackOutput, Engine::QNNPACK,
                "Dimension out of range (expected to be in range of [-4, 3], but got 5)"},
        Refusal{-5, observed, Engine::QNNPACK,
                "Dimension out of range (expected to be in range of [-4, 3], but got -5)"},
        // LibTorch 1.13's own failure on QNNPACK's path for a negative dim that is not innermost.
        Refusal{-3, kQnnpackOutput, Engine::QNNPACK,
                "vector::_M_range_check: __n (which is 18446744073709551613) >= this->size() (which is 4)"}}) {
    QuantizedSoftmax integer(r.dim, r.out, r.engine);
    auto libtorch = make_libtorch_softmax(r.dim, r.out, r.engine);
    BOOST_TEST(outcome(integer, x) == r.message);
    BOOST_TEST(outcome(*libtorch, x) == r.message);
  }
  // The same negative dim on the float path, and -1 on QNNPACK's, are computed.
  QuantizedSoftmax float_path(-3, observed, Engine::QNNPACK), innermost(-1, kQnnpackOutput, Engine::QNNPACK);
  BOOST_TEST(outcome(float_path, x) == "accepted");
  BOOST_TEST(outcome(innermost, x) == "accepted");
}

BOOST_AUTO_TEST_CASE(prints_as_pytorch) {
  BOOST_TEST(QuantizedSoftmax(1, kQnnpackOutput, Engine::QNNPACK).repr() == "QuantizedSoftmax(dim=1)");
  BOOST_TEST(QuantizedSoftmax(std::nullopt, kQnnpackOutput, Engine::QNNPACK).repr() == "QuantizedSoftmax(dim=None)");
  BOOST_TEST(QuantizedSoftmax(1, kQnnpackOutput, Engine::QNNPACK).state_dict().keys().empty());
}
