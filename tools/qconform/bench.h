#pragma once
// `qconform bench`: forward time of the dynamic modules in the harness's integer and
// reference implementations, a plain Eigen float baseline and LibTorch's qnnpack and onednn
// kernels, in one process, modelled on the seed's fastrnns factory. A benchmark, not a test:
// it prints medians, GMAC/s and ratios (and writes them as JSON) and asserts nothing.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qconform {

struct BenchOptions {
  // lstm, lstm-packed, gru, gru-packed, lstm-cell, gru-cell, linear, resnet18-conv
  std::vector<std::string> variants{"lstm", "lstm-packed", "gru", "gru-packed", "lstm-cell", "gru-cell", "linear",
                                    "resnet18-conv"};
  std::vector<int64_t> batches{64, 1};  // miniBatch
  std::vector<int> threads{1, 2};
  int64_t seq_len = 100;
  int64_t num_layers = 1;
  int64_t input_size = 512;   // Linear: in_features
  int64_t hidden_size = 512;  // Linear: out_features
  int repetitions = 5;        // timed, after one warm-up
  std::vector<std::string> implementations;  // empty: all (bench_implementation_names())
  std::optional<std::string> json_path;      // "-" for standard output
};

std::vector<std::string> bench_variant_names();
std::vector<std::string> bench_implementation_names();

// Runs the benchmark and prints its table; returns the exit status. Throws Error for an
// unknown variant or implementation.
int run_bench(const BenchOptions& options);
// `qconform bench --model DIR`: oracles/model_replay.h time_model_replay, with the target.
int run_model_bench(const std::string& directory, const BenchOptions& options);

}  // namespace qconform
