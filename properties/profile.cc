#include <cstdlib>
#include <iostream>
#include <string>

#include "properties/generators.h"

namespace qconform::properties {

int max_success_for_profile() {
  const char* profile = std::getenv("QCONFORM_PROFILE");
  const std::string name = profile ? profile : "quick";
  if (name == "quick") return 100;
  if (name == "deep") return 1000;
  std::cerr << "QCONFORM_PROFILE must be quick or deep, not '" << name << "'\n";
  std::exit(2);
}

void set_rc_params_for_profile(int divisor) {
  if (std::getenv("RC_PARAMS")) return;  // the user's own parameters win (reproduce=...)
  std::string params = "max_success=" + std::to_string(max_success_for_profile() / divisor);
  // QCONFORM_SEED pins rapidcheck's seed (scripts/test pins one, so CI is repeatable);
  // unset or "random": a fresh seed per run, printed at the start.
  const char* seed = std::getenv("QCONFORM_SEED");
  if (seed && *seed && std::string(seed) != "random") params += " seed=" + std::string(seed);
  setenv("RC_PARAMS", params.c_str(), 1);
}

}  // namespace qconform::properties
