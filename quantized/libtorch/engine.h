#pragma once
// Which quantized engines the LibTorch build on this machine has (Debian's: qnnpack and
// onednn). Free of ATen so that any code can ask.
#include <vector>

#include "core/engines.h"

namespace qconform {

bool libtorch_has_engine(Engine engine);
std::vector<Engine> libtorch_engines();
std::string libtorch_version();  // "1.13.1"

}  // namespace qconform
