#include "core/module.h"

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
    if (pre_) tables->pre_hooks.erase(id_);
    else tables->hooks.erase(id_);
  }
}

Module::Module() : hooks_(std::make_shared<detail::HookTables>()) {}
Module::~Module() = default;

std::string Module::repr() const { return name() + "(" + extra_repr() + ")"; }

ModuleOutput Module::operator()(const ModuleInput& input) {
  // Copy the tables first: a hook may remove itself or register another while running,
  // and PyTorch iterates a snapshot (list(...values())) as well.
  const auto pre_hooks = hooks_->pre_hooks;
  ModuleInput current = input;
  for (const auto& [id, hook] : pre_hooks)
    if (auto replaced = hook(*this, current)) current = std::move(*replaced);
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
  hooks_->pre_hooks.emplace(id, std::move(hook));
  return HookHandle(hooks_, id, /*pre=*/true);
}

HookHandle Module::register_forward_hook(ForwardHook hook) {
  const uint64_t id = next_hook_id++;
  hooks_->hooks.emplace(id, std::move(hook));
  return HookHandle(hooks_, id, /*pre=*/false);
}

void Module::copy_hooks_from(const Module& other) {
  for (const auto& [id, hook] : other.hooks_->pre_hooks) hooks_->pre_hooks[id] = hook;
  for (const auto& [id, hook] : other.hooks_->hooks) hooks_->hooks[id] = hook;
}

const Tensor& expect_tensor(const ModuleInput& input, const std::string& module_name) {
  if (const auto* t = std::get_if<Tensor>(&input.input)) return *t;
  throw Error(module_name + ": expected a float tensor input");
}

}  // namespace qconform
