#pragma once
// The module registry: the one table of module kinds (registry.cc lists them), each kind
// built by its family's file beside it (families.h; what a kind declares: core/module_kind.h).
// Oracles, properties, the CLI and the report iterate this table.
#include <memory>
#include <string>
#include <vector>

#include "core/module_kind.h"

namespace qconform {

const std::vector<ModuleKind>& registry();
const ModuleKind& module_kind(const std::string& key);  // throws Error listing the keys

// Conversion through the registry; hooks of the source module are carried over, as
// PyTorch's swap_module does. Throws Error if the implementation or engine is absent.
std::unique_ptr<Module> convert_from_float(const ModuleKind& kind, const Module& float_module,
                                           const ConversionTarget& target);
std::unique_ptr<Module> convert_from_reference(const ModuleKind& kind, const Module& reference,
                                               const ConversionTarget& target);

std::string registry_table_text();  // `qconform modules`
std::string registry_json();        // `qconform modules --json`

}  // namespace qconform
