#include "oracles/checks.h"

#include "core/cpu.h"

#include <cstring>
#include <filesystem>
#include <sstream>

#include "oracles/eager.h"
#include "core/error.h"
#include "core/quantize.h"
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
  // An empty output's data() may be null, which memcmp may not be given (UBSan).
  return fa.parts == fb.parts && fa.values.size() == fb.values.size() &&
         (fa.values.empty() || std::memcmp(fa.values.data(), fb.values.data(), fa.values.size() * sizeof(float)) == 0);
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

// Runs `call` unless the engine refuses it with one of its own refusals (engine table:
// QNNPACK's add scale ratios); false when refused. The agreement oracle accounts for those.
bool runs_unless_refused(const ModuleKind& kind, Implementation implementation, Engine engine, bool independent,
                         const std::function<void()>& call) {
  try {
    call();
    return true;
  } catch (const Error& e) {
    const Side side{implementation, independent ? std::nullopt : std::optional<Engine>(engine)};
    if (expected_engine_refusal(kind, side, e.what())) return false;
    // LibTorch refusing its own input after earlier calls (onednn's grouped transposed
    // convolutions were seen to): its history, not this module's state.
    if (implementation == Implementation::LibTorch && engine_rule(engine, kind.engine_op).libtorch_history_dependent)
      return false;
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

namespace {
// Whether the module's state_dict works; false when it gives the engine's own refusal.
bool unpacks(const Module& module, Engine engine, EngineOp op) {
  try {
    module.state_dict();
    return true;
  } catch (const Error& e) {
    if (e.what() == engine_rule(engine, op).conv3d_unpack_rejection) return false;
    throw;
  }
}
}  // namespace

namespace {

// Whether LibTorch's answers for this case are not specified (ModuleKind::libtorch_defect,
// which may be unwritten memory; or outputs no input reaches on an engine that leaves them
// unspecified, engines.h): its outputs are then not compared, even with themselves.
bool libtorch_answers_defective(const ModuleKind& kind, Implementation implementation, Engine engine,
                                const Case& c) {
  if (implementation != Implementation::LibTorch) return false;
  if (engine_rule(engine, kind.engine_op).libtorch_history_dependent) return true;  // not comparable with itself
  auto reference = convert_from_float(kind, *c.float_module, {Implementation::Reference, engine});
  if (kind.libtorch_defect && kind.libtorch_defect(*reference, c.input, engine, onednn_isa().name)) return true;
  if (engine_rule(engine, kind.engine_op).transposed_uncovered_outputs_unspecified.empty() || !kind.sensitivity)
    return false;
  for (const OutputSensitivity& e : kind.sensitivity(*reference, c.input))
    if (e.unreached) return true;
  return false;
}

}  // namespace

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
      StateDict state;
      try {
        state = module->state_dict();
      } catch (const Error& e) {
        // The engine's own refusal to unpack (engine table): both implementations must give it.
        const std::string& refusal = engine_rule(engine, kind.engine_op).conv3d_unpack_rejection;
        if (refusal.empty() || e.what() != refusal)
          findings.push_back(where(kind, label, config) + ": state_dict failed: " + e.what());
        continue;
      }
      if (!runs_unless_refused(kind, entry.implementation, engine, independent, [&] { (*module)(original.input); }))
        continue;
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
      // Where PyTorch keeps part of the state outside the state_dict, the loaded module keeps
      // its own there: its outputs are not the original's, in PyTorch either.
      if (kind.state_dict_holds_all_state && !libtorch_answers_defective(kind, entry.implementation, engine, original) &&
          !same_output((*module)(original.input), (*fresh)(original.input)))
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
      if (!unpacks(*direct, engine, kind.engine_op)) continue;  // refused as the engine does (above)
      if (!runs_unless_refused(kind, entry.implementation, engine, false, [&] { (*direct)(c.input); })) continue;
      if (!(via_reference->state_dict() == direct->state_dict()))
        findings.push_back(where(kind, label, config) +
                           ": from_reference and from_float give different state_dicts");
      if (!libtorch_answers_defective(kind, entry.implementation, engine, c) &&
          !same_output((*via_reference)(c.input), (*direct)(c.input)))
        findings.push_back(where(kind, label, config) + ": from_reference and from_float give different outputs");
    }
  }
  return findings;
}

namespace {

// Two pre-hooks and two forward hooks that log their names; returns the first pre-hook's handle.
HookHandle register_logging_hooks(Module& module, std::vector<std::string>& log) {
  HookHandle first_pre = module.register_forward_pre_hook([&log](Module&, const ModuleInput&) {
    log.push_back("pre1");
    return std::nullopt;
  });
  module.register_forward_hook([&log](Module&, const ModuleInput&, const ModuleOutput&) {
    log.push_back("post1");
    return std::nullopt;
  });
  module.register_forward_pre_hook([&log](Module&, const ModuleInput&) {
    log.push_back("pre2");
    return std::nullopt;
  });
  module.register_forward_hook([&log](Module&, const ModuleInput&, const ModuleOutput&) {
    log.push_back("post2");
    return std::nullopt;
  });
  return first_pre;
}

const std::vector<std::string> kHookOrder{"pre1", "pre2", "post1", "post2"};

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

// The eager flow's input for a case: static cases hold the quantized input of the module
// itself; the flow starts from floats and quantizes at its QuantStub.
ModuleInput float_flow_input(const ModuleInput& input) {
  const auto* q = std::get_if<QTensor>(&input.input);
  if (!q) return input;
  ModuleInput floats{dequantize(*q), input.hidden};
  for (const Value& v : input.others) floats.others.push_back(dequantize(std::get<QTensor>(v)));
  return floats;
}

// The case's float module in a tree the flow can convert: the stubs around it for the
// static flow (a reference module between stubs of its own, as in the seeds), alone for
// quantize_dynamic.
std::unique_ptr<Sequential> flow_tree(const ModuleKind& kind, std::unique_ptr<Module> float_module, bool reference,
                                      size_t operands = 1) {
  if (operands > 1) return std::make_unique<OperandsModel>(operands, std::move(float_module), reference);
  Sequential::Children children;
  const bool stubs = kind.family == Family::Static;
  // A stub's own kind is that end of the flow itself.
  if (kind.float_name == "QuantStub") {
    children.emplace_back("module", std::move(float_module));
    children.emplace_back("dequant", std::make_unique<DeQuantStub>());
    return std::make_unique<Sequential>(std::move(children), "Model");
  }
  if (kind.float_name == "DeQuantStub") {
    children.emplace_back("quant", std::make_unique<QuantStub>());
    children.emplace_back("module", std::move(float_module));
    return std::make_unique<Sequential>(std::move(children), "Model");
  }
  if (stubs) children.emplace_back("quant", std::make_unique<QuantStub>());
  const bool own_stubs = stubs && reference && kind.reference_between_stubs;
  if (own_stubs) children.emplace_back("dequant_in", std::make_unique<DeQuantStub>());
  children.emplace_back("module", std::move(float_module));
  if (own_stubs) children.emplace_back("quant_out", std::make_unique<QuantStub>());
  if (stubs) children.emplace_back("dequant", std::make_unique<DeQuantStub>());
  return std::make_unique<Sequential>(std::move(children), "Model");
}

}  // namespace

std::vector<std::string> check_hook_preservation(const ModuleKind& kind, const CaseConfig& config) {
  std::vector<std::string> findings;
  Case c = kind.make_case(config);
  std::vector<std::string> log;
  Module& source = *c.float_module;
  HookHandle first_pre = register_logging_hooks(source, log);

  // The converted module has the source's two pre-hooks and two forward hooks, and running
  // `run` fires them in registration order.
  auto check = [&](Module& converted, const std::string& path, const std::function<void()>& run) {
    // A call the engine refuses (engine table) fires the pre-hooks only: nothing to compare.
    const auto runs = [&] {
      if (!converted.engine()) return (run(), true);
      return runs_unless_refused(kind, converted.implementation(), converted.engine()->engine, false, run);
    };
    if (converted.forward_pre_hook_count() != 2 || converted.forward_hook_count() != 2) {
      std::ostringstream out;
      out << where(kind, path, config) << ": " << converted.forward_pre_hook_count() << " pre-hooks and "
          << converted.forward_hook_count() << " forward hooks after conversion, expected 2 and 2";
      findings.push_back(out.str());
    }
    log.clear();
    if (!runs()) return;
    if (log != kHookOrder)
      findings.push_back(where(kind, path, config) + ": hooks fired as [" + joined(log) + "], expected [" +
                         joined(kHookOrder) + "]");
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
      Module& m = *converted.back();
      check(m, "from_float -> " + side_label(entry.implementation, engine, independent), [&] { m(c.input); });
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
      Module& m = *converted.back();
      check(m, "from_reference -> " + side_label(entry.implementation, engine, false), [&] { m(c.input); });
    }
  }

  // The eager flow: prepare -> calibrate -> convert for static kinds (the observer hook runs
  // first while observing, and is gone afterwards), quantize_dynamic for dynamic ones. Each
  // target gets a fresh float module with the same hooks.
  for (const ImplementationEntry& entry : kind.implementations) {
    if (kind.family != Family::Static && kind.family != Family::Dynamic) break;
    const bool independent = entry.engines.empty();
    const bool reference_target = entry.implementation == Implementation::Reference;
    // convert puts nnq.Quantize and nnq.DeQuantize in the stubs' places whatever the target:
    // a stub's kind meets the eager flow on its integer implementation only.
    const bool stub_kind = kind.float_name == "QuantStub" || kind.float_name == "DeQuantStub";
    if (stub_kind && entry.implementation != Implementation::Quantized) continue;
    if (!kind.eager_mapped) break;  // convert leaves the float module in place
    for (Engine engine : independent ? std::vector<Engine>{Engine::QNNPACK} : entry.engines) {
      const std::string path = std::string(kind.family == Family::Static ? "prepare/convert" : "quantize_dynamic") +
                               " -> " + side_label(entry.implementation, engine, independent);
      Case fresh = kind.make_case(config);
      register_logging_hooks(*fresh.float_module, log);
      fresh.float_module->activation_post_process.reset();  // prepare's to give
      const std::optional<QConfig> qconfig = fresh.float_module->qconfig;
      const ModuleInput input = float_flow_input(fresh.input);
      std::unique_ptr<Sequential> tree =
          flow_tree(kind, std::move(fresh.float_module), reference_target, 1 + fresh.input.others.size());
      const ConversionTarget target{entry.implementation, engine};
      const bool ok = static_cast<bool>(convert_unless_refused(kind, entry.implementation, engine, independent, [&] {
        if (kind.family == Family::Dynamic) {
          quantize_dynamic(*tree, target, DType::QInt8, {kind.float_name});
          return std::unique_ptr<Module>(new QuantStub);  // a non-null token: converted
        }
        tree->qconfig = qconfig;
        prepare(*tree);
        Module& observed = tree->child("module");
        const std::vector<uint64_t> ids = observed.forward_hook_ids();
        // Observed with a hook first, attached without one (add_scalar), or not observed at all.
        const bool hooked = kind.output_observed && kind.observed_at_prepare;
        if (observed.forward_pre_hook_count() != 2 || ids.size() != (hooked ? 3u : 2u) ||
            hooked != observed.observer_hook_id.has_value() || (hooked && ids.front() != *observed.observer_hook_id))
          findings.push_back(where(kind, path, config) + ": after prepare, expected 2 pre-hooks and " +
                             (hooked ? "3 forward hooks with the observer's first" : "2 forward hooks (no observer hook)"));
        log.clear();
        (*tree)(input);  // calibration
        if (log != kHookOrder)
          findings.push_back(where(kind, path, config) + ": during calibration hooks fired as [" + joined(log) + "]");
        convert(*tree, target);
        return std::unique_ptr<Module>(new QuantStub);
      }));
      if (!ok) continue;
      Module& swapped = tree->child("module");
      if (swapped.implementation() != entry.implementation)
        findings.push_back(where(kind, path, config) + ": the module was not converted (it is " + swapped.repr() + ")");
      check(swapped, path, [&] { (*tree)(input); });
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

namespace {

// ModuleKind::refusal_cases on every engine with both implementations.
std::vector<RejectionOutcome> call_refusal_outcomes(const ModuleKind& kind, const CaseConfig& config) {
  std::vector<RejectionOutcome> outcomes;
  if (!kind.refusal_cases) return outcomes;
  for (const RefusalCase& r : kind.refusal_cases(config))
    for (Engine engine : all_engines()) {
      if (!kind.supports(Implementation::Quantized, engine) || !kind.supports(Implementation::LibTorch, engine)) continue;
      RejectionOutcome o{r.variant, engine, "", "", "", true};
      o.quantized = build_and_call(
          [&] { return convert_from_float(kind, *r.c.float_module, {Implementation::Quantized, engine}); }, r.c.input);
      o.libtorch = build_and_call(
          [&] { return convert_from_float(kind, *r.c.float_module, {Implementation::LibTorch, engine}); }, r.c.input);
      o.table = o.libtorch;
      outcomes.push_back(o);
    }
  return outcomes;
}

}  // namespace

std::vector<RejectionOutcome> rejection_outcomes(const ModuleKind& kind, const CaseConfig& config) {
  if (!kind.weight_shape || !kind.with_weight_qparams) return call_refusal_outcomes(kind, config);
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
    if (qparams.per_channel() && !kind.per_channel_weights) continue;
    auto variant = kind.with_weight_qparams(*reference, qparams);
    for (Engine engine : all_engines()) {
      RejectionOutcome o{name, engine, "accepted", "", ""};
      if (auto rejection = weight_rejection(engine, kind.engine_op, qparams))
        o.table = to_string(rejection->step) + ": " + rejection->message;
      // The engine checks the module's configuration before its weights (float16 weights
      // never reach a static engine: the module refuses them first).
      if (kind.engine_config_rule && qparams.dtype != DType::Float16)
        if (auto refused = kind.engine_config_rule(*reference, engine)) o.table = "prepack: " + *refused;
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
      // A refusal at the call that has nothing to do with the weights (the engine table's
      // forward_refusals: QNNPACK's add refusing a scale ratio inside the LSTM) leaves the
      // weights accepted; each side must still give it where the other does.
      const bool same = o.quantized == o.libtorch;
      for (std::string* outcome : {&o.quantized, &o.libtorch})
        for (const std::string& refusal : engine_rule(engine, kind.engine_op).forward_refusals)
          if (same && o.table == "accepted" && outcome->rfind("forward: " + refusal, 0) == 0) *outcome = "accepted";
      outcomes.push_back(o);
    }
  }
  for (RejectionOutcome& o : call_refusal_outcomes(kind, config)) outcomes.push_back(std::move(o));
  return outcomes;
}

std::vector<std::string> check_rejection_parity(const ModuleKind& kind, const CaseConfig& config) {
  std::vector<std::string> findings;
  for (const RejectionOutcome& o : rejection_outcomes(kind, config)) {
    const std::string at = kind.key + " on " + to_string(o.engine) + " with " + o.variant + ": ";
    if (o.call_variant) {
      if (o.libtorch == "accepted")
        findings.push_back(at + "LibTorch accepts this refusal case (the kind's refusal_cases are wrong)");
      else if (o.quantized != o.libtorch)
        findings.push_back(at + "LibTorch \"" + o.libtorch + "\", the integer implementation \"" + o.quantized + "\"");
      continue;
    }
    if (!o.quantized.empty() && o.quantized != o.table)
      findings.push_back(at + "engine table says \"" + o.table + "\", the integer implementation \"" + o.quantized + "\"");
    if (!o.libtorch.empty() && o.libtorch != o.table)
      findings.push_back(at + "engine table says \"" + o.table + "\", LibTorch live \"" + o.libtorch + "\"");
  }
  return findings;
}

}  // namespace qconform
