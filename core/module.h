#pragma once
// The one interface every module implements: the float modules conversions start from,
// the reference (fake-quant) implementation, the integer implementation, and LibTorch's
// kernels. Oracles see only this interface.
//
// Forward takes and returns typed values: a float tensor, a quantized tensor, or a packed
// sequence, each optionally with hidden state (RNNs). Hooks follow torch.nn.Module:
// pre-hooks run before forward and may replace the input; forward hooks run after and may
// replace the output; both run in registration order and are removed through their handles.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/engines.h"
#include "core/qconfig.h"
#include "core/state_dict.h"
#include "core/tensor.h"

namespace qconform {

// torch.nn.utils.rnn.PackedSequence.
struct PackedSequence {
  Tensor data;                        // (sum of lengths, features)
  std::vector<int64_t> batch_sizes;   // per time step
  std::vector<int64_t> sorted_indices;    // empty when the batch was already sorted
  std::vector<int64_t> unsorted_indices;
};

// h for GRU/RNN, (h, c) for LSTM.
struct HiddenState {
  Tensor h;
  std::optional<Tensor> c;
};

// An optional operand given as None because a later one is given: an EmbeddingBag's offsets
// when 2-d indices come with a compressed_indices_mapping (pruned weights), which PyTorch
// passes positionally after them.
struct AbsentOperand {
  bool operator==(const AbsentOperand&) const { return true; }
};

// IntTensor: integer indices and offsets (an Embedding's or EmbeddingBag's input).
using Value = std::variant<Tensor, QTensor, PackedSequence, IntTensor, AbsentOperand>;

struct ModuleInput {
  Value input;
  std::optional<HiddenState> hidden;
  // Further operands of a call with several: add(x, y)'s y, cat([x, y, z])'s y and z.
  std::vector<Value> others = {};
};

// (h_n, c_n) of a statically quantized LSTM: quantized tensors, each with its own qparams.
struct QuantizedHiddenState {
  QTensor h;
  QTensor c;
};

struct ModuleOutput {
  Value output;
  std::optional<HiddenState> hidden;
  std::optional<QuantizedHiddenState> quantized_hidden = std::nullopt;
};

// What a module implements besides Module when it can also run on quint8 channels-last
// operands held as LibTorch holds them (U8ChannelsLast): the same integers as its forward on
// the same values, with no hooks run (run_on_channels_last_bytes, oracles/torchscript_module.h,
// takes this path only for modules without hooks). Every implementation is held to its
// forward bit for bit: the integer and LibTorch convolutions (tests/test_static.cc),
// QFunctional's add (tests/test_functional.cc), the max pool (tests/test_pooling.cc).
class ChannelsLastBytesForward {
 public:
  virtual ~ChannelsLastBytesForward() = default;
  // The output's sizes, scale and zero point for these operands (its bytes unset), or none
  // where this path does not take them: the caller then converts them and calls forward,
  // which also reports what is wrong with them.
  virtual std::optional<U8ChannelsLast> channels_last_output(const std::vector<U8ChannelsLast>& x) const = 0;
  // Writes that output's bytes (N, H, W, C order) to `y`.
  virtual void forward_channels_last(const std::vector<U8ChannelsLast>& x, uint8_t* y) const = 0;
};

// Which implementation a module belongs to; "float" is the unconverted nn module; "plugin"
// an implementation registered from outside (oracles/plugin.h), named by its plug-in.
enum class Implementation { Float, Reference, Quantized, LibTorch, Plugin };
std::string to_string(Implementation implementation);  // "float", "reference", ...
Implementation implementation_from_string(const std::string& name);

class Module;
using ForwardPreHook = std::function<std::optional<ModuleInput>(Module&, const ModuleInput&)>;
using ForwardHook =
    std::function<std::optional<ModuleOutput>(Module&, const ModuleInput&, const ModuleOutput&)>;

namespace detail {
// Hooks under a global id, in call order, like the OrderedDicts of torch.nn.Module (which
// prepare reorders with move_to_end(..., last=False)). Shared with handles through a weak
// pointer.
struct HookTables {
  std::vector<std::pair<uint64_t, ForwardPreHook>> pre_hooks;
  std::vector<std::pair<uint64_t, ForwardHook>> hooks;
};
}  // namespace detail

// Where a new hook goes: after the others (register_forward_hook), or before them (what
// prepare does with its observer hook, so the observer sees the module's own output).
enum class HookPosition { Last, First };

// torch.utils.hooks.RemovableHandle: removing twice, or after the module is gone, is a no-op.
class HookHandle {
 public:
  HookHandle() = default;
  void remove();
  uint64_t id() const { return id_; }

 private:
  friend class Module;
  HookHandle(std::weak_ptr<detail::HookTables> tables, uint64_t id, bool pre)
      : tables_(std::move(tables)), id_(id), pre_(pre) {}
  std::weak_ptr<detail::HookTables> tables_;
  uint64_t id_ = 0;
  bool pre_ = false;
};

class Module {
 public:
  Module();
  virtual ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // PyTorch's _get_name(): "DynamicQuantizedLinear", "QuantizedLinear(Reference)", "Linear".
  virtual std::string name() const = 0;
  // The name the registry's kinds know this module by: its class name, or for a module of
  // one of FloatFunctional's ops "FloatFunctional.add" (the eager flow finds kinds by it).
  virtual std::string kind_name() const { return name(); }
  // PyTorch's extra_repr(); repr() is "name(extra)".
  virtual std::string extra_repr() const { return ""; }
  std::string repr() const;
  virtual Implementation implementation() const = 0;
  // The engine whose numerics an integer or LibTorch module follows.
  virtual std::optional<EngineProfile> engine() const { return std::nullopt; }

  // Runs pre-hooks, forward, hooks (torch.nn.Module.__call__).
  ModuleOutput operator()(const ModuleInput& input);
  // Convenience for single-tensor modules: throws Error if the output is not a float tensor.
  Tensor operator()(const Tensor& x);

  // PyTorch's keys, in PyTorch's order, with PyTorch's versions in StateDict::versions.
  virtual StateDict state_dict() const = 0;
  // Strict: missing or unexpected keys, and values of the wrong kind or shape, throw Error
  // with PyTorch's wording; the module is unchanged when loading fails.
  virtual void load_state_dict(const StateDict& state) = 0;

  HookHandle register_forward_pre_hook(ForwardPreHook hook);
  HookHandle register_forward_hook(ForwardHook hook, HookPosition position = HookPosition::Last);
  size_t forward_pre_hook_count() const { return hooks_->pre_hooks.size(); }
  size_t forward_hook_count() const { return hooks_->hooks.size(); }
  std::vector<uint64_t> forward_pre_hook_ids() const;  // in call order
  std::vector<uint64_t> forward_hook_ids() const;      // in call order
  // Conversions carry hooks over, as torch.ao.quantization's swap_module does: every
  // pre-hook, every forward hook except the observer hook prepare added; handles returned
  // for `other` keep referring to `other`'s tables.
  void copy_hooks_from(const Module& other);
  // fuse_modules' move (fuse_known_modules): the first module's pre-hooks and the last
  // module's forward hooks go to the fused module, in order, and leave the modules they were
  // on (PyTorch deletes them there). Ids are kept.
  void move_forward_pre_hooks_from(Module& other);
  void move_forward_hooks_from(Module& other);

  // torch.nn.Module.training. The harness builds modules in evaluation mode (the state
  // post-training quantization starts from), so false by default where torch.nn's is true;
  // fuse_modules refuses to fold a BatchNorm that is training, as PyTorch does.
  bool training = false;

  // The forward hook prepare registered to feed activation_post_process (PyTorch's
  // _observer_forward_hook), if any.
  std::optional<uint64_t> observer_hook_id;
  // _remove_activation_post_process: drops activation_post_process and the observer hook.
  void remove_observer();

  // The qconfig attached to this module (torch's `module.qconfig`), if any.
  std::optional<QConfig> qconfig;
  // torch's `module.qconfig = None` set by the user, which differs from no attribute at all:
  // the eager flow (oracles/eager.h) then skips this module and, through propagation, its
  // children.
  bool qconfig_explicitly_none = false;
  // The observer of this module's output (torch's `module.activation_post_process`), set
  // by calibration; the static conversions take the output scale and zero point from it.
  std::shared_ptr<Observer> activation_post_process;

 protected:
  virtual ModuleOutput forward(const ModuleInput& input) = 0;

 private:
  std::shared_ptr<detail::HookTables> hooks_;
};

// Where a conversion should land: an implementation and, for integer and LibTorch
// modules, the engine whose numerics it follows.
struct ConversionTarget {
  Implementation implementation = Implementation::Quantized;
  EngineProfile engine = Engine::QNNPACK;
};

// Helpers for implementations.
const Tensor& expect_tensor(const ModuleInput& input, const std::string& module_name);

}  // namespace qconform
