#pragma once
// A whole TorchScript model, run with every call of a leaf module sent through one handler:
// what records each layer's input and output inside the model (`fixture add`), and what
// replaces each covered layer by an implementation while the model's own code runs between
// them (`check`'s chained runs).
//
// How: the archive is loaded, and in every method of every non-leaf module's graph each
// `prim::CallMethod` on a leaf module becomes a `qconform::leaf_call` node, an operator of
// this process whose Operation hands the module, the method's name and the arguments to
// the handler. Leaves are the modules PyTorch's quantization made or left in place — any
// module whose type lies under a `.quantized.` package (nnq.Conv2d, QFunctional, nnq.LSTM),
// of a registered kind, or without children (nn.Identity, nn.MaxPool2d); their insides are
// not instrumented. The model's glue (torch.flatten, view, F.* calls in forward) runs in
// LibTorch as the archive wrote it. Graph optimisation is off while it runs, so the rewritten
// graphs execute as they are.
//
// Included only by the model import and replay: it exposes TorchScript's types.
#include <torch/csrc/jit/api/module.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/engines.h"

namespace qconform {

struct LeafCall {
  std::string path;    // the leaf's path in the model ("" would be the root, never a leaf here)
  std::string method;  // "forward", "add_relu", "forward__0" (an overloaded forward)
  int64_t call = 1;    // the how-manieth call of this path and method in this run
  torch::jit::Module module;
  std::vector<c10::IValue> args;  // without self
};

using LeafCallHandler = std::function<c10::IValue(const LeafCall&)>;

class InstrumentedModel {
 public:
  // Loads the archive with `engine` current (the packed params prepack for it). Error naming
  // the file when it is not a TorchScript archive LibTorch can load.
  InstrumentedModel(const std::string& archive_path, Engine engine);

  // forward(inputs), every leaf call through `handler`; the handler's errors pass through,
  // LibTorch's own become Error naming the archive.
  c10::IValue run(const std::vector<c10::IValue>& inputs, const LeafCallHandler& handler);

  // The leaf's own method on the call's arguments: what the archive would have done.
  static c10::IValue original(const LeafCall& call);

  torch::jit::Module& root() { return root_; }
  size_t instrumented_calls() const { return instrumented_calls_; }  // call sites rewritten

 private:
  std::string archive_path_;
  torch::jit::Module root_;
  std::map<const void*, std::string> paths_;  // leaf object -> its path
  size_t instrumented_calls_ = 0;
};

// True for a module the instrumentation treats as one layer (see above).
bool is_leaf_module(const torch::jit::Module& m);

}  // namespace qconform
