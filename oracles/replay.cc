#include "oracles/replay.h"

#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "oracles/kinds/registry.h"

namespace qconform {

namespace {

std::string short_float(double v) {
  std::ostringstream out;
  out << std::setprecision(3) << v;
  return out.str();
}

// One comparison of two outputs of the fixture's computation.
void compare(const ModuleKind& kind, const Fixture& fixture, const Module& reference, FixtureComparison& c,
             const FlatOutput& a, const FlatOutput& b) {
  if (a.parts != b.parts) {
    c.result.passed = false;
    c.result.failure = "output kinds or shapes differ: " + c.pair.a.label() + " gives " + a.describe() + ", " +
                       c.pair.b.label() + " " + b.describe();
    return;
  }
  // The recording's own oneDNN ISA decides which of LibTorch's known defects apply to it
  // (none when the recording does not say: its answer is then compared like any other).
  const std::string isa = fixture.provenance ? fixture.provenance->value("onednn_isa", "") : "";
  const OutputJudge judge(kind, c.pair, reference, fixture.input, a.values.size(), isa);
  judge.compare(a, b, c.result);
  if (!c.result.passed) c.result.failure = judge.describe_failure(c.result, c.pair, a);
}

FixtureComparison comparison(const Side& a, const Side& b) {
  FixtureComparison c;
  c.pair = {a, b};
  return c;
}

}  // namespace

FixtureVerdict replay_fixture(const Fixture& fixture, const std::string& path) {
  FixtureVerdict v;
  v.name = fixture.name;
  v.path = path;
  v.kind = fixture.module.kind;
  v.engine = fixture.engine;
  try {
    const ModuleKind& kind = module_kind(fixture.module.kind);
    if (!kind.reference_from_spec) throw Error(kind.key + " cannot be rebuilt from a fixture");
    const std::unique_ptr<Module> reference = kind.reference_from_spec(fixture.module);
    const FlatOutput recorded = flatten_output(fixture.expected);
    const FlatOutput from_reference = flatten_output((*reference)(fixture.input));
    const Side reference_side{Implementation::Reference, std::nullopt};
    const Side recorded_side{Implementation::LibTorch, fixture.engine};
    const Side integer_side{Implementation::Quantized, fixture.engine};

    FixtureComparison reference_vs_recorded = comparison(reference_side, recorded_side);
    compare(kind, fixture, *reference, reference_vs_recorded, from_reference, recorded);
    v.comparisons.push_back(reference_vs_recorded);

    FixtureComparison integer_vs_recorded = comparison(integer_side, recorded_side);
    FixtureComparison reference_vs_integer = comparison(reference_side, integer_side);
    if (kind.supports(Implementation::Quantized, fixture.engine.engine) && kind.quantized_from_spec) {
      const std::unique_ptr<Module> integer = kind.quantized_from_spec(fixture.module, fixture.engine);
      const FlatOutput from_integer = flatten_output((*integer)(fixture.input));
      compare(kind, fixture, *reference, integer_vs_recorded, from_integer, recorded);
      compare(kind, fixture, *reference, reference_vs_integer, from_reference, from_integer);
    } else {
      for (FixtureComparison* c : {&integer_vs_recorded, &reference_vs_integer}) {
        c->available = false;
        c->note = "no integer implementation of " + kind.key + " on " + to_string(fixture.engine.engine) +
                  " (qconform engines: its requantization is not modelled)";
        c->result.passed = true;
      }
    }
    v.comparisons.push_back(integer_vs_recorded);
    v.comparisons.push_back(reference_vs_integer);
    v.passed = true;
    for (const auto& c : v.comparisons) v.passed = v.passed && c.result.passed;
  } catch (const Error& e) {
    v.error = e.what();
    v.passed = false;
  }
  return v;
}

FixtureVerdict replay_fixture_file(const std::string& path) {
  try {
    return replay_fixture(read_fixture(path), path);
  } catch (const Error& e) {
    FixtureVerdict v;
    v.path = path;
    v.error = e.what();
    return v;
  }
}

std::string FixtureVerdict::line() const {
  std::ostringstream out;
  out << (passed ? "PASS  " : "FAIL  ") << (name.empty() ? path : name);
  if (!kind.empty()) out << "  " << kind << "[" << engine.label() << "]";
  if (!error.empty()) {
    out << "  cannot replay: " << error;
    return out.str();
  }
  // The worst comparison: furthest beyond (or closest to) its bound.
  const FixtureComparison* worst = nullptr;
  for (const auto& c : comparisons)
    if (c.available && (!worst || c.result.max_bound_fraction > worst->result.max_bound_fraction ||
                        (!c.result.passed && worst->result.passed)))
      worst = &c;
  if (worst) {
    out << "  worst |diff| " << short_float(worst->result.max_abs_error) << " = "
        << short_float(worst->result.max_bound_fraction) << " of its bound (" << worst->pair.label() << ", "
        << worst->result.exact << "/" << worst->result.total << " exact)";
  }
  if (comparisons.size() > 1 && !comparisons[1].available)
    out << "  [" << comparisons[1].pair.a.label() << " not modelled: reference vs recorded only]";
  return out.str();
}

std::string FixtureVerdict::details() const {
  std::string text;
  for (const auto& c : comparisons)
    if (!c.result.passed)
      text += "  fixture " + name + " (" + path + "), " + c.pair.label() + " (recorded: libtorch[" +
              engine.label() + "]): " + c.result.failure + "\n";
  return text;
}

std::string verdicts_json(const std::vector<FixtureVerdict>& verdicts) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& v : verdicts) {
    nlohmann::json comparisons = nlohmann::json::array();
    for (const auto& c : v.comparisons) {
      nlohmann::json entry = {{"pair", c.pair.label()}, {"available", c.available}};
      if (!c.available) {
        entry["note"] = c.note;
      } else {
        entry.update({{"passed", c.result.passed},
                      {"tolerance_row", c.result.tolerance_row},
                      {"elements", c.result.total},
                      {"exact", c.result.exact},
                      {"max_abs_error", c.result.max_abs_error},
                      {"max_bound_fraction",
                       std::isinf(c.result.max_bound_fraction) ? nlohmann::json("inf")
                                                               : nlohmann::json(c.result.max_bound_fraction)},
                      {"mismatch_classes", c.result.mismatch_classes}});
        if (!c.result.passed) entry["failure"] = c.result.failure;
      }
      comparisons.push_back(entry);
    }
    nlohmann::json entry = {{"name", v.name}, {"path", v.path}, {"kind", v.kind}, {"engine", to_string(v.engine.engine)},
                            {"int8_path", v.engine.int8_path ? nlohmann::json(to_string(*v.engine.int8_path)) : nlohmann::json()},
                            {"passed", v.passed}, {"comparisons", comparisons}};
    if (!v.error.empty()) entry["error"] = v.error;
    out.push_back(entry);
  }
  return out.dump(2) + "\n";
}

}  // namespace qconform
