// The integer LSTM's cell (CellGates::Fast) sixteen hidden units at a time, for hosts with
// AVX-512 (rnn_gates.cc calls it only there). The only file built with -mavx512f -mavx512dq,
// so that Eigen evaluates its tanh on Packet16f. Nothing here is inline code that other files
// also instantiate (no standard-library templates, only Packet16f functions of Eigen, the
// function below), so the linker can never give an AVX2 host one of its AVX-512 copies.
//
// The same floats as the eight-lane row (rnn_gates.cc, fast_lstm_row): each lane is the same
// IEEE operations; Eigen's tanh is one generic rational function on either packet; and glibc's
// 16-lane expf (_ZGVeN16v_expf) gave its 8-lane expf's bits for every float (glibc 2.36,
// compared over all 2^32 inputs on the Intel Xeon of 2026-12-07). test_kernels holds the row to
// the fast form's passes bit for bit.
//
// GCC 12 warns that _mm512_min_ps / _mm512_max_ps (Eigen's pmin, pmax) read an uninitialised
// vector: their headers pass _mm512_undefined_ps() as the unused merge source (a known false
// positive, silenced in dynamic_gemm.cc too). Silenced for the whole file: Eigen's tanh is
// instantiated at its end.
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <Eigen/Core>
#include <immintrin.h>

#include <cstdint>

#include "core/float/rnn_gates_avx512.h"

// expf on sixteen lanes from glibc's libmvec (x86-64 vector function ABI name, AVX-512).
extern "C" __m512 _ZGVeN16v_expf(__m512);

namespace qconform {
namespace {

template <bool Whole>
inline void fast_lstm_sixteen(const float* a, const float* b, int64_t H, int64_t j, __mmask16 lanes, float* h,
                              float* c) {
  const auto load = [&](const float* p) {
    if constexpr (Whole) return _mm512_loadu_ps(p);
    else return _mm512_maskz_loadu_ps(lanes, p);
  };
  const auto store = [&](float* p, __m512 v) {
    if constexpr (Whole) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, lanes, v);
  };
  const __m512 one = _mm512_set1_ps(1.0f);
  const auto sigmoid = [&](__m512 z) {
    return _mm512_div_ps(one, _mm512_add_ps(_ZGVeN16v_expf(_mm512_sub_ps(_mm512_setzero_ps(), z)), one));
  };
  const auto gate = [&](int64_t g) { return _mm512_add_ps(load(b + g * H + j), load(a + g * H + j)); };
  // Gate order i, f, g, o: sigmoid, sigmoid, tanh, sigmoid.
  const __m512 in_gate = sigmoid(gate(0)), forget_gate = sigmoid(gate(1));
  const __m512 cell_gate = Eigen::internal::ptanh(gate(2)), out_gate = sigmoid(gate(3));
  const __m512 forget_part = _mm512_mul_ps(forget_gate, load(c + j));
  const __m512 cell = _mm512_add_ps(forget_part, _mm512_mul_ps(in_gate, cell_gate));
  store(c + j, cell);
  store(h + j, _mm512_mul_ps(out_gate, Eigen::internal::ptanh(cell)));
}

}  // namespace

void fast_lstm_row_avx512(const float* a, const float* b, int64_t H, float* h, float* c) {
  int64_t j = 0;
  for (; j + 16 <= H; j += 16) fast_lstm_sixteen<true>(a, b, H, j, 0, h, c);
  if (j < H) fast_lstm_sixteen<false>(a, b, H, j, static_cast<__mmask16>((1u << (H - j)) - 1), h, c);
}

}  // namespace qconform
