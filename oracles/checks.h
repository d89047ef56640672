#pragma once
// The oracles besides numerical agreement (oracles/agreement.h), each a reusable check over
// any registered module kind: nothing here names a module. Each returns a list of
// findings; an empty list means the check passed. Every finding says what differs and
// for which kind, implementation, engine and case.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/module_kind.h"

namespace qconform {

// state_dict round trip, for every implementation x engine of the kind: save -> file ->
// load into a fresh module of the same shape (built from other weights) -> identical keys,
// identical state, bit-identical outputs (where the state_dict holds all of the module's
// state: ModuleKind::state_dict_holds_all_state). Across implementations, where PyTorch has
// from_reference: the integer module converted from the reference carries the reference's
// integer weights, so it equals the module converted from the float module directly.
std::vector<std::string> check_state_dict_round_trip(const ModuleKind& kind, const CaseConfig& config,
                                                     const std::string& scratch_directory);

// Hooks registered on the float module survive every conversion path the registry offers
// (from_float into each implementation and engine, from_reference): same counts, firing in
// registration order (pre-hooks, then forward hooks), and removing a handle on the source
// leaves the converted module's copy in place, as in PyTorch.
std::vector<std::string> check_hook_preservation(const ModuleKind& kind, const CaseConfig& config);

// Rejection rules. Kinds with weights: for weight qparams variants (qint8 per-tensor and
// per-channel, with zero and non-zero zero points, quint8, float16) on every engine, the engine
// table's verdict ("accepted", or step and message) equals the integer implementation's, and,
// on engines LibTorch has here, LibTorch's live verdict. Kinds with refusal cases: on every
// engine both have, the integer side refuses each as LibTorch does, in the same words.
// "accepted", or "prepack: <message>" / "forward: <message>": builds a module and calls it
// once on `input`, reporting the step at which it was refused.
std::string build_and_call(const std::function<std::unique_ptr<Module>()>& build, const ModuleInput& input);

struct RejectionOutcome {
  std::string variant;
  Engine engine;
  std::string table;     // "accepted" | "prepack: msg" | "forward: msg"
  std::string quantized;
  std::string libtorch;  // empty when LibTorch lacks the engine
  // A refusal case (ModuleKind::refusal_cases) rather than a weight variant: LibTorch's
  // refusal is the authority (`table` repeats it), and it must be a refusal.
  bool call_variant = false;
};
std::vector<RejectionOutcome> rejection_outcomes(const ModuleKind& kind, const CaseConfig& config);
std::vector<std::string> check_rejection_parity(const ModuleKind& kind, const CaseConfig& config);

}  // namespace qconform
