#pragma once
// rapidcheck generators over the registry: a case configuration for any module kind,
// drawn within the kind's declared parameter ranges. Each parameter shrinks toward its
// minimum (sizes toward 1), the input style toward Normal, the seed toward 0.
#include <rapidcheck.h>

#include "core/module_kind.h"

namespace qconform {
// How rapidcheck prints generated values of the harness's types in counterexamples.
inline void showValue(DType dtype, std::ostream& os) { os << to_string(dtype); }
inline void showValue(QScheme qscheme, std::ostream& os) { os << to_string(qscheme); }
inline void showValue(InputStyle style, std::ostream& os) { os << to_string(style); }
inline void showValue(const CaseConfig& config, std::ostream& os) { os << config.to_string(); }
}  // namespace qconform

namespace qconform::properties {

// `pinned` fixes some parameters (edge scenarios such as batch = 1).
inline rc::Gen<CaseConfig> gen_case_config(const ModuleKind& kind,
                                           std::map<std::string, int64_t> pinned = {}) {
  return rc::gen::exec([&kind, pinned] {
    CaseConfig config;
    for (const auto& p : kind.case_parameters) {
      const auto it = pinned.find(p.name);
      config.values[p.name] = it != pinned.end()
                                  ? it->second
                                  : *rc::gen::inRange<int64_t>(p.min, p.max + 1).as(p.name);
    }
    config.style = *rc::gen::element(InputStyle::Normal, InputStyle::RoundingTies, InputStyle::Constant,
                                     InputStyle::WideRange).as("input style");
    config.data_seed = *rc::gen::inRange<uint64_t>(0, 1u << 20).as("data seed");
    return config;
  });
}

// A Boost.Test name from a registry label ("dynamic.Linear" -> "dynamic_Linear").
inline std::string test_name(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return text;
}

// Case counts per property: QCONFORM_PROFILE=quick (default) or deep (10x).
int max_success_for_profile();
// Sets RC_PARAMS from the profile (max_success = cases / divisor) and QCONFORM_SEED,
// unless the user set RC_PARAMS.
void set_rc_params_for_profile(int divisor = 1);

}  // namespace qconform::properties
