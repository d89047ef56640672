#include "oracles/fixture_import.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/cpu.h"
#include "core/error.h"
#include "core/float/rnn.h"
#include "core/float/static_lstm.h"
#include "core/quantize.h"
#include "oracles/kinds/registry.h"
#include "quantized/libtorch/aten_bridge.h"
#include "quantized/libtorch/engine.h"

namespace qconform {

using json = nlohmann::json;
using libtorch::first_line;
using libtorch::from_aten;
using libtorch::from_aten_quantized;
using libtorch::to_aten;

namespace {

// --- reading the files ------------------------------------------------------------------

std::string read_bytes(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the " + what);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// torch.save and torch.jit.save both write zip archives; anything else is refused before
// LibTorch sees it, with a message that says so.
void require_zip(const std::string& path, const std::string& bytes, const char* what) {
  if (bytes.size() < 4 || bytes.compare(0, 4, "PK\x03\x04") != 0)
    throw Error(path + ": not a zip archive, so not " + what);
}

torch::jit::Module load_archive(const std::string& path, Engine engine) {
  require_zip(path, read_bytes(path, "module archive"), "a TorchScript module written by torch.jit.save");
  // Loading runs the packed params' __setstate__, which prepacks for the current engine.
  libtorch::EngineGuard guard(libtorch_has_engine(engine) ? engine : libtorch_default_engine());
  try {
    return torch::jit::load(path);
  } catch (const c10::Error& e) {
    throw Error(path + ": a zip archive, but not a TorchScript module LibTorch can load (save it with "
                "torch.jit.save(torch.jit.script(module), path)): " + first_line(e.what()));
  }
}

c10::IValue load_pickle(const std::string& path, const char* what) {
  const std::string bytes = read_bytes(path, what);
  require_zip(path, bytes, "a file written by torch.save");
  try {
    return torch::jit::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  } catch (const c10::Error& e) {
    const std::string message = first_line(e.what());
    if (message.find("Unknown opcode for unpickling at 0x61") != std::string::npos)
      throw Error(path + ": LibTorch 1.13 cannot read a one-element list (pickle opcode APPEND); save the tensor "
                  "itself or a tuple");
    if (message.find("PackedSequence") != std::string::npos)
      throw Error(path + ": LibTorch cannot rebuild a PackedSequence; save tuple(packed) instead");
    throw Error(path + ": not a torch.save file LibTorch can read: " + message);
  }
}

// --- the module's type and attributes ---------------------------------------------------

// "__torch__.torch.ao.nn.quantized.modules.conv.___torch_mangle_1.Conv2d" ->
// "torch.ao.nn.quantized.modules.conv.Conv2d"
std::string python_type(const torch::jit::Module& m) {
  std::string name = m.type()->name()->qualifiedName();
  if (name.rfind("__torch__.", 0) == 0) name = name.substr(10);
  return std::regex_replace(name, std::regex(R"(___torch_mangle_\d+\.)"), "");
}

std::string class_name(const std::string& type) { return type.substr(type.rfind('.') + 1); }

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
  json size_argument(const torch::jit::Module& m, const std::string& name) const {
    const c10::IValue v = attr(m, name);
    if (v.isInt()) return v.toInt();
    if (v.isTuple() || v.isList()) {
      json items = json::array();
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
    return from_aten(v.toTensor());
  }
  // An Optional[int] attribute: null for None.
  json optional_integer(const torch::jit::Module& m, const std::string& name) const {
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
      weight = from_aten_quantized(w);
      validate(weight.qparams, weight.sizes);
    } catch (const Error& e) {
      fail(what + ": the weight's qparams: " + e.what());
    }
    StateValue bias = NoneValue{};
    if (!wb[1].isNone()) bias = from_aten(wb[1].toTensor().to(at::kFloat));
    return {weight, bias};
  }
};

// --- one module kind at a time ----------------------------------------------------------

// Linear (dynamic or static): nnq(d).Linear keeps (weight, bias) in _packed_params._packed_params.
void read_linear(const Archive& a, const torch::jit::Module& m, bool dynamic, ModuleSpec& spec) {
  (*spec.config)["in_features"] = a.integer(m, "in_features");
  (*spec.config)["out_features"] = a.integer(m, "out_features");
  const c10::IValue holder = a.attr(m, "_packed_params");
  if (!holder.isModule()) a.fail(python_type(m) + "._packed_params is not a LinearPackedParams module");
  const torch::jit::Module packed_module = holder.toModule();
  a.require_qint8(packed_module, "dtype");
  auto [weight, bias] = a.unpack(a.attr(packed_module, "_packed_params"), python_type(m) + "._packed_params");
  spec.parameters.set("weight", weight);
  spec.parameters.set("bias", bias);
  if (!dynamic) {
    (*spec.config)["scale"] = a.number(m, "scale");
    (*spec.config)["zero_point"] = a.integer(m, "zero_point");
  }
}

// torch.ao.nn.quantized.LSTM: its constructor arguments; per cell (layers.{l}.layer_{fw,bw}.cell)
// igates and hgates as nnq.Linear (parameters "<cell>.igates.weight" and ".bias"; config
// "<cell>.igates.scale" and ".zero_point") and the QFunctional points' scale and zero point
// (config "<cell>.gates.scale", ...). Sigmoid and tanh carry none: PyTorch 1.13 fixes them.
void read_static_lstm(const Archive& a, const torch::jit::Module& m, ModuleSpec& spec) {
  json& c = *spec.config;
  for (const char* key : {"input_size", "hidden_size", "num_layers"}) c[key] = a.integer(m, key);
  for (const char* key : {"bias", "batch_first", "bidirectional"}) c[key] = a.flag(m, key);
  RnnOptions o;
  o.input_size = c["input_size"];
  o.hidden_size = c["hidden_size"];
  o.num_layers = c["num_layers"];
  o.bidirectional = c["bidirectional"];
  const auto child = [&](const torch::jit::Module& parent, const std::string& name) {
    const c10::IValue v = a.attr(parent, name);
    if (!v.isModule()) a.fail(python_type(parent) + "." + name + " is not a module");
    return v.toModule();
  };
  const torch::jit::Module layers = child(m, "layers");
  for (int64_t set = 0; set < o.parameter_sets(); ++set) {
    const std::string prefix = static_lstm_cell_prefix(o, set);
    const torch::jit::Module cell =
        child(child(child(layers, std::to_string(set / o.directions())), set % o.directions() ? "layer_bw" : "layer_fw"),
              "cell");
    for (const char* name : {"igates", "hgates"}) {
      const torch::jit::Module linear = child(cell, name);
      const torch::jit::Module packed = child(linear, "_packed_params");
      a.require_qint8(packed, "dtype");
      auto [weight, bias] = a.unpack(a.attr(packed, "_packed_params"), prefix + name + "._packed_params");
      spec.parameters.set(prefix + name + ".weight", weight);
      spec.parameters.set(prefix + name + ".bias", bias);
      c[prefix + name + ".scale"] = a.number(linear, "scale");
      c[prefix + name + ".zero_point"] = a.integer(linear, "zero_point");
    }
    for (const char* name : {"gates", "fgate_cx", "igate_cgate", "fgate_cx_igate_cgate", "ogate_cy"}) {
      const torch::jit::Module functional = child(cell, name);
      c[prefix + name + ".scale"] = a.number(functional, "scale");
      c[prefix + name + ".zero_point"] = a.integer(functional, "zero_point");
    }
  }
}

void read_conv(const Archive& a, const torch::jit::Module& m, ModuleSpec& spec) {
  json& c = *spec.config;
  for (const char* key : {"in_channels", "out_channels", "groups"}) c[key] = a.integer(m, key);
  for (const char* key : {"kernel_size", "stride", "padding", "dilation", "output_padding"}) c[key] = a.integers(m, key);
  c["transposed"] = a.flag(m, "transposed");
  const c10::IValue mode = a.attr(m, "padding_mode");
  if (!mode.isString()) a.fail(python_type(m) + ".padding_mode is not a string");
  c["padding_mode"] = mode.toStringRef();
  c["scale"] = a.number(m, "scale");
  c["zero_point"] = a.integer(m, "zero_point");
  auto [weight, bias] = a.unpack(a.attr(m, "_packed_params"), python_type(m) + "._packed_params");
  // ATen runs a 1-d convolution as a 2-d one of height 1, and unpacks its weight so:
  // (out, in / groups, 1, k) becomes the module's (out, in / groups, k).
  const size_t dims = c["kernel_size"].size();
  if (dims == 1 && weight.sizes.size() == 4 && weight.sizes[2] == 1) weight.sizes.erase(weight.sizes.begin() + 2);
  spec.parameters.set("weight", weight);
  spec.parameters.set("bias", bias);
}

// nnqd.LSTM / GRU: one CellParams per (layer, direction) in _all_weight_values.<i>.param,
// whose __getstate__ is ("quantized_dynamic", tensors, doubles, [reduce_range], [packed
// w_ih, packed w_hh]) (ATen's QuantizedCellParamsDynamic).
void read_rnn(const Archive& a, const torch::jit::Module& m, RnnMode mode, ModuleSpec& spec) {
  json& c = *spec.config;
  c["input_size"] = a.integer(m, "input_size");
  c["hidden_size"] = a.integer(m, "hidden_size");
  c["num_layers"] = a.integer(m, "num_layers");
  c["bias"] = a.flag(m, "bias");
  c["batch_first"] = a.flag(m, "batch_first");
  c["dropout"] = a.number(m, "dropout");
  c["bidirectional"] = a.flag(m, "bidirectional");
  a.require_qint8(m, "dtype");
  RnnOptions o;
  o.mode = mode;
  o.num_layers = c["num_layers"];
  o.bidirectional = c["bidirectional"];
  const c10::IValue list = a.attr(m, "_all_weight_values");
  if (!list.isModule()) a.fail(python_type(m) + "._all_weight_values is not a ModuleList");
  const torch::jit::Module cells = list.toModule();
  std::optional<bool> reduce_range;
  for (int64_t set = 0; set < o.parameter_sets(); ++set) {
    const std::string where = python_type(m) + "._all_weight_values." + std::to_string(set);
    const c10::IValue child = a.attr(cells, std::to_string(set));
    if (!child.isModule()) a.fail(where + " is not a module");
    const c10::IValue param = a.attr(child.toModule(), "param");
    std::vector<c10::IValue> state;
    try {
      state = libtorch::call_method(param, "__getstate__");
    } catch (const Error& e) {
      a.fail(where + ".param: " + e.what());
    }
    const auto& fields = state.at(0).toTupleRef().elements();
    if (fields.size() != 5 || !fields[0].isString() || fields[0].toStringRef() != "quantized_dynamic")
      a.fail(where + ".param is not a qint8 dynamic cell (" +
             (fields.empty() || !fields[0].isString() ? std::string("?") : fields[0].toStringRef()) + ")");
    const auto longs = fields[3].toIntVector();
    if (!longs.empty()) reduce_range = longs[0] != 0;
    const auto packed = fields[4].toList();
    if (packed.size() != 2) a.fail(where + ".param does not hold two packed weights");
    const RnnParameterNames names = rnn_parameter_names(o, set);
    auto [w_ih, b_ih] = a.unpack(packed.get(0), where + " (w_ih)");
    auto [w_hh, b_hh] = a.unpack(packed.get(1), where + " (w_hh)");
    spec.parameters.set(names.w_ih, w_ih);
    spec.parameters.set(names.w_hh, w_hh);
    spec.parameters.set(names.b_ih, b_ih);
    spec.parameters.set(names.b_hh, b_hh);
  }
  if (reduce_range) c["reduce_range"] = *reduce_range;
}

// nnqd.RNNCell / LSTMCell / GRUCell: (weight, bias) in _packed_weight_ih/_hh; sizes from the
// weights. The biases are the packed ones, which ATen's dynamic cells apply and nnqd's
// get_bias() returns: the modules' bias_ih/bias_hh attributes keep their constructor's
// random values after from_float (seen in PyTorch 1.13 archives), so they are not read.
void read_cell(const Archive& a, const torch::jit::Module& m, RnnMode mode, ModuleSpec& spec) {
  a.require_qint8(m, "weight_dtype");
  auto [w_ih, b_ih] = a.unpack(a.attr(m, "_packed_weight_ih"), python_type(m) + "._packed_weight_ih");
  auto [w_hh, b_hh] = a.unpack(a.attr(m, "_packed_weight_hh"), python_type(m) + "._packed_weight_hh");
  json& c = *spec.config;
  c["input_size"] = w_ih.sizes.at(1);
  c["hidden_size"] = w_hh.sizes.at(1);
  c["bias"] = !b_ih.is<NoneValue>();
  if (mode == RnnMode::RNN) {
    const c10::IValue nonlinearity = a.attr(m, "nonlinearity");
    if (!nonlinearity.isString()) a.fail(python_type(m) + ".nonlinearity is not a string");
    c["nonlinearity"] = nonlinearity.toStringRef();
  }
  spec.parameters.set("weight_ih", w_ih);
  spec.parameters.set("weight_hh", w_hh);
  spec.parameters.set("bias_ih", b_ih);
  spec.parameters.set("bias_hh", b_hh);
}

// The activations, Dropout and Softmax: the op's options and, where the module holds them,
// its output scale and zero point (nnq.LeakyReLU's buffers, nnq.Hardswish's, nnq.ELU's and
// nnq.Softmax's attributes).
void read_activation(const Archive& a, const torch::jit::Module& m, const std::string& name, ModuleSpec& spec) {
  json& c = *spec.config;
  if (name == "LeakyReLU") c["negative_slope"] = a.number(m, "negative_slope");
  if (name == "ELU") c["alpha"] = a.number(m, "alpha");
  if (name == "Dropout") c["p"] = a.number(m, "p");
  if (name == "Softmax") c["dim"] = a.optional_integer(m, "dim");
  if (name == "LeakyReLU" || name == "Hardswish" || name == "ELU" || name == "Softmax") {
    c["scale"] = a.number(m, "scale");
    c["zero_point"] = a.integral(m, "zero_point");
  }
}

void read_pooling(const Archive& a, const torch::jit::Module& m, const std::string& name, ModuleSpec& spec) {
  json& c = *spec.config;
  if (name == "AdaptiveAvgPool2d") {
    c["output_size"] = a.size_argument(m, "output_size");
    return;
  }
  for (const char* key : {"kernel_size", "stride", "padding"}) c[key] = a.size_argument(m, key);
  c["ceil_mode"] = a.flag(m, "ceil_mode");
  if (name == "MaxPool2d") {
    c["dilation"] = a.size_argument(m, "dilation");
    if (a.flag(m, "return_indices")) a.fail(python_type(m) + " returns indices, which quantized max pooling does not");
  } else {
    c["count_include_pad"] = a.flag(m, "count_include_pad");
    c["divisor_override"] = a.optional_integer(m, "divisor_override");
  }
}

// nnq.BatchNorm{2,3}d and nniq.BNReLU{2,3}d: num_features, eps, the float weight, bias and
// running statistics, and the output scale and zero point buffers.
void read_batch_norm(const Archive& a, const torch::jit::Module& m, ModuleSpec& spec) {
  // PyTorch 1.13's from_float assigns calculate_qparams()'s one-element tensors of shape [1]
  // to these 0-dim buffers; eager Python takes them, a scripted forward does not.
  for (const char* key : {"scale", "zero_point"}) {
    const c10::IValue v = a.attr(m, key);
    if (v.isTensor() && v.toTensor().dim() != 0)
      a.fail(python_type(m) + "." + key + " has shape [1], as PyTorch 1.13's convert leaves it, and its scripted "
             "forward fails (\"Cannot input a tensor of dimension other than 0 as a scalar argument\"): before "
             "torch.jit.script, make both buffers 0-dim (m.scale = m.scale.reshape(()); m.zero_point = "
             "m.zero_point.reshape(()))");
  }
  json& c = *spec.config;
  c["num_features"] = a.integer(m, "num_features");
  c["eps"] = a.number(m, "eps");
  c["scale"] = a.number(m, "scale");
  c["zero_point"] = a.integral(m, "zero_point");
  for (const char* key : {"weight", "bias", "running_mean", "running_var"})
    spec.parameters.set(key, a.float_tensor_attr(m, key));
}

// nnq.LayerNorm, GroupNorm, InstanceNorm{1,2,3}d: their torch.nn arguments, the float weight
// and bias when affine, and the output scale and zero point buffers.
void read_normalization(const Archive& a, const torch::jit::Module& m, const std::string& name, ModuleSpec& spec) {
  json& c = *spec.config;
  c["eps"] = a.number(m, "eps");
  c["scale"] = a.number(m, "scale");
  c["zero_point"] = a.integral(m, "zero_point");
  bool affine;
  if (name == "LayerNorm") {
    c["normalized_shape"] = a.integers(m, "normalized_shape");
    affine = a.flag(m, "elementwise_affine");
  } else if (name == "GroupNorm") {
    c["num_groups"] = a.integer(m, "num_groups");
    c["num_channels"] = a.integer(m, "num_channels");
    affine = a.flag(m, "affine");
  } else {
    c["num_features"] = a.integer(m, "num_features");
    // PyTorch 1.13's nnq.InstanceNorm{n}d.from_float passes (eps, affine) where its constructor
    // takes (eps, momentum, affine): the converted module says affine=False (and momentum=True)
    // yet holds the float module's weight and bias, and its forward uses them. What it holds
    // decides.
    affine = a.attr(m, "weight").isTensor();
    if (a.flag(m, "track_running_stats"))
      a.fail(python_type(m) + " tracks running statistics, which PyTorch 1.13's quantized InstanceNorm ignores (it "
             "normalizes by instance statistics); the harness models track_running_stats=False only");
  }
  c["affine"] = affine;
  if (affine)
    for (const char* key : {"weight", "bias"}) spec.parameters.set(key, a.float_tensor_attr(m, key));
}

// nnq.Embedding / EmbeddingBag: their sizes (and a bag's mode and include_last_offset), and
// the weight, unpacked from the packed params by quantized::embedding_bag_unpack.
void read_embedding(const Archive& a, const torch::jit::Module& m, bool bag, ModuleSpec& spec) {
  json& c = *spec.config;
  c["num_embeddings"] = a.integer(m, "num_embeddings");
  c["embedding_dim"] = a.integer(m, "embedding_dim");
  if (bag) {
    const c10::IValue mode = a.attr(m, "mode");
    if (!mode.isString()) a.fail(python_type(m) + ".mode is not a string");
    c["mode"] = mode.toStringRef();
    c["include_last_offset"] = a.flag(m, "include_last_offset");
    if (a.flag(m, "pruned_weights"))
      a.fail(python_type(m) + " has pruned_weights=True: fixtures of pruned embeddings (whose calls pass a "
             "compressed_indices_mapping) are not read yet");
  }
  const c10::IValue holder = a.attr(m, "_packed_params");
  if (!holder.isModule()) a.fail(python_type(m) + "._packed_params is not an EmbeddingPackedParams module");
  const c10::IValue packed = a.attr(holder.toModule(), "_packed_weight");
  QTensor weight;
  try {
    weight = from_aten_quantized(libtorch::call_op("quantized::embedding_bag_unpack", "", {packed}).at(0).toTensor());
  } catch (const Error& e) {
    a.fail(python_type(m) + "._packed_params: unpack failed: " + e.what());
  }
  // PyTorch 1.13's nnq.Embedding.from_float builds a quint8 module around a 4-bit weight.
  const int64_t dtype = a.integer(m, "dtype");
  if (dtype != static_cast<int64_t>(weight.qparams.dtype == DType::QUInt8 ? c10::ScalarType::QUInt8
                                                                           : c10::ScalarType::QUInt4x2))
    a.fail(python_type(m) + " says dtype " + std::string(c10::toString(static_cast<c10::ScalarType>(dtype))) +
           " but packs a " + to_string(weight.qparams.dtype) + " weight (PyTorch 1.13's nnq.Embedding.from_float "
           "drops a 4-bit qconfig's dtype, and the module then runs the 8-bit kernel on 4-bit rows): build it with "
           "nnq.Embedding(..., dtype=torch.quint4x2) and set_weight");
  spec.parameters.set("weight", weight);
}

// nnq.Quantize: its scale and zero_point buffers and its dtype (a ScalarType number).
void read_quantize(const Archive& a, const torch::jit::Module& m, ModuleSpec& spec) {
  json& c = *spec.config;
  c["scale"] = a.number(m, "scale");
  c["zero_point"] = a.integral(m, "zero_point");
  const int64_t dtype = a.integer(m, "dtype");
  if (dtype != static_cast<int64_t>(c10::ScalarType::QUInt8))
    a.fail(python_type(m) + " quantizes to " + std::string(c10::toString(static_cast<c10::ScalarType>(dtype))) +
           "; fixtures carry quint8 activations");
}

// Float torch.nn modules that PyTorch 1.13's convert leaves in place to run on quantized
// tensors (ReLU, Sigmoid, pooling, ...): kinds whose integer implementation has the float
// module's own name.
bool float_module_kind(const ModuleKind& kind) {
  const ImplementationEntry* integer = kind.find(Implementation::Quantized);
  return kind.family == Family::Static && integer && integer->repr_name == kind.float_name;
}

// The registry kind of a PyTorch quantized module type, or Error listing what is accepted.
const ModuleKind& kind_of(const Archive& a, const std::string& type) {
  const bool quantized = type.find(".quantized.") != std::string::npos;
  const bool dynamic = type.find(".quantized.dynamic.") != std::string::npos;
  const bool torch_nn = type.rfind("torch.nn.modules.", 0) == 0;
  const std::string key = std::string(dynamic ? "dynamic." : "static.") + class_name(type);
  for (const ModuleKind& kind : registry())
    if (kind.key == key && (quantized || (torch_nn && float_module_kind(kind)))) return kind;
  // nnq.Embedding and nnq.EmbeddingBag: weight-only.
  for (const ModuleKind& kind : registry())
    if (quantized && kind.family == Family::WeightOnly && kind.key == "weight_only." + class_name(type)) return kind;
  std::string supported;
  for (const ModuleKind& kind : registry()) supported += (supported.empty() ? "" : ", ") + kind.key;
  a.fail("unsupported module kind " + type + " (a fixture holds one quantized module of a registered kind: " +
         supported + "; or Quantize -> one of them -> DeQuantize, with no other children)");
}

ModuleSpec read_module(const Archive& a, const torch::jit::Module& m) {
  const std::string type = python_type(m);
  ModuleSpec spec;
  spec.kind = kind_of(a, type).key;
  spec.config = std::make_shared<json>(json::object());
  const std::string name = class_name(type);
  const bool dynamic = spec.kind.rfind("dynamic.", 0) == 0;
  const std::vector<std::string> activations{"ReLU", "ReLU6", "LeakyReLU", "Hardswish", "ELU",
                                             "Sigmoid", "Hardsigmoid", "Tanh", "Dropout", "Softmax"};
  if (std::find(activations.begin(), activations.end(), name) != activations.end()) read_activation(a, m, name, spec);
  else if (name == "MaxPool2d" || name == "AvgPool2d" || name == "AdaptiveAvgPool2d") read_pooling(a, m, name, spec);
  else if (name == "Quantize") read_quantize(a, m, spec);
  else if (name == "BatchNorm2d" || name == "BatchNorm3d" || name == "BNReLU2d" || name == "BNReLU3d")
    read_batch_norm(a, m, spec);
  else if (name == "LayerNorm" || name == "GroupNorm" || name.rfind("InstanceNorm", 0) == 0)
    read_normalization(a, m, name, spec);
  else if (name == "Embedding" || name == "EmbeddingBag") read_embedding(a, m, name == "EmbeddingBag", spec);
  else if (name == "DeQuantize") return spec;
  else if (name == "Linear" || name == "LinearReLU") read_linear(a, m, dynamic, spec);
  else if (name == "LSTM" && !dynamic) read_static_lstm(a, m, spec);
  else if (name == "LSTM") read_rnn(a, m, RnnMode::LSTM, spec);
  else if (name == "GRU") read_rnn(a, m, RnnMode::GRU, spec);
  else if (name == "RNNCell") read_cell(a, m, RnnMode::RNN, spec);
  else if (name == "LSTMCell") read_cell(a, m, RnnMode::LSTM, spec);
  else if (name == "GRUCell") read_cell(a, m, RnnMode::GRU, spec);
  else read_conv(a, m, spec);
  return spec;
}

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

IntTensor integer_tensor(const std::string& path, const at::Tensor& t, const std::string& what) {
  if (t.is_quantized() || (t.scalar_type() != at::kLong && t.scalar_type() != at::kInt))
    throw Error(path + ": " + what + " must be an int64 or int32 tensor, not " + std::string(c10::toString(t.scalar_type())));
  const at::Tensor values = t.to(at::kLong).contiguous();
  return IntTensor{t.sizes().vec(), std::vector<int64_t>(values.data_ptr<int64_t>(), values.data_ptr<int64_t>() + values.numel()),
                   t.scalar_type() == at::kInt};
}

Tensor float_tensor(const std::string& path, const at::Tensor& t, const std::string& what) {
  if (t.is_quantized() || t.scalar_type() != at::kFloat)
    throw Error(path + ": " + what + " must be a float32 tensor, not " + std::string(c10::toString(t.scalar_type())));
  return from_aten(t);
}

std::vector<int64_t> index_tensor(const std::string& path, const c10::IValue& v, const std::string& what) {
  if (v.isNone()) return {};
  if (!v.isTensor() || v.toTensor().scalar_type() != at::kLong)
    throw Error(path + ": " + what + " of the packed input must be an int64 tensor or None");
  const at::Tensor t = v.toTensor().contiguous();
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

// --- running LibTorch ---------------------------------------------------------------------

// The line of a TorchScript interpreter error that says what went wrong: its last
// "...Error: message" line (the first line is only "The following operation failed...").
std::string script_error(const std::string& message) {
  std::string found = first_line(message);
  size_t start = 0;
  while (start < message.size()) {
    const size_t end = std::min(message.find('\n', start), message.size());
    const std::string line = message.substr(start, end - start);
    const size_t at = line.find("Error: ");
    if (at != std::string::npos && line.find("Exception raised from") == std::string::npos) found = line.substr(at + 7);
    start = end + 1;
  }
  return found;
}

c10::IValue call(const std::string& path, torch::jit::Module& m, const std::string& method,
                 std::vector<c10::IValue> args) {
  try {
    return m.get_method(method)(std::move(args));
  } catch (const std::exception& e) {
    throw Error(path + ": the inputs do not fit the module: LibTorch says: " + script_error(e.what()));
  }
}

Value output_value(const std::string& origin, const c10::IValue& v) {
  if (v.isTensor()) {
    const at::Tensor t = v.toTensor();
    if (t.is_quantized()) return from_aten_quantized(t);
    return float_tensor(origin, t, "the output");
  }
  if (v.isTuple() && v.toTupleRef().elements().size() == 4) {  // a PackedSequence
    const auto& e = v.toTupleRef().elements();
    return PackedSequence{float_tensor(origin, e[0].toTensor(), "the packed output's data"),
                          index_tensor(origin, e[1], "batch_sizes"), index_tensor(origin, e[2], "sorted_indices"),
                          index_tensor(origin, e[3], "unsorted_indices")};
  }
  throw Error(origin + ": the output is not a tensor or a packed sequence but " + v.tagKind());
}

// The module's result as the harness's modules give it: output, h_n, c_n (an LSTMCell's
// output is its h; see core/float/rnn.cc finish_rnn_call).
ModuleOutput module_output(const std::string& origin, const ModuleKind& kind, const c10::IValue& result) {
  std::vector<c10::IValue> flat;
  std::function<void(const c10::IValue&, int)> walk = [&](const c10::IValue& v, int depth) {
    const bool packed = v.isTuple() && depth > 0 && v.toTupleRef().elements().size() == 4;
    if (v.isTuple() && !packed) for (const auto& e : v.toTupleRef().elements()) walk(e, depth + 1);
    else if (v.isList()) for (const auto& e : v.toListRef()) walk(e, depth + 1);
    else flat.push_back(v);
  };
  walk(result, 0);
  if (kind.key == "static.LSTM") {  // (output, (h_n, c_n)), all quantized
    if (flat.size() != 3) throw Error(origin + ": static.LSTM gives 3 tensors (output, h_n, c_n), found " +
                                      std::to_string(flat.size()));
    std::vector<QTensor> q;
    for (const c10::IValue& v : flat) {
      if (!v.isTensor() || !v.toTensor().is_quantized())
        throw Error(origin + ": static.LSTM gives quantized tensors (output, h_n, c_n)");
      q.push_back(from_aten_quantized(v.toTensor()));
    }
    return {q[0], std::nullopt, QuantizedHiddenState{q[1], q[2]}};
  }
  const bool lstm_cell = kind.key == "dynamic.LSTMCell";
  const bool sequence = kind.key == "dynamic.LSTM" || kind.key == "dynamic.GRU";
  const size_t wanted = lstm_cell ? 2 : sequence ? (kind.key == "dynamic.LSTM" ? 3 : 2) : 1;
  if (flat.size() != wanted)
    throw Error(origin + ": " + kind.key + " gives " + std::to_string(wanted) + " tensors (output" +
                (sequence ? kind.key == "dynamic.LSTM" ? ", h_n, c_n" : ", h_n" : lstm_cell ? "h, c" : "") + "), found " +
                std::to_string(flat.size()));
  if (lstm_cell) {
    const Tensor h = float_tensor(origin, flat[0].toTensor(), "h");
    return {h, HiddenState{h, float_tensor(origin, flat[1].toTensor(), "c")}};
  }
  ModuleOutput out{output_value(origin, flat[0]), std::nullopt};
  if (sequence) {
    out.hidden = HiddenState{float_tensor(origin, flat[1].toTensor(), "h_n"), std::nullopt};
    if (flat.size() == 3) out.hidden->c = float_tensor(origin, flat[2].toTensor(), "c_n");
  }
  return out;
}

bool bit_identical(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() &&
         std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), a.numel() * a.element_size()) == 0;
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
  fixture.module.kind = "static." + fc.method;
  fixture.module.config = std::make_shared<json>(json::object());
  json& c = *fixture.module.config;
  c["scale"] = a.number(functional, "scale");
  c["zero_point"] = a.integer(functional, "zero_point");
  if (fc.scalar) c["scalar"] = *fc.scalar;
  if (fc.dim) c["dim"] = *fc.dim;
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

  // The inputs, in the module's terms.
  const Arguments args = split_inputs(inputs_path, load_pickle(inputs_path, "inputs file"));
  const bool sequence = kind.key == "dynamic.LSTM" || kind.key == "dynamic.GRU";
  const bool recurrent = kind.structure == Structure::Recurrent;
  const size_t hidden_count = kind.key == "dynamic.LSTM" || kind.key == "dynamic.LSTMCell" ? 2 : recurrent ? 1 : 0;
  if (kind.key == "static.LSTM" && !args.hidden.empty())
    throw Error(inputs_path + ": static.LSTM fixtures take the quantized input alone (the harness's static LSTM "
                "starts from PyTorch's zero state; an initial (h0, c0) is not supported)");
  const bool weight_only = kind.family == Family::WeightOnly;
  if (weight_only && args.hidden.size() > (kind.key == "weight_only.EmbeddingBag" ? 2u : 0u))
    throw Error(inputs_path + ": " + kind.key + " takes " +
                (kind.key == "weight_only.EmbeddingBag" ? "(indices, offsets[, per_sample_weights])" : "the indices") +
                "; found " + std::to_string(1 + args.hidden.size()) + " tensors");
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
    if (weight_only) {  // indices, then offsets and per_sample_weights
      fixture.input.input = integer_tensor(inputs_path, x, "the indices");
      call_args = {x};
      for (size_t i = 0; i < args.hidden.size(); ++i) {
        const at::Tensor& t = args.hidden[i];
        fixture.input.others.push_back(i == 0 ? Value(integer_tensor(inputs_path, t, "the offsets"))
                                              : Value(float_tensor(inputs_path, t, "per_sample_weights")));
        call_args.push_back(t);
      }
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
