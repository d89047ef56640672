#pragma once
#include <cstdint>
#include <vector>

namespace qconform {
// Prints the forward-time table of `qconform bench-lstm`; returns the exit status.
int bench_lstm(int repetitions, int64_t seq_len, int64_t input_size, int64_t hidden_size,
               const std::vector<int64_t>& batches);
}  // namespace qconform
