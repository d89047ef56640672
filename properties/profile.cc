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

}  // namespace qconform::properties
