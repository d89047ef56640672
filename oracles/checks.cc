#include "oracles/checks.h"

#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "oracles/agreement.h"

namespace qconform {
namespace {

std::string where(const ModuleKind& kind, const std::string& implementation, const CaseConfig& config) {
  return kind.key + " " + implementation + " {" + config.to_string() + "}";
}

std::string side_label(Implementation implementation, Engine engine, bool engine_independent) {
  return to_string(implementation) + (engine_independent ? "" : "[" + to_string(engine) + "]");
}

// Same shapes and bit-identical values, hidden state included.
bool same_output(const ModuleOutput& a, const ModuleOutput& b) {
  const FlatOutput fa = flatten_output(a), fb = flatten_output(b);
  return fa.parts == fb.parts && fa.values.size() == fb.values.size() &&
         std::memcmp(fa.values.data(), fb.values.data(), fa.values.size() * sizeof(float)) == 0;
}

// Runs a conversion; an engine's own refusal of the case's weights (engine table) gives
// nullptr, as the rejection oracle checks those; anything else propagates.
std::unique_ptr<Module> convert_unless_refused(const ModuleKind& kind, Implementation implementation, Engine engine,
                                               bool independent, const std::function<std::unique_ptr<Module>()>& convert) {
  try {
    return convert();
  } catch (const Error& e) {
    const Side side{implementation, independent ? std::nullopt : std::optional<Engine>(engine)};
    if (expected_engine_refusal(kind, side, e.what())) return nullptr;
    throw;
  }
}

}  // namespace

std::string build_and_call(const std::function<std::unique_ptr<Module>()>& build, const ModuleInput& input) {
  std::unique_ptr<Module> module;
  try {
    module = build();
  } catch (const Error& e) {
    return "prepack: " + std::string(e.what());
  }
  try {
    (*module)(input);
  } catch (const Error& e) {
    return "forward: " + std::string(e.what());
  }
  return "accepted";
}

std::vector<std::string> check_state_dict_round_trip(const ModuleKind& kind, const CaseConfig& config,
                                                     const std::string& scratch_directory) {
  std::vector<std::string> findings;
  std::filesystem::create_directories(scratch_directory);
  CaseConfig other = config;
  other.data_seed = config.data_seed + 1;  // same shapes, other weights
  for (const ImplementationEntry& entry : kind.implementations) {
    const bool independent = entry.engines.empty();
    const std::vector<Engine> engines = independent ? std::vector<Engine>{Engine::QNNPACK} : entry.engines;
    for (Engine engine : engines) {
      const std::string label = side_label(entry.implementation, engine, independent);
      const Case original = kind.make_case(config);
      auto module = convert_unless_refused(kind, entry.implementation, engine, independent, [&] {
        return convert_from_float(kind, *original.float_module, {entry.implementation, engine});
      });
      if (!module) continue;
      const StateDict state = module->state_dict();
      const std::string path = scratch_directory + "/" + kind.key + "." + label + ".qcsd";
      save_state_dict(state, path);
      const Case fresh_case = kind.make_case(other);
      auto fresh = convert_from_float(kind, *fresh_case.float_module, {entry.implementation, engine});
      fresh->load_state_dict(load_state_dict_file(path));
      const StateDict reloaded = fresh->state_dict();
      if (reloaded.keys() != state.keys())
        findings.push_back(where(kind, label, config) + ": keys differ after the round trip through " + path);
      else if (!(reloaded == state))
        findings.push_back(where(kind, label, config) + ": state differs after the round trip through " + path);
      if (!same_output((*module)(original.input), (*fresh)(original.input)))
        findings.push_back(where(kind, label, config) + ": outputs differ after loading " + path);
    }
  }
  // Across implementations: reference -> from_reference equals float -> from_float.
  const Case c = kind.make_case(config);
  auto reference = convert_from_float(kind, *c.float_module, {Implementation::Reference, Engine::QNNPACK});
  for (const ImplementationEntry& entry : kind.implementations) {
    if (!entry.from_reference) continue;
    for (Engine engine : entry.engines) {
      const std::string label = side_label(entry.implementation, engine, false);
      auto direct = convert_unless_refused(kind, entry.implementation, engine, false, [&] {
        return convert_from_float(kind, *c.float_module, {entry.implementation, engine});
      });
      if (!direct) continue;
      auto via_reference = convert_from_reference(kind, *reference, {entry.implementation, engine});
      if (!(via_reference->state_dict() == direct->state_dict()))
        findings.push_back(where(kind, label, config) +
                           ": from_reference and from_float give different state_dicts");
      if (!same_output((*via_reference)(c.input), (*direct)(c.input)))
        findings.push_back(where(kind, label, config) + ": from_reference and from_float give different outputs");
    }
  }
  return findings;
}

std::vector<std::string> check_hook_preservation(const ModuleKind& kind, const CaseConfig& config) {
  std::vector<std::string> findings;
  Case c = kind.make_case(config);
  std::vector<std::string> log;
  Module& source = *c.float_module;
  HookHandle first_pre = source.register_forward_pre_hook([&](Module&, const ModuleInput&) {
    log.push_back("pre1");
    return std::nullopt;
  });
  source.register_forward_hook([&](Module&, const ModuleInput&, const ModuleOutput&) {
    log.push_back("post1");
    return std::nullopt;
  });
  source.register_forward_pre_hook([&](Module&, const ModuleInput&) {
    log.push_back("pre2");
    return std::nullopt;
  });
  source.register_forward_hook([&](Module&, const ModuleInput&, const ModuleOutput&) {
    log.push_back("post2");
    return std::nullopt;
  });
  const std::vector<std::string> expected{"pre1", "pre2", "post1", "post2"};

  auto check = [&](Module& converted, const std::string& path) {
    if (converted.forward_pre_hook_count() != 2 || converted.forward_hook_count() != 2) {
      std::ostringstream out;
      out << where(kind, path, config) << ": " << converted.forward_pre_hook_count() << " pre-hooks and "
          << converted.forward_hook_count() << " forward hooks after conversion, expected 2 and 2";
      findings.push_back(out.str());
    }
    log.clear();
    converted(c.input);
    if (log != expected) {
      std::string seen;
      for (const auto& s : log) seen += (seen.empty() ? "" : ",") + s;
      findings.push_back(where(kind, path, config) + ": hooks fired as [" + seen +
                         "], expected [pre1,pre2,post1,post2]");
    }
  };

  std::vector<std::unique_ptr<Module>> converted;
  for (const ImplementationEntry& entry : kind.implementations) {
    const bool independent = entry.engines.empty();
    for (Engine engine : independent ? std::vector<Engine>{Engine::QNNPACK} : entry.engines) {
      auto module = convert_unless_refused(kind, entry.implementation, engine, independent, [&] {
        return convert_from_float(kind, source, {entry.implementation, engine});
      });
      if (!module) continue;
      converted.push_back(std::move(module));
      check(*converted.back(), "from_float -> " + side_label(entry.implementation, engine, independent));
    }
  }
  auto reference = convert_from_float(kind, source, {Implementation::Reference, Engine::QNNPACK});
  for (const ImplementationEntry& entry : kind.implementations) {
    if (!entry.from_reference) continue;
    for (Engine engine : entry.engines) {
      auto module = convert_unless_refused(kind, entry.implementation, engine, false, [&] {
        return convert_from_reference(kind, *reference, {entry.implementation, engine});
      });
      if (!module) continue;
      converted.push_back(std::move(module));
      check(*converted.back(), "from_reference -> " + side_label(entry.implementation, engine, false));
    }
  }
  // A handle removes the hook from the module it was registered on, not from the copies.
  first_pre.remove();
  if (source.forward_pre_hook_count() != 1)
    findings.push_back(where(kind, "float", config) + ": removing a handle did not remove its hook");
  for (const auto& module : converted)
    if (module->forward_pre_hook_count() != 2)
      findings.push_back(where(kind, module->name(), config) +
                         ": removing the source's handle changed a converted module's hooks");
  return findings;
}

std::vector<RejectionOutcome> rejection_outcomes(const ModuleKind& kind, const CaseConfig& config) {
  const Case c = kind.make_case(config);
  auto reference = convert_from_float(kind, *c.float_module, {Implementation::Reference, Engine::QNNPACK});
  const Shape shape = kind.weight_shape(*reference);
  const int64_t channels = shape.at(0);
  const std::vector<double> scales(channels, 0.02);
  std::vector<int64_t> nonzero(channels, 0);
  nonzero[channels > 1 ? 1 : 0] = 1;
  const std::vector<std::pair<std::string, QuantParams>> variants{
      {"qint8 per-tensor, zero point 0", QuantParams::per_tensor(DType::QInt8, 0.02, 0)},
      {"qint8 per-tensor, zero point 3", QuantParams::per_tensor(DType::QInt8, 0.02, 3)},
      {"qint8 per-channel, zero points 0", QuantParams::per_channel(DType::QInt8, scales, std::vector<int64_t>(channels, 0), 0)},
      {"qint8 per-channel, a non-zero zero point", QuantParams::per_channel(DType::QInt8, scales, nonzero, 0)},
      {"quint8 per-tensor, zero point 3", QuantParams::per_tensor(DType::QUInt8, 0.02, 3)},
      {"float16", QuantParams::float16()},
  };
  std::vector<RejectionOutcome> outcomes;
  for (const auto& [name, qparams] : variants) {
    auto variant = kind.with_weight_qparams(*reference, qparams);
    for (Engine engine : all_engines()) {
      RejectionOutcome o{name, engine, "accepted", "", ""};
      if (auto rejection = weight_rejection(engine, kind.engine_op, qparams))
        o.table = to_string(rejection->step) + ": " + rejection->message;
      // A module rule comes first: the module refuses while converting, before prepacking.
      if (kind.module_weight_rule)
        if (auto refused = kind.module_weight_rule(qparams)) o.table = "prepack: " + *refused;
      // Implementations without PyTorch's from_reference (nnqd.GRU) cannot be given
      // arbitrary weight qparams; their packing is the same code as LSTM's, checked there.
      const auto has_from_reference = [&](Implementation implementation) {
        const ImplementationEntry* entry = kind.find(implementation);
        return entry && entry->from_reference;
      };
      if (kind.supports(Implementation::Quantized, engine) && has_from_reference(Implementation::Quantized))
        o.quantized = build_and_call([&] { return convert_from_reference(kind, *variant, {Implementation::Quantized, engine}); },
                              c.input);
      if (kind.supports(Implementation::LibTorch, engine) && has_from_reference(Implementation::LibTorch))
        o.libtorch = build_and_call([&] { return convert_from_reference(kind, *variant, {Implementation::LibTorch, engine}); },
                             c.input);
      outcomes.push_back(o);
    }
  }
  return outcomes;
}

std::vector<std::string> check_rejection_parity(const ModuleKind& kind, const CaseConfig& config) {
  std::vector<std::string> findings;
  for (const RejectionOutcome& o : rejection_outcomes(kind, config)) {
    const std::string at = kind.key + " on " + to_string(o.engine) + " with " + o.variant + ": ";
    if (!o.quantized.empty() && o.quantized != o.table)
      findings.push_back(at + "engine table says \"" + o.table + "\", the integer implementation \"" + o.quantized + "\"");
    if (!o.libtorch.empty() && o.libtorch != o.table)
      findings.push_back(at + "engine table says \"" + o.table + "\", LibTorch live \"" + o.libtorch + "\"");
  }
  return findings;
}

}  // namespace qconform
