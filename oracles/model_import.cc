#include "oracles/model_import.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/cpu.h"
#include "core/error.h"
#include "core/files.h"
#include "oracles/kinds/registry.h"
#include "oracles/model_calls.h"
#include "oracles/torchscript_module.h"
#include "quantized/libtorch/engine.h"

namespace qconform {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// One leaf call as LibTorch ran it.
struct RecordedCall {
  LeafCall call;
  c10::IValue result;
};

// Modules that only pass values on: no arithmetic, nothing to check.
bool passes_values_on(const std::string& type) {
  return type == "torch.nn.modules.linear.Identity" || type == "torch.nn.modules.flatten.Flatten";
}

bool is_qfunctional(const std::string& type) {
  return class_name(type) == "QFunctional" && type.find(".quantized.") != std::string::npos;
}


// "layer1.0.conv1" -> "layer1.0.conv1"; characters a fixture name cannot hold become '_'.
std::string name_part(const ModelLayer& layer) {
  std::string text = layer.path;
  if (layer.method != "forward") text += "." + layer.method;
  if (layer.call > 1) text += "-call" + std::to_string(layer.call);
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  return text;
}

// The layer's fixture: its module as the archive holds it, the input it received and the
// output LibTorch gave, on the request's engine.
Fixture layer_fixture(const FixtureImport& request, const RecordedCall& recorded, const ModuleKind& kind,
                      const std::string& name, const std::string& where) {
  const Archive archive{where};  // its errors name the model and the layer
  const std::string type = python_type(recorded.call.module);
  Fixture f;
  f.name = name;
  f.engine = request.engine;
  f.module = is_qfunctional(type) ? functional_spec(archive, recorded.call.module, recorded.call.method, {}, {})
                                  : read_module(archive, recorded.call.module);
  f.input = layer_input(where, kind, recorded.call.method, recorded.call.args, &f.module);
  f.expected = module_output(where, kind, recorded.result);
  try {
    kind.reference_from_spec(f.module);  // what was read rebuilds
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  json provenance = {{"model_file", fs::path(request.module_path).filename().string()},
                     {"inputs_file", fs::path(request.inputs_path).filename().string()},
                     {"pytorch_type", type},
                     {"model_layer", recorded.call.path},
                     {"model_method", recorded.call.method},
                     {"recorded_by", "LibTorch " + libtorch_version() + " in-process, inside the model"}};
  if (request.engine.engine == Engine::ONEDNN) provenance["onednn_isa"] = onednn_isa().name;
  f.provenance = std::make_shared<json>(provenance);
  return f;
}

void copy_file(const std::string& from, const fs::path& to) {
  write_file_atomically(to.string(), read_bytes(from, "file to copy"), "copy of " + from);
}

// Writes the model directory beside its final place, hidden, and renames it there: the store
// holds the whole model or nothing of it. A model replaced (--force) is exchanged with the new
// one in one step (renameat2 RENAME_EXCHANGE), then removed: at no moment is neither there.
std::string store_model(const FixtureImport& request, const ModelRecord& record, const std::vector<Fixture>& layers,
                        const std::vector<std::string>& layer_files, const std::string& store, bool force) {
  if (!fs::is_directory(store)) throw Error("fixture store " + store + " is not a directory");
  const fs::path final_dir = model_directory(store, record.name);
  if (fs::exists(final_dir) && !force)
    throw Error(final_dir.string() + " exists; pass --force to replace it, or --name to choose another name");
  remove_stale_temporaries(store);  // what killed imports left
  const fs::path partial = hidden_temporary_name(store, final_dir.filename().string());
  try {
    fs::create_directories(partial / "layers");
    copy_file(request.module_path, partial / kModelArchiveFile);
    copy_file(request.inputs_path, partial / kModelInputsFile);
    for (size_t i = 0; i < layers.size(); ++i)
      write_file_atomically((partial / layer_files[i]).string(), fixture_to_json(layers[i]), "layer fixture");
    write_file_atomically((partial / kModelRecordFile).string(), model_record_to_json(record), "model record");
    if (fs::exists(final_dir)) {
      if (::renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) != 0) {
        if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
          throw Error(final_dir.string() + ": could not put the new model in place: " + std::strerror(errno));
        // A filesystem without the exchange: the old model aside (hidden), the new one in.
        // Killed between the two, the old one waits under its hidden name, complete.
        const fs::path aside = hidden_temporary_name(store, final_dir.filename().string());
        fs::rename(final_dir, aside);
        fs::rename(partial, final_dir);
        fs::rename(aside, partial);
      }
    } else {
      fs::rename(partial, final_dir);
    }
  } catch (const fs::filesystem_error& e) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    throw Error(final_dir.string() + ": could not write the model: " + e.code().message());
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    throw;
  }
  std::error_code ignored;
  fs::remove_all(partial, ignored);  // the replaced model, if any
  return final_dir.string();
}

}  // namespace

ModelImportResult import_model(const FixtureImport& request, const std::string& store, bool force) {
  const std::string& model_path = request.module_path;
  if (!libtorch_has_engine(request.engine.engine))
    throw Error("engine " + to_string(request.engine.engine) + " is not in this LibTorch: a model's layers are "
                "recorded in-process, on an engine it has (qconform engines)");
  check_fixture_name(request.name);
  if (fs::exists(model_directory(store, request.name)) && !force)
    throw Error(model_directory(store, request.name) + " exists; pass --force to replace it, or --name to choose "
                "another name");
  libtorch::EngineGuard guard(request.engine);
  const std::vector<c10::IValue> args = forward_arguments(request.inputs_path);

  // The model as the archive runs it, untouched: the outputs every other run is held to.
  torch::jit::Module plain = load_archive(model_path, request.engine.engine);
  c10::IValue plain_result;
  try {
    std::vector<c10::IValue> a = args;
    plain_result = plain.forward(std::move(a));
  } catch (const std::exception& e) {
    throw Error(request.inputs_path + ": the inputs do not fit the model's forward: LibTorch says: " +
                script_error(e.what()));
  }

  // Again, with every leaf call recorded.
  InstrumentedModel model(model_path, request.engine.engine);
  std::vector<RecordedCall> calls;
  const c10::IValue result = model.run(args, [&](const LeafCall& call) {
    c10::IValue r = InstrumentedModel::original(call);
    calls.push_back({call, r});
    return r;
  });
  const std::vector<at::Tensor> outputs = result_tensors(result), plain_outputs = result_tensors(plain_result);
  bool same = outputs.size() == plain_outputs.size();
  for (size_t i = 0; same && i < outputs.size(); ++i) same = bit_identical(outputs[i], plain_outputs[i]);
  if (!same)
    throw Error(model_path + ": the model gives other outputs when its layers are recorded (a model whose outputs "
                "depend on earlier calls?); nothing recorded");
  const bool any_quantized = std::any_of(calls.begin(), calls.end(), [](const RecordedCall& c) {
    return python_type(c.call.module).find(".quantized.") != std::string::npos;
  });
  if (!any_quantized)
    throw Error(model_path + ": " + python_type(model.root()) + " has no quantized layer (" +
                std::to_string(calls.size()) + " layer calls, none of a quantized module): a float model? Prepare, "
                "calibrate and convert it (torch.ao.quantization) before torch.jit.script");

  ModelRecord record;
  record.name = request.name;
  record.engine = request.engine;
  record.pytorch_type = python_type(model.root());
  std::vector<Fixture> fixtures;
  std::vector<std::string> files;
  for (size_t i = 0; i < calls.size(); ++i) {
    const RecordedCall& c = calls[i];
    ModelLayer layer;
    layer.path = c.call.path;
    layer.method = c.call.method;
    layer.call = c.call.call;
    layer.pytorch_type = python_type(c.call.module);
    const ModuleKind* kind = registered_kind(layer.pytorch_type);
    if (is_qfunctional(layer.pytorch_type))
      for (const ModuleKind& k : registry())
        if (k.key == "static." + c.call.method) kind = &k;
    if (!kind) {
      layer.computes = !passes_values_on(layer.pytorch_type);
      layer.uncovered = layer.computes ? "no registered kind" : "passes values on";
    } else {
      char index[24];  // room for any size_t: GCC's truncation warning
      std::snprintf(index, sizeof index, "%03zu", i);
      const std::string name = request.name + "." + index + "." + name_part(layer);
      fixtures.push_back(layer_fixture(request, c, *kind, name,
                                       model_path + ": layer " + layer.label() + " (" + layer.pytorch_type + ")"));
      layer.kind = kind->key;
      layer.fixture = "layers/" + name + kFixtureSuffix;
      files.push_back(layer.fixture);
    }
    record.layers.push_back(layer);
  }
  // The model's outputs: LibTorch's here, or the ones recorded elsewhere, which must agree.
  if (request.expected_path) {
    const std::vector<at::Tensor> expected = result_tensors(load_pickle(*request.expected_path, "expected outputs file"));
    bool agree = expected.size() == outputs.size();
    for (size_t i = 0; agree && i < outputs.size(); ++i) agree = bit_identical(expected[i], outputs[i]);
    if (!agree)
      throw Error(*request.expected_path + ": not the outputs this LibTorch gives for the model on " +
                  request.engine.label() + " (a model's layers are recorded here, so its outputs must be too)");
  }
  for (const at::Tensor& t : outputs) {
    if (t.is_quantized()) record.outputs.push_back(libtorch::from_aten_quantized(t));
    else if (t.scalar_type() == at::kFloat) record.outputs.push_back(libtorch::from_aten(t));
    else record.outputs.push_back(integer_tensor(model_path, t, "an output"));
  }
  json provenance = {{"model_file", fs::path(model_path).filename().string()},
                     {"inputs_file", fs::path(request.inputs_path).filename().string()},
                     {"instrumented_call_sites", model.instrumented_calls()},
                     {"recorded_by", "LibTorch " + libtorch_version() + " in-process"}};
  if (request.engine.engine == Engine::ONEDNN) provenance["onednn_isa"] = onednn_isa().name;
  record.provenance = std::make_shared<json>(provenance);
  ModelImportResult out;
  out.directory = store_model(request, record, fixtures, files, store, force);
  out.record = record;
  return out;
}

}  // namespace qconform
