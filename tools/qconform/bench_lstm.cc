// `qconform bench-lstm`: forward time of the dynamic LSTM in the harness's integer and
// reference implementations and in LibTorch's qnnpack and onednn kernels, in one process,
// for the seed's fastrnns configuration (seqLength 100, miniBatch 64, inputSize 512,
// hiddenSize 512, one layer) and for miniBatch 1. A benchmark, not a test: it prints
// medians and ratios and asserts nothing.
#include "tools/qconform/bench_lstm.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/float/rnn.h"
#include "quantized/dynamic/rnn.h"
#include "quantized/libtorch/dynamic_rnn.h"
#include "reference/rnn.h"

namespace qconform {
namespace {

struct Timed {
  std::string name;
  std::unique_ptr<Module> module;
  std::vector<double> ms;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int bench_lstm(int repetitions, int64_t seq_len, int64_t input_size, int64_t hidden_size,
               const std::vector<int64_t>& batches) {
  std::mt19937_64 rng(2024);
  RnnOptions o;
  o.mode = RnnMode::LSTM;
  o.input_size = input_size;
  o.hidden_size = hidden_size;
  // nn.LSTM's initialisation, U(-1/sqrt(H), 1/sqrt(H)).
  std::uniform_real_distribution<float> init(-1.0f / std::sqrt(float(hidden_size)), 1.0f / std::sqrt(float(hidden_size)));
  const auto tensor = [&](Shape shape) {
    Tensor t(std::move(shape));
    for (float& v : t.data) v = init(rng);
    return t;
  };
  FloatRNN float_lstm(o, {{tensor({4 * hidden_size, input_size}), tensor({4 * hidden_size, hidden_size}),
                           tensor({4 * hidden_size}), tensor({4 * hidden_size})}});
  float_lstm.qconfig = default_dynamic_qconfig();
  std::printf("dynamic LSTM forward, one layer, seqLength %ld, inputSize %ld, hiddenSize %ld; median of %d after a warm-up\n",
              long(seq_len), long(input_size), long(hidden_size), repetitions);
  for (int64_t batch : batches) {
    std::vector<Timed> runs;
    runs.push_back({"integer (qconform, onednn profile)", DynamicQuantizedRNN::from_float(float_lstm, Engine::ONEDNN), {}});
    runs.push_back({"reference (qconform, fake-quant float)", ReferenceRNN::from_float(float_lstm), {}});
    runs.push_back({"LibTorch dynamic, qnnpack", libtorch_dynamic_rnn_from_float(float_lstm, Engine::QNNPACK), {}});
    runs.push_back({"LibTorch dynamic, onednn", libtorch_dynamic_rnn_from_float(float_lstm, Engine::ONEDNN), {}});
    Tensor x(Shape{seq_len, batch, input_size});
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : x.data) v = normal(rng);
    const ModuleInput input{x, std::nullopt};
    for (auto& run : runs) (*run.module)(input);  // warm-up
    for (int r = 0; r < repetitions; ++r)
      for (auto& run : runs) {  // alternating, so drifts hit every implementation alike
        const auto start = std::chrono::steady_clock::now();
        (*run.module)(input);
        run.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      }
    // Multiply-accumulates: every step projects input and hidden state onto the 4 gates.
    const double macs = double(seq_len) * batch * 4 * hidden_size * (input_size + hidden_size);
    double best_libtorch = 1e300;
    for (auto& run : runs)
      if (run.name.rfind("LibTorch", 0) == 0) best_libtorch = std::min(best_libtorch, median(run.ms));
    std::printf("\nminiBatch %ld (%.2f GMAC per forward)\n", long(batch), macs / 1e9);
    std::printf("  %-40s %12s %10s %22s\n", "implementation", "median ms", "GMAC/s", "ratio vs best LibTorch");
    for (auto& run : runs) {
      const double m = median(run.ms);
      std::printf("  %-40s %12.2f %10.2f %22.2f\n", run.name.c_str(), m, macs / 1e9 / (m / 1e3), m / best_libtorch);
    }
  }
  return 0;
}

}  // namespace qconform
