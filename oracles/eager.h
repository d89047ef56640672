#pragma once
// torch.ao.quantization's eager-mode flow over a tree of modules (quantize.py in PyTorch
// 1.13): stubs, containers, qconfig propagation, prepare (observers after modules),
// convert (each observed module swapped for its converted module through the registry) and
// quantize_dynamic. Hooks registered on the float modules are carried across every step as
// swap_module carries them: prepare puts its observer hook first, convert drops it.
//
// The declarations are torch-free; the definitions are compiled with the registry into
// qconform_oracles, whose conversions they use.
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/float/stubs.h"
#include "core/module.h"
#include "quantized/static/quantize.h"

namespace qconform {

// A parent module whose forward runs its named children in order, each taking the last
// one's output (torch.nn.Sequential, and the shape of the seeds' test models). `name` is the
// class name PyTorch would print ("Sequential", "QuantStubModel", "QuantWrapper").
class Sequential : public Module {
 public:
  using Children = std::vector<std::pair<std::string, std::unique_ptr<Module>>>;
  explicit Sequential(Children children, std::string name = "Sequential");

  std::string name() const override { return name_; }
  Implementation implementation() const override { return Implementation::Float; }
  // The children's entries under "<child>." in order (torch.nn.Module.state_dict).
  StateDict state_dict() const override;
  // Strict over the whole tree; nothing changes unless every child accepts its part.
  void load_state_dict(const StateDict& state) override;

  const Children& children() const { return children_; }
  // Throws Error listing the children when there is no child `child_name`.
  Module& child(const std::string& child_name) const;
  // Puts `module` in the child's place, returning the module it replaced.
  std::unique_ptr<Module> replace(const std::string& child_name, std::unique_ptr<Module> module);

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  Children children_;
  std::string name_;
};

// A model that calls one module on several operands, each quantized by its own stub (how a
// model around FloatFunctional.add(x, y) or .cat([x, y, z]) quantizes them): children
// "quant_0" ... "quant_{n-1}" (each followed by "dequant_in_{i}" when `reference`), "module",
// ("quant_out" when `reference`), "dequant". Its forward takes the operands as the input and
// ModuleInput::others.
class OperandsModel : public Sequential {
 public:
  OperandsModel(size_t operands, std::unique_ptr<Module> module, bool reference);

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  size_t operands_;
  bool reference_;
};

// torch.ao.quantization.QuantWrapper: quant, the module, dequant; the stubs take the
// module's qconfig (and its explicit None).
std::unique_ptr<Sequential> quant_wrapper(std::unique_ptr<Module> module);

// propagate_qconfig_: a module's own qconfig (or explicit None) wins, else its parent's;
// the root's parent has none. Afterwards every module holds its effective qconfig.
void propagate_qconfig(Module& root);

// prepare(model): propagates qconfigs, checks each against its module (the ConvTranspose
// per-channel rule, with PyTorch's message), and gives every leaf that PyTorch observes an
// activation_post_process from its qconfig and an observer forward hook placed before the
// module's own hooks. Observed: QuantStub and the float modules of the registry's kinds;
// never DeQuantStub. In place.
// `observer_non_leaf_module_list`: class names observed whatever the propagation list says
// (prepare's observer_non_leaf_module_list).
void prepare(Module& root, const std::set<std::string>& observer_non_leaf_module_list = {});

// prepare_qat(model, inplace=True): PyTorch 1.13's quantization-aware preparation. The model
// must be in training mode (PyTorch asserts it: "prepare_qat only works on models in training
// mode"); qconfigs are propagated, the QAT module swaps of get_default_qat_module_mappings()
// made, then prepare runs: with a QAT qconfig its activation_post_process are fake quantizes,
// whose observer hook returns the output fake-quantized (FloatFunctional's ops, QuantStub and
// the activations then see fake-quantized values in calibration, as in PyTorch). The harness
// has no QAT modules (torch.ao.nn.qat.Linear, Conv2d/3d, their ReLU and BatchNorm fusions): a
// tree holding a module that would be swapped for one is refused before anything changes,
// naming it. In place.
void prepare_qat(Module& root);

// convert(model, is_reference=target.implementation == Reference): every observed child
// (recursively) is swapped: QuantStub -> Quantize with its observer's qparams, DeQuantStub
// -> DeQuantize, a float module -> the registry's static kind converted to `target` (for
// the reference, the bare reference module, as between the seeds' stubs). Pre-hooks and
// forward hooks move to the new module, the observer hook does not. Children without a
// qconfig, and kinds without a conversion, stay. The root itself is not swapped (as in
// PyTorch); give a container. Afterwards no module holds a qconfig or an observer
// (_remove_qconfig).
void convert(Sequential& root, const ConversionTarget& target);

// torch.ao.quantization.quantize(model, run_fn, run_args, inplace=True): prepare, run the
// calibration, convert to `target`. In place only: the harness's module trees are not
// copyable, so PyTorch's default (a deep copy, the argument left as it was) has no equivalent.
void quantize(Sequential& root, const std::function<void(Sequential&)>& run_fn, const ConversionTarget& target);

// quantize_dynamic(model, qconfig_spec, dtype): modules whose class name is in `module_names`
// (PyTorch's default set when empty: Linear, LSTM, GRU, LSTMCell, RNNCell, GRUCell) get
// default_dynamic_qconfig (qint8) or float16_dynamic_qconfig (float16), unless they or a
// parent hold their own; then each is swapped for the registry's dynamic kind converted
// to `target`. Hooks move as in convert.
void quantize_dynamic(Sequential& root, const ConversionTarget& target, DType dtype = DType::QInt8,
                      std::set<std::string> module_names = {});
// quantize_dynamic(model, qconfig_spec={type: qconfig, ...}): each module of a listed class
// (PyTorch's class name: "Linear", "EmbeddingBag") gets that qconfig unless it or a parent
// holds one; then the swaps (the weight-only embeddings are in the dynamic mappings too).
void quantize_dynamic(Sequential& root, const ConversionTarget& target,
                      const std::map<std::string, QConfig>& qconfig_by_class);

}  // namespace qconform
