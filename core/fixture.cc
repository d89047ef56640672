#include "core/fixture.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/files.h"

namespace qconform {

using json = nlohmann::json;

// --- ModuleSpec's typed reads -------------------------------------------------------------

namespace {
const json& config_value(const ModuleSpec& spec, const std::string& key) {
  if (!spec.config || !spec.config->contains(key))
    throw Error(spec.kind + " fixture: its config has no '" + key + "'");
  return spec.config->at(key);
}
[[noreturn]] void wrong_config(const ModuleSpec& spec, const std::string& key, const char* wanted, const json& v) {
  throw Error(spec.kind + " fixture: config '" + key + "' must be " + wanted + ", not " + v.dump());
}
}  // namespace

bool ModuleSpec::has(const std::string& key) const { return config && config->contains(key); }

int64_t ModuleSpec::integer(const std::string& key) const {
  const json& v = config_value(*this, key);
  if (!v.is_number_integer()) wrong_config(*this, key, "an integer", v);
  return v.get<int64_t>();
}
double ModuleSpec::number(const std::string& key) const {
  const json& v = config_value(*this, key);
  if (!v.is_number()) wrong_config(*this, key, "a number", v);
  return v.get<double>();
}
bool ModuleSpec::flag(const std::string& key) const {
  const json& v = config_value(*this, key);
  if (!v.is_boolean()) wrong_config(*this, key, "true or false", v);
  return v.get<bool>();
}
std::string ModuleSpec::text(const std::string& key) const {
  const json& v = config_value(*this, key);
  if (!v.is_string()) wrong_config(*this, key, "a string", v);
  return v.get<std::string>();
}
std::vector<int64_t> ModuleSpec::integers(const std::string& key) const {
  const json& v = config_value(*this, key);
  if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_number_integer(); }))
    wrong_config(*this, key, "a list of integers", v);
  return v.get<std::vector<int64_t>>();
}

// --- values to JSON -----------------------------------------------------------------------

namespace {

// Floats are written as the shortest decimal that reads back to the same double, which the
// float converts to exactly; JSON has no NaN or infinity, so those are the strings "nan",
// "inf", "-inf".
json float_json(float v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return static_cast<double>(v);
}

json tensor_json(const Tensor& t) {
  json values = json::array();
  for (float v : t.data) values.push_back(float_json(v));
  return {{"kind", "tensor"}, {"dtype", "torch.float32"}, {"shape", t.sizes}, {"values", values}};
}

json qtensor_json(const QTensor& q) {
  // Float zero points (per_channel_affine_float_qparams: embeddings) stay floats.
  json zero_points = json::array();
  const bool float_zero_points = q.qparams.qscheme == QScheme::PerChannelAffineFloatQParams;
  for (double z : q.qparams.zero_points)
    zero_points.push_back(float_zero_points ? float_json(static_cast<float>(z)) : json(static_cast<int64_t>(z)));
  json out = {{"kind", "quantized_tensor"},
              {"dtype", to_string(q.qparams.dtype)},
              {"shape", q.sizes},
              {"qscheme", to_string(q.qparams.qscheme)},
              {"scale", q.qparams.scales},
              {"zero_point", zero_points},
              {"int_repr", q.values}};
  if (q.qparams.per_channel()) out["axis"] = q.qparams.axis;
  if (q.channels_last) out["memory_format"] = "channels_last";
  return out;
}

json value_json(const StateValue& v) {
  if (v.is<NoneValue>()) return {{"kind", "none"}};
  if (v.is<Tensor>()) return tensor_json(std::get<Tensor>(v.value));
  if (v.is<QTensor>()) return qtensor_json(std::get<QTensor>(v.value));
  throw Error("a fixture parameter holds a " + v.kind() + ", which the fixture format does not carry");
}

json module_value_json(const Value& v) {
  if (std::holds_alternative<AbsentOperand>(v)) return {{"kind", "none"}};
  if (const auto* t = std::get_if<Tensor>(&v)) return tensor_json(*t);
  if (const auto* q = std::get_if<QTensor>(&v)) return qtensor_json(*q);
  if (const auto* i = std::get_if<IntTensor>(&v))
    return {{"kind", "index_tensor"}, {"dtype", i->is_int32 ? "torch.int32" : "torch.int64"}, {"shape", i->sizes},
            {"values", i->values}};
  const auto& p = std::get<PackedSequence>(v);
  json out = {{"kind", "packed_sequence"}, {"data", tensor_json(p.data)}, {"batch_sizes", p.batch_sizes}};
  out["sorted_indices"] = p.sorted_indices.empty() ? json(nullptr) : json(p.sorted_indices);
  out["unsorted_indices"] = p.unsorted_indices.empty() ? json(nullptr) : json(p.unsorted_indices);
  return out;
}

json hidden_json(const std::optional<HiddenState>& hidden, const char* h_key, const char* c_key) {
  json out = json::object();
  if (!hidden) return out;
  out[h_key] = tensor_json(hidden->h);
  if (hidden->c) out[c_key] = tensor_json(*hidden->c);
  return out;
}

// --- JSON to values, every error naming where ----------------------------------------------

struct Reader {
  const std::string& origin;
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw Error(origin + ": " + path + ": " + what);
  }
  const json& field(const json& object, const std::string& path, const std::string& key) const {
    if (!object.is_object()) fail(path, "must be a JSON object");
    if (!object.contains(key)) fail(path, "has no '" + key + "'");
    return object.at(key);
  }
  std::string text(const json& object, const std::string& path, const std::string& key) const {
    const json& v = field(object, path, key);
    if (!v.is_string()) fail(path + "." + key, "must be a string, not " + v.dump());
    return v.get<std::string>();
  }
  std::vector<int64_t> integers(const json& v, const std::string& path) const {
    if (!v.is_array()) fail(path, "must be a list of integers");
    std::vector<int64_t> out;
    for (const json& e : v) {
      if (!e.is_number_integer()) fail(path, "must hold integers only, not " + e.dump());
      out.push_back(e.get<int64_t>());
    }
    return out;
  }
  std::vector<double> numbers(const json& v, const std::string& path) const {
    if (!v.is_array()) fail(path, "must be a list of numbers");
    std::vector<double> out;
    for (const json& e : v) {
      if (!e.is_number()) fail(path, "must hold numbers only, not " + e.dump());
      out.push_back(e.get<double>());
    }
    return out;
  }
  Shape shape(const json& object, const std::string& path) const {
    Shape s = integers(field(object, path, "shape"), path + ".shape");
    for (int64_t d : s)
      if (d < 0) fail(path + ".shape", "has a negative size");
    if (!checked_numel(s)) fail(path + ".shape", "holds more elements than int64 counts");
    return s;
  }
  void expect_kind(const json& object, const std::string& path, const std::string& kind) const {
    const std::string held = text(object, path, "kind");
    if (held != kind) fail(path, "must be a " + kind + ", not a " + held);
  }

  Tensor tensor(const json& object, const std::string& path) const {
    expect_kind(object, path, "tensor");
    if (text(object, path, "dtype") != "torch.float32") fail(path + ".dtype", "must be torch.float32");
    const Shape sizes = shape(object, path);
    const json& values = field(object, path, "values");
    if (!values.is_array()) fail(path + ".values", "must be a list");
    if (static_cast<int64_t>(values.size()) != numel_of(sizes))
      fail(path + ".values", "holds " + std::to_string(values.size()) + " values for the shape " +
                                 shape_to_string(sizes) + " (" + std::to_string(numel_of(sizes)) + ")");
    std::vector<float> data;
    data.reserve(values.size());
    for (const json& v : values) {
      if (v.is_number()) data.push_back(static_cast<float>(v.get<double>()));
      else if (v == "nan") data.push_back(NAN);
      else if (v == "inf") data.push_back(INFINITY);
      else if (v == "-inf") data.push_back(-INFINITY);
      else fail(path + ".values", "holds " + v.dump() + ", not a number");
    }
    return Tensor(sizes, std::move(data));
  }

  QTensor qtensor(const json& object, const std::string& path) const {
    expect_kind(object, path, "quantized_tensor");
    QTensor q;
    q.sizes = shape(object, path);
    try {
      const DType dtype = dtype_from_string(text(object, path, "dtype"));
      const QScheme qscheme = qscheme_from_string(text(object, path, "qscheme"));
      const std::vector<double> scales = numbers(field(object, path, "scale"), path + ".scale");
      if (qscheme == QScheme::PerChannelAffineFloatQParams) {
        const json& axis = field(object, path, "axis");
        if (!axis.is_number_integer()) fail(path + ".axis", "must be an integer");
        const std::vector<double> zps = numbers(field(object, path, "zero_point"), path + ".zero_point");
        q.qparams = QuantParams::per_channel_float_qparams(dtype, std::vector<float>(scales.begin(), scales.end()),
                                                           std::vector<float>(zps.begin(), zps.end()),
                                                           axis.get<int64_t>());
      } else if (is_per_channel(qscheme)) {
        const std::vector<int64_t> zero_points = integers(field(object, path, "zero_point"), path + ".zero_point");
        const json& axis = field(object, path, "axis");
        if (!axis.is_number_integer()) fail(path + ".axis", "must be an integer");
        q.qparams = QuantParams::per_channel(dtype, scales, zero_points, axis.get<int64_t>());
      } else {
        const std::vector<int64_t> zero_points = integers(field(object, path, "zero_point"), path + ".zero_point");
        if (scales.size() != 1 || zero_points.size() != 1)
          fail(path, "a per-tensor scheme takes one scale and one zero_point");
        q.qparams = QuantParams::per_tensor(dtype, scales[0], zero_points[0]);
        q.qparams.qscheme = qscheme;
      }
      validate(q.qparams, q.sizes);
    } catch (const Error& e) {
      const std::string message = e.what();
      if (message.rfind(origin, 0) == 0) throw;
      fail(path, message);
    }
    const std::vector<int64_t> ints = integers(field(object, path, "int_repr"), path + ".int_repr");
    if (static_cast<int64_t>(ints.size()) != numel_of(q.sizes))
      fail(path + ".int_repr", "holds " + std::to_string(ints.size()) + " values for the shape " +
                                   shape_to_string(q.sizes));
    for (int64_t v : ints) {
      if (v < q.qparams.quant_min || v > q.qparams.quant_max)
        fail(path + ".int_repr", "holds " + std::to_string(v) + ", outside " + to_string(q.qparams.dtype) + "'s [" +
                                     std::to_string(q.qparams.quant_min) + ", " + std::to_string(q.qparams.quant_max) +
                                     "]");
      q.values.push_back(static_cast<int32_t>(v));
    }
    if (object.contains("memory_format")) {
      const std::string format = text(object, path, "memory_format");
      if (format != "channels_last") fail(path + ".memory_format", "must be \"channels_last\" or absent");
      if (q.sizes.size() != 4) fail(path + ".memory_format", "channels_last needs a 4-d tensor");
      q.channels_last = true;
    }
    return q;
  }

  StateValue parameter(const json& object, const std::string& path) const {
    const std::string kind = text(object, path, "kind");
    if (kind == "none") return NoneValue{};
    if (kind == "tensor") return tensor(object, path);
    if (kind == "quantized_tensor") return qtensor(object, path);
    fail(path, "kind must be tensor, quantized_tensor or none, not '" + kind + "'");
  }

  Value module_value(const json& object, const std::string& path) const {
    const std::string kind = text(object, path, "kind");
    if (kind == "tensor") return tensor(object, path);
    if (kind == "quantized_tensor") return qtensor(object, path);
    if (kind == "index_tensor") {
      IntTensor t;
      const std::string dtype = text(object, path, "dtype");
      if (dtype != "torch.int64" && dtype != "torch.int32") fail(path + ".dtype", "must be torch.int64 or torch.int32");
      t.is_int32 = dtype == "torch.int32";
      t.sizes = shape(object, path);
      t.values = integers(field(object, path, "values"), path + ".values");
      if (static_cast<int64_t>(t.values.size()) != numel_of(t.sizes))
        fail(path + ".values", "holds " + std::to_string(t.values.size()) + " values for the shape " +
                                   shape_to_string(t.sizes));
      return t;
    }
    if (kind == "none") return AbsentOperand{};  // an operand passed as None (core/module.h)
    if (kind != "packed_sequence")
      fail(path, "kind must be tensor, quantized_tensor, index_tensor, packed_sequence or none");
    PackedSequence p;
    p.data = tensor(field(object, path, "data"), path + ".data");
    p.batch_sizes = integers(field(object, path, "batch_sizes"), path + ".batch_sizes");
    for (const char* key : {"sorted_indices", "unsorted_indices"}) {
      const json& v = field(object, path, key);
      if (!v.is_null()) (key[0] == 's' ? p.sorted_indices : p.unsorted_indices) = integers(v, path + "." + key);
    }
    return p;
  }

  std::optional<HiddenState> hidden(const json& object, const std::string& path, const char* h_key,
                                    const char* c_key) const {
    if (!object.contains(h_key)) {
      if (object.contains(c_key)) fail(path, std::string("has '") + c_key + "' without '" + h_key + "'");
      return std::nullopt;
    }
    HiddenState h{tensor(object.at(h_key), path + "." + h_key), std::nullopt};
    if (object.contains(c_key)) h.c = tensor(object.at(c_key), path + "." + c_key);
    return h;
  }
};

}  // namespace

std::string fixture_to_json(const Fixture& fixture) {
  json parameters = json::array();
  for (const auto& [key, value] : fixture.module.parameters.entries())
    parameters.push_back({{"name", key}, {"value", value_json(value)}});
  json input = {{"input", module_value_json(fixture.input.input)}};
  input.update(hidden_json(fixture.input.hidden, "h0", "c0"));
  if (!fixture.input.others.empty()) {  // a call's further operands (QFunctional's add, cat)
    json others = json::array();
    for (const Value& v : fixture.input.others) others.push_back(module_value_json(v));
    input["others"] = others;
  }
  json expected = {{"output", module_value_json(fixture.expected.output)}};
  expected.update(hidden_json(fixture.expected.hidden, "h_n", "c_n"));
  if (fixture.expected.quantized_hidden) {  // a static LSTM's: quantized tensors
    expected["h_n"] = qtensor_json(fixture.expected.quantized_hidden->h);
    expected["c_n"] = qtensor_json(fixture.expected.quantized_hidden->c);
  }
  json out = {{"format", Fixture::kFormat},
              {"name", fixture.name},
              {"kind", fixture.module.kind},
              {"engine", to_string(fixture.engine.engine)},
              {"config", fixture.module.config ? *fixture.module.config : json::object()},
              {"parameters", parameters},
              {"input", input},
              {"expected", expected},
              {"provenance", fixture.provenance ? *fixture.provenance : json::object()}};
  // One line per top-level field keeps the file diffable and the big arrays compact.
  std::ostringstream text;
  text << "{\n";
  bool first = true;
  if (fixture.engine.int8_path) out["int8_path"] = to_string(*fixture.engine.int8_path);
  for (const char* key : {"format", "name", "kind", "engine", "int8_path", "config", "provenance", "parameters", "input",
                          "expected"}) {
    if (!out.contains(key)) continue;
    text << (first ? "" : ",\n") << "  " << json(key).dump() << ": " << out.at(key).dump();
    first = false;
  }
  text << "\n}\n";
  return text.str();
}

Fixture fixture_from_json(const std::string& text, const std::string& origin) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // a syntax error, or a number beyond double (out_of_range)
    throw Error(origin + ": not JSON (" + e.what() + ")");
  }
  const Reader r{origin};
  const json& format = r.field(root, "the file", "format");
  if (!format.is_number_integer() || format.get<int64_t>() < 1 || format.get<int64_t>() > Fixture::kFormat)
    r.fail("format", "is " + format.dump() + "; this qconform reads formats 1 to " + std::to_string(Fixture::kFormat) +
                         " (fixtures/README.md)");
  Fixture f;
  f.name = r.text(root, "the file", "name");
  f.module.kind = r.text(root, "the file", "kind");
  Engine engine = Engine::QNNPACK;
  try {
    engine = engine_from_string(r.text(root, "the file", "engine"));
  } catch (const Error& e) {
    r.fail("engine", e.what());
  }
  // The int8 path the outputs were recorded on, for an engine that has two. Format 1 had
  // none: every format-1 fixture was recorded on an AVX2 host (fixtures/README.md).
  const bool has_paths = !int8_paths(engine).empty();
  if (format.get<int64_t>() == 1) {
    if (root.contains("int8_path")) r.fail("int8_path", "is not a format-1 field (format 2 added it)");
    f.engine = has_paths ? EngineProfile(engine, Int8Path::Avx2) : EngineProfile(engine);
  } else if (has_paths) {
    if (!root.contains("int8_path"))
      r.fail("the file", "has no 'int8_path': " + to_string(engine) + " has two (avx2, vnni) and a fixture says "
                         "which one recorded it");
    const std::string path = r.text(root, "the file", "int8_path");
    try {
      f.engine = EngineProfile(engine, int8_path_from_string(path));
    } catch (const Error& e) {
      r.fail("int8_path", e.what());
    }
  } else {
    if (root.contains("int8_path"))
      r.fail("int8_path", "must be absent: " + to_string(engine) + " has one int8 path on every CPU");
    f.engine = EngineProfile(engine);
  }
  const json& config = r.field(root, "the file", "config");
  if (!config.is_object()) r.fail("config", "must be a JSON object");
  f.module.config = std::make_shared<json>(config);
  const json& parameters = r.field(root, "the file", "parameters");
  if (!parameters.is_array()) r.fail("parameters", "must be a list");
  for (size_t i = 0; i < parameters.size(); ++i) {
    const std::string path = "parameters[" + std::to_string(i) + "]";
    const std::string name = r.text(parameters[i], path, "name");
    if (f.module.parameters.contains(name)) r.fail(path, "repeats the parameter '" + name + "'");
    f.module.parameters.set(name, r.parameter(r.field(parameters[i], path, "value"), path + ".value"));
  }
  const json& input = r.field(root, "the file", "input");
  f.input.input = r.module_value(r.field(input, "input", "input"), "input.input");
  f.input.hidden = r.hidden(input, "input", "h0", "c0");
  if (input.contains("others")) {
    const json& others = input.at("others");
    if (!others.is_array()) r.fail("input.others", "must be a list of values");
    for (size_t i = 0; i < others.size(); ++i)
      f.input.others.push_back(r.module_value(others[i], "input.others[" + std::to_string(i) + "]"));
  }
  const json& expected = r.field(root, "the file", "expected");
  f.expected.output = r.module_value(r.field(expected, "expected", "output"), "expected.output");
  // h_n and c_n: float tensors, or quantized ones (a static LSTM's), both or neither then.
  const auto quantized_part = [&](const char* key) {
    return expected.contains(key) && expected.at(key).is_object() &&
           expected.at(key).value("kind", "") == "quantized_tensor";
  };
  if (quantized_part("h_n") || quantized_part("c_n")) {
    if (!quantized_part("h_n") || !quantized_part("c_n"))
      r.fail("expected", "has one of h_n and c_n quantized and not the other");
    f.expected.quantized_hidden =
        QuantizedHiddenState{r.qtensor(expected.at("h_n"), "expected.h_n"), r.qtensor(expected.at("c_n"), "expected.c_n")};
  } else {
    f.expected.hidden = r.hidden(expected, "expected", "h_n", "c_n");
  }
  f.provenance = std::make_shared<json>(root.value("provenance", json::object()));
  return f;
}

nlohmann::json value_to_json(const Value& value) { return module_value_json(value); }

Value value_from_json(const nlohmann::json& object, const std::string& origin, const std::string& where) {
  return Reader{origin}.module_value(object, where);
}

Fixture read_fixture(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the fixture");
  std::ostringstream text;
  text << in.rdbuf();
  return fixture_from_json(text.str(), path);
}

void check_fixture_name(const std::string& name) {
  const bool allowed = !name.empty() && name.front() != '.' &&
                       std::all_of(name.begin(), name.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
                       });
  if (!allowed)
    throw Error("fixture name '" + name + "': use letters, digits, '.', '_' and '-' (not first '.')");
}

std::string fixture_path(const std::string& store, const std::string& name) {
  return (std::filesystem::path(store) / (name + kFixtureSuffix)).string();
}

void refuse_existing_fixture(const std::string& store, const std::string& name, bool force) {
  const std::string path = fixture_path(store, name);
  if (std::filesystem::exists(path) && !force)
    throw Error(path + " exists; pass --force to replace it, or --name to choose another name");
}

std::string store_fixture(const Fixture& fixture, const std::string& store, bool force) {
  check_fixture_name(fixture.name);
  const std::string path = fixture_path(store, fixture.name);
  if (!std::filesystem::is_directory(store)) throw Error("fixture store " + store + " is not a directory");
  refuse_existing_fixture(store, fixture.name, force);
  remove_stale_temporaries(store);  // what killed writers left
  write_file_atomically(path, fixture_to_json(fixture), "fixture");
  return path;
}

std::vector<std::string> list_fixtures(const std::string& store) {
  if (!std::filesystem::is_directory(store)) throw Error("fixture store " + store + " is not a directory");
  std::vector<std::string> paths;
  const std::string suffix = kFixtureSuffix, model = ".model";
  for (auto it = std::filesystem::recursive_directory_iterator(store); it != decltype(it)(); ++it) {
    const std::string p = it->path().string(), name = it->path().filename().string();
    // A model's layers replay with their model (list_models), and a directory being written
    // (.NAME.model.partial-*) is not there yet.
    if (it->is_directory() && (name.front() == '.' || (name.size() > model.size() &&
                                                       name.compare(name.size() - model.size(), model.size(), model) == 0))) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && p.size() > suffix.size() && p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0)
      paths.push_back(p);
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace qconform
