#pragma once
// Plug in your own kernels: an implementation registered from outside this repository, run
// through the same oracles, tolerance table, results file and report as the built-in ones
// (docs/plugins.md has a complete example).
//
// A plug-in has a name (its side's label in every pair: "xnnpack") and, for each module kind
// it implements, a factory from the kind's parameters to a `Module`. The parameters are a
// `ModuleSpec` (core/fixture.h): PyTorch's constructor arguments under their attribute names
// in `config` ("in_features", "kernel_size", the output "scale" and "zero_point", ...) and
// its parameters under PyTorch's names ("weight" a quantized tensor, "bias" float or none),
// exactly as a fixture holds them (fixtures/README.md). The module's forward takes the
// kind's input (a quint8 QTensor for the static kinds) and returns its output.
//
// The agreement oracle compares the plug-in with the reference and with each side in
// `compare_with` (LibTorch's qnnpack, the integer qnnpack model, ...) on random cases of the
// kind. Its bounds follow the engine table's row for `numerics_like` (how the bias is
// rounded, whether int16 pairs may saturate) and the tolerance rows the plug-in states for
// its pairs, each with its reason; a pair without a row of its own takes the built-in row of
// `numerics_like`'s integer side. A factory may decline a configuration it does not cover by
// throwing `PluginDeclines` (its reason is counted, not failed).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fixture.h"
#include "core/module.h"
#include "oracles/agreement.h"
#include "oracles/tolerance.h"

namespace qconform {

// Thrown by a plug-in's factory for a configuration it does not implement.
class PluginDeclines : public Error {
 public:
  using Error::Error;
};

struct PluginKind {
  std::string kind;  // a registry key: "static.Linear", "static.Conv2d"
  std::function<std::unique_ptr<Module>(const ModuleSpec& parameters)> make;
};

struct Plugin {
  std::string name;         // letters, digits, '_' and '-'; the side's label
  std::string description;  // for the report
  EngineProfile numerics_like = Engine::QNNPACK;
  std::vector<PluginKind> kinds;
  std::vector<Side> compare_with = {Side{Implementation::LibTorch, EngineProfile(Engine::QNNPACK)}};
  std::vector<ToleranceRow> tolerance_rows;
};

// Registers (or replaces, by name) a plug-in. Error for a bad name, an unknown kind, a kind
// plug-ins cannot implement yet (no ModuleKind::spec_from_reference), or a row that does not
// name the plug-in.
void register_plugin(Plugin plugin);
const std::vector<Plugin>& plugins();
const Plugin* find_plugin(const std::string& name);

// The plug-in's side.
Side plugin_side(const Plugin& plugin);
// The pairs the agreement oracle checks for a kind: for each plug-in implementing it,
// (reference, plug-in) and (plug-in, s) for each s of compare_with.
std::vector<Pair> plugin_pairs(const ModuleKind& kind);
// The plug-in's module for a case: the reference converted from `float_module`, its
// parameters (ModuleKind::spec_from_reference), the factory.
std::unique_ptr<Module> build_plugin_module(const ModuleKind& kind, const Side& side, const Module& float_module);

}  // namespace qconform
