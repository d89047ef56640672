#include "oracles/plugin.h"

#include <algorithm>
#include <cctype>

#include "oracles/kinds/registry.h"

namespace qconform {

namespace {

std::vector<Plugin>& table() {
  static std::vector<Plugin> registered;
  return registered;
}

}  // namespace

void register_plugin(Plugin plugin) {
  const bool named = !plugin.name.empty() && std::all_of(plugin.name.begin(), plugin.name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  if (!named) throw Error("plug-in name '" + plugin.name + "': use letters, digits, '_' and '-'");
  for (const char* reserved : {"reference", "quantized", "libtorch", "float", "plugin"})
    if (plugin.name == reserved) throw Error("plug-in name '" + plugin.name + "' is an implementation's own name");
  if (plugin.kinds.empty()) throw Error("plug-in " + plugin.name + " implements no kind");
  for (const PluginKind& k : plugin.kinds) {
    const ModuleKind& kind = module_kind(k.kind);  // Error listing the keys
    if (!kind.spec_from_reference)
      throw Error("plug-in " + plugin.name + ": " + k.kind + " cannot be implemented by plug-ins yet (its parameters "
                  "are not handed out: ModuleKind::spec_from_reference)");
    if (!k.make) throw Error("plug-in " + plugin.name + ": " + k.kind + " has no factory");
  }
  for (const ToleranceRow& row : plugin.tolerance_rows) {
    const bool names_it = (row.a.implementation == Implementation::Plugin && row.a.plugin == plugin.name) ||
                          (row.b.implementation == Implementation::Plugin && row.b.plugin == plugin.name);
    if (!names_it) throw Error("plug-in " + plugin.name + ": tolerance row " + row.id + " does not name the plug-in");
    if (row.reason.empty()) throw Error("plug-in " + plugin.name + ": tolerance row " + row.id + " gives no reason");
  }
  auto& registered = table();
  registered.erase(std::remove_if(registered.begin(), registered.end(),
                                  [&](const Plugin& p) { return p.name == plugin.name; }),
                   registered.end());
  registered.push_back(std::move(plugin));
}

const std::vector<Plugin>& plugins() { return table(); }

const Plugin* find_plugin(const std::string& name) {
  for (const Plugin& p : table())
    if (p.name == name) return &p;
  return nullptr;
}

Side plugin_side(const Plugin& plugin) { return Side{Implementation::Plugin, plugin.numerics_like, plugin.name}; }

std::vector<Pair> plugin_pairs(const ModuleKind& kind) {
  std::vector<Pair> pairs;
  for (const Plugin& plugin : table()) {
    const bool implements = std::any_of(plugin.kinds.begin(), plugin.kinds.end(),
                                        [&](const PluginKind& k) { return k.kind == kind.key; });
    if (!implements) continue;
    pairs.push_back({{Implementation::Reference, std::nullopt}, plugin_side(plugin)});
    for (const Side& other : plugin.compare_with) pairs.push_back({plugin_side(plugin), other});
  }
  return pairs;
}

std::unique_ptr<Module> build_plugin_module(const ModuleKind& kind, const Side& side, const Module& float_module) {
  const Plugin* plugin = find_plugin(side.plugin);
  if (!plugin) throw Error("no plug-in named '" + side.plugin + "' is registered");
  for (const PluginKind& k : plugin->kinds) {
    if (k.kind != kind.key) continue;
    const std::unique_ptr<Module> reference =
        convert_from_float(kind, float_module, ConversionTarget{Implementation::Reference, Engine::QNNPACK});
    return k.make(kind.spec_from_reference(*reference));
  }
  throw Error("plug-in " + plugin->name + " does not implement " + kind.key);
}

}  // namespace qconform
