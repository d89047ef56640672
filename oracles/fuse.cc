#include "oracles/fuse.h"

#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "core/float/activation.h"
#include "core/float/batchnorm.h"
#include "core/float/conv.h"
#include "core/float/fusion.h"
#include "core/float/linear.h"

namespace qconform {
namespace {

// The module classes fuse_modules tells apart (type_before_parametrizations).
enum class Role { Conv, ConvTranspose, Linear, BatchNorm, ReLU, Other };

struct Typed {
  Role role = Role::Other;
  int64_t dims = 0;  // spatial dims of a convolution or BatchNorm
};

Typed type_of(const Module& m) {
  if (const auto* conv = dynamic_cast<const FloatConv*>(&m); conv && !conv->fused_relu)
    return {conv->options().transposed ? Role::ConvTranspose : Role::Conv, conv->options().spatial_dims};
  if (const auto* linear = dynamic_cast<const FloatLinear*>(&m); linear && !linear->fused_relu) return {Role::Linear};
  if (const auto* bn = dynamic_cast<const FloatBatchNorm*>(&m); bn && !bn->fused_relu)
    return {Role::BatchNorm, bn->options().spatial_dims};
  if (const auto* act = dynamic_cast<const FloatActivation*>(&m);
      act && act->options().op == ActivationOp::ReLU && m.implementation() == Implementation::Float)
    return {Role::ReLU};
  return {};
}

std::string python_module_path(const std::string& name) {
  const auto starts = [&](const char* prefix) { return name.rfind(prefix, 0) == 0; };
  if (starts("ConvReLU") || starts("LinearReLU") || starts("BNReLU")) return "torch.ao.nn.intrinsic.modules.fused";
  if (starts("Conv")) return "torch.nn.modules.conv";
  if (name == "Linear" || name == "Identity") return "torch.nn.modules.linear";
  if (starts("BatchNorm")) return "torch.nn.modules.batchnorm";
  if (name == "ReLU" || name == "ReLU6" || name == "LeakyReLU" || name == "Hardswish" || name == "ELU" ||
      name == "Sigmoid" || name == "Hardsigmoid" || name == "Tanh" || name == "Softmax")
    return "torch.nn.modules.activation";
  if (name == "Dropout") return "torch.nn.modules.dropout";
  if (starts("MaxPool") || starts("AvgPool") || starts("AdaptiveAvgPool")) return "torch.nn.modules.pooling";
  if (name == "QuantStub" || name == "DeQuantStub" || name == "QuantWrapper") return "torch.ao.quantization.stubs";
  if (name == "FloatFunctional") return "torch.ao.nn.quantized.modules.functional_modules";
  if (name == "Sequential") return "torch.nn.modules.container";
  return "__main__";  // a user's container class
}

// One list's plan: the modules, the fused module, and how hooks move.
struct Plan {
  std::vector<std::string> paths;
  std::vector<Module*> modules;
  std::unique_ptr<Module> fused;
  bool folded = false;  // a deep copy of the first module (PyTorch's fuse_*_bn_eval)
};

[[noreturn]] void no_attribute(const Module& m, const std::string& name) {
  throw Error("'" + m.name() + "' object has no attribute '" + name + "'");
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> tokens;
  std::stringstream in(path);
  for (std::string token; std::getline(in, token, '.');) tokens.push_back(token);
  return tokens;
}

class Fuser {
 public:
  explicit Fuser(Sequential& root) : root_(root) {}

  // _get_module, seeing the fusions planned so far in place.
  Module& get(const std::string& path) {
    Module* at = &root_;
    std::string prefix;
    for (const std::string& token : split_path(path)) {
      prefix += (prefix.empty() ? "" : ".") + token;
      if (auto pending = replacements_.find(prefix); pending != replacements_.end()) {
        at = pending->second;
        continue;
      }
      auto* parent = dynamic_cast<Sequential*>(at);
      if (!parent) no_attribute(*at, token);
      Module* child = nullptr;
      for (const auto& [name, module] : parent->children())
        if (name == token) child = module.get();
      if (!child) no_attribute(*at, token);
      at = child;
    }
    return *at;
  }

  void plan(const std::vector<std::string>& paths) {
    Plan p;
    p.paths = paths;
    for (const std::string& path : paths) p.modules.push_back(&get(path));
    std::vector<Typed> types;
    for (Module* m : p.modules) types.push_back(type_of(*m));
    p.fused = fuse(p.modules, types, &p.folded);
    // fuse_known_modules moves hooks while iterating over the dict it deletes from: PyTorch
    // fails on a second entry.
    if (p.modules.front()->forward_pre_hook_count() > 1 || p.modules.back()->forward_hook_count() > 1)
      throw Error("OrderedDict mutated during iteration");
    const bool container = p.modules.size() > 1 && types.back().role == Role::ReLU;
    if (container && p.modules.front()->forward_hook_count() > 0 && p.modules.size() > 1)
      throw Error("fuse_modules: " + paths.front() + " (" + p.modules.front()->name() +
                  ") has a forward hook; PyTorch keeps it on the inner module of the fused " + p.fused->name() +
                  ", where it sees the output before the ReLU, and the harness's fused modules are single "
                  "modules: remove the hook before fusing, or register it on the fused module");
    for (size_t i = 1; i < paths.size(); ++i) identity_training_[paths[i]] = p.modules.front()->training;
    for (size_t i = 0; i < paths.size(); ++i) replacements_[paths[i]] = i == 0 ? p.fused.get() : &identity_;
    plans_.push_back(std::move(p));
  }

  void apply() {
    for (Plan& p : plans_) {
      Module& first = *p.modules.front();
      Module& last = *p.modules.back();
      if (p.folded) p.fused->copy_hooks_from(first);  // copy.deepcopy(conv)
      p.fused->move_forward_pre_hooks_from(first);
      p.fused->move_forward_hooks_from(last);
      for (size_t i = 0; i < p.paths.size(); ++i) {
        std::unique_ptr<Module> module;
        if (i == 0) {
          module = std::move(p.fused);
        } else {
          module = std::make_unique<Identity>();
          module->training = identity_training_.at(p.paths[i]);
        }
        set(p.paths[i], std::move(module));
      }
    }
  }

 private:
  // _set_module: the parent is found as it stands now (earlier lists already applied).
  void set(const std::string& path, std::unique_ptr<Module> module) {
    const std::vector<std::string> tokens = split_path(path);
    Module* parent = &root_;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) parent = &dynamic_cast<Sequential&>(*parent).child(tokens[i]);
    dynamic_cast<Sequential&>(*parent).replace(tokens.back(), std::move(module));
  }

  static std::unique_ptr<Module> fuse(const std::vector<Module*>& m, const std::vector<Typed>& t, bool* folded) {
    const auto is = [&](std::initializer_list<Role> roles) {
      if (roles.size() != t.size()) return false;
      size_t i = 0;
      for (Role r : roles)
        if (t[i++].role != r) return false;
      return true;
    };
    const auto same_dims = [&] { return t[0].dims == t[1].dims; };
    const auto* bn = m.size() > 1 ? dynamic_cast<const FloatBatchNorm*>(m[1]) : nullptr;
    if ((is({Role::Conv, Role::BatchNorm}) || is({Role::Conv, Role::BatchNorm, Role::ReLU})) && same_dims()) {
      const bool relu = m.size() == 3;
      const bool same_mode = m[0]->training == m[1]->training && (!relu || m[1]->training == m[2]->training);
      if (!same_mode) throw Error("Conv and BN both must be in the same mode (train or eval).");
      if (m[0]->training || m[1]->training) throw Error("Fusion only for eval!");
      const auto& conv = dynamic_cast<const FloatConv&>(*m[0]);
      WeightAndBias w = fold_batch_norm_into_conv(conv.weight(), conv.bias(), *bn, false);
      ConvOptions o = conv.options();
      o.bias = true;
      auto fused = std::make_unique<FloatConv>(o, std::move(w.weight), std::move(w.bias));
      fused->fused_relu = relu;
      fused->training = conv.training;
      *folded = true;
      return fused;
    }
    if (is({Role::Conv, Role::ReLU})) {
      const auto& conv = dynamic_cast<const FloatConv&>(*m[0]);
      auto fused = std::make_unique<FloatConv>(conv.options(), conv.weight(), conv.bias());
      fused->fused_relu = true;
      fused->training = conv.training;
      return fused;
    }
    if (is({Role::Linear, Role::BatchNorm}) && t[1].dims == 1) {
      if (m[0]->training != m[1]->training) throw Error("Linear and BN both must be in the same mode (train or eval).");
      if (m[0]->training) throw Error("Fusion only for eval!");
      const auto& linear = dynamic_cast<const FloatLinear&>(*m[0]);
      WeightAndBias w = fold_batch_norm_into_linear(linear.weight(), linear.bias(), *bn);
      auto fused = std::make_unique<FloatLinear>(std::move(w.weight), std::move(w.bias));
      fused->training = linear.training;
      *folded = true;
      return fused;
    }
    if (is({Role::Linear, Role::ReLU})) {
      const auto& linear = dynamic_cast<const FloatLinear&>(*m[0]);
      auto fused = std::make_unique<FloatLinear>(linear.weight(), linear.bias());
      fused->fused_relu = true;
      fused->training = linear.training;
      return fused;
    }
    if (is({Role::BatchNorm, Role::ReLU}) && (t[0].dims == 2 || t[0].dims == 3)) {
      const auto& norm = dynamic_cast<const FloatBatchNorm&>(*m[0]);
      auto fused = std::make_unique<FloatBatchNorm>(norm.options(), norm.state());
      fused->fused_relu = true;
      fused->training = norm.training;
      return fused;
    }
    if (is({Role::ConvTranspose, Role::BatchNorm}) && same_dims()) {
      if (m[0]->training != m[1]->training)
        throw Error("ConvTranspose and BN both must be in the same mode (train or eval).");
      if (m[0]->training) throw Error("Fusion only for eval!");
      const auto& conv = dynamic_cast<const FloatConv&>(*m[0]);
      WeightAndBias w = fold_batch_norm_into_conv(conv.weight(), conv.bias(), *bn, true);
      ConvOptions o = conv.options();
      o.bias = true;
      auto fused = std::make_unique<FloatConv>(o, std::move(w.weight), std::move(w.bias));
      fused->training = conv.training;
      *folded = true;
      return fused;
    }
    std::string classes = "(";
    for (size_t i = 0; i < m.size(); ++i) classes += (i ? ", " : "") + python_class_repr(*m[i]);
    classes += m.size() == 1 ? ",)" : ")";
    throw Error("did not find fuser method for: " + classes + " ");
  }

  Sequential& root_;
  std::vector<Plan> plans_;
  std::map<std::string, Module*> replacements_;
  std::map<std::string, bool> identity_training_;
  Identity identity_;  // stands for the Identity a planned fusion leaves at a path
};

}  // namespace

std::string python_class_repr(const Module& module) {
  const std::string name = module.name();
  return "<class '" + python_module_path(name) + "." + name + "'>";
}

void fuse_modules(Sequential& root, const std::vector<std::vector<std::string>>& modules_to_fuse) {
  Fuser fuser(root);
  for (const auto& paths : modules_to_fuse) fuser.plan(paths);  // every check before any change
  fuser.apply();
}

}  // namespace qconform
