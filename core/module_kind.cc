#include "core/module_kind.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"

namespace qconform {

std::string to_string(Family family) {
  switch (family) {
    case Family::Dynamic: return "dynamic";
    case Family::Static: return "static";
    case Family::WeightOnly: return "weight-only";
    case Family::Reference: return "reference";
  }
  return "?";
}

std::string to_string(Structure structure) {
  switch (structure) {
    case Structure::Reduction: return "reduction";
    case Structure::Recurrent: return "recurrent";
    case Structure::Elementwise: return "elementwise";
    case Structure::Pooling: return "pooling";
    case Structure::ElementwiseFloat: return "elementwise-float";
    case Structure::Normalization: return "normalization";
    case Structure::Softmax: return "softmax";
    case Structure::FloatReduction: return "float-reduction";
  }
  return "?";
}

std::string to_string(InputStyle style) {
  switch (style) {
    case InputStyle::Normal: return "normal";
    case InputStyle::RoundingTies: return "ties";
    case InputStyle::Constant: return "constant";
    case InputStyle::WideRange: return "wide";
  }
  return "?";
}

int64_t CaseConfig::get(const std::string& name) const {
  const auto it = values.find(name);
  if (it == values.end()) throw Error("case has no parameter '" + name + "' (" + to_string() + ")");
  return it->second;
}

std::string CaseConfig::to_string() const {
  std::ostringstream out;
  for (const auto& [name, value] : values) out << name << "=" << value << " ";
  out << "seed=" << data_seed << " style=" << qconform::to_string(style);
  return out.str();
}

const ImplementationEntry* ModuleKind::find(Implementation implementation) const {
  for (const auto& entry : implementations)
    if (entry.implementation == implementation) return &entry;
  return nullptr;
}

bool ModuleKind::supports(Implementation implementation, Engine engine) const {
  const ImplementationEntry* entry = find(implementation);
  if (!entry) return false;
  return entry->engines.empty() ||
         std::find(entry->engines.begin(), entry->engines.end(), engine) != entry->engines.end();
}

}  // namespace qconform
