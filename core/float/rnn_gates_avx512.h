#pragma once
// The AVX-512 form of the integer LSTM's cell row (rnn_gates_avx512.cc); call only where
// avx512_float_allowed() (core/cpu.h).
#include <cstdint>

namespace qconform {

// One row of the LSTM cell in CellGates::Fast: a, b the row's input and hidden projections
// (4 H gate values each), h and c its state, updated.
void fast_lstm_row_avx512(const float* a, const float* b, int64_t H, float* h, float* c);

}  // namespace qconform
