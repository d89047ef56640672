#include "core/module.h"

#include <algorithm>
#include <atomic>

#include "core/error.h"

namespace qconform {
namespace {
std::atomic<uint64_t> next_hook_id{1};  // global, as torch.utils.hooks.RemovableHandle.next_id
}  // namespace

std::string to_string(Implementation implementation) {
  switch (implementation) {
    case Implementation::Float: return "float";
    case Implementation::Reference: return "reference";
    case Implementation::Quantized: return "quantized";
    case Implementation::LibTorch: return "libtorch";
    case Implementation::Plugin: return "plugin";
  }
  return "?";
}

Implementation implementation_from_string(const std::string& name) {
  for (auto i : {Implementation::Float, Implementation::Reference, Implementation::Quantized,
                 Implementation::LibTorch})
    if (to_string(i) == name) return i;
  throw Error("unknown implementation '" + name + "' (known: float, reference, quantized, libtorch)");
}

void HookHandle::remove() {
  if (auto tables = tables_.lock()) {
    const auto matches = [this](const auto& entry) { return entry.first == id_; };
    if (pre_) tables->pre_hooks.erase(std::remove_if(tables->pre_hooks.begin(), tables->pre_hooks.end(), matches),
                                      tables->pre_hooks.end());
    else tables->hooks.erase(std::remove_if(tables->hooks.begin(), tables->hooks.end(), matches), tables->hooks.end());
  }
}

Module::Module() : hooks_(std::make_shared<detail::HookTables>()) {}
Module::~Module() = default;

std::string Module::repr() const { return name() + "(" + extra_repr() + ")"; }

ModuleOutput Module::operator()(const ModuleInput& input) {
  // Copy the tables first: a hook may remove itself or register another while running,
  // and PyTorch iterates a snapshot (list(...values())) as well.
  // The input is copied only when a pre-hook replaces it (an LSTM's input is megabytes).
  const auto pre_hooks = hooks_->pre_hooks;
  std::optional<ModuleInput> replaced_input;
  for (const auto& [id, hook] : pre_hooks)
    if (auto replaced = hook(*this, replaced_input ? *replaced_input : input)) replaced_input = std::move(*replaced);
  const ModuleInput& current = replaced_input ? *replaced_input : input;
  ModuleOutput output = forward(current);
  const auto hooks = hooks_->hooks;
  for (const auto& [id, hook] : hooks)
    if (auto replaced = hook(*this, current, output)) output = std::move(*replaced);
  return output;
}

Tensor Module::operator()(const Tensor& x) {
  ModuleOutput out = (*this)(ModuleInput{x, std::nullopt});
  if (auto* t = std::get_if<Tensor>(&out.output)) return std::move(*t);
  throw Error(name() + ": output is not a float tensor; call with ModuleInput instead");
}

HookHandle Module::register_forward_pre_hook(ForwardPreHook hook) {
  const uint64_t id = next_hook_id++;
  hooks_->pre_hooks.emplace_back(id, std::move(hook));
  return HookHandle(hooks_, id, /*pre=*/true);
}

HookHandle Module::register_forward_hook(ForwardHook hook, HookPosition position) {
  const uint64_t id = next_hook_id++;
  auto where = position == HookPosition::First ? hooks_->hooks.begin() : hooks_->hooks.end();
  hooks_->hooks.emplace(where, id, std::move(hook));
  return HookHandle(hooks_, id, /*pre=*/false);
}

std::vector<uint64_t> Module::forward_pre_hook_ids() const {
  std::vector<uint64_t> ids;
  for (const auto& entry : hooks_->pre_hooks) ids.push_back(entry.first);
  return ids;
}

std::vector<uint64_t> Module::forward_hook_ids() const {
  std::vector<uint64_t> ids;
  for (const auto& entry : hooks_->hooks) ids.push_back(entry.first);
  return ids;
}

void Module::copy_hooks_from(const Module& other) {
  // Same ids as on `other`, so a test can name them; a hook already copied is not doubled.
  const auto copy = [](const auto& from, auto& to, std::optional<uint64_t> skip) {
    for (const auto& [id, hook] : from) {
      if (id == skip) continue;
      const bool present = std::any_of(to.begin(), to.end(), [id = id](const auto& e) { return e.first == id; });
      if (!present) to.emplace_back(id, hook);
    }
  };
  copy(other.hooks_->pre_hooks, hooks_->pre_hooks, std::nullopt);
  copy(other.hooks_->hooks, hooks_->hooks, other.observer_hook_id);
}

void Module::move_forward_pre_hooks_from(Module& other) {
  for (auto& entry : other.hooks_->pre_hooks) hooks_->pre_hooks.push_back(std::move(entry));
  other.hooks_->pre_hooks.clear();
}

void Module::move_forward_hooks_from(Module& other) {
  for (auto& entry : other.hooks_->hooks) hooks_->hooks.push_back(std::move(entry));
  other.hooks_->hooks.clear();
}

void Module::remove_observer() {
  if (observer_hook_id) {
    auto& hooks = hooks_->hooks;
    hooks.erase(std::remove_if(hooks.begin(), hooks.end(), [&](const auto& e) { return e.first == *observer_hook_id; }),
                hooks.end());
    observer_hook_id.reset();
  }
  activation_post_process.reset();
}

const Tensor& expect_tensor(const ModuleInput& input, const std::string& module_name) {
  if (const auto* t = std::get_if<Tensor>(&input.input)) return *t;
  throw Error(module_name + ": expected a float tensor input");
}

}  // namespace qconform
