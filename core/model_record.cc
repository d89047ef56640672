#include "core/model_record.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/fixture.h"

namespace qconform {

using json = nlohmann::json;

std::string ModelLayer::label() const {
  std::string text = path.empty() ? "(model)" : path;
  if (method != "forward") text += "." + method;
  if (call > 1) text += " (call " + std::to_string(call) + ")";
  return text;
}

bool ModelRecord::fully_covered() const {
  return std::all_of(layers.begin(), layers.end(), [](const ModelLayer& l) { return l.covered() || !l.computes; });
}

std::vector<std::pair<std::string, int64_t>> ModelRecord::uncovered_types() const {
  std::map<std::string, int64_t> counts;
  for (const ModelLayer& l : layers)
    if (!l.covered() && l.computes) ++counts[l.pytorch_type];
  std::vector<std::pair<std::string, int64_t>> out(counts.begin(), counts.end());
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

std::string model_record_to_json(const ModelRecord& record) {
  json layers = json::array();
  for (const ModelLayer& l : record.layers) {
    json entry = {{"path", l.path}, {"method", l.method}, {"call", l.call}, {"pytorch_type", l.pytorch_type}};
    if (l.covered()) entry.update({{"kind", l.kind}, {"fixture", l.fixture}});
    else entry["uncovered"] = l.uncovered;
    if (!l.computes) entry["computes"] = false;
    layers.push_back(entry);
  }
  json uncovered = json::array();
  for (const auto& [type, count] : record.uncovered_types()) uncovered.push_back({{"pytorch_type", type}, {"count", count}});
  json outputs = json::array();
  for (const Value& v : record.outputs) outputs.push_back(value_to_json(v));
  json out = {{"format", ModelRecord::kFormat},
              {"name", record.name},
              {"engine", to_string(record.engine.engine)},
              {"pytorch_type", record.pytorch_type},
              {"archive", kModelArchiveFile},
              {"inputs", kModelInputsFile},
              {"fully_covered", record.fully_covered()},
              {"uncovered", uncovered},
              {"provenance", record.provenance ? *record.provenance : json::object()}};
  if (record.engine.int8_path) out["int8_path"] = to_string(*record.engine.int8_path);
  // One layer per line: the file reads as the model's execution order.
  std::ostringstream text;
  text << "{\n";
  for (const char* key : {"format", "name", "engine", "int8_path", "pytorch_type", "archive", "inputs", "fully_covered",
                          "uncovered", "provenance"})
    if (out.contains(key)) text << "  " << json(key).dump() << ": " << out.at(key).dump() << ",\n";
  text << "  \"layers\": [\n";
  for (size_t i = 0; i < layers.size(); ++i) text << "    " << layers[i].dump() << (i + 1 < layers.size() ? ",\n" : "\n");
  text << "  ],\n  \"outputs\": " << outputs.dump() << "\n}\n";
  return text.str();
}

namespace {

struct RecordReader {
  const std::string& origin;
  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw Error(origin + ": " + where + ": " + what);
  }
  const json& field(const json& object, const std::string& where, const std::string& key) const {
    if (!object.is_object()) fail(where, "must be a JSON object");
    if (!object.contains(key)) fail(where, "has no '" + key + "'");
    return object.at(key);
  }
  std::string text(const json& object, const std::string& where, const std::string& key) const {
    const json& v = field(object, where, key);
    if (!v.is_string()) fail(where + "." + key, "must be a string, not " + v.dump());
    return v.get<std::string>();
  }
};

// A layer's fixture path must stay inside the model directory.
bool inside(const std::string& relative) {
  const std::filesystem::path p(relative);
  if (p.empty() || p.is_absolute()) return false;
  return std::none_of(p.begin(), p.end(), [](const std::filesystem::path& part) { return part == ".."; });
}

}  // namespace

ModelRecord model_record_from_json(const std::string& text, const std::string& origin) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(origin + ": not JSON (" + e.what() + ")");
  }
  const RecordReader r{origin};
  const json& format = r.field(root, "the file", "format");
  if (!format.is_number_integer() || format.get<int64_t>() != ModelRecord::kFormat)
    r.fail("format", "is " + format.dump() + "; this qconform reads model records of format " +
                         std::to_string(ModelRecord::kFormat) + " (fixtures/README.md)");
  ModelRecord record;
  record.name = r.text(root, "the file", "name");
  record.pytorch_type = r.text(root, "the file", "pytorch_type");
  Engine engine = Engine::QNNPACK;
  const std::string engine_name = r.text(root, "the file", "engine");
  try {
    engine = engine_from_string(engine_name);
  } catch (const Error& e) {
    r.fail("engine", e.what());
  }
  // As in a fixture: the path that recorded it, for an engine that has two; none otherwise.
  if (int8_paths(engine).empty()) {
    if (root.contains("int8_path")) r.fail("int8_path", "must be absent: " + to_string(engine) + " has one int8 path");
    record.engine = EngineProfile(engine);
  } else {
    if (!root.contains("int8_path")) r.fail("the file", "has no 'int8_path': " + to_string(engine) + " has two (avx2, vnni)");
    const std::string path = r.text(root, "the file", "int8_path");
    try {
      record.engine = EngineProfile(engine, int8_path_from_string(path));
    } catch (const Error& e) {
      r.fail("int8_path", e.what());
    }
  }
  const json& layers = r.field(root, "the file", "layers");
  if (!layers.is_array()) r.fail("layers", "must be a list");
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string where = "layers[" + std::to_string(i) + "]";
    ModelLayer l;
    l.path = r.text(layers[i], where, "path");
    l.method = r.text(layers[i], where, "method");
    const json& call = r.field(layers[i], where, "call");
    if (!call.is_number_integer() || call.get<int64_t>() < 1) r.fail(where + ".call", "must be a positive integer");
    l.call = call.get<int64_t>();
    l.pytorch_type = r.text(layers[i], where, "pytorch_type");
    if (layers[i].contains("fixture")) {
      l.kind = r.text(layers[i], where, "kind");
      l.fixture = r.text(layers[i], where, "fixture");
      if (!inside(l.fixture)) r.fail(where + ".fixture", "must be a relative path inside the model directory");
    } else {
      l.uncovered = r.text(layers[i], where, "uncovered");
    }
    if (layers[i].contains("computes")) {
      if (!layers[i].at("computes").is_boolean()) r.fail(where + ".computes", "must be true or false");
      l.computes = layers[i].at("computes").get<bool>();
    }
    record.layers.push_back(l);
  }
  const json& outputs = r.field(root, "the file", "outputs");
  if (!outputs.is_array()) r.fail("outputs", "must be a list of values");
  for (size_t i = 0; i < outputs.size(); ++i)
    record.outputs.push_back(value_from_json(outputs[i], origin, "outputs[" + std::to_string(i) + "]"));
  record.provenance = std::make_shared<json>(root.value("provenance", json::object()));
  return record;
}

ModelRecord read_model_record(const std::string& directory) {
  const std::string path = (std::filesystem::path(directory) / kModelRecordFile).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the model record");
  std::ostringstream text;
  text << in.rdbuf();
  return model_record_from_json(text.str(), path);
}

std::string model_directory(const std::string& store, const std::string& name) {
  return (std::filesystem::path(store) / (name + kModelSuffix)).string();
}

std::vector<std::string> list_models(const std::string& store) {
  if (!std::filesystem::is_directory(store)) throw Error("fixture store " + store + " is not a directory");
  std::vector<std::string> paths;
  const std::string suffix = kModelSuffix;
  for (auto it = std::filesystem::recursive_directory_iterator(store); it != decltype(it)(); ++it) {
    const std::string name = it->path().filename().string();
    if (!it->is_directory()) continue;
    if (name.front() == '.') {  // a model being written (.NAME.model.partial-*): not there yet
      it.disable_recursion_pending();
      continue;
    }
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        std::filesystem::is_regular_file(it->path() / kModelRecordFile)) {
      paths.push_back(it->path().string());
      it.disable_recursion_pending();
    }
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace qconform
