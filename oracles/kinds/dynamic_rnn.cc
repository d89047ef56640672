// dynamic.LSTM, dynamic.GRU, dynamic.RNNCell, dynamic.LSTMCell, dynamic.GRUCell: random cases
// (packed, batch-first, multi-layer, bidirectional), propagated bounds and fixture readers
// (torch.ao.nn.quantized.dynamic's recurrent modules).
#include "oracles/kinds/families.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include "core/error.h"
#include "core/observers.h"
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "oracles/recurrent_bounds.h"
#include "quantized/dynamic/rnn.h"
#include "quantized/libtorch/dynamic_rnn.h"
#include "quantized/libtorch/engine.h"
#include "reference/rnn.h"

namespace qconform::kinds {
namespace {

// pack_padded_sequence(padded, lengths, enforce_sorted=False): sequences sorted by
// decreasing length, then time-major rows of the sequences still running.
PackedSequence pack_sequences(const Tensor& padded_seq_first, const std::vector<int64_t>& lengths) {
  const int64_t T = padded_seq_first.size(0), B = padded_seq_first.size(1), F = padded_seq_first.size(2);
  std::vector<int64_t> sorted(B);
  std::iota(sorted.begin(), sorted.end(), 0);
  std::stable_sort(sorted.begin(), sorted.end(), [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  std::vector<int64_t> unsorted(B);
  for (int64_t i = 0; i < B; ++i) unsorted[sorted[i]] = i;
  PackedSequence packed;
  std::vector<float> rows;
  for (int64_t t = 0; t < T; ++t) {
    int64_t active = 0;
    for (int64_t i = 0; i < B && lengths[sorted[i]] > t; ++i, ++active)
      rows.insert(rows.end(), padded_seq_first.data.begin() + (t * B + sorted[i]) * F,
                  padded_seq_first.data.begin() + (t * B + sorted[i] + 1) * F);
    if (active == 0) break;
    packed.batch_sizes.push_back(active);
  }
  const int64_t total = static_cast<int64_t>(rows.size()) / F;
  packed.data = Tensor(Shape{total, F}, std::move(rows));
  packed.sorted_indices = std::move(sorted);
  packed.unsorted_indices = std::move(unsorted);
  return packed;
}

QConfig rnn_qconfig(int64_t weight) {
  switch (weight) {
    case 0: return default_dynamic_qconfig();
    case 1: return per_channel_dynamic_qconfig();
    default: return float16_dynamic_qconfig();
  }
}

Case make_dynamic_rnn_case(const CaseConfig& config, RnnMode mode, bool cell) {
  std::mt19937_64 rng(config.data_seed);
  RnnOptions o;
  o.mode = mode;
  o.cell = cell;
  o.input_size = config.get("input_size");
  o.hidden_size = config.get("hidden_size");
  if (!cell) {
    o.num_layers = config.get("num_layers");
    o.bidirectional = config.get("bidirectional") != 0;
    o.batch_first = config.get("batch_first") != 0;
    o.dropout = o.num_layers > 1 ? 0.25 : 0.0;  // inactive in eval; shows in repr only
  }
  if (mode == RnnMode::RNN) o.nonlinearity = config.get("relu") ? "relu" : "tanh";
  const bool per_channel = config.get("weight") == 1;
  std::vector<RnnParameters> parameters = random_rnn_parameters(o, per_channel, rng);
  auto module = std::make_unique<FloatRNN>(o, std::move(parameters));
  module->qconfig = rnn_qconfig(config.get("weight"));

  const int64_t batch = config.get("batch");
  ModuleInput input;
  const bool hidden_given = config.get("hidden_given") != 0;
  const Shape hidden_shape = cell ? Shape{batch, o.hidden_size} : Shape{o.parameter_sets(), batch, o.hidden_size};
  if (cell) {
    input.input = random_input({batch, o.input_size}, config.style, rng);
  } else {
    const int64_t T = config.get("seq_len");
    Tensor seq = random_input({T, batch, o.input_size}, config.style, rng);
    if (config.get("packed")) {
      std::vector<int64_t> lengths(batch);
      std::uniform_int_distribution<int64_t> length(1, T);
      for (auto& l : lengths) l = length(rng);
      lengths[rng() % batch] = T;  // the longest sequence sets seq_len
      input.input = pack_sequences(seq, lengths);
    } else if (o.batch_first) {
      Tensor bf(Shape{batch, T, o.input_size});
      for (int64_t t = 0; t < T; ++t)
        for (int64_t b = 0; b < batch; ++b)
          std::copy(seq.data.begin() + (t * batch + b) * o.input_size,
                    seq.data.begin() + (t * batch + b + 1) * o.input_size,
                    bf.data.begin() + (b * T + t) * o.input_size);
      input.input = std::move(bf);
    } else {
      input.input = std::move(seq);
    }
  }
  if (hidden_given) {
    HiddenState hidden{random_tensor(hidden_shape, 0.5f, rng), std::nullopt};
    if (mode == RnnMode::LSTM) hidden.c = random_tensor(hidden_shape, 1.0f, rng);
    input.hidden = std::move(hidden);
  }
  return {std::move(module), std::move(input)};
}

// A recurrent module's constructor arguments from a fixture (nnqd.RNNBase's attributes; the
// cells' sizes come from their weights' shapes).
RnnOptions spec_rnn_options(const ModuleSpec& spec, RnnMode mode, bool cell) {
  RnnOptions o;
  o.mode = mode;
  o.cell = cell;
  o.input_size = spec.integer("input_size");
  o.hidden_size = spec.integer("hidden_size");
  o.bias = spec.flag("bias");
  if (!cell) {
    o.num_layers = spec.integer("num_layers");
    o.batch_first = spec.flag("batch_first");
    o.dropout = spec.number("dropout");
    o.bidirectional = spec.flag("bidirectional");
  }
  if (mode == RnnMode::RNN && cell) o.nonlinearity = spec.text("nonlinearity");
  o.validate();
  return o;
}

// Every parameter set's integer weights and float biases, under PyTorch's names.
std::vector<QuantizedRnnWeights> spec_rnn_weights(const ModuleSpec& spec, const RnnOptions& o) {
  // A version-1 dynamic LSTM/GRU (reduce_range off) records it; cells always reduce.
  const bool reduce_range = !spec.has("reduce_range") || spec.flag("reduce_range");
  std::vector<QuantizedRnnWeights> weights;
  for (int64_t set = 0; set < o.parameter_sets(); ++set) {
    const RnnParameterNames names = rnn_parameter_names(o, set);
    weights.push_back({spec_weight(spec, names.w_ih), spec_weight(spec, names.w_hh), spec_bias(spec, names.b_ih),
                       spec_bias(spec, names.b_hh), reduce_range});
  }
  return weights;
}

}  // namespace

ModuleKind dynamic_rnn_kind(RnnMode mode, bool cell) {
  RnnOptions names;
  names.mode = mode;
  names.cell = cell;
  ModuleKind kind;
  kind.float_name = names.float_name();
  kind.key = "dynamic." + kind.float_name;
  kind.family = Family::Dynamic;
  kind.engine_op = EngineOp::DynamicLinear;  // every gate projection is a dynamic linear call
  kind.structure = Structure::Recurrent;
  const bool has_from_reference = !(mode == RnnMode::GRU && !cell);  // PyTorch 1.13: nnqd.GRU has none
  kind.implementations.push_back(
      {Implementation::Reference, "Quantized" + kind.float_name + "(Reference)", {},
       [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
         return ReferenceRNN::from_float(dynamic_cast<const FloatRNN&>(m));
       },
       nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, "DynamicQuantized" + kind.float_name, all_engines(),
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return DynamicQuantizedRNN::from_float(dynamic_cast<const FloatRNN&>(m), e);
       },
       has_from_reference ? std::function<std::unique_ptr<Module>(const Module&, const EngineProfile&)>(
                                [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
                                  return DynamicQuantizedRNN::from_reference(dynamic_cast<const ReferenceRNN&>(r), e);
                                })
                          : nullptr});
  kind.implementations.push_back(
      {Implementation::LibTorch, "DynamicQuantized" + kind.float_name, libtorch_engines(),
       [](const Module& m, const EngineProfile& e) { return libtorch_dynamic_rnn_from_float(dynamic_cast<const FloatRNN&>(m), e); },
       has_from_reference ? std::function<std::unique_ptr<Module>(const Module&, const EngineProfile&)>(
                                [](const Module& r, const EngineProfile& e) {
                                  return libtorch_dynamic_rnn_from_reference(dynamic_cast<const ReferenceRNN&>(r), e);
                                })
                          : nullptr,
       cell ? nullptr
            : std::function<std::unique_ptr<Module>(const Module&, const EngineProfile&)>([](const Module& m, const EngineProfile& e) {
                return libtorch_dynamic_rnn_from_float(dynamic_cast<const FloatRNN&>(m), e,
                                                       LibTorchRnnCalls::FreshPrepackPerProjection);
              })});
  if (cell) {
    kind.case_parameters = {{"batch", 1, 8, "rows of the input"}};
  } else {
    kind.case_parameters = {
        {"seq_len", 1, 6, "time steps (the longest sequence when packed)"},
        {"batch", 1, 4, "sequences"},
        {"num_layers", 1, 3, "stacked layers"},
        {"bidirectional", 0, 1, "1: both directions"},
        {"batch_first", 0, 1, "1: input (batch, seq, feature)"},
        {"packed", 0, 1, "1: a PackedSequence with unsorted lengths (sorted_indices / unsorted_indices)"},
    };
  }
  kind.case_parameters.push_back({"input_size", 1, 32, "features of the input"});
  kind.case_parameters.push_back({"hidden_size", 1, 32, "features of the hidden state"});
  kind.case_parameters.push_back({"hidden_given", 0, 1, "1: an initial hidden state is passed, else zeros"});
  kind.case_parameters.push_back(
      {"weight", 0, 2, "0: default_dynamic_qconfig (qint8 per-tensor), 1: per_channel_dynamic_qconfig, "
                       "2: float16_dynamic_qconfig"});
  if (mode == RnnMode::RNN) kind.case_parameters.push_back({"relu", 0, 1, "1: nonlinearity='relu', else 'tanh'"});
  kind.make_case = [mode, cell](const CaseConfig& config) { return make_dynamic_rnn_case(config, mode, cell); };
  kind.recurrent_bounds = [](const Module& reference, const ModuleInput& input, const RecurrentBoundModel& model) {
    return recurrent_error_bounds(dynamic_cast<const ReferenceRNN&>(reference), input, model);
  };
  kind.weight_shape = [](const Module& reference) {
    return dynamic_cast<const ReferenceRNN&>(reference).parameters().at(0).w_ih.sizes;
  };
  kind.with_weight_qparams = [](const Module& reference, const QuantParams& qparams) -> std::unique_ptr<Module> {
    const auto& rnn = dynamic_cast<const ReferenceRNN&>(reference);
    // Per-channel qparams along axis 0 fit w_ih and w_hh alike (gate_size rows).
    std::vector<RnnWeightQParams> all(rnn.parameters().size(), RnnWeightQParams{qparams, qparams});
    return std::make_unique<ReferenceRNN>(rnn.options(), rnn.parameters(), std::move(all));
  };
  kind.reference_from_spec = [mode, cell](const ModuleSpec& spec) -> std::unique_ptr<Module> {
    const RnnOptions o = spec_rnn_options(spec, mode, cell);
    std::vector<RnnParameters> parameters;
    std::vector<RnnWeightQParams> qparams;
    for (const QuantizedRnnWeights& w : spec_rnn_weights(spec, o)) {
      parameters.push_back({dequantize(w.w_ih), dequantize(w.w_hh), w.b_ih, w.b_hh});
      qparams.push_back({w.w_ih.qparams, w.w_hh.qparams});
    }
    return std::make_unique<ReferenceRNN>(o, std::move(parameters), std::move(qparams));
  };
  kind.quantized_from_spec = [mode, cell](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    const RnnOptions o = spec_rnn_options(spec, mode, cell);
    return std::make_unique<DynamicQuantizedRNN>(o, spec_rnn_weights(spec, o), engine);
  };
  kind.module_weight_rule = [](const QuantParams& qparams) -> std::optional<std::string> {
    try {
      check_dynamic_rnn_weight_dtype(qparams.dtype);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::nullopt;
  };
  return kind;
}

}  // namespace qconform::kinds
