#include "quantized/dynamic/rnn.h"

#include <algorithm>

#include "core/error.h"
#include "core/float/rnn_runner.h"
#include "core/quantize.h"
#include "quantized/kernels/threads.h"
#include "reference/rnn.h"

namespace qconform {
namespace {

StateValue packed_weight_value(const QTensor& weight, const std::optional<Tensor>& bias) {
  // float16 weights unpack as float32 tensors in PyTorch.
  const StateValue w = weight.qparams.dtype == DType::Float16 ? StateValue(dequantize(weight)) : StateValue(weight);
  return StateTuple{w, bias ? StateValue(*bias) : StateValue(NoneValue{})};
}

std::pair<QTensor, std::optional<Tensor>> parse_packed_weight(const StateValue& value, const std::string& key) {
  const auto& tuple = value.as<StateTuple>(key);
  if (tuple.size() != 2)
    throw Error("state_dict['" + key + "'] must be (weight, bias), got " + std::to_string(tuple.size()) + " values");
  QTensor weight = tuple[0].is<Tensor>() ? quantize(tuple[0].as<Tensor>(key + "[0]"), QuantParams::float16())
                                         : tuple[0].as<QTensor>(key + "[0]");
  std::optional<Tensor> bias;
  if (!tuple[1].is<NoneValue>()) bias = tuple[1].as<Tensor>(key + "[1]");
  return {std::move(weight), std::move(bias)};
}

std::string cell_params_key(int64_t set) { return "_all_weight_values." + std::to_string(set) + ".param"; }

}  // namespace

DynamicQuantizedRNN::DynamicQuantizedRNN(RnnOptions options, std::vector<QuantizedRnnWeights> weights, EngineProfile engine)
    : RnnModule(std::move(options), RnnInputRules::Dynamic), engine_(engine) {
  set_weights(std::move(weights));
}

void check_quantized_rnn_weights(const RnnOptions& options, const std::vector<QuantizedRnnWeights>& weights,
                                 const std::string& module_name) {
  std::vector<RnnParameters> shapes;  // shape checks on the float view of the weights
  for (const auto& w : weights) {
    for (const QTensor* q : {&w.w_ih, &w.w_hh})
      if (q->qparams.dtype != weights.front().w_ih.qparams.dtype)
        throw Error(module_name + ": all weights must have one dtype, got " +
                    to_string(weights.front().w_ih.qparams.dtype) + " and " + to_string(q->qparams.dtype));
    check_dynamic_rnn_weight_dtype(w.w_ih.qparams.dtype);
    shapes.push_back({Tensor(w.w_ih.sizes), Tensor(w.w_hh.sizes), w.b_ih, w.b_hh});
  }
  check_rnn_parameters(options, shapes, module_name);
}

void DynamicQuantizedRNN::set_weights(std::vector<QuantizedRnnWeights> weights) {
  check_quantized_rnn_weights(options_, weights, name());
  // Prepack everything first: the module is unchanged if an engine refuses.
  std::vector<std::unique_ptr<DynamicQuantizedLinear>> ih, hh;
  for (const auto& w : weights) {
    ih.push_back(std::make_unique<DynamicQuantizedLinear>(w.w_ih, w.b_ih, engine_));
    hh.push_back(std::make_unique<DynamicQuantizedLinear>(w.w_hh, w.b_hh, engine_));
  }
  weights_ = std::move(weights);
  ih_ = std::move(ih);
  hh_ = std::move(hh);
}

std::vector<QuantizedRnnWeights> quantize_rnn_weights(const FloatRNN& float_module, const std::string& module_name) {
  const std::vector<RnnWeightQParams> qparams = observe_rnn_weights(float_module);  // dtype rule first
  if (!float_module.options().bias)
    throw Error(module_name + ".from_float: the float module has bias=False, which PyTorch's from_float refuses "
                "(assert mod.bias)");
  std::vector<QuantizedRnnWeights> weights;
  for (size_t i = 0; i < qparams.size(); ++i) {
    const RnnParameters& p = float_module.parameters()[i];
    weights.push_back({quantize(p.w_ih, qparams[i].ih), quantize(p.w_hh, qparams[i].hh), p.b_ih, p.b_hh,
                       /*reduce_range=*/true});
  }
  return weights;
}

std::vector<QuantizedRnnWeights> reference_rnn_weights(const ReferenceRNN& reference) {
  if (reference.options().mode == RnnMode::GRU && !reference.options().cell)
    throw Error("DynamicQuantizedGRU has no from_reference (PyTorch 1.13's nnqd.GRU defines none)");
  check_dynamic_rnn_weight_dtype(reference.weight_dtype());
  std::vector<QuantizedRnnWeights> weights;
  for (int64_t i = 0; i < reference.options().parameter_sets(); ++i) {
    const RnnParameters& p = reference.parameters()[i];
    weights.push_back({reference.get_quantized_weight_ih(i), reference.get_quantized_weight_hh(i), p.b_ih, p.b_hh,
                       /*reduce_range=*/true});
  }
  return weights;
}

std::unique_ptr<DynamicQuantizedRNN> DynamicQuantizedRNN::from_float(const FloatRNN& float_module, EngineProfile engine) {
  return std::make_unique<DynamicQuantizedRNN>(
      float_module.options(), quantize_rnn_weights(float_module, "DynamicQuantized" + float_module.options().float_name()),
      engine);
}

std::unique_ptr<DynamicQuantizedRNN> DynamicQuantizedRNN::from_reference(const ReferenceRNN& reference, EngineProfile engine) {
  return std::make_unique<DynamicQuantizedRNN>(reference.options(), reference_rnn_weights(reference), engine);
}

RnnResult DynamicQuantizedRNN::run(const RnnCall& call) {
  struct Projections {
    const DynamicQuantizedRNN& m;
    // The layer input's activations, quantized once (qint8 weights), or its whole projection
    // (float16 weights, which quantize nothing), for project_input_rows to hand out in parts.
    DynamicQuantizedLinear::QuantizedActivations& quantized;
    std::vector<float>& projected;
    void prepare_input(int64_t set, const float* x, int64_t rows, int64_t) {
      const DynamicQuantizedLinear& ih = *m.ih_[set];
      if (ih.has_float16_weight()) {
        projected.resize(rows * ih.out_features());
        ih.apply_dynamic(x, rows, m.weights_[set].reduce_range, projected.data());
      } else {
        ih.quantize_dynamic(x, rows, m.weights_[set].reduce_range, quantized);
      }
    }
    void project_input_rows(int64_t set, int64_t first_row, int64_t rows, float* out) {
      const DynamicQuantizedLinear& ih = *m.ih_[set];
      if (ih.has_float16_weight())
        std::copy(projected.begin() + first_row * ih.out_features(),
                  projected.begin() + (first_row + rows) * ih.out_features(), out);
      else
        ih.apply_quantized(quantized, first_row, rows, out);
    }
    void project_hidden(int64_t set, const float* h, int64_t rows, float* out) {
      m.hh_[set]->apply_dynamic(h, rows, m.weights_[set].reduce_range, out);
    }
    // The cell step's rows across the kernel threads, in parts of at least 2^15 gate values
    // (below that a thread's start costs more than it saves).
    void split_rows(int64_t rows, int64_t row_cost, const std::function<void(int64_t, int64_t)>& cell) {
      const int64_t parts = std::min<int64_t>({kernels::kernel_threads(), rows, rows * row_cost >> 15});
      if (parts <= 1) return cell(0, rows);
      kernels::parallel_for(parts, [&](int64_t part) { cell(rows * part / parts, rows * (part + 1) / parts); });
    }
  };
  // Buffers that only grow, as the other per-forward buffers of the recurrence.
  thread_local DynamicQuantizedLinear::QuantizedActivations quantized;
  thread_local std::vector<float> projected;
  Projections projections{*this, quantized, projected};
  // The faster gate functions (rnn_runner.h, CellGates): the cells are float, not the integer
  // part under test, and the tolerance rows allow each side's gates the error they have.
  auto run = run_rnn<float>(options_, projections, call.data, call.rows, call.batch_sizes, call.h0, call.c0,
                            CellGates::Fast);
  return {std::move(run.output), std::move(run.h_n), std::move(run.c_n)};
}

std::map<std::string, QTensor> DynamicQuantizedRNN::get_weight() const {
  std::map<std::string, QTensor> result;
  for (int64_t i = 0; i < options_.parameter_sets(); ++i) {
    const RnnParameterNames n = rnn_parameter_names(options_, i);
    result[n.w_ih] = weights_[i].w_ih;
    result[n.w_hh] = weights_[i].w_hh;
  }
  return result;
}

std::map<std::string, std::optional<Tensor>> DynamicQuantizedRNN::get_bias() const {
  std::map<std::string, std::optional<Tensor>> result;
  for (int64_t i = 0; i < options_.parameter_sets(); ++i) {
    const RnnParameterNames n = rnn_parameter_names(options_, i);
    result[n.b_ih] = weights_[i].b_ih;
    result[n.b_hh] = weights_[i].b_hh;
  }
  return result;
}

StateDict dynamic_rnn_state_dict(const RnnOptions& o, const std::vector<QuantizedRnnWeights>& weights, int64_t version) {
  StateDict state;
  if (o.cell) {
    state.set("_packed_weight_ih", packed_weight_value(weights[0].w_ih, weights[0].b_ih));
    state.set("_packed_weight_hh", packed_weight_value(weights[0].w_hh, weights[0].b_hh));
    state.versions[""] = 1;
    return state;
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    const auto& w = weights[i];
    StateTuple params{packed_weight_value(w.w_ih, w.b_ih), packed_weight_value(w.w_hh, w.b_hh)};
    if (w.w_ih.qparams.dtype != DType::Float16) params.push_back(IntTensor{{}, {w.reduce_range ? 1 : 0}, false});
    state.set(cell_params_key(static_cast<int64_t>(i)), params);
    state.versions["_all_weight_values." + std::to_string(i)] = 1;
  }
  state.versions[""] = version;
  state.versions["_all_weight_values"] = 1;
  return state;
}

std::vector<QuantizedRnnWeights> parse_dynamic_rnn_state_dict(const RnnOptions& o, const StateDict& state,
                                                              const std::string& module_name, int64_t* version) {
  std::vector<QuantizedRnnWeights> weights;
  if (o.cell) {
    state.check_keys({"_packed_weight_ih", "_packed_weight_hh"}, module_name);
    auto [w_ih, b_ih] = parse_packed_weight(state.at("_packed_weight_ih"), "_packed_weight_ih");
    auto [w_hh, b_hh] = parse_packed_weight(state.at("_packed_weight_hh"), "_packed_weight_hh");
    weights.push_back({std::move(w_ih), std::move(w_hh), std::move(b_ih), std::move(b_hh), true});
    *version = 1;
    return weights;
  }
  std::vector<std::string> keys;
  for (int64_t i = 0; i < o.parameter_sets(); ++i) keys.push_back(cell_params_key(i));
  state.check_keys(keys, module_name);
  for (int64_t i = 0; i < o.parameter_sets(); ++i) {
    const std::string key = cell_params_key(i);
    const auto& params = state.at(key).as<StateTuple>(key);
    if (params.size() != 2 && params.size() != 3)
      throw Error("state_dict['" + key + "'] must be ((w_ih, b_ih), (w_hh, b_hh)[, reduce_range]), got " +
                  std::to_string(params.size()) + " values");
    auto [w_ih, b_ih] = parse_packed_weight(params[0], key + "[0]");
    auto [w_hh, b_hh] = parse_packed_weight(params[1], key + "[1]");
    bool reduce_range = false;  // cell params serialized without it were built without it
    if (params.size() == 3) {
      const IntTensor& flag = params[2].as<IntTensor>(key + "[2]");
      if (flag.values.size() != 1) throw Error("state_dict['" + key + "'][2] (reduce_range) must hold one value");
      reduce_range = flag.values[0] != 0;
    }
    weights.push_back({std::move(w_ih), std::move(w_hh), std::move(b_ih), std::move(b_hh), reduce_range});
  }
  const auto found = state.versions.find("");
  *version = found == state.versions.end() ? 1 : found->second;
  return weights;
}

StateDict DynamicQuantizedRNN::state_dict() const { return dynamic_rnn_state_dict(options_, weights_, version_); }

void DynamicQuantizedRNN::load_state_dict(const StateDict& state) {
  int64_t version = kVersion;
  std::vector<QuantizedRnnWeights> weights = parse_dynamic_rnn_state_dict(options_, state, name(), &version);
  set_weights(std::move(weights));  // validates and prepacks before replacing
  version_ = version;
}

}  // namespace qconform
