#include "oracles/eager.h"

#include <sstream>

#include "core/error.h"
#include "core/float/static_lstm.h"
#include "core/quantize.h"
#include "oracles/kinds/registry.h"
#include "reference/static.h"

namespace qconform {
namespace {


// ModuleOutput -> the next child's ModuleInput.
ModuleInput as_input(ModuleOutput output) { return ModuleInput{std::move(output.output), std::move(output.hidden)}; }

// The registry kind of `family` whose float module is `float_name`, or null.
const ModuleKind* kind_for(const std::string& float_name, Family family) {
  for (const auto& kind : registry())
    if (kind.family == family && kind.float_name == float_name) return &kind;
  return nullptr;
}

// PyTorch's default qconfig propagation list, as far as the harness has modules: the stubs
// and the float modules of every registered kind (static and dynamic alike).
// The kind prepare (the static flow) sees in a module: its static kind where there is one
// (nn.LSTM is both dynamic.LSTM's and static.LSTM's float module), else any.
const ModuleKind* prepared_kind(const Module& module) {
  if (const ModuleKind* kind = kind_for(module.kind_name(), Family::Static)) return kind;
  for (const auto& kind : registry())
    if (kind.float_name == module.kind_name()) return &kind;
  return nullptr;
}

bool observed_by_prepare(const Module& module, const std::set<std::string>& non_leaf_module_list) {
  if (module.name() == "QuantStub" || module.name() == "DeQuantStub") return true;
  if (non_leaf_module_list.count(module.name())) return true;
  const ModuleKind* kind = prepared_kind(module);
  return kind && kind->observed_at_prepare;
}

// Whether prepare's observer sees the module's output (ModuleKind::output_observed).
bool output_observed(const Module& module) {
  const ModuleKind* kind = prepared_kind(module);
  return !kind || kind->output_observed;
}

// prepare's custom-module swap (get_default_custom_config_dict: nn.LSTM -> the quantizable
// LSTM, observed part by part) for every float LSTM with a static qconfig.
void swap_custom_modules(Module& module) {
  auto* container = dynamic_cast<Sequential*>(&module);
  if (!container) return;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> swaps;
  for (const auto& [child_name, child] : container->children()) {
    swap_custom_modules(*child);
    const auto* rnn = dynamic_cast<const FloatRNN*>(child.get());
    if (rnn && rnn->options().mode == RnnMode::LSTM && !rnn->options().cell && rnn->qconfig &&
        !rnn->qconfig->is_dynamic())
      swaps.emplace_back(child_name, prepare_static_lstm(*rnn));
  }
  for (auto& [child_name, observed] : swaps) container->replace(child_name, std::move(observed));
}

void propagate(Module& module, const std::optional<QConfig>& parent) {
  if (!module.qconfig && !module.qconfig_explicitly_none) module.qconfig = parent;
  if (module.qconfig_explicitly_none) module.qconfig.reset();
  if (auto* container = dynamic_cast<Sequential*>(&module))
    for (const auto& [child_name, child] : container->children()) {
      if (module.qconfig_explicitly_none && !child->qconfig) child->qconfig_explicitly_none = true;
      propagate(*child, module.qconfig);
    }
}

// torch.ao.quantization.qconfig.assert_valid_qconfig.
void assert_valid_qconfig(const Module& module) {
  if (!module.qconfig) return;
  const std::string& n = module.name();
  if (n.rfind("ConvTranspose", 0) == 0 && module.qconfig->weight.make) {
    const auto observer = module.qconfig->weight();
    if (is_per_channel(observer->qscheme()))
      throw Error("Per channel weight observer is not supported yet for ConvTranspose{n}d.");
  }
}

void add_observers(Module& module, const std::set<std::string>& non_leaf_module_list) {
  if (auto* container = dynamic_cast<Sequential*>(&module)) {
    for (const auto& [child_name, child] : container->children()) add_observers(*child, non_leaf_module_list);
    return;
  }
  // "We don't insert observer/fake_quantize for DeQuantStub" (quantize.py).
  if (!module.qconfig || !observed_by_prepare(module, non_leaf_module_list) || module.name() == "DeQuantStub") return;
  std::shared_ptr<Observer> observer = module.qconfig->activation();
  module.activation_post_process = observer;
  if (!output_observed(module)) return;
  // _observer_forward_hook returns activation_post_process(output): an observer gives the
  // output back, a fake quantize (QAT) gives it fake-quantized.
  const HookHandle handle = module.register_forward_hook(
      [observer](Module& m, const ModuleInput&, const ModuleOutput& output) -> std::optional<ModuleOutput> {
        const auto* y = std::get_if<Tensor>(&output.output);
        if (!y) throw Error(m.name() + ": its observer expects a float output");
        if (auto* fake_quantize = dynamic_cast<FakeQuantize*>(observer.get()))
          return ModuleOutput{fake_quantize->forward(*y), output.hidden};
        observer->observe(*y);
        return std::nullopt;
      },
      HookPosition::First);
  module.observer_hook_id = handle.id();
}

// swap_module for one leaf: the converted module, or null when this leaf stays.
std::unique_ptr<Module> swapped(const Module& module, const ConversionTarget& target, Family family) {
  if (!module.qconfig) return nullptr;
  std::unique_ptr<Module> converted;
  if (family == Family::Static && module.name() == "QuantStub") {
    if (!module.activation_post_process)
      throw Error("QuantStub has no activation_post_process: run prepare and calibration before convert");
    const QuantParams q = module.activation_post_process->calculate_qparams();
    // nnq.Quantize.from_float: scale.float().item(), zero_point.long().item().
    converted = std::make_unique<Quantize>(static_cast<float>(q.scale()), q.zero_point(),
                                           module.activation_post_process->dtype());
  } else if (family == Family::Static && module.name() == "DeQuantStub") {
    converted = std::make_unique<DeQuantize>();
  } else if (const ModuleKind* kind = kind_for(module.kind_name(), family) ? kind_for(module.kind_name(), family)
                                                                            : kind_for(module.kind_name(),
                                                                                       Family::WeightOnly)) {
    // The weight-only embeddings are in both PyTorch's static and dynamic mappings.
    if (!kind->find(target.implementation) || !kind->eager_mapped) return nullptr;
    converted = convert_from_float(*kind, module, target);
    if (auto* wrapped = dynamic_cast<StaticReference*>(converted.get())) {
      std::unique_ptr<Module> bare = wrapped->release_module();
      bare->copy_hooks_from(module);
      converted = std::move(bare);
    }
    return converted;  // convert_from_float carried the hooks
  } else {
    return nullptr;
  }
  converted->copy_hooks_from(module);
  return converted;
}

struct Replacement {
  Sequential* parent;
  std::string child_name;
  std::unique_ptr<Module> module;
};

// Every swap of the tree, computed before any is made.
void collect_replacements(Sequential& root, const ConversionTarget& target, Family family,
                          std::vector<Replacement>* replacements) {
  for (const auto& [child_name, child] : root.children()) {
    if (auto* container = dynamic_cast<Sequential*>(child.get())) {
      collect_replacements(*container, target, family, replacements);
      continue;
    }
    if (auto converted = swapped(*child, target, family))
      replacements->push_back({&root, child_name, std::move(converted)});
  }
}

// A refused conversion anywhere in the tree leaves the whole tree as it was.
void convert_children(Sequential& root, const ConversionTarget& target, Family family) {
  std::vector<Replacement> replacements;
  collect_replacements(root, target, family, &replacements);
  for (auto& r : replacements) r.parent->replace(r.child_name, std::move(r.module));
}

}  // namespace

Sequential::Sequential(Children children, std::string name) : children_(std::move(children)), name_(std::move(name)) {
  for (const auto& [child_name, child] : children_)
    if (!child) throw Error(name_ + ": child '" + child_name + "' is null");
}

Module& Sequential::child(const std::string& child_name) const {
  std::string known;
  for (const auto& [n, c] : children_) {
    if (n == child_name) return *c;
    known += (known.empty() ? "" : ", ") + n;
  }
  throw Error(name_ + " has no child '" + child_name + "' (children: " + known + ")");
}

std::unique_ptr<Module> Sequential::replace(const std::string& child_name, std::unique_ptr<Module> module) {
  child(child_name);  // throws naming the children
  for (auto& [n, c] : children_)
    if (n == child_name) std::swap(c, module);
  return module;
}

StateDict Sequential::state_dict() const {
  StateDict state;
  for (const auto& [child_name, child] : children_) {
    const StateDict part = prefixed_state_dict(child->state_dict(), child_name);
    for (const auto& [key, value] : part.entries()) state.set(key, value);
    for (const auto& [key, version] : part.versions) state.versions[key] = version;
  }
  return state;
}

void Sequential::load_state_dict(const StateDict& state) {
  state.check_keys(state_dict().keys(), name_);
  // Each child checks its part before anything is loaded; a child that still refuses
  // (a value it cannot take) gets its old state back, and so do the ones before it.
  std::vector<StateDict> previous;
  try {
    for (const auto& [child_name, child] : children_) {
      previous.push_back(child->state_dict());
      child->load_state_dict(state_dict_under(state, child_name));
    }
  } catch (...) {
    for (size_t i = 0; i + 1 < previous.size(); ++i) children_[i].second->load_state_dict(previous[i]);
    throw;
  }
}

ModuleOutput Sequential::forward(const ModuleInput& input) {
  ModuleInput current = input;
  ModuleOutput output{input.input, input.hidden};
  for (const auto& [child_name, child] : children_) {
    output = (*child)(current);
    current = as_input(output);
  }
  return output;
}

namespace {

Sequential::Children operands_children(size_t operands, std::unique_ptr<Module> module, bool reference) {
  Sequential::Children children;
  for (size_t i = 0; i < operands; ++i) {
    children.emplace_back("quant_" + std::to_string(i), std::make_unique<QuantStub>());
    if (reference) children.emplace_back("dequant_in_" + std::to_string(i), std::make_unique<DeQuantStub>());
  }
  children.emplace_back("module", std::move(module));
  if (reference) children.emplace_back("quant_out", std::make_unique<QuantStub>());
  children.emplace_back("dequant", std::make_unique<DeQuantStub>());
  return children;
}

}  // namespace

OperandsModel::OperandsModel(size_t operands, std::unique_ptr<Module> module, bool reference)
    : Sequential(operands_children(operands, std::move(module), reference), "Model"),
      operands_(operands),
      reference_(reference) {}

ModuleOutput OperandsModel::forward(const ModuleInput& input) {
  if (input.others.size() + 1 != operands_)
    throw Error("Model: takes " + std::to_string(operands_) + " operands, got " + std::to_string(input.others.size() + 1));
  ModuleInput call{Tensor{}, std::nullopt};
  for (size_t i = 0; i < operands_; ++i) {
    ModuleOutput q = child("quant_" + std::to_string(i))(ModuleInput{i == 0 ? input.input : input.others[i - 1],
                                                                     std::nullopt});
    if (reference_) q = child("dequant_in_" + std::to_string(i))(as_input(std::move(q)));
    if (i == 0)
      call.input = std::move(q.output);
    else
      call.others.push_back(std::move(q.output));
  }
  ModuleOutput y = child("module")(call);
  if (reference_) y = child("quant_out")(as_input(std::move(y)));
  return child("dequant")(as_input(std::move(y)));
}

std::unique_ptr<Sequential> quant_wrapper(std::unique_ptr<Module> module) {
  auto quant = std::make_unique<QuantStub>();
  auto dequant = std::make_unique<DeQuantStub>();
  for (Module* stub : {static_cast<Module*>(quant.get()), static_cast<Module*>(dequant.get())}) {
    stub->qconfig = module->qconfig;
    stub->qconfig_explicitly_none = module->qconfig_explicitly_none;
  }
  Sequential::Children children;
  children.emplace_back("quant", std::move(quant));
  children.emplace_back("module", std::move(module));
  children.emplace_back("dequant", std::move(dequant));
  return std::make_unique<Sequential>(std::move(children), "QuantWrapper");
}

void propagate_qconfig(Module& root) { propagate(root, std::nullopt); }

void prepare(Module& root, const std::set<std::string>& observer_non_leaf_module_list) {
  propagate_qconfig(root);
  // Every qconfig is checked before any observer goes in: a refusal leaves no half-prepared tree.
  std::function<void(Module&)> check = [&](Module& m) {
    assert_valid_qconfig(m);
    if (auto* container = dynamic_cast<Sequential*>(&m))
      for (const auto& [child_name, child] : container->children()) check(*child);
  };
  check(root);
  swap_custom_modules(root);
  add_observers(root, observer_non_leaf_module_list);
}

void prepare_qat(Module& root) {
  if (!root.training) throw Error("prepare_qat only works on models in training mode");
  // get_default_qat_module_mappings()'s keys (PyTorch 1.13), by class name.
  static const std::set<std::string> qat_mapped{"Linear",    "LinearReLU",   "LinearBn1d",   "Conv2d",
                                                "Conv3d",    "ConvReLU2d",   "ConvReLU3d",   "ConvBn1d",
                                                "ConvBn2d",  "ConvBn3d",     "ConvBnReLU1d", "ConvBnReLU2d",
                                                "ConvBnReLU3d"};
  // Checked on the qconfigs propagation will give, before anything changes.
  std::function<void(const Module&, const std::string&, bool)> refuse = [&](const Module& m, const std::string& path,
                                                                           bool parent_has_qconfig) {
    const bool has_qconfig = !m.qconfig_explicitly_none && (m.qconfig.has_value() || parent_has_qconfig);
    if (const auto* container = dynamic_cast<const Sequential*>(&m)) {
      for (const auto& [child_name, child] : container->children())
        refuse(*child, path.empty() ? child_name : path + "." + child_name, has_qconfig);
      return;
    }
    if (has_qconfig && qat_mapped.count(m.name()))
      throw Error("prepare_qat: " + path + " (" + m.name() + ") would become torch.ao.nn.qat." + m.name() +
                  ", a module that fake-quantizes its weight in training, which the harness does not implement; "
                  "give it qconfig None, or quantize it after training with prepare");
  };
  refuse(root, "", false);
  prepare(root);
}

void convert(Sequential& root, const ConversionTarget& target) {
  convert_children(root, target, Family::Static);
  // _remove_qconfig: no module keeps a qconfig, nor an observer (with its hook) that convert
  // left in place.
  std::function<void(Module&)> remove = [&](Module& m) {
    if (auto* container = dynamic_cast<Sequential*>(&m))
      for (const auto& [child_name, child] : container->children()) remove(*child);
    m.qconfig.reset();
    m.remove_observer();
  };
  remove(root);
}

void quantize(Sequential& root, const std::function<void(Sequential&)>& run_fn, const ConversionTarget& target) {
  prepare(root);
  run_fn(root);
  convert(root, target);
}

void quantize_dynamic(Sequential& root, const ConversionTarget& target,
                      const std::map<std::string, QConfig>& qconfig_by_class) {
  std::function<void(Module&, const std::optional<QConfig>&)> assign = [&](Module& m,
                                                                          const std::optional<QConfig>& parent) {
    if (!m.qconfig && !m.qconfig_explicitly_none) {
      const auto own = qconfig_by_class.find(m.name());
      m.qconfig = own != qconfig_by_class.end() ? std::optional<QConfig>(own->second) : parent;
    }
    if (m.qconfig_explicitly_none) m.qconfig.reset();
    if (auto* container = dynamic_cast<Sequential*>(&m))
      for (const auto& [child_name, child] : container->children()) assign(*child, m.qconfig);
  };
  assign(root, std::nullopt);
  convert_children(root, target, Family::Dynamic);
}

void quantize_dynamic(Sequential& root, const ConversionTarget& target, DType dtype, std::set<std::string> module_names) {
  if (dtype != DType::QInt8 && dtype != DType::Float16)
    throw Error("Don't know how to quantize with default settings for " + to_string(dtype) +
                ". Provide full qconfig please");
  if (module_names.empty()) module_names = {"Linear", "LSTM", "GRU", "LSTMCell", "RNNCell", "GRUCell"};
  const QConfig qconfig = dtype == DType::QInt8 ? default_dynamic_qconfig() : float16_dynamic_qconfig();
  std::function<void(Module&, const std::optional<QConfig>&)> assign = [&](Module& m,
                                                                          const std::optional<QConfig>& parent) {
    if (!m.qconfig && !m.qconfig_explicitly_none) m.qconfig = module_names.count(m.name()) ? qconfig : parent;
    if (m.qconfig_explicitly_none) m.qconfig.reset();
    if (auto* container = dynamic_cast<Sequential*>(&m))
      for (const auto& [child_name, child] : container->children()) assign(*child, m.qconfig);
  };
  assign(root, std::nullopt);
  convert_children(root, target, Family::Dynamic);
}

}  // namespace qconform
