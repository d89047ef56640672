#pragma once
// What a module kind declares: its PyTorch names, its family, which implementations exist
// and on which engines, how to build a random case for it, and how its outputs depend on
// its inputs (for derived error bounds). The kinds themselves are built above the two
// implementations, one file per family (oracles/kinds/), and listed once in the registry
// (oracles/kinds/registry.h), which oracles, properties, the CLI and the report iterate:
// adding a module adds its implementations and its kind, never oracle code.
//
// Torch-free and free of every layer above core/, like the rest of core/.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/engines.h"
#include "core/module.h"

namespace qconform {

struct ModuleSpec;  // core/fixture.h

enum class Family { Dynamic, Static, WeightOnly, Reference };
std::string to_string(Family family);  // "dynamic", "static", "weight-only", "reference"

// One integer parameter of a kind's random cases (a size, a flag, a choice).
struct CaseParameter {
  std::string name;
  int64_t min;
  int64_t max;
  std::string meaning;
};

// How a case's input values are drawn; each style aims at a different failure mode.
enum class InputStyle {
  Normal,        // N(0, 1) times a random magnitude
  RoundingTies,  // many values exactly halfway between two quanta of the dynamic qparams
  Constant,      // one value everywhere (including all-zero)
  WideRange,     // magnitudes from 1e-6 to 1e4 in one tensor
};
std::string to_string(InputStyle style);
constexpr int kInputStyles = 4;

struct CaseConfig {
  std::map<std::string, int64_t> values;  // one per CaseParameter
  uint64_t data_seed = 0;                 // weights and inputs
  InputStyle style = InputStyle::Normal;
  int64_t get(const std::string& name) const;  // throws Error naming the parameter
  std::string to_string() const;               // "batch=1 in=3 ... seed=42 style=ties"
};

struct Case {
  std::unique_ptr<Module> float_module;  // with its qconfig attached
  ModuleInput input;
};

// A variant of a case that PyTorch refuses at the call: operands of another dtype or scheme,
// shapes that do not fit, a dimension or a padding out of range.
struct RefusalCase {
  std::string variant;  // "a per-channel second operand"
  Case c;
};

// For one output element y = sum_k w_k x_k + b of a module's reduction:
//   weight_l1 = sum_k |w_k|          (how input rounding propagates)
//   magnitude = sum_k |w_k x_k| + |b| (the scale of float rounding in the sum)
//   terms     = the number of products summed (K)
struct OutputSensitivity {
  double weight_l1 = 0;
  double magnitude = 0;
  int64_t terms = 0;
  // Static kinds (outputs in quanta of output_scale):
  double output_scale = 0;
  double bias_rounding = 0;    // half of x_scale * w_scale: the int32 bias's rounding
  double saturation_loss = 0;  // |exact - int16-pair-saturated accumulator| in output quanta
  // The int32 bias (bias / (x_scale * w_scale)) plus the accumulator leaves int32: an
  // engine that rounds the bias to int32 (qnnpack) clamps and wraps, as PyTorch 1.13 does.
  bool int32_bias_overflow = false;
  // A transposed convolution's output position that no input value reaches (a stride beyond
  // the dilated kernel): it holds the bias alone, as PyTorch specifies; an engine may leave
  // it unspecified (engine table: transposed_uncovered_outputs_unspecified).
  bool unreached = false;
  // What the integer form loses by design beyond rounding, on any engine (QNNPACK's add: its
  // 22-bit multipliers; add_scalar: the scalar rounded to the input's grid; a quint4x2
  // embedding's scale and bias rounded to half). In output quanta, added to the OutputQuanta
  // bound; for float outputs (EpilogueRoundings rows) an absolute error, added likewise.
  double design_quanta = 0;
};

// How a kind's outputs depend on its inputs, which decides the tolerance rows that apply:
// one reduction per output element (Linear), a recurrence of reductions and gates (LSTM,
// GRU, cells), whose bounds are propagated step by step, one function of one input
// element per output element (the activations), or a window of input elements per output
// element, on the input's grid (pooling).
// ElementwiseFloat: one input element per output element, with float outputs (DeQuantize).
// Softmax: every output element depends on its whole row along one dimension.
// Normalization: each element normalized by its group's statistics (BatchNorm: the channel's
// running statistics, an affine map per channel).
// FloatReduction: a reduction computed in float between dequantize and quantize (quantized::matmul:
// LibTorch's BLAS sums in an order of its own).
enum class Structure { Reduction, Recurrent, Elementwise, Pooling, ElementwiseFloat, Softmax, Normalization, FloatReduction };
// "reduction", "recurrent", "elementwise", "pooling", "elementwise-float", "softmax", "float-reduction",
// "normalization"
std::string to_string(Structure structure);

// The two implementations compared, as a recurrent bound needs to know them.
struct RecurrentBoundModel {
  int quantizing_sides = 1;   // sides that quantize activations: 1 (reference vs integer), 2
  bool same_engine = false;   // both quantizing sides follow one engine: equal inputs, equal integers
  Engine engine = Engine::QNNPACK;  // the engine of the quantizing side(s)
  int saturating_sides = 0;   // sides that sum u8 x s8 pairs in int16 (engines.h sums_int16_pairs)
  double function_ulps = 2;   // per side, for each sigmoid / tanh (tolerance table)
  bool reduce_range = true;   // what the modules ask for: true for version-2 LSTM/GRU and cells
};

struct ImplementationEntry {
  Implementation implementation;
  std::string repr_name;       // PyTorch's _get_name()
  std::vector<Engine> engines; // engines whose numerics it follows; empty: engine-independent
  // Conversion entry points. from_reference is empty where PyTorch has none.
  std::function<std::unique_ptr<Module>(const Module& float_module, const EngineProfile&)> from_float;
  std::function<std::unique_ptr<Module>(const Module& reference, const EngineProfile&)> from_reference;
  // LibTorch entries whose forward calls one packed weight several times: the same
  // conversion with every call on a weight prepacked for it alone (quantized/libtorch/
  // dynamic_rnn.h says why). The agreement oracle asks it when LibTorch disagrees.
  std::function<std::unique_ptr<Module>(const Module& float_module, const EngineProfile&)> from_float_fresh_prepack =
      {};
};

struct ModuleKind {
  std::string key;         // "dynamic.Linear"
  std::string float_name;  // the float module's name, "Linear"
  Family family;
  EngineOp engine_op;      // the engine-table row that governs it
  Structure structure = Structure::Reduction;
  std::vector<ImplementationEntry> implementations;
  std::vector<CaseParameter> case_parameters;
  std::function<Case(const CaseConfig&)> make_case;
  // Per output element, from the reference module (its fake-quantized weights).
  // Reduction kinds: per output element, from the reference module (its fake-quantized
  // weights); the tolerance row turns it into a bound.
  std::function<std::vector<OutputSensitivity>(const Module& reference, const ModuleInput&)>
      sensitivity;
  // Recurrent kinds: the bound of every output element (output, then h_n, then c_n, as
  // flatten_output orders them), propagated through the recurrence.
  std::function<std::vector<double>(const Module& reference, const ModuleInput&, const RecurrentBoundModel&)>
      recurrent_bounds;
  // Recurrent kinds with a time axis: the time step of each flattened output element, in the
  // order the recurrence computes it (a reverse direction's step T - 1 - t), -1 for none (the
  // final states): the agreement oracle reports where along the sequence a difference starts.
  std::function<std::vector<int64_t>(const Module& reference, const ModuleInput& input)> sequence_steps;
  // For the rejection oracle: the shape of the reference module's weight, and the same
  // reference module with other weight qparams (empty for kinds without weights).
  std::function<Shape(const Module& reference)> weight_shape;
  std::function<std::unique_ptr<Module>(const Module& reference, const QuantParams& weight_qparams)>
      with_weight_qparams;
  // A weight rule the module applies before any engine sees the weights (the dynamic RNNs'
  // dtype rule); returns the module's message when it refuses. Empty: no such rule.
  std::function<std::optional<std::string>(const QuantParams& weight_qparams)> module_weight_rule;
  // A rule on the module's configuration that an engine checks at prepack before the weights
  // (onednn: a transposed convolution's output_padding); returns the engine's message when
  // it refuses. Empty: no such rule.
  std::function<std::optional<std::string>(const Module& reference, Engine engine)> engine_config_rule;
  // A configuration LibTorch's kernel on `engine` computes wrongly when its oneDNN dispatches
  // to `onednn_isa` (engines.h LibTorchConvDefect); returns the defect's description. Empty:
  // none known.
  std::function<std::optional<std::string>(const Module& reference, const ModuleInput& input, Engine engine,
                                           const std::string& onednn_isa)>
      libtorch_defect;
  // A configuration whose computation an engine defines otherwise than PyTorch's module
  // does, by design of its kernels (qnnpack's average pooling counts padding and divides by
  // the kernel's area whatever count_include_pad and divisor_override say); returns the
  // deviation's description. That engine's sides, integer and LibTorch alike, are then not
  // compared with the reference (differing elements are classed engine-deviation); with
  // each other they still must agree. Empty: none.
  std::function<std::optional<std::string>(const Module& reference, Engine engine)> engine_deviation;
  // false where the module is not in PyTorch 1.13's qconfig propagation list (the keys of
  // its static, QAT and dynamic mappings), so prepare gives it no observer: the activations
  // it runs as float modules on quantized tensors (ReLU, Sigmoid, Hardsigmoid, Tanh), the
  // pooling modules, and Dropout (which _add_observer_ skips); and the custom modules of its
  // no_observer_set (the quantizable LSTM observes its own parts). prepare's
  // non_leaf_module_list observes the others all the same.
  bool observed_at_prepare = true;
  // false where PyTorch 1.13's eager convert leaves the float module in place because its
  // mappings hold no entry for it (nn.Softmax: nnq.Softmax is reached by from_float).
  bool eager_mapped = true;
  // false where the reference takes and gives quantized tensors itself rather than float
  // ones between stubs (the static LSTM: PyTorch's custom-module LSTM has no float reference
  // form; convert(..., is_reference=True) gives it the quantized LSTM's interface).
  bool reference_between_stubs = true;
  // false where prepare's observer never sees the module's output (FloatFunctional's
  // add_scalar and mul_scalar do not call it): the observer is attached without its hook.
  bool output_observed = true;
  // Refusal cases derived from a case (RefusalCase): the rejection oracle checks that the
  // integer side refuses each exactly as LibTorch does, on every engine. Empty: none.
  std::function<std::vector<RefusalCase>(const CaseConfig&)> refusal_cases;
  // false where PyTorch keeps part of a converted module's state outside its state_dict
  // (nnq.Hardswish's and nnq.ELU's output scale and zero point are plain attributes): the
  // state_dict oracle then compares keys and values but not a reloaded module's outputs.
  bool state_dict_holds_all_state = true;
  // false where PyTorch refuses per-channel weight observers for the module (ConvTranspose,
  // at prepare): cases draw per-tensor weights and the rejection oracle leaves per-channel
  // variants out (the eager flow's refusal is tested instead).
  bool per_channel_weights = true;
  // How many cases of one agreement property or conformance cell may be recomputed in a fresh
  // process when LibTorch disagrees (oracles/agreement.h FreshProcessBudget). More where
  // LibTorch is known to answer differently inside long runs often: onednn's static LSTM
  // (about 1 model in 5 of a long run, scripts/onednn_static_lstm_history.py).
  int fresh_process_reruns = 5;
  // Fixtures (core/fixture.h): the module rebuilt from its constructor arguments and the
  // integer parameters a LibTorch archive held. The reference gets the dequantized weights
  // with their qparams, so that its fake-quantization gives back the same integers; the
  // integer module gets the integers themselves. Error names what the spec lacks.
  std::function<std::unique_ptr<Module>(const ModuleSpec&)> reference_from_spec;
  std::function<std::unique_ptr<Module>(const ModuleSpec&, const EngineProfile&)> quantized_from_spec;
  // The inverse: the kind's parameters (constructor arguments, integer weights, bias, output
  // qparams) as a fixture would hold them, from a reference module. What a plug-in's factory
  // is given (oracles/plugin.h). Empty: plug-ins cannot implement the kind yet.
  std::function<ModuleSpec(const Module& reference)> spec_from_reference;

  const ImplementationEntry* find(Implementation implementation) const;
  bool supports(Implementation implementation, Engine engine) const;
};

}  // namespace qconform
