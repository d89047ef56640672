#include "core/float/rnn.h"

#include <Eigen/Core>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "core/float/rnn_runner.h"
#include "core/python_text.h"

namespace qconform {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// index_select(1, permutation) on a (sets, batch, hidden) tensor.
std::vector<float> permute_batch(const std::vector<float>& x, int64_t sets, int64_t batch, int64_t hidden,
                                 const std::vector<int64_t>& permutation) {
  if (permutation.empty()) return x;
  std::vector<float> y(x.size());
  for (int64_t s = 0; s < sets; ++s)
    for (int64_t b = 0; b < batch; ++b)
      std::copy(x.begin() + (s * batch + permutation[b]) * hidden,
                x.begin() + (s * batch + permutation[b] + 1) * hidden, y.begin() + (s * batch + b) * hidden);
  return y;
}

void check_permutation(const std::vector<int64_t>& p, int64_t batch, const std::string& what) {
  if (p.empty()) return;
  if (static_cast<int64_t>(p.size()) != batch)
    throw Error("PackedSequence." + what + " has " + std::to_string(p.size()) + " entries for a batch of " +
                std::to_string(batch));
  std::vector<bool> seen(batch, false);
  for (int64_t i : p) {
    if (i < 0 || i >= batch || seen[i])
      throw Error("PackedSequence." + what + " is not a permutation of 0.." + std::to_string(batch - 1));
    seen[i] = true;
  }
}

// The given hidden tensors, checked against the expected (sets, batch, hidden) shape with
// the wrapper's messages, then permuted by sorted_indices as the wrapper does first.
void take_hidden(const RnnOptions& o, const ModuleInput& input, RnnCall* call, bool unbatched,
                 RnnInputRules rules) {
  const Shape expected{o.parameter_sets(), call->batch, o.hidden_size};
  const int64_t count = static_cast<int64_t>(o.parameter_sets() * call->batch * o.hidden_size);
  const bool lstm = o.mode == RnnMode::LSTM;
  if (!input.hidden) {
    call->h0.assign(count, 0.0f);
    if (lstm) call->c0.assign(count, 0.0f);
    return;
  }
  if (lstm && !input.hidden->c)
    throw Error("LSTM expects the hidden state (h_0, c_0), got h_0 without c_0");
  Tensor h = input.hidden->h;
  std::optional<Tensor> c = lstm ? input.hidden->c : std::nullopt;
  if (rules == RnnInputRules::Float && !call->packed) {
    // nn.LSTM / nn.GRU: the hidden state must match the input's batchedness.
    const int64_t want = unbatched ? 2 : 3;
    const bool bad = h.dim() != want || (c && c->dim() != want);
    if (bad) {
      const std::string kind = unbatched ? "unbatched 2-D" : "batched 3-D";
      const std::string dims = std::to_string(want) + "-D";
      if (lstm)
        throw Error("For " + kind + " input, hx and cx should also be " + dims + " but got (" +
                    std::to_string(h.dim()) + "-D, " + std::to_string(c->dim()) + "-D) tensors");
      throw Error("For " + kind + " input, hx should also be " + dims + " but got " +
                  std::to_string(h.dim()) + "-D tensor");
    }
    if (unbatched) {
      h.sizes.insert(h.sizes.begin() + 1, 1);
      if (c) c->sizes.insert(c->sizes.begin() + 1, 1);
    }
  }
  const auto check = [&](const Tensor& t, const std::string& label) {
    if (t.sizes != expected)
      throw Error("Expected " + label + " size " + python_tuple(expected) + ", got " + shape_to_string(t.sizes));
  };
  check(h, lstm ? "hidden[0]" : "hidden");
  if (lstm) check(*c, "hidden[1]");
  call->h0 = permute_batch(h.data, o.parameter_sets(), call->batch, o.hidden_size, call->sorted_indices);
  if (lstm) call->c0 = permute_batch(c->data, o.parameter_sets(), call->batch, o.hidden_size, call->sorted_indices);
}

RnnCall prepare_sequence(const RnnOptions& o, const ModuleInput& input, RnnInputRules rules) {
  RnnCall call;
  if (const auto* packed = std::get_if<PackedSequence>(&input.input)) {
    call.packed = true;
    if (packed->data.dim() != 2)
      throw Error("input must have 2 dimensions, got " + std::to_string(packed->data.dim()));
    if (packed->data.size(-1) != o.input_size)
      throw Error("input.size(-1) must be equal to input_size. Expected " + std::to_string(o.input_size) +
                  ", got " + std::to_string(packed->data.size(-1)));
    const auto& sizes = packed->batch_sizes;
    if (sizes.empty()) throw Error("Expected sequence length to be larger than 0 in RNN");
    for (size_t t = 0; t < sizes.size(); ++t)
      if (sizes[t] <= 0 || (t > 0 && sizes[t] > sizes[t - 1]))
        throw Error("PackedSequence.batch_sizes must be positive and non-increasing, got " +
                    shape_to_string(sizes));
    if (std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != packed->data.size(0))
      throw Error("PackedSequence.batch_sizes sum to " +
                  std::to_string(std::accumulate(sizes.begin(), sizes.end(), int64_t{0})) + " but data has " +
                  std::to_string(packed->data.size(0)) + " rows");
    call.batch = sizes[0];
    call.seq_len = static_cast<int64_t>(sizes.size());
    check_permutation(packed->sorted_indices, call.batch, "sorted_indices");
    check_permutation(packed->unsorted_indices, call.batch, "unsorted_indices");
    if (packed->sorted_indices.empty() != packed->unsorted_indices.empty())
      throw Error("PackedSequence must have both sorted_indices and unsorted_indices, or neither");
    call.data = packed->data.data.data();
    call.rows = packed->data.size(0);
    call.features = o.input_size;
    call.batch_sizes = sizes;
    call.sorted_indices = packed->sorted_indices;
    call.unsorted_indices = packed->unsorted_indices;
    take_hidden(o, input, &call, false, rules);
    return call;
  }
  const Tensor* x = std::get_if<Tensor>(&input.input);
  if (!x) throw Error(o.float_name() + " takes a float tensor or a PackedSequence");
  Shape sizes = x->sizes;  // the values stay where they are
  if (rules == RnnInputRules::Float && sizes.size() != 3) {  // unbatched (L, H_in): nn.LSTM unsqueezes any non-3-D input
    call.unbatched = true;
    sizes.insert(sizes.begin() + (o.batch_first ? 0 : 1), 1);
  }
  if (sizes.size() != 3) throw Error("input must have 3 dimensions, got " + std::to_string(sizes.size()));
  if (sizes[2] != o.input_size)
    throw Error("input.size(-1) must be equal to input_size. Expected " + std::to_string(o.input_size) +
                ", got " + std::to_string(sizes[2]));
  call.seq_len = o.batch_first ? sizes[1] : sizes[0];
  call.batch = o.batch_first ? sizes[0] : sizes[1];
  take_hidden(o, input, &call, call.unbatched, rules);
  if (call.seq_len == 0) throw Error("Expected sequence length to be larger than 0 in RNN");
  call.rows = call.seq_len * call.batch;
  call.features = o.input_size;
  call.batch_sizes.assign(call.seq_len, call.batch);
  if (!o.batch_first) {
    call.data = x->data.data();
  } else {  // (B, T, F) -> (T, B, F)
    call.reordered.resize(x->data.size());
    for (int64_t b = 0; b < call.batch; ++b)
      for (int64_t t = 0; t < call.seq_len; ++t)
        std::copy(x->data.begin() + (b * call.seq_len + t) * o.input_size,
                  x->data.begin() + (b * call.seq_len + t + 1) * o.input_size,
                  call.reordered.begin() + (t * call.batch + b) * o.input_size);
    call.data = call.reordered.data();
  }
  return call;
}

// The cells' hidden-state checks; ATen labels them "0"/"1", nnqd "", "[0]", "[1]".
void check_cell_hidden(const Tensor& x, const Tensor& t, const std::string& label, int64_t hidden_size) {
  if (t.dim() != 2 || t.size(0) != x.size(0))
    throw Error("Input batch size " + std::to_string(x.size(0)) + " doesn't match hidden" + label + " batch size " +
                (t.dim() ? std::to_string(t.size(0)) : "?"));
  if (t.size(1) != hidden_size)
    throw Error("hidden" + label + " has inconsistent hidden_size: got " + std::to_string(t.size(1)) + ", expected " +
                std::to_string(hidden_size));
}

RnnCall prepare_cell(const RnnOptions& o, const ModuleInput& input, RnnInputRules rules,
                     const std::string& module_name) {
  const Tensor* xp = std::get_if<Tensor>(&input.input);
  if (!xp) throw Error(module_name + " takes a float tensor");
  Tensor x = *xp;
  const bool lstm = o.mode == RnnMode::LSTM;
  RnnCall call;
  std::optional<Tensor> h, c;
  if (input.hidden) {
    h = input.hidden->h;
    if (lstm) {
      if (!input.hidden->c) throw Error(module_name + " expects the hidden state (h_0, c_0), got h_0 without c_0");
      c = input.hidden->c;
    }
  }
  if (rules == RnnInputRules::Float) {
    // The reference cells' assert, then ATen's rnn cell checks (labels "0" and "1").
    if (x.dim() != 1 && x.dim() != 2)
      throw Error(o.float_name() + ": Expected input to be 1-D or 2-D but received " + std::to_string(x.dim()) +
                  "-D tensor");
    if (x.dim() == 1) {
      call.unbatched = true;
      x.sizes.insert(x.sizes.begin(), 1);
      if (h) h->sizes.insert(h->sizes.begin(), 1);
      if (c) c->sizes.insert(c->sizes.begin(), 1);
    }
    if (x.size(1) != o.input_size)
      throw Error("input has inconsistent input_size: got " + std::to_string(x.size(1)) + " expected " +
                  std::to_string(o.input_size));
    if (h) check_cell_hidden(x, *h, "0", o.hidden_size);
    if (c) check_cell_hidden(x, *c, "1", o.hidden_size);
  } else {
    // nnqd.RNNCellBase.check_forward_input / check_forward_hidden.
    if (x.dim() < 2)
      throw Error("Dimension out of range (expected to be in range of [-1, 0], but got 1)");
    if (x.size(1) != o.input_size)
      throw Error("input has inconsistent input_size: got " + std::to_string(x.size(1)) + ", expected " +
                  std::to_string(o.input_size));
    if (x.dim() != 2)
      throw Error(module_name + " takes a 2-D input (batch, input_size), got shape " + shape_to_string(x.sizes));
    if (h) check_cell_hidden(x, *h, lstm ? "[0]" : "", o.hidden_size);
    if (c) check_cell_hidden(x, *c, "[1]", o.hidden_size);
  }
  if (o.mode == RnnMode::RNN && o.nonlinearity != "tanh" && o.nonlinearity != "relu")
    throw Error("Unknown nonlinearity: " + o.nonlinearity);
  call.batch = x.size(0);
  call.seq_len = 1;
  call.rows = call.batch;
  call.features = o.input_size;
  call.batch_sizes = {call.batch};
  call.reordered = std::move(x.data);  // a cell's input is small: x is a copy
  call.data = call.reordered.data();
  const size_t count = static_cast<size_t>(call.batch * o.hidden_size);
  call.h0 = h ? h->data : std::vector<float>(count, 0.0f);
  if (lstm) call.c0 = c ? c->data : std::vector<float>(count, 0.0f);
  return call;
}

}  // namespace

int64_t RnnOptions::gates() const {
  switch (mode) {
    case RnnMode::LSTM: return 4;
    case RnnMode::GRU: return 3;
    case RnnMode::RNN: return 1;
  }
  return 1;
}

std::string RnnOptions::float_name() const {
  const std::string base = mode == RnnMode::LSTM ? "LSTM" : mode == RnnMode::GRU ? "GRU" : "RNN";
  return cell ? base + "Cell" : base;
}

std::string RnnOptions::extra_repr() const {
  std::string s = std::to_string(input_size) + ", " + std::to_string(hidden_size);
  if (cell) {
    if (!bias) s += ", bias=False";
    if (mode == RnnMode::RNN && nonlinearity != "tanh") s += ", nonlinearity=" + nonlinearity;
    return s;
  }
  if (num_layers != 1) s += ", num_layers=" + std::to_string(num_layers);
  if (!bias) s += ", bias=False";
  if (batch_first) s += ", batch_first=True";
  if (dropout != 0) s += ", dropout=" + python_float(dropout);
  if (bidirectional) s += ", bidirectional=" + python_bool(bidirectional);
  return s;
}

void RnnOptions::validate() const {
  if (!cell && mode == RnnMode::RNN)
    throw Error("qconform implements RNNCell, not the multi-layer nn.RNN");
  if (input_size <= 0 || hidden_size <= 0)
    throw Error(float_name() + ": input_size and hidden_size must be positive, got " + std::to_string(input_size) +
                " and " + std::to_string(hidden_size));
  if (num_layers < 1) throw Error(float_name() + ": num_layers must be at least 1, got " + std::to_string(num_layers));
  if (cell && (num_layers != 1 || bidirectional || batch_first))
    throw Error(float_name() + " has no num_layers, bidirectional or batch_first");
  if (proj_size != 0 && mode != RnnMode::LSTM)
    throw Error("proj_size argument is only supported for LSTM, not RNN or GRU");
  if (proj_size != 0)
    throw Error("LSTM with proj_size=" + std::to_string(proj_size) +
                ": the quantized dynamic LSTM has no projection, so qconform implements proj_size=0 only");
  if (!(dropout >= 0 && dropout <= 1))
    throw Error("dropout should be a number in range [0, 1] representing the probability of an element being zeroed");
}

RnnParameterNames rnn_parameter_names(const RnnOptions& o, int64_t index) {
  if (o.cell) return {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  const int64_t layer = index / o.directions();
  const std::string suffix = "_l" + std::to_string(layer) + (index % o.directions() ? "_reverse" : "");
  return {"weight_ih" + suffix, "weight_hh" + suffix, "bias_ih" + suffix, "bias_hh" + suffix};
}

void check_rnn_parameters(const RnnOptions& o, const std::vector<RnnParameters>& parameters,
                          const std::string& module_name) {
  o.validate();
  if (static_cast<int64_t>(parameters.size()) != o.parameter_sets())
    throw Error(module_name + ": expected " + std::to_string(o.parameter_sets()) + " parameter sets, got " +
                std::to_string(parameters.size()));
  for (int64_t i = 0; i < o.parameter_sets(); ++i) {
    const RnnParameterNames names = rnn_parameter_names(o, i);
    const auto check = [&](const Tensor& t, const Shape& want, const std::string& name) {
      if (t.sizes != want)
        throw Error(module_name + ": " + name + " has shape " + shape_to_string(t.sizes) + ", expected " +
                    shape_to_string(want));
    };
    const RnnParameters& p = parameters[i];
    check(p.w_ih, {o.gate_size(), o.layer_input_size(i / o.directions())}, names.w_ih);
    check(p.w_hh, {o.gate_size(), o.hidden_size}, names.w_hh);
    if (p.b_ih.has_value() != o.bias || p.b_hh.has_value() != o.bias)
      throw Error(module_name + ": bias=" + python_bool(o.bias) + " but " + names.b_ih + "/" + names.b_hh +
                  (o.bias ? " are missing" : " are given"));
    if (p.b_ih) check(*p.b_ih, {o.gate_size()}, names.b_ih);
    if (p.b_hh) check(*p.b_hh, {o.gate_size()}, names.b_hh);
  }
}

RnnCall prepare_rnn_call(const RnnOptions& options, const ModuleInput& input, RnnInputRules rules,
                         const std::string& module_name) {
  return options.cell ? prepare_cell(options, input, rules, module_name) : prepare_sequence(options, input, rules);
}

ModuleOutput finish_rnn_call(const RnnOptions& o, const RnnCall& call, RnnResult result) {
  const int64_t H = o.hidden_size, B = call.batch;
  if (o.cell) {
    Tensor h(call.unbatched ? Shape{H} : Shape{B, H}, std::move(result.h_n));
    if (o.mode != RnnMode::LSTM) return {h, std::nullopt};
    Tensor c(h.sizes, std::move(result.c_n));
    return {h, HiddenState{h, c}};
  }
  const int64_t sets = o.parameter_sets(), width = o.directions() * H;
  const auto hidden_tensor = [&](const std::vector<float>& v) {
    Tensor t(call.unbatched ? Shape{sets, H} : Shape{sets, B, H},
             permute_batch(v, sets, B, H, call.unsorted_indices));
    return t;
  };
  HiddenState hidden{hidden_tensor(result.h_n), std::nullopt};
  if (o.mode == RnnMode::LSTM) hidden.c = hidden_tensor(result.c_n);
  if (call.packed)
    return {PackedSequence{Tensor(Shape{call.rows, width}, std::move(result.output)), call.batch_sizes,
                           call.sorted_indices, call.unsorted_indices},
            hidden};
  const int64_t T = call.seq_len;
  Tensor out;
  if (!o.batch_first) {
    out = Tensor(Shape{T, B, width}, std::move(result.output));
  } else {
    out = Tensor(Shape{B, T, width});
    for (int64_t t = 0; t < T; ++t)
      for (int64_t b = 0; b < B; ++b)
        std::copy(result.output.begin() + (t * B + b) * width, result.output.begin() + (t * B + b + 1) * width,
                  out.data.begin() + (b * T + t) * width);
  }
  if (call.unbatched) out.sizes = {T, width};
  return {std::move(out), std::move(hidden)};
}

RnnModule::RnnModule(RnnOptions options, RnnInputRules rules) : options_(std::move(options)), rules_(rules) {
  options_.validate();
}

ModuleOutput RnnModule::forward(const ModuleInput& input) {
  const RnnCall call = prepare_rnn_call(options_, input, rules_, name());
  return finish_rnn_call(options_, call, run(call));
}

void float_projection(const float* x, int64_t rows, int64_t in, const Tensor& weight,
                      const std::optional<Tensor>& bias, float* y) {
  const int64_t out = weight.size(0);
  if (weight.size(1) != in)
    throw Error("mat1 and mat2 shapes cannot be multiplied (" + std::to_string(rows) + "x" + std::to_string(in) +
                " and " + std::to_string(weight.size(1)) + "x" + std::to_string(out) + ")");
  Eigen::Map<const RowMajor> xm(x, rows, in);
  Eigen::Map<const RowMajor> wm(weight.data.data(), out, in);
  Eigen::Map<RowMajor> ym(y, rows, out);
  ym.noalias() = xm * wm.transpose();
  if (bias) ym.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias->data.data(), out);
}

FloatRNN::FloatRNN(RnnOptions options, std::vector<RnnParameters> parameters)
    : RnnModule(std::move(options), RnnInputRules::Float), parameters_(std::move(parameters)) {
  check_rnn_parameters(options_, parameters_, name());
}

RnnResult FloatRNN::run(const RnnCall& call) { return run_float_rnn(options_, parameters_, call); }

RnnResult run_float_rnn(const RnnOptions& options, const std::vector<RnnParameters>& parameters, const RnnCall& call) {
  struct Projections {
    const std::vector<RnnParameters>& p;
    void project_input(int64_t set, const float* x, int64_t rows, int64_t in, float* out) {
      float_projection(x, rows, in, p[set].w_ih, p[set].b_ih, out);
    }
    void project_hidden(int64_t set, const float* h, int64_t rows, float* out) {
      float_projection(h, rows, p[set].w_hh.size(1), p[set].w_hh, p[set].b_hh, out);
    }
  } projections{parameters};
  auto run = run_rnn<float>(options, projections, call.data, call.rows, call.batch_sizes, call.h0, call.c0);
  return {std::move(run.output), std::move(run.h_n), std::move(run.c_n)};
}

std::vector<std::string> rnn_parameter_keys(const RnnOptions& o) {
  std::vector<std::string> keys;
  for (int64_t i = 0; i < o.parameter_sets(); ++i) {
    const RnnParameterNames n = rnn_parameter_names(o, i);
    keys.push_back(n.w_ih);
    keys.push_back(n.w_hh);
    if (o.bias) {
      keys.push_back(n.b_ih);
      keys.push_back(n.b_hh);
    }
  }
  return keys;
}

void save_rnn_parameters(StateDict* state, const RnnOptions& o, const std::vector<RnnParameters>& parameters) {
  for (int64_t i = 0; i < o.parameter_sets(); ++i) {
    const RnnParameterNames n = rnn_parameter_names(o, i);
    state->set(n.w_ih, parameters[i].w_ih);
    state->set(n.w_hh, parameters[i].w_hh);
    if (parameters[i].b_ih) state->set(n.b_ih, *parameters[i].b_ih);
    if (parameters[i].b_hh) state->set(n.b_hh, *parameters[i].b_hh);
  }
}

std::vector<RnnParameters> load_rnn_parameters(const StateDict& state, const RnnOptions& o) {
  std::vector<RnnParameters> parameters;
  for (int64_t i = 0; i < o.parameter_sets(); ++i) {
    const RnnParameterNames n = rnn_parameter_names(o, i);
    RnnParameters p{state.at(n.w_ih).as<Tensor>(n.w_ih), state.at(n.w_hh).as<Tensor>(n.w_hh), std::nullopt,
                    std::nullopt};
    if (o.bias) {
      p.b_ih = state.at(n.b_ih).as<Tensor>(n.b_ih);
      p.b_hh = state.at(n.b_hh).as<Tensor>(n.b_hh);
    }
    parameters.push_back(std::move(p));
  }
  return parameters;
}

StateDict FloatRNN::state_dict() const {
  StateDict state;
  save_rnn_parameters(&state, options_, parameters_);
  state.versions[""] = 1;
  return state;
}

void FloatRNN::load_state_dict(const StateDict& state) {
  state.check_keys(rnn_parameter_keys(options_), name());
  std::vector<RnnParameters> parameters = load_rnn_parameters(state, options_);
  check_rnn_parameters(options_, parameters, name());  // before replacing anything
  parameters_ = std::move(parameters);
}

}  // namespace qconform
