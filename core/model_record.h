#pragma once
// A model record: one whole quantized model as LibTorch ran it, layer by layer. `qconform
// fixture add MODEL.pt` writes it (oracles/model_import.h), `qconform check` replays it
// (oracles/model_replay.h). It lives in its own directory of the store, written whole or
// not at all:
//
//   STORE/NAME.model/model.json            this record (format: fixtures/README.md)
//   STORE/NAME.model/model.pt              the TorchScript archive, as given
//   STORE/NAME.model/inputs.pt             its inputs, as given
//   STORE/NAME.model/layers/*.fixture.json one fixture per covered layer call: the input
//                                          the layer received inside the model and the
//                                          output LibTorch gave (core/fixture.h)
//
// The layer fixtures replay anywhere, like any fixture; the chained runs (every covered
// layer replaced by an implementation, the model's own code between them) need LibTorch
// and the archive.
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/engines.h"
#include "core/module.h"

namespace qconform {

// One call of a leaf module in the model's forward, in execution order.
struct ModelLayer {
  std::string path;          // the module's path in the model, "layer1.0.conv1" ("" for the root)
  std::string method;        // "forward", or QFunctional's "add_relu", "cat", ...
  int64_t call = 1;          // the how-manieth call of this module's method (a module called twice)
  std::string pytorch_type;  // "torch.ao.nn.quantized.modules.conv.Conv2d"
  std::string kind;          // the registry kind; empty when the layer is not covered
  std::string fixture;       // its fixture, relative to the model directory; empty when not covered
  std::string uncovered;     // why not covered: "no registered kind", or what could not be read
  // False for the modules that only pass values on (nn.Identity, nn.Flatten: a view), which
  // need no fixture for the model to be covered.
  bool computes = true;

  bool covered() const { return !fixture.empty(); }
  // "layer1.0.conv1", "layer1.0.add_relu.add_relu", "relu (call 2)"
  std::string label() const;
};

struct ModelRecord {
  static constexpr int64_t kFormat = 1;
  std::string name;
  EngineProfile engine = Engine::QNNPACK;  // what LibTorch recorded on
  std::string pytorch_type;                // the model's class
  std::vector<ModelLayer> layers;          // every leaf call, in execution order
  std::vector<Value> outputs;              // the model's output tensors as LibTorch gave them
  std::shared_ptr<nlohmann::json> provenance;

  // True when every layer call that computes something has a fixture.
  bool fully_covered() const;
  // (pytorch_type, count) of the calls without a fixture, most frequent first.
  std::vector<std::pair<std::string, int64_t>> uncovered_types() const;
};

constexpr const char* kModelSuffix = ".model";
constexpr const char* kModelRecordFile = "model.json";
constexpr const char* kModelArchiveFile = "model.pt";
constexpr const char* kModelInputsFile = "inputs.pt";

std::string model_record_to_json(const ModelRecord& record);
// Errors name `origin` and the JSON path of what is malformed.
ModelRecord model_record_from_json(const std::string& text, const std::string& origin);
// DIR/model.json of a model directory.
ModelRecord read_model_record(const std::string& directory);

// STORE/NAME.model
std::string model_directory(const std::string& store, const std::string& name);
// Every model directory under `store` (recursively), sorted.
std::vector<std::string> list_models(const std::string& store);

}  // namespace qconform
