#pragma once
// The numerical-agreement oracle: build one case of a registered module kind, convert it
// into two implementations, run both on the same input, and compare every output element
// against the bound of the tolerance row that governs the pair. Knows nothing about any
// particular module: everything module-specific comes from the registry.
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "oracles/kinds/registry.h"
#include "oracles/tolerance.h"

namespace qconform {

struct Pair {
  Side a;
  Side b;
  std::string label() const;  // "reference vs quantized[qnnpack]"
};

// The pairs the registry implies for a kind: reference vs the integer implementation on
// every engine profile (both int8 paths of an engine whose numerics for the kind's op
// depend on them: integer code runs the same on any host), integer vs LibTorch on each engine both have, the integer side on the
// path LibTorch takes in this process unless `integer_overrides` names another for that
// engine (a deliberately wrong path, `qconform conform --integer-path onednn:avx2`), and
// reference vs each LibTorch engine.
std::vector<Pair> agreement_pairs(const ModuleKind& kind, const std::vector<EngineProfile>& integer_overrides = {});
Pair parse_pair(const std::string& text);  // "reference,quantized[qnnpack]"
Side parse_side(const std::string& text);  // "libtorch[onednn]"

// A module's whole result as one vector: the output (a tensor, or a packed sequence's
// data), then the hidden state h_n and c_n where there is one; `parts` names each part
// with its shape, for messages and shape checks.
struct FlatOutput {
  std::vector<float> values;
  std::vector<std::pair<std::string, Shape>> parts;
  std::string describe() const;  // "output [5, 2, 8], h_n [2, 2, 4]"
};
FlatOutput flatten_output(const ModuleOutput& output);

// Why an element is not bit-identical (see classify in agreement.cc).
//   activation-rounding  within the bound of an activation-rounding row: expected
//   epilogue-rounding    within the bound of an epilogue row: expected
//   propagated           within the propagated bound of a recurrent row: expected
//   output-rounding      within the output-quanta bound of a static row: expected
//   rounding-tie         beyond the bound, and the input holds exact rounding ties
//   saturation           beyond the bound, on an engine whose int16 pair sums can
//                        saturate with full 8-bit activations
//   accumulator-overflow beyond the bound, with a reduction long enough to overflow int32
//                        (or an element without bound: the engine's int32 bias overflow)
//   engine-unspecified   an element the engine leaves unspecified (engine table: onednn's
//                        transposed convolutions at outputs no input reaches): no bound
//   engine-defect        an element of a case LibTorch is known to compute wrongly on its
//                        instruction set (engine table: libtorch_conv_defects): no bound
//   unexplained          beyond the bound, none of the above
const char* classify_mismatch(bool within_bound, BoundKind row_kind, bool input_has_ties, bool saturation_possible,
                              bool accumulator_may_overflow);

// Whether `message` is the engine table's own refusal of some weights on side's engine
// (float16 on qnnpack/onednn, quint8, non-zero zero points): such a configuration is the
// rejection oracle's business, which compares the refusal with LibTorch's.
bool expected_engine_refusal(const ModuleKind& kind, const Side& side, const std::string& message);

struct CaseResult {
  bool passed = false;
  bool rejected = false;           // both sides refused the configuration (same message)
  std::map<std::string, int64_t> mismatch_classes;
  std::string tolerance_row;
  int64_t total = 0;
  int64_t exact = 0;               // bit-identical elements
  double max_abs_error = 0;
  double max_bound_fraction = 0;   // max |a - b| / bound (inf when the bound is 0)
  int64_t worst_index = -1;
  float worst_a = 0, worst_b = 0;
  double worst_bound = 0;
  double activation_scale = 0;
  // LibTorch failed the comparison, and a second run of the same computation on a freshly
  // built LibTorch module gave different bits; the case was judged on that second run.
  bool libtorch_unstable = false;
  // LibTorch failed the comparison, and the same computation with every GEMM call on a
  // weight prepacked for that call alone (ImplementationEntry::from_float_fresh_prepack), or
  // computed in a fresh process, gave different bits; the case was judged on that answer.
  bool libtorch_history_dependent = false;
  bool fresh_process_recomputed = false;  // the fresh-process test ran (it took from the budget)
  std::string libtorch_defect;     // LibTorch's known defect for the case (not compared), if any
  std::string engine_deviation;    // the engine's known deviation from the reference (not compared), if any
  // Recurrent kinds with a time axis (ModuleKind::sequence_step): the earliest time step at
  // which an output element differs, in the order the recurrence runs; -1 when none differs.
  int64_t first_differing_step = -1;
  std::string failure;             // what differs, where, and how to rerun
  std::string declined;            // a plug-in declined the configuration (PluginDeclines): its reason
};

// How many times one cell (a kind x pair, or one property) may recompute a disagreeing
// LibTorch answer in a fresh process, the last of check_agreement's consistency tests. Each
// costs a process start, and a systematic mismatch (a wrong model, a wrong int8 path) would
// spend one on every case and every shrinking step; past the budget a disagreement fails at
// once and says so, so a run's time does not grow with how many cases fail.
class FreshProcessBudget {
 public:
  static constexpr int kPerCell = 5;
  explicit FreshProcessBudget(int limit = kPerCell) : limit_(limit) {}
  bool take() { return spent_ < limit_ ? (++spent_, true) : false; }
  int spent() const { return spent_; }
  int limit() const { return limit_; }

 private:
  int limit_;
  int spent_ = 0;
};

// One case; `budget` is the cell's (nullptr: a case on its own, which may always recompute).
CaseResult check_agreement(const ModuleKind& kind, const Pair& pair, const CaseConfig& config,
                           FreshProcessBudget* budget = nullptr);

// The element-by-element judgement of two outputs of one computation against the bound
// of the tolerance row that governs the pair. The bounds come from `reference` (the case's
// reference module) and `input`; `elements` is the flattened output's length. Used by
// check_agreement and by the fixture replay (oracles/replay.h).
class OutputJudge {
 public:
  // `libtorch_onednn_isa`: the oneDNN ISA a LibTorch side's answers came from, on which its
  // known defects depend (ModuleKind::libtorch_defect); this process's when not given.
  OutputJudge(const ModuleKind& kind, const Pair& pair, const Module& reference, const ModuleInput& input,
              size_t elements, const std::optional<std::string>& libtorch_onednn_isa = std::nullopt);
  // LibTorch's known defect for this case, if one applies: its answers are then not
  // compared, and differing elements are classed engine-defect.
  const std::string& libtorch_defect() const { return defect_; }
  // The engine side's known deviation from PyTorch's definition (ModuleKind::engine_deviation),
  // when the other side is the reference: differing elements are classed engine-deviation.
  const std::string& engine_deviation() const { return deviation_; }
  // Sets every comparison field of `result` (passed, exact, worst element, classes, row).
  void compare(const FlatOutput& a, const FlatOutput& b, CaseResult& result) const;
  // "element 7 of output [2, 4] (output[1, 3]): A = .., B = .., |diff| = .. exceeds the
  // bound .. of row '..' (..); 5/8 elements exact; activation scale .."
  std::string describe_failure(const CaseResult& result, const Pair& pair, const FlatOutput& shape) const;
  const ToleranceRow& row() const { return *row_; }
  double activation_scale() const { return activation_scale_; }

 private:
  const ToleranceRow* row_;
  std::vector<double> bounds_;
  double activation_scale_ = 0;
  bool ties_ = false, saturation_ = false, overflow_ = false;
  std::vector<bool> unspecified_;  // per element: the engine leaves it unspecified (no bound)
  std::string defect_;
  std::string deviation_;
  std::vector<int64_t> steps_;  // per element: its time step (ModuleKind::sequence_step), -1 none
};

// Where element `index` of a flattened output sits: "h_n[1, 0, 3]".
std::string locate_element(const FlatOutput& flat, int64_t index);

// One implementation's flattened output for one case (what `qconform libtorch-answer` prints).
FlatOutput implementation_output(const ModuleKind& kind, const Side& side, const CaseConfig& config);

// LibTorch's answer for one case computed in a fresh process (`qconform libtorch-answer`),
// free of whatever earlier calls in this process left behind, on the side's int8 path (the
// child's oneDNN held to AVX2 for onednn:avx2: so a VNNI host answers for both paths);
// nullopt when the tool is not available (QCONFORM_TOOL, else the build tree's qconform)
// or fails (a vnni side on a CPU without VNNI).
std::optional<std::vector<float>> fresh_process_output(const ModuleKind& kind, const Side& side,
                                                       const CaseConfig& config);

// A random configuration within the kind's parameter ranges (for the main job; the
// property tests draw theirs with rapidcheck so that failures shrink).
CaseConfig random_case_config(const ModuleKind& kind, std::mt19937_64& rng);
CaseConfig parse_case_config(const ModuleKind& kind, const std::string& text);

// The command that reruns exactly one case.
std::string rerun_command(const ModuleKind& kind, const Pair& pair, const CaseConfig& config);
// The program rerun_command names ("build/qconform" unless set): a plug-in's test program
// sets its own (properties/plugin_test.h), whose `case` subcommand reruns one case.
void set_rerun_program(const std::string& program);

}  // namespace qconform
