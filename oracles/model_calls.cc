#include "oracles/model_calls.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/custom_operator.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <set>

#include "core/error.h"
#include "oracles/torchscript_module.h"
#include "quantized/libtorch/engine.h"

namespace qconform {

namespace {

const c10::Symbol kLeafCall = c10::Symbol::fromQualString("qconform::leaf_call");
const c10::Symbol kMethodAttribute = c10::Symbol::attr("method");

// The run in progress on this thread: its handler, the leaves' paths and the call counts.
struct ActiveRun {
  const LeafCallHandler* handler = nullptr;
  const std::map<const void*, std::string>* paths = nullptr;
  std::map<std::pair<std::string, std::string>, int64_t> counts;
  std::exception_ptr failure;  // the handler's own exception, which the interpreter would wrap
};
thread_local ActiveRun* active_run = nullptr;

// qconform::leaf_call(module, args...) -> (the method's outputs): the node carries the
// method's name; the operation pops the module and the arguments and pushes the result.
torch::jit::Operation leaf_call_operation(const torch::jit::Node* node) {
  const size_t inputs = node->inputs().size();
  const std::string method = node->s(kMethodAttribute);
  return [inputs, method](torch::jit::Stack& stack) {
    std::vector<c10::IValue> args(stack.end() - static_cast<std::ptrdiff_t>(inputs), stack.end());
    torch::jit::drop(stack, inputs);
    if (!active_run) throw Error("internal: a qconform::leaf_call ran outside InstrumentedModel::run");
    LeafCall call;
    call.module = torch::jit::Module(args[0].toObject());
    const auto found = active_run->paths->find(args[0].toObject().get());
    call.path = found == active_run->paths->end() ? "?" : found->second;
    call.method = method;
    call.call = ++active_run->counts[{call.path, method}];
    call.args.assign(args.begin() + 1, args.end());
    try {
      torch::jit::push(stack, (*active_run->handler)(call));
    } catch (...) {
      active_run->failure = std::current_exception();
      throw std::runtime_error("the handler of " + call.path + "." + method + " failed");
    }
  };
}

const torch::jit::RegisterOperators registration({torch::jit::Operator(
    "qconform::leaf_call(...) -> ...", leaf_call_operation, c10::AliasAnalysisKind::CONSERVATIVE)});

// Every CallMethod on a leaf, in `block` and the blocks nested in it (if, loop bodies).
void collect_leaf_calls(torch::jit::Block* block, const std::set<const c10::Type*>& leaf_types,
                        std::vector<torch::jit::Node*>& out) {
  for (torch::jit::Node* n : block->nodes()) {
    if (n->kind() == c10::prim::CallMethod && leaf_types.count(n->input(0)->type().get())) out.push_back(n);
    for (torch::jit::Block* b : n->blocks()) collect_leaf_calls(b, leaf_types, out);
  }
}

}  // namespace

bool is_leaf_module(const torch::jit::Module& m) {
  const std::string type = python_type(m);
  return type.find(".quantized.") != std::string::npos || registered_kind(type) != nullptr ||
         m.named_children().size() == 0;
}

InstrumentedModel::InstrumentedModel(const std::string& archive_path, Engine engine)
    : archive_path_(archive_path), root_(load_archive(archive_path, engine)) {
  // Leaves, and the types whose graphs call them. A module inside a leaf is the leaf's own.
  std::set<const c10::Type*> leaf_types, caller_types;
  std::vector<torch::jit::Module> callers;
  std::function<void(const torch::jit::Module&, const std::string&)> walk = [&](const torch::jit::Module& m,
                                                                                const std::string& path) {
    if (!path.empty() && is_leaf_module(m)) {
      leaf_types.insert(m.type().get());
      paths_[m._ivalue().get()] = path;
      return;
    }
    if (caller_types.insert(m.type().get()).second) callers.push_back(m);
    for (const auto& child : m.named_children()) walk(child.value, path.empty() ? child.name : path + "." + child.name);
  };
  walk(root_, "");
  for (const torch::jit::Module& m : callers) {
    for (const torch::jit::Method& method : m.get_methods()) {
      const std::shared_ptr<torch::jit::Graph> graph = method.graph();
      std::vector<torch::jit::Node*> calls;
      collect_leaf_calls(graph->block(), leaf_types, calls);
      for (torch::jit::Node* n : calls) {
        torch::jit::Node* replacement = graph->create(kLeafCall, n->inputs(), n->outputs().size());
        replacement->s_(kMethodAttribute, n->s(c10::attr::name));
        replacement->insertBefore(n);
        for (size_t i = 0; i < n->outputs().size(); ++i) {
          replacement->output(i)->setType(n->output(i)->type());
          n->output(i)->replaceAllUsesWith(replacement->output(i));
        }
        n->destroy();
        ++instrumented_calls_;
      }
    }
  }
}

c10::IValue InstrumentedModel::run(const std::vector<c10::IValue>& inputs, const LeafCallHandler& handler) {
  ActiveRun run;
  run.handler = &handler;
  run.paths = &paths_;
  ActiveRun* outer = active_run;
  active_run = &run;
  struct Restore {
    ActiveRun* outer;
    ~Restore() { active_run = outer; }
  } restore{outer};
  torch::jit::GraphOptimizerEnabledGuard no_optimisation(false);
  try {
    return root_.forward(inputs);
  } catch (const std::exception& e) {
    if (run.failure) std::rethrow_exception(run.failure);
    // The handler's Error arrives wrapped in LibTorch's interpreter message.
    const std::string message = e.what();
    throw Error(archive_path_ + ": the model's forward failed: " + script_error(message));
  }
}

c10::IValue InstrumentedModel::original(const LeafCall& call) {
  std::vector<c10::IValue> args = call.args;
  return call.module.get_method(call.method)(std::move(args));
}

}  // namespace qconform
