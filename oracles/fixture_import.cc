#include "oracles/fixture_import.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/cpu.h"
#include "core/error.h"
#include "core/quantize.h"
#include "oracles/kinds/registry.h"
#include "oracles/model_calls.h"
#include "oracles/model_import.h"
#include "oracles/torchscript_module.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/libtorch/engine.h"

namespace qconform {

using json = nlohmann::json;
using libtorch::from_aten_quantized;

namespace {

// --- the inputs -------------------------------------------------------------------------

struct Arguments {
  c10::IValue primary;               // a tensor, or a packed sequence's 4-tuple
  std::vector<at::Tensor> hidden;    // h0 (, c0), flattened
};

Arguments split_inputs(const std::string& path, const c10::IValue& inputs) {
  Arguments args;
  std::vector<c10::IValue> items;
  if (inputs.isTensor()) items = {inputs};
  else if (inputs.isTuple()) items = inputs.toTupleRef().elements().vec();
  else if (inputs.isList()) items = inputs.toListRef().vec();
  else throw Error(path + ": the inputs must be a tensor or a tuple/list of tensors, not " + inputs.tagKind());
  if (items.empty()) throw Error(path + ": the inputs are an empty tuple");
  args.primary = items[0];
  if (!args.primary.isTensor() && !args.primary.isTuple())
    throw Error(path + ": the first input must be a tensor (or a packed sequence as tuple(packed)), not " +
                args.primary.tagKind());
  std::function<void(const c10::IValue&)> flatten = [&](const c10::IValue& v) {
    if (v.isTensor()) args.hidden.push_back(v.toTensor());
    else if (v.isTuple()) for (const auto& e : v.toTupleRef().elements()) flatten(e);
    else if (v.isList()) for (const auto& e : v.toListRef()) flatten(e);
    else throw Error(path + ": the inputs after the first must be tensors, not " + v.tagKind());
  };
  for (size_t i = 1; i < items.size(); ++i) flatten(items[i]);
  return args;
}

// --- a QFunctional call between stubs -----------------------------------------------------

// A model whose forward quantizes its arguments with its Quantize children, calls one method
// of its QFunctional child on them, and dequantizes the result: what eager convert makes of
// a model around FloatFunctional.add(x, y) or .cat([x, y, z]). Read from its TorchScript
// graph: which method, which argument each operand quantizes, and the constant arguments
// (dim, the scalar), given as constants or as the model's own attributes.
struct FunctionalCall {
  std::string child;                              // the QFunctional's attribute name
  std::string method;                             // "add", "cat", ...
  std::vector<std::pair<std::string, size_t>> operands;  // (Quantize child, forward argument)
  std::optional<double> scalar;
  std::optional<int64_t> dim;
};

bool is_qfunctional(const torch::jit::Module& m) {
  const std::string t = python_type(m);
  return class_name(t) == "QFunctional" && t.find(".quantized.") != std::string::npos;
}

std::optional<FunctionalCall> functional_call(const Archive& a, const torch::jit::Module& root) {
  std::optional<std::string> child;
  for (const auto& c : root.named_children())
    if (is_qfunctional(c.value)) {
      if (child) a.fail("holds more than one QFunctional; a fixture records one call");
      child = c.name;
    }
  if (!child) return std::nullopt;
  const auto graph = root.get_method("forward").graph();
  torch::jit::Value* self = graph->inputs().at(0);
  // The attribute of `self` a value reads (prim::GetAttr[name=...](%self)), if it is one.
  const auto attribute_of_self = [&](torch::jit::Value* v) -> std::optional<std::string> {
    torch::jit::Node* n = v->node();
    if (n->kind() == c10::prim::GetAttr && n->input(0) == self) return n->s(c10::attr::name);
    return std::nullopt;
  };
  // A constant argument, or the model's attribute it reads.
  const auto constant = [&](torch::jit::Value* v, const char* what) -> c10::IValue {
    if (auto value = torch::jit::toIValue(v)) return *value;
    if (auto name = attribute_of_self(v)) return root.attr(*name);
    a.fail("the " + std::string(what) + " of its QFunctional call is neither a constant nor one of its attributes");
  };
  FunctionalCall call;
  call.child = *child;
  for (torch::jit::Node* n : graph->nodes()) {
    if (n->kind() != c10::prim::CallMethod || attribute_of_self(n->input(0)) != child) continue;
    if (!call.method.empty()) a.fail("calls its QFunctional more than once; a fixture records one call");
    call.method = n->s(c10::attr::name);
    std::vector<torch::jit::Value*> operands;
    if (call.method == "cat") {
      torch::jit::Node* list = n->input(1)->node();
      if (list->kind() != c10::prim::ListConstruct) a.fail("its cat does not take a list built in forward");
      for (torch::jit::Value* v : list->inputs()) operands.push_back(v);
      call.dim = constant(n->input(2), "dim").toInt();
    } else if (call.method == "add_scalar" || call.method == "mul_scalar") {
      operands.push_back(n->input(1));
      const c10::IValue s = constant(n->input(2), "scalar");
      call.scalar = s.isDouble() ? s.toDouble() : static_cast<double>(s.toInt());
    } else if (call.method == "add" || call.method == "add_relu" || call.method == "mul" || call.method == "matmul") {
      operands = {n->input(1), n->input(2)};
    } else {
      a.fail("calls QFunctional." + call.method + ", which no kind covers");
    }
    // Each operand: Quantize child.forward(a forward argument).
    for (torch::jit::Value* v : operands) {
      torch::jit::Node* q = v->node();
      const auto quantize = q->kind() == c10::prim::CallMethod ? attribute_of_self(q->input(0)) : std::nullopt;
      if (!quantize || class_name(python_type(root.attr(*quantize).toModule())) != "Quantize")
        a.fail("an operand of its QFunctional call is not a Quantize child applied to an argument of forward");
      const auto& inputs = graph->inputs();
      const auto found = std::find(inputs.begin(), inputs.end(), q->input(1));
      if (found == inputs.end() || found == inputs.begin())
        a.fail("an operand of its QFunctional call is not a Quantize child applied to an argument of forward");
      call.operands.emplace_back(*quantize, static_cast<size_t>(found - inputs.begin() - 1));
    }
  }
  if (call.method.empty()) a.fail("holds a QFunctional but its forward does not call it");
  return call;
}

Fixture import_functional(const FixtureImport& request, const torch::jit::Module& root, const FunctionalCall& fc) {
  const Archive a{request.module_path};
  const std::string& inputs_path = request.inputs_path;
  if (request.expected_path)
    throw Error(request.module_path + ": a QFunctional call is recorded in-process (without --expected)");
  torch::jit::Module functional = root.attr(fc.child).toModule();
  Fixture fixture;
  fixture.name = request.name;
  fixture.engine = request.engine;
  fixture.module = functional_spec(a, functional, fc.method, fc.scalar, fc.dim);
  const ModuleKind& kind = module_kind(fixture.module.kind);
  try {
    kind.reference_from_spec(fixture.module);
  } catch (const Error& e) {
    a.fail(e.what());
  }

  // The arguments of forward, as floats; each operand quantized by its own stub.
  const c10::IValue loaded = load_pickle(inputs_path, "inputs file");
  std::vector<c10::IValue> args;
  if (loaded.isTensor()) args = {loaded};
  else if (loaded.isTuple()) args = loaded.toTupleRef().elements().vec();
  else throw Error(inputs_path + ": the inputs of a QFunctional model are a tensor or a tuple of tensors");
  for (const c10::IValue& v : args)
    if (!v.isTensor()) throw Error(inputs_path + ": the inputs of a QFunctional model are float tensors");
  libtorch::EngineGuard guard(request.engine);
  std::vector<c10::IValue> operands;
  for (const auto& [quantize, index] : fc.operands) {
    if (index >= args.size())
      throw Error(inputs_path + ": forward takes at least " + std::to_string(index + 1) + " tensors; the file holds " +
                  std::to_string(args.size()));
    torch::jit::Module stub = root.attr(quantize).toModule();
    operands.push_back(call(inputs_path, stub, "forward", {args[index]}));
  }
  for (size_t i = 0; i < operands.size(); ++i) {
    const QTensor q = from_aten_quantized(operands[i].toTensor());
    if (i == 0) fixture.input.input = q;
    else fixture.input.others.push_back(q);
  }
  // The call itself, and the whole model, which must be exactly its dequantized result.
  std::vector<c10::IValue> call_args;
  if (fc.method == "cat") {
    c10::List<at::Tensor> list;
    for (const auto& o : operands) list.push_back(o.toTensor());
    call_args = {list, *fc.dim};
  } else {
    call_args = operands;
    if (fc.scalar) call_args.push_back(*fc.scalar);
  }
  const at::Tensor y = call(inputs_path, functional, fc.method, call_args).toTensor();
  const at::Tensor whole = call(inputs_path, const_cast<torch::jit::Module&>(root), "forward", args).toTensor();
  if (!y.is_quantized() || !bit_identical(whole, y.dequantize()))
    a.fail("its forward is not Quantize -> QFunctional." + fc.method + " -> DeQuantize");
  fixture.expected.output = from_aten_quantized(y);
  json provenance = {{"module_file", std::filesystem::path(request.module_path).filename().string()},
                     {"inputs_file", std::filesystem::path(inputs_path).filename().string()},
                     {"pytorch_type", python_type(functional) + "." + fc.method},
                     {"wrapped", true},
                     {"wrapper_type", python_type(root)},
                     {"recorded_by", "LibTorch " + libtorch_version() + " in-process"}};
  if (request.engine.engine == Engine::ONEDNN) provenance["onednn_isa"] = onednn_isa().name;
  fixture.provenance = std::make_shared<json>(provenance);
  return fixture;
}

}  // namespace

bool archive_is_model(const std::string& module_path) {
  const torch::jit::Module root = load_archive(module_path, libtorch_default_engine());
  // One module (of a registered kind or not: the single-module import names what it is).
  if (is_leaf_module(root)) return false;
  size_t quantize = 0, dequantize = 0, functional = 0, registered = 0, other = 0;
  for (const auto& child : root.named_children()) {
    const std::string type = python_type(child.value);
    const bool quantized = type.find(".quantized.") != std::string::npos;
    if (quantized && class_name(type) == "Quantize") ++quantize;
    else if (quantized && class_name(type) == "DeQuantize") ++dequantize;
    else if (is_qfunctional(child.value)) ++functional;
    else if (registered_kind(type)) ++registered;
    else ++other;
  }
  const bool one_functional_call = functional == 1 && registered == 0 && other == 0;
  const bool wrapped_module = quantize == 1 && dequantize == 1 && registered == 1 && functional == 0 && other == 0;
  return !one_functional_call && !wrapped_module;
}

Engine libtorch_default_engine() {
  const at::QEngine current = at::globalContext().qEngine();
  for (Engine e : libtorch_engines())
    if (libtorch::to_qengine(e) == current) return e;
  return libtorch_engines().at(0);
}

Fixture import_fixture(const FixtureImport& request) {
  const std::string& module_path = request.module_path;
  const std::string& inputs_path = request.inputs_path;
  if (!request.expected_path && !libtorch_has_engine(request.engine.engine))
    throw Error("engine " + to_string(request.engine.engine) + " is not in this LibTorch (it has " + [] {
      std::string s;
      for (Engine e : libtorch_engines()) s += (s.empty() ? "" : ", ") + to_string(e);
      return s;
    }() + "); record the outputs where it is and pass them with --expected");
  // Recorded here: on this process's int8 path, which EngineGuard holds the request to.
  if (!request.expected_path) {
    libtorch::EngineGuard check(request.engine);
  }
  torch::jit::Module root = load_archive(module_path, request.engine.engine);
  const Archive archive{module_path};
  if (const auto call = functional_call(archive, root)) return import_functional(request, root, *call);

  // The module itself, or the one module between a Quantize and a DeQuantize.
  torch::jit::Module module = root;
  std::optional<torch::jit::Module> quantize_child;
  bool wrapped = false;
  {
    std::vector<torch::jit::Module> children;
    for (const auto& child : root.named_children()) children.push_back(child.value);
    const auto is = [](const torch::jit::Module& m, const char* cls) {
      const std::string t = python_type(m);
      return class_name(t) == cls && t.find(".quantized.") != std::string::npos;
    };
    const bool root_is_module = python_type(root).find(".quantized.") != std::string::npos;
    if (!root_is_module && children.size() == 3) {
      std::optional<torch::jit::Module> inner, dequantize;
      for (const auto& c : children) {
        if (is(c, "Quantize")) quantize_child = c;
        else if (is(c, "DeQuantize")) dequantize = c;
        else inner = c;
      }
      if (quantize_child && dequantize && inner) {
        module = *inner;
        wrapped = true;
      }
    }
    if (!wrapped && !root_is_module) kind_of(archive, python_type(root));  // refuses, listing the kinds
  }
  const ModuleSpec spec_read = read_module(archive, module);
  const ModuleKind& kind = module_kind(spec_read.kind);
  if (wrapped && kind.family != Family::Static)
    archive.fail("a dynamic module between Quantize and DeQuantize is not what eager convert makes");
  if (wrapped && kind.key == "static.LSTM")
    archive.fail("a quantized LSTM gives (output, (h_n, c_n)), not one tensor to dequantize: script the LSTM itself "
                 "(torch.jit.script(model.lstm)) and pass its quantized input");

  Fixture fixture;
  fixture.name = request.name;
  fixture.engine = request.engine;
  fixture.module = spec_read;
  // The modules the fixture will rebuild must accept what was read (shapes, qparams, NaN scales).
  try {
    kind.reference_from_spec(fixture.module);
  } catch (const Error& e) {
    archive.fail(e.what());
  }

  // The inputs, in the module's terms. An embedding's are forward's arguments as they are,
  // None included (a pruned bag's offsets before its mapping, per_sample_weights).
  const c10::IValue loaded_inputs = load_pickle(inputs_path, "inputs file");
  const bool weight_only = kind.family == Family::WeightOnly;
  std::vector<c10::IValue> weight_only_args;
  if (weight_only) {
    const bool bag = kind.key == "weight_only.EmbeddingBag";
    weight_only_args = loaded_inputs.isTuple()  ? loaded_inputs.toTupleRef().elements().vec()
                       : loaded_inputs.isList() ? loaded_inputs.toListRef().vec()
                                                : std::vector<c10::IValue>{loaded_inputs};
    if (weight_only_args.empty() || weight_only_args.size() > (bag ? 4u : 1u))
      throw Error(inputs_path + ": " + kind.key + " takes " +
                  (bag ? "(indices[, offsets[, per_sample_weights[, compressed_indices_mapping]]]), None where absent"
                       : "the indices") +
                  "; found " + std::to_string(weight_only_args.size()) + " values");
    if (!weight_only_args[0].isTensor()) throw Error(inputs_path + ": the indices must be a tensor");
  }
  const Arguments args = weight_only ? Arguments{weight_only_args[0], {}} : split_inputs(inputs_path, loaded_inputs);
  const bool sequence = kind.key == "dynamic.LSTM" || kind.key == "dynamic.GRU";
  const bool recurrent = kind.structure == Structure::Recurrent;
  const size_t hidden_count = kind.key == "dynamic.LSTM" || kind.key == "dynamic.LSTMCell" ? 2 : recurrent ? 1 : 0;
  if (kind.key == "static.LSTM" && !args.hidden.empty())
    throw Error(inputs_path + ": static.LSTM fixtures take the quantized input alone (the harness's static LSTM "
                "starts from PyTorch's zero state; an initial (h0, c0) is not supported)");
  if (!weight_only && !args.hidden.empty() && args.hidden.size() != hidden_count)
    throw Error(inputs_path + ": " + kind.key + " takes " +
                (hidden_count == 0 ? std::string("one input tensor")
                                   : "the input and optionally " +
                                         std::string(hidden_count == 2 ? "(h0, c0)" : "h0")) +
                "; found " + std::to_string(1 + args.hidden.size()) + " tensors");
  if (!weight_only && !args.hidden.empty()) {
    HiddenState h{float_tensor(inputs_path, args.hidden[0], "h0"), std::nullopt};
    if (hidden_count == 2) h.c = float_tensor(inputs_path, args.hidden[1], "c0");
    fixture.input.hidden = h;
  }
  c10::IValue hx;  // None
  if (hidden_count == 2 && !args.hidden.empty())
    hx = c10::ivalue::Tuple::create({args.hidden[0], args.hidden[1]});
  else if (hidden_count == 1 && !args.hidden.empty())
    hx = args.hidden[0];

  libtorch::EngineGuard guard(libtorch_has_engine(request.engine.engine) ? request.engine.engine
                                                                         : libtorch_default_engine());
  c10::IValue result;
  std::string method = "forward";
  std::vector<c10::IValue> call_args;
  if (args.primary.isTuple()) {  // a packed sequence
    if (!sequence) throw Error(inputs_path + ": a packed input (a tuple first) fits only the LSTM and GRU");
    const auto& e = args.primary.toTupleRef().elements();
    if (e.size() != 4 || !e[0].isTensor())
      throw Error(inputs_path + ": a packed input is tuple(packed): (data, batch_sizes, sorted_indices, "
                  "unsorted_indices)");
    PackedSequence p{float_tensor(inputs_path, e[0].toTensor(), "the packed data"),
                     index_tensor(inputs_path, e[1], "batch_sizes"), index_tensor(inputs_path, e[2], "sorted_indices"),
                     index_tensor(inputs_path, e[3], "unsorted_indices")};
    fixture.input.input = p;
    method = "forward_packed";
    const auto& schema = module.get_method(method).function().getSchema();
    const auto tuple_type = schema.arguments().at(1).type()->cast<c10::TupleType>();
    call_args = {c10::ivalue::Tuple::createNamed({e[0], e[1], e[2], e[3]}, tuple_type), hx};
  } else {
    const at::Tensor x = args.primary.toTensor();
    if (weight_only) {  // indices, then offsets, per_sample_weights and the mapping
      fixture.input = layer_input(inputs_path, kind, method, weight_only_args, nullptr);
      call_args = weight_only_args;
    } else if (kind.key == "static.Quantize") {  // nnq.Quantize alone takes floats
      fixture.input.input = float_tensor(inputs_path, x, "the input");
    } else if (kind.family == Family::Static && !wrapped) {
      if (!x.is_quantized() || x.scalar_type() != at::kQUInt8 || x.qscheme() != at::kPerTensorAffine)
        throw Error(inputs_path + ": " + kind.key + " takes a quint8 per-tensor quantized tensor (or wrap it in "
                    "Quantize/DeQuantize to take floats)");
      fixture.input.input = from_aten_quantized(x);
    } else {
      fixture.input.input = float_tensor(inputs_path, x, "the input");
    }
    if (sequence) method = "forward_tensor";
    if (!weight_only) {
      call_args = {x};
      if (recurrent) call_args.push_back(hx);
    }
  }

  // The expected outputs: recorded here, or read from the file recorded elsewhere.
  if (request.expected_path) {
    const c10::IValue expected = load_pickle(*request.expected_path, "expected outputs file");
    fixture.expected = module_output(*request.expected_path, kind, expected);
  } else {
    if (wrapped) {
      const at::Tensor whole = call(inputs_path, root, "forward", call_args).toTensor();
      const at::Tensor xq = call(inputs_path, *quantize_child, "forward", call_args).toTensor();
      const at::Tensor yq = call(inputs_path, module, "forward", {xq}).toTensor();
      // The archive's forward must be exactly dequantize(module(quantize(x))).
      if (!yq.is_quantized() || !bit_identical(whole, yq.dequantize()))
        archive.fail("its forward is not Quantize -> " + python_type(module) + " -> DeQuantize");
      result = yq;
    } else {
      result = call(inputs_path, module, method, call_args);
    }
    fixture.expected = module_output(module_path, kind, result);
  }
  if (wrapped) {
    // What the inner module sees: the input quantized by the archive's own Quantize.
    const at::Tensor xq = call(inputs_path, *quantize_child, "forward", call_args).toTensor();
    fixture.input.input = from_aten_quantized(xq);
    // Outputs recorded elsewhere come dequantized: back to integers, exactly or not at all.
    if (const auto* y = std::get_if<Tensor>(&fixture.expected.output)) {
      // The module's output qparams: its own, or its input's for the ops that keep them.
      const QuantParams& in = std::get<QTensor>(fixture.input.input).qparams;
      if (!fixture.module.has("scale") && kind.engine_op != EngineOp::StaticPooling && kind.key != "static.ReLU" &&
          kind.key != "static.Dropout")
        throw Error(*request.expected_path + ": " + kind.key + " sets its output qparams itself; record its outputs "
                    "in-process (without --expected)");
      const QuantParams out = fixture.module.has("scale")
                                  ? QuantParams::per_tensor(DType::QUInt8, fixture.module.number("scale"),
                                                            fixture.module.integer("zero_point"))
                                  : in;
      const QTensor yq = quantize(*y, out);
      if (!(dequantize(yq) == *y))
        throw Error(*request.expected_path + ": the outputs are not dequantized values of the module's output "
                    "qparams " + out.to_string());
      fixture.expected.output = yq;
    }
  }
  const auto file_name = [](const std::string& path) { return std::filesystem::path(path).filename().string(); };
  json provenance = {{"module_file", file_name(module_path)},
                     {"inputs_file", file_name(inputs_path)},
                     {"pytorch_type", python_type(module)},
                     {"wrapped", wrapped},
                     {"recorded_by", request.expected_path ? "file " + file_name(*request.expected_path)
                                                           : "LibTorch " + libtorch_version() + " in-process"}};
  if (wrapped) provenance["wrapper_type"] = python_type(root);
  // What decided the int8 path, for people (the fixture's int8_path field is what replay reads).
  if (!request.expected_path && request.engine.engine == Engine::ONEDNN) provenance["onednn_isa"] = onednn_isa().name;
  fixture.provenance = std::make_shared<json>(provenance);
  return fixture;
}

}  // namespace qconform
