// The recurrent cells on float. The operations and their order are rnn_runner.h's template
// (the specification, which the error-bound type of the oracles also follows); only sigmoid
// and tanh are evaluated differently, in one of two forms (CellGates, rnn_runner.h).
//
// CellGates::Aten, as ATen's CPU kernels evaluate them (aten/src/ATen/cpu/vec/vec256/
// vec256_float.h on AVX2):
//
//   sigmoid(z) = 1 / ((exp(0 - z)) + 1)   exp: Sleef_expf8_u10 (1 ulp), then two roundings
//   tanh(z)    = Sleef_tanhf8_u10(z)                                      (1 ulp)
//
// and, as ATen's vectorised loop does, 16 elements at a time (two vectors) with the
// remainder of each row through the scalar forms (rnn_sigmoid, rnn_tanh: the C library's).
// Each result is within 2 ulp of the exact function either way (the tolerance table's
// allowance, tested in test_kernels); without AVX2 every element takes the scalar form.
//
// CellGates::Fast (the integer implementation), every element eight at a time (the LSTM
// cell in one pass per row, fast_lstm_row; sixteen at a time on AVX-512 hosts,
// rnn_gates_avx512.cc; the same floats either way):
//
//   sigmoid(z) = 1 / ((exp(0 - z)) + 1)   exp: glibc's libmvec expf, 8 lanes
//   tanh(z)    = Eigen's vectorised tanh (a 13/6 rational function, clamped at +-7.9988)
//
// measured over every float within 2.27 and 2.45 eps |f(z)| (+ one smallest normal). Without
// AVX2 and FMA the fast form is ATen's.
#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "core/cpu.h"
#include "core/float/rnn_gates_avx512.h"
#include "core/float/rnn_runner.h"

#if defined(__AVX2__)
#include <immintrin.h>
#include <sleef.h>

// expf on eight lanes from glibc's libmvec, under its x86-64 vector function ABI name (what
// GCC calls for a vectorised expf; math.h declares it only under -ffast-math).
extern "C" __m256 _ZGVdN8v_expf(__m256);
#endif

namespace qconform {
namespace {

enum class Gate { Sigmoid, Tanh };

#if defined(__AVX2__) && defined(__FMA__)
using Eight = Eigen::Array<float, 8, 1>;

// out[j] = f(z[j]) for j < n, where f maps eight values at once: n / 8 blocks in place, the
// last n % 8 values padded to eight.
template <typename EightAtOnce>
void eight_at_a_time(const float* z, int64_t n, float* out, EightAtOnce f) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) f(z + j, out + j);
  if (j == n) return;
  Eight in = Eight::Zero(), result;
  std::copy(z + j, z + n, in.data());
  f(in.data(), result.data());
  std::copy(result.data(), result.data() + (n - j), out + j);
}

// CellGates::Fast. Eigen's tanh through fixed-size maps: always one packet (a dynamic-size
// expression evaluates the elements before its first aligned address with Eigen's scalar
// form, which rounds differently). Only on AVX2 with FMA, the build whose error was
// measured: without FMA Eigen evaluates another variant (3 eps off at 6.04), so there the
// fast form is ATen's.
void fast_gate(Gate gate, const float* z, int64_t n, float* out) {
  if (gate == Gate::Tanh)
    return eight_at_a_time(z, n, out, [](const float* in, float* result) {
      Eigen::Map<Eight> lanes(result);
      lanes = Eigen::Map<const Eight>(in).tanh();
    });
  eight_at_a_time(z, n, out, [](const float* in, float* result) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_loadu_ps(in)));
    _mm256_storeu_ps(result, _mm256_div_ps(one, _mm256_add_ps(e, one)));
  });
}

// The LSTM cell on one row in CellGates::Fast: rnn_runner.h's operations in its order, eight
// hidden units at a time in one pass (the row-wise passes below took 16 % of the integer
// LSTM's time). Each lane is the same float operations as those passes, with the same
// sigmoid and tanh (the fast form's libmvec expf, and Eigen's packet tanh, which its array
// tanh evaluates), so the same floats; a row's last H % 8 units are read and written under a
// lane mask, as the fast form pads them.
template <bool Whole>
inline void fast_lstm_eight(const float* a, const float* b, int64_t H, int64_t j, __m256i lanes, float* h, float* c) {
  const auto load = [&](const float* p) {
    if constexpr (Whole) return _mm256_loadu_ps(p);
    else return _mm256_maskload_ps(p, lanes);
  };
  const auto store = [&](float* p, __m256 v) {
    if constexpr (Whole) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, lanes, v);
  };
  const __m256 one = _mm256_set1_ps(1.0f);
  const auto sigmoid = [&](__m256 z) {
    return _mm256_div_ps(one, _mm256_add_ps(_ZGVdN8v_expf(_mm256_sub_ps(_mm256_setzero_ps(), z)), one));
  };
  const auto gate = [&](int64_t g) { return _mm256_add_ps(load(b + g * H + j), load(a + g * H + j)); };
  // Gate order i, f, g, o: sigmoid, sigmoid, tanh, sigmoid.
  const __m256 in_gate = sigmoid(gate(0)), forget_gate = sigmoid(gate(1));
  const __m256 cell_gate = Eigen::internal::ptanh(gate(2)), out_gate = sigmoid(gate(3));
  const __m256 forget_part = _mm256_mul_ps(forget_gate, load(c + j));
  const __m256 cell = _mm256_add_ps(forget_part, _mm256_mul_ps(in_gate, cell_gate));
  store(c + j, cell);
  store(h + j, _mm256_mul_ps(out_gate, Eigen::internal::ptanh(cell)));
}

void fast_lstm_row(const float* a, const float* b, int64_t H, float* h, float* c) {
  int64_t j = 0;
  for (; j + 8 <= H; j += 8) fast_lstm_eight<true>(a, b, H, j, __m256i{}, h, c);
  if (j == H) return;
  const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(H - j)),
                                           _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  fast_lstm_eight<false>(a, b, H, j, lanes, h, c);
}
#endif

// out[j] = f(z[j]) for j < n.
void apply_gate(Gate gate, const float* z, int64_t n, float* out, CellGates form = CellGates::Aten) {
#if defined(__AVX2__) && defined(__FMA__)
  if (form == CellGates::Fast) return fast_gate(gate, z, n, out);
#else
  (void)form;
#endif
  int64_t j = 0;
#if defined(__AVX2__)
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  const auto vector = [&](__m256 v) {
    if (gate == Gate::Tanh) return Sleef_tanhf8_u10(v);
    return _mm256_div_ps(one, _mm256_add_ps(Sleef_expf8_u10(_mm256_sub_ps(zero, v)), one));
  };
  for (; j + 16 <= n; j += 16) {
    _mm256_storeu_ps(out + j, vector(_mm256_loadu_ps(z + j)));
    _mm256_storeu_ps(out + j + 8, vector(_mm256_loadu_ps(z + j + 8)));
  }
#endif
  for (; j < n; ++j) out[j] = gate == Gate::Tanh ? rnn_tanh(z[j]) : rnn_sigmoid(z[j]);
}

// The per-thread gate buffer: grows once, so the time loops allocate nothing after the
// first step.
float* gate_scratch(int64_t n) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < static_cast<size_t>(n)) scratch.resize(n);
  return scratch.data();
}

}  // namespace

void rnn_sigmoid_n(const float* z, int64_t n, float* out, CellGates gates) {
  apply_gate(Gate::Sigmoid, z, n, out, gates);
}
void rnn_tanh_n(const float* z, int64_t n, float* out, CellGates gates) {
  apply_gate(Gate::Tanh, z, n, out, gates);
}

void rnn_cell_step(const RnnOptions& o, int64_t rows, const float* gi, const float* gh, float* h, float* c,
                   CellGates gates) {
  // The element-wise steps on Eigen arrays: 8 lanes, each lane the same IEEE operations as
  // the scalar statement (GCC 12 at -O2 leaves these loops scalar; Eigen does not fuse
  // products and sums into FMA in array expressions, and -ffp-contract=off keeps GCC from it).
  using Array = Eigen::Map<Eigen::ArrayXf>;
  using ConstArray = Eigen::Map<const Eigen::ArrayXf>;
  const int64_t H = o.hidden_size, G = o.gate_size();
  float* z = gate_scratch(2 * G);
  float* g = z + G;
  for (int64_t r = 0; r < rows; ++r) {
    const float* a = gi + r * G;
    const float* b = gh + r * G;
    float* hr = h + r * H;
    switch (o.mode) {
      case RnnMode::RNN:
        Array(z, H) = ConstArray(b, H) + ConstArray(a, H);
        if (o.nonlinearity == "relu")
          for (int64_t j = 0; j < H; ++j) hr[j] = rnn_relu(z[j]);
        else
          apply_gate(Gate::Tanh, z, H, hr, gates);
        break;
      case RnnMode::LSTM: {
        float* cr = c + r * H;
#if defined(__AVX2__) && defined(__FMA__)
        if (gates == CellGates::Fast) {
          if (avx512_float_allowed()) fast_lstm_row_avx512(a, b, H, hr, cr);
          else fast_lstm_row(a, b, H, hr, cr);
          break;
        }
#endif
        Array(z, G) = ConstArray(b, G) + ConstArray(a, G);
        // Gate order i, f, g, o: sigmoid, sigmoid, tanh, sigmoid.
        apply_gate(Gate::Sigmoid, z, 2 * H, g, gates);
        apply_gate(Gate::Tanh, z + 2 * H, H, g + 2 * H, gates);
        apply_gate(Gate::Sigmoid, z + 3 * H, H, g + 3 * H, gates);
        const ConstArray in_gate(g, H), forget_gate(g + H, H), cell_gate(g + 2 * H, H), out_gate(g + 3 * H, H);
        Array c_row(cr, H);
        c_row = forget_gate * c_row + in_gate * cell_gate;  // forget_part + input_part
        apply_gate(Gate::Tanh, cr, H, z, gates);            // z is free again: tanh(c')
        Array(hr, H) = out_gate * ConstArray(z, H);
        break;
      }
      case RnnMode::GRU: {
        Array(z, 2 * H) = ConstArray(b, 2 * H) + ConstArray(a, 2 * H);
        apply_gate(Gate::Sigmoid, z, 2 * H, g, gates);  // reset, update
        const ConstArray reset_gate(g, H), update_gate(g + H, H);
        Array(z, H) = ConstArray(a + 2 * H, H) + ConstArray(b + 2 * H, H) * reset_gate;
        float* new_gate = g + 2 * H;
        apply_gate(Gate::Tanh, z, H, new_gate, gates);
        const ConstArray n(new_gate, H);
        Array h_row(hr, H);
        h_row = (h_row - n) * update_gate + n;
        break;
      }
    }
  }
}

}  // namespace qconform
