#pragma once
// A fixture: one quantized module as a LibTorch archive held it, an input, and the outputs
// LibTorch gave for it on one engine. `qconform fixture add` makes one from a TorchScript
// dump (oracles/fixture_import.h), `qconform check` replays it
// (oracles/replay.h). The file is JSON, versioned and documented in fixtures/README.md, so
// that anything can read it; nothing in it needs Python or LibTorch.
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/engines.h"
#include "core/module.h"
#include "core/state_dict.h"

namespace qconform {

// What rebuilds a module: PyTorch's constructor arguments under their attribute names
// ("in_features", "kernel_size", "num_layers", "scale", ...) and its parameters under
// PyTorch's names ("weight", "bias", "weight_ih_l0_reverse", ...), integer weights as
// quantized tensors. The registry turns it into a reference or an integer module
// (ModuleKind::reference_from_spec / quantized_from_spec).
struct ModuleSpec {
  std::string kind;                  // registry key, "dynamic.LSTM"
  std::shared_ptr<nlohmann::json> config;  // an object; shared_ptr keeps json out of this header
  StateDict parameters;

  // Typed reads of `config`; Error names the key and what was found.
  int64_t integer(const std::string& key) const;
  double number(const std::string& key) const;
  bool flag(const std::string& key) const;
  std::string text(const std::string& key) const;
  std::vector<int64_t> integers(const std::string& key) const;
  bool has(const std::string& key) const;
};

struct Fixture {
  // fixtures/README.md: format 2 records the int8 path; format 1 files are still read.
  static constexpr int64_t kFormat = 2;
  std::string name;
  // The engine LibTorch ran on when it recorded `expected`, and its int8 path there.
  EngineProfile engine = Engine::QNNPACK;
  ModuleSpec module;
  ModuleInput input;
  ModuleOutput expected;
  // Where it came from, for people: archive, PyTorch type, torch version, how recorded.
  std::shared_ptr<nlohmann::json> provenance;
};

// The JSON text of a fixture, and back. read_fixture's errors name `origin` (the file) and
// the JSON path of what is malformed: "fixtures/x.fixture.json: expected.output.shape: ...".
std::string fixture_to_json(const Fixture& fixture);
Fixture fixture_from_json(const std::string& text, const std::string& origin);
Fixture read_fixture(const std::string& path);
// One value (tensor, quantized tensor, indices, packed sequence) in the fixture format, and
// back; errors name `origin` and `where` (a JSON path).
nlohmann::json value_to_json(const Value& value);
Value value_from_json(const nlohmann::json& object, const std::string& origin, const std::string& where);

// The store: DIR/NAME.fixture.json. A name is letters, digits, '.', '_' and '-'.
constexpr const char* kFixtureSuffix = ".fixture.json";
void check_fixture_name(const std::string& name);  // throws Error saying what is allowed
std::string fixture_path(const std::string& store, const std::string& name);
// Throws Error when DIR/NAME.fixture.json exists and `force` is not set (checked before any
// work, and again by store_fixture).
void refuse_existing_fixture(const std::string& store, const std::string& name, bool force);
// Writes atomically; refuses an existing fixture unless `force`. Returns the path written.
std::string store_fixture(const Fixture& fixture, const std::string& store, bool force);
// Every fixture file under `store` (recursively), sorted; Error if the store is missing.
std::vector<std::string> list_fixtures(const std::string& store);

}  // namespace qconform
