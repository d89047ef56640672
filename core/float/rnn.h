#pragma once
// The recurrent modules (nn.LSTM, nn.GRU, nn.RNNCell, nn.LSTMCell, nn.GRUCell): what
// every implementation of them shares.
//
//   RnnOptions       the constructor arguments, PyTorch's parameter names and repr
//   prepare_call     the Python wrappers' input checks (with their messages, which differ
//                    between the dynamic modules and the float/reference ones), hidden
//                    state defaults and the sorted_indices permutation, normalised to one
//                    layout: rows of a packed sequence plus batch_sizes
//   finish_call      back to the caller's layout (batch_first, unbatched, packed, the
//                    unsorted_indices permutation)
//   RnnModule        forward = prepare_call -> run -> finish_call; implementations supply
//                    run(), usually core/float/rnn_runner.h's run_rnn with their own
//                    gate projections
//
// FloatRNN is the float module that conversions start from; its gate projections are
// float x W^T + b on Eigen.
#include <optional>
#include <string>
#include <vector>

#include "core/module.h"

namespace qconform {

enum class RnnMode { LSTM, GRU, RNN };

// nn.LSTM / nn.GRU (cell = false) or nn.LSTMCell / nn.GRUCell / nn.RNNCell (cell = true).
struct RnnOptions {
  RnnMode mode = RnnMode::LSTM;
  bool cell = false;
  int64_t input_size = 1;
  int64_t hidden_size = 1;
  int64_t num_layers = 1;      // 1 for cells
  bool bias = true;
  bool batch_first = false;
  double dropout = 0;          // between layers, in training only: inactive here
  bool bidirectional = false;
  std::string nonlinearity = "tanh";  // RNNCell: "tanh" or "relu"
  int64_t proj_size = 0;              // nn.LSTM's; GRU and cells refuse it, as PyTorch does

  int64_t directions() const { return bidirectional ? 2 : 1; }
  int64_t gates() const;  // 4 (LSTM), 3 (GRU), 1 (RNN)
  int64_t gate_size() const { return gates() * hidden_size; }
  int64_t layer_input_size(int64_t layer) const {
    return layer == 0 ? input_size : hidden_size * directions();
  }
  // One (layer, direction) pair per cell of parameters, index layer * directions + direction.
  int64_t parameter_sets() const { return num_layers * directions(); }
  std::string float_name() const;   // "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"
  std::string extra_repr() const;   // PyTorch's: "3, 4, num_layers=2, bidirectional=True"

  // nn.RNNBase / nn.RNNCellBase constructor checks; throws Error with PyTorch's text.
  void validate() const;
};

// PyTorch's parameter names of one parameter set: weight_ih_l0_reverse, ... (LSTM/GRU) or
// weight_ih, ... (cells).
struct RnnParameterNames {
  std::string w_ih, w_hh, b_ih, b_hh;
};
RnnParameterNames rnn_parameter_names(const RnnOptions& options, int64_t index);

// The float parameters of one set: w_ih (G*H, in), w_hh (G*H, H), b_ih, b_hh (G*H).
struct RnnParameters {
  Tensor w_ih, w_hh;
  std::optional<Tensor> b_ih, b_hh;
};
// Shapes checked against the options; Error names the parameter and both shapes.
void check_rnn_parameters(const RnnOptions& options, const std::vector<RnnParameters>& parameters,
                          const std::string& module_name);

// Whose input checks a module runs: the dynamic quantized modules' Python wrappers
// (nnqd.LSTM.check_forward_args, nnqd.RNNCellBase.check_forward_input/hidden), or the
// float and reference modules' (nn.RNNBase, ATen's rnn cell checks, unbatched inputs).
enum class RnnInputRules { Dynamic, Float };

// One call in the runner's layout: `rows` rows of `features` (a packed sequence's data, or
// a seq-first tensor flattened), batch_sizes per time step, h0 (and c0 for LSTM) as
// (parameter_sets, batch, hidden), already permuted by sorted_indices.
struct RnnCall {
  // The rows, read in place from the caller's input (valid while it is) when it is already
  // in this layout, as a sequence usually is (an LSTM's input is megabytes); else from
  // `reordered`. Moving keeps `data` valid; copying would not, so a call is move-only.
  const float* data = nullptr;
  std::vector<float> reordered;
  RnnCall() = default;
  RnnCall(RnnCall&&) = default;
  RnnCall& operator=(RnnCall&&) = default;
  std::vector<float> data_values() const { return std::vector<float>(data, data + rows * features); }
  int64_t rows = 0;
  int64_t features = 0;
  std::vector<int64_t> batch_sizes;
  std::vector<float> h0, c0;
  // How to give the result back.
  bool packed = false;
  bool unbatched = false;
  int64_t seq_len = 0, batch = 0;
  std::vector<int64_t> sorted_indices, unsorted_indices;
};

// The runner's result, in its layout: output rows x (directions * hidden), h_n and c_n as
// (parameter_sets, batch, hidden).
struct RnnResult {
  std::vector<float> output;
  std::vector<float> h_n, c_n;
};

RnnCall prepare_rnn_call(const RnnOptions& options, const ModuleInput& input, RnnInputRules rules,
                         const std::string& module_name);
ModuleOutput finish_rnn_call(const RnnOptions& options, const RnnCall& call, RnnResult result);

class RnnModule : public Module {
 public:
  const RnnOptions& options() const { return options_; }
  std::string extra_repr() const override { return options_.extra_repr(); }

 protected:
  RnnModule(RnnOptions options, RnnInputRules rules);
  ModuleOutput forward(const ModuleInput& input) override;
  virtual RnnResult run(const RnnCall& call) = 0;
  RnnOptions options_;

 private:
  RnnInputRules rules_;
};

class FloatRNN : public RnnModule {
 public:
  FloatRNN(RnnOptions options, std::vector<RnnParameters> parameters);
  std::string name() const override { return options_.float_name(); }
  Implementation implementation() const override { return Implementation::Float; }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  const std::vector<RnnParameters>& parameters() const { return parameters_; }

 protected:
  RnnResult run(const RnnCall& call) override;

 private:
  std::vector<RnnParameters> parameters_;
};

// Float gate projections y = x W^T + b on Eigen (rows x in) -> (rows x out); used by the
// float and the reference modules.
void float_projection(const float* x, int64_t rows, int64_t in, const Tensor& weight,
                      const std::optional<Tensor>& bias, float* y);

// The recurrence with float projections of `parameters` (the float module's, or the
// reference's fake-quantized ones).
RnnResult run_float_rnn(const RnnOptions& options, const std::vector<RnnParameters>& parameters, const RnnCall& call);

// The float parameters as state_dict entries (PyTorch's order: w_ih, w_hh, b_ih, b_hh per set).
void save_rnn_parameters(StateDict* state, const RnnOptions& options,
                         const std::vector<RnnParameters>& parameters);
std::vector<RnnParameters> load_rnn_parameters(const StateDict& state, const RnnOptions& options);
std::vector<std::string> rnn_parameter_keys(const RnnOptions& options);

}  // namespace qconform
