#pragma once
// Which quantized engines the LibTorch build on this machine has (Debian's: qnnpack and
// onednn). Free of ATen so that any code can ask.
#include <vector>

#include "core/engines.h"

namespace qconform {

bool libtorch_has_engine(Engine engine);
std::vector<Engine> libtorch_engines();
std::string libtorch_version();  // "1.13.1"
// LibTorch's intra-op threads (at::set_num_threads), and how many it uses now.
void set_libtorch_threads(int threads);
int libtorch_threads();

}  // namespace qconform
