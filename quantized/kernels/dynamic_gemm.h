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
// Five paths compute (1), and the tests hold them equal bit for bit (test_kernels):
//   portable    the loops below, the specification;
//   avx2-int16  weights prepacked once (pack_weights) as int16 (wq - w_zp) in blocks of 16
//               output channels x K pairs; activations widened to int16; vpmaddwd
//               multiplies int16 pairs into int32 exactly (|x| <= 255, |w - w_zp| <= 255:
//               nothing can saturate), then
//                 acc[n] = sum_k xq[k] (wq[n][k] - w_zp[n]) - x_zp sum_k (wq[n][k] - w_zp[n]),
//               which is (1) rearranged; each term is bounded by 65025 K like (1), so int32.
//   avx2-int8   for 7-bit activations (0 <= xq <= 127: reduce_range, which fbgemm, x86 and
//               onednn honour): weights prepacked as raw s8 wq in blocks of 16 channels x K
//               quads; vpmaddubsw sums u8 x s8 pairs into int16, which cannot saturate
//               (|2 x 127 x -128| = 32512 < 2^15), vpmaddwd by ones sums pairs of those
//               into int32, then
//                 acc[n] = sum_k xq[k] wq[n][k] - w_zp[n] (sum_k xq[k] - K x_zp) - x_zp sum_k wq[n][k],
//               (1) expanded. Half the multiply instructions' companions of avx2-int16 per
//               MAC (one broadcast and one add per 4 K instead of per 2 K) and half its weight
//               bytes. The terms are combined in wrapping int32 arithmetic: the exact result
//               fits int32 (bound above), so the wrapped sum is that result. A tile's
//               accumulators start from the two zero-point terms, and dynamic_linear runs
//               (3)-(4) on them while they are still in registers.
//   avx512-vnni and avx-vnni
//               the avx2-int8 layout and formula, with VNNI's vpdpbusd (zmm; ymm with the VEX
//               encoding) summing four u8 x s8 products into each int32 lane exactly: no int16
//               step, so 8-bit activations too (0 <= xq <= 255). The zmm tile covers four blocks
//               (64 channels) x 6 rows, the ymm one a block x 6 rows.
// Every u8 tile reads its rows through per-row pointers (one per row for dense rows; per run of
// a convolution's patch for U8Rows's segments), so the same tiles serve dynamic Linear and
// the convolution read in place.
// Where the accumulation is (1') (and the weights symmetric), avx2-int8's instructions are that
// accumulation itself: vpmaddubsw saturates each pair sum in int16 as the engine's does, and
// vpmaddwd by ones adds the pairs exactly; the tile runs on 8-bit activations then and the
// zero-point term is -x_zp sum_k wq[n][k], as in (1'). That is the saturating emulation's own
// kernel, and no VNNI path computes it (vpdpbusd does not saturate).
//
// dynamic_linear and the static kernels take, for (1), the best of avx512-vnni, avx-vnni,
// avx2-int8 (7-bit activations) and avx2-int16 that the CPU has (exact_kernel_path), and for
// (1') the saturating avx2-int8; the portable loops without AVX2 or packed weights, and in
// mutation builds. Every path gives the portable path's int32 sums (test_kernels), so the choice
// changes speed only. Work is split across kernel_threads() by output tiles (threads.h).
#include <cstdint>
#include <string>
#include <vector>

namespace qconform::kernels {

constexpr int64_t kMaxDynamicLinearK = 33025;

// The AVX2 paths' weight layouts (pack_weights).
struct PackedDynamicWeights {
  int64_t blocks = 0;                 // ceil(N / 16)
  // avx2-int16
  int64_t k_pairs = 0;                // ceil(K / 2)
  std::vector<int16_t> values;        // [block][k pair][16 channels][2] wq - w_zp, zero-padded
  std::vector<int32_t> centered_sums; // per channel: sum_k (wq[n][k] - w_zp[n]); 0 past N
  // avx2-int8
  int64_t k_quads = 0;                // ceil(K / 4)
  std::vector<int8_t> int8_values;    // [block][k quad][16 channels][4] wq, zero-padded
  std::vector<int32_t> sums;          // per channel: sum_k wq[n][k]; 0 past N
  std::vector<int32_t> zero_points;   // per channel w_zp; 0 past N
  bool has_weight_zero_points = false;
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

enum class KernelPath { Portable, Avx2Int16, Avx2Int8, AvxVnni, Avx512Vnni };
std::string to_string(KernelPath path);  // "portable", "avx2-int16", "avx2-int8", "avx-vnni", "avx512-vnni"

// The path the kernels take for exact sums (1) of 8-bit activations in this process: the
// CPU's best (Avx512Vnni, AvxVnni, else Avx2Int16, whose 7-bit activations take Avx2Int8);
// Portable without AVX2 and in mutation builds (whose defect lives in the portable loops).
// QCONFORM_KERNEL_ISA=portable|avx2|avx_vnni|avx512_vnni caps it (to time or test a smaller
// host's path here); asking for more than the CPU has is an Error (core/error.h).
KernelPath exact_kernel_path();

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
// by default the portable path, the specification. The other paths throw std::logic_error
// where they do not apply: the CPU lacks the instructions, weights not packed, (1') on any
// path but avx2-int8 (or with weight zero points), activations outside 0..127 for avx2-int8
// with (1), outside 0..255 for the VNNI paths and for avx2-int8 with (1').
std::vector<int32_t> dynamic_linear_accumulators(const DynamicLinearActivation& x,
                                                 const DynamicLinearWeights& w,
                                                 KernelPath path = KernelPath::Portable);

// (1) or (1') into acc (rows x out_features) on the fastest path that applies here (the
// static kernels' accumulators).
void fast_accumulators(const DynamicLinearActivation& x, const DynamicLinearWeights& w, int32_t* acc);

// Activations as u8 read where they lie, for callers that have them so (the convolution's
// channels-last input): row r's K is `segment_count` runs of segment_quads * 4 bytes, run s at
// segments[r * segment_count + s] (an indirection table, as XNNPACK's), the weights packed with
// K in the same order (segment_count * segment_quads == w.packed.k_quads). Only a run's first
// `segment_bytes` are activations: the weights are zero past them, so the bytes read there
// (up to 3, the next pixel's) add nothing, but must be readable. A caller with rows of its own
// passes one segment per row (segment_bytes = w.in_features).
struct U8Rows {
  const uint8_t* const* segments;
  int64_t rows;
  int64_t segment_count;
  int64_t segment_quads;
  int64_t segment_bytes;
  int32_t zero_point;
  bool seven_bit;  // every value <= 127: avx2-int8 is exact on them (hosts without VNNI)
  // (1') instead of (1): the engines' saturating int16 pair sums (a pair being bytes 2p and
  // 2p + 1 of a run), on the avx2-int8 tile whatever the host's best path, 8-bit values, for
  // symmetric weights only. The zero-point term is -x_zp sum_k wq[n][k] over every K.
  Accumulation accumulation = Accumulation::Exact;
};
// (1) into acc (rows x out_features) on the best exact u8 path here (avx512-vnni, avx-vnni,
// avx2-int8 for seven_bit rows); false where none applies (8-bit rows on a host without VNNI,
// no AVX2, unpacked weights, a mutation build): the caller then takes fast_accumulators.
bool u8_accumulators(const U8Rows& x, const DynamicLinearWeights& w, int32_t* acc);
// Whether u8_accumulators would run here on packed weights (to skip building the rows).
bool u8_rows_supported(bool seven_bit);
// The same for rows with (1'): wherever the avx2-int8 tile runs (AVX2, not capped to portable,
// not a mutation build); the weights must also be symmetric.
bool u8_pair_rows_supported();
// dynamic_linear on u8 rows (one segment per row: the dynamic modules' activations quantized
// straight to bytes, x_scale their scale): the same floats as dynamic_linear on the same
// integers; false where u8_accumulators would decline.
bool dynamic_linear_u8(const U8Rows& x, float x_scale, const DynamicLinearWeights& w, const float* bias, bool relu,
                       float* y);

// The machine's int8 multiply-accumulate ceiling, in GMAC/s on the calling thread, from the
// best exact u8 x s8 -> int32 step of exact_kernel_path() in independent register chains, no
// memory traffic, for about `seconds` (per instruction tried): VNNI's vpdpbusd on zmm
// (AVX512_VNNI) or ymm (AVX-VNNI) where the path has them, else AVX2's vpmaddubsw, vpmaddwd
// by ones and vpaddd. That is the host's best unless QCONFORM_KERNEL_ISA caps the path, and
// then the capped ISA's (QCONFORM_KERNEL_ISA=avx2 on a VNNI host measures what a host without
// VNNI would offer its kernels, at this host's clock). No kernel on that path that
// accumulates exactly in int32 can beat it; the benchmark reports the integer
// implementation's share of it. {0, ""} on the portable path (no AVX2, or capped to portable).
//
// With threads > 1: the sum over that many kernel threads running the chains at once, what
// the host gives them now (a VM may hold a virtual core back, or place two on one physical
// core's hyper-threads, where they share the multipliers). Builds without OpenMP measure
// one thread, as their kernels run on one.
struct Int8Ceiling {
  double gmacs = 0;
  std::string isa;  // "avx512_vnni (vpdpbusd zmm)", "avx_vnni (vpdpbusd ymm)", "avx2 (vpmaddubsw ymm)"
};
Int8Ceiling measure_int8_mac_ceiling(double seconds = 0.2, int threads = 1);

}  // namespace qconform::kernels
