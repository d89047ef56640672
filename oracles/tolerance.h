#pragma once
// The tolerance policy: one table, a reason on every row. A row says how far two
// implementations may differ for a family of modules, as a bound derived from the case
// (its qparams and its data), never as a constant tuned until tests pass. The report
// renders this same table.
//
// Bounds, per output element y = sum_k w_k x_k + b (see OutputSensitivity):
//   Exact:               |a - b| = 0 (bit-identical floats)
//   EpilogueRoundings:   |a - b| <= r * eps * M,  M = magnitude + (s_x / 2) * weight_l1
//   ActivationRounding:  |a - b| <= s_x * (1/2 + 2^-14) * weight_l1 + (K + 4) * eps * M
// with eps = 2^-23 (float32), s_x the activation scale the engine chose for the call and
// K the reduction length.
//   Propagated:          recurrent modules: the bound of every element is propagated
//                        through the recurrence from the same per-call terms
//                        (oracles/recurrent_bounds.h), with `function_ulps` per side for
//                        each sigmoid and tanh.
#include <optional>
#include <string>
#include <vector>

#include "core/module_kind.h"

namespace qconform {

//   OutputQuanta:        static modules, outputs compared as quint8 integers:
//                        |a - b| <= 1 + ((K + 4) eps M + bias_rounding) / s_y + saturation
//                        (in quanta; see the rows' reasons)
enum class BoundKind { Exact, EpilogueRoundings, ActivationRounding, Propagated, OutputQuanta };
std::string to_string(BoundKind kind);

// One side of a comparison: an implementation, on an engine profile where it has one.
// A plug-in's side (Implementation::Plugin) is named by the plug-in, and its `engine` is the
// engine whose engine-table rules its bounds take (how it rounds its bias, whether it may
// saturate: oracles/plugin.h).
struct Side {
  Implementation implementation;
  std::optional<EngineProfile> engine;
  std::string plugin = {};  // the plug-in's name, for Implementation::Plugin
  std::string label() const;  // "reference", "quantized[qnnpack]", "libtorch[onednn:vnni]", "xnnpack"
  bool operator==(const Side& other) const {
    return implementation == other.implementation && engine == other.engine && plugin == other.plugin;
  }
};

// A side as a tolerance row names it: an implementation on one engine, whatever its int8
// path (a row's bound covers both; where the path matters, the bound is derived from the
// sides' profiles), or on any engine.
struct SidePattern {
  Implementation implementation;
  std::optional<Engine> engine;  // nullopt: any engine
  std::string plugin = {};       // Implementation::Plugin: the plug-in's name
  std::string label() const;     // "quantized[onednn]", "libtorch", "xnnpack"
  bool matches(const Side& side) const;
};

struct ToleranceRow {
  std::string id;  // stable name, cited in results and the report
  Family family;
  Structure structure;
  SidePattern a;
  SidePattern b;
  bool same_engine;  // both sides must be on the same engine (their int8 paths may differ)
  BoundKind kind;
  double roundings;  // r for EpilogueRoundings; ulps per side of sigmoid/tanh for Propagated
  std::string reason;
  // Static reductions: no bound on an element whose int32 bias overflows (bias / (s_x s_w)
  // beyond int32), which two engines may handle differently on purpose (classed
  // accumulator-overflow). The OutputQuanta rows do so wherever the engine rounds its bias.
  bool unbounded_where_bias_overflows = false;
};

const std::vector<ToleranceRow>& tolerance_table();
// The row governing (a, b) for a family — a registered plug-in's own rows first — or Error if
// there is none (a missing row is a defect of the table, not something to default).
const ToleranceRow& tolerance_for(Family family, Structure structure, const Side& a, const Side& b);

// The per-element bound of `row` for a case.
struct BoundInputs {
  const std::vector<OutputSensitivity>* sensitivity;
  double activation_scale;  // s_x of the call (0 when activations are not quantized)
  bool saturating = false;      // the engine side sums u8 x s8 pairs in int16 (static: may saturate)
  bool bias_quantized = false;  // the engine side rounds the bias to int32 (qnnpack)
  bool unreached_unspecified = false;  // a LibTorch side leaves unreached outputs unspecified
};
std::vector<double> element_bounds(const ToleranceRow& row, const BoundInputs& inputs);

std::string tolerance_table_text();

}  // namespace qconform
