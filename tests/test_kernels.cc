// The integer kernels' two paths (quantized/kernels/dynamic_gemm.h): the AVX2 path must give
// the portable path's accumulators and outputs bit for bit, at any shape and at the extremes
// of the integer ranges. rapidcheck prints the shrunk case and RC_PARAMS to rerun it.
#define BOOST_TEST_MODULE test_kernels
#include <rapidcheck/boost_test.h>

#include <cstring>

#include "quantized/kernels/dynamic_gemm.h"

using namespace qconform::kernels;

namespace {

struct GemmCase {
  DynamicLinearWeights w;
  std::vector<int32_t> x;
  int64_t rows = 0;
  int32_t x_zero_point = 0;
};

// Weights qint8 with per-channel zero points anywhere in qint8 (asymmetric, as qnnpack
// allows), activations quint8; `extreme` puts every value at the ends of its range.
GemmCase gemm_case(int64_t rows, int64_t k, int64_t n, bool extreme) {
  GemmCase c;
  c.rows = rows;
  c.w.in_features = k;
  c.w.out_features = n;
  const auto weight = extreme ? rc::gen::element<int32_t>(-128, 127) : rc::gen::inRange<int32_t>(-128, 128);
  const auto activation = extreme ? rc::gen::element<int32_t>(0, 255) : rc::gen::inRange<int32_t>(0, 256);
  c.w.values = *rc::gen::container<std::vector<int32_t>>(static_cast<size_t>(n * k), weight);
  c.w.zero_points = *rc::gen::container<std::vector<int32_t>>(static_cast<size_t>(n), weight);
  c.w.scales.assign(n, 0.0123f);
  c.x = *rc::gen::container<std::vector<int32_t>>(static_cast<size_t>(rows * k), activation);
  c.x_zero_point = *activation;
  pack_weights(c.w);
  return c;
}

void check_paths_agree(const GemmCase& c) {
  if (fastest_kernel_path() != KernelPath::Avx2) RC_DISCARD("no AVX2 on this CPU");
  const DynamicLinearActivation x{c.x.data(), c.rows, 0.05f, c.x_zero_point};
  const auto portable = dynamic_linear_accumulators(x, c.w, KernelPath::Portable);
  const auto avx2 = dynamic_linear_accumulators(x, c.w, KernelPath::Avx2);
  RC_ASSERT(portable == avx2);
  // The whole kernel: dynamic_linear takes the AVX2 path with packed weights, the portable
  // one without; the floats must be the same bits.
  DynamicLinearWeights unpacked = c.w;
  unpacked.packed = {};
  std::vector<float> bias(c.w.out_features, -0.25f), fast(c.rows * c.w.out_features), slow(fast.size());
  dynamic_linear(x, c.w, bias.data(), /*relu=*/true, fast.data());
  dynamic_linear(x, unpacked, bias.data(), /*relu=*/true, slow.data());
  RC_ASSERT(std::memcmp(fast.data(), slow.data(), fast.size() * sizeof(float)) == 0);
}

}  // namespace

RC_BOOST_PROP(avx2_equals_portable_at_any_shape, ()) {
  const int64_t rows = *rc::gen::inRange<int64_t>(0, 20), k = *rc::gen::inRange<int64_t>(1, 80),
                n = *rc::gen::inRange<int64_t>(1, 40);
  RC_TAG(k % 2 ? "odd K" : "even K");
  check_paths_agree(gemm_case(rows, k, n, /*extreme=*/false));
}

RC_BOOST_PROP(avx2_equals_portable_at_the_range_ends, ()) {
  const int64_t rows = *rc::gen::inRange<int64_t>(1, 8), k = *rc::gen::inRange<int64_t>(1, 300),
                n = *rc::gen::inRange<int64_t>(1, 20);
  check_paths_agree(gemm_case(rows, k, n, /*extreme=*/true));
}

// The saturation boundary: u8 x s8 pairs summed in int16 (vpmaddubsw) would saturate at
// x = 255, w = -128 (2 x 255 x -128 = -65280 < -32768). The AVX2 path multiplies
// int16 (w - w_zp) in int32 lanes, so the largest terms (|x| = 255, |w - w_zp| = 255) stay
// exact: equal to the exact sum computed in int64, and different from the saturated one.
BOOST_AUTO_TEST_CASE(the_avx2_path_does_not_saturate_where_vpmaddubsw_would) {
  if (fastest_kernel_path() != KernelPath::Avx2) return;
  for (const auto& [w_value, w_zero_point] : {std::pair{-128, 127}, std::pair{127, -128}, std::pair{-128, 0}}) {
    const int64_t k = 33, n = 17;
    DynamicLinearWeights w{n, k, std::vector<int32_t>(n * k, w_value), std::vector<float>(n, 1.0f),
                           std::vector<int32_t>(n, w_zero_point), {}};
    pack_weights(w);
    const std::vector<int32_t> x(3 * k, 255);
    const DynamicLinearActivation exact{x.data(), 3, 1.0f, 0};
    const int64_t expected = int64_t{255} * (w_value - w_zero_point) * k;
    for (int32_t acc : dynamic_linear_accumulators(exact, w, KernelPath::Avx2))
      BOOST_TEST(acc == expected, "w=" << w_value << " w_zp=" << w_zero_point);
    if (w_zero_point == 0) {  // the engine-emulating saturating accumulation differs there
      const DynamicLinearActivation saturating{x.data(), 3, 1.0f, 0, Accumulation::PairwiseInt16Saturation};
      const auto saturated = dynamic_linear_accumulators(saturating, w, KernelPath::Portable);
      BOOST_TEST(saturated[0] == -32768 * (k / 2) + 255 * -128);
      BOOST_TEST(saturated[0] != expected);
    }
  }
}
