#pragma once
// The recurrence of every recurrent module, written once, as ATen's RNN.cpp runs it on
// the CPU (FullLayer / PackedLayer / ReversedPackedLayer and the three cells):
//
//   for each layer l, for each direction d (index p = l * directions + d):
//     G = project_input(p, layer input, all rows)      one call for all time steps
//     forward:  t = 0 .. T-1; rows that finished (batch_sizes shrinks) keep their h as h_n
//     reverse:  t = T-1 .. 0; rows that start (batch_sizes grows) enter with their h0
//       H = project_hidden(p, h[0 : batch_sizes[t]])     one call per step
//       cell(G[rows of step t], H, h, c)
//     the layer's output, both directions side by side, is the next layer's input
//
// An unpacked (T, B) input is the packed case with batch_sizes = {B, ..., B}: ATen's two
// paths make the same calls on the same rows then. Cells are one step of one layer.
//
// The cells (ATen's operation order, which fixes the float rounding):
//   RNN:  h' = act(H + G)
//   LSTM: z = H + G; i, f, o = sigmoid(z_i, z_f, z_o); g = tanh(z_g)
//         c' = f * c + i * g;  h' = o * tanh(c')
//   GRU:  r = sigmoid(H_r + G_r); u = sigmoid(H_z + G_z); n = tanh(G_n + H_n * r)
//         h' = (h - n) * u + n
//
// Templated on the element type: float for the implementations, and an error-bound type
// for the oracles (oracles/recurrent_bounds.cc), which thereby follow exactly the same
// calls. T needs +, -, * and rnn_sigmoid, rnn_tanh, rnn_relu found by overloading.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <vector>

#include <boost/align/aligned_allocator.hpp>

#include "core/float/rnn.h"

namespace qconform {

inline float rnn_sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }  // ATen's scalar form
inline float rnn_tanh(float x) { return std::tanh(x); }
inline float rnn_relu(float x) { return x > 0.0f ? x : (x == x ? 0.0f : x); }  // NaN stays NaN

// How the float cells evaluate sigmoid and tanh (core/float/rnn_gates.cc has the forms):
//   Aten  as ATen's vectorised loop (Sleef's u10 exp and tanh, the C library's for each
//         row's remainder): the reference, and the recurrence around LibTorch's own
//         projections (quantized/libtorch/dynamic_rnn.cc). Within 2 eps |f(z)|.
//   Fast  libmvec's expf for sigmoid and Eigen's tanh, eight lanes for every element (the
//         LSTM cell sixteen on AVX-512 hosts, the same floats: rnn_gates_avx512.cc): the
//         integer implementation (issue 9). Measured per element: sigmoid 0.87 vs 1.17 ns,
//         tanh 0.35-0.46 vs Sleef u35's 1.06-1.31 (ATen's u10: 2.5). Measured over every
//         float: within 2.27 eps |sigmoid(z)| and 2.45 eps |tanh(z)|, inside the 2.45 per
//         side that the tolerance rows with an integer side allow.
enum class CellGates { Aten, Fast };

// Buffers on 64-byte cache lines. The GEMM tiles store a row's 16 floats (one line) at a
// time; in a buffer that is only 16-byte aligned (what malloc gives) every such store
// straddles two lines. Measured on the integer LSTM's gate buffers: 3-5 % of its time.
template <typename T>
using CacheAlignedVector = std::vector<T, boost::alignment::aligned_allocator<T, 64>>;

template <typename T>
struct RnnRun {
  std::vector<T> output;     // rows x (directions * hidden)
  std::vector<T> h_n, c_n;   // (parameter_sets, batch, hidden)
};

// One cell step on `rows` rows. gi, gh: rows x gate_size; h, c: rows x hidden (updated).
// CellGates concerns float only: the error-bound type allows each side's gates their ulps.
template <typename T>
void rnn_cell_step(const RnnOptions& o, int64_t rows, const T* gi, const T* gh, T* h, T* c, CellGates = CellGates::Aten) {
  const int64_t H = o.hidden_size, G = o.gate_size();
  for (int64_t r = 0; r < rows; ++r) {
    const T* a = gi + r * G;
    const T* b = gh + r * G;
    T* hr = h + r * H;
    switch (o.mode) {
      case RnnMode::RNN: {
        const bool relu = o.nonlinearity == "relu";
        for (int64_t j = 0; j < H; ++j) hr[j] = relu ? rnn_relu(b[j] + a[j]) : rnn_tanh(b[j] + a[j]);
        break;
      }
      case RnnMode::LSTM: {
        T* cr = c + r * H;
        for (int64_t j = 0; j < H; ++j) {
          const T in_gate = rnn_sigmoid(b[j] + a[j]);
          const T forget_gate = rnn_sigmoid(b[H + j] + a[H + j]);
          const T cell_gate = rnn_tanh(b[2 * H + j] + a[2 * H + j]);
          const T out_gate = rnn_sigmoid(b[3 * H + j] + a[3 * H + j]);
          const T forget_part = forget_gate * cr[j];
          const T input_part = in_gate * cell_gate;
          cr[j] = forget_part + input_part;
          hr[j] = out_gate * rnn_tanh(cr[j]);
        }
        break;
      }
      case RnnMode::GRU: {
        for (int64_t j = 0; j < H; ++j) {
          const T reset_gate = rnn_sigmoid(b[j] + a[j]);
          const T update_gate = rnn_sigmoid(b[H + j] + a[H + j]);
          const T new_gate = rnn_tanh(a[2 * H + j] + b[2 * H + j] * reset_gate);
          hr[j] = (hr[j] - new_gate) * update_gate + new_gate;
        }
        break;
      }
    }
  }
}

// The same step on float (core/float/rnn_gates.cc): the operations above, with sigmoid and
// tanh vectorised in the form `gates` names. Overload resolution picks it for float.
void rnn_cell_step(const RnnOptions& o, int64_t rows, const float* gi, const float* gh, float* h, float* c,
                   CellGates gates = CellGates::Aten);
// sigmoid and tanh of z[0, n) as that step evaluates them.
void rnn_sigmoid_n(const float* z, int64_t n, float* out, CellGates gates = CellGates::Aten);
void rnn_tanh_n(const float* z, int64_t n, float* out, CellGates gates = CellGates::Aten);

// Projections must provide
//   void project_input(int64_t set, const T* x, int64_t rows, int64_t in, T* out);
//   void project_hidden(int64_t set, const T* h, int64_t rows, T* out);
// writing rows x gate_size (bias included), and may provide
//   void split_rows(int64_t rows, int64_t row_cost, const std::function<void(int64_t, int64_t)>& cell)
// to run the cell step's rows in parts, cell(first, end) for each (on threads of its own: the
// integer implementation's kernel threads). The cell computes each row from that row alone,
// so any split gives the same bits.
template <typename P, typename = void>
struct SplitsRows : std::false_type {};
template <typename P>
struct SplitsRows<P, std::void_t<decltype(&P::split_rows)>> : std::true_type {};
// and may project the input a few steps at a time instead, just before the cells read it:
//   void prepare_input(int64_t set, const T* x, int64_t rows, int64_t in);   once per layer
//   void project_input_rows(int64_t set, int64_t first_row, int64_t rows, T* out);
// giving for those rows exactly what project_input gives for them (the integer
// implementation quantizes all rows at once in prepare_input, as project_input would).
template <typename P, typename = void>
struct ProjectsInputInParts : std::false_type {};
template <typename P>
struct ProjectsInputInParts<P, std::void_t<decltype(&P::prepare_input), decltype(&P::project_input_rows)>>
    : std::true_type {};

template <typename T, typename Projections>
RnnRun<T> run_rnn(const RnnOptions& o, Projections& projections, const T* data, int64_t rows,
                  const std::vector<int64_t>& batch_sizes, const std::vector<T>& h0,
                  const std::vector<T>& c0, CellGates cell_gates = CellGates::Aten) {
  const int64_t H = o.hidden_size, G = o.gate_size(), D = o.directions();
  const int64_t steps = static_cast<int64_t>(batch_sizes.size());
  const int64_t batch = steps ? batch_sizes[0] : 0;
  const bool lstm = o.mode == RnnMode::LSTM;
  std::vector<int64_t> offsets(steps + 1, 0);
  for (int64_t t = 0; t < steps; ++t) offsets[t + 1] = offsets[t] + batch_sizes[t];

  RnnRun<T> run;
  run.h_n.resize(o.parameter_sets() * batch * H);
  if (lstm) run.c_n.resize(o.parameter_sets() * batch * H);
  std::vector<T> layer_output_storage;  // the previous layer's output, once there is one
  const T* layer_input = data;
  // The input projections of all steps (rows x gate_size: 52 MB at fastrnns' size) go to a
  // per-thread buffer that only grows: a fresh allocation that large is mapped and zeroed by
  // the kernel on every forward (measured: ~8% of the integer LSTM's time).
  constexpr bool in_parts = ProjectsInputInParts<Projections>::value;
  // In parts: the steps of about 64 rows at a time (a 512 KB part at fastrnns' size, which
  // stays in L2 from the GEMM to the cells; measured on a Zen 4 host against 128-1024 rows and
  // all rows at once, docs/benchmarks.md), all rows at once otherwise.
  int64_t part_steps = steps;
  if (in_parts) part_steps = batch > 0 ? std::max<int64_t>(1, 64 / batch) : 1;
  const int64_t part_rows = in_parts ? std::min<int64_t>(rows, part_steps * batch) : rows;
  thread_local CacheAlignedVector<T> gi_buffer;
  if (gi_buffer.size() < static_cast<size_t>(part_rows * G)) gi_buffer.resize(part_rows * G);
  T* const gi = gi_buffer.data();
  CacheAlignedVector<T> gh(batch * G);
  std::vector<T> h(batch * H), c(lstm ? batch * H : 0);
  int64_t in = o.input_size;
  for (int64_t layer = 0; layer < o.num_layers; ++layer) {
    // One direction fills the output in step order, so its rows are appended (no 13 MB
    // zero-fill at fastrnns' size before they are overwritten); two interleave per row.
    std::vector<T> layer_output;
    if (D == 1) layer_output.reserve(rows * H); else layer_output.resize(rows * D * H);
    for (int64_t d = 0; d < D; ++d) {
      const int64_t set = layer * D + d;
      // The part of the projection in gi: steps [part_first, part_end), from row offsets[part_first].
      int64_t part_first = 0, part_end = steps;
      if constexpr (in_parts) {
        projections.prepare_input(set, layer_input, rows, in);
        part_first = part_end = 0;
      } else {
        projections.project_input(set, layer_input, rows, in, gi);
      }
      const auto input_projection_of = [&](int64_t t) -> const T* {
        if constexpr (in_parts) {
          if (t < part_first || t >= part_end) {
            // The next part in the direction of travel: forward t .. t + n - 1, reverse t - n + 1 .. t.
            part_first = d == 0 ? t : std::max<int64_t>(0, t - part_steps + 1);
            part_end = d == 0 ? std::min(steps, t + part_steps) : t + 1;
            projections.project_input_rows(set, offsets[part_first], offsets[part_end] - offsets[part_first], gi);
          }
        }
        return gi + (offsets[t] - offsets[part_first]) * G;
      };
      std::copy(h0.begin() + set * batch * H, h0.begin() + (set + 1) * batch * H, h.begin());
      if (lstm) std::copy(c0.begin() + set * batch * H, c0.begin() + (set + 1) * batch * H, c.begin());
      T* h_final = run.h_n.data() + set * batch * H;
      T* c_final = lstm ? run.c_n.data() + set * batch * H : nullptr;
      const auto step = [&](int64_t t) {
        const int64_t active = batch_sizes[t];
        projections.project_hidden(set, h.data(), active, gh.data());
        const T* gi_t = input_projection_of(t);
        const auto cell = [&](int64_t first, int64_t end) {
          rnn_cell_step(o, end - first, gi_t + first * G, gh.data() + first * G, h.data() + first * H,
                        lstm ? c.data() + first * H : nullptr, cell_gates);
        };
        if constexpr (SplitsRows<Projections>::value) projections.split_rows(active, G, cell);
        else cell(0, active);
        if (D == 1) {  // appended at offsets[t] * H: steps run in order, t = 0 .. T-1
          layer_output.insert(layer_output.end(), h.begin(), h.begin() + active * H);
        } else {
          for (int64_t r = 0; r < active; ++r)
            std::copy(h.begin() + r * H, h.begin() + (r + 1) * H,
                      layer_output.begin() + (offsets[t] + r) * D * H + d * H);
        }
      };
      if (d == 0) {
        int64_t active = batch;
        for (int64_t t = 0; t < steps; ++t) {
          if (batch_sizes[t] < active) {  // sequences that ended keep their last state
            std::copy(h.begin() + batch_sizes[t] * H, h.begin() + active * H, h_final + batch_sizes[t] * H);
            if (lstm) std::copy(c.begin() + batch_sizes[t] * H, c.begin() + active * H, c_final + batch_sizes[t] * H);
            active = batch_sizes[t];
          }
          step(t);
        }
        std::copy(h.begin(), h.begin() + active * H, h_final);
        if (lstm) std::copy(c.begin(), c.begin() + active * H, c_final);
      } else {
        // Rows beyond the active ones still hold their h0 when their sequence starts.
        for (int64_t t = steps - 1; t >= 0; --t) step(t);
        std::copy(h.begin(), h.begin() + batch * H, h_final);
        if (lstm) std::copy(c.begin(), c.begin() + batch * H, c_final);
      }
    }
    layer_output_storage = std::move(layer_output);
    layer_input = layer_output_storage.data();
    in = D * H;
  }
  run.output = o.num_layers > 0 ? std::move(layer_output_storage) : std::vector<T>(data, data + rows * o.input_size);
  return run;
}

}  // namespace qconform
