#include "oracles/kinds/registry.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "oracles/kinds/families.h"

namespace qconform {
namespace {

// The table: every kind, once, in the order the CLI and the report list them.
std::vector<ModuleKind> make_registry() {
  using namespace kinds;
  std::vector<ModuleKind> table;
  table.push_back(dynamic_linear_kind(/*relu=*/false));
  table.push_back(dynamic_linear_kind(/*relu=*/true));
  table.push_back(dynamic_rnn_kind(RnnMode::LSTM, /*cell=*/false));
  table.push_back(dynamic_rnn_kind(RnnMode::GRU, /*cell=*/false));
  table.push_back(dynamic_rnn_kind(RnnMode::RNN, /*cell=*/true));
  table.push_back(dynamic_rnn_kind(RnnMode::LSTM, /*cell=*/true));
  table.push_back(dynamic_rnn_kind(RnnMode::GRU, /*cell=*/true));
  table.push_back(static_linear_kind(/*relu=*/false));
  table.push_back(static_linear_kind(/*relu=*/true));
  for (int64_t dims : {1, 2, 3})
    for (bool relu : {false, true}) table.push_back(static_conv_kind(dims, relu, /*transposed=*/false));
  for (int64_t dims : {1, 2, 3}) table.push_back(static_conv_kind(dims, /*relu=*/false, /*transposed=*/true));
  for (ActivationOp op : {ActivationOp::ReLU, ActivationOp::ReLU6, ActivationOp::LeakyReLU, ActivationOp::Hardswish,
                          ActivationOp::ELU, ActivationOp::Sigmoid, ActivationOp::Hardsigmoid, ActivationOp::Tanh,
                          ActivationOp::Dropout})
    table.push_back(static_activation_kind(op));
  table.push_back(static_softmax_kind());
  table.push_back(static_stub_kind(true));
  table.push_back(static_stub_kind(false));
  for (PoolingOp op : {PoolingOp::MaxPool2d, PoolingOp::AvgPool2d, PoolingOp::AdaptiveAvgPool2d})
    table.push_back(static_pooling_kind(op));
  for (FunctionalOp op : {FunctionalOp::Add, FunctionalOp::AddRelu, FunctionalOp::Mul, FunctionalOp::AddScalar,
                          FunctionalOp::MulScalar, FunctionalOp::Cat, FunctionalOp::Matmul})
    table.push_back(static_functional_kind(op));
  for (int64_t dims : {2, 3})
    for (bool relu : {false, true}) table.push_back(static_batch_norm_kind(dims, relu));
  table.push_back(static_norm_kind(NormOp::LayerNorm, 0));
  table.push_back(static_norm_kind(NormOp::GroupNorm, 0));
  for (int64_t dims : {1, 2, 3}) table.push_back(static_norm_kind(NormOp::InstanceNorm, dims));
  table.push_back(weight_only_embedding_kind(/*bag=*/false));
  table.push_back(weight_only_embedding_kind(/*bag=*/true));
  table.push_back(static_lstm_kind(/*cell=*/false));
  table.push_back(static_lstm_kind(/*cell=*/true));
  return table;
}

}  // namespace

const std::vector<ModuleKind>& registry() {
  static const std::vector<ModuleKind> kinds = make_registry();
  return kinds;
}

const ModuleKind& module_kind(const std::string& key) {
  std::string known;
  for (const auto& kind : registry()) {
    if (kind.key == key) return kind;
    known += (known.empty() ? "" : ", ") + kind.key;
  }
  throw Error("unknown module kind '" + key + "' (registered: " + known + ")");
}

namespace {
const ImplementationEntry& require(const ModuleKind& kind, const ConversionTarget& target) {
  const ImplementationEntry* entry = kind.find(target.implementation);
  if (!entry)
    throw Error(kind.key + " has no " + to_string(target.implementation) + " implementation");
  if (!kind.supports(target.implementation, target.engine.engine))
    throw Error(kind.key + ": the " + to_string(target.implementation) +
                " implementation does not run on " + to_string(target.engine.engine));
  return *entry;
}
}  // namespace

std::unique_ptr<Module> convert_from_float(const ModuleKind& kind, const Module& float_module,
                                           const ConversionTarget& target) {
  auto module = require(kind, target).from_float(float_module, target.engine);
  module->copy_hooks_from(float_module);
  return module;
}

std::unique_ptr<Module> convert_from_reference(const ModuleKind& kind, const Module& reference,
                                               const ConversionTarget& target) {
  const ImplementationEntry& entry = require(kind, target);
  if (!entry.from_reference)
    throw Error(kind.key + ": " + entry.repr_name + " has no from_reference");
  auto module = entry.from_reference(reference, target.engine);
  module->copy_hooks_from(reference);
  return module;
}

std::string registry_table_text() {
  std::ostringstream out;
  out << "kind                   family       implementation  name                                engines\n";
  for (const auto& kind : registry())
    for (const auto& entry : kind.implementations) {
      std::string engines;
      for (Engine e : entry.engines) engines += (engines.empty() ? "" : ",") + to_string(e);
      if (entry.engines.empty()) engines = "(engine-independent)";
      char line[256];
      std::snprintf(line, sizeof line, "%-22s %-12s %-15s %-35s %s\n", kind.key.c_str(),
                    to_string(kind.family).c_str(), to_string(entry.implementation).c_str(),
                    entry.repr_name.c_str(), engines.c_str());
      out << line;
    }
  return out.str();
}

std::string registry_json() {
  nlohmann::json kinds = nlohmann::json::array();
  for (const auto& kind : registry()) {
    nlohmann::json implementations = nlohmann::json::array();
    std::vector<std::string> all;
    for (const auto& entry : kind.implementations) {
      std::vector<std::string> engines;
      for (Engine e : entry.engines) {
        engines.push_back(to_string(e));
        if (std::find(all.begin(), all.end(), to_string(e)) == all.end()) all.push_back(to_string(e));
      }
      implementations.push_back({{"implementation", to_string(entry.implementation)},
                                 {"name", entry.repr_name},
                                 {"engines", engines},
                                 {"from_reference", static_cast<bool>(entry.from_reference)}});
    }
    kinds.push_back({{"kind", kind.key},
                     {"name", kind.float_name},
                     {"family", to_string(kind.family)},
                     {"op", to_string(kind.engine_op)},
                     {"implementations", implementations},
                     {"engines", all}});
  }
  return kinds.dump(2);
}

}  // namespace qconform
