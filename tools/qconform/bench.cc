// `qconform bench` (tools/qconform/bench.h). Cases are built through the module registry
// (the same float modules, qconfigs and conversions as the conformance suite), at sizes
// named after the seed's fastrnns factory: seqLength, numLayers, inputSize, hiddenSize,
// miniBatch. Every implementation of a case runs in this process, alternating repetition by
// repetition so that frequency or cache drifts hit all alike; the median is reported.
#include "tools/qconform/bench.h"

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/cpu.h"
#include "core/error.h"
#include "core/files.h"
#include "core/float/linear.h"
#include "core/float/rnn.h"
#include "oracles/kinds/registry.h"
#include "oracles/model_replay.h"
#include "quantized/kernels/channels_last.h"
#include "quantized/kernels/dynamic_gemm.h"
#include "quantized/kernels/threads.h"
#include "quantized/libtorch/engine.h"

namespace qconform {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Variant {
  std::string name;
  std::string kind;  // registry key
  bool packed = false;
  bool resnet18_convolutions = false;  // one case per shape below, at batch 1 (whatever --batch says)
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v{
      {"lstm", "dynamic.LSTM"},          {"lstm-packed", "dynamic.LSTM", true},
      {"gru", "dynamic.GRU"},            {"gru-packed", "dynamic.GRU", true},
      {"lstm-cell", "dynamic.LSTMCell"}, {"gru-cell", "dynamic.GRUCell"},
      {"linear", "dynamic.Linear"},      {"resnet18-conv", "static.ConvReLU2d", false, true},
  };
  return v;
}

// torchvision's ResNet18 at 224 x 224: each distinct convolution, with how often the model
// runs it (the stem, the 3x3 convolutions of the four stages, the strided 1x1 downsamples).
// Quantized as the model is on onednn: per-channel weights, activations on all 8 bits.
struct ConvShape {
  int64_t in, out, kernel, stride, padding, size;
  int count;
};
const std::vector<ConvShape>& resnet18_convolutions() {
  static const std::vector<ConvShape> shapes{
      {3, 64, 7, 2, 3, 224, 1},                                                   // conv1
      {64, 64, 3, 1, 1, 56, 4},                                                   // layer1
      {64, 128, 3, 2, 1, 56, 1},   {128, 128, 3, 1, 1, 28, 3}, {64, 128, 1, 2, 0, 56, 1},   // layer2
      {128, 256, 3, 2, 1, 28, 1},  {256, 256, 3, 1, 1, 14, 3}, {128, 256, 1, 2, 0, 28, 1},  // layer3
      {256, 512, 3, 2, 1, 14, 1},  {512, 512, 3, 1, 1, 7, 3},  {256, 512, 1, 2, 0, 14, 1},  // layer4
  };
  return shapes;
}

// The integer implementation follows the onednn profile: the targets compare it with
// LibTorch's onednn kernels, whose numerics that profile models.
constexpr Engine kIntegerProfile = Engine::ONEDNN;

struct TimedImplementation {
  std::string name;
  std::function<void()> run;
  std::vector<double> ms;  // per call
  int inner = 1;           // calls per timed repetition (short cases repeat to ~20 ms)
  bool libtorch = false;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// The plain Eigen float baseline: the float module's own weights, the recurrence written
// directly with Eigen's GEMM and its vectorised logistic/tanh; no quantization, no
// harness machinery. For rows of each time step `batch_sizes` (packed input: shrinking).
struct EigenFloatRnn {
  RnnOptions o;
  RowMajor w_ih, w_hh;
  Eigen::RowVectorXf b_ih, b_hh;
  RowMajor x;  // all rows of all steps
  std::vector<int64_t> batch_sizes;
  RowMajor h0, c0;

  void run() const {
    const int64_t H = o.hidden_size, batch = batch_sizes.empty() ? 0 : batch_sizes[0];
    RowMajor gi = x * w_ih.transpose();
    gi.rowwise() += b_ih;
    RowMajor h = h0, c = c0, out(x.rows(), H), gh(batch, o.gate_size()), z;
    int64_t offset = 0;
    for (int64_t active : batch_sizes) {
      gh.topRows(active).noalias() = h.topRows(active) * w_hh.transpose();
      gh.topRows(active).rowwise() += b_hh;
      if (o.mode == RnnMode::LSTM) {
        z = gh.topRows(active) + gi.middleRows(offset, active);
        auto i = z.leftCols(H).array().logistic();
        auto f = z.middleCols(H, H).array().logistic();
        auto g = z.middleCols(2 * H, H).array().tanh();
        auto og = z.rightCols(H).array().logistic();
        c.topRows(active).array() = f * c.topRows(active).array() + i * g;
        h.topRows(active).array() = og * c.topRows(active).array().tanh();
      } else {  // GRU
        const auto a = gi.middleRows(offset, active);
        const auto b = gh.topRows(active);
        z = (b.leftCols(2 * H) + a.leftCols(2 * H)).array().logistic().matrix();
        const RowMajor n = (a.rightCols(H).array() + b.rightCols(H).array() * z.leftCols(H).array()).tanh().matrix();
        h.topRows(active).array() = (h.topRows(active).array() - n.array()) * z.rightCols(H).array() + n.array();
      }
      out.middleRows(offset, active) = h.topRows(active);
      offset += active;
    }
    volatile float sink = out.size() ? out(0, 0) : 0.0f;
    (void)sink;
  }
};

EigenFloatRnn eigen_float_rnn(const FloatRNN& module, const ModuleInput& input) {
  const RnnOptions& o = module.options();
  if (o.num_layers != 1 || o.bidirectional)
    throw Error("the Eigen float baseline covers one unidirectional layer (--layers 1)");
  const RnnParameters& p = module.parameters().at(0);
  const auto matrix = [](const Tensor& t, int64_t rows, int64_t cols) {
    return RowMajor(Eigen::Map<const RowMajor>(t.data.data(), rows, cols));
  };
  EigenFloatRnn e;
  e.o = o;
  e.w_ih = matrix(p.w_ih, o.gate_size(), o.input_size);
  e.w_hh = matrix(p.w_hh, o.gate_size(), o.hidden_size);
  e.b_ih = matrix(*p.b_ih, 1, o.gate_size());
  e.b_hh = matrix(*p.b_hh, 1, o.gate_size());
  if (const auto* packed = std::get_if<PackedSequence>(&input.input)) {
    e.x = matrix(packed->data, packed->data.size(0), o.input_size);
    e.batch_sizes = packed->batch_sizes;
  } else {
    const Tensor& x = std::get<Tensor>(input.input);
    const int64_t steps = o.cell ? 1 : x.size(0), batch = o.cell ? x.size(0) : x.size(1);
    e.x = matrix(x, steps * batch, o.input_size);
    e.batch_sizes.assign(steps, batch);
  }
  const int64_t batch = e.batch_sizes.at(0);
  e.h0 = input.hidden ? matrix(input.hidden->h, batch, o.hidden_size) : RowMajor::Zero(batch, o.hidden_size);
  e.c0 = input.hidden && input.hidden->c ? matrix(*input.hidden->c, batch, o.hidden_size)
                                         : RowMajor::Zero(batch, o.hidden_size);
  return e;
}

struct BenchCase {
  std::string label;
  Variant variant;
  int64_t batch;
  double macs = 0;
  Case source;
  int count = 1;  // how often a ResNet18 forward runs this convolution
};

BenchCase make_bench_case(const Variant& variant, int64_t batch, const BenchOptions& options, size_t shape = 0) {
  const ModuleKind& kind = module_kind(variant.kind);
  CaseConfig config;
  config.data_seed = 20240 + batch;
  config.style = InputStyle::Normal;
  BenchCase c{"", variant, batch, 0, {}};
  const int64_t I = options.input_size, H = options.hidden_size;
  char label[160];
  if (variant.resnet18_convolutions) {
    const ConvShape& s = resnet18_convolutions().at(shape);
    // The registry's input size is the smallest the kernel allows plus extra_size.
    const int64_t smallest = std::max<int64_t>(1, s.kernel - 2 * s.padding);
    config.values = {{"batch", batch}, {"groups", 1}, {"in_per_group", s.in}, {"out_per_group", s.out},
                     {"kernel", s.kernel}, {"stride", s.stride}, {"padding", s.padding}, {"dilation", 1},
                     {"extra_size", s.size - smallest}, {"bias", 1}, {"full_range", 1}, {"per_channel", 1}};
    const int64_t out_size = (s.size + 2 * s.padding - s.kernel) / s.stride + 1;
    c.macs = double(batch) * s.out * out_size * out_size * s.in * s.kernel * s.kernel;
    c.count = s.count;
    std::snprintf(label, sizeof label, "ConvReLU2d %ld->%ld k%ld s%ld %ldx%ld B=%ld (x%d in ResNet18)", long(s.in),
                  long(s.out), long(s.kernel), long(s.stride), long(s.size), long(s.size), long(batch), s.count);
  } else if (variant.kind == "dynamic.Linear") {
    config.values = {{"batch", batch}, {"in_features", I}, {"out_features", H}, {"bias", 1},
                     {"per_channel", 0}, {"leading_dim", 1}};
    c.macs = double(batch) * I * H;
    std::snprintf(label, sizeof label, "Linear B=%ld in=%ld out=%ld", long(batch), long(I), long(H));
  } else {
    const bool cell = variant.kind.find("Cell") != std::string::npos;
    config.values = {{"batch", batch}, {"input_size", I}, {"hidden_size", H}, {"hidden_given", 1}, {"weight", 0}};
    if (cell) {
      std::snprintf(label, sizeof label, "%s B=%ld I=%ld H=%ld", kind.float_name.c_str(), long(batch), long(I), long(H));
    } else {
      config.values.insert({{"seq_len", options.seq_len}, {"num_layers", options.num_layers}, {"bidirectional", 0},
                            {"batch_first", 0}, {"packed", variant.packed ? 1 : 0}});
      std::snprintf(label, sizeof label, "%s%s T=%ld B=%ld I=%ld H=%ld L=%ld", kind.float_name.c_str(),
                    variant.packed ? " packed" : "", long(options.seq_len), long(batch), long(I), long(H),
                    long(options.num_layers));
    }
  }
  c.label = label;
  c.source = kind.make_case(config);
  if (const auto* rnn = dynamic_cast<const FloatRNN*>(c.source.float_module.get())) {
    // Rows actually computed (a packed batch's sequences have random lengths 1..T), each
    // projected onto the gates from its input and its hidden state, in every layer.
    const RnnOptions& o = rnn->options();
    int64_t rows = o.cell ? batch : options.seq_len * batch;
    if (const auto* packed = std::get_if<PackedSequence>(&c.source.input.input)) rows = packed->data.size(0);
    c.macs = double(rows) * o.gate_size() *
             ((o.input_size + o.hidden_size) + double(o.num_layers - 1) * 2.0 * o.hidden_size);
  }
  return c;
}

// A convolution as a model replay runs it: on its input's u8 channels-last bytes (made before
// timing) into an output buffer, for a module that takes them (the integer module and
// LibTorch's both do); none otherwise.
std::optional<std::function<void()>> channels_last_run(const std::shared_ptr<Module>& module, const ModuleInput& input) {
  const auto* takes_bytes = dynamic_cast<const ChannelsLastBytesForward*>(module.get());
  const auto* x = std::get_if<QTensor>(&input.input);
  if (!takes_bytes || !x || x->sizes.size() != 4 || x->qparams.dtype != DType::QUInt8 || x->qparams.per_channel())
    return std::nullopt;
  const int64_t image = x->sizes[1] * x->sizes[2] * x->sizes[3];
  auto bytes = std::make_shared<std::vector<uint8_t>>(x->values.size());
  for (int64_t n = 0; n < x->sizes[0]; ++n)
    kernels::to_u8_channels_last(x->values.data() + n * image, x->sizes[1], x->sizes[2] * x->sizes[3],
                                 bytes->data() + n * image);
  const std::vector<U8ChannelsLast> operands{{x->sizes, x->qparams.scale(), x->qparams.zero_point(), bytes->data()}};
  const std::optional<U8ChannelsLast> output = takes_bytes->channels_last_output(operands);
  if (!output) return std::nullopt;
  auto y = std::make_shared<std::vector<uint8_t>>(numel_of(output->sizes));
  return [module, takes_bytes, bytes, operands, y] { takes_bytes->forward_channels_last(operands, y->data()); };
}

std::vector<TimedImplementation> implementations_for(BenchCase& c, const BenchOptions& options) {
  const ModuleKind& kind = module_kind(c.variant.kind);
  const Module& float_module = *c.source.float_module;
  const ModuleInput& input = c.source.input;
  const auto wanted = [&](const std::string& name) {
    return options.implementations.empty() ||
           std::find(options.implementations.begin(), options.implementations.end(), name) !=
               options.implementations.end();
  };
  std::vector<TimedImplementation> out;
  const auto module_run = [&](const std::string& name, ConversionTarget target, bool libtorch) {
    if (!wanted(name)) return;
    std::shared_ptr<Module> module = convert_from_float(kind, float_module, target);
    if (c.variant.resnet18_convolutions)
      if (auto on_bytes = channels_last_run(module, input)) {
        out.push_back({name, std::move(*on_bytes), {}, 1, libtorch});
        return;
      }
    out.push_back({name, [module, &input] { (*module)(input); }, {}, 1, libtorch});
  };
  module_run("integer", {Implementation::Quantized, kIntegerProfile}, false);
  module_run("reference", {Implementation::Reference, kIntegerProfile}, false);
  if (wanted("eigen-float")) {
    if (c.variant.kind == "dynamic.Linear") {
      const auto& linear = dynamic_cast<const FloatLinear&>(float_module);
      const Tensor& x = std::get<Tensor>(input.input);
      auto w = std::make_shared<RowMajor>(Eigen::Map<const RowMajor>(linear.weight().data.data(), options.hidden_size, options.input_size));
      auto b = std::make_shared<Eigen::RowVectorXf>(Eigen::Map<const Eigen::RowVectorXf>(linear.bias()->data.data(), options.hidden_size));
      auto xm = std::make_shared<RowMajor>(Eigen::Map<const RowMajor>(x.data.data(), c.batch, options.input_size));
      out.push_back({"eigen-float", [w, b, xm] {
                       RowMajor y = *xm * w->transpose();
                       y.rowwise() += *b;
                       volatile float sink = y(0, 0);
                       (void)sink;
                     }, {}, 1, false});
    } else if (const auto* rnn = dynamic_cast<const FloatRNN*>(&float_module); rnn && options.num_layers == 1) {
      auto e = std::make_shared<EigenFloatRnn>(eigen_float_rnn(*rnn, input));
      out.push_back({"eigen-float", [e] { e->run(); }, {}, 1, false});
    }
  }
  for (Engine engine : libtorch_engines())
    module_run("libtorch[" + to_string(engine) + "]", {Implementation::LibTorch, engine}, true);
  return out;
}

struct Row {
  std::string case_label, variant, impl;
  int64_t batch;
  int threads;
  double median_ms, gmacs, ratio_vs_best_libtorch, fraction_of_ceiling;
  double ceiling_gmacs;  // the int8 MAC ceiling measured during the case (median)
  // With threads > 1: that many threads' ceiling, running at once, during the case (median);
  // 0 on one thread.
  double threads_ceiling_gmacs;
  int count = 1;         // ResNet18 convolutions: how often the model runs the shape
};

struct Target {
  std::string text;
  double measured, limit;
  bool at_most;  // measured <= limit, else >=
  std::string context = {};  // printed below the target: what bounded it in this run
  bool met() const { return at_most ? measured <= limit : measured >= limit; }
};

const Row* find_row(const std::vector<Row>& rows, const std::string& variant, int64_t batch, const std::string& impl,
                    int threads = 1) {
  for (const Row& r : rows)
    if (r.threads == threads && r.variant == variant && r.batch == batch && r.impl == impl) return &r;
  return nullptr;
}

// ResNet18's convolutions, one forward at batch 1: each shape's median times its count.
// nullopt unless every shape ran for `impl` on `threads`.
std::optional<double> resnet18_convolutions_ms(const std::vector<Row>& rows, const std::string& impl, int threads) {
  double total = 0;
  int shapes = 0;
  for (const Row& r : rows)
    if (r.variant == "resnet18-conv" && r.impl == impl && r.threads == threads) {
      total += r.median_ms * r.count;
      ++shapes;
    }
  if (shapes != static_cast<int>(resnet18_convolutions().size())) return std::nullopt;
  return total;
}

void print_resnet18_totals(FILE* table, const std::vector<Row>& rows) {
  std::vector<std::pair<std::string, int>> seen;
  for (const Row& r : rows)
    if (r.variant == "resnet18-conv" &&
        std::find(seen.begin(), seen.end(), std::pair{r.impl, r.threads}) == seen.end())
      seen.push_back({r.impl, r.threads});
  if (seen.empty()) return;
  std::fprintf(table, "\nResNet18's convolutions, one forward (224 x 224, batch 1: each shape's median x its count;\n"
                      "the integer and LibTorch's on channels-last bytes, as model replays run them; the reference on QTensor)\n");
  for (const auto& [impl, threads] : seen)
    if (const auto ms = resnet18_convolutions_ms(rows, impl, threads))
      std::fprintf(table, "  %-20s threads %d %10.3f ms\n", impl.c_str(), threads, *ms);
}

// The targets, where this run measured both sides (one thread).
std::vector<Target> targets(const std::vector<Row>& rows, const BenchOptions& options) {
  std::vector<Target> out;
  const bool fastrnns = options.seq_len == 100 && options.input_size == 512 && options.hidden_size == 512 &&
                        options.num_layers == 1;
  const auto ratio = [&](const char* text, const char* variant, int64_t batch, const char* a, const char* b,
                         double limit) {
    const Row *ra = find_row(rows, variant, batch, a), *rb = find_row(rows, variant, batch, b);
    if (ra && rb) out.push_back({text, ra->median_ms / rb->median_ms, limit, true});
  };
  if (fastrnns) {
    ratio("integer LSTM (fastrnns default) time / libtorch[onednn]", "lstm", 64, "integer", "libtorch[onednn]", 0.8);
    if (const Row* r = find_row(rows, "lstm", 64, "integer"))
      if (r->fraction_of_ceiling > 0)
        out.push_back({"integer LSTM (fastrnns default) GMAC/s / int8 MAC ceiling", r->fraction_of_ceiling, 0.7, false});
    ratio("integer LSTM miniBatch 1 time / libtorch[onednn]", "lstm", 1, "integer", "libtorch[onednn]", 1.0);
    ratio("reference LSTM (fastrnns default) time / eigen-float", "lstm", 64, "reference", "eigen-float", 1.5);
    ratio("integer Linear 512x512 B=64 time / libtorch[onednn]", "linear", 64, "integer", "libtorch[onednn]", 0.8);
    const Row *one = find_row(rows, "lstm", 64, "integer", 1), *two = find_row(rows, "lstm", 64, "integer", 2);
    if (one && two) {
      Target t{"integer LSTM (fastrnns default) two threads' speed / one thread's", one->median_ms / two->median_ms,
               1.7, false};
      // What this host gave two threads at once in the same rounds: the bound of any speed-up.
      if (two->threads_ceiling_gmacs > 0 && two->ceiling_gmacs > 0) {
        char text[200];
        std::snprintf(text, sizeof text, "the int8 ceiling of two threads at once was %.2fx one thread's in the same rounds",
                      two->threads_ceiling_gmacs / two->ceiling_gmacs);
        t.context = text;
      }
      out.push_back(t);
    }
  }
  const auto integer = resnet18_convolutions_ms(rows, "integer", 1),
             onednn = resnet18_convolutions_ms(rows, "libtorch[onednn]", 1);
  if (integer && onednn)
    out.push_back({"integer ResNet18 convolutions (all 20) time / libtorch[onednn]", *integer / *onednn, 1.0, true});
  return out;
}

}  // namespace

std::vector<std::string> bench_variant_names() {
  std::vector<std::string> names;
  for (const Variant& v : variants()) names.push_back(v.name);
  return names;
}

std::vector<std::string> bench_implementation_names() {
  std::vector<std::string> names{"integer", "reference", "eigen-float"};
  for (Engine engine : libtorch_engines()) names.push_back("libtorch[" + to_string(engine) + "]");
  return names;
}

int run_bench(const BenchOptions& options) {
  const auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::vector<Variant> chosen;
  for (const std::string& name : options.variants) {
    auto it = std::find_if(variants().begin(), variants().end(), [&](const Variant& v) { return v.name == name; });
    if (it == variants().end())
      throw Error("unknown variant '" + name + "' (variants: " + join(bench_variant_names()) + ")");
    chosen.push_back(*it);
  }
  const std::vector<std::string> known = bench_implementation_names();
  for (const std::string& name : options.implementations)
    if (std::find(known.begin(), known.end(), name) == known.end())
      throw Error("unknown implementation '" + name + "' (implementations: " + join(known) + ")");
  if (options.repetitions < 1) throw Error("--reps must be at least 1");
  for (int64_t b : options.batches)
    if (b < 1) throw Error("--batch values must be at least 1, got " + std::to_string(b));
  for (int64_t size : {options.seq_len, options.num_layers, options.input_size, options.hidden_size})
    if (size < 1) throw Error("--seq-len, --layers, --input-size and --hidden-size must be at least 1");

  // With --json -, the JSON owns standard output and the table goes to standard error.
  FILE* table = options.json_path && *options.json_path == "-" ? stderr : stdout;
  const int previous_threads = libtorch_threads(), previous_kernel_threads = kernels::kernel_threads();
  const kernels::Int8Ceiling start_ceiling = kernels::measure_int8_mac_ceiling();
  const double ceiling = start_ceiling.gmacs;
  std::fprintf(table, "qconform bench: dynamic modules, forward; median of %d after a warm-up; implementations "
              "and thread counts alternate repetition by repetition\n",
              options.repetitions);
  // Under QCONFORM_KERNEL_ISA the ceiling is the capped ISA's (measure_int8_mac_ceiling), and
  // the line says so: a share of it is not a share of what this host's best step could do.
  const std::optional<std::string> isa_cap = kernel_isa_cap();
  const std::string ceiling_of = isa_cap ? "the best exact int8 step of the kernels' path as QCONFORM_KERNEL_ISA=" +
                                               *isa_cap + " caps it"
                                         : "the host's best exact int8 step";
  if (ceiling > 0)
    std::fprintf(table, "int8 multiply-accumulate ceiling at the start (%s, %s chains, one thread): %.1f GMAC/s\n",
                 ceiling_of.c_str(), start_ceiling.isa.c_str(), ceiling);
  else
    std::fprintf(table, "int8 multiply-accumulate ceiling: none measured (the kernels take the portable path, which "
                 "has no SIMD step to measure); shares of it are shown as 0\n");
  std::fprintf(table, "integer = the harness's integer implementation, %s profile; kernel path %s; --threads sets its "
              "kernel threads and LibTorch's (at::set_num_threads) alike\n",
              EngineProfile(kIntegerProfile).label().c_str(), to_string(kernels::exact_kernel_path()).c_str());

  std::vector<Row> rows;
  for (const Variant& variant : chosen) {
    std::vector<std::pair<int64_t, size_t>> cases;  // (batch, convolution shape)
    if (variant.resnet18_convolutions) {
      for (size_t shape = 0; shape < resnet18_convolutions().size(); ++shape) cases.push_back({1, shape});
    } else {
      for (int64_t batch : options.batches) cases.push_back({batch, 0});
    }
    for (const auto& [batch, shape] : cases) {
      BenchCase c = make_bench_case(variant, batch, options, shape);
      // The implementations' timings per thread count (copies share the modules). Thread
      // counts alternate repetition by repetition as the implementations do, so that the
      // two-thread speed-up compares neighbouring rounds, not runs minutes apart (this VM's
      // speed drifts).
      std::vector<std::vector<TimedImplementation>> impls_at(options.threads.size(),
                                                             implementations_for(c, options));
      const auto use_threads = [](int threads) {
        set_libtorch_threads(threads);
        kernels::set_kernel_threads(threads);
      };
      for (size_t t = 0; t < options.threads.size(); ++t) {
        use_threads(options.threads[t]);
        for (auto& impl : impls_at[t]) {  // warm-up, and calls per repetition for short cases
          const auto start = std::chrono::steady_clock::now();
          impl.run();
          const double once = elapsed_ms(start);
          impl.inner = once >= 20 ? 1 : static_cast<int>(std::min(10000.0, std::ceil(20 / std::max(once, 1e-3))));
        }
      }
      // The ceiling is measured again before every round, alternating with the
      // implementations like they alternate: this VM's speed drifts by up to a third within
      // minutes, and a ceiling from the start of the run would compare different machines.
      std::vector<std::vector<double>> ceilings(options.threads.size()), threads_ceilings(options.threads.size());
      for (int r = 0; r < options.repetitions; ++r) {
        for (size_t t = 0; t < options.threads.size(); ++t) {
          use_threads(options.threads[t]);
          if (ceiling > 0) {
            ceilings[t].push_back(kernels::measure_int8_mac_ceiling(0.05).gmacs);
            if (options.threads[t] > 1)
              threads_ceilings[t].push_back(kernels::measure_int8_mac_ceiling(0.05, options.threads[t]).gmacs);
          }
          for (auto& impl : impls_at[t]) {
            const auto start = std::chrono::steady_clock::now();
            for (int i = 0; i < impl.inner; ++i) impl.run();
            impl.ms.push_back(elapsed_ms(start) / impl.inner);
          }
        }
      }
      for (size_t t = 0; t < options.threads.size(); ++t) {
        const int threads = options.threads[t];
        const std::vector<TimedImplementation>& impls = impls_at[t];
        const double case_ceiling = ceilings[t].empty() ? 0 : median(ceilings[t]);
        const double threads_ceiling = threads_ceilings[t].empty() ? 0 : median(threads_ceilings[t]);
        double best_libtorch = 0;
        for (const auto& impl : impls)
          if (impl.libtorch && (best_libtorch == 0 || median(impl.ms) < best_libtorch)) best_libtorch = median(impl.ms);
        std::fprintf(table, "\n%s, threads %d (%.3f GMAC per forward; ceiling during the case %.1f GMAC/s",
                     c.label.c_str(), threads, c.macs / 1e9, case_ceiling);
        if (threads_ceiling > 0) std::fprintf(table, "; %d threads at once %.1f", threads, threads_ceiling);
        std::fprintf(table, ")\n");
        std::fprintf(table, "  %-20s %12s %9s %11s %14s\n", "implementation", "median ms", "GMAC/s", "of ceiling",
                    "vs best LibTorch");
        for (const auto& impl : impls) {
          const double m = median(impl.ms);
          const double gmacs = c.macs / 1e9 / (m / 1e3);
          const double of_ceiling = case_ceiling > 0 ? gmacs / (case_ceiling * threads) : 0;
          const double ratio = best_libtorch > 0 ? m / best_libtorch : 0;
          rows.push_back({c.label, variant.name, impl.name, batch, threads, m, gmacs, ratio, of_ceiling, case_ceiling,
                          threads_ceiling, c.count});
          std::fprintf(table, "  %-20s %12.3f %9.2f %10.0f%% %13.2fx\n", impl.name.c_str(), m, gmacs, 100 * of_ceiling, ratio);
        }
        std::fflush(table);
      }
    }
  }
  set_libtorch_threads(previous_threads);
  kernels::set_kernel_threads(previous_kernel_threads);
  print_resnet18_totals(table, rows);

  const std::vector<Target> met = targets(rows, options);
  if (!met.empty()) {
    std::fprintf(table, "\ntargets (one thread unless said, this run)\n");
    for (const Target& t : met) {
      std::fprintf(table, "  %-62s %6.2f  (%s %.2f)  %s\n", t.text.c_str(), t.measured, t.at_most ? "<=" : ">=", t.limit,
                  t.met() ? "met" : "NOT met");
      if (!t.context.empty()) std::fprintf(table, "    (%s)\n", t.context.c_str());
    }
  }
  if (options.json_path) {
    nlohmann::json j;
    j["int8_mac_ceiling_gmacs"] = ceiling;
    j["ceiling_isa"] = start_ceiling.isa;
    j["kernel_path"] = to_string(kernels::exact_kernel_path());
    j["kernel_isa_cap"] = isa_cap ? nlohmann::json(*isa_cap) : nlohmann::json(nullptr);
    j["integer_profile"] = EngineProfile(kIntegerProfile).label();
    j["repetitions"] = options.repetitions;
    j["results"] = nlohmann::json::array();
    for (const Row& r : rows)
      j["results"].push_back({{"case", r.case_label}, {"variant", r.variant}, {"batch", r.batch},
                              {"threads", r.threads}, {"impl", r.impl}, {"median_ms", r.median_ms},
                              {"gmacs", r.gmacs}, {"ratio_vs_best_libtorch", r.ratio_vs_best_libtorch},
                              {"fraction_of_ceiling", r.fraction_of_ceiling}, {"ceiling_gmacs", r.ceiling_gmacs},
                              {"threads_ceiling_gmacs", r.threads_ceiling_gmacs},
                              {"count_in_model", r.count}});
    j["targets"] = nlohmann::json::array();
    for (const Target& t : met) {
      nlohmann::json target{{"target", t.text}, {"measured", t.measured}, {"limit", t.limit},
                            {"comparison", t.at_most ? "<=" : ">="}, {"met", t.met()}};
      if (!t.context.empty()) target["context"] = t.context;
      j["targets"].push_back(target);
    }
    if (*options.json_path == "-") {
      std::cout << j.dump(2) << "\n";
    } else {
      write_file_atomically(*options.json_path, j.dump(2) + "\n", "benchmark results");
      std::fprintf(table, "\nwrote %s\n", options.json_path->c_str());
    }
  }
  return 0;
}

int run_model_bench(const std::string& directory, const BenchOptions& options) {
  const int threads = options.threads.empty() ? 1 : options.threads.front();
  const int previous_threads = libtorch_threads(), previous_kernel_threads = kernels::kernel_threads();
  set_libtorch_threads(threads);
  kernels::set_kernel_threads(threads);
  const ModelReplayTiming t = time_model_replay(directory, options.repetitions);
  set_libtorch_threads(previous_threads);
  kernels::set_kernel_threads(previous_kernel_threads);
  std::printf("qconform bench --model %s: median of %d after a warm-up, threads %d, kernel path %s\n",
              directory.c_str(), options.repetitions, threads, to_string(kernels::exact_kernel_path()).c_str());
  std::printf("  LibTorch forward                      %10.3f ms\n", t.libtorch_forward_ms);
  std::printf("  integer layers alone (%3ld layers)     %10.3f ms   (largest difference %.0f quanta)\n",
              long(t.layers), t.isolated_layers_ms, t.max_quanta_isolated);
  std::printf("    of them on LibTorch's channels-last bytes as they are: %ld\n", long(t.layers_on_bytes));
  std::printf("  integer chain                         %10.3f ms   (largest difference %.0f quanta)\n",
              t.integer_chain_ms, t.max_quanta_chain);
  const double ratio = (t.isolated_layers_ms + t.integer_chain_ms) / t.libtorch_forward_ms;
  std::printf("target: (layers alone + chain) / LibTorch forward  %.2f  (<= 3.00)  %s\n", ratio,
              ratio <= 3.0 ? "met" : "NOT met");
  return 0;
}

}  // namespace qconform
