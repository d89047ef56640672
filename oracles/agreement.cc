#include "oracles/agreement.h"

#include "oracles/plugin.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <sstream>

#include "core/cpu.h"
#include "core/error.h"
#include "core/observers.h"
#include "quantized/kernels/dynamic_gemm.h"

namespace qconform {

Side parse_side(const std::string& text) {
  if (const Plugin* plugin = find_plugin(text)) return plugin_side(*plugin);
  const auto open = text.find('[');
  Side side{implementation_from_string(text.substr(0, open)), std::nullopt};
  if (open != std::string::npos) {
    const auto close = text.find(']', open);
    if (close == std::string::npos) throw Error("malformed side '" + text + "' (expected impl[engine])");
    side.engine = engine_profile_from_string(text.substr(open + 1, close - open - 1));
  }
  return side;
}

namespace {

bool bit_equal(float a, float b) {
  uint32_t bits_a, bits_b;
  std::memcpy(&bits_a, &a, sizeof a);
  std::memcpy(&bits_b, &b, sizeof b);
  return bits_a == bits_b;
}

std::unique_ptr<Module> build(const ModuleKind& kind, const Module& float_module, const Side& side) {
  if (side.implementation == Implementation::Plugin) return build_plugin_module(kind, side, float_module);
  return convert_from_float(kind, float_module,
                            ConversionTarget{side.implementation, side.engine.value_or(Engine::QNNPACK)});
}

// The activation scale the engine of `side` chooses for this input (dynamic family).
double dynamic_activation_scale(const ModuleKind& kind, const Side& side, const ModuleInput& input) {
  const auto* x = std::get_if<Tensor>(&input.input);
  if (!x || !side.engine || kind.family != Family::Dynamic) return 0.0;  // static kinds quantize by their qparams
  float lo, hi;
  tensor_min_max(*x, &lo, &hi);
  const bool reduced = engine_rule(side.engine->engine, kind.engine_op).honors_reduce_range;
  return choose_dynamic_qparams(lo, hi, 0, 255, reduced).scale();
}

// Whether any input value sits exactly halfway between two quanta of the qparams the
// engine chose for the call.
bool input_has_ties(const ModuleInput& input, double activation_scale, bool shift_then_round) {
  const auto* x = std::get_if<Tensor>(&input.input);
  if (!x || activation_scale <= 0) return false;
  const float inverse = shift_then_round ? static_cast<float>(1.0 / activation_scale)
                                         : 1.0f / static_cast<float>(activation_scale);
  for (float v : x->data) {
    const float t = v * inverse;
    if (t - std::floor(t) == 0.5f) return true;
  }
  return false;
}

// Bitwise equality of two runs' outputs (NaNs with equal payloads compare equal).
bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && (x.empty() || std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0);
}

std::string format_float(double v) {
  std::ostringstream out;
  out.precision(9);
  out << v;
  return out.str();
}

}  // namespace

const char* classify_mismatch(bool within_bound, BoundKind row_kind, bool ties, bool saturation, bool overflow) {
  if (within_bound)
    return row_kind == BoundKind::EpilogueRoundings ? "epilogue-rounding"
           : row_kind == BoundKind::Propagated      ? "propagated"
           : row_kind == BoundKind::OutputQuanta    ? "output-rounding"
                                                    : "activation-rounding";
  if (ties) return "rounding-tie";
  if (saturation) return "saturation";
  if (overflow) return "accumulator-overflow";
  return "unexplained";
}

bool expected_engine_refusal(const ModuleKind& kind, const Side& side, const std::string& message) {
  if (side.implementation == Implementation::Reference || !side.engine) return false;
  const EngineOpRule& rule = engine_rule(side.engine->engine, kind.engine_op);
  const std::string zp_prefix = rule.nonzero_weight_zero_point_rejection.substr(
      0, rule.nonzero_weight_zero_point_rejection.find('{'));
  for (const std::string& refusal : rule.forward_refusals)
    if (message.rfind(refusal, 0) == 0) return true;
  return (!rule.accepts_fp16_weights && message == rule.fp16_rejection) ||
         (!rule.non_qint8_weight_rejection.empty() && message == rule.non_qint8_weight_rejection) ||
         (rule.requires_zero_weight_zero_point && !zp_prefix.empty() && message.rfind(zp_prefix, 0) == 0) ||
         (!rule.transposed_output_padding_rejection.empty() && message == rule.transposed_output_padding_rejection);
}

std::string FlatOutput::describe() const {
  std::string text;
  for (const auto& [name, shape] : parts) text += (text.empty() ? "" : ", ") + name + " " + shape_to_string(shape);
  return text;
}

FlatOutput flatten_output(const ModuleOutput& output) {
  FlatOutput flat;
  const auto append = [&](const std::string& name, const Tensor& t) {
    flat.values.insert(flat.values.end(), t.data.begin(), t.data.end());
    flat.parts.emplace_back(name, t.sizes);
  };
  // A quantized output is compared as its integers (in output quanta); its qparams are
  // part of its description, so differing qparams are a shape-level mismatch.
  const auto append_quantized = [&](const std::string& name, const QTensor& q) {
    const size_t at = flat.values.size();
    flat.values.resize(at + q.values.size());
    std::copy(q.values.begin(), q.values.end(), flat.values.begin() + at);  // int32 -> float, exact below 2^24
    flat.parts.emplace_back(name + " " + q.qparams.to_string(), q.sizes);
  };
  if (const auto* t = std::get_if<Tensor>(&output.output)) {
    append("output", *t);
  } else if (const auto* p = std::get_if<PackedSequence>(&output.output)) {
    append("output.data", p->data);
    flat.parts.emplace_back("output.batch_sizes", p->batch_sizes);
  } else {
    append_quantized("output", std::get<QTensor>(output.output));
  }
  if (output.hidden) {
    append("h_n", output.hidden->h);
    if (output.hidden->c) append("c_n", *output.hidden->c);
  }
  if (output.quantized_hidden) {
    append_quantized("h_n", output.quantized_hidden->h);
    append_quantized("c_n", output.quantized_hidden->c);
  }
  return flat;
}

std::string Pair::label() const { return a.label() + " vs " + b.label(); }

Pair parse_pair(const std::string& text) {
  const auto comma = text.find(',');
  if (comma == std::string::npos) throw Error("malformed pair '" + text + "' (expected A,B)");
  return {parse_side(text.substr(0, comma)), parse_side(text.substr(comma + 1))};
}

std::vector<Pair> agreement_pairs(const ModuleKind& kind, const std::vector<EngineProfile>& integer_overrides) {
  std::vector<Pair> pairs;
  const ImplementationEntry* reference = kind.find(Implementation::Reference);
  const ImplementationEntry* quantized = kind.find(Implementation::Quantized);
  const ImplementationEntry* libtorch = kind.find(Implementation::LibTorch);
  if (reference && quantized)
    for (Engine e : quantized->engines) {
      const bool both_paths = depends_on_int8_path(engine_rule(e, kind.engine_op));
      for (const EngineProfile& profile : both_paths ? engine_profiles(e) : std::vector<EngineProfile>{e})
        pairs.push_back({{Implementation::Reference, std::nullopt}, {Implementation::Quantized, profile}});
    }
  if (quantized && libtorch)
    for (Engine e : libtorch->engines) {
      if (!kind.supports(Implementation::Quantized, e)) continue;
      EngineProfile integer = e;  // on the path LibTorch takes in this process
      for (const EngineProfile& forced : integer_overrides)
        if (forced.engine == e) integer = forced;
      pairs.push_back({{Implementation::Quantized, integer}, {Implementation::LibTorch, e}});
    }
  if (reference && libtorch)
    for (Engine e : libtorch->engines)
      pairs.push_back({{Implementation::Reference, std::nullopt}, {Implementation::LibTorch, e}});
  return pairs;
}

OutputJudge::OutputJudge(const ModuleKind& kind, const Pair& pair, const Module& reference, const ModuleInput& input,
                         size_t elements, const std::optional<std::string>& libtorch_onednn_isa)
    : row_(&tolerance_for(kind.family, kind.structure, pair.a, pair.b)) {
  const ToleranceRow& row = *row_;
  if (kind.libtorch_defect)
    for (const Side* side : {&pair.a, &pair.b})
      if (side->implementation == Implementation::LibTorch && side->engine)
        if (auto defect = kind.libtorch_defect(reference, input, side->engine->engine,
                                               libtorch_onednn_isa.value_or(onednn_isa().name)))
          defect_ = *defect;
  // The side whose engine decides activation scale and classification.
  const Side& engine_side = pair.a.implementation == Implementation::Reference ? pair.b : pair.a;
  const bool against_reference =
      pair.a.implementation == Implementation::Reference || pair.b.implementation == Implementation::Reference;
  if (kind.engine_deviation && against_reference && engine_side.engine)
    if (auto deviation = kind.engine_deviation(reference, engine_side.engine->engine)) deviation_ = *deviation;
  std::vector<OutputSensitivity> sensitivity;
  if (row.kind == BoundKind::Propagated) {
    RecurrentBoundModel model;
    model.quantizing_sides = 0;
    model.function_ulps = row.roundings;
    for (const Side* side : {&pair.a, &pair.b}) {
      if (side->implementation == Implementation::Reference || !side->engine) continue;
      ++model.quantizing_sides;
      model.engine = side->engine->engine;
      if (sums_int16_pairs(engine_rule(side->engine->engine, kind.engine_op), *side->engine)) ++model.saturating_sides;
    }
    // Equal integers need equal numerics: one engine on one int8 path.
    model.same_engine = pair.a.engine && pair.a.engine == pair.b.engine;
    bounds_ = kind.recurrent_bounds(reference, input, model);
  } else {
    activation_scale_ = dynamic_activation_scale(kind, engine_side, input);
    sensitivity = kind.sensitivity(reference, input);
    BoundInputs inputs{&sensitivity, activation_scale_};
    if (engine_side.engine) {
      const EngineOpRule& rule = engine_rule(engine_side.engine->engine, kind.engine_op);
      // Either side's int16 pair sums may lose what saturates (both engine sides may differ
      // in path: the bound must hold for the comparison as it is set up).
      for (const Side* side : {&pair.a, &pair.b})
        if (side->engine && sums_int16_pairs(rule, *side->engine)) inputs.saturating = true;
      inputs.bias_quantized = rule.requantization == Requantization::Fp32Multiplier;
    }
    // LibTorch's own answer where its engine leaves an output unspecified (engine table).
    for (const Side* side : {&pair.a, &pair.b})
      if (side->implementation == Implementation::LibTorch && side->engine &&
          !engine_rule(side->engine->engine, kind.engine_op).transposed_uncovered_outputs_unspecified.empty())
        inputs.unreached_unspecified = true;
    bounds_ = element_bounds(row, inputs);
    if (inputs.unreached_unspecified)
      for (const auto& s : sensitivity) unspecified_.push_back(s.unreached);
  }
  if (kind.sequence_steps) {
    steps_ = kind.sequence_steps(reference, input);
    if (steps_.size() != elements) steps_.clear();
  }
  if (bounds_.size() != elements)
    throw Error(kind.key + ": the bounds have " + std::to_string(bounds_.size()) + " entries for " +
                std::to_string(elements) + " output elements (the kind's bounds in oracles/kinds/)");

  // What could explain a difference beyond the bound, for classification.
  if (engine_side.engine) {
    const EngineOpRule& rule = engine_rule(engine_side.engine->engine, kind.engine_op);
    ties_ = input_has_ties(input, activation_scale_,
                           rule.activation_quantization == ActivationQuantization::ShiftThenRound);
    for (const Side* side : {&pair.a, &pair.b})
      if (side->engine && sums_int16_pairs(rule, *side->engine)) saturation_ = true;
  }
  for (const auto& s : sensitivity) overflow_ = overflow_ || s.terms > kernels::kMaxDynamicLinearK;
}

void OutputJudge::compare(const FlatOutput& first, const FlatOutput& second, CaseResult& r) const {
  const std::vector<double>& bounds = bounds_;
  const ToleranceRow& row = *row_;
  r.tolerance_row = row.id;
  r.activation_scale = activation_scale_;
  r.total = static_cast<int64_t>(first.values.size());
  r.passed = true;
  r.exact = 0;
  r.mismatch_classes.clear();
  r.max_abs_error = 0;
  r.max_bound_fraction = 0;
  r.worst_index = -1;
  r.first_differing_step = -1;
  r.libtorch_defect = defect_;
  r.engine_deviation = deviation_;
  // Elements per class, by the class names' literals (few classes, many elements); into
  // r.mismatch_classes at the end.
  std::vector<std::pair<const char*, int64_t>> classes;
  const auto count = [&classes](const char* name) {
    for (auto& [known, n] : classes)
      if (known == name) {
        ++n;
        return;
      }
    classes.emplace_back(name, 1);
  };
  for (int64_t i = 0; i < r.total; ++i) {
    const float a = first.values[i], b = second.values[i];
    if (bit_equal(a, b) || (std::isnan(a) && std::isnan(b))) {
      ++r.exact;
      continue;
    }
    if (!steps_.empty() && steps_[i] >= 0 && (r.first_differing_step < 0 || steps_[i] < r.first_differing_step))
      r.first_differing_step = steps_[i];
    if (!defect_.empty()) {  // LibTorch's answer is known to be wrong here: not compared
      count("engine-defect");
      continue;
    }
    if (!deviation_.empty()) {  // the engine computes another definition here: not compared
      count("engine-deviation");
      continue;
    }
    const double error = std::abs(static_cast<double>(a) - static_cast<double>(b));
    const double fraction = bounds[i] > 0 ? error / bounds[i] : std::numeric_limits<double>::infinity();
    const double worst_error = std::abs(static_cast<double>(r.worst_a) - static_cast<double>(r.worst_b));
    // The worst element is the one furthest beyond its bound; among equals (a zero bound
    // makes every fraction infinite), the one with the largest error.
    if (std::isnan(error) || r.worst_index < 0 || fraction > r.max_bound_fraction ||
        (fraction == r.max_bound_fraction && error > worst_error)) {
      r.max_bound_fraction = std::isnan(error) ? std::numeric_limits<double>::infinity() : fraction;
      r.worst_index = i;
      r.worst_a = a;
      r.worst_b = b;
      r.worst_bound = bounds[i];
    }
    r.max_abs_error = std::max(r.max_abs_error, error);
    const bool within = error <= bounds[i];
    if (!within) r.passed = false;
    // No bound: an output the engine leaves unspecified, or its int32 overflow (the static bias).
    const bool unspecified = !unspecified_.empty() && unspecified_[i];
    count(unspecified            ? "engine-unspecified"
          : std::isinf(bounds[i]) ? "accumulator-overflow"
                                  : classify_mismatch(within, row.kind, ties_, saturation_, overflow_));
  }
  for (const auto& [name, n] : classes) r.mismatch_classes[name] += n;
}

std::string OutputJudge::describe_failure(const CaseResult& r, const Pair& pair, const FlatOutput& shape) const {
  std::ostringstream out;
  out << "element " << r.worst_index << " of " << shape.describe() << " (" << locate_element(shape, r.worst_index)
      << "): " << pair.a.label() << " = " << format_float(r.worst_a) << ", " << pair.b.label() << " = "
      << format_float(r.worst_b) << ", |diff| = " << format_float(std::abs(double(r.worst_a) - double(r.worst_b)))
      << " exceeds the bound " << format_float(r.worst_bound) << " of row '" << row_->id << "' ("
      << to_string(row_->kind) << "); " << r.exact << "/" << r.total << " elements exact; activation scale "
      << format_float(r.activation_scale);
  if (r.first_differing_step >= 0) out << "; the outputs first differ at time step " << r.first_differing_step;
  return out.str();
}

std::string locate_element(const FlatOutput& flat, int64_t index) {
  int64_t offset = 0;
  for (const auto& [name, shape] : flat.parts) {
    if (name == "output.batch_sizes") continue;  // not among the values
    const int64_t n = numel_of(shape);
    if (index < offset + n) {
      int64_t rest = index - offset;
      std::vector<int64_t> position(shape.size());
      for (size_t d = shape.size(); d-- > 0;) {
        position[d] = shape[d] ? rest % shape[d] : 0;
        rest = shape[d] ? rest / shape[d] : 0;
      }
      std::string text = name.substr(0, name.find(' '));
      text += "[";
      for (size_t d = 0; d < position.size(); ++d) text += (d ? ", " : "") + std::to_string(position[d]);
      return text + "]";
    }
    offset += n;
  }
  return "beyond the output";
}

CaseResult check_agreement(const ModuleKind& kind, const Pair& pair, const CaseConfig& config,
                           FreshProcessBudget* budget) {
  CaseResult result;
  const ToleranceRow& row = tolerance_for(kind.family, kind.structure, pair.a, pair.b);
  result.tolerance_row = row.id;
  Case c = kind.make_case(config);
  const auto where = [&] {
    return kind.key + " " + pair.label() + " case {" + config.to_string() + "}\n  rerun: " +
           rerun_command(kind, pair, config);
  };

  // A configuration both sides refuse identically is the rejection oracle's business; one a
  // plug-in declines (PluginDeclines) is counted, not compared.
  std::unique_ptr<Module> module_a, module_b;
  std::string refused_a, refused_b;
  const auto attempt = [&](const std::function<void()>& step, std::string& refused) {
    try {
      step();
    } catch (const PluginDeclines& e) {
      result.declined = e.what();
    } catch (const Error& e) {
      refused = e.what();
    }
  };
  attempt([&] { module_a = build(kind, *c.float_module, pair.a); }, refused_a);
  attempt([&] { module_b = build(kind, *c.float_module, pair.b); }, refused_b);
  // The call itself may be refused too (an engine's check of the operands).
  ModuleOutput out_a, out_b;
  if (result.declined.empty() && refused_a.empty() && refused_b.empty()) {
    attempt([&] { out_a = (*module_a)(c.input); }, refused_a);
    attempt([&] { out_b = (*module_b)(c.input); }, refused_b);
  }
  if (!result.declined.empty()) {
    result.rejected = result.passed = true;
    return result;
  }
  if (!refused_a.empty() || !refused_b.empty()) {
    // Both refuse alike, or only an engine side refuses, with its own rejection from the
    // engine table (float16 weights on qnnpack and onednn, QNNPACK's add scale ratios): the
    // rejection oracle compares that refusal with LibTorch's.
    result.rejected = refused_a == refused_b || (refused_a.empty() && expected_engine_refusal(kind, pair.b, refused_b)) ||
                      (refused_b.empty() && expected_engine_refusal(kind, pair.a, refused_a));
    result.passed = result.rejected;
    if (!result.passed)
      result.failure = pair.a.label() + " " + (refused_a.empty() ? "accepts" : "refuses (" + refused_a + ")") +
                       " but " + pair.b.label() + " " + (refused_b.empty() ? "accepts" : "refuses (" + refused_b + ")") +
                       " in " + where();
    return result;
  }
  FlatOutput flat_a = flatten_output(out_a), flat_b = flatten_output(out_b);
  // The side whose engine decides activation scale, empty-output shape and classification.
  const Side& engine_side = pair.a.implementation == Implementation::Reference ? pair.b : pair.a;
  // An engine that flattens empty outputs (engine table) differs from the reference only
  // in the shape of an empty result.
  const bool empty_shape_quirk = flat_a.values.empty() && flat_b.values.empty() && engine_side.engine &&
                                 engine_rule(engine_side.engine->engine, kind.engine_op).flattens_empty_output;
  if (empty_shape_quirk && flat_a.parts != flat_b.parts) {
    result.passed = true;
    return result;
  }
  if (flat_a.parts != flat_b.parts) {
    result.failure = "output kinds or shapes differ (" + flat_a.describe() + " vs " + flat_b.describe() + ") in " +
                     where();
    return result;
  }

  // The bound needs the reference's view of the computation and the engine's activation scale.
  std::unique_ptr<Module> built_reference;
  const Module* reference = pair.a.implementation == Implementation::Reference   ? module_a.get()
                            : pair.b.implementation == Implementation::Reference ? module_b.get()
                                                                                 : nullptr;
  if (!reference) {
    built_reference = build(kind, *c.float_module, {Implementation::Reference, std::nullopt});
    reference = built_reference.get();
  }
  const OutputJudge judge(kind, pair, *reference, c.input, flat_a.values.size());
  judge.compare(flat_a, flat_b, result);
  // LibTorch is the one side the harness does not control. If it fails the comparison, its
  // answer is put to two tests of consistency with itself, and where it fails one the case
  // is judged on LibTorch's other answer and the inconsistency is counted:
  //   1. the same computation on a freshly built module (instability: seen rarely for
  //      onednn's dynamic GRU in long runs, never in isolation);
  //   2. where the registry offers it, every GEMM call on a weight prepacked for that call
  //      alone (PyTorch 1.13's onednn dynamic linear can apply an earlier call's zero point
  //      on a later call with another input shape; quantized/libtorch/dynamic_rnn.h).
  // A LibTorch answer that survives both and still disagrees is a failure.
  const auto judge_on_libtorch_rerun = [&](const std::function<std::unique_ptr<Module>(const Side&)>& rebuild) {
    bool differs = false;
    for (const auto& [side, flat] : {std::pair{&pair.a, &flat_a}, std::pair{&pair.b, &flat_b}}) {
      if (side->implementation != Implementation::LibTorch) continue;
      const std::unique_ptr<Module> again_module = rebuild(*side);
      if (!again_module) continue;
      const FlatOutput again = flatten_output((*again_module)(c.input));
      if (again.parts == flat->parts && !same_bits(again.values, flat->values)) {
        *flat = again;
        differs = true;
      }
    }
    if (differs) judge.compare(flat_a, flat_b, result);
    return differs;
  };
  if (!result.passed)
    result.libtorch_unstable =
        judge_on_libtorch_rerun([&](const Side& side) { return build(kind, *c.float_module, side); });
  if (!result.passed) {
    const ImplementationEntry* libtorch = kind.find(Implementation::LibTorch);
    if (libtorch && libtorch->from_float_fresh_prepack)
      result.libtorch_history_dependent = judge_on_libtorch_rerun([&](const Side& side) {
        return libtorch->from_float_fresh_prepack(*c.float_module, side.engine.value_or(Engine::QNNPACK));
      });
  }
  //   3. the same case in a fresh process, which no earlier call of this one has touched
  //      (onednn's static linear was seen to answer differently inside long runs), while the
  //      cell's budget lasts.
  const bool involves_libtorch =
      pair.a.implementation == Implementation::LibTorch || pair.b.implementation == Implementation::LibTorch;
  bool budget_spent = false;
  if (!result.passed && involves_libtorch) {
    budget_spent = budget && !budget->take();
    result.fresh_process_recomputed = !budget_spent;
  }
  if (result.fresh_process_recomputed) {
    bool differs = false;
    for (const auto& [side, flat] : {std::pair{&pair.a, &flat_a}, std::pair{&pair.b, &flat_b}}) {
      if (side->implementation != Implementation::LibTorch) continue;
      const auto fresh = fresh_process_output(kind, *side, config);
      if (fresh && fresh->size() == flat->values.size() && !same_bits(*fresh, flat->values)) {
        flat->values = *fresh;
        differs = true;
      }
    }
    if (differs) {
      judge.compare(flat_a, flat_b, result);
      result.libtorch_history_dependent = true;
    }
  }
  if (!result.passed) {
    std::ostringstream out;
    out << judge.describe_failure(result, pair, flat_a)
        << (result.libtorch_unstable ? "; LibTorch gave different bits on a rerun, judged on the rerun" : "")
        << (result.libtorch_history_dependent
                ? "; LibTorch gave different bits with a fresh prepack per GEMM call, judged on that answer"
                : "")
        << (budget_spent ? "; not recomputed in a fresh process: this cell's " + std::to_string(budget->limit()) +
                               " fresh-process reruns are spent (a systematic disagreement)"
                         : "")
        << "\n  " << where();
    result.failure = out.str();
  }
  return result;
}

FlatOutput implementation_output(const ModuleKind& kind, const Side& side, const CaseConfig& config) {
  const Case c = kind.make_case(config);
  return flatten_output((*build(kind, *c.float_module, side))(c.input));
}

std::optional<std::vector<float>> fresh_process_output(const ModuleKind& kind, const Side& side,
                                                       const CaseConfig& config) {
  std::string tool;
  if (const char* from_env = std::getenv("QCONFORM_TOOL")) tool = from_env;
#ifdef QCONFORM_TOOL_PATH
  if (tool.empty()) tool = QCONFORM_TOOL_PATH;
#endif
  if (tool.empty() || !std::filesystem::exists(tool)) return std::nullopt;
  // The child takes the side's int8 path: oneDNN held to AVX2 for avx2, unheld for vnni
  // (where the CPU has none, the child refuses and there is no answer).
  std::string environment;
  if (side.engine && side.engine->engine == Engine::ONEDNN && side.engine->int8_path)
    environment = *side.engine->int8_path == Int8Path::Avx2 ? "env ONEDNN_MAX_CPU_ISA=AVX2 "
                                                            : "env -u ONEDNN_MAX_CPU_ISA -u DNNL_MAX_CPU_ISA ";
  // The case text holds only names, digits, '=' and spaces (CaseConfig::to_string).
  const std::string command = environment + "'" + tool + "' libtorch-answer --kind " + kind.key + " --side '" +
                              side.label() + "' --case '" + config.to_string() + "' 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return std::nullopt;
  std::vector<float> values;
  unsigned long bits = 0;
  while (std::fscanf(pipe, "%lu", &bits) == 1) {
    const uint32_t word = static_cast<uint32_t>(bits);
    float v;
    std::memcpy(&v, &word, sizeof v);
    values.push_back(v);
  }
  if (pclose(pipe) != 0) return std::nullopt;
  return values;
}

CaseConfig random_case_config(const ModuleKind& kind, std::mt19937_64& rng) {
  CaseConfig config;
  for (const auto& p : kind.case_parameters)
    config.values[p.name] = std::uniform_int_distribution<int64_t>(p.min, p.max)(rng);
  config.data_seed = rng();
  config.style = static_cast<InputStyle>(rng() % kInputStyles);
  return config;
}

CaseConfig parse_case_config(const ModuleKind& kind, const std::string& text) {
  CaseConfig config;
  std::istringstream in(text);
  std::string token;
  while (in >> token) {
    const auto eq = token.find('=');
    if (eq == std::string::npos) throw Error("malformed case token '" + token + "' (expected name=value)");
    const std::string name = token.substr(0, eq), value = token.substr(eq + 1);
    try {
      if (name == "seed") {
        config.data_seed = std::stoull(value);
      } else if (name == "style") {
        bool found = false;
        for (int s = 0; s < kInputStyles; ++s)
          if (to_string(static_cast<InputStyle>(s)) == value) {
            config.style = static_cast<InputStyle>(s);
            found = true;
          }
        if (!found) throw Error("unknown input style '" + value + "'");
      } else {
        config.values[name] = std::stoll(value);
      }
    } catch (const std::logic_error&) {
      throw Error("case parameter '" + name + "' has a non-numeric value '" + value + "'");
    }
  }
  for (const auto& p : kind.case_parameters) {
    const auto it = config.values.find(p.name);
    if (it == config.values.end())
      throw Error(kind.key + " case is missing parameter '" + p.name + "'");
    if (it->second < p.min || it->second > p.max)
      throw Error(kind.key + " case parameter " + p.name + "=" + std::to_string(it->second) +
                  " is outside [" + std::to_string(p.min) + ", " + std::to_string(p.max) + "]");
  }
  return config;
}

namespace {
std::string& rerun_program() {
  static std::string program = "build/qconform";
  return program;
}
}  // namespace

std::string rerun_command(const ModuleKind& kind, const Pair& pair, const CaseConfig& config) {
  // LibTorch's onednn answers on the avx2 path only with oneDNN held to AVX2; otherwise a
  // process held to an instruction set answers as this one only under the same setting.
  std::string environment;
  for (const Side* side : {&pair.a, &pair.b})
    if (side->implementation == Implementation::LibTorch && side->engine && side->engine->engine == Engine::ONEDNN &&
        side->engine->int8_path == Int8Path::Avx2)
      environment = "ONEDNN_MAX_CPU_ISA=AVX2 ";
  if (environment.empty())
    for (const char* name : {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"})
      if (const char* value = std::getenv(name); value && *value) environment += std::string(name) + "=" + value + " ";
  return environment + rerun_program() + " case --kind " + kind.key + " --pair '" + pair.a.label() + "," +
         pair.b.label() + "' --case '" + config.to_string() + "'";
}

void set_rerun_program(const std::string& program) { rerun_program() = program; }

}  // namespace qconform
