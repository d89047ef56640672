#pragma once
// Reading PyTorch's quantized modules out of TorchScript archives, for `qconform fixture add`
// (one module, oracles/fixture_import.h) and for whole models (oracles/model_import.h):
// LibTorch loads the archive; a module's kind is told from its PyTorch type, its
// configuration from its attributes, its integer weights, bias and qparams from its packed
// params (their own unpack / __getstate__ methods, as the Python modules read them).
// Included only by the import's own files: it exposes LibTorch's TorchScript types.
#include <torch/csrc/jit/api/module.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "core/engines.h"
#include "core/error.h"
#include "core/fixture.h"
#include "core/module_kind.h"
#include "quantized/libtorch/aten_bridge.h"

namespace qconform {

// --- reading the files ------------------------------------------------------------------

// The engine LibTorch uses here unless told otherwise (oracles/fixture_import.h).
Engine libtorch_default_engine();

std::string read_bytes(const std::string& path, const char* what);
// A TorchScript archive (torch.jit.save), loaded with `engine` current (its packed params'
// __setstate__ prepacks for it); Error naming the file otherwise.
torch::jit::Module load_archive(const std::string& path, Engine engine);
// The same for an archive's bytes; errors name `origin` (the fuzz target's entry point).
torch::jit::Module load_archive_bytes(const std::string& bytes, const std::string& origin, Engine engine);
// A torch.save file; Error naming the file and what LibTorch cannot read.
c10::IValue load_pickle(const std::string& path, const char* what);
c10::IValue load_pickle_bytes(const std::string& bytes, const std::string& origin);
// A model's inputs file as forward's arguments: a tuple or list of them, or one value.
std::vector<c10::IValue> forward_arguments(const std::string& inputs_path);

// --- the module's type and attributes ---------------------------------------------------

// "__torch__.torch.ao.nn.quantized.modules.conv.___torch_mangle_1.Conv2d" ->
// "torch.ao.nn.quantized.modules.conv.Conv2d"
std::string python_type(const torch::jit::Module& m);
std::string class_name(const std::string& type);

// Typed reads of a module's attributes; every error names the file and the attribute.
struct Archive {
  const std::string& path;
  [[noreturn]] void fail(const std::string& what) const { throw Error(path + ": " + what); }

  c10::IValue attr(const torch::jit::Module& m, const std::string& name) const {
    if (!m.hasattr(name))
      fail(python_type(m) + " has no attribute '" + name + "' (an archive from another PyTorch version, or not a "
           "module PyTorch's quantization made?)");
    return m.attr(name);
  }
  int64_t integer(const torch::jit::Module& m, const std::string& name) const {
    const c10::IValue v = attr(m, name);
    if (!v.isInt()) fail(python_type(m) + "." + name + " is not an int");
    return v.toInt();
  }
  bool flag(const torch::jit::Module& m, const std::string& name) const {
    const c10::IValue v = attr(m, name);
    if (!v.isBool()) fail(python_type(m) + "." + name + " is not a bool");
    return v.toBool();
  }
  // A number, or a one-element tensor (the buffers nnq.LeakyReLU and nnq.Quantize keep).
  double number(const torch::jit::Module& m, const std::string& name) const {
    const c10::IValue v = attr(m, name);
    if (v.isTensor() && v.toTensor().numel() == 1 && !v.toTensor().is_quantized())
      return v.toTensor().to(at::kDouble).item<double>();
    if (!v.isDouble() && !v.isInt()) fail(python_type(m) + "." + name + " is not a number");
    return v.isDouble() ? v.toDouble() : static_cast<double>(v.toInt());
  }
  int64_t integral(const torch::jit::Module& m, const std::string& name) const {
    const c10::IValue v = attr(m, name);
    if (v.isTensor() && v.toTensor().numel() == 1 && !v.toTensor().is_floating_point() && !v.toTensor().is_quantized())
      return v.toTensor().to(at::kLong).item<int64_t>();
    return integer(m, name);
  }
  // A torch.nn size argument as the module holds it: an int, or a tuple of ints (or of
  // None, for AdaptiveAvgPool2d) -> a JSON int or array (null for None).
  nlohmann::json size_argument(const torch::jit::Module& m, const std::string& name) const {
    const c10::IValue v = attr(m, name);
    if (v.isInt()) return v.toInt();
    if (v.isTuple() || v.isList()) {
      nlohmann::json items = nlohmann::json::array();
      for (const auto& e : v.isTuple() ? v.toTupleRef().elements().vec() : v.toListRef().vec()) {
        if (e.isInt()) items.push_back(e.toInt());
        else if (e.isNone()) items.push_back(nullptr);
        else fail(python_type(m) + "." + name + " is not an int or a tuple of ints");
      }
      return items;
    }
    fail(python_type(m) + "." + name + " is not an int or a tuple of ints");
  }
  // A float32 tensor attribute (a parameter or buffer of a float module).
  Tensor float_tensor_attr(const torch::jit::Module& m, const std::string& name) const {
    const c10::IValue v = attr(m, name);
    if (!v.isTensor() || v.toTensor().is_quantized() || v.toTensor().scalar_type() != at::kFloat)
      fail(python_type(m) + "." + name + " is not a float32 tensor");
    return libtorch::from_aten(v.toTensor());
  }
  // An Optional[int] attribute: null for None.
  nlohmann::json optional_integer(const torch::jit::Module& m, const std::string& name) const {
    const c10::IValue v = attr(m, name);
    if (v.isNone()) return nullptr;
    if (!v.isInt()) fail(python_type(m) + "." + name + " is not an int or None");
    return v.toInt();
  }
  std::vector<int64_t> integers(const torch::jit::Module& m, const std::string& name) const {
    const c10::IValue v = attr(m, name);
    std::vector<int64_t> out;
    if (v.isTuple()) {
      for (const auto& e : v.toTupleRef().elements()) {
        if (!e.isInt()) fail(python_type(m) + "." + name + " is not a tuple of ints");
        out.push_back(e.toInt());
      }
    } else if (v.isIntList()) {
      out = v.toIntVector();
    } else {
      fail(python_type(m) + "." + name + " is not a tuple of ints");
    }
    return out;
  }
  // nnq modules' weight dtype attribute: torch.qint8 is ScalarType 12.
  void require_qint8(const torch::jit::Module& m, const std::string& name) const {
    const int64_t dtype = integer(m, name);
    if (dtype != static_cast<int64_t>(c10::ScalarType::QInt8))
      fail(python_type(m) + " has weight dtype " + std::string(c10::toString(static_cast<c10::ScalarType>(dtype))) +
           "; fixtures carry qint8 weights (float16 dynamic modules are not supported)");
  }

  // (weight, bias) of a packed-params object, through its own unpack().
  std::pair<QTensor, StateValue> unpack(const c10::IValue& packed, const std::string& what) const {
    if (!packed.isObject()) fail(what + " is not a packed-params object");
    std::vector<c10::IValue> result;
    try {
      result = libtorch::call_method(packed, "unpack");
    } catch (const Error& e) {
      fail(what + ": unpack failed: " + e.what());
    }
    if (result.size() != 1 || !result[0].isTuple() || result[0].toTupleRef().elements().size() != 2)
      fail(what + ": unpack did not give (weight, bias)");
    const auto& wb = result[0].toTupleRef().elements();
    const at::Tensor w = wb[0].toTensor();
    if (!w.is_quantized()) fail(what + ": the weight is not a quantized tensor");
    QTensor weight;
    try {
      weight = libtorch::from_aten_quantized(w);
      validate(weight.qparams, weight.sizes);
    } catch (const Error& e) {
      fail(what + ": the weight's qparams: " + e.what());
    }
    StateValue bias = NoneValue{};
    if (!wb[1].isNone()) bias = libtorch::from_aten(wb[1].toTensor().to(at::kFloat));
    return {weight, bias};
  }
};

// The registry kind of a PyTorch module type (a quantized module, or a float module eager
// convert leaves to run on quantized tensors), or null.
const ModuleKind* registered_kind(const std::string& type);
// The same, or Error listing the kinds there are.
const ModuleKind& kind_of(const Archive& a, const std::string& type);
// Everything that rebuilds the module: its kind, configuration and parameters.
ModuleSpec read_module(const Archive& a, const torch::jit::Module& m);
// A QFunctional's call `method` as a kind's spec: "static.add", its output scale and zero
// point, and the call's constant arguments.
ModuleSpec functional_spec(const Archive& a, const torch::jit::Module& functional, const std::string& method,
                           std::optional<double> scalar, std::optional<int64_t> dim);

// --- tensors ----------------------------------------------------------------------------

IntTensor integer_tensor(const std::string& path, const at::Tensor& t, const std::string& what);
Tensor float_tensor(const std::string& path, const at::Tensor& t, const std::string& what);
std::vector<int64_t> index_tensor(const std::string& path, const c10::IValue& v, const std::string& what);

// --- running LibTorch -------------------------------------------------------------------

// The line of a TorchScript interpreter error that says what went wrong.
std::string script_error(const std::string& message);
// m.method(args), or Error: "PATH: the inputs do not fit the module: LibTorch says: ...".
c10::IValue call(const std::string& path, torch::jit::Module& m, const std::string& method,
                 std::vector<c10::IValue> args);
// A module's result as the harness's modules give it: output, h_n, c_n.
ModuleOutput module_output(const std::string& origin, const ModuleKind& kind, const c10::IValue& result);
bool bit_identical(const at::Tensor& a, const at::Tensor& b);

// --- one layer's call inside a model ----------------------------------------------------

// The arguments of a call of `method` on a module of `kind` (self excluded), in the kind's
// terms; a QFunctional call's constant arguments (cat's dim, add_scalar's scalar) go into
// `spec`'s config. Error, naming `where`, for arguments the harness cannot carry.
ModuleInput layer_input(const std::string& where, const ModuleKind& kind, const std::string& method,
                        const std::vector<c10::IValue>& args, ModuleSpec* spec);
// An implementation's output as the LibTorch module of `kind` returns it (a tensor;
// (output, (h_n, c_n)) for an LSTM; ...), for the model code after the layer. A float value
// where LibTorch's `recorded` output is quantized is quantized with its qparams: the
// reference's fake-quantized output, back on the integer grid the next layer expects.
c10::IValue result_value(const std::string& where, const ModuleKind& kind, const ModuleOutput& ours,
                         const ModuleOutput& recorded);
// A layer's call run on LibTorch's own bytes, where its module takes them
// (ChannelsLastBytesForward, core/module.h) and has no hooks: every argument a quint8
// per-tensor channels-last 4-d tensor, and LibTorch's recorded output held channels-last too
// (`output_channels_last`). The output is a new LibTorch tensor held the same way. None where
// any of that does not hold: the caller then takes layer_input, the module's call and
// result_value, which give the same integers.
std::optional<at::Tensor> run_on_channels_last_bytes(const Module& module, const std::vector<c10::IValue>& args,
                                                     bool output_channels_last);
// Every tensor of a result, depth first (a model's outputs).
std::vector<at::Tensor> result_tensors(const c10::IValue& result);

}  // namespace qconform
