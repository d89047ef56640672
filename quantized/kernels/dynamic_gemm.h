#pragma once
// The integer kernel of dynamic Linear: u8 activations x s8 weights -> int32 -> float.
//
// Notation (gemmlowp's): real = scale * (q - zero_point). For output channel n and one
// row of input,
//
//   acc[n] = sum_k (xq[k] - x_zp) * (wq[n][k] - w_zp[n])                  int32, exact  (1)
//   m[n]   = float(w_scale[n]) * float(x_scale)                            one rounding  (2)
//   y[n]   = float(acc[n]) * m[n] + bias[n]                   two roundings, no FMA     (3)
//   y[n]   = max(y[n], 0)                                        LinearReLU only        (4)
//
// This is qnnpack's dequantizing GEMM (q8gemm_dq) exactly and fbgemm's ReQuantizeForFloat
// up to the order of (2)'s product.
//
// Engines that multiply with AVX2's vpmaddubsw (onednn here, without VNNI) compute (1)
// differently: raw u8 x s8 products of adjacent K pairs are summed into int16 with
// saturation, and the activation zero point is compensated afterwards:
//
//   acc[n] = sum_p sat16(xq[2p] wq[n][2p] + xq[2p+1] wq[n][2p+1]) - x_zp sum_k wq[n][k]   (1')
//
// (weights are symmetric there, w_zp = 0). With 7-bit activations 2 * 127 * 128 < 2^15 and
// (1') equals (1); with 8-bit activations a pair can reach 2 * 255 * 128 and saturate.
// (1') was measured against LibTorch's onednn kernels (docs/numerics.md). Accumulator bound: |xq - x_zp| <= 255 and
// |wq - w_zp| <= 255, so |acc| <= 65025 K, which fits int32 for K <= 33025; larger K is
// rejected rather than allowed to wrap.
//
// Two paths compute (1), and the tests hold them equal bit for bit (test_kernels):
//   portable  the loops below, the specification;
//   avx2      the weights prepacked once (pack_weights) as int16 (wq - w_zp) in blocks of 16
//             output channels x K pairs; activations widened to int16; vpmaddwd multiplies
//             int16 pairs into int32 exactly (|x| <= 255, |w - w_zp| <= 255: no int16
//             saturation is possible, unlike vpmaddubsw's u8 x s8 pairs), then
//               acc[n] = sum_k xq[k] (wq[n][k] - w_zp[n]) - x_zp sum_k (wq[n][k] - w_zp[n]),
//             which is (1) rearranged; each term is bounded by 65025 K like (1), so int32.
// (1') has only the portable path: only a version-1 module on onednn asks for it.
#include <cstdint>
#include <vector>

namespace qconform::kernels {

constexpr int64_t kMaxDynamicLinearK = 33025;

// The AVX2 path's weight layout (pack_weights).
struct PackedDynamicWeights {
  int64_t k_pairs = 0;                // ceil(K / 2)
  int64_t blocks = 0;                 // ceil(N / 16)
  std::vector<int16_t> values;        // [block][k pair][16 channels][2], zero-padded
  std::vector<int32_t> centered_sums; // per channel: sum_k (wq[n][k] - w_zp[n])
};

struct DynamicLinearWeights {
  int64_t out_features = 0;
  int64_t in_features = 0;
  std::vector<int32_t> values;        // wq, row-major (out, in)
  std::vector<float> scales;          // per output channel (repeated when per-tensor)
  std::vector<int32_t> zero_points;   // per output channel
  PackedDynamicWeights packed;        // empty until pack_weights; then the AVX2 path may run
};

// Prepares `packed` from values and zero_points, once per module (as engines prepack).
void pack_weights(DynamicLinearWeights& w);

enum class KernelPath { Portable, Avx2 };
// The path dynamic_linear takes: AVX2 when the CPU has it (and the build is not a mutation
// build, whose defect lives in the portable loops).
KernelPath fastest_kernel_path();

enum class Accumulation {
  Exact,                    // (1)
  PairwiseInt16Saturation,  // (1')
};

struct DynamicLinearActivation {
  const int32_t* values;  // xq, row-major (rows, in)
  int64_t rows;
  float scale;
  int32_t zero_point;
  Accumulation accumulation = Accumulation::Exact;
};

// Writes rows x out_features floats to y; bias may be null. Steps (1)-(4) above.
void dynamic_linear(const DynamicLinearActivation& x, const DynamicLinearWeights& w,
                    const float* bias, bool relu, float* y);

// The raw int32 accumulators (1), for oracles that compare integers before the epilogue;
// by default the portable path, the specification.
std::vector<int32_t> dynamic_linear_accumulators(const DynamicLinearActivation& x,
                                                 const DynamicLinearWeights& w,
                                                 KernelPath path = KernelPath::Portable);

}  // namespace qconform::kernels
