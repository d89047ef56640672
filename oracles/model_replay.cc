#include "oracles/model_replay.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <Eigen/Core>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/cpu.h"
#include "core/error.h"
#include "core/quantize.h"
#include "oracles/agreement.h"
#include "oracles/kinds/registry.h"
#include "oracles/model_calls.h"
#include "oracles/torchscript_module.h"
#include "quantized/libtorch/engine.h"

namespace qconform {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string short_float(double v) {
  std::ostringstream out;
  out << std::setprecision(3) << v;
  return out.str();
}


float value_at(const Value& v, size_t i) {
  if (const auto* t = std::get_if<Tensor>(&v)) return t->data.at(i);
  if (const auto* q = std::get_if<QTensor>(&v)) return dequantize(*q).data.at(i);
  if (const auto* n = std::get_if<IntTensor>(&v)) return static_cast<float>(n->values.at(i));
  throw Error("a model output is a packed sequence");
}

size_t value_size(const Value& v) {
  if (const auto* t = std::get_if<Tensor>(&v)) return t->data.size();
  if (const auto* q = std::get_if<QTensor>(&v)) return q->values.size();
  if (const auto* n = std::get_if<IntTensor>(&v)) return n->values.size();
  return 0;
}

// The largest |diff| between a chained run's model outputs and the recorded ones.
double output_error(const std::string& where, const c10::IValue& result, const std::vector<Value>& recorded) {
  const std::vector<at::Tensor> outputs = result_tensors(result);
  if (outputs.size() != recorded.size())
    throw Error(where + ": the chained model gives " + std::to_string(outputs.size()) + " output tensors, the recording " +
                std::to_string(recorded.size()));
  double worst = 0;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const at::Tensor t = (outputs[k].is_quantized() ? outputs[k].dequantize() : outputs[k]).to(at::kFloat).contiguous();
    if (static_cast<size_t>(t.numel()) != value_size(recorded[k]))
      throw Error(where + ": the chained model's output " + std::to_string(k) + " has another size than the recording's");
    const float* data = t.data_ptr<float>();
    for (size_t i = 0; i < value_size(recorded[k]); ++i)
      worst = std::max(worst, std::fabs(static_cast<double>(data[i]) - value_at(recorded[k], i)));
  }
  return worst;
}

// Outputs are compared as flatten_output gives them: a quantized tensor as its integers,
// already in quanta; a dequantized one in its input's quanta; a float one as it is.
double quantum(const Fixture& fixture) {
  if (std::holds_alternative<QTensor>(fixture.expected.output)) return 1;
  if (const auto* q = std::get_if<QTensor>(&fixture.input.input))
    if (!q->qparams.per_channel()) return q->qparams.scales.at(0);
  return 1;
}

// The model run with every covered layer replaced by `implementation`, each layer judged
// against its recorded output as it goes.
class Chain {
 public:
  Chain(const std::string& directory, const ModelRecord& record, const std::vector<std::optional<Fixture>>& fixtures,
        Implementation implementation, std::vector<LayerReplay>& layers)
      : directory_(directory), record_(record), fixtures_(fixtures), implementation_(implementation), layers_(layers) {}

  c10::IValue run(const std::vector<c10::IValue>& args) {
    InstrumentedModel model((fs::path(directory_) / kModelArchiveFile).string(), record_.engine.engine);
    c10::IValue result = model.run(args, [this](const LeafCall& call) { return layer(call); });
    if (next_ != record_.layers.size())
      throw Error(directory_ + ": the chained run made " + std::to_string(next_) + " layer calls, the recording " +
                  std::to_string(record_.layers.size()));
    return result;
  }

 private:
  c10::IValue layer(const LeafCall& call) {
    if (next_ >= record_.layers.size())
      throw Error(directory_ + ": the chained run calls more layers than the recording (" + call.path + ")");
    const size_t index = next_++;
    const ModelLayer& recorded = record_.layers[index];
    if (recorded.path != call.path || recorded.method != call.method || recorded.call != call.call)
      throw Error(directory_ + ": the chained run took another way through the model: its call " +
                  std::to_string(index) + " is " + call.path + "." + call.method + ", the recording's " +
                  recorded.label() + " (control flow that depends on the values?)");
    if (!recorded.covered()) return InstrumentedModel::original(call);
    const Fixture& fixture = *fixtures_[index];
    const ModuleKind& kind = module_kind(fixture.module.kind);
    const bool integer = implementation_ == Implementation::Quantized;
    ChainedLayer& chained = integer ? layers_[index].integer : layers_[index].reference;
    if (integer && !(kind.supports(Implementation::Quantized, fixture.engine.engine) && kind.quantized_from_spec))
      return InstrumentedModel::original(call);  // not modelled on this engine: LibTorch's own answer
    const std::string where = directory_ + ": layer " + recorded.label();
    const ModuleInput input = layer_input(where, kind, call.method, call.args, nullptr);
    auto& reference = references_[index];
    if (!reference) reference = kind.reference_from_spec(fixture.module);
    auto& module = modules_[index];
    if (!module && integer) module = kind.quantized_from_spec(fixture.module, fixture.engine);
    Module& implementation = integer ? *module : *reference;
    // A layer that takes LibTorch's channels-last bytes as they are runs on them, as the bench
    // times it; its output is judged as any other.
    const auto* recorded_output = std::get_if<QTensor>(&fixture.expected.output);
    const std::optional<at::Tensor> on_bytes =
        run_on_channels_last_bytes(implementation, call.args, recorded_output && recorded_output->channels_last);
    const ModuleOutput output =
        on_bytes ? ModuleOutput{libtorch::from_aten_quantized(*on_bytes), std::nullopt} : implementation(input);

    const FlatOutput ours = flatten_output(output), theirs = flatten_output(fixture.expected);
    if (ours.parts != theirs.parts)
      throw Error(where + ": the chained output is " + ours.describe() + ", the recording's " + theirs.describe());
    const Pair pair{Side{implementation_, integer ? std::optional<EngineProfile>(fixture.engine) : std::nullopt},
                    Side{Implementation::LibTorch, fixture.engine}};
    const std::string isa = fixture.provenance ? fixture.provenance->value("onednn_isa", "") : "";
    const OutputJudge judge(kind, pair, *reference, input, ours.values.size(), isa);
    CaseResult r;
    judge.compare(ours, theirs, r);
    chained.ran = true;
    chained.max_abs_error = r.max_abs_error;
    chained.bound_fraction = r.max_bound_fraction;
    chained.within_bound = r.passed;
    chained.exact = r.exact;
    chained.total = r.total;
    chained.tolerance_row = r.tolerance_row;
    chained.error_quanta = r.max_abs_error / quantum(fixture);
    return on_bytes ? c10::IValue(*on_bytes) : result_value(where, kind, output, fixture.expected);
  }

  const std::string& directory_;
  const ModelRecord& record_;
  const std::vector<std::optional<Fixture>>& fixtures_;
  Implementation implementation_;
  std::vector<LayerReplay>& layers_;
  size_t next_ = 0;
  std::map<size_t, std::unique_ptr<Module>> modules_, references_;
};

}  // namespace

namespace {

// max |ours - recorded| over every output element, in the layer's quanta.
double quanta_apart(const ModuleOutput& ours, const ModuleOutput& recorded, double quantum) {
  // One quantized tensor each (most layers): their integers compared as they are, which is
  // what flatten_output's floats of them give, without the copies.
  const auto* qa = std::get_if<QTensor>(&ours.output);
  const auto* qb = std::get_if<QTensor>(&recorded.output);
  if (qa && qb && !ours.hidden && !recorded.hidden && !ours.quantized_hidden && !recorded.quantized_hidden) {
    if (qa->values.size() != qb->values.size()) return std::numeric_limits<double>::infinity();
    const int32_t* a = qa->values.data();
    const int32_t* b = qb->values.data();
    const auto narrow = [](const QTensor& q) { return dtype_max(q.qparams.dtype) - dtype_min(q.qparams.dtype) <= 255; };
    if (narrow(*qa) && narrow(*qb)) {
      // 8-bit values (as their dtypes say): an int32 difference, on Eigen's vectors.
      const Eigen::Index n = static_cast<Eigen::Index>(qa->values.size());
      if (n == 0) return 0;
      const int32_t worst = (Eigen::Map<const Eigen::ArrayXi>(a, n) - Eigen::Map<const Eigen::ArrayXi>(b, n)).abs().maxCoeff();
      return static_cast<double>(worst) / quantum;
    }
    int64_t worst = 0;  // int32 values differ by up to 2^32
    for (size_t i = 0; i < qa->values.size(); ++i) worst = std::max<int64_t>(worst, std::abs(int64_t{a[i]} - b[i]));
    return static_cast<double>(worst) / quantum;
  }
  const FlatOutput a = flatten_output(ours), b = flatten_output(recorded);
  if (a.values.size() != b.values.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (size_t i = 0; i < a.values.size(); ++i) worst = std::max(worst, double(std::fabs(a.values[i] - b.values[i])));
  return worst / quantum;
}

// The recording's quint8 output as bytes, made once before timing (empty for any other
// output), and ours compared with it: the same integers quanta_apart compares, reading a
// quarter of the recording's memory (ResNet18's recorded outputs are 9 MB as int32, and the
// comparison is bound by memory).
std::vector<uint8_t> recorded_bytes(const ModuleOutput& recorded) {
  const auto* q = std::get_if<QTensor>(&recorded.output);
  if (!q || recorded.hidden || recorded.quantized_hidden || q->qparams.dtype != DType::QUInt8) return {};
  std::vector<uint8_t> bytes(q->values.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (q->values[i] < 0 || q->values[i] > 255) return {};
    bytes[i] = static_cast<uint8_t>(q->values[i]);
  }
  return bytes;
}

// max |a[i] - b[i]|, eight at a time; ours outside [0, 255] (a defect) is left to the int64
// loop, where no difference wraps.
__attribute__((target("avx2"))) int64_t max_difference_avx2(const int32_t* a, const uint8_t* b, int64_t n) {
  __m256i worst = _mm256_setzero_si256(), lowest = _mm256_setzero_si256(), highest = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i ours = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    uint64_t eight;
    std::memcpy(&eight, b + i, sizeof eight);
    const __m256i theirs = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(eight)));
    worst = _mm256_max_epi32(worst, _mm256_abs_epi32(_mm256_sub_epi32(ours, theirs)));
    lowest = _mm256_min_epi32(lowest, ours);
    highest = _mm256_max_epi32(highest, ours);
  }
  alignas(32) int32_t lanes[3][8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[0]), worst);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[1]), lowest);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[2]), highest);
  if (*std::min_element(lanes[1], lanes[1] + 8) < 0 || *std::max_element(lanes[2], lanes[2] + 8) > 255) return -1;
  int64_t result = *std::max_element(lanes[0], lanes[0] + 8);
  for (; i < n; ++i) result = std::max<int64_t>(result, std::abs(int64_t{a[i]} - b[i]));
  return result;
}

// max |a[i] - b[i]| of two byte arrays, 32 at a time: |a - b| is the larger of the two
// saturating differences.
__attribute__((target("avx2"))) int64_t max_byte_difference_avx2(const uint8_t* a, const uint8_t* b, int64_t n) {
  __m256i worst = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    worst = _mm256_max_epu8(worst, _mm256_or_si256(_mm256_subs_epu8(x, y), _mm256_subs_epu8(y, x)));
  }
  alignas(32) uint8_t lanes[32];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), worst);
  int64_t result = *std::max_element(lanes, lanes + 32);
  for (; i < n; ++i) result = std::max<int64_t>(result, std::abs(int{a[i]} - int{b[i]}));
  return result;
}

// An output LibTorch holds as quint8 channels-last bytes against the recording in the same
// layout, in the layer's quanta.
double quanta_apart(const at::Tensor& ours, const std::vector<uint8_t>& recorded, double quantum) {
  const int64_t n = ours.numel();
  if (n != static_cast<int64_t>(recorded.size())) return std::numeric_limits<double>::infinity();
  const auto* a = static_cast<const uint8_t*>(ours.data_ptr());
  int64_t worst = 0;
  if (cpu_has_avx2()) {
    worst = max_byte_difference_avx2(a, recorded.data(), n);
  } else {
    for (int64_t i = 0; i < n; ++i) worst = std::max<int64_t>(worst, std::abs(int{a[i]} - int{recorded[i]}));
  }
  return static_cast<double>(worst) / quantum;
}

double quanta_apart(const ModuleOutput& ours, const ModuleOutput& recorded, const std::vector<uint8_t>& bytes,
                    double quantum) {
  const auto* q = std::get_if<QTensor>(&ours.output);
  if (bytes.empty() || !q || ours.hidden || ours.quantized_hidden) return quanta_apart(ours, recorded, quantum);
  if (q->values.size() != bytes.size()) return std::numeric_limits<double>::infinity();
  const int64_t n = static_cast<int64_t>(bytes.size());
  int64_t worst = cpu_has_avx2() ? max_difference_avx2(q->values.data(), bytes.data(), n) : -1;
  if (worst < 0) {
    worst = 0;
    for (int64_t i = 0; i < n; ++i) worst = std::max<int64_t>(worst, std::abs(int64_t{q->values[i]} - bytes[i]));
  }
  return static_cast<double>(worst) / quantum;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

ModelReplayTiming time_model_replay(const std::string& directory, int repetitions) {
  const ModelRecord record = read_model_record(directory);
  if (!libtorch_has_engine(record.engine.engine))
    throw Error(directory + ": LibTorch here has no " + to_string(record.engine.engine) + " engine");
  libtorch::EngineGuard guard(record.engine.engine);
  struct Layer {
    Fixture fixture;
    std::unique_ptr<Module> module;
    double quantum = 1;
    std::vector<uint8_t> expected_bytes;
    // A layer that takes channels-last bytes (run_on_channels_last_bytes): its recorded operands
    // as LibTorch holds them and its recorded output's bytes in that layout; empty otherwise.
    std::vector<c10::IValue> channels_last_inputs;
    std::vector<uint8_t> expected_channels_last;
  };
  std::vector<std::optional<Layer>> layers(record.layers.size());
  ModelReplayTiming t;
  for (size_t i = 0; i < record.layers.size(); ++i) {
    if (!record.layers[i].covered()) continue;
    Fixture fixture = read_fixture((fs::path(directory) / record.layers[i].fixture).string());
    const ModuleKind& kind = module_kind(fixture.module.kind);
    if (!(kind.supports(Implementation::Quantized, fixture.engine.engine) && kind.quantized_from_spec)) continue;
    Layer layer{std::move(fixture), nullptr, 1, {}, {}, {}};
    layer.module = kind.quantized_from_spec(layer.fixture.module, layer.fixture.engine);
    layer.quantum = quantum(layer.fixture);
    layer.expected_bytes = recorded_bytes(layer.fixture.expected);
    const auto* expected = std::get_if<QTensor>(&layer.fixture.expected.output);
    if (dynamic_cast<const ChannelsLastBytesForward*>(layer.module.get()) && expected && expected->channels_last &&
        !layer.fixture.expected.hidden && !layer.fixture.expected.quantized_hidden) {
      const at::Tensor recorded = libtorch::to_aten(*expected, true);
      if (const auto bytes = libtorch::channels_last_bytes(recorded)) {
        layer.expected_channels_last.assign(bytes->bytes, bytes->bytes + recorded.numel());
        std::vector<const Value*> operands{&layer.fixture.input.input};
        for (const Value& other : layer.fixture.input.others) operands.push_back(&other);
        for (const Value* operand : operands)
          if (const auto* q = std::get_if<QTensor>(operand)) layer.channels_last_inputs.push_back(libtorch::to_aten(*q));
        if (layer.channels_last_inputs.size() != operands.size() ||
            !run_on_channels_last_bytes(*layer.module, layer.channels_last_inputs, true))
          layer.channels_last_inputs.clear();  // the operands are not all such tensors: forward
      }
    }
    t.layers_on_bytes += layer.channels_last_inputs.empty() ? 0 : 1;
    layers[i] = std::move(layer);
    ++t.layers;
  }
  const std::vector<c10::IValue> args = forward_arguments((fs::path(directory) / kModelInputsFile).string());
  torch::jit::Module plain = load_archive((fs::path(directory) / kModelArchiveFile).string(), record.engine.engine);
  InstrumentedModel model((fs::path(directory) / kModelArchiveFile).string(), record.engine.engine);
  const auto chain_call = [&](const LeafCall& call, size_t index) {
    if (!layers[index]) return InstrumentedModel::original(call);
    Layer& layer = *layers[index];
    const ModuleKind& kind = module_kind(layer.fixture.module.kind);
    if (!layer.expected_channels_last.empty())
      if (const std::optional<at::Tensor> y = run_on_channels_last_bytes(*layer.module, call.args, true)) {
        t.max_quanta_chain = std::max(t.max_quanta_chain, quanta_apart(*y, layer.expected_channels_last, layer.quantum));
        return c10::IValue(*y);
      }
    const std::string where = directory + ": layer " + record.layers[index].label();
    const ModuleOutput output = (*layer.module)(layer_input(where, kind, call.method, call.args, nullptr));
    t.max_quanta_chain = std::max(t.max_quanta_chain, quanta_apart(output, layer.fixture.expected, layer.expected_bytes, layer.quantum));
    return result_value(where, kind, output, layer.fixture.expected);
  };
  std::vector<double> forward, isolated, chained;
  for (int r = 0; r <= repetitions; ++r) {  // the first round warms up, untimed
    auto start = std::chrono::steady_clock::now();
    plain.forward(args);
    const double forward_ms = seconds_since(start) * 1e3;
    start = std::chrono::steady_clock::now();
    for (auto& layer : layers)
      if (layer && !layer->channels_last_inputs.empty()) {
        const at::Tensor y = *run_on_channels_last_bytes(*layer->module, layer->channels_last_inputs, true);
        t.max_quanta_isolated = std::max(t.max_quanta_isolated, quanta_apart(y, layer->expected_channels_last, layer->quantum));
      } else if (layer) {
        const ModuleOutput output = (*layer->module)(layer->fixture.input);
        t.max_quanta_isolated =
            std::max(t.max_quanta_isolated, quanta_apart(output, layer->fixture.expected, layer->expected_bytes, layer->quantum));
      }
    const double isolated_ms = seconds_since(start) * 1e3;
    start = std::chrono::steady_clock::now();
    size_t next = 0;
    model.run(args, [&](const LeafCall& call) { return chain_call(call, next++); });
    const double chain_ms = seconds_since(start) * 1e3;
    if (r == 0) continue;
    forward.push_back(forward_ms);
    isolated.push_back(isolated_ms);
    chained.push_back(chain_ms);
  }
  t.libtorch_forward_ms = median_of(forward);
  t.isolated_layers_ms = median_of(isolated);
  t.integer_chain_ms = median_of(chained);
  return t;
}

ModelVerdict replay_model(const std::string& directory) {
  ModelVerdict v;
  v.directory = directory;
  v.name = fs::path(directory).filename().string();
  try {
    const ModelRecord record = read_model_record(directory);
    v.name = record.name;
    v.engine = record.engine;
    v.pytorch_type = record.pytorch_type;
    v.fully_covered = record.fully_covered();
    v.uncovered = record.uncovered_types();

    // Each covered layer alone, on the input it received in the recording.
    auto start = std::chrono::steady_clock::now();
    std::vector<std::optional<Fixture>> fixtures(record.layers.size());
    for (size_t i = 0; i < record.layers.size(); ++i) {
      LayerReplay replay;
      replay.layer = record.layers[i];
      if (replay.layer.covered()) {
        const std::string path = (fs::path(directory) / replay.layer.fixture).string();
        try {
          fixtures[i] = read_fixture(path);
          replay.isolated = replay_fixture(*fixtures[i], path);
          replay.quantum = quantum(*fixtures[i]);
        } catch (const Error& e) {
          FixtureVerdict broken;
          broken.path = path;
          broken.error = e.what();
          replay.isolated = broken;
        }
        if (!replay.isolated->passed && !v.first_failing) v.first_failing = i;
      }
      v.layers.push_back(replay);
    }
    v.seconds_isolated = seconds_since(start);
    v.passed = !v.first_failing;

    // The chains run the model's own code in LibTorch, on the engine it was recorded on.
    if (!libtorch_has_engine(record.engine.engine)) {
      v.chain_note = "LibTorch here has no " + to_string(record.engine.engine) + " engine: no chained runs";
      return v;
    }
    try {
      libtorch::EngineGuard guard(record.engine.engine);
      const std::vector<c10::IValue> args = forward_arguments((fs::path(directory) / kModelInputsFile).string());
      {
        torch::jit::Module plain = load_archive((fs::path(directory) / kModelArchiveFile).string(), record.engine.engine);
        std::vector<c10::IValue> a = args;
        plain.forward(a);  // the first call prepares; the second is timed
        start = std::chrono::steady_clock::now();
        plain.forward(std::move(a));
        v.seconds_libtorch_forward = seconds_since(start);
      }
      for (Implementation implementation : {Implementation::Quantized, Implementation::Reference}) {
        start = std::chrono::steady_clock::now();
        Chain chain(directory, record, fixtures, implementation, v.layers);
        const c10::IValue result = chain.run(args);
        const double error = output_error(directory, result, record.outputs);
        auto& leaves = implementation == Implementation::Quantized ? v.integer_leaves_bound : v.reference_leaves_bound;
        for (size_t i = 0; i < v.layers.size() && !leaves; ++i) {
          const ChainedLayer& c = implementation == Implementation::Quantized ? v.layers[i].integer : v.layers[i].reference;
          if (c.ran && !c.within_bound) leaves = i;
        }
        if (implementation == Implementation::Quantized) {
          v.integer_output_error = error;
          v.seconds_integer_chain = seconds_since(start);
        } else {
          v.reference_output_error = error;
          v.seconds_reference_chain = seconds_since(start);
        }
      }
    } catch (const Error& e) {
      v.chain_note = e.what();
    }
  } catch (const Error& e) {
    v.error = e.what();
    v.passed = false;
  }
  return v;
}

std::string ModelVerdict::line() const {
  std::ostringstream out;
  out << (passed ? "PASS  " : "FAIL  ") << name << "  model";
  if (!pytorch_type.empty()) out << " " << pytorch_type.substr(pytorch_type.rfind('.') + 1) << "[" << engine.label() << "]";
  if (!error.empty()) {
    out << "  cannot replay: " << error;
    return out.str();
  }
  size_t covered = 0, computing = 0;
  for (const auto& l : layers) {
    covered += l.layer.covered();
    computing += l.layer.computes;
  }
  out << "  " << covered << " of " << computing << " computing layer calls covered";
  if (fully_covered) out << " (fully covered)";
  else {
    out << " (not covered:";
    for (const auto& [type, count] : uncovered) out << " " << type.substr(type.rfind('.') + 1) << " x" << count;
    out << ")";
  }
  if (first_failing) out << "; first failing layer: " << layers[*first_failing].layer.label();
  const auto chain = [&](const char* what, const std::optional<size_t>& leaves, double output) {
    out << "; " << what << " chain ";
    if (leaves) {
      const ChainedLayer& c = std::string(what) == "integer" ? layers[*leaves].integer : layers[*leaves].reference;
      out << "leaves its bound at " << layers[*leaves].layer.label() << " (" << short_float(c.error_quanta)
          << " quanta, " << short_float(c.bound_fraction) << " of bound)";
    } else {
      out << "within bounds throughout";
    }
    out << ", output max |diff| " << short_float(output);
  };
  if (chain_note.empty()) {
    chain("integer", integer_leaves_bound, integer_output_error);
    chain("reference", reference_leaves_bound, reference_output_error);
  } else {
    out << "; chained runs: " << chain_note;
  }
  return out.str();
}

std::string ModelVerdict::details() const {
  std::string text;
  for (const auto& l : layers)
    if (l.isolated && !l.isolated->passed)
      text += l.isolated->error.empty() ? l.isolated->details()
                                        : "  layer " + l.layer.label() + " (" + l.isolated->path + "): " + l.isolated->error + "\n";
  return text;
}

std::string ModelVerdict::table() const {
  std::ostringstream out;
  out << "  #    layer                                    kind                  isolated (worst of bound)   integer chain "
         "(quanta, of bound)   reference chain (quanta, of bound)\n";
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerReplay& l = layers[i];
    out << "  " << std::left << std::setw(4) << i << " " << std::setw(40) << l.layer.label() << " " << std::setw(21)
        << (l.layer.covered() ? l.layer.kind : l.layer.computes ? "(not covered)" : "(passes values on)") << " ";
    std::string isolated = "-";
    if (l.isolated) {
      double worst = 0;
      for (const auto& c : l.isolated->comparisons)
        if (c.available) worst = std::max(worst, c.result.max_bound_fraction);
      isolated = (l.isolated->passed ? "pass " : "FAIL ") + short_float(worst);
    }
    out << std::setw(27) << isolated << " ";
    for (const ChainedLayer* c : {&l.integer, &l.reference})
      out << std::setw(35)
          << (c->ran ? std::string(c->within_bound ? "" : "OUT ") + short_float(c->error_quanta) + ", " +
                           short_float(c->bound_fraction)
                     : std::string("-"))
          << " ";
    out << "\n";
  }
  return out.str();
}

std::string model_verdicts_json(const std::vector<ModelVerdict>& verdicts) {
  const auto number = [](double x) { return std::isinf(x) ? json("inf") : json(x); };
  json out = json::array();
  for (const ModelVerdict& v : verdicts) {
    json layers = json::array();
    for (const LayerReplay& l : v.layers) {
      json entry = {{"layer", l.layer.label()}, {"path", l.layer.path}, {"method", l.layer.method},

                    {"pytorch_type", l.layer.pytorch_type}, {"covered", l.layer.covered()},
                    {"computes", l.layer.computes}};
      if (l.layer.covered()) {
        entry["kind"] = l.layer.kind;
        entry["fixture"] = l.layer.fixture;
      }
      if (l.isolated) {
        double worst = 0;
        for (const auto& c : l.isolated->comparisons)
          if (c.available) worst = std::max(worst, c.result.max_bound_fraction);
        json comparisons = json::array();
        for (const auto& c : l.isolated->comparisons) {
          if (!c.available) continue;
          comparisons.push_back({{"pair", c.pair.label()}, {"passed", c.result.passed},
                                 {"max_abs_error", c.result.max_abs_error},
                                 {"error_quanta", c.result.max_abs_error / l.quantum},
                                 {"bound_fraction", number(c.result.max_bound_fraction)}});
        }
        entry["isolated"] = {{"passed", l.isolated->passed}, {"worst_bound_fraction", number(worst)},
                             {"comparisons", comparisons}, {"rerun", "qconform check " + l.isolated->path}};
        if (!l.isolated->error.empty()) entry["isolated"]["error"] = l.isolated->error;
        if (!l.isolated->passed) entry["isolated"]["failure"] = l.isolated->details();
      }
      for (const auto& [key, c] : {std::pair<const char*, const ChainedLayer*>{"integer_chain", &l.integer},
                                   {"reference_chain", &l.reference}})
        if (c->ran)
          entry[key] = {{"max_abs_error", c->max_abs_error}, {"error_quanta", c->error_quanta},
                        {"bound_fraction", number(c->bound_fraction)}, {"within_bound", c->within_bound},
                        {"exact", c->exact}, {"total", c->total}, {"tolerance_row", c->tolerance_row}};
      layers.push_back(entry);
    }
    json uncovered = json::array();
    for (const auto& [type, count] : v.uncovered) uncovered.push_back({{"pytorch_type", type}, {"count", count}});
    const auto index = [&](const std::optional<size_t>& i) { return i ? json(v.layers[*i].layer.label()) : json(); };
    json entry = {{"name", v.name},
                  {"directory", v.directory},
                  {"engine", v.engine.label()},
                  {"pytorch_type", v.pytorch_type},
                  {"passed", v.passed},
                  {"fully_covered", v.fully_covered},
                  {"uncovered", uncovered},
                  {"first_failing_layer", index(v.first_failing)},
                  {"integer_chain_leaves_bound_at", index(v.integer_leaves_bound)},
                  {"reference_chain_leaves_bound_at", index(v.reference_leaves_bound)},
                  {"integer_chain_output_max_abs_error", v.integer_output_error},
                  {"reference_chain_output_max_abs_error", v.reference_output_error},
                  {"seconds", {{"isolated_layers", v.seconds_isolated}, {"integer_chain", v.seconds_integer_chain},
                               {"reference_chain", v.seconds_reference_chain},
                               {"libtorch_forward", v.seconds_libtorch_forward}}},
                  {"layers", layers}};
    if (!v.error.empty()) entry["error"] = v.error;
    if (!v.chain_note.empty()) entry["chain_note"] = v.chain_note;
    out.push_back(entry);
  }
  return out.dump(1) + "\n";
}

}  // namespace qconform
